"""Delivering the outbox: SMTP when configured, otherwise a local Maildir.

Rows are leased before sending (``status='sending'`` with an owner and an
expiry), so two flushers never send the same email and a flusher that dies
mid-batch only delays its emails until the lease runs out. Each email is marked
handed (``handed_at``) just before it goes: one whose lease runs out while handed
may have left without its outcome being recorded (the flusher died, the database
refused the write), so it is failed as uncertain rather than sent twice. 4xx
answers and connection errors retry with exponential back-off; 5xx answers fail
the email with the server's words, and so does an email that cannot be sent as the
standards say (an address with no ASCII form to a server without SMTPUTF8:
``rules.mail.wire``).
"""

from __future__ import annotations

import datetime as dt
import mailbox
import os
import smtplib
import socket
import ssl
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from email.errors import MessageError
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any, Protocol

from peewee import SQL, Select, fn

from rules.audit import Actor, record
from rules.errors import RuleError, transaction
from rules.mail import attachments
from rules.mail.marketing import marketing_refusal, refusal_for
from rules.mail.sql import NOT_RENDERED
from rules.mail.templates import MASK
from rules.mail.wire import (
    MESSAGE_POLICY,
    AddressError,
    MailAddress,
    ascii_domain,
    mail_address,
    needs_smtputf8,
    wire_bytes,
)
from rules.permissions import require
from store.config import Config, SmtpConfig
from store.db import database, is_postgres, is_sqlite, writer
from store.files import FILE_MODE, fsync_folder, make_private_folder, reason
from store.models import Client, Email, EmailTemplate, utcnow
from store.models.enums import EmailStatus
from store.models.mail import DUE_ROWS, MARKETING
from store.settings import Settings, load_settings

LEASE = dt.timedelta(minutes=5)
MAX_ATTEMPTS = 10
BACKOFF_START = dt.timedelta(minutes=1)
BACKOFF_CAP = dt.timedelta(hours=6)


class TransientError(Exception):
    """Try again later (4xx, connection trouble)."""


class PermanentError(Exception):
    """Never retry (5xx, or an email that cannot be sent as the standards say): the
    message is the server's answer or the reason."""


class Transport(Protocol):
    def open(self) -> None: ...
    def send(self, message: EmailMessage, to: str) -> None: ...
    def close(self) -> None: ...


class _PrivateMaildir(mailbox.Maildir):
    """A Maildir whose messages are 0600 from their first byte (``mailbox`` creates them
    0666 less the umask): a message can hold a password until the log masks it."""

    def _create_tmp(self) -> Any:
        tmp = super()._create_tmp()  # type: ignore[misc]
        os.chmod(tmp.name, FILE_MODE)
        return tmp


