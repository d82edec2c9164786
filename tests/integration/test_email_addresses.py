"""An email address is sent as the standards say (issue 15, case 29).

A domain goes out as its A-label (IDNA 2008: ``jorg@bücher.example`` is
``jorg@xn--bcher-kva.example``) in the envelope, the headers and the Maildir copy; a local
part that is not ASCII (``zoé@…``) goes with SMTPUTF8 when the server offers it and
otherwise fails that one email, permanently, with the reason; non-ASCII header text
becomes RFC 2047 encoded words of at most 75 characters in lines of at most 78.
Real SQLite/PostgreSQL databases and real aiosmtpd servers on 127.0.0.1.
"""

from __future__ import annotations

import datetime as dt
import re
from email import message_from_string
from email.header import decode_header, make_header
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest

from rules.audit import SYSTEM_CLI
from rules.clients.validation import clean_email
from rules.mail.delivery import MaildirTransport, SmtpTransport, flush
from rules.mail.outbox import Notice, queue
from rules.mail.templates import save_template
from store.config import SmtpConfig
from store.db import writer
from store.models import Client, Currency, Email, utcnow
from store.settings import load_settings, save_settings
from tests.conftest import SmtpRecorder

IDN = "jorg@bücher.example"
IDN_ON_THE_WIRE = "jorg@xn--bcher-kva.example"
NON_ASCII_LOCAL_PART = "zoé@example.org"
COMPANY_EMAIL = "rechnung@bücher.example"
COMPANY_EMAIL_ON_THE_WIRE = "rechnung@xn--bcher-kva.example"
TEMPLATE = "Password Reset Confirmation"
LONG_SUBJECT = (
    "Rechnung Nr. 1001 — überfällige Gebühren für Ihre Domänen bücher.example und "
    "straße.example: Zahlungserinnerung für Jörg Brückner, fällig am 1. Juli 2026"
)
LONG_COMPANY_NAME = "Hafen-Hosting für Bücher & Zeitschriften, Kiel — Ümlaut Ärger Öfen GmbH"
ENCODED_WORD = re.compile(rb"=\?[^?\s]+\?[qQbB]\?[^?\s]*\?=")


class Clock:
    def __init__(self) -> None:
        # Emails are stamped with the real time when queued; the clock starts just after.
        self.now = utcnow() + dt.timedelta(seconds=1)

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _client(email: str) -> Client:
    currency = Currency.get_or_create(code="USD", defaults={"is_default": True})[0]
    return Client.create(
        first_name="Jörg",
        last_name="Brückner",
        email=clean_email(email),  # stored as the import and the editor store it
        currency=currency,
    )


def _queue(*clients: Client) -> None:
    with writer():
        queue(TEMPLATE, [Notice(c.id) for c in clients])


def _smtp(config: SmtpConfig) -> SmtpTransport:
    return SmtpTransport(config, load_settings().company_email)


def _maildir_messages(path: Path) -> list[bytes]:
    return [f.read_bytes() for f in sorted((path / "new").iterdir())]


def _header_lines(raw: bytes) -> list[bytes]:
    head = raw.replace(b"\r\n", b"\n").split(b"\n\n", 1)[0]
    return head.split(b"\n")


def _field(raw: bytes, name: str) -> str:
    """One header field, unfolded, as written (encoded words left encoded)."""
    fields = re.split(rb"\n(?=\S)", b"\n".join(_header_lines(raw)))
    [value] = [f for f in fields if f.lower().startswith(name.lower().encode() + b":")]
    return value.split(b":", 1)[1].replace(b"\n", b"").strip().decode("utf-8")


def _parsed(raw: bytes) -> EmailMessage:
    """The message as a reader sees it; UTF-8 headers (RFC 6532) decoded as UTF-8."""
    message = message_from_string(raw.decode("utf-8"), policy=default_policy)
    assert isinstance(message, EmailMessage)
    return message


def _decoded(text: str) -> str:
    """RFC 2047 decoding (space between two encoded words is not text, §6.2)."""
    return str(make_header(decode_header(text)))


