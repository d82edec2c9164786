"""Email end to end: templates, the outbox, delivery to a real SMTP server or a Maildir."""

from __future__ import annotations

import collections
import datetime as dt
import mailbox
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from peewee import fn
from playhouse.test_utils import count_queries

from rules.audit import SYSTEM_CLI
from rules.errors import RuleError
from rules.mail.delivery import LEASE, MaildirTransport, SmtpTransport, flush, resend
from rules.mail.massmail import MassMailFilter, preview, send_mass_mail
from rules.mail.outbox import Notice, queue
from rules.mail.templates import MASK, TemplateRefused, save_template
from store.config import SmtpConfig
from store.db import writer
from store.models import (
    Client,
    Contact,
    Currency,
    Email,
    EmailTemplate,
    Invoice,
    InvoiceItem,
    utcnow,
)
from store.settings import save_settings
from tests.conftest import SmtpRecorder, smtp_controller

TEMPLATE_NAMES = [
    "Invoice Created",
    "Invoice Payment Reminder",
    "First Invoice Overdue Notice",
    "Second Invoice Overdue Notice",
    "Third Invoice Overdue Notice",
    "Invoice Payment Confirmation",
    "Credit Card Payment Failed",
    "Credit Card Expired",
    "Automated Password Reset",
    "Password Reset Validation",
    "Password Reset Confirmation",
    "Two-Factor Disabled",
    "Mass Mail",
    "Portal Invitation",
]


def _client(n: int = 1, **extra: object) -> Client:
    currency = Currency.get_or_create(
        code="USD", defaults={"is_default": True, "prefix": "$", "suffix": " USD"}
    )[0]
    return Client.create(
        first_name=f"Ana{n}",
        last_name="Núñez",
        email=f"ana{n}@example.com",
        currency=currency,
        **extra,
    )


def _invoice(client: Client, number: str = "1001") -> Invoice:
    invoice = Invoice.create(
        client=client,
        number=number,
        date=dt.date(2026, 11, 1),
        due_date=dt.date(2026, 11, 15),
        payment_method="banktransfer",
        subtotal=1000,
        tax=200,
        total=1200,
    )
    InvoiceItem.create(invoice=invoice, type="Hosting", description="VPS 2GB", amount=1000)
    return invoice


class Clock:
    def __init__(self) -> None:
        # Emails are stamped with the real time when queued; the clock starts just after.
        self.now = utcnow() + dt.timedelta(seconds=1)

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += dt.timedelta(**kw)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def _queue_one(
    client: Client, template: str = "Password Reset Confirmation", key: str | None = None
) -> int:
    with writer():
        return queue(template, [Notice(client.id, unique_key=key)])


def test_default_templates_are_seeded(db: str) -> None:
    names = {t.name for t in EmailTemplate.select()}
    assert names == set(TEMPLATE_NAMES)
    assert EmailTemplate.get(name="Automated Password Reset").sensitive
    assert EmailTemplate.get(name="Password Reset Validation").sensitive
    assert EmailTemplate.get(name="Portal Invitation").sensitive
    assert not EmailTemplate.get(name="Invoice Created").sensitive


@pytest.mark.parametrize(
    "body,reason",
    [
        ("{{ ''.__class__ }}", "unsafe"),
        ("{{ client.__class__ }}", "__class__"),
        ("{{ company['update']({'name': 'x'}) }}", "update"),
        ("{{ company.items() }}", "items"),
        ("{{ client.nickname }}", "nickname"),
        ("{{ invoice.total }}", "invoice"),  # not a merge field of this template
        ("{% for x in %}", "body"),
    ],
)
def test_sandbox_refuses_on_save(db: str, body: str, reason: str) -> None:
    before = EmailTemplate.get(name="Password Reset Confirmation").body_text
    with pytest.raises(TemplateRefused, match=reason):
        save_template("Password Reset Confirmation", "Hi", body, "", SYSTEM_CLI)
    assert EmailTemplate.get(name="Password Reset Confirmation").body_text == before


