"""Billing correctness, one test per kind of fault (issue 9): each drives the real rules
over a real database on both SQLite and PostgreSQL, and failed before its fix."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from dateutil.relativedelta import relativedelta

from rules.billing.automation import RunContext
from rules.billing.explain import explain
from rules.billing.invoicing import next_due_date
from rules.billing.notices import latest_stage, stage_windows
from store.models import (
    ActionLedger,
    Addon,
    Client,
    Currency,
    Domain,
    Email,
    Invoice,
    InvoiceItem,
    Service,
    StoredCard,
    TaxRule,
    Transaction,
)
from store.settings import Settings, load_settings, save_settings
from tests.integration.test_cron import client, invoice, run, service


def _in(owner: Client, currency: Currency) -> Client:
    owner.currency = currency
    owner.save()
    return owner


CYCLES = {
    "Monthly": 1,
    "Quarterly": 3,
    "Semi-Annually": 6,
    "Annually": 12,
    "Biennially": 24,
    "Triennially": 36,
}

# ------------------------------------------------------- recurring due dates keep their anchor day


@pytest.mark.parametrize("cycle", sorted(CYCLES))
@pytest.mark.parametrize("first", ["2026-01-29", "2026-01-30", "2026-01-31", "2028-02-29"])
def test_recurring_due_dates_keep_their_anchor_day_for_every_cycle(cycle: str, first: str) -> None:
    """Each due date is the anchor plus whole cycles (clamped only in short months),
    never the previous, already shortened date plus one cycle."""
    anchor = dt.date.fromisoformat(first)
    day = anchor
    for k in range(1, 30):
        day = next_due_date(day, cycle, anchor.day) or day
        assert day == anchor + relativedelta(months=CYCLES[cycle] * k), (cycle, k)


def test_recurring_due_dates_keep_their_anchor_day_for_services_addons_and_domains(
    db: str,
) -> None:
    """A Monthly service and addon due on the 31st and a domain due on 29 Feb, paid by
    card capture through the real cron, come back to their anchor day."""
    owner = client(payment_method="sandboxcard")
    StoredCard.create(
        client=owner, gateway="sandboxcard", token="ok_1", last4="4242", expiry="2035-12"
    )
    hosting = service(owner, dt.date(2026, 1, 31), amount=1_000, method="sandboxcard")
    addon = Addon.create(
        service=hosting,
        client=owner,
        name="Backup",
        status="Active",
        billing_cycle="Monthly",
        amount=200,
        next_due_date=dt.date(2026, 1, 31),
        anchor_day=31,
        payment_method="sandboxcard",
    )
    domain = Domain.create(
        client=owner,
        name="example.org",
        status="Active",
        amount=1_500,
        next_due_date=dt.date(2028, 2, 29),
        payment_method="sandboxcard",
    )
    seen: list[dt.date] = []
    for _ in range(5):  # invoice 14 days before, capture on the due date
        due = Service.get_by_id(hosting.id).next_due_date
        seen.append(due)
        run(due - dt.timedelta(days=14))
        run(due)
    assert seen == [dt.date(2026, m, d) for m, d in ((1, 31), (2, 28), (3, 31), (4, 30), (5, 31))]
    assert Service.get_by_id(hosting.id).next_due_date == dt.date(2026, 6, 30)
    assert Addon.get_by_id(addon.id).next_due_date == dt.date(2026, 6, 30)
    renewals = []
    for _ in range(4):
        due = Domain.get_by_id(domain.id).next_due_date
        renewals.append(due)
        run(due - dt.timedelta(days=14), only=("invoice",))
        run(due, only=("capture",))
    assert renewals == [
        dt.date(y, 2, d) for y, d in ((2028, 29), (2029, 28), (2030, 28), (2031, 28))
    ]
    assert Domain.get_by_id(domain.id).next_due_date == dt.date(2032, 2, 29)


# ------------------------------------------------------------ a setting of zero switches it off

OFF_SETTINGS: list[dict[str, Any]] = [
    {"late_fee_type": "percentage", "late_fee_amount": "0.00", "late_fee_minimum": "0.00"},
    {"late_fee_type": "percentage", "late_fee_amount": "0.00", "late_fee_minimum": "2.00"},
    {"late_fee_type": "fixed", "late_fee_amount": "0.00", "late_fee_minimum": "0.00"},
    {"late_fee_days": 0, "late_fee_minimum": "2.00"},
]


@pytest.mark.parametrize("settings", OFF_SETTINGS)
def test_a_setting_of_zero_switches_its_rule_off_late_fee(
    db: str, settings: dict[str, Any]
) -> None:
    save_settings(settings)
    day = dt.date(2026, 5, 15)
    inv = invoice(client(), dt.date(2026, 5, 10), subtotal=8_000)
    plan = run(day, only=("late_fee",), dry_run=True).actions
    run(day, only=("late_fee",))
    assert plan == []
    assert InvoiceItem.select().where(InvoiceItem.type == "LateFee").count() == 0
    assert ActionLedger.select().where(ActionLedger.rule == "late_fee").count() == 0
    assert Invoice.get_by_id(inv.id).total == 8_000
    reason = {e.rule: e.reason for e in explain(inv.client_id, day, load_settings())}
    assert "off" in reason["late_fee"]


def test_a_fee_that_comes_to_nothing_is_not_added_and_keeps_the_invoice_s_one_fee(db: str) -> None:
    """1% of 0.40 is 0.00: no line, no claim, so the fee can still come once settings change."""
    save_settings({"late_fee_amount": "1.00", "late_fee_minimum": "0.00"})
    inv = invoice(client(), dt.date(2026, 5, 10), subtotal=40)
    run(dt.date(2026, 5, 15), only=("late_fee",))
    assert InvoiceItem.select().where(InvoiceItem.type == "LateFee").count() == 0
    save_settings({"late_fee_minimum": "1.00"})
    run(dt.date(2026, 5, 16), only=("late_fee",))
    fee = InvoiceItem.get((InvoiceItem.type == "LateFee") & (InvoiceItem.invoice == inv.id))
    assert fee.amount == 100


@pytest.mark.parametrize(
    "settings,silent",
    [
        ({"payment_reminder_days": 0}, "Invoice Payment Reminder"),
        ({"overdue_notice_days": [0, 2, 3]}, "First Invoice Overdue Notice"),
        ({"overdue_notice_days": [1, 0, 3]}, "Second Invoice Overdue Notice"),
        ({"overdue_notice_days": [1, 2, 0]}, "Third Invoice Overdue Notice"),
    ],
)
def test_a_setting_of_zero_switches_its_rule_off_notices(
    db: str, settings: dict[str, Any], silent: str
) -> None:
    save_settings(settings)
    due = dt.date(2026, 5, 10)
    invoice(client(), due)
    for n in range(-10, 6):
        run(due + dt.timedelta(days=n), only=("notice",))
    templates = {e.template for e in Email.select()}
    assert silent not in templates and len(templates) == 3, templates


# -------------------------------------------------------------- nothing is chased that is not owed


def test_nothing_is_chased_that_is_not_owed_zero_invoice_is_paid_at_once(db: str) -> None:
    save_settings({"late_fee_minimum": "2.00"})
    owner = client(payment_method="sandboxcard")
    StoredCard.create(
        client=owner, gateway="sandboxcard", token="ok_1", last4="4242", expiry="2035-12"
    )
    free = service(owner, dt.date(2026, 7, 20), amount=0, method="sandboxcard")
    day = dt.date(2026, 7, 6)
    while day <= dt.date(2026, 7, 27):
        run(day)
        day += dt.timedelta(days=1)
    first = Invoice.select().order_by(Invoice.id).first()
    assert first.status == "Paid" and first.total == 0 and first.date_paid == dt.date(2026, 7, 6)
    assert Email.select().count() == 0
    assert InvoiceItem.select().where(InvoiceItem.type == "LateFee").count() == 0
    assert Transaction.select().count() == 0
    assert Service.get_by_id(free.id).next_due_date > dt.date(2026, 7, 20)  # renewed


def test_nothing_is_chased_that_is_not_owed_balance_reaches_zero(db: str) -> None:
    """An Unpaid invoice whose payments cover its total gets no reminder, notice, fee or
    charge; a partly paid one is charged only its balance."""
    owner = client(payment_method="sandboxcard")
    StoredCard.create(
        client=owner, gateway="sandboxcard", token="ok_1", last4="4242", expiry="2035-12"
    )
    due = dt.date(2026, 5, 10)
    covered = invoice(owner, due, subtotal=5_000, method="sandboxcard")
    partly = invoice(owner, due, subtotal=5_000, method="sandboxcard")
    zero = invoice(client(), due, subtotal=0)  # an imported Unpaid 0.00
    for inv, amount in ((covered, 5_000), (partly, 2_000)):
        Transaction.create(client=owner, invoice=inv, gateway="banktransfer", amount_in=amount)
    plan = run(due, dry_run=True).actions
    assert {p.subject for p in plan if p.rule != "status_update"} == {f"invoice:{partly.id}"}
    for n in range(-8, 8):
        run(due + dt.timedelta(days=n), only=("notice", "late_fee", "capture"))
    charged = Transaction.get(Transaction.gateway == "sandboxcard")
    assert (charged.invoice_id, charged.amount_in) == (partly.id, 3_000)
    chased = {(row.rule, row.subject) for row in ActionLedger.select()}
    assert {subject for _, subject in chased} == {f"invoice:{partly.id}"}, chased
    assert {rule for rule, _ in chased} == {"notice", "capture"}  # paid on the due date
    numbers = {covered.number, zero.number}
    assert not [e.subject for e in Email.select() if any(n in e.subject for n in numbers)]


# ------------------------------------------- a new invoice is never born overdue for the client


def test_a_new_invoice_is_never_born_overdue_for_the_client(db: str) -> None:
    owner = client()
    service(owner, dt.date(2026, 6, 1), amount=6_000)
    run(dt.date(2026, 6, 20))
    inv = Invoice.get()
    assert (inv.date, inv.due_date) == (dt.date(2026, 6, 20), dt.date(2026, 6, 1))
    assert [e.template for e in Email.select()] == ["Invoice Created"]
    assert InvoiceItem.select().where(InvoiceItem.type == "LateFee").count() == 0
    reasons = {e.rule: e.reason for e in explain(owner.id, dt.date(2026, 6, 20), load_settings())}
    assert "count from 2026-06-20" in reasons["late_fee"]
    for n in range(1, 6):
        run(dt.date(2026, 6, 20) + dt.timedelta(days=n))
    sent = [(e.template, e.created_at.date()) for e in Email.select().order_by(Email.id)][1:]
    assert [t for t, _ in sent] == [
        "First Invoice Overdue Notice",
        "Second Invoice Overdue Notice",
        "Third Invoice Overdue Notice",
    ]
    fee = InvoiceItem.get(InvoiceItem.type == "LateFee")
    ledger = ActionLedger.get(ActionLedger.rule == "late_fee")
    assert fee.amount == 600 and ledger.business_date == dt.date(2026, 6, 20)
    assert ActionLedger.get(ActionLedger.stage == "first").business_date == dt.date(2026, 6, 21)


@pytest.mark.parametrize("reminder,overdue", [(7, [1, 2, 3]), (0, [1, 5, 9]), (14, [3, 3, 10])])
def test_stage_windows_match_latest_stage_counted_from_the_later_date(
    reminder: int, overdue: list[int]
) -> None:
    """The SQL windows (on the later of due date and invoice date, the reminder only for
    invoices that existed by then) agree with the plain definition, for invoices issued
    long before, just before, on and after their due date."""
    today = dt.date(2026, 3, 10)
    ctx = RunContext(today, Settings(payment_reminder_days=reminder, overdue_notice_days=overdue))
    windows = stage_windows(ctx)
    for k in range(-40, 60):
        due = today - dt.timedelta(days=k)
        for lead in (-20, -14, -3, 0, 2, 10):
            issued = due - dt.timedelta(days=lead) if lead >= 0 else due + dt.timedelta(days=-lead)
            start = max(due, issued)
            hits = []
            for stage, offset, first, last in windows:
                if offset < 0:
                    if first <= due <= last and issued <= due + dt.timedelta(days=offset):
                        hits.append((stage, due + dt.timedelta(days=offset)))
                elif first <= start <= last:
                    hits.append((stage, start + dt.timedelta(days=offset)))
            expected = latest_stage(due, ctx, issued)
            assert hits == ([expected] if expected else []), (k, lead, hits, expected)


# ------------------------------------------------------- adding a line never loses tax already owed


def test_adding_a_line_never_loses_tax_already_owed(db: str) -> None:
    """A generated invoice taxed 10% gets a late fee: the tax grows with the fee."""
    TaxRule.create(level=1, name="VAT", country="", state="", rate_e4=100_000)
    owner = client()
    service(owner, dt.date(2026, 5, 10), amount=10_000)
    run(dt.date(2026, 4, 26), only=("invoice",))
    run(dt.date(2026, 5, 15), only=("late_fee",))
    inv = Invoice.get()
    assert (inv.subtotal, inv.tax, inv.total) == (11_000, 1_100, 12_100)


# ------------------------------------- a fixed amount means the same value in every currency


@pytest.mark.parametrize(
    "settings",
    [
        {"late_fee_type": "fixed", "late_fee_amount": "5.00", "late_fee_minimum": "0.00"},
        {"late_fee_type": "percentage", "late_fee_amount": "0.01", "late_fee_minimum": "5.00"},
    ],
)
def test_a_fixed_amount_means_the_same_value_in_every_currency(
    db: str, settings: dict[str, Any]
) -> None:
    save_settings(settings)
    Currency.get_or_create(code="USD", defaults={"is_default": True})
    jpy = Currency.create(code="JPY", decimals=0, rate="150", prefix="¥")
    bhd = Currency.create(code="BHD", decimals=3, rate="0.376")
    due = dt.date(2026, 5, 10)
    invoices = {
        "USD": invoice(client(), due, subtotal=1_000),
        "JPY": invoice(_in(client(), jpy), due, subtotal=1_000),
        "BHD": invoice(_in(client(), bhd), due, subtotal=1_000),
    }
    plan = run(due + dt.timedelta(days=5), only=("late_fee",), dry_run=True).actions
    assert sorted(p.detail for p in plan) == [
        "add late fee 1.880 BHD",
        "add late fee 5.00 USD",
        "add late fee ¥750",
    ]
    run(due + dt.timedelta(days=5), only=("late_fee",))
    fees = {
        code: InvoiceItem.get((InvoiceItem.type == "LateFee") & (InvoiceItem.invoice == inv.id))
        for code, inv in invoices.items()
    }
    assert {code: f.amount for code, f in fees.items()} == {"USD": 500, "JPY": 750, "BHD": 1_880}


# --------------------------------------- "no login for 3 months" counts from the account's start


def test_no_login_for_3_months_counts_from_the_account_s_start(db: str) -> None:
    save_settings({"status_update": "active_products_and_login"})
    day = dt.date(2026, 6, 1)
    clients = {
        "new, pending order": client(created_at=dt.datetime(2026, 5, 25, 10)),
        "new, nothing yet": client(created_at=dt.datetime(2026, 5, 25, 10)),
        "dormant 17 months": client(created_at=dt.datetime(2025, 1, 10)),
        "logged in lately": client(
            created_at=dt.datetime(2025, 1, 10), last_login_at=dt.datetime(2026, 5, 20)
        ),
        "created 3 months and a day ago": client(created_at=dt.datetime(2026, 2, 28, 23)),
    }
    service(clients["new, pending order"], day + dt.timedelta(days=30), status="Pending")
    run(day, only=("status_update",))
    statuses = {name: Client.get_by_id(c.id).status for name, c in clients.items()}
    assert statuses == {
        "new, pending order": "Active",
        "new, nothing yet": "Active",
        "dormant 17 months": "Inactive",
        "logged in lately": "Active",
        "created 3 months and a day ago": "Inactive",
    }


# ------------------------------------------------------------ an expired card is never charged


def test_an_expired_card_is_never_charged(db: str) -> None:
    """Capture uses the newest card valid on the business date; with none valid it makes
    no attempt, says why, and asks the client for a new card once, not once a day."""
    save_settings({"payment_reminder_days": 0, "overdue_notice_days": [0, 0, 0]})
    save_settings({"late_fee_days": 0})
    only_expired = client(payment_method="sandboxcard")
    StoredCard.create(
        client=only_expired, gateway="sandboxcard", token="ok_old", last4="1111", expiry="2026-03"
    )
    valid_and_newer_expired = client(payment_method="sandboxcard")
    StoredCard.create(
        client=valid_and_newer_expired,
        gateway="sandboxcard",
        token="ok_valid",
        last4="2222",
        expiry="2029-09",
    )
    StoredCard.create(
        client=valid_and_newer_expired,
        gateway="sandboxcard",
        token="no_expired",
        last4="3333",
        expiry="2026-02",
    )
    until_month_end = client(payment_method="sandboxcard")
    StoredCard.create(
        client=until_month_end,
        gateway="sandboxcard",
        token="ok_june",
        last4="4444",
        expiry="2026-06",
    )
    due = dt.date(2026, 6, 15)
    a = invoice(only_expired, due, subtotal=4_500, method="sandboxcard")
    b = invoice(valid_and_newer_expired, due, subtotal=4_500, method="sandboxcard")
    c = invoice(until_month_end, due, subtotal=4_500, method="sandboxcard")
    plan = run(due, only=("capture",), dry_run=True).actions
    assert {(p.subject, p.stage) for p in plan} == {
        (f"invoice:{a.id}", "card_expired"),
        (f"invoice:{b.id}", ""),
        (f"invoice:{c.id}", ""),
    }
    for n in range(30):
        run(due + dt.timedelta(days=n), only=("capture",))
    charged = {t.invoice_id: t.amount_in for t in Transaction.select()}
    assert charged == {b.id: 4_500, c.id: 4_500}
    assert Invoice.get_by_id(a.id).status == "Unpaid"
    assert [e.to for e in Email.select().where(Email.template == "Credit Card Expired")] == [
        only_expired.email
    ]
    assert Email.select().where(Email.template == "Credit Card Payment Failed").count() == 0
    reasons = {e.rule: e.reason for e in explain(only_expired.id, due, load_settings())}
    assert "expired" in reasons["capture"]


# ------------------------------------ a schedule that never reaches the daily hour is loud


def test_a_schedule_that_never_reaches_the_daily_hour_is_loud(db: str) -> None:
    """Berlin, daily hour 9, a crontab at 06:00 local: every run says the daily rules were
    skipped and when they run; `cron status` exits 1 saying why; explain says it waits.
    A run at 09:05 makes the schedule healthy again."""
    import json

    import time_machine
    from click.testing import CliRunner

    from tui.cli import main

    save_settings({"timezone": "Europe/Berlin", "daily_hour": 9})
    owner = client()
    service(owner, dt.date(2026, 7, 1))
    cli = CliRunner()

    def gobiller(*args: str) -> Any:
        return cli.invoke(main, ["--database", db, *args], catch_exceptions=False)

    for day in range(15, 21):  # 06:00 CEST is 04:00 UTC
        with time_machine.travel(dt.datetime(2026, 6, day, 4, 0, tzinfo=dt.UTC), tick=False):
            result = gobiller("cron", "--json")
            assert result.exit_code == 0, result.output
            summary = json.loads(result.output)
            assert summary["daily_rules_due"] is False
            assert summary["daily_rules_next"] == f"2026-06-{day:02d}T09:00:00+02:00"
    assert Invoice.select().count() == 0
    with time_machine.travel(dt.datetime(2026, 6, 20, 4, 1, tzinfo=dt.UTC), tick=False):
        status = gobiller("cron", "status", "--json")
        assert status.exit_code == 1
        health = json.loads(status.output)
        assert health["daily_rules_ran_in_last_24h"] is False
        assert "before the daily hour (09:00 Europe/Berlin)" in health["message"]
        explained = json.loads(gobiller("explain", str(owner.id), "--json").output)
        assert explained["daily_rules_due"] is False and "09:00" in explained["note"]
    with time_machine.travel(dt.datetime(2026, 6, 20, 7, 5, tzinfo=dt.UTC), tick=False):
        assert gobiller("cron").exit_code == 0
        assert Invoice.select().count() == 1
        assert gobiller("cron", "status").exit_code == 0


# ------------------------------------------------------------------ invoice numbers only go up


def _history(numbers: list[str], client_id: int = 1, due: str = "2026-07-01") -> dict[str, Any]:
    """An interchange document: one client, Paid invoices with these numbers, and one
    Monthly service due on ``due``."""
    return {
        "format": "gobiller/1",
        "currencies": [
            {
                "code": "USD",
                "prefix": "$",
                "suffix": "",
                "decimals": 2,
                "rate": "1",
                "default": True,
            }
        ],
        "clients": [
            {
                "id": client_id,
                "first_name": "Ana",
                "last_name": "Migrated",
                "email": f"ana{client_id}@example.com",
                "currency": "USD",
                "services": [
                    {
                        "product": "Hosting",
                        "status": "Active",
                        "billing_cycle": "Monthly",
                        "amount": "10.00",
                        "next_due_date": due,
                        "payment_method": "banktransfer",
                    }
                ],
                "invoices": [
                    {
                        "number": number,
                        "date": f"2026-0{n % 5 + 1}-01",
                        "due_date": f"2026-0{n % 5 + 1}-15",
                        "date_paid": f"2026-0{n % 5 + 1}-10",
                        "status": "Paid",
                        "payment_method": "banktransfer",
                        "subtotal": "10.00",
                        "tax": "0.00",
                        "tax2": "0.00",
                        "total": "10.00",
                        "items": [
                            {
                                "type": "Item",
                                "description": "Old",
                                "amount": "10.00",
                                "taxed": False,
                            }
                        ],
                    }
                    for n, number in enumerate(numbers)
                ],
            }
        ],
    }


def test_invoice_numbers_only_go_up(db: str) -> None:
    """After an import numbered 1001-1005 the cron's invoice is 1006; with a format it is
    INV-2026-01007; a number another path wrote is passed over, never reused; a run that
    rolls back leaves no gap."""
    from rules.billing.invoicing import allocate_numbers
    from rules.interchange.importer import import_document
    from store.db import writer

    import_document(_history([str(n) for n in range(1001, 1006)]))
    run(dt.date(2026, 6, 17), only=("invoice",))
    assert Invoice.select().order_by(Invoice.id.desc()).first().number == "1006"

    save_settings({"invoice_number_format": "INV-{year}-{seq:05d}"})
    owner = client()
    service(owner, dt.date(2026, 7, 2))
    Invoice.create(  # written by plain SQL or an old tool: the sequence never saw it
        client=owner,
        number="INV-2026-01007",
        date=dt.date(2026, 6, 1),
        due_date=dt.date(2026, 6, 1),
        status="Cancelled",
        payment_method="banktransfer",
    )
    run(dt.date(2026, 6, 18), only=("invoice",))
    assert Invoice.select().order_by(Invoice.id.desc()).first().number == "INV-2026-01008"

    with pytest.raises(RuntimeError), writer():
        allocate_numbers(3, "{seq}", dt.date(2026, 6, 18))
        raise RuntimeError("the run fails after taking numbers")
    with writer():
        assert allocate_numbers(1, "{seq}", dt.date(2026, 6, 18)) == ["1009"]


def test_invoice_numbers_only_go_up_with_an_import_during_a_cron(
    databases: Any, reopen: Any, tmp_path: Any
) -> None:
    """A cron and an import running at the same time (two processes) both succeed, every
    number is unique, and each new number is above every number issued before it."""
    import json
    import subprocess
    import sys

    url = reopen(databases.new_url())
    owners = [client() for _ in range(40)]
    for owner in owners:
        service(owner, dt.date(2026, 7, 1))
    doc = tmp_path / "history.json"
    doc.write_text(
        json.dumps(_history([str(n) for n in range(5001, 5300)], client_id=900, due="2026-09-01"))
    )
    env = {"XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path / "config")}
    gobiller = [sys.executable, "-m", "tui.cli", "--database", url]
    cron = subprocess.Popen(
        [*gobiller, "cron", "--date", "2026-06-17", "--only", "invoice", "--json"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env={**__import__("os").environ, **env},
    )
    imported = subprocess.run(
        [*gobiller, "import", str(doc)],
        capture_output=True,
        text=True,
        check=False,
        env={**__import__("os").environ, **env},
    )
    out, err = cron.communicate(timeout=120)
    assert imported.returncode == 0, imported.stderr
    assert cron.returncode == 0, err
    rows = [(i.id, i.number) for i in Invoice.select().order_by(Invoice.id)]
    assert len({n for _, n in rows}) == len(rows) == 40 + 299
    generated = [(i, int(n)) for i, n in rows if int(n) not in range(5001, 5300)]
    assert len(generated) == 40
    first_new = min(i for i, _ in generated)
    before = [int(n) for i, n in rows if i < first_new]
    assert all(value > max(before, default=0) for _, value in generated) or not before


# ------------------------------- stored amounts keep their value when the currency's shape changes


def test_stored_amounts_keep_their_value_when_the_currency_s_shape_changes(db: str) -> None:
    """A client moved from JPY to USD keeps 5,000 (as 5,000.00); moving back keeps it;
    an amount JPY cannot hold refuses the move and changes nothing; a currency's
    decimals cannot change under stored amounts, by the screen or by an import."""
    from rules.audit import SYSTEM_CLI
    from rules.clients.profile import update_client
    from rules.errors import ValidationError
    from rules.interchange.importer import import_document
    from rules.interchange.reference import save
    from rules.interchange.schema import ImportError_

    usd = Currency.get_or_create(code="USD", defaults={"is_default": True})[0]
    jpy = Currency.create(code="JPY", decimals=0, rate="150")
    owner = _in(client(), jpy)
    hosting = service(owner, dt.date(2026, 7, 1), amount=5_000)
    bill = invoice(owner, dt.date(2026, 7, 1), subtotal=5_000)
    Transaction.create(client=owner, invoice=bill, gateway="banktransfer", amount_in=1_000)

    update_client(owner.id, Client.get_by_id(owner.id).version, {"currency_id": usd.id}, SYSTEM_CLI)
    assert Service.get_by_id(hosting.id).amount == 500_000  # 5,000.00
    assert Invoice.get_by_id(bill.id).total == 500_000
    assert InvoiceItem.get(InvoiceItem.invoice == bill.id).amount == 500_000
    assert Transaction.get(Transaction.invoice == bill.id).amount_in == 100_000

    update_client(owner.id, Client.get_by_id(owner.id).version, {"currency_id": jpy.id}, SYSTEM_CLI)
    assert Service.get_by_id(hosting.id).amount == 5_000

    cents = _in(client(), usd)
    odd = service(cents, dt.date(2026, 7, 1), amount=25_050)  # 250.50
    with pytest.raises(ValidationError) as refused:
        update_client(
            cents.id, Client.get_by_id(cents.id).version, {"currency_id": jpy.id}, SYSTEM_CLI
        )
    assert "currency_id" in refused.value.errors
    assert Client.get_by_id(cents.id).currency_id == usd.id
    assert Service.get_by_id(odd.id).amount == 25_050

    row = {"code": "USD", "prefix": "$", "suffix": "", "decimals": 0, "rate": "1", "default": True}
    with pytest.raises(ValidationError) as refused:
        save("currencies", row, SYSTEM_CLI)
    assert "decimals" in refused.value.errors
    with pytest.raises(ImportError_):
        import_document({"format": "gobiller/1", "currencies": [row]})
    assert Currency.get(Currency.code == "USD").decimals == 2
    save("currencies", {**row, "decimals": 3, "code": "EUR", "default": False}, SYSTEM_CLI)


@pytest.mark.parametrize(
    "rate",
    ["1E-30", " 1.5", "1.5 ", "-2", "0", "NaN", "Infinity", "1e3", "0.0000001", "99999999999"],
)
def test_an_exchange_rate_is_a_sane_positive_decimal(db: str, rate: str) -> None:
    from rules.audit import SYSTEM_CLI
    from rules.errors import ValidationError
    from rules.interchange.reference import save

    row = {
        "code": "EUR",
        "prefix": "€",
        "suffix": "",
        "decimals": 2,
        "rate": rate,
        "default": False,
    }
    with pytest.raises(ValidationError):
        save("currencies", row, SYSTEM_CLI)
    assert not Currency.select().where(Currency.code == "EUR").exists()


def test_invoice_numbers_only_go_up_past_numbers_written_behind_the_sequence(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """3,000 invoices written by plain SQL (an old tool, a bulk load) without the
    sequence: the next number is 3001, found in one step, not a batch at a time."""
    from store import sequences

    owner = client()
    rows = [
        {
            "client": owner.id,
            "number": str(n),
            "date": dt.date(2026, 1, 1),
            "due_date": dt.date(2026, 1, 15),
            "status": "Paid",
            "payment_method": "banktransfer",
        }
        for n in range(1, 3001)
    ]
    for start in range(0, len(rows), 500):
        Invoice.insert_many(rows[start : start + 500]).execute()
    calls: list[int] = []
    real = sequences.allocate
    monkeypatch.setattr(sequences, "allocate", lambda n: calls.append(n) or real(n))
    service(owner, dt.date(2026, 7, 1))
    run(dt.date(2026, 6, 17), only=("invoice",))
    assert Invoice.select().order_by(Invoice.id.desc()).first().number == "3001"
    assert len(calls) <= 2