def test_an_email_address_is_sent_as_the_standards_say_idn_domain_over_smtp_without_smtputf8(
    db: str, smtp_server_without_smtputf8: tuple[SmtpRecorder, SmtpConfig], clock: Clock
) -> None:
    """The domain (of the client and of the company email) travels as its A-label, so a
    server without SMTPUTF8 takes the email; no retry loop, no "connection lost"."""
    recorder, config = smtp_server_without_smtputf8
    save_settings({"company_name": "Bücher Hosting", "company_email": COMPANY_EMAIL})
    _queue(_client(IDN))

    result = flush(_smtp(config), now=clock)

    assert (result.sent, result.retried, result.failed) == (1, 0, 0), result.errors
    [envelope] = recorder.messages
    assert envelope.rcpt_tos == [IDN_ON_THE_WIRE]
    assert envelope.mail_from == COMPANY_EMAIL_ON_THE_WIRE
    assert "SMTPUTF8" not in envelope.mail_options
    assert envelope.original_content.isascii()
    [message] = recorder.parsed()
    assert [a.addr_spec for a in message["To"].addresses] == [IDN_ON_THE_WIRE]
    [sender] = message["From"].addresses
    assert (sender.display_name, sender.addr_spec) == ("Bücher Hosting", COMPANY_EMAIL_ON_THE_WIRE)
    assert message["Message-ID"].endswith("@xn--bcher-kva.example>")
    email = Email.get()
    assert (email.to, email.status, email.attempts, email.last_error) == (IDN, "sent", 1, "")


def test_an_email_address_is_sent_as_the_standards_say_in_the_maildir_copy(
    db: str, tmp_path: Path, clock: Clock
) -> None:
    """The Maildir copy carries addresses, never an encoded word inside one: the IDN
    domain as its A-label in 7-bit headers; a non-ASCII local part in UTF-8 headers
    (RFC 6532: the only way to write it). Both parse back to the right address."""
    save_settings({"company_email": COMPANY_EMAIL})
    _queue(_client(IDN), _client(NON_ASCII_LOCAL_PART))
    box = tmp_path / "Maildir"

    assert flush(MaildirTransport(box), now=clock).sent == 2

    by_to: dict[str, tuple[bytes, EmailMessage]] = {}
    for raw in _maildir_messages(box):
        message = _parsed(raw)
        [to] = message["To"].addresses
        by_to[to.addr_spec] = (raw, message)
    assert set(by_to) == {IDN_ON_THE_WIRE, NON_ASCII_LOCAL_PART}
    idn_raw, idn_message = by_to[IDN_ON_THE_WIRE]
    assert _field(idn_raw, "To") == IDN_ON_THE_WIRE
    assert idn_raw.isascii()
    assert [a.addr_spec for a in idn_message["From"].addresses] == [COMPANY_EMAIL_ON_THE_WIRE]
    utf8_raw, utf8_message = by_to[NON_ASCII_LOCAL_PART]
    assert _field(utf8_raw, "To") == NON_ASCII_LOCAL_PART
    assert (utf8_message["To"].addresses[0].username, utf8_message["To"].addresses[0].domain) == (
        "zoé",
        "example.org",
    )
    for raw, _ in by_to.values():
        assert b"=?" not in b"".join(
            line for line in _header_lines(raw) if line.startswith((b"To:", b"From:"))
        )


def test_an_email_address_is_sent_as_the_standards_say_non_ascii_local_part_needs_smtputf8(
    db: str,
    smtp_server_without_smtputf8: tuple[SmtpRecorder, SmtpConfig],
    smtp_server: tuple[SmtpRecorder, SmtpConfig],
    clock: Clock,
) -> None:
    """Without SMTPUTF8, ``zoé@example.org`` fails at once, permanently, with the reason
    (no retry loop, no "connection lost"); the emails around it in the same flush go. A
    server that offers SMTPUTF8 gets it with SMTPUTF8 (RFC 6531)."""
    recorder, config = smtp_server_without_smtputf8
    ana, zoe, jorg = _client("ana@example.org"), _client(NON_ASCII_LOCAL_PART), _client(IDN)
    _queue(ana, zoe, jorg)
    transport = _smtp(config)

    result = flush(transport, now=clock)

    assert (result.sent, result.retried, result.failed) == (2, 0, 1), result.errors
    assert sorted(e.rcpt_tos[0] for e in recorder.messages) == [
        "ana@example.org",
        IDN_ON_THE_WIRE,
    ]
    failed = Email.get(Email.client == zoe.id)
    assert (failed.status, failed.attempts) == ("failed", 1)
    assert "SMTPUTF8" in failed.last_error and "connection lost" not in failed.last_error
    assert "SMTPUTF8" in result.errors[0] and NON_ASCII_LOCAL_PART in result.errors[0]
    # Never tried again: a day later nothing is due.
    clock.now += dt.timedelta(days=1)
    later = flush(transport, now=clock)
    assert (later.sent, later.retried, later.failed) == (0, 0, 0)
    assert Email.get(Email.client == zoe.id).attempts == 1
    assert len(recorder.messages) == 2

    utf8_recorder, utf8_config = smtp_server
    with writer():
        queue(TEMPLATE, [Notice(zoe.id, unique_key="again")])
    result = flush(_smtp(utf8_config), now=clock)

    assert (result.sent, result.retried, result.failed) == (1, 0, 0), result.errors
    [envelope] = utf8_recorder.messages
    assert envelope.rcpt_tos == [NON_ASCII_LOCAL_PART]
    assert "SMTPUTF8" in envelope.mail_options
    [to] = _parsed(envelope.original_content)["To"].addresses
    assert (to.username, to.domain) == ("zoé", "example.org")
    assert Email.get(Email.unique_key == "again").status == "sent"