def test_template_saved_and_rendered_with_money(db: str) -> None:
    save_template(
        "Invoice Created",
        "Invoice {{ invoice.number }}",
        "Total {{ invoice.total }} for {{ client.full_name }}",
        "",
        SYSTEM_CLI,
    )
    client = _client()
    invoice = _invoice(client)
    with writer():
        queue("Invoice Created", [Notice(client.id, invoice.id)])
    email = Email.get()
    assert email.subject == "Invoice 1001"
    assert email.body_text == "Total $12.00 USD for Ana1 Núñez"


def test_queue_belongs_to_the_callers_transaction(db: str) -> None:
    client = _client()
    with pytest.raises(RuntimeError), writer():
        queue("Password Reset Confirmation", [Notice(client.id)])
        raise RuntimeError("the change that caused the email failed")
    assert Email.select().count() == 0


def test_unique_key_queues_once(db: str) -> None:
    client = _client()
    assert _queue_one(client, key="notice:1:first") == 1
    assert _queue_one(client, key="notice:1:first") == 0
    assert Email.select().count() == 1


def test_invoice_mail_goes_to_the_billing_contact(db: str) -> None:
    client = _client()
    contact = Contact.create(
        client=client, first_name="Bill", last_name="Ing", email="billing@example.org"
    )
    Client.update(billing_contact=contact).where(Client.id == client.id).execute()
    invoice = _invoice(client)
    with writer():
        queue("Invoice Created", [Notice(client.id, invoice.id)])
        queue("Password Reset Confirmation", [Notice(client.id)])
    assert dict(Email.select(Email.template, Email.to).tuples()) == {
        "Invoice Created": "billing@example.org",
        "Password Reset Confirmation": "ana1@example.com",
    }


def test_queue_costs_a_fixed_number_of_queries(db: str) -> None:
    counts = []
    for n in (5, 60):
        clients = [_client(1000 * n + i) for i in range(n)]
        invoices = [_invoice(c, f"{n}-{i}") for i, c in enumerate(clients)]
        with count_queries() as counter, writer():
            queue(
                "Invoice Created",
                [Notice(c.id, i.id) for c, i in zip(clients, invoices, strict=True)],
            )
        counts.append(counter.count)
    assert counts[0] == counts[1], counts


def test_smtp_delivery_with_headers(
    db: str, smtp_server: tuple[SmtpRecorder, SmtpConfig], clock: Clock
) -> None:
    recorder, config = smtp_server
    save_settings({"company_name": "Demo Hosting", "company_email": "billing@demo.example"})
    client = _client()
    invoice = _invoice(client)
    with writer():
        queue("Invoice Created", [Notice(client.id, invoice.id)])
    result = flush(SmtpTransport(config, "billing@demo.example"), now=clock)
    assert (result.sent, result.failed) == (1, 0)
    [message] = recorder.parsed()
    email = Email.get()
    assert message["To"] == "ana1@example.com"
    assert message["From"] == "Demo Hosting <billing@demo.example>"
    assert message["Subject"] == "Invoice #1001 from Demo Hosting"
    assert message["Message-ID"] == email.message_id
    assert email.message_id.endswith("@demo.example>")
    body = message.get_body(("plain",)).get_content()  # beside the invoice's PDF
    assert "Total: $12.00 USD" in body and "VPS 2GB" in body and "Dear Ana1" in body
    assert recorder.messages[0].mail_from == "billing@demo.example"
    assert (email.status, email.attempts, email.sent_at) == ("sent", 1, clock.now)