class MaildirTransport:
    """The embedded default: every email lands in a Maildir (read it with ``mutt -f``),
    written as it would be sent: 7-bit headers, or UTF-8 headers (RFC 6532) when an
    address has a local part that is not ASCII (a Maildir has no server to ask)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._box: mailbox.Maildir | None = None

    def open(self) -> None:
        try:
            for sub in ("tmp", "new", "cur"):  # Maildir(create=True) skips an existing folder
                make_private_folder(self.path / sub)  # 0700: messages can hold passwords
        except OSError as exc:
            raise TransientError(f"Maildir {self.path}: {reason(exc)}") from exc
        self._box = _PrivateMaildir(str(self.path), create=False)

    def send(self, message: EmailMessage, to: str) -> None:
        """Deliver by the Maildir protocol (``mailbox.Maildir.add``: written and fsynced in
        tmp/, then linked into new/), then flush new/ itself, so a delivered message
        survives a power loss before its row is marked sent. Once the message is in new/
        it is delivered: an error flushing the folder must not deliver it twice."""
        assert self._box is not None
        data = _written(message, smtputf8=needs_smtputf8(message), linesep="\n")
        try:
            self._box.add(data)
        except (OSError, mailbox.Error) as exc:
            why = reason(exc) if isinstance(exc, OSError) else str(exc)
            raise TransientError(f"Maildir {self.path}: {why}") from exc
        try:
            fsync_folder(self.path / "new")
        except OSError:
            pass  # delivered all the same; the message file itself was fsynced

    def close(self) -> None:
        self._box = None


class SmtpTransport:
    """One SMTP session per flush batch; errors sorted into transient and permanent.

    The envelope carries the addresses' wire form (``rules.mail.wire.mail_address``: the
    domain as its A-label). An email with an address whose local part is not ASCII goes
    with SMTPUTF8 (RFC 6531) when the server offers it and otherwise fails alone,
    permanently, with the reason: no server will take it later.
    """

    def __init__(self, config: SmtpConfig, sender: str) -> None:
        self.config = config
        self.sender = sender
        self._smtp: smtplib.SMTP | None = None
        self._envelope_sender: MailAddress | None = None

    def open(self) -> None:
        cfg = self.config
        try:
            sender = mail_address(self.sender)
        except AddressError as exc:
            raise PermanentError(f"the company email (the sender): {exc}") from exc
        try:
            if cfg.security == "tls":
                smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                    cfg.host, cfg.port, timeout=cfg.timeout, context=ssl.create_default_context()
                )
            else:
                smtp = smtplib.SMTP(cfg.host, cfg.port, timeout=cfg.timeout)
                if cfg.security == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
            if cfg.username:
                smtp.login(cfg.username, cfg.password)
            smtp.ehlo_or_helo_if_needed()
        except smtplib.SMTPResponseException as exc:
            raise _classify(exc.smtp_code, exc.smtp_error) from exc
        except (OSError, smtplib.SMTPException) as exc:
            raise TransientError(f"cannot connect to {cfg.host}:{cfg.port}: {exc}") from exc
        if sender.needs_smtputf8 and not smtp.has_extn("smtputf8"):
            _quit(smtp)
            # Every email would need it: the session is refused, the emails wait (as for
            # a refused login) until the company email or the server changes.
            raise PermanentError(
                f"the company email {self.sender} has a local part that is not ASCII and "
                f"{cfg.host} does not offer SMTPUTF8 (RFC 6531)"
            )
        self._smtp = smtp
        self._envelope_sender = sender

    def send(self, message: EmailMessage, to: str) -> None:
        if self._smtp is None:
            self.open()
        assert self._smtp is not None and self._envelope_sender is not None
        try:
            recipient = mail_address(to)
        except AddressError as exc:
            raise PermanentError(f"recipient: {exc}") from exc
        smtputf8 = recipient.needs_smtputf8 or needs_smtputf8(message)
        if smtputf8 and not self._smtp.has_extn("smtputf8"):
            raise PermanentError(
                "the mail server does not offer SMTPUTF8 (RFC 6531), which this address "
                "needs (its local part is not ASCII): not sent, and not retried"
            )
        data = _written(message, smtputf8=smtputf8, linesep="\r\n")
        options = ("SMTPUTF8", "BODY=8BITMIME") if smtputf8 else ()
        try:
            self._smtp.sendmail(
                str(self._envelope_sender), [str(recipient)], data, mail_options=options
            )
        except smtplib.SMTPRecipientsRefused as exc:
            code, answer = next(iter(exc.recipients.values()))
            raise _classify(code, answer) from exc
        except smtplib.SMTPResponseException as exc:
            self._reset()
            raise _classify(exc.smtp_code, exc.smtp_error) from exc
        except (OSError, smtplib.SMTPException) as exc:
            self._drop()
            raise TransientError(f"connection lost: {exc}") from exc
        except Exception:  # e.g. an address the server cannot take: the next one starts clean
            self._reset()
            raise

    def _reset(self) -> None:
        try:
            assert self._smtp is not None
            self._smtp.rset()
        except (OSError, smtplib.SMTPException):
            self._drop()

    def _drop(self) -> None:
        self._smtp = None

    def close(self) -> None:
        if self._smtp is not None:
            _quit(self._smtp)
            self._smtp = None


def _quit(smtp: smtplib.SMTP) -> None:
    try:
        smtp.quit()
    except (OSError, smtplib.SMTPException):
        pass


def _written(message: EmailMessage, *, smtputf8: bool, linesep: str) -> bytes:
    """``rules.mail.wire.wire_bytes``; a message that cannot be written fails alone."""
    try:
        return wire_bytes(message, smtputf8=smtputf8, linesep=linesep)
    except (ValueError, LookupError, MessageError) as exc:
        raise PermanentError(f"cannot be written as the standards say: {exc}") from exc


def _classify(code: int, answer: bytes | str) -> Exception:
    text = answer.decode("utf-8", "replace") if isinstance(answer, bytes) else str(answer)
    message = f"{code} {text}".strip()
    return PermanentError(message) if 500 <= code < 600 else TransientError(message)


def make_transport(smtp: SmtpConfig | None, maildir: Path, settings: Settings) -> Transport:
    """SMTP when configured (sending as the company email), otherwise the Maildir."""
    if smtp is not None:
        return SmtpTransport(smtp, settings.company_email)
    return MaildirTransport(maildir)


def transport_for(config: Config, settings: Settings) -> Transport:
    """The transport the configuration names (``[smtp]`` / ``GOBILLER_SMTP_URL``, else
    the ``[mail] maildir``): what ``gobiller cron``, ``mail flush`` and the staff app
    deliver through (PRODUCT.md §4)."""
    return make_transport(config.smtp, config.maildir, settings)


class RecordingTransport:
    """Delivers nothing: keeps (recipient, subject) of every message handed to it. The
    dry run's transport (``rules.billing.cron.run_cron``), inside the rolled-back
    transaction, so the run's flush is the real flush and no email leaves."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def open(self) -> None:
        return None

    def send(self, message: EmailMessage, to: str) -> None:
        self.sent.append((to, str(message["Subject"] or "")))

    def close(self) -> None:
        return None


