"""Billing automation: each rule's defaults and each per-client setting making its difference."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from typing import Any

import pytest
from playhouse.test_utils import count_queries

from rules.billing.automation import business_date
from rules.billing.cron import RULE_NAMES, run_cron, run_rules
from store.locks import cron_lock
from store.models import (
    ActionLedger,
    AuditLog,
    Client,
    ClientGroup,
    CronRun,
    Currency,
    Domain,
    Email,
    Invoice,
    InvoiceItem,
    Product,
    Service,
    StoredCard,
    TaxRule,
    Transaction,
)
from store.settings import Settings, load_settings, save_settings

DAY = dt.date(2026, 3, 10)
_seq = iter(range(1, 10**6))


def client(**extra: Any) -> Client:
    usd = Currency.get_or_create(code="USD", defaults={"is_default": True})[0]
    n = next(_seq)
    return Client.create(
        first_name=f"C{n}", last_name="Test", email=f"c{n}@example.com", currency=usd, **extra
    )


def service(
    owner: Client,
    due: dt.date,
    amount: int = 10_000,
    method: str = "banktransfer",
    status: str = "Active",
    cycle: str = "Monthly",
) -> Service:
    product = Product.get_or_create(name="Hosting")[0]
    return Service.create(
        client=owner,
        product=product,
        status=status,
        billing_cycle=cycle,
        amount=amount,
        next_due_date=due,
        payment_method=method,
    )


def invoice(
    owner: Client,
    due: dt.date,
    subtotal: int = 10_000,
    method: str = "banktransfer",
    status: str = "Unpaid",
) -> Invoice:
    inv = Invoice.create(
        client=owner,
        number=f"T{next(_seq)}",
        date=due - dt.timedelta(days=14),
        due_date=due,
        status=status,
        payment_method=method,
        subtotal=subtotal,
        total=subtotal,
    )
    InvoiceItem.create(
        invoice=inv, type="Hosting", description="Hosting", amount=subtotal, taxed=True
    )
    return inv


def run(
    day: dt.date = DAY, only: tuple[str, ...] = RULE_NAMES, dry_run: bool = False, **kw: Any
) -> Any:
    """The rules for ``day``; ``dry_run``: the whole run (``run_cron``), rolled back."""
    if dry_run:
        return run_cron(settings=load_settings(), day=day, only=only, dry_run=True, **kw)
    return run_rules(day, load_settings(), only=only, **kw)


def sent(template: str) -> list[str]:
    return [e.to for e in Email.select().where(Email.template == template).order_by(Email.id)]


# ------------------------------------------------------------------ invoice generation


def test_invoices_14_days_before_due_not_15(db: str) -> None:
    a, b = client(), client()
    service(a, DAY + dt.timedelta(days=14))
    service(b, DAY + dt.timedelta(days=15))
    run(only=("invoice",))
    assert [i.client_id for i in Invoice.select()] == [a.id]
    inv = Invoice.get()
    assert (inv.date, inv.due_date, inv.total, inv.status) == (
        DAY,
        DAY + dt.timedelta(days=14),
        10_000,
        "Unpaid",
    )
    assert sent("Invoice Created") == [a.email]


def test_grouping_and_separate_invoices(db: str) -> None:
    due = DAY + dt.timedelta(days=10)
    together = client()
    service(together, due)
    service(together, due, amount=500)
    service(together, due, method="mailin")  # another payment method: its own invoice
    apart = client(separate_invoices=True)
    service(apart, due)
    service(apart, due)
    grouped = ClientGroup.create(name="Resellers", separate_invoices=True)
    reseller = client(group=grouped)
    service(reseller, due)
    service(reseller, due)
    run(only=("invoice",))
    per_client = {
        c.id: Invoice.select().where(Invoice.client == c.id).count()
        for c in (together, apart, reseller)
    }
    assert per_client == {together.id: 2, apart.id: 2, reseller.id: 2}
    shared = Invoice.get(
        (Invoice.client == together.id) & (Invoice.payment_method == "banktransfer")
    )
    assert (
        shared.subtotal == 10_500
        and InvoiceItem.select().where(InvoiceItem.invoice == shared.id).count() == 2
    )


def test_no_item_is_invoiced_twice(db: str) -> None:
    service(client(), DAY + dt.timedelta(days=3))
    for day in (DAY, DAY, DAY + dt.timedelta(days=1)):
        run(day, only=("invoice",))
    assert Invoice.select().count() == 1


def test_status_never_stops_invoicing(db: str) -> None:
    closed = client(status="Closed")
    service(closed, DAY + dt.timedelta(days=1))
    service(client(), DAY + dt.timedelta(days=1), status="Terminated")
    run(only=("invoice",))
    assert [i.client_id for i in Invoice.select()] == [closed.id]


def test_group_discount(db: str) -> None:
    vip = ClientGroup.create(name="VIP", discount_bp=1000)
    service(client(group=vip), DAY + dt.timedelta(days=1), amount=20_000)
    run(only=("invoice",))
    assert Invoice.get().total == 18_000


# ------------------------------------------------------------------ tax


def _taxed_invoice(settings: dict[str, Any], **client_extra: Any) -> Invoice:
    save_settings(settings)
    TaxRule.create(level=1, name="VAT", country="GB", state="", rate_e4=100_000)
    TaxRule.create(level=2, name="Extra", country="GB", state="", rate_e4=200_000)
    TaxRule.create(level=1, name="Other", country="", state="", rate_e4=50_000)
    service(client(country="GB", **client_extra), DAY + dt.timedelta(days=1), amount=10_000)
    run(only=("invoice",))
    return Invoice.get()


def test_tax_exclusive_compound(db: str) -> None:
    inv = _taxed_invoice({"tax_compound": True})
    assert (inv.subtotal, inv.tax, inv.tax2, inv.total) == (10_000, 1_000, 2_200, 13_200)


def test_tax_exclusive_not_compound(db: str) -> None:
    inv = _taxed_invoice({})
    assert (inv.tax, inv.tax2, inv.total) == (1_000, 2_000, 13_000)


def test_tax_inclusive(db: str) -> None:
    inv = _taxed_invoice({"tax_inclusive": True})
    assert inv.total == 10_000 and inv.subtotal + inv.tax + inv.tax2 == 10_000
    assert (inv.tax, inv.tax2) == (769, 1_538)  # 10000 / 1.3 = 7692.31 net


def test_tax_exempt_client_is_untaxed(db: str) -> None:
    inv = _taxed_invoice({}, tax_exempt=True)
    assert (inv.tax, inv.tax2, inv.total) == (0, 0, 10_000)
    assert not InvoiceItem.get().taxed


def test_most_specific_tax_rule_wins() -> None:
    from rules.billing.tax import TaxTable

    table = TaxTable([(1, "", "", 1), (1, "US", "", 2), (1, "US", "CA", 3)])
    s = Settings()
    assert table.rates_for("US", "CA", exempt=False, settings=s).level1_e4 == 3
    assert table.rates_for("US", "TX", exempt=False, settings=s).level1_e4 == 2
    assert table.rates_for("FR", "", exempt=False, settings=s).level1_e4 == 1
    assert table.rates_for("US", "CA", exempt=True, settings=s).level1_e4 == 0


# ------------------------------------------------------------------ reminders and notices


def test_payment_reminder_goes_even_with_overdue_emails_disabled(db: str) -> None:
    keen, quiet = client(), client(overdue_notices_disabled=True)
    for c in (keen, quiet):
        invoice(c, DAY + dt.timedelta(days=7))
    run(only=("notice",))
    assert sorted(sent("Invoice Payment Reminder")) == sorted([keen.email, quiet.email])


def test_overdue_notices_respect_the_client_setting(db: str) -> None:
    keen, quiet = client(), client(overdue_notices_disabled=True)
    for c in (keen, quiet):
        invoice(c, DAY - dt.timedelta(days=1))
    summary = run(only=("notice",))
    assert sent("First Invoice Overdue Notice") == [keen.email]
    assert summary.rules["notice"].skipped == 1


def test_only_the_latest_stage_is_sent_never_a_backlog(db: str) -> None:
    c = client()
    invoice(c, DAY - dt.timedelta(days=3))  # reminder, first and second were missed
    run(only=("notice",))
    assert sent("Third Invoice Overdue Notice") == [c.email]
    assert sent("Invoice Payment Reminder") == sent("First Invoice Overdue Notice") == []
    run(DAY + dt.timedelta(days=1), only=("notice",))
    assert len(sent("Third Invoice Overdue Notice")) == 1


def test_stages_can_be_disabled(db: str) -> None:
    save_settings({"payment_reminder_days": 0, "overdue_notice_days": [1, 0, 3]})
    c = client()
    invoice(c, DAY + dt.timedelta(days=7))
    invoice(c, DAY - dt.timedelta(days=2))  # second notice day, but it is disabled
    run(only=("notice",))
    assert sent("First Invoice Overdue Notice") == [c.email]  # the latest enabled stage
    assert sent("Invoice Payment Reminder") == sent("Second Invoice Overdue Notice") == []


def test_paid_invoices_get_no_notices(db: str) -> None:
    invoice(client(), DAY - dt.timedelta(days=1), status="Paid")
    run(only=("notice", "late_fee", "capture"))
    assert Email.select().count() == 0 and InvoiceItem.select().count() == 1


# ------------------------------------------------------------------ late fees


def test_late_fee_percentage_once_per_invoice(db: str) -> None:
    inv = invoice(client(), DAY - dt.timedelta(days=5), subtotal=12_345)
    later = invoice(client(), DAY - dt.timedelta(days=4))  # not late enough yet
    run(only=("late_fee",))
    fees = list(InvoiceItem.select().where(InvoiceItem.type == "LateFee"))
    assert [(f.invoice_id, f.amount) for f in fees] == [(inv.id, 1_235)]  # 10% rounded half-up
    run(DAY + dt.timedelta(days=1), only=("late_fee",))  # the first again? never
    fees = list(InvoiceItem.select().where(InvoiceItem.type == "LateFee").order_by(InvoiceItem.id))
    assert [(f.invoice_id, f.amount) for f in fees] == [(inv.id, 1_235), (later.id, 1_000)]
    assert Invoice.get_by_id(inv.id).total == 12_345 + 1_235


def test_late_fee_minimum_and_fixed(db: str) -> None:
    save_settings({"late_fee_minimum": "5.00"})
    small = invoice(client(), DAY - dt.timedelta(days=6), subtotal=1_000)  # 10% = 1.00 < 5.00
    run(only=("late_fee",))
    assert InvoiceItem.get(InvoiceItem.type == "LateFee").amount == 500
    save_settings({"late_fee_type": "fixed", "late_fee_amount": "7.50", "late_fee_minimum": "0"})
    fixed = invoice(client(), DAY - dt.timedelta(days=6))
    run(DAY + dt.timedelta(days=1), only=("late_fee",))
    assert (
        InvoiceItem.get((InvoiceItem.type == "LateFee") & (InvoiceItem.invoice == fixed.id)).amount
        == 750
    )
    assert small.id != fixed.id


def test_late_fee_exempt_client(db: str) -> None:
    invoice(client(late_fees_exempt=True), DAY - dt.timedelta(days=9))
    summary = run(only=("late_fee",))
    assert InvoiceItem.select().where(InvoiceItem.type == "LateFee").count() == 0
    assert summary.rules["late_fee"].skipped == 1


def test_late_fee_taxed_unless_exempt_or_disabled(db: str) -> None:
    for taxed_setting, exempt, expected_taxed in (
        (True, False, True),
        (True, True, False),
        (False, False, False),
    ):
        save_settings({"late_fee_taxed": taxed_setting})
        inv = invoice(client(tax_exempt=exempt), DAY - dt.timedelta(days=5))
        Invoice.update(tax_rate1_e4=200_000).where(Invoice.id == inv.id).execute()
        run(only=("late_fee",))
        fee = InvoiceItem.get((InvoiceItem.type == "LateFee") & (InvoiceItem.invoice == inv.id))
        assert fee.taxed is expected_taxed
        total = Invoice.get_by_id(inv.id)
        expected_tax = (10_000 + (1_000 if expected_taxed else 0)) * 20 // 100
        assert total.tax == expected_tax
        ActionLedger.delete().execute()


# ------------------------------------------------------------------ card capture


def test_capture_approve_decline_disabled_and_no_card(db: str) -> None:
    ok = client(payment_method="sandboxcard")
    StoredCard.create(
        client=ok, gateway="sandboxcard", token="ok_123", last4="4242", expiry="2030-01"
    )
    bad = client(payment_method="sandboxcard")
    StoredCard.create(
        client=bad, gateway="sandboxcard", token="tok_decline", last4="0002", expiry="2030-01"
    )
    off = client(payment_method="sandboxcard", cc_processing_disabled=True)
    StoredCard.create(
        client=off, gateway="sandboxcard", token="ok_9", last4="1111", expiry="2030-01"
    )
    nocard = client(payment_method="sandboxcard")
    s = service(ok, DAY - dt.timedelta(days=1), method="sandboxcard")
    paid = invoice(ok, DAY, method="sandboxcard")
    InvoiceItem.update(
        related_type="service", related_id=s.id, related_due_date=DAY - dt.timedelta(days=1)
    ).where(InvoiceItem.invoice == paid.id).execute()
    declined = invoice(bad, DAY, method="sandboxcard")
    invoice(off, DAY, method="sandboxcard")
    invoice(nocard, DAY, method="sandboxcard")
    invoice(ok, DAY + dt.timedelta(days=1), method="sandboxcard")  # not due yet
    summary = run(only=("capture",))
    tally = summary.rules["capture"]
    assert (tally.acted, tally.skipped, tally.failed) == (2, 2, 0)
    paid = Invoice.get_by_id(paid.id)
    assert (paid.status, paid.date_paid) == ("Paid", DAY)
    assert Transaction.get().amount_in == paid.total
    assert Service.get_by_id(s.id).next_due_date == DAY - dt.timedelta(days=1) + dt.timedelta(
        days=31
    )  # moved a month on
    assert Invoice.get_by_id(declined.id).status == "Unpaid"
    assert sent("Invoice Payment Confirmation") == [ok.email]
    assert sent("Credit Card Payment Failed") == [bad.email]
    run(only=("capture",))  # again the same day: no second attempt, no second charge
    assert Transaction.select().count() == 1 and len(sent("Credit Card Payment Failed")) == 1
    run(DAY + dt.timedelta(days=1), only=("capture",))  # retried daily
    assert len(sent("Credit Card Payment Failed")) == 2
    assert Transaction.select().count() == 2  # the next-day invoice of the good card


def test_capture_charges_outside_any_transaction_and_keeps_a_payment_made_meanwhile(
    db: str,
) -> None:
    """The gateway is called with no write transaction open; an invoice staff marked
    paid during the charge keeps that payment, the charge is still recorded, and
    no confirmation claims the card paid it."""
    from rules.billing import capture
    from rules.billing.automation import RunContext
    from rules.billing.gateways import CaptureResult

    owner = client(payment_method="sandboxcard")
    StoredCard.create(
        client=owner, gateway="sandboxcard", token="ok_1", last4="4242", expiry="2030-01"
    )
    raced, plain = (
        invoice(owner, DAY, method="sandboxcard"),
        invoice(owner, DAY, method="sandboxcard"),
    )
    seen: list[bool] = []

    class Racing:
        name = "sandboxcard"

        def capture(self, token: str, amount: Any, currency: str, key: str) -> CaptureResult:
            database = Invoice._meta.database
            seen.append(database.in_transaction())
            if key.startswith(f"capture:{raced.id}:"):  # staff record a bank payment now
                Invoice.update(status="Paid", date_paid=DAY - dt.timedelta(days=1)).where(
                    Invoice.id == raced.id
                ).execute()
            return CaptureResult(True, f"t{key}", "ok")

    tally = capture.run(RunContext(DAY, load_settings()), {"sandboxcard": Racing()})
    assert (tally.acted, tally.failed) == (2, 0)
    assert seen == [False, False]
    assert Invoice.get_by_id(raced.id).date_paid == DAY - dt.timedelta(days=1)
    assert Invoice.get_by_id(plain.id).date_paid == DAY
    assert sorted(t.invoice_id for t in Transaction.select()) == sorted([raced.id, plain.id])
    confirmations = Email.select().where(Email.template == "Invoice Payment Confirmation")
    assert [e.unique_key for e in confirmations] == [f"paid:{plain.id}"]


def _card_client() -> Client:
    owner = client(payment_method="sandboxcard")
    StoredCard.create(
        client=owner, gateway="sandboxcard", token="ok_1", last4="4242", expiry="2030-01"
    )
    return owner


def test_an_attempt_left_unresolved_is_replayed_with_its_own_key(db: str) -> None:
    """The gateway fails on one invoice: the others are recorded at once; the failed one
    stays 'charging' and the next day's run asks the gateway again with the first key,
    so a charge that did go through is found, not made twice."""
    from rules.billing import capture
    from rules.billing.automation import RunContext
    from rules.billing.gateways import CaptureResult, SandboxCard

    owner = _card_client()
    first, second = (invoice(owner, DAY, method="sandboxcard") for _ in range(2))
    keys: list[str] = []

    class Flaky:
        name = "sandboxcard"
        down = True

        def capture(self, token: str, amount: Any, currency: str, key: str) -> CaptureResult:
            keys.append(key)
            if self.down and key.startswith(f"capture:{second.id}:"):
                raise ConnectionError("gateway timed out")
            return SandboxCard().capture(token, amount, currency, key)

    gateway = Flaky()
    tally = capture.run(RunContext(DAY, load_settings()), {"sandboxcard": gateway})
    assert (tally.acted, tally.failed) == (1, 1)
    assert Invoice.get_by_id(first.id).status == "Paid"
    assert Invoice.get_by_id(second.id).status == "Unpaid"
    pending = ActionLedger.get(ActionLedger.subject == f"invoice:{second.id}")
    assert pending.outcome == "charging"
    gateway.down = False
    keys.clear()
    capture.run(RunContext(DAY + dt.timedelta(days=1), load_settings()), {"sandboxcard": gateway})
    assert keys == [f"capture:{second.id}:{DAY}"]  # the first key, not a new day's
    assert Invoice.get_by_id(second.id).status == "Paid"
    assert ActionLedger.get(ActionLedger.subject == f"invoice:{second.id}").outcome == "approved"
    assert Transaction.select().count() == 2


def test_an_invoice_paid_before_its_charge_is_not_charged(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rules.billing import capture
    from rules.billing.automation import RunContext
    from rules.billing.gateways import CaptureResult, SandboxCard

    monkeypatch.setattr(capture, "RECORD_SECONDS", 0.0)  # re-read before every charge
    owner = _card_client()
    first, second = (invoice(owner, DAY, method="sandboxcard") for _ in range(2))
    charged: list[str] = []

    class StaffPaysMeanwhile:
        name = "sandboxcard"

        def capture(self, token: str, amount: Any, currency: str, key: str) -> CaptureResult:
            charged.append(key)
            Invoice.update(status="Paid", date_paid=DAY).where(Invoice.id == second.id).execute()
            return SandboxCard().capture(token, amount, currency, key)

    tally = capture.run(RunContext(DAY, load_settings()), {"sandboxcard": StaffPaysMeanwhile()})
    assert charged == [f"capture:{first.id}:{DAY}"]
    assert (tally.acted, tally.skipped) == (1, 1)
    assert ActionLedger.get(ActionLedger.subject == f"invoice:{second.id}").outcome == "skipped"
    assert [t.invoice_id for t in Transaction.select()] == [first.id]


# ------------------------------------------------------------------ status update


def _status_setup() -> dict[str, Client]:
    idle = client(created_at=dt.datetime(2025, 1, 10))
    busy = client(status="Inactive")
    service(busy, DAY + dt.timedelta(days=40), status="Suspended")
    domain_only = client(status="Inactive")
    Domain.create(
        client=domain_only, name="x.com", status="Pending Transfer", payment_method="banktransfer"
    )
    locked = client(status_locked=True)
    closed = client(status="Closed")
    recent = client(last_login_at=dt.datetime(2026, 3, 1))
    return {
        "idle": idle,
        "busy": busy,
        "domain": domain_only,
        "locked": locked,
        "closed": closed,
        "recent": recent,
    }


def _statuses(clients: dict[str, Client]) -> dict[str, str]:
    return {k: Client.get_by_id(c.id).status for k, c in clients.items()}


def test_status_update_by_active_products(db: str) -> None:
    clients = _status_setup()
    run(only=("status_update",))
    assert _statuses(clients) == {
        "idle": "Inactive",
        "busy": "Active",
        "domain": "Active",
        "locked": "Active",
        "closed": "Closed",
        "recent": "Inactive",
    }
    assert AuditLog.select().where(AuditLog.action == "status_update").count() == 4


def test_status_update_with_login_mode(db: str) -> None:
    save_settings({"status_update": "active_products_and_login"})
    clients = _status_setup()
    run(only=("status_update",))
    assert _statuses(clients)["recent"] == "Active"
    assert _statuses(clients)["idle"] == "Inactive"


def test_status_update_off(db: str) -> None:
    save_settings({"status_update": "off"})
    clients = _status_setup()
    run(only=("status_update",))
    assert _statuses(clients)["idle"] == "Active"


def test_status_update_leaves_a_staff_change_made_after_it_read(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Staff close a client between the rule's read and its write: the close stands,
    and neither the audit log nor the ledger claims the rule changed that client."""
    from rules.billing import status_update
    from rules.billing.automation import RunContext

    clients = _status_setup()
    ctx = RunContext(DAY, load_settings(), run_id=None)
    read = status_update.changes(ctx)
    assert {cid for cid, _, _ in read} >= {clients["idle"].id, clients["recent"].id}
    Client.update(status="Closed").where(Client.id == clients["idle"].id).execute()
    monkeypatch.setattr(status_update, "changes", lambda ctx: read)
    tally = status_update.run(ctx)
    assert (tally.acted, tally.skipped) == (len(read) - 1, 1)
    assert _statuses(clients)["idle"] == "Closed"
    audited = {a.client_id for a in AuditLog.select().where(AuditLog.action == "status_update")}
    assert clients["idle"].id not in audited and len(audited) == len(read) - 1
    claimed = {r.subject for r in ActionLedger.select().where(ActionLedger.rule == "status_update")}
    assert f"client:{clients['idle'].id}" not in claimed and len(claimed) == len(read) - 1