def test_451_twice_then_250_is_sent_on_the_third_attempt(
    db: str, smtp_server: tuple[SmtpRecorder, SmtpConfig], clock: Clock
) -> None:
    recorder, config = smtp_server
    recorder.replies = ["451 4.3.0 try again later", "451 4.3.0 still busy"]
    _queue_one(_client())
    transport = SmtpTransport(config, "billing@example.com")
    assert flush(transport, now=clock).retried == 1
    email = Email.get()
    assert (email.status, email.attempts, email.last_error) == (
        "queued",
        1,
        "451 4.3.0 try again later",
    )
    assert flush(transport, now=clock).sent == 0  # back-off: not due yet
    clock.advance(minutes=1)
    assert flush(transport, now=clock).retried == 1
    clock.advance(minutes=1)
    assert flush(transport, now=clock).sent == 0  # second back-off is 2 minutes
    clock.advance(minutes=1)
    assert flush(transport, now=clock).sent == 1
    email = Email.get()
    assert (email.status, email.attempts, email.last_error) == ("sent", 3, "")
    assert len(recorder.messages) == 1


def test_550_fails_without_retry(
    db: str, smtp_server: tuple[SmtpRecorder, SmtpConfig], clock: Clock
) -> None:
    recorder, config = smtp_server
    recorder.replies = ["550 5.1.1 no such user"]
    _queue_one(_client())
    transport = SmtpTransport(config, "billing@example.com")
    result = flush(transport, now=clock)
    assert (result.sent, result.failed) == (0, 1)
    assert "550 5.1.1 no such user" in result.errors[0]
    clock.advance(days=1)
    assert flush(transport, now=clock).sent == 0
    email = Email.get()
    assert (email.status, email.attempts, email.last_error) == (
        "failed",
        1,
        "550 5.1.1 no such user",
    )
    assert recorder.messages == []


def test_unreachable_server_retries(db: str, clock: Clock) -> None:
    _queue_one(_client())
    config = SmtpConfig(host="127.0.0.1", port=1, security="none", timeout=2)
    result = flush(SmtpTransport(config, "billing@example.com"), now=clock)
    assert result.retried == 1
    email = Email.get()
    assert email.status == "queued" and "cannot connect" in email.last_error


def test_refused_login_releases_the_emails_for_a_retry(
    db: str, smtp_refusing_login: SmtpConfig, clock: Clock
) -> None:
    """A 535 at login is the server's answer to us, not to the email: nothing is
    left stuck in sending, nothing is marked failed, the error is reported."""
    _queue_one(_client(1))
    _queue_one(_client(2))
    result = flush(SmtpTransport(smtp_refusing_login, "billing@example.com"), now=clock)
    assert (result.sent, result.retried, result.failed) == (0, 2, 0)
    assert result.session_error.startswith("535")
    assert [(e.status, e.lease_owner, e.attempts) for e in Email.select()] == [
        ("queued", "", 0),  # no attempt used up: bad credentials never give an email up
        ("queued", "", 0),
    ]
    assert all("535" in e.last_error for e in Email.select())


def test_a_slow_server_keeps_the_lease_so_no_other_flusher_sends_twice(
    db: str, smtp_server: tuple[SmtpRecorder, SmtpConfig], clock: Clock
) -> None:
    """Two minutes a message (one connection: the clock is the test's): the batch
    outlives one lease, and is renewed before then."""
    from rules.mail.delivery import _lease
    from store.settings import load_settings

    recorder, config = smtp_server
    for n in range(6):
        _queue_one(_client(n), key=f"k{n}")
    stolen: list[int] = []

    class Slow(SmtpTransport):
        def send(self, message: object, to: str, key: int = 0) -> None:
            super().send(message, to, key)  # type: ignore[arg-type]
            clock.advance(minutes=2)
            stolen.extend(e.id for e in _lease("other:1", clock(), 100, load_settings()).emails)

    result = flush(Slow(replace(config, connections=1), "billing@example.com"), now=clock)
    assert result.sent == 6 and stolen == []
    assert len(recorder.messages) == 6
    assert {e.status for e in Email.select()} == {"sent"}