# --------------------------------------------------------------------------- messages


def message_id(email: Email, settings: Settings) -> str:
    """Stable across retries, so a receiver can drop a duplicate after a lost answer.
    The company email's domain as its A-label (a Message-ID is ASCII: RFC 5322 §3.6.4)."""
    domain = settings.company_email.rpartition("@")[2]
    try:
        domain = ascii_domain(domain)
    except AddressError:
        domain = ""
    return f"<gobiller.{email.id}.{email.created_at:%Y%m%d%H%M%S}@{domain or 'gobiller.invalid'}>"


def attach_invoice_pdf(message: EmailMessage, invoice_id: int, settings: Settings) -> None:
    """Attach invoice ``invoice_id``'s PDF (``Invoice-<number>.pdf``), rendered now from
    the invoice as it stands (never stored per email). Raises whatever rendering raises
    (``InvoiceNotFound``...): the caller fails that email alone (PRODUCT.md §4)."""
    from rules.billing.invoice_pdf import invoice_pdf_attachment

    filename, data = invoice_pdf_attachment(invoice_id, settings)
    message.add_attachment(data, maintype="application", subtype="pdf", filename=filename)


def build_message(email: Email, settings: Settings) -> EmailMessage:
    """The message for ``email``: From the company (``company_name`` as a display name,
    ``company_email``), To the stored address, both as ``Address`` objects whose domain is
    its A-label; headers are written by ``rules.mail.wire`` (PRODUCT.md §4). "Invoice
    Created" and "Invoice Payment Confirmation" carry their invoice's PDF
    (``attach_invoice_pdf``, issue 13).

    Raises ``PermanentError`` with the reason for an address that has no wire form, a
    header that cannot be written or an invoice PDF that cannot be made: that email fails
    alone.
    """
    try:
        sender = mail_address(settings.company_email)
    except AddressError as exc:
        raise PermanentError(f"the company email (the sender): {exc}") from exc
    try:
        recipient = mail_address(email.to)
    except AddressError as exc:
        raise PermanentError(f"recipient: {exc}") from exc
    msg = EmailMessage(policy=MESSAGE_POLICY)
    try:
        msg["From"] = sender.header(settings.company_name)
        msg["To"] = recipient.header()
        msg["Subject"] = email.subject
        msg["Date"] = format_datetime(email.created_at.replace(tzinfo=dt.UTC))
        msg["Message-ID"] = email.message_id or message_id(email, settings)
        msg["X-GoBiller-Template"] = email.template
        if email.marketing:
            msg["Precedence"] = "bulk"
        msg.set_content(email.body_text)
        if email.body_html:
            msg.add_alternative(email.body_html, subtype="html")
    except (ValueError, LookupError, MessageError) as exc:
        raise PermanentError(f"cannot be written as the standards say: {exc}") from exc
    invoice_id = attachments.invoice_of(email.template, email.unique_key)
    if invoice_id is not None:
        try:
            attach_invoice_pdf(msg, invoice_id, settings)
        except Exception as exc:  # noqa: BLE001  (this email fails alone, with the reason)
            raise PermanentError(
                f"cannot attach the PDF of invoice {invoice_id}: {_reason(exc)}"
            ) from exc
    return msg