def test_an_email_address_is_sent_as_the_standards_say_a_company_email_that_needs_smtputf8(
    db: str, smtp_server_without_smtputf8: tuple[SmtpRecorder, SmtpConfig], clock: Clock
) -> None:
    """A company email with a non-ASCII local part cannot be the sender on a server
    without SMTPUTF8: every email would fail, so the session is refused with the reason
    and the emails wait without using an attempt (as for a refused login)."""
    recorder, config = smtp_server_without_smtputf8
    save_settings({"company_email": "rechnung.zoé@example.org"})
    _queue(_client("ana@example.org"), _client(IDN))

    result = flush(_smtp(config), now=clock)

    assert (result.sent, result.retried, result.failed) == (0, 2, 0)
    assert "SMTPUTF8" in result.session_error and "company email" in result.session_error
    assert [(e.status, e.attempts) for e in Email.select().order_by(Email.id)] == [
        ("queued", 0),
        ("queued", 0),
    ]
    assert recorder.messages == []


def test_an_email_address_is_sent_as_the_standards_say_an_address_with_no_ascii_form_fails_alone(
    db: str, tmp_path: Path, clock: Clock
) -> None:
    """A stored address whose domain has no A-label (a snowman is not allowed by IDNA
    2008) fails alone with the reason instead of being written half-encoded."""
    currency = Currency.get_or_create(code="USD", defaults={"is_default": True})[0]
    broken = Client.create(first_name="A", last_name="B", email="a@☃.example", currency=currency)
    _queue(broken, _client(IDN))

    result = flush(MaildirTransport(tmp_path / "Maildir"), now=clock)

    assert (result.sent, result.retried, result.failed) == (1, 0, 1)
    failed = Email.get(Email.client == broken.id)
    assert (failed.status, failed.attempts) == ("failed", 1)
    assert "IDNA" in failed.last_error
    [raw] = _maildir_messages(tmp_path / "Maildir")
    assert _field(raw, "To") == IDN_ON_THE_WIRE


def test_an_email_address_is_sent_as_the_standards_say_headers_fold_as_rfc_5322_and_2047(
    db: str,
    smtp_server_without_smtputf8: tuple[SmtpRecorder, SmtpConfig],
    tmp_path: Path,
    clock: Clock,
) -> None:
    """A long non-ASCII subject and company name (the From display name): every header
    line at most 78 characters, every encoded word at most 75, and both decode back to
    the exact text (no space lost or added at a fold), over SMTP and in the Maildir."""
    recorder, config = smtp_server_without_smtputf8
    save_settings({"company_name": LONG_COMPANY_NAME, "company_email": "billing@harbour.example"})
    save_template(TEMPLATE, LONG_SUBJECT, "Your password was changed.", "", SYSTEM_CLI)
    _queue(_client("jorg@example.org"))
    assert flush(_smtp(config), now=clock).sent == 1
    _queue(_client("ana@example.org"))
    assert flush(MaildirTransport(tmp_path / "Maildir"), now=clock).sent == 1
    [smtp_raw] = [e.original_content for e in recorder.messages]
    [maildir_raw] = _maildir_messages(tmp_path / "Maildir")

    for raw in (smtp_raw, maildir_raw):
        assert raw.isascii()
        for line in _header_lines(raw):
            assert len(line) <= 78, line
            for word in ENCODED_WORD.findall(line):
                assert len(word) <= 75, word
        assert _decoded(_field(raw, "Subject")) == LONG_SUBJECT
        display_name, _, address = _field(raw, "From").rpartition(" ")
        assert _decoded(display_name) == LONG_COMPANY_NAME
        assert address == "<billing@harbour.example>"
        message = _parsed(raw)
        assert message["Subject"] == LONG_SUBJECT
        assert [a.addr_spec for a in message["From"].addresses] == ["billing@harbour.example"]