def test_emails_another_flusher_took_over_are_not_sent_again(
    db: str, smtp_server: tuple[SmtpRecorder, SmtpConfig], clock: Clock
) -> None:
    """One send outlives the whole lease (the flusher could not renew it); another flusher
    takes the batch over: we send none of the rest, and do not record the one that left,
    which the other sends again (at least once, the same Message-ID)."""
    from rules.mail.delivery import _lease
    from store.settings import load_settings

    recorder, config = smtp_server
    for n in range(5):
        _queue_one(_client(n), key=f"k{n}")
    stolen: list[int] = []

    class Stalls(SmtpTransport):
        def send(self, message: object, to: str, key: int = 0) -> None:
            super().send(message, to, key)  # type: ignore[arg-type]
            if not stolen:
                clock.advance(minutes=6)
                stolen.extend(e.id for e in _lease("other:1", clock(), 100, load_settings()).emails)

    result = flush(Stalls(replace(config, connections=1), "billing@example.com"), now=clock)
    assert len(stolen) == 5 and len(recorder.messages) == 1
    assert result.sent == 0
    assert {(e.status, e.lease_owner) for e in Email.select()} == {("sending", "other:1")}
    first_id = recorder.parsed()[0]["Message-ID"]
    clock.advance(minutes=6)  # the other flusher died too: its lease runs out
    assert flush(SmtpTransport(config, "billing@example.com"), now=clock).sent == 5
    again = [m["Message-ID"] for m in recorder.parsed()]
    assert len(again) == 6 and again.count(first_id) == 2 and len(set(again)) == 5


def test_crash_between_commit_and_delivery(
    db: str, smtp_server: tuple[SmtpRecorder, SmtpConfig], clock: Clock
) -> None:
    recorder, config = smtp_server
    client = _client()
    _queue_one(client)  # committed; the process "dies" before flushing
    # A flusher leased a second email and died mid-send: its lease runs out.
    _queue_one(client, key="second")
    Email.update(status="sending", lease_owner="dead:1", next_attempt_at=clock.now + LEASE).where(
        Email.unique_key == "second"
    ).execute()
    transport = SmtpTransport(config, "billing@example.com")
    assert flush(transport, now=clock).sent == 1
    clock.advance(minutes=6)
    assert flush(transport, now=clock).sent == 1
    assert Email.select().where(Email.status == "sent").count() == 2
    assert len(recorder.messages) == 2


def test_two_concurrent_flushers_send_each_email_once(
    db: str, smtp_server: tuple[SmtpRecorder, SmtpConfig]
) -> None:
    recorder, config = smtp_server
    recorder.delay = 0.005
    clients = [_client(i) for i in range(40)]
    with writer():
        queue("Password Reset Confirmation", [Notice(c.id) for c in clients])
    results = []

    def run() -> None:
        results.append(flush(SmtpTransport(config, "billing@example.com"), batch=5))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(r.sent for r in results) == 40
    assert all(r.sent > 0 for r in results), [r.sent for r in results]  # both really worked
    ids = [m["Message-ID"] for m in recorder.parsed()]
    assert len(ids) == len(set(ids)) == 40
    assert Email.select().where(Email.status == "sent").count() == 40


def test_maildir_when_no_smtp(db: str, tmp_path: Path, clock: Clock) -> None:
    _queue_one(_client())
    box_path = tmp_path / "Maildir"
    assert flush(MaildirTransport(box_path), now=clock).sent == 1
    box = mailbox.Maildir(str(box_path), create=False)
    [message] = list(box)
    assert message["To"] == "ana1@example.com"
    body = message.get_payload(decode=True).decode()
    assert "password of your client account was changed" in body


def test_sensitive_body_is_masked_once_delivered(db: str, tmp_path: Path, clock: Clock) -> None:
    client = _client()
    with writer():
        queue(
            "Automated Password Reset",
            [Notice(client.id, extras=(("new_password", "S3cret-Pa55"),))],
        )
    assert "S3cret-Pa55" in Email.get().body_text  # needed until delivered
    box_path = tmp_path / "Maildir"
    flush(MaildirTransport(box_path), now=clock)
    [message] = list(mailbox.Maildir(str(box_path), create=False))
    assert "S3cret-Pa55" in message.get_payload(decode=True).decode()  # the client got it
    email = Email.get()
    assert "S3cret-Pa55" not in email.body_text and MASK in email.body_text
    assert email.masked_body == ""
    with pytest.raises(RuleError, match="cannot be resent"):
        resend(email.id, SYSTEM_CLI)