# --------------------------------------------------------------------------- flushing


@dataclass
class FlushResult:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    #: Marketing emails no longer wanted when they were to leave (opted out, Closed).
    skipped: int = 0
    #: Marketing emails held back by the rate limit for a later flush.
    deferred: int = 0
    #: Why no session could be opened with the mail server ("" when it could).
    session_error: str = ""
    errors: list[str] = field(default_factory=list)


def _due(now: dt.datetime, marketing: bool) -> Any:
    """Queued emails whose time has come, and sending ones whose lease ran out: a range of
    the partial index ``email_due`` (never the sent history). Never one restored by
    import (history, whatever its status: PRODUCT.md §5)."""
    return (
        SQL(DUE_ROWS)
        & (Email.marketing == marketing)
        & (Email.next_attempt_at <= now)
        & ~Email.imported
    )


def _marketing_in_window(now: dt.datetime, window_start: dt.datetime) -> Any:
    """Marketing emails sent in the rate window or being sent under a live lease; one query
    over the last window of ``email_marketing_sent`` and the leased rows of ``email_due``."""
    recent = Email.select(fn.COUNT(SQL("*"))).where(SQL(MARKETING) & (Email.sent_at > window_start))
    in_flight = Email.select(fn.COUNT(SQL("*"))).where(
        SQL(DUE_ROWS)
        & (Email.marketing == True)  # noqa: E712  (SQL, not Python truth)
        & (Email.next_attempt_at > now)
        & (Email.status == EmailStatus.SENDING)
    )
    # fn.COALESCE makes each a scalar subquery (``+`` of two queries is a UNION in peewee).
    return Select(columns=[fn.COALESCE(recent, 0) + fn.COALESCE(in_flight, 0)]).bind(database)


@dataclass
class Lease:
    #: Ours to send, in the order they fell due (transactional first).
    emails: list[Email]
    #: Marketing emails of the batch marked skipped instead (``rules.mail.marketing``).
    skipped: int = 0
    #: (id, to) of emails whose last attempt may have delivered them unrecorded, marked
    #: failed instead of being sent again.
    uncertain: list[tuple[int, str]] = field(default_factory=list)


#: Why an email handed to the mail server by a flusher that never recorded the outcome
#: is not sent again.
UNCERTAIN = (
    "delivery uncertain: it was handed to the mail server but the outcome was never "
    "recorded (the sender stopped or the database refused the write); not sent again "
    "so it cannot arrive twice: check with the recipient, then resend if needed"
)


