"""Delivering the outbox: SMTP when configured, otherwise a local Maildir.

Rows are leased a batch at a time (``status='sending'`` with an owner and an expiry), so
two flushers never send the same email at once. The flusher's thread builds each message
and hands it to the transport: to a small pool of SMTP sessions (``[smtp] connections``,
default 4), each reused for many messages; or, for the Maildir, it writes the message into
``tmp/`` itself, and at the end of the batch the files are flushed to the disk together
(on the transport's own threads), renamed into ``new/``, and ``new/`` is flushed once. The
batch's outcomes are then recorded in ONE transaction. The database stays on the
flusher's thread; a batch that takes more than half the lease has its lease renewed.

The guarantee: every email is delivered at least once; outside a crash (or a database
that refuses the write, or a flusher stalled past its lease) between the server's
acceptance and the batch's commit, exactly once; its Message-ID is stable across
attempts (``message_id``), so a receiver can drop a copy. After a crash the batch's
lease runs out and its emails are sent again: a crash costs at most one batch of
duplicates and never loses an email (tests/reliability/test_kill_delivery.py).

4xx answers and connection errors retry with exponential back-off; 5xx answers fail the
email with the server's words, and so does an email that cannot be sent as the standards
say (an address with no ASCII form to a server without SMTPUTF8: ``rules.mail.wire``).
A session the server refuses (unreachable, bad credentials) puts the batch back in the
queue without using an attempt.
"""

from __future__ import annotations

import datetime as dt
import itertools
import multiprocessing
import os
import queue
import smtplib
import socket
import ssl
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from email.errors import MessageError
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

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
from store.files import (
    FILE_MODE,
    fsync_file,
    fsync_folder,
    make_private_folder,
    reason,
    remove_quietly,
    write_all,
)
from store.models import Client, Email, EmailTemplate, utcnow
from store.models.enums import EmailStatus
from store.models.mail import DUE_ROWS, MARKETING
from store.settings import Settings, load_settings

if TYPE_CHECKING:
    from rules.billing.invoice_pdf import InvoiceDocument

LEASE = dt.timedelta(minutes=5)
MAX_ATTEMPTS = 10
BACKOFF_START = dt.timedelta(minutes=1)
BACKOFF_CAP = dt.timedelta(hours=6)
#: Threads flushing a batch's Maildir files to the disk at once: their fsyncs share the
#: file system's journal commits, which one thread waiting for each in turn cannot. Only
#: the fsyncs run there, once the batch is written: threads that also wrote the files
#: waited for the interpreter lock after each system call while the flusher's thread built
#: messages, and delivered a third fewer (bench/mail.py). Not more than 4: 8 writers at once
#: slowed the commits of staff saves on the same disk until one waited out the lock's 10 s
#: (tests/reliability/test_concurrent_writes.py).
MAILDIR_SYNCS = 4
#: Outcomes recorded per statement: 8 parameters each stay under SQLite's 32,766.
RECORD_ROWS = 1000
#: Invoice emails in a batch from which their PDFs are drawn by worker processes (fewer
#: are not worth starting them for) and how many: one per CPU.
PARALLEL_PDFS = 8
PDF_WORKERS = max(1, min(4, os.cpu_count() or 1))
#: Seconds the flusher waits for a sender before it looks at the lease again.
TICK = 1.0


class TransientError(Exception):
    """Try again later (4xx, connection trouble)."""


class PermanentError(Exception):
    """Never retry (5xx, or an email that cannot be sent as the standards say): the
    message is the server's answer or the reason."""


class SessionRefused(TransientError):
    """A sender could not open its own session (the server refused another connection,
    or the login): the server refused us, not the email. That sender leaves the pool and
    its email goes to another sender; when none is left, the email goes back to the queue
    without using an attempt, and the flush ends (``FlushResult.session_error``)."""


class Transport(Protocol):
    """Where messages go. ``open``, ``end_batch`` and ``close`` run on the flusher's
    thread; ``send`` runs on up to ``senders`` threads at once (each with its own
    session), or on the flusher's thread when ``senders`` is 0, and raises
    ``TransientError`` or ``PermanentError``. ``key`` names the message (its email's id).
    ``end_batch`` runs once every message of a batch is handed over, before its outcomes
    are recorded, and returns the keys of the messages that were not delivered after all
    (a transport that finishes its deliveries there), with why."""

    senders: int

    def open(self) -> None: ...
    def send(self, message: EmailMessage, to: str, key: int = 0) -> None: ...
    def end_batch(self) -> dict[int, Exception]: ...
    def close(self) -> None: ...