def test_resend_queues_a_copy(db: str, tmp_path: Path, clock: Clock) -> None:
    _queue_one(_client())
    flush(MaildirTransport(tmp_path / "m"), now=clock)
    copy = resend(Email.get().id, SYSTEM_CLI)
    assert copy.status == "queued" and copy.to == "ana1@example.com"
    assert Email.select().count() == 2


def test_mass_mail_honours_opt_out_and_transactional_ignores_it(db: str) -> None:
    keen = _client(1, country="GB")
    opted = _client(2, country="GB", marketing_opt_out=True)
    _client(3, country="DE")
    _client(4, country="GB", status="Closed")
    flt = MassMailFilter.parse(["country=gb"])
    plan = preview(flt, "Mass Mail")
    assert (plan.count, plan.skipped_opt_out, plan.sample_to) == (1, 1, keen.email)
    assert plan.sample is not None and "Dear Ana1" in plan.sample.body_text
    assert send_mass_mail(flt, "Mass Mail", SYSTEM_CLI) == 1
    assert [e.to for e in Email.select()] == [keen.email]
    # Not marketing: the opt-out does not apply.
    assert send_mass_mail(flt, "Mass Mail", SYSTEM_CLI, marketing=False) == 2
    # Transactional mail always reaches the opted-out client.
    assert _queue_one(opted) == 1


def test_mass_mail_filters(db: str) -> None:
    from store.models import Product, Service

    a = _client(1)
    _client(2)
    Service.create(
        client=a, product=Product.create(name="VPS"), status="Active", payment_method="banktransfer"
    )
    assert preview(MassMailFilter.parse(["has_active_product=yes"]), "Mass Mail").recipient_ids == [
        a.id
    ]
    assert preview(MassMailFilter.parse(["has_active_product=no"]), "Mass Mail").count == 1
    assert preview(MassMailFilter.parse(["status=Closed"]), "Mass Mail").count == 0
    with pytest.raises(RuleError):
        MassMailFilter.parse(["colour=blue"])


def test_mass_mail_is_rate_limited(db: str, tmp_path: Path, clock: Clock) -> None:
    save_settings({"mail_rate_limit": 3, "mail_rate_window_seconds": 30})
    clients = [_client(i) for i in range(5)]
    send_mass_mail(MassMailFilter(), "Mass Mail", SYSTEM_CLI)
    with writer():
        queue("Password Reset Confirmation", [Notice(c.id) for c in clients[:2]])
    transport = MaildirTransport(tmp_path / "m")
    first = flush(transport, now=clock)
    assert (first.sent, first.deferred) == (5, 2)  # 2 transactional + 3 marketing
    clock.advance(seconds=10)
    assert flush(transport, now=clock).sent == 0
    clock.advance(seconds=21)
    assert flush(transport, now=clock).sent == 2


def test_flush_with_wait_paces_until_done(db: str, tmp_path: Path, clock: Clock) -> None:
    save_settings({"mail_rate_limit": 2, "mail_rate_window_seconds": 30})
    for i in range(5):
        _client(i)
    send_mass_mail(MassMailFilter(), "Mass Mail", SYSTEM_CLI)
    naps: list[float] = []

    def sleep(seconds: float) -> None:
        naps.append(seconds)
        clock.advance(seconds=seconds)

    result = flush(MaildirTransport(tmp_path / "m"), now=clock, wait=True, sleep=sleep)
    assert (result.sent, result.deferred) == (5, 0)
    assert len(naps) >= 2  # it really waited for the windows