@pytest.mark.parametrize(
    "subject",
    [
        "Your code =?utf-8?q?hi?= is ready",
        "=?utf-8?b?aGk=?=",
        "Re: =?iso-8859-1?q?caf=E9?= and =?utf-8?q?x?=",
        "Überfällig: =?utf-8?q?hi?=",
        # Across white space: not an encoded word by RFC 2047, but readers decode it.
        "=?utf-8?q?a b?=",
        "Your code =?utf-8?q?hi there?= is ready",
        "=?utf-8?b?aGk= ?= and =?us-ascii?q?x  y?=",
    ],
)
def test_a_header_is_sent_as_written_encoded_word_lookalikes_in_a_subject(
    db: str, tmp_path: Path, clock: Clock, subject: str
) -> None:
    """Text that looks like an RFC 2047 encoded word in a subject reaches the reader as
    written, not decoded into something else (it was sent as "hi"); the Date and
    Message-ID fields read back as the email's own."""
    save_settings({"company_name": "Harbour", "company_email": "billing@harbour.example"})
    save_template(TEMPLATE, subject, "Your password was changed.", "", SYSTEM_CLI)
    _queue(_client("ana@example.org"))
    assert flush(MaildirTransport(tmp_path / "Maildir"), now=clock).sent == 1
    [raw] = _maildir_messages(tmp_path / "Maildir")
    message = _parsed(raw)
    assert message["Subject"] == subject
    [email] = Email.select()
    assert message["Message-ID"] == email.message_id
    assert message["Date"].datetime == email.created_at.replace(microsecond=0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    "subject",
    [
        "=?utf-8?q?hi?= \u2003 =?utf-8?q?hi?=",
        "Your code =?utf-8?q?a?= \u00a0 \u3000 =?utf-8?b?aGk=?= is ready",
    ],
)
def test_a_header_is_sent_as_written_unicode_whitespace_between_encoded_words(
    db: str, tmp_path: Path, clock: Clock, subject: str
) -> None:
    """A word of white space that is not a space or a tab (a no-break space, an
    ideographic space) between two encoded words, in UTF-8 headers (RFC 6532: a recipient
    whose local part is not ASCII): a reader takes it for the folding white space between
    the encoded words and drops it, so it goes inside the encoded words."""
    save_settings({"company_name": "Harbour", "company_email": "billing@harbour.example"})
    save_template(TEMPLATE, subject, "Your password was changed.", "", SYSTEM_CLI)
    _queue(_client(NON_ASCII_LOCAL_PART))
    assert flush(MaildirTransport(tmp_path / "Maildir"), now=clock).sent == 1
    [raw] = _maildir_messages(tmp_path / "Maildir")
    assert _parsed(raw)["Subject"] == subject


@pytest.mark.parametrize("recipient", ["ana@example.org", NON_ASCII_LOCAL_PART])
@pytest.mark.parametrize(
    "company_name",
    ["=?utf-8?q?Hafen?=", "Hafen =?utf-8?q?a b?= GmbH", 'Hafen, "=?utf-8?b?aGk= ?="'],
)
def test_a_header_is_sent_as_written_encoded_word_lookalikes_in_a_display_name(
    db: str, tmp_path: Path, clock: Clock, company_name: str, recipient: str
) -> None:
    """Text that looks like an RFC 2047 encoded word in the company name (the From display
    name), in one word or across white space, in 7-bit and in UTF-8 headers: the reader
    sees the name as written, not decoded."""
    save_settings({"company_name": company_name, "company_email": "billing@harbour.example"})
    _queue(_client(recipient))
    assert flush(MaildirTransport(tmp_path / "Maildir"), now=clock).sent == 1
    [raw] = _maildir_messages(tmp_path / "Maildir")
    [sender] = _parsed(raw)["From"].addresses
    assert (sender.display_name, sender.addr_spec) == (company_name, "billing@harbour.example")


def test_a_header_is_sent_as_written_a_word_longer_than_a_line_can_hold(
    db: str, tmp_path: Path, clock: Clock
) -> None:
    """A word of 255 emoji in the subject and the company name, in UTF-8 headers (a
    recipient whose local part is not ASCII), where it would be written as it is: 1,020
    octets with no space to fold at, past the 998 a line may hold (RFC 5322 §2.1.1; SMTP's
    1,000 with CRLF, RFC 5321 §4.5.3.1.6). It goes as encoded words, which can be split
    and folded, and both read back as written."""
    word = "\U0001f600" * 255
    save_settings({"company_name": word, "company_email": "billing@harbour.example"})
    save_template(TEMPLATE, word, "Your password was changed.", "", SYSTEM_CLI)
    _queue(_client(NON_ASCII_LOCAL_PART))
    assert flush(MaildirTransport(tmp_path / "Maildir"), now=clock).sent == 1
    [raw] = _maildir_messages(tmp_path / "Maildir")
    assert max(len(line) for line in _header_lines(raw)) <= 998
    message = _parsed(raw)
    assert message["Subject"] == word
    display_name, _, _ = _field(raw, "From").rpartition(" ")
    assert _decoded(display_name) == word