class MaildirTransport:
    """The embedded default: every email lands in a Maildir (read it with ``mutt -f``),
    written as it would be sent: 7-bit headers, or UTF-8 headers (RFC 6532) when an
    address has a local part that is not ASCII (a Maildir has no server to ask).

    By the Maildir protocol: ``send`` writes each message, on the flusher's thread, under a
    unique name in ``tmp/`` (0600 from its first byte: a message can hold a password until
    the log masks it). ``end_batch`` flushes the batch's files to the disk on
    ``MAILDIR_SYNCS`` threads, renames each into ``new/``, where it is delivered, whole or
    not at all, and flushes ``new/`` once, before the batch's outcomes are recorded. A
    message left in ``tmp/`` (by a crash, or a batch that did not end) is not delivered:
    its email is sent again."""

    senders = 0

    def __init__(self, path: Path) -> None:
        self.path = path
        self._serial = itertools.count()
        self._host = socket.gethostname().replace("/", "\\057").replace(":", "\\072")
        #: (key, name in tmp/) of the batch's messages written and not yet in new/.
        self._written: list[tuple[int, str]] = []
        self._syncs: ThreadPoolExecutor | None = None

    def open(self) -> None:
        try:
            for sub in ("tmp", "new", "cur"):
                make_private_folder(self.path / sub)  # 0700: messages can hold passwords
        except OSError as exc:
            raise TransientError(f"Maildir {self.path}: {reason(exc)}") from exc

    def _unique(self) -> str:
        """A name no other delivery uses: time, microseconds, process, a serial number of
        this transport and the host (the Maildir specification's ``time.MusecPpidQn.host``)."""
        now = time.time()
        return f"{int(now)}.M{int(now % 1 * 1e6)}P{os.getpid()}Q{next(self._serial)}.{self._host}"

    def send(self, message: EmailMessage, to: str, key: int = 0) -> None:
        """Write ``message`` into ``tmp/`` (it reaches ``new/`` at ``end_batch``);
        ``TransientError`` with the reason (disk full...) when the file cannot be written,
        and then nothing of it is left."""
        data = _written(message, smtputf8=needs_smtputf8(message), linesep="\n")
        name = self._unique()
        temporary = self.path / "tmp" / name
        created = False
        try:
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
            created = True
            try:
                os.fchmod(fd, FILE_MODE)  # whatever the umask
                write_all(fd, data)
            finally:
                os.close(fd)
        except OSError as exc:
            if created:
                remove_quietly(temporary)
            raise TransientError(f"Maildir {self.path}: {reason(exc)}") from exc
        self._written.append((key, name))

    def end_batch(self) -> dict[int, Exception]:
        """Deliver the batch's written messages: flush each file to the disk (on
        ``MAILDIR_SYNCS`` threads), rename it into ``new/``, then flush ``new/`` once, so
        the messages survive a power loss before their rows are marked sent. A message
        whose file cannot be flushed or renamed is not delivered: its key comes back with
        a ``TransientError`` (retried), and its file is removed. A message renamed into
        ``new/`` is delivered: an error flushing the folder must not deliver it twice.
        Stopped half-way (Ctrl-C), the messages not yet handled stay listed, for ``close``
        to remove from ``tmp/``."""
        written = self._written
        if not written:
            return {}
        if self._syncs is None:
            self._syncs = ThreadPoolExecutor(MAILDIR_SYNCS, thread_name_prefix="gobiller-maildir")
        tmp, new = self.path / "tmp", self.path / "new"
        undelivered: dict[int, Exception] = {}
        handled = 0
        try:
            flushed = self._syncs.map(_flush_file, [tmp / name for _, name in written])
            for (key, name), error in zip(written, flushed, strict=True):
                if error is None:
                    try:
                        os.rename(tmp / name, new / name)
                    except OSError as exc:
                        error = exc
                if error is not None:
                    remove_quietly(tmp / name)
                    undelivered[key] = TransientError(f"Maildir {self.path}: {reason(error)}")
                handled += 1
        finally:
            del written[:handled]
        if len(undelivered) < handled:
            try:
                fsync_folder(new)
            except OSError:
                pass  # delivered all the same; each message file itself was flushed
        return undelivered

    def close(self) -> None:
        """Remove what a batch that did not end left in ``tmp/`` (its emails are sent
        again) and stop the flushing threads."""
        written, self._written = self._written, []
        for _, name in written:
            remove_quietly(self.path / "tmp" / name)
        if self._syncs is not None:
            self._syncs.shutdown()
            self._syncs = None


def _flush_file(path: Path) -> OSError | None:
    """``fsync_file``, the error returned instead of raised (one file's failure is its
    message's alone)."""
    try:
        fsync_file(path)
    except OSError as exc:
        return exc
    return None