def test_a_batch_costs_the_same_statements_whatever_its_size(
    db: str, tmp_path: Path, clock: Clock
) -> None:
    """The outcomes of a leased batch are recorded in one statement: a batch of 1 and a
    batch of 100 (sent, one failed, one sensitive and masked) cost the same statements."""
    counts = []
    for n in (1, 100):
        clients = [_client(1000 * n + i) for i in range(n)]
        with writer():
            queue("Password Reset Confirmation", [Notice(c.id) for c in clients])
            queue(
                "Automated Password Reset",
                [Notice(clients[0].id, extras=(("new_password", "S3cret-Pa55"),))],
            )
        Email.update(to="nobody@").where(Email.id == Email.select(fn.MIN(Email.id))).execute()
        with count_queries() as counter:
            result = flush(MaildirTransport(tmp_path / f"m{n}"), now=clock, batch=200)
        assert (result.sent, result.failed) == (n, 1), result
        assert MASK in Email.get(template="Automated Password Reset").body_text
        counts.append(counter.count)
        Email.delete().execute()
    assert counts[0] == counts[1], counts


class PeerRecorder(SmtpRecorder):
    """Also notes which connection (the client's port) carried each message."""

    def __init__(self) -> None:
        super().__init__()
        self.peers: list[object] = []

    async def handle_DATA(self, server: object, session: Any, envelope: object) -> str:
        self.peers.append(session.peer)
        return await super().handle_DATA(server, session, envelope)


def _flush_to_a_server(
    handler: SmtpRecorder,
    clock: Clock,
    *,
    emails: int,
    connections: int,
    batch: int,
    server_class: Any = None,
) -> Any:
    """Queue ``emails`` password-reset emails and flush them to a real aiosmtpd server
    (``handler``, served by ``server_class``) over a pool of ``connections``."""
    controller = smtp_controller(handler, server_class=server_class)
    try:
        config = SmtpConfig(
            host="127.0.0.1", port=controller.port, security="none", connections=connections
        )
        clients = [_client(i) for i in range(emails)]
        with writer():
            queue("Password Reset Confirmation", [Notice(c.id) for c in clients])
        return flush(SmtpTransport(config, "billing@example.com"), now=clock, batch=batch)
    finally:
        controller.stop()


def test_smtp_delivery_goes_over_a_small_pool_of_sessions_each_reused(
    db: str, clock: Clock
) -> None:
    """``connections`` sessions at most, each carrying many messages, across batches;
    every email arrives once."""
    recorder = PeerRecorder()
    recorder.delay = 0.01
    result = _flush_to_a_server(recorder, clock, emails=60, connections=3, batch=20)
    assert result.sent == 60
    ids = [m["Message-ID"] for m in recorder.parsed()]
    assert len(ids) == len(set(ids)) == 60
    per_session = collections.Counter(recorder.peers)
    assert 1 < len(per_session) <= 3, per_session
    assert min(per_session.values()) >= 5, per_session  # reused, not one per message


