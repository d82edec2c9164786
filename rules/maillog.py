"""The email log as staff browse it (globally or per client)."""

from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from typing import Any

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
    return [
        LogEntry(
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
        for e in rows
    ]