class SmtpTransport:
    """A pool of up to ``config.connections`` SMTP sessions, one per sender thread, each
    reused for every message of the flush; errors sorted into transient and permanent.

    ``open`` checks the sender and opens the first session on the flusher's thread, so a
    server that cannot be reached or refuses the login is known before any email is
    tried; each sender takes that session or opens its own (``SessionRefused`` when it
    cannot). The envelope carries the addresses' wire form
    (``rules.mail.wire.mail_address``: the domain as its A-label). An email with an
    address whose local part is not ASCII goes with SMTPUTF8 (RFC 6531) when the server
    offers it and otherwise fails alone, permanently, with the reason: no server will take
    it later.
    """

    def __init__(self, config: SmtpConfig, sender: str) -> None:
        self.config = config
        self.sender = sender
        self.senders = max(1, config.connections)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._spare: list[smtplib.SMTP] = []
        self._sessions: list[smtplib.SMTP] = []
        self._envelope_sender: MailAddress | None = None

    def open(self) -> None:
        try:
            self._envelope_sender = mail_address(self.sender)
        except AddressError as exc:
            raise PermanentError(f"the company email (the sender): {exc}") from exc
        smtp = self._connect()
        with self._lock:
            self._spare.append(smtp)

    def _connect(self) -> smtplib.SMTP:
        cfg = self.config
        assert self._envelope_sender is not None
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
        if self._envelope_sender.needs_smtputf8 and not smtp.has_extn("smtputf8"):
            _quit(smtp)
            # Every email would need it: the session is refused, the emails wait (as for
            # a refused login) until the company email or the server changes.
            raise PermanentError(
                f"the company email {self.sender} has a local part that is not ASCII and "
                f"{cfg.host} does not offer SMTPUTF8 (RFC 6531)"
            )
        with self._lock:
            self._sessions.append(smtp)
        return smtp

    def _session(self) -> smtplib.SMTP:
        """This thread's session: the spare one ``open`` made, else a new one."""
        smtp: smtplib.SMTP | None = getattr(self._local, "smtp", None)
        if smtp is None:
            with self._lock:
                smtp = self._spare.pop() if self._spare else None
            if smtp is None:
                try:
                    smtp = self._connect()
                except (TransientError, PermanentError) as exc:
                    raise SessionRefused(str(exc)) from exc
            self._local.smtp = smtp
        return smtp

    def send(self, message: EmailMessage, to: str, key: int = 0) -> None:
        if self._envelope_sender is None:
            self.open()
        smtp = self._session()
        assert self._envelope_sender is not None
        try:
            recipient = mail_address(to)
        except AddressError as exc:
            raise PermanentError(f"recipient: {exc}") from exc
        smtputf8 = recipient.needs_smtputf8 or needs_smtputf8(message)
        if smtputf8 and not smtp.has_extn("smtputf8"):
            raise PermanentError(
                "the mail server does not offer SMTPUTF8 (RFC 6531), which this address "
                "needs (its local part is not ASCII): not sent, and not retried"
            )
        data = _written(message, smtputf8=smtputf8, linesep="\r\n")
        options = ("SMTPUTF8", "BODY=8BITMIME") if smtputf8 else ()
        try:
            smtp.sendmail(str(self._envelope_sender), [str(recipient)], data, mail_options=options)
        except smtplib.SMTPRecipientsRefused as exc:
            code, answer = next(iter(exc.recipients.values()))
            raise _classify(code, answer) from exc
        except smtplib.SMTPResponseException as exc:
            self._reset(smtp)
            raise _classify(exc.smtp_code, exc.smtp_error) from exc
        except (OSError, smtplib.SMTPException) as exc:
            self._drop(smtp)
            raise TransientError(f"connection lost: {exc}") from exc
        except Exception:  # e.g. an address the server cannot take: the next one starts clean
            self._reset(smtp)
            raise

    def _reset(self, smtp: smtplib.SMTP) -> None:
        try:
            smtp.rset()
        except (OSError, smtplib.SMTPException):
            self._drop(smtp)

    def _drop(self, smtp: smtplib.SMTP) -> None:
        """Forget this thread's session (the next message opens a new one)."""
        self._local.smtp = None
        with self._lock:
            if smtp in self._sessions:
                self._sessions.remove(smtp)
        try:
            smtp.close()
        except OSError:
            pass

    def end_batch(self) -> dict[int, Exception]:
        return {}

    def close(self) -> None:
        """Quit every session (the senders have stopped)."""
        with self._lock:
            sessions, self._sessions, self._spare = self._sessions, [], []
        for smtp in sessions:
            _quit(smtp)
        self._local = threading.local()
        self._envelope_sender = None


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

    senders = 0

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def open(self) -> None:
        return None

    def send(self, message: EmailMessage, to: str, key: int = 0) -> None:
        self.sent.append((to, str(message["Subject"] or "")))

    def end_batch(self) -> dict[int, Exception]:
        return {}

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