class _Gate:
    """What a limited SMTP server lets in: at most ``limit`` sessions at once, none once
    ``closed``; the connections it turned away."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active = 0
        self.closed = False
        self.turned_away = 0


def _limited_server(gate: _Gate) -> type:
    """An aiosmtpd server class that greets a connection past the gate with 421 and
    hangs up (as a server with a per-client connection limit does, e.g. Postfix's
    smtpd_client_connection_count_limit), and answers 421 to the DATA of an open session
    once the gate is closed."""
    from aiosmtpd.smtp import SMTP

    class Limited(SMTP):  # type: ignore[misc]
        turned_away = False

        def connection_made(self, transport: Any) -> None:
            if gate.closed or gate.active >= gate.limit:
                self.turned_away = True
                gate.turned_away += 1
                transport.write(b"421 4.7.0 too many connections from your host\r\n")
                transport.close()
                return
            gate.active += 1
            super().connection_made(transport)

        def connection_lost(self, error: Exception | None) -> None:
            if self.turned_away:
                return
            gate.active -= 1
            super().connection_lost(error)

        async def smtp_DATA(self, arg: str) -> None:
            if gate.closed:
                await self.push("421 4.3.2 shutting down")
                self.transport.close()
                return
            await super().smtp_DATA(arg)

    return Limited


def test_a_session_refused_mid_flush_a_server_taking_fewer_connections_than_the_pool(
    db: str, clock: Clock
) -> None:
    """A server that takes 2 sessions from us when the pool has 4: the senders it turns
    away leave the pool and hand their message to the others, so every email is sent in
    this flush, none put off to a later one, and no attempt is used."""
    gate = _Gate(limit=2)
    recorder = SmtpRecorder()
    result = _flush_to_a_server(
        recorder, clock, emails=40, connections=4, batch=10, server_class=_limited_server(gate)
    )
    assert gate.turned_away >= 1
    assert (result.sent, result.retried, result.failed) == (40, 0, 0)
    assert result.session_error == "" and result.errors == []
    assert len(recorder.messages) == 40
    assert {(e.status, e.attempts) for e in Email.select()} == {("sent", 1)}


def test_a_session_refused_mid_flush_a_server_that_stops_taking_any_ends_the_flush(
    db: str, clock: Clock
) -> None:
    """The server goes away mid-flush (421 to the open sessions, 421 to every new one):
    the flush ends with the server's words as ``session_error``; the emails not sent are
    back in the queue (the one refused at DATA with an attempt used, the rest without),
    none lost; the next flush, once the server is back, sends them all."""
    gate = _Gate(limit=4)
    recorder = SmtpRecorder()
    accepted = 0

    class Closing(SmtpRecorder):
        async def handle_DATA(self, server: object, session: Any, envelope: object) -> str:
            nonlocal accepted
            accepted += 1
            if accepted == 15:
                gate.closed = True
            return await recorder.handle_DATA(server, session, envelope)

    controller = smtp_controller(Closing(), server_class=_limited_server(gate))
    try:
        config = SmtpConfig(host="127.0.0.1", port=controller.port, security="none", connections=2)
        clients = [_client(i) for i in range(60)]
        with writer():
            queue("Password Reset Confirmation", [Notice(c.id) for c in clients])
        result = flush(SmtpTransport(config, "billing@example.com"), now=clock, batch=20)
        assert "421" in result.session_error
        assert 15 <= result.sent < 60 and result.sent == len(recorder.messages)
        statuses = collections.Counter(e.status for e in Email.select())
        assert statuses == {"sent": result.sent, "queued": 60 - result.sent}
        unsent = list(Email.select().where(Email.status == "queued"))
        assert all(e.attempts <= 1 for e in unsent)
        # Only those refused at DATA used an attempt: one per open session at most.
        assert 1 <= sum(e.attempts for e in unsent) <= config.connections
        gate.closed = False
        clock.advance(hours=1)
        again = flush(SmtpTransport(config, "billing@example.com"), now=clock)
    finally:
        controller.stop()
    assert again.sent == 60 - result.sent and again.session_error == ""
    ids = [m["Message-ID"] for m in recorder.parsed()]
    assert len(ids) == len(set(ids)) == 60


def test_maildir_flushes_each_file_then_new_once_per_batch(
    db: str, tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The Maildir protocol with the folder's flush batched: every message file is flushed
    in tmp/ before it is renamed into new/, and new/ itself once per batch."""
    import os
    import stat

    flushed: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        mode = os.fstat(fd).st_mode
        flushed.append("folder" if stat.S_ISDIR(mode) else os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    clients = [_client(i) for i in range(25)]
    with writer():
        queue("Password Reset Confirmation", [Notice(c.id) for c in clients])
    box = tmp_path / "Maildir"
    assert flush(MaildirTransport(box), now=clock, batch=10).sent == 25
    files = [f for f in flushed if f != "folder"]
    assert len(files) == 25 and all(Path(f).parent == box / "tmp" for f in files)
    assert flushed.count("folder") == 3  # batches of 10, 10 and 5
    assert sorted(p.name for p in (box / "new").iterdir()) == sorted(Path(f).name for f in files)
    assert list((box / "tmp").iterdir()) == []


def test_a_large_batch_is_recorded_whole(db: str, tmp_path: Path, clock: Clock) -> None:
    """A batch of 5,000 (8 values an outcome: past SQLite's 32,766 bound parameters in one
    statement) is delivered and recorded whole, in one transaction."""
    import sqlite3

    from rules.mail.outbox import OUTBOX_COLUMNS
    from store.bulk import bulk_insert
    from store.db import database, is_sqlite

    stamp = utcnow()
    rows = [
        (None, "Marketing", f"c{n}@example.com", f"s{n}", "body", "", "", None, False)
        + (stamp, stamp, "queued", "", 0, "", "")
        for n in range(5000)
    ]
    with writer():
        bulk_insert(Email, OUTBOX_COLUMNS, rows)
    if is_sqlite():  # SQLite's default bound (3.32+); some builds raise it, as this one may
        database.connection().setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 32_766)
    result = flush(MaildirTransport(tmp_path / "Maildir"), now=clock, batch=5000)
    assert (result.sent, result.errors) == (5000, [])
    assert len(list((tmp_path / "Maildir" / "new").iterdir())) == 5000
    assert {e.status for e in Email.select(Email.status)} == {"sent"}