def _lease(owner: str, now: dt.datetime, batch: int, settings: Settings) -> Lease:
    """Claim up to ``batch`` due emails for ``owner`` (marketing within the rate limit).

    Reads only due rows: the count and the choice are ranges of partial indexes
    (``email_due``, ``email_marketing_sent``), so a lease costs the same after a million
    sent emails as after none. A leased email is due again when its lease runs out.
    Marketing emails whose client ``rules.mail.marketing`` now refuses (opted out or Closed
    since they were queued) are marked skipped with the reason, in one statement for the
    batch (PRODUCT.md §4: eligibility is checked again when a message leaves).
    """
    window_start = now - dt.timedelta(seconds=settings.mail_rate_window_seconds)
    with writer():
        used = int(_marketing_in_window(now, window_start).scalar() or 0)
        allowance = max(0, settings.mail_rate_limit - used)
        ids: list[int] = []
        skipped: set[int] = set()
        uncertain: list[tuple[int, str]] = []
        for marketing, limit in ((False, batch), (True, min(batch, allowance))):
            if limit <= 0:
                continue
            query = (
                Email.select(Email.id, Email.to, Email.handed_at)
                .where(_due(now, marketing))
                .order_by(Email.next_attempt_at, Email.id)
                .limit(limit)
            )
            if is_postgres():
                query = query.for_update(skip_locked=True)
            rows = list(query)
            doubtful = [(e.id, e.to) for e in rows if e.handed_at is not None]
            if doubtful:
                _give_up_uncertain([i for i, _ in doubtful])
                uncertain.extend(doubtful)
            chosen = [e.id for e in rows if e.handed_at is None]
            if marketing and chosen:
                skipped = _skip_unwanted(chosen)
            ids.extend(i for i in chosen if i not in skipped)
        if not ids:
            return Lease([], len(skipped), uncertain)
        # The rows are ours until commit (SQLite's write lock, PostgreSQL's row locks), so
        # the update names them by id alone: a status in it would tempt the planner to
        # read every queued row through an index on status.
        leased: Any = (
            Email.update(status=EmailStatus.SENDING, lease_owner=owner, next_attempt_at=now + LEASE)
            .where(Email.id.in_(ids))
            .returning(Email)
            .execute()
        )
        order = {email_id: n for n, email_id in enumerate(ids)}
        return Lease(sorted(leased, key=lambda e: order[e.id]), len(skipped), uncertain)


def _give_up_uncertain(ids: list[int]) -> None:
    """Fail, as uncertain, emails whose lease ran out after they were handed over. The
    lease owner stays, so a flusher that was only slow still records what really
    happened (``_finish`` matches on it)."""
    Email.update(status=EmailStatus.FAILED, last_error=UNCERTAIN).where(Email.id.in_(ids)).execute()


def _skip_unwanted(ids: list[int]) -> set[int]:
    """Mark skipped, with the reason, the marketing emails among ``ids`` whose client may
    no longer receive marketing email; return their ids. One statement for the batch: the
    reason is read per email through the client's primary key."""
    reason = Client.select(marketing_refusal()).where(Client.id == Email.client)
    rows: Any = (
        Email.update(status=EmailStatus.SKIPPED, last_error=reason, lease_owner="")
        .where(Email.id.in_(ids) & Email.marketing & (fn.COALESCE(reason, "") != ""))
        .returning(Email.id)
        .tuples()
        .execute()
    )
    return {email_id for (email_id,) in rows}


def _backoff(attempts: int) -> dt.timedelta:
    return min(BACKOFF_START * (2 ** max(0, attempts - 1)), BACKOFF_CAP)


def _finish(email: Email, owner: str, **changes: object) -> None:
    """Record an outcome only if we still hold the lease (it may have expired and moved on)."""
    with writer():
        Email.update(**changes, lease_owner="", handed_at=None).where(
            (Email.id == email.id) & (Email.lease_owner == owner)
        ).execute()


def _hand(email: Email, owner: str, now: dt.datetime) -> bool:
    """Mark ``email`` handed over, committed before it goes; False when the lease is no
    longer ours (another flusher took it over): then it is not sent."""
    with writer():
        marked = (
            Email.update(handed_at=now)
            .where((Email.id == email.id) & (Email.lease_owner == owner))
            .execute()
        )
    return bool(marked)