def attach_invoice_pdf(
    message: EmailMessage,
    invoice_id: int,
    settings: Settings,
    documents: Mapping[int, InvoiceDocument] | None = None,
    drawn: Mapping[int, Future[bytes]] | None = None,
) -> None:
    """Attach invoice ``invoice_id``'s PDF (``Invoice-<number>.pdf``), rendered now from
    the invoice as it stands (never stored per email): from ``documents`` when given (the
    batch's invoices, read at once by ``load_invoice_documents``), else read alone; drawn
    by ``drawn``'s worker process when it has the invoice (``_PdfWorkers``). Raises
    whatever rendering raises (``InvoiceNotFound``...): the caller fails that email alone
    (PRODUCT.md §4)."""
    from rules.billing.invoice_pdf import (
        draw_invoice_pdf,
        invoice_pdf_attachment,
        pdf_filename,
    )
    from rules.billing.payments import InvoiceNotFound

    if documents is None:
        filename, data = invoice_pdf_attachment(invoice_id, settings)
    else:
        document = documents.get(invoice_id)
        if document is None:
            raise InvoiceNotFound(f"no invoice {invoice_id}")
        filename = pdf_filename(document.number)
        future = (drawn or {}).get(invoice_id)
        try:
            data = draw_invoice_pdf(document) if future is None else future.result()
        except BrokenProcessPool:  # the worker died (killed...): drawn here instead
            data = draw_invoice_pdf(document)
    message.add_attachment(data, maintype="application", subtype="pdf", filename=filename)


def invoice_documents(
    emails: Iterable[Email], settings: Settings
) -> dict[int, InvoiceDocument] | None:
    """What the invoice emails among ``emails`` print, read set-based (two statements for
    a batch, whatever its number of invoice emails: ``load_invoice_documents``). None when
    that read fails: each email's PDF is then read alone and fails alone, with its reason,
    as before."""
    ids = [
        invoice_id
        for email in emails
        if (invoice_id := attachments.invoice_of(email.template, email.unique_key)) is not None
    ]
    if not ids:
        return {}
    from rules.billing.invoice_pdf import load_invoice_documents

    try:
        return load_invoice_documents(ids, settings)
    except Exception:  # noqa: BLE001  (read alone per email instead, each failing alone)
        return None