def test_a_maildir_file_that_cannot_be_flushed_is_retried_not_delivered(
    db: str, tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A message is delivered only once its file is on the disk: one whose fsync fails at
    the batch's end (an I/O error) is not renamed into new/, its file is removed, and its
    email is retried, not marked sent; the rest of the batch is delivered. The retry
    carries the same Message-ID."""
    import errno
    import os

    real_fsync = os.fsync
    failed: list[str] = []

    def fsync(fd: int) -> None:
        path = os.readlink(f"/proc/self/fd/{fd}")
        if Path(path).parent == tmp_path / "Maildir" / "tmp" and not failed:
            failed.append(Path(path).name)
            raise OSError(errno.EIO, "Input/output error")
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    for n in range(5):
        _queue_one(_client(n), key=f"k{n}")
    box = tmp_path / "Maildir"
    result = flush(MaildirTransport(box), now=clock)
    assert (result.sent, result.retried, result.failed) == (4, 1, 0)
    assert len(failed) == 1
    assert list((box / "tmp").iterdir()) == []
    assert len(list((box / "new").iterdir())) == 4
    [retried] = Email.select().where(Email.status == "queued")
    assert "input/output error" in retried.last_error and retried.attempts == 1
    clock.advance(minutes=5)
    assert flush(MaildirTransport(box), now=clock).sent == 1
    ids = [m["Message-ID"] for m in mailbox.Maildir(str(box), create=False)]
    assert len(ids) == len(set(ids)) == 5
    assert Email.get_by_id(retried.id).message_id in ids


def test_a_maildir_batch_that_does_not_end_leaves_nothing_in_tmp(
    db: str, tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A flush stopped while the batch's files are moved into new/ (Ctrl-C on ``gobiller
    mail flush``): the files not yet moved are removed from tmp/ (they can hold a
    password, and nothing else would ever remove them), and their emails are delivered
    by the next flush once the lease runs out; none lost."""
    import os

    real_rename = os.rename
    renamed: list[str] = []

    def rename(source: Any, target: Any) -> None:
        if len(renamed) == 2:
            raise KeyboardInterrupt
        real_rename(source, target)
        renamed.append(Path(target).name)

    monkeypatch.setattr(os, "rename", rename)
    for n in range(5):
        _queue_one(_client(n), key=f"k{n}")
    box = tmp_path / "Maildir"
    with pytest.raises(KeyboardInterrupt):
        flush(MaildirTransport(box), now=clock)
    assert list((box / "tmp").iterdir()) == []
    assert sorted(p.name for p in (box / "new").iterdir()) == sorted(renamed)
    monkeypatch.setattr(os, "rename", real_rename)
    clock.advance(minutes=6)
    assert flush(MaildirTransport(box), now=clock).sent == 5
    assert list((box / "tmp").iterdir()) == []
    ids = {m["Message-ID"] for m in mailbox.Maildir(str(box), create=False)}
    assert ids == {e.message_id for e in Email.select()}