def flush(
    transport: Transport,
    *,
    now: Callable[[], dt.datetime] = utcnow,
    batch: int = 100,
    wait: bool = False,
    sleep: Callable[[float], None] = time.sleep,
    settings: Settings | None = None,
) -> FlushResult:
    """Deliver every email that is due; with ``wait``, pace marketing mail until none is left.
    ``settings``: those in force (read here when not given)."""
    settings = settings or load_settings()
    sensitive = {t.name for t in EmailTemplate.select().where(EmailTemplate.sensitive)}
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    result = FlushResult()
    opened = False
    secrets_masked = False
    try:
        while True:
            leased_at = now()
            lease = _lease(owner, leased_at, batch, settings)
            result.skipped += lease.skipped
            result.failed += len(lease.uncertain)
            result.errors.extend(f"email {i} to {to}: {UNCERTAIN}" for i, to in lease.uncertain)
            leased = lease.emails
            if not leased and (lease.skipped or lease.uncertain):
                continue  # the whole batch was skipped: lease the next one
            if not leased:
                waiting = _waiting_marketing(now())
                if wait and waiting:
                    sleep(float(settings.mail_rate_window_seconds) / 2)
                    continue
                result.deferred = waiting
                break
            if not opened:
                try:
                    transport.open()
                    opened = True
                except (TransientError, PermanentError) as exc:
                    # No session (unreachable, or e.g. 535 bad credentials): the emails are
                    # not at fault, so they wait for a retry; the run reports the error.
                    result.session_error = str(exc)
                    result.errors.append(f"mail server: {exc}")
                    for email in leased:
                        _release(email, owner, str(exc), now(), result)
                    break
            kept = {e.id for e in leased}
            for n, email in enumerate(leased):
                if now() - leased_at > LEASE / 2:  # a slow server: keep the rest of the batch
                    kept = _renew(owner, [e.id for e in leased[n:]], now())
                    leased_at = now()
                if email.id not in kept or not _hand(email, owner, now()):
                    continue  # our lease ran out and another flusher has this one now
                secrets_masked = secrets_masked or email.template in sensitive
                _deliver(transport, email, owner, settings, sensitive, now(), result)
    finally:
        if opened:
            transport.close()
    if secrets_masked:
        _forget_old_frames()
    return result


def _forget_old_frames() -> None:
    """After masking a delivered password or reset link: copy SQLite's write-ahead log
    into the file and empty it, so the clear text is in neither (``secure_delete`` zeroes
    what the masking freed in the file). Best effort: a reader holding an old snapshot
    keeps the log until the next checkpoint. Nothing to do on PostgreSQL."""
    if not is_sqlite():
        return
    try:
        database.execute_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    except Exception:  # noqa: BLE001  (the delivery itself is done and recorded)
        pass


def _renew(owner: str, ids: list[int], now: dt.datetime) -> set[int]:
    """Extend our lease on ``ids``; return the ones still ours (an owner is one flush, and
    only a lease sets it: every outcome clears it)."""
    with writer():
        rows: Any = (
            Email.update(next_attempt_at=now + LEASE)
            .where(Email.id.in_(ids) & (Email.lease_owner == owner))
            .returning(Email.id)
            .tuples()
            .execute()
        )
        return {email_id for (email_id,) in rows}


def _waiting_marketing(now: dt.datetime) -> int:
    """Marketing emails due but held back by the rate limit (a range of ``email_due``)."""
    return int(Email.select(fn.COUNT(SQL("*"))).where(_due(now, True)).scalar() or 0)


def _deliver(
    transport: Transport,
    email: Email,
    owner: str,
    settings: Settings,
    sensitive: set[str],
    now: dt.datetime,
    result: FlushResult,
) -> None:
    # One message that cannot be built or sent fails alone, with the reason, and the
    # batch goes on (PRODUCT.md §4): a value no header can hold, a body that cannot be
    # encoded, anything a transport raises beyond its transient and permanent answers.
    mid = ""
    try:
        mid = email.message_id or message_id(email, settings)
        email.message_id = mid
        message = build_message(email, settings)
    except PermanentError as exc:
        _fail(email, owner, str(exc), result, message_id=mid)
        return
    except Exception as exc:  # noqa: BLE001
        _fail(email, owner, f"cannot build the message: {_reason(exc)}", result, message_id=mid)
        return
    try:
        transport.send(message, email.to)
    except TransientError as exc:
        _retry(email, owner, str(exc), now, result)
        return
    except PermanentError as exc:
        _finish(
            email,
            owner,
            status=EmailStatus.FAILED,
            attempts=email.attempts + 1,
            last_error=str(exc),
            message_id=mid,
        )
        result.failed += 1
        result.errors.append(f"email {email.id} to {email.to}: {exc}")
        return
    except Exception as exc:  # noqa: BLE001
        _fail(email, owner, f"cannot send the message: {_reason(exc)}", result, message_id=mid)
        return
    changes: dict[str, object] = {
        "status": EmailStatus.SENT,
        "attempts": email.attempts + 1,
        "sent_at": now,
        "message_id": mid,
        "last_error": "",
    }
    if email.template in sensitive:
        changes.update(body_text=email.masked_body or MASK, body_html="", masked_body="")
    _finish(email, owner, **changes)
    result.sent += 1


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