def build_message(
    email: Email,
    settings: Settings,
    documents: Mapping[int, InvoiceDocument] | None = None,
    drawn: Mapping[int, Future[bytes]] | None = None,
) -> EmailMessage:
    """The message for ``email``: From the company (``company_name`` as a display name,
    ``company_email``), To the stored address, both as ``Address`` objects whose domain is
    its A-label; headers are written by ``rules.mail.wire`` (PRODUCT.md §4). "Invoice
    Created" and "Invoice Payment Confirmation" carry their invoice's PDF
    (``attach_invoice_pdf``, issue 13), drawn from ``documents`` when given (by a worker
    process when ``drawn`` has it).

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
            attach_invoice_pdf(msg, invoice_id, settings, documents, drawn)
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


def _lease(owner: str, now: dt.datetime, batch: int, settings: Settings) -> Lease:
    """Claim up to ``batch`` due emails for ``owner`` (marketing within the rate limit).

    Reads only due rows: the count and the choice are ranges of partial indexes
    (``email_due``, ``email_marketing_sent``), so a lease costs the same after a million
    sent emails as after none. A leased email is due again when its lease runs out: the
    emails of a flusher that died are sent again (at least once). Marketing emails whose
    client ``rules.mail.marketing`` now refuses (opted out or Closed since they were
    queued) are marked skipped with the reason, in one statement for the batch
    (PRODUCT.md §4: eligibility is checked again when a message leaves).
    """
    window_start = now - dt.timedelta(seconds=settings.mail_rate_window_seconds)
    with writer():
        used = int(_marketing_in_window(now, window_start).scalar() or 0)
        allowance = max(0, settings.mail_rate_limit - used)
        ids: list[int] = []
        skipped: set[int] = set()
        for marketing, limit in ((False, batch), (True, min(batch, allowance))):
            if limit <= 0:
                continue
            query = (
                Email.select(Email.id)
                .where(_due(now, marketing))
                .order_by(Email.next_attempt_at, Email.id)
                .limit(limit)
            )
            if is_postgres():
                query = query.for_update(skip_locked=True)
            chosen = [e.id for e in query]
            if marketing and chosen:
                skipped = _skip_unwanted(chosen)
            ids.extend(i for i in chosen if i not in skipped)
        if not ids:
            return Lease([], len(skipped))
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
        return Lease(sorted(leased, key=lambda e: order[e.id]), len(skipped))


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


@dataclass
class Outcome:
    """What became of one leased email, recorded with the rest of its batch (``_record``).
    ``counted``: which ``FlushResult`` count it adds to; ``error``: the line reported."""

    email: Email
    status: str
    counted: str
    attempts: int
    last_error: str = ""
    next_attempt_at: dt.datetime | None = None
    sent_at: dt.datetime | None = None
    message_id: str = ""
    #: A sensitive template's body (a password, a reset link) masked now it was delivered.
    mask: bool = False
    error: str = ""


def _sent(email: Email, mid: str, now: dt.datetime, sensitive: set[str]) -> Outcome:
    return Outcome(
        email,
        EmailStatus.SENT,
        "sent",
        email.attempts + 1,
        sent_at=now,
        message_id=mid,
        mask=email.template in sensitive,
    )


def _failed(email: Email, error: str, mid: str = "") -> Outcome:
    return Outcome(
        email, EmailStatus.FAILED, "failed", email.attempts + 1, error, message_id=mid, error=error
    )


def _released(email: Email, error: str, now: dt.datetime) -> Outcome:
    """Back to the queue without using an attempt: the server refused us, not the email,
    and an operator fixing the credentials should not find the emails given up."""
    return Outcome(email, EmailStatus.QUEUED, "retried", email.attempts, error, now + BACKOFF_START)


def _retried(email: Email, error: str, mid: str, now: dt.datetime) -> Outcome:
    attempts = email.attempts + 1
    if attempts >= MAX_ATTEMPTS:
        return Outcome(
            email,
            EmailStatus.FAILED,
            "failed",
            attempts,
            f"gave up after {attempts} attempts: {error}",
            message_id=mid,
            error=error,
        )
    return Outcome(
        email, EmailStatus.QUEUED, "retried", attempts, error, now + _backoff(attempts), None, mid
    )


def _record(owner: str, outcomes: list[Outcome], result: FlushResult) -> None:
    """Record a batch's outcomes in ONE transaction and one statement per ``RECORD_ROWS``
    (for a batch of the usual size, one statement: a CTE of the outcomes
    joined to the emails: ``UPDATE ... FROM``, SQLite 3.33+ and PostgreSQL), each only
    while the lease is still ``owner``'s (it may have run out and moved on: then the new
    owner sends it again, and nothing is counted here). Sent emails of sensitive templates
    get their masked body (PRODUCT.md §4). Adds what was recorded to ``result``.

    Raises ``store.faults.DatabaseFault`` when the database refuses the write: the batch
    stays leased and is sent again once the lease runs out (at least once)."""
    if not outcomes:
        return
    with writer():
        recorded: set[int] = set()
        for start in range(0, len(outcomes), RECORD_ROWS):
            recorded |= _record_rows(owner, outcomes[start : start + RECORD_ROWS])
    for o in outcomes:
        if o.email.id not in recorded:
            continue
        setattr(result, o.counted, getattr(result, o.counted) + 1)
        if o.error:
            result.errors.append(f"email {o.email.id} to {o.email.to}: {o.error}")


def _record_rows(owner: str, outcomes: list[Outcome]) -> set[int]:
    """``_record``'s statement for up to ``RECORD_ROWS`` outcomes; the ids recorded."""
    pg = is_postgres()
    mark = "%s" if pg else "?"
    stamp = f"CAST({mark} AS TIMESTAMP)" if pg else mark
    row = f"({mark}, {mark}, {mark}, {stamp}, {stamp}, {mark}, {mark}, {mark})"
    params: list[object] = []
    for o in outcomes:
        params += [o.email.id, str(o.status), o.attempts, o.next_attempt_at, o.sent_at]
        params += [o.message_id, o.last_error, int(o.mask)]
    params += [MASK, owner]
    sql = (
        'WITH "outcome" ("id", "status", "attempts", "next_at", "sent_at", "mid", "error",'
        f' "mask") AS (VALUES {", ".join([row] * len(outcomes))}) '
        'UPDATE "email" SET "status" = "outcome"."status",'
        ' "attempts" = "outcome"."attempts",'
        ' "next_attempt_at" = COALESCE("outcome"."next_at", "email"."next_attempt_at"),'
        ' "sent_at" = COALESCE("outcome"."sent_at", "email"."sent_at"),'
        ' "message_id" = CASE WHEN "outcome"."mid" = \'\' THEN "email"."message_id"'
        ' ELSE "outcome"."mid" END,'
        ' "last_error" = "outcome"."error", "lease_owner" = \'\','
        ' "body_text" = CASE WHEN "outcome"."mask" = 1'
        f' THEN COALESCE(NULLIF("email"."masked_body", \'\'), {mark}) ELSE "email"."body_text" END,'
        ' "body_html" = CASE WHEN "outcome"."mask" = 1 THEN \'\' ELSE "email"."body_html" END,'
        ' "masked_body" = CASE WHEN "outcome"."mask" = 1 THEN \'\' ELSE "email"."masked_body" END'
        ' FROM "outcome" WHERE "email"."id" = "outcome"."id"'
        f' AND "email"."lease_owner" = {mark} RETURNING "email"."id"'
    )
    return {email_id for (email_id,) in database.execute_sql(sql, params).fetchall()}