# ------------------------------------------------------------------ the run as a whole


def _everything() -> None:
    c = client(payment_method="sandboxcard", country="GB")
    StoredCard.create(client=c, gateway="sandboxcard", token="ok_1", last4="4242", expiry="2030-01")
    service(c, DAY + dt.timedelta(days=2), method="sandboxcard")
    invoice(c, DAY - dt.timedelta(days=5), method="sandboxcard")
    invoice(client(), DAY - dt.timedelta(days=1))
    client()


def _snapshot() -> dict[str, int]:
    return {
        m.__name__: m.select().count()
        for m in (Invoice, InvoiceItem, Email, Transaction, ActionLedger, AuditLog, CronRun)
    }


def test_runs_every_5_minutes_act_once(db: str) -> None:
    _everything()
    run()
    after_first = _snapshot()
    for _ in range(12 * 24 // 24):  # a dozen more runs through the day
        summary = run()
        assert all(t.acted == 0 for t in summary.rules.values())
    after = _snapshot()
    assert {k: v for k, v in after.items() if k != "CronRun"} == {
        k: v for k, v in after_first.items() if k != "CronRun"
    }


def test_dry_run_changes_nothing_and_plans(db: str) -> None:
    _everything()
    before = _snapshot()
    summary = run(dry_run=True)
    assert _snapshot() == before
    planned = {p.rule for p in summary.actions}
    assert {"invoice", "notice", "late_fee", "capture", "status_update"} <= planned


def test_query_count_does_not_grow_with_clients(databases: Any, reopen: Any) -> None:
    counts = []
    for n in (10, 300):
        reopen(databases.new_url())
        for i in range(n):
            c = client(payment_method="sandboxcard" if i % 2 else "banktransfer")
            if i % 2:
                StoredCard.create(
                    client=c, gateway="sandboxcard", token="ok_x", last4="1234", expiry="2030-01"
                )
            service(c, DAY + dt.timedelta(days=i % 14), method=c.payment_method)
            invoice(c, DAY - dt.timedelta(days=i % 8), method=c.payment_method)
        with count_queries() as counter:
            run()
        counts.append(counter.count)
    assert counts[0] == counts[1], counts


def test_business_date_in_a_timezone_and_across_dst() -> None:
    auckland = Settings(timezone="Pacific/Auckland", daily_hour=9)
    # 20:30 UTC on 9 March is 09:30 on 10 March in Auckland (NZDT, UTC+13).
    assert business_date(dt.datetime(2026, 3, 9, 20, 30), auckland) == (DAY, True)
    assert business_date(dt.datetime(2026, 3, 9, 19, 30), auckland) == (DAY, False)
    london = Settings(timezone="Europe/London", daily_hour=9)
    # Clocks go forward on 29 March 2026: 08:30 UTC is 09:30 BST, the day before 08:30 GMT.
    assert business_date(dt.datetime(2026, 3, 29, 8, 30), london) == (dt.date(2026, 3, 29), True)
    assert business_date(dt.datetime(2026, 3, 28, 8, 30), london) == (dt.date(2026, 3, 28), False)
    assert business_date(dt.datetime(2026, 3, 28, 23, 30), london)[0] == dt.date(2026, 3, 28)


def _cron(
    url: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", "--database", url, "cron", *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "XDG_DATA_HOME": os.environ.get("XDG_DATA_HOME", "/tmp"), **(env or {})},
    )


def test_cron_command_json_lock_and_exit_codes(db: str, tmp_path: Any) -> None:
    _everything()
    maildir = {"XDG_DATA_HOME": str(tmp_path)}
    with cron_lock():
        locked = _cron(db, "--date", DAY.isoformat(), env=maildir)
    assert locked.returncode == 75 and "another gobiller cron is running" in locked.stderr
    assert Invoice.select().count() == 2
    out = _cron(db, "--date", DAY.isoformat(), "--json", env=maildir)
    assert out.returncode == 0, out.stderr
    summary = json.loads(out.stdout)
    assert summary["outcome"] == "ok" and summary["rules"]["invoice"]["acted"] == 1
    assert set(summary["rules"]) == set(RULE_NAMES) and summary["mail"]["sent"] >= 3
    status = subprocess.run(
        [sys.executable, "-m", "tui.cli", "--database", db, "cron", "status", "--json"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert status.returncode == 0 and json.loads(status.stdout)["runs"][0]["outcome"] == "ok"


def test_smtp_failure_makes_the_run_fail(db: str, smtp_server: Any) -> None:
    recorder, config = smtp_server
    recorder.replies = ["550 5.1.1 mailbox unavailable"] * 10
    invoice(client(), DAY - dt.timedelta(days=1))
    url = f"smtp://{config.host}:{config.port}?security=none"
    out = _cron(db, "--date", DAY.isoformat(), "--json", env={"GOBILLER_SMTP_URL": url})
    assert out.returncode == 1
    assert json.loads(out.stdout)["mail"]["failed"] == 1


def test_a_mail_server_refusing_login_makes_the_run_fail(db: str, smtp_refusing_login: Any) -> None:
    config = smtp_refusing_login
    invoice(client(), DAY - dt.timedelta(days=1))
    url = f"smtp://billing:wrong@{config.host}:{config.port}?security=none"
    out = _cron(db, "--date", DAY.isoformat(), "--json", env={"GOBILLER_SMTP_URL": url})
    assert out.returncode == 1, out.stderr
    mail = json.loads(out.stdout)["mail"]
    assert mail["session_error"].startswith("535") and mail["failed"] == 0
    assert Email.get().status == "queued"


def test_explain_says_why(db: str) -> None:
    from rules.billing.explain import explain

    c = client(late_fees_exempt=True, status_locked=True)
    invoice(c, DAY - dt.timedelta(days=6))
    lines = {line.rule: line for line in explain(c.id, DAY, load_settings())}
    assert lines["late_fee"].acts is False and "Late Fees exempt" in lines["late_fee"].reason
    assert lines["status_update"].reason == "status locked for this client"
    assert lines["notice"].acts and "Third Invoice Overdue Notice" in lines["notice"].reason
    assert lines["invoice"].acts is False


def test_default_business_date_follows_the_clock(
    db: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --date the run uses today in the configured timezone, from the daily hour."""
    import time_machine

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))  # the Maildir goes here
    from click.testing import CliRunner

    from tui.cli import main

    save_settings({"timezone": "Asia/Tokyo", "daily_hour": 9})
    service(client(), dt.date(2026, 3, 20))  # due in 10 days on 10 March (Tokyo)
    runner = CliRunner()
    # 23:30 UTC on 9 March is 08:30 on 10 March in Tokyo: before the daily hour.
    with time_machine.travel(dt.datetime(2026, 3, 9, 23, 30, tzinfo=dt.UTC), tick=False):
        early = runner.invoke(main, ["--database", db, "cron", "--json"])
    assert early.exit_code == 0, early.output
    assert json.loads(early.output)["daily_rules_due"] is False
    assert Invoice.select().count() == 0
    with time_machine.travel(dt.datetime(2026, 3, 10, 0, 30, tzinfo=dt.UTC), tick=False):
        late = runner.invoke(main, ["--database", db, "cron", "--json"])
    data = json.loads(late.output)
    assert (data["business_date"], data["daily_rules_due"]) == ("2026-03-10", True)
    assert Invoice.get().date == dt.date(2026, 3, 10)