def _fail(email: Email, owner: str, error: str, result: FlushResult, **changes: object) -> None:
    _finish(
        email,
        owner,
        status=EmailStatus.FAILED,
        attempts=email.attempts + 1,
        last_error=error,
        **changes,
    )
    result.failed += 1
    result.errors.append(f"email {email.id} to {email.to}: {error}")


def _release(email: Email, owner: str, error: str, now: dt.datetime, result: FlushResult) -> None:
    """Back to the queue without using an attempt: the server refused us, not the email,
    and an operator fixing the credentials should not find the emails given up."""
    _finish(
        email,
        owner,
        status=EmailStatus.QUEUED,
        next_attempt_at=now + BACKOFF_START,
        last_error=error,
    )
    result.retried += 1


def _retry(email: Email, owner: str, error: str, now: dt.datetime, result: FlushResult) -> None:
    attempts = email.attempts + 1
    if attempts >= MAX_ATTEMPTS:
        _finish(
            email,
            owner,
            status=EmailStatus.FAILED,
            attempts=attempts,
            last_error=f"gave up after {attempts} attempts: {error}",
        )
        result.failed += 1
        result.errors.append(f"email {email.id} to {email.to}: {error}")
        return
    _finish(
        email,
        owner,
        status=EmailStatus.QUEUED,
        attempts=attempts,
        next_attempt_at=now + _backoff(attempts),
        last_error=error,
    )
    result.retried += 1


def resend(email_id: int, actor: Actor) -> Email:
    """Queue a copy of a logged email; the command line and the staff app's email log
    both call this.

    Raises ``RuleError`` for an unknown email, one whose secret was masked (password or
    reset link), one restored by import (it has no body), and marketing email to a
    client ``rules.mail.marketing`` now refuses (opted out or Closed: PRODUCT.md §1 and §4;
    delivery would skip the copy anyway).
    """
    require(actor, "mail.send")
    original = Email.get_or_none(Email.id == email_id)
    if original is None:
        raise RuleError(f"no email {email_id}")
    if original.imported:
        raise RuleError(
            "this email was restored from an export without its body and cannot be resent"
        )
    if original.last_error.startswith(NOT_RENDERED):
        raise RuleError(
            f"email {email_id} was never rendered ({original.last_error}): there is nothing "
            "to resend; correct the template and the value it names"
        )
    template = EmailTemplate.get_or_none(EmailTemplate.name == original.template)
    if template is not None and template.sensitive:
        raise RuleError(
            "this email carried a password or reset link and cannot be resent; "
            "start the reset again instead"
        )
    if original.marketing and original.client_id is not None:
        refusal = refusal_for(original.client_id)
        if refusal:
            raise RuleError(f"email {email_id} is marketing and {refusal}: not resent")
    invoice_id = attachments.invoice_of(original.template, original.unique_key)
    with transaction():
        now = utcnow()
        copy = Email.create(
            client=original.client_id,
            template=original.template,
            to=original.to,
            subject=original.subject,
            body_text=original.body_text,
            body_html=original.body_html,
            marketing=original.marketing,
            # A copy of an invoice email still carries its invoice's PDF.
            unique_key=None
            if invoice_id is None
            else attachments.invoice_key("resend", invoice_id),
            created_at=now,
            next_attempt_at=now,
        )
        record(
            actor, "email", copy.id, "resend", client_id=original.client_id, old_value=str(email_id)
        )
    return copy