class _Senders:
    """``transport.senders`` threads sending what the flusher's thread hands them (each
    ``transport.send`` call on its own thread's session), at most one message each at a
    time; the outcomes come back to the flusher's thread, which alone uses the database.
    With ``senders`` 0, ``submit`` sends on the flusher's thread itself.

    A sender whose session the server refuses (``SessionRefused``: a server that takes
    fewer connections than the pool, or no more at all) leaves the pool for the rest of
    the flush and hands its message to another sender. When the last one leaves,
    ``refused`` says why, and the messages not sent come back as ``SessionRefused``."""

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.count = max(0, int(transport.senders))
        self._jobs: queue.SimpleQueue[tuple[int, EmailMessage, str] | None] = queue.SimpleQueue()
        self._done: queue.SimpleQueue[tuple[int, Exception | None]] = queue.SimpleQueue()
        self._free = threading.Semaphore(self.count)
        self._lock = threading.Lock()
        self.in_flight = 0
        #: Senders still in the pool.
        self.alive = self.count
        #: Free slots of senders that left, not to be given back.
        self._gone = 0
        #: Why the last sender left ("" while one is left).
        self.refused = ""
        self._threads = [
            threading.Thread(target=self._run, name=f"gobiller-sender-{n}", daemon=True)
            for n in range(self.count)
        ]
        for thread in self._threads:
            thread.start()

    def _send(self, email_id: int, message: EmailMessage, to: str) -> Exception | None:
        try:
            self.transport.send(message, to, email_id)
        except Exception as exc:  # noqa: BLE001  (sorted on the flusher's thread)
            return exc
        return None

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            error = self._send(*job)
            if isinstance(error, SessionRefused):
                self._leave(job, error)
                return
            self._done.put((job[0], error))
            with self._lock:
                if self._gone:
                    self._gone -= 1
                else:
                    self._free.release()

    def _leave(self, job: tuple[int, EmailMessage, str], error: SessionRefused) -> None:
        """This sender's session was refused: it leaves the pool; its message goes to
        another sender, or, when it was the last, every message waiting comes back
        refused."""
        with self._lock:
            self.alive -= 1
            self._gone += 1  # the slot of its message stays taken until another sends it
            if self.alive:
                self._jobs.put(job)
                return
            self.refused = str(error)
            waiting = [job]
            while True:
                try:
                    left = self._jobs.get_nowait()
                except queue.Empty:
                    break
                if left is not None:
                    waiting.append(left)
            for email_id, _, _ in waiting:
                self._done.put((email_id, SessionRefused(self.refused)))
        self._free.release()  # a flusher waiting for a sender learns there is none

    def wait_free(self, tick: Callable[[], None]) -> bool:
        """Wait until a sender is free, calling ``tick`` every ``TICK`` seconds meanwhile;
        False when none is left in the pool (``refused``)."""
        while self.count and not self._free.acquire(timeout=TICK):
            tick()
        if self.count and not self.alive:
            self._free.release()  # for the next one asking
            return False
        return True

    def give_back(self) -> None:
        """The slot ``wait_free`` took is not used."""
        if self.count:
            self._free.release()

    def submit(self, email_id: int, message: EmailMessage, to: str) -> None:
        """Hand a message to a free sender (after ``wait_free``), or send it now."""
        self.in_flight += 1
        if not self.count:
            error = self._send(email_id, message, to)
            if isinstance(error, SessionRefused):
                self.refused = str(error)
            self._done.put((email_id, error))
            return
        with self._lock:
            if self.alive:
                self._jobs.put((email_id, message, to))
            else:  # the last sender left since the slot was taken
                self._done.put((email_id, SessionRefused(self.refused)))

    def finished(self, block: bool, tick: Callable[[], None]) -> list[tuple[int, Exception | None]]:
        """The (email id, error or None) of the messages done since the last call; with
        ``block``, waits for at least one while any is in flight."""
        done: list[tuple[int, Exception | None]] = []
        while block and self.in_flight and not done:
            try:
                done.append(self._done.get(timeout=TICK))
            except queue.Empty:
                tick()
        while True:
            try:
                done.append(self._done.get_nowait())
            except queue.Empty:
                break
        self.in_flight -= len(done)
        return done

    def stop(self) -> None:
        for _ in self._threads:
            self._jobs.put(None)
        for thread in self._threads:
            thread.join()


