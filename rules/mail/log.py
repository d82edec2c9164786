"""The email log as staff browse it (globally or per client)."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

from rules.errors import RuleError
from store.models import Email


@dataclass(frozen=True)
class LogEntry:
    id: int
    client_id: int | None
    created_at: dt.datetime
    sent_at: dt.datetime | None
    template: str
    to: str
    subject: str
    status: str
    attempts: int
    #: Why it failed, or (status ``skipped``) why it was not sent.
    last_error: str

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["created_at"] = self.created_at.isoformat() + "Z"
        data["sent_at"] = self.sent_at.isoformat() + "Z" if self.sent_at else None
        return data


def email_log(
    *, client_id: int | None = None, status: str | None = None, limit: int = 50, offset: int = 0
) -> list[LogEntry]:
    """Newest first, one query; bodies are not read (open a message for that)."""
    query = Email.select(
        Email.id,
        Email.client,
        Email.created_at,
        Email.sent_at,
        Email.template,
        Email.to,
        Email.subject,
        Email.status,
        Email.attempts,
        Email.last_error,
    )
    if client_id is not None:
        query = query.where(Email.client == client_id)
    if status is not None:
        query = query.where(Email.status == status)
    rows = query.order_by(Email.created_at.desc(), Email.id.desc()).limit(limit).offset(offset)
    return [_entry(e) for e in rows]


def _entry(e: Email) -> LogEntry:
    return LogEntry(
        e.id,
        e.client_id,
        e.created_at,
        e.sent_at,
        e.template,
        e.to,
        e.subject,
        e.status,
        e.attempts,
        e.last_error,
    )


@dataclass(frozen=True)
class EmailMessage:
    """One email with its bodies, as ``gobiller mail show`` prints it."""

    entry: LogEntry
    marketing: bool
    message_id: str
    body_text: str
    body_html: str

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.entry.as_dict(),
            "marketing": self.marketing,
            "message_id": self.message_id,
            "body_text": self.body_text,
            "body_html": self.body_html,
        }


def email_message(email_id: int) -> EmailMessage:
    """The email ``email_id``; ``RuleError`` when there is none. A secret is never shown:
    an email of a sensitive template (password, reset or invitation link) shows its
    masked body even before delivery masks the stored one."""
    e = Email.get_or_none(Email.id == email_id)
    if e is None:
        raise RuleError(f"no email {email_id}")
    if e.masked_body:
        return EmailMessage(_entry(e), bool(e.marketing), e.message_id, e.masked_body, "")
    return EmailMessage(_entry(e), bool(e.marketing), e.message_id, e.body_text, e.body_html)