class _Held:
    """The batch's lease as the flusher's thread sees it: renewed when half of it has
    passed, for every email of the batch still ours (sent ones too: their outcomes are
    recorded only at the end of the batch); ``kept`` is what is still ours."""

    def __init__(self, owner: str, leased: list[Email], now: Callable[[], dt.datetime]) -> None:
        self.owner = owner
        self.now = now
        self.since = now()
        self.kept = {e.id for e in leased}

    def keep(self) -> None:
        if self.now() - self.since > LEASE / 2 and self.kept:  # a slow server
            self.kept = _renew(self.owner, sorted(self.kept), self.now())
            self.since = self.now()


class _PdfWorkers:
    """Worker processes drawing a batch's invoice PDFs while the flusher's thread builds
    and writes the other messages: a PDF is milliseconds of work for one CPU, and on the
    day invoices go out most emails carry one. Started at the first batch with at least
    ``PARALLEL_PDFS`` invoice emails and stopped with the flush; by the ``forkserver``
    method (a clean process, never a fork of this one, which holds threads and a database
    connection). A worker only draws (``draw_invoice_pdf``: no database). When the pool
    cannot start or breaks, the PDFs are drawn on the flusher's thread, as before."""

    def __init__(self) -> None:
        self._pool: ProcessPoolExecutor | None = None
        self._broken = False
        self._alive: tuple[Any, Any] | None = None

    def draw(self, documents: Mapping[int, InvoiceDocument] | None) -> dict[int, Future[bytes]]:
        """Start drawing ``documents`` (by invoice id); nothing when they are too few."""
        if not documents or len(documents) < PARALLEL_PDFS or self._broken:
            return {}
        from rules.billing.invoice_pdf import draw_invoice_pdf

        try:
            if self._pool is None:
                context = multiprocessing.get_context("forkserver")
                context.set_forkserver_preload(["rules.billing.invoice_pdf", __name__])
                self._alive = context.Pipe(duplex=False)
                self._pool = ProcessPoolExecutor(
                    PDF_WORKERS,
                    mp_context=context,
                    initializer=_pdf_worker,
                    initargs=(self._alive[0],),
                )
            return {key: self._pool.submit(draw_invoice_pdf, doc) for key, doc in documents.items()}
        except (OSError, RuntimeError, BrokenProcessPool):
            self._broken = True
            return {}

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None
        if self._alive is not None:
            for end in self._alive:
                end.close()
            self._alive = None


def _pdf_worker(flusher_alive: Any) -> None:
    """In each PDF worker process: end it once the flusher is gone (killed), which
    nothing else would (it would wait for work forever, and keep the forkserver alive).
    ``flusher_alive`` is the read end of a pipe only the flusher writes to: its end of
    the file is the flusher's end, whatever became of its process."""

    def watch() -> None:
        try:
            flusher_alive.recv()
        except (EOFError, OSError):
            pass
        os._exit(0)

    threading.Thread(target=watch, name="gobiller-flusher-watch", daemon=True).start()


def _send_batch(
    senders: _Senders,
    leased: list[Email],
    owner: str,
    settings: Settings,
    sensitive: set[str],
    now: Callable[[], dt.datetime],
    pdfs: _PdfWorkers | None = None,
) -> list[Outcome]:
    """Build each message on this thread and hand it to a free sender; sort the answers
    into outcomes. An email whose lease another flusher took over is not sent (nor
    recorded: it is the other's now). Then ``end_batch`` (the Maildir's flush of its files
    and of new/); a message it did not deliver after all gets that outcome instead."""
    held = _Held(owner, leased, now)
    by_id = {e.id: e for e in leased}
    documents = invoice_documents(leased, settings)
    drawn = pdfs.draw(documents) if pdfs is not None else {}
    message_ids: dict[int, str] = {}
    outcomes: list[Outcome] = []

    def collect(block: bool) -> None:
        for email_id, error in senders.finished(block, held.keep):
            mid = message_ids[email_id]
            outcomes.append(_answered(by_id[email_id], mid, error, now(), sensitive))

    for email in leased:
        mid = ""
        try:
            # One message that cannot be built fails alone, with the reason, and the
            # batch goes on (PRODUCT.md §4): a value no header can hold, a body that
            # cannot be encoded, an invoice PDF that cannot be made.
            mid = email.message_id or message_id(email, settings)
            email.message_id = mid
            message = build_message(email, settings, documents, drawn)
        except Exception as exc:  # noqa: BLE001
            why = (
                str(exc)
                if isinstance(exc, PermanentError)
                else (f"cannot build the message: {_reason(exc)}")
            )
            outcomes.append(_failed(email, why, mid))
            continue
        if not senders.wait_free(held.keep):
            # No sender is left: the server refuses every session. Not sent; back to
            # the queue without an attempt, and the flush ends.
            outcomes.append(_released(email, senders.refused, now()))
            continue
        held.keep()
        if email.id not in held.kept:
            senders.give_back()  # our lease ran out and another flusher has this one now
            continue
        message_ids[email.id] = mid
        senders.submit(email.id, message, email.to)
        collect(block=False)
    while senders.in_flight:
        collect(block=True)
    undelivered = senders.transport.end_batch()
    return [
        _answered(o.email, o.message_id, undelivered[o.email.id], now(), sensitive)
        if o.email.id in undelivered
        else o
        for o in outcomes
    ]


def _answered(
    email: Email, mid: str, error: Exception | None, now: dt.datetime, sensitive: set[str]
) -> Outcome:
    """The outcome of a send: sent; retried (4xx, connection trouble); back to the queue
    without an attempt (a session the server refused); failed (5xx, or anything else a
    transport raised: that email fails alone)."""
    if error is None:
        return _sent(email, mid, now, sensitive)
    if isinstance(error, SessionRefused):
        return _released(email, str(error), now)
    if isinstance(error, TransientError):
        return _retried(email, str(error), mid, now)
    if isinstance(error, PermanentError):
        return _failed(email, str(error), mid)
    return _failed(email, f"cannot send the message: {_reason(error)}", mid)


def flush(
    transport: Transport,
    *,
    now: Callable[[], dt.datetime] = utcnow,
    batch: int = 100,
    wait: bool = False,
    sleep: Callable[[float], None] = time.sleep,
    settings: Settings | None = None,
) -> FlushResult:
    """Deliver every email that is due, ``batch`` at a time; with ``wait``, pace marketing
    mail until none is left. ``settings``: those in force (read here when not given).

    Per batch a fixed number of statements, whatever its size: the lease (``_lease``) and
    one transaction recording every outcome (``_record``), after the transport's
    ``end_batch``. Guarantee (module docstring): at least once, exactly once outside a
    crash between the server's acceptance and that commit, a stable Message-ID. A session
    the server refuses as the flush starts puts the batch back in the queue and ends the
    flush, with ``session_error`` set. Later, a sender whose own session is refused leaves
    the pool (a server that takes fewer connections than ``[smtp] connections``); when
    none is left, the rest of the batch goes back to the queue and the flush ends the same
    way. Raises ``store.faults.DatabaseFault`` when the database
    refuses a write (the batch is sent again after its lease runs out)."""
    settings = settings or load_settings()
    sensitive = {t.name for t in EmailTemplate.select().where(EmailTemplate.sensitive)}
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    result = FlushResult()
    senders: _Senders | None = None
    pdfs = _PdfWorkers()
    secrets_masked = False
    try:
        while True:
            lease = _lease(owner, now(), batch, settings)
            result.skipped += lease.skipped
            leased = lease.emails
            if not leased and lease.skipped:
                continue  # the whole batch was skipped: lease the next one
            if not leased:
                waiting = _waiting_marketing(now())
                if wait and waiting:
                    sleep(float(settings.mail_rate_window_seconds) / 2)
                    continue
                result.deferred = waiting
                break
            if senders is None:
                try:
                    transport.open()
                except (TransientError, PermanentError) as exc:
                    # No session (unreachable, or e.g. 535 bad credentials): the emails are
                    # not at fault, so they wait for a retry; the run reports the error.
                    result.session_error = str(exc)
                    result.errors.append(f"mail server: {exc}")
                    _record(owner, [_released(e, str(exc), now()) for e in leased], result)
                    break
                senders = _Senders(transport)
            outcomes = _send_batch(senders, leased, owner, settings, sensitive, now, pdfs)
            _record(owner, outcomes, result)
            secrets_masked = secrets_masked or any(o.mask for o in outcomes)
            if senders.refused:
                result.session_error = senders.refused
                result.errors.append(f"mail server: {senders.refused}")
                break
    finally:
        pdfs.close()
        if senders is not None:
            senders.stop()
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


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


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
