"""The dry run is the run rolled back: what it lists is what the run does, and it leaves
nothing behind; ``explain`` is that same run for one client.

A property test draws random clients, services, invoices, cards, settings and business
dates (in any order, with staff changes between runs) on a real database and checks,
before every real run, that the rolled-back run listed exactly the actions the real run
then took, rule by rule, and changed nothing.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.billing.cron import RULE_NAMES, CronSummary, run_cron
from rules.billing.explain import explain
from store.db import database, writer
from store.models import (
    ActionLedger,
    Client,
    CronRun,
    Currency,
    Email,
    Invoice,
    InvoiceItem,
    Product,
    Service,
    Setting,
    StoredCard,
    Transaction,
)
from store.settings import STATUS_UPDATE_MODES, load_settings, save_settings

DAY = dt.date(2026, 3, 10)
_emails = itertools.count()


def durable_state() -> dict[str, list[str]]:
    """Every row of every table (and the invoice number sequence), as text."""
    state = {}
    for table in sorted(database.get_tables()):
        rows = database.execute_sql(f'SELECT * FROM "{table}"').fetchall()
        state[table] = sorted(repr(tuple(row)) for row in rows)
    return state


def actions(summary: CronSummary) -> Counter[tuple[Any, ...]]:
    return Counter(tuple(a.as_dict().values()) for a in summary.actions)


def tallies(summary: CronSummary) -> dict[str, tuple[int, int, int]]:
    return {name: (t.acted, t.skipped, t.failed) for name, t in summary.rules.items()}


def _wipe() -> None:
    """Empty the tables the examples fill (templates and currencies stay). Clients the
    append-only audit log names cannot go: they are Closed and locked, with nothing
    left, so no rule looks at them again."""
    with writer():
        for model in (
            ActionLedger,
            Email,
            Transaction,
            InvoiceItem,
            Invoice,
            StoredCard,
            Service,
            CronRun,
            Product,
            Setting,
        ):
            model.delete().execute()
        Client.update(status="Closed", status_locked=True).execute()
        database.execute_sql('UPDATE "invoice_sequence" SET "last_value" = 0')


SETTINGS = st.fixed_dictionaries(
    {
        "invoice_days_before_due": st.integers(0, 20),
        "payment_reminder_days": st.integers(0, 10),
        "overdue_notice_days": st.lists(st.integers(0, 8), min_size=3, max_size=3),
        "late_fee_days": st.integers(0, 8),
        "late_fee_type": st.sampled_from(["percentage", "fixed"]),
        "late_fee_amount": st.sampled_from(["0.00", "2.50", "10.00"]),
        "late_fee_minimum": st.sampled_from(["0.00", "1.00"]),
        "late_fee_taxed": st.booleans(),
        "capture_days_before_due": st.integers(0, 5),
        "status_update": st.sampled_from(STATUS_UPDATE_MODES),
        "tax_enabled": st.booleans(),
        "invoice_number_format": st.sampled_from(["{seq}", "INV-{year}-{seq:05d}"]),
    }
)
METHOD = st.sampled_from(["banktransfer", "sandboxcard"])
SERVICE = st.tuples(
    st.integers(-30, 30),  # next due date, days from DAY
    st.sampled_from(["Monthly", "Annually", "Free"]),
    st.sampled_from(["Active", "Suspended", "Cancelled"]),
    METHOD,
    st.sampled_from([0, 999, 10_000]),
)
INVOICE = st.tuples(
    st.integers(-40, 20),  # due date, days from DAY
    st.integers(0, 20),  # issued this many days before the due date
    st.sampled_from(["Unpaid", "Unpaid", "Paid", "Cancelled"]),
    METHOD,
    st.sampled_from([0, 5_000, 12_345]),
    st.sampled_from([0, 0, 2_000]),  # paid towards it already
)
CLIENT = st.fixed_dictionaries(
    {
        "status": st.sampled_from(["Active", "Inactive", "Closed"]),
        "status_locked": st.booleans(),
        "late_fees_exempt": st.booleans(),
        "overdue_notices_disabled": st.booleans(),
        "cc_processing_disabled": st.booleans(),
        "separate_invoices": st.booleans(),
        "currency": st.sampled_from(["USD", "JPY"]),
        "services": st.lists(SERVICE, max_size=3),
        "invoices": st.lists(INVOICE, max_size=3),
        # a card that approves (ok_) or declines, valid or expired on the business dates
        "card": st.none() | st.tuples(st.sampled_from(["ok_1", "no_1"]), st.booleans()),
    }
)
#: Business dates to run, in the order drawn (later, earlier, the same again), and
#: whether staff set every Inactive client back to Active before each.
RUNS = st.lists(st.tuples(st.integers(-3, 12), st.booleans()), min_size=1, max_size=3)


def _currencies() -> dict[str, Currency]:
    usd = Currency.get_or_create(code="USD", defaults={"is_default": True, "suffix": " USD"})[0]
    jpy = Currency.get_or_create(code="JPY", defaults={"prefix": "¥", "decimals": 0})[0]
    return {"USD": usd, "JPY": jpy}


def _seed(clients: list[dict[str, Any]]) -> None:
    currencies = _currencies()
    product = Product.create(name="Hosting")
    for n, spec in enumerate(clients):
        c = Client.create(
            first_name=f"P{n}",
            last_name="Random",
            email=f"p{next(_emails)}@example.com",
            currency=currencies[spec["currency"]],
            status=spec["status"],
            status_locked=spec["status_locked"],
            late_fees_exempt=spec["late_fees_exempt"],
            overdue_notices_disabled=spec["overdue_notices_disabled"],
            cc_processing_disabled=spec["cc_processing_disabled"],
            separate_invoices=spec["separate_invoices"],
        )
        for due, cycle, status, method, amount in spec["services"]:
            Service.create(
                client=c,
                product=product,
                status=status,
                billing_cycle=cycle,
                amount=amount,
                next_due_date=DAY + dt.timedelta(days=due),
                payment_method=method,
            )
        for m, (due, before, status, method, subtotal, paid) in enumerate(spec["invoices"]):
            due_date = DAY + dt.timedelta(days=due)
            inv = Invoice.create(
                client=c,
                number=f"H{n}-{m}",
                date=due_date - dt.timedelta(days=before),
                due_date=due_date,
                status=status,
                payment_method=method,
                subtotal=subtotal,
                total=subtotal,
            )
            InvoiceItem.create(invoice=inv, type="Hosting", description="Hosting", amount=subtotal)
            if paid:
                Transaction.create(client=c, invoice=inv, gateway="banktransfer", amount_in=paid)
        if spec["card"] is not None:
            token, valid = spec["card"]
            StoredCard.create(
                client=c,
                gateway="sandboxcard",
                token=token,
                last4="4242",
                expiry="2030-12" if valid else "2025-01",
            )


@pytest.mark.slow
@settings(
    max_examples=int(os.environ.get("GOBILLER_DRY_RUN_EXAMPLES", "25")),
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    chosen=SETTINGS,
    clients=st.lists(CLIENT, min_size=1, max_size=6),
    runs=RUNS,
)
def test_plan_equals_actions_for_every_rule(
    db: str, chosen: dict[str, Any], clients: list[dict[str, Any]], runs: list[tuple[int, bool]]
) -> None:
    _wipe()
    save_settings(chosen)
    _seed(clients)
    for offset, staff_reactivates in runs:
        if staff_reactivates:  # staff set clients back to Active after a run moved them
            Client.update(status="Active").where(Client.status == "Inactive").execute()
        day = DAY + dt.timedelta(days=offset)
        before = durable_state()
        plan = run_cron(day=day, dry_run=True)
        assert durable_state() == before, "the dry run left something behind"
        done = run_cron(day=day, deliver=False)
        assert actions(plan) == actions(done)
        assert tallies(plan) == tallies(done)
        assert set(plan.rules) >= set(RULE_NAMES)


# ------------------------------------------------------------------ nothing lasts


def test_the_dry_run_takes_no_durable_effect(db: str, tmp_path: Path) -> None:
    """No run record, ledger row, email (queued or delivered), charge or invoice number:
    the real run after it numbers its invoices from where the last one left off."""
    from store.config import Config

    currencies = _currencies()
    product = Product.create(name="Hosting")
    for n in range(3):
        c = Client.create(
            first_name=f"D{n}",
            last_name="Dry",
            email=f"d{n}@example.com",
            currency=currencies["USD"],
            payment_method="sandboxcard",
        )
        StoredCard.create(
            client=c, gateway="sandboxcard", token="ok_1", last4="4242", expiry="2030-12"
        )
        Service.create(
            client=c,
            product=product,
            status="Active",
            billing_cycle="Monthly",
            amount=1_000,
            next_due_date=DAY - dt.timedelta(days=2),  # past due, never invoiced
            payment_method="sandboxcard",
        )
    save_settings({"invoice_number_format": "INV-{year}-{seq:05d}"})
    maildir = tmp_path / "Maildir"
    config = Config(database_url=db, database_source="test", maildir=maildir)
    before = durable_state()
    plan = run_cron(day=DAY, dry_run=True, config=config)
    assert durable_state() == before
    assert not maildir.exists()
    assert CronRun.select().count() == 0
    # The run as it will be: invoices, the invoices' capture the same run, their emails.
    planned = actions(plan)
    assert sum(n for (rule, *_), n in planned.items() if rule == "invoice") == 3
    assert sum(n for (rule, *_), n in planned.items() if rule == "capture") == 3
    assert plan.mail["sent"] == 6  # Invoice Created, then the payment confirmation
    done = run_cron(day=DAY, config=config)
    assert actions(done) == planned
    assert sorted(i.number for i in Invoice.select()) == [
        "INV-2026-00001",
        "INV-2026-00002",
        "INV-2026-00003",
    ]
    assert len(list((maildir / "new").iterdir())) == done.mail["sent"] == 6


# ------------------------------------------------------------------ explain


def _lapsed_client() -> Client:
    """An Active client with nothing active: the status update makes it Inactive."""
    return Client.create(
        first_name="Idle",
        last_name="Client",
        email="idle@example.com",
        currency=_currencies()["USD"],
    )


def test_explain_reads_the_ledger_like_the_run(db: str) -> None:
    """Staff set a client back to Active after the run made it Inactive: the ledger
    holds today's change, so the run leaves the client alone, and so do the dry run
    and explain."""
    c = _lapsed_client()
    first = run_cron(day=DAY, deliver=False)
    assert ("status_update", c.id, f"client:{c.id}", "Inactive", "Active -> Inactive") in actions(
        first
    )
    Client.update(status="Active").where(Client.id == c.id).execute()
    plan = run_cron(day=DAY, dry_run=True)
    lines = {line.rule: line for line in explain(c.id, DAY, load_settings())}
    again = run_cron(day=DAY, deliver=False)
    assert not [a for a in plan.actions if a.rule == "status_update"]
    assert not [a for a in again.actions if a.rule == "status_update"]
    assert lines["status_update"].acts is False
    assert "already set Inactive today" in lines["status_update"].reason
    assert Client.get_by_id(c.id).status == "Active"


def test_explain_lists_what_the_run_does_for_the_client(db: str) -> None:
    """A service past due and never invoiced: the run invoices it and charges the card
    for the new invoice the same run; explain says both, and nothing lasts."""
    usd = _currencies()["USD"]
    c = Client.create(first_name="Due", last_name="Now", email="due@example.com", currency=usd)
    other = Client.create(first_name="Other", last_name="One", email="o@example.com", currency=usd)
    product = Product.create(name="Hosting")
    for owner in (c, other):
        StoredCard.create(
            client=owner, gateway="sandboxcard", token="ok_1", last4="4242", expiry="2030-12"
        )
        Service.create(
            client=owner,
            product=product,
            status="Active",
            billing_cycle="Monthly",
            amount=2_500,
            next_due_date=DAY - dt.timedelta(days=1),
            payment_method="sandboxcard",
        )
    before = durable_state()
    lines = {line.rule: line for line in explain(c.id, DAY, load_settings())}
    assert durable_state() == before
    assert lines["invoice"].acts and "1 item(s)" in lines["invoice"].reason
    assert lines["capture"].acts and "charge 25.00 USD through sandboxcard" in (
        lines["capture"].reason
    )
    done = run_cron(day=DAY, deliver=False)
    mine = [a for a in done.actions if a.client_id == c.id]
    assert {a.rule for a in mine} == {"invoice", "capture"}


# ------------------------------------------------------------------ settings read once


def test_settings_are_read_once_per_run(db: str, tmp_path: Path) -> None:
    """Every rule, the queued emails and the outbox flush use the settings the run read
    once (counted on the database: queries on the settings table)."""
    from playhouse.test_utils import count_queries

    from store.config import Config

    test = _currencies()["USD"]
    product = Product.create(name="Hosting")
    for n in range(4):
        c = Client.create(first_name=f"S{n}", last_name="x", email=f"s{n}@e.com", currency=test)
        token = "ok_1" if n % 2 else "no"  # approved and declined
        StoredCard.create(client=c, gateway="sandboxcard", token=token, last4="1", expiry="2030-01")
        Service.create(
            client=c,
            product=product,
            status="Active",
            billing_cycle="Monthly",
            amount=1_000,
            next_due_date=DAY + dt.timedelta(days=n),
            payment_method="sandboxcard",
        )
        for due in (DAY - dt.timedelta(days=d) for d in (1, 2, 6, -7)):
            Invoice.create(
                client=c,
                number=f"S{n}-{due}",
                date=due - dt.timedelta(days=14),
                due_date=due,
                payment_method="sandboxcard",
                subtotal=1_000,
                total=1_000,
            )
    config = Config(database_url=db, database_source="test", maildir=tmp_path / "Maildir")
    for dry_run in (True, False):
        with count_queries() as counter:
            summary = run_cron(day=DAY, config=config, dry_run=dry_run)
        assert {"invoice", "notice", "late_fee", "capture"} <= {a.rule for a in summary.actions}
        read = [sql for sql, _ in (q.msg for q in counter.get_queries()) if '"setting"' in sql]
        assert len(read) == 1, read


# ------------------------------------------------------------------ a fresh demo


def _gobiller(url: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", "--database", url, *args],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, **env},
    )


@pytest.mark.slow
def test_plan_equals_actions_on_a_fresh_1000_client_demo(db: str, tmp_path: Path) -> None:
    env = {"XDG_DATA_HOME": str(tmp_path)}
    day = "2026-03-10"
    made = _gobiller(db, "demo", "--clients", "1000", "--date", day, "--json", env=env)
    assert made.returncode == 0, made.stderr
    before = durable_state()
    plan = _gobiller(db, "cron", "--dry-run", "--json", "--date", day, env=env)
    assert plan.returncode in (0, 1), plan.stderr
    assert durable_state() == before
    done = _gobiller(db, "cron", "--json", "--date", day, env=env)
    assert done.returncode in (0, 1), done.stderr
    planned, acted = json.loads(plan.stdout), json.loads(done.stdout)

    def listed(summary: dict[str, Any]) -> Counter[tuple[Any, ...]]:
        return Counter(tuple(a.values()) for a in summary["actions"])

    assert listed(planned) == listed(acted)
    assert {r: t["acted"] for r, t in planned["rules"].items()} == {
        r: t["acted"] for r, t in acted["rules"].items()
    }
    counts = Counter(a["rule"] for a in planned["actions"])
    assert counts["invoice"] and counts["notice"] and counts["capture"], counts
    assert planned["dry_run"] is True and planned["mail"]["sent"] == acted["mail"]["sent"]


@pytest.mark.parametrize("only", ["bogus", "invoice,bogus"])
def test_only_is_a_choice_of_the_rule_names(db: str, only: str) -> None:
    from click.testing import CliRunner

    from tui.cli import CRON_RULES, main

    assert CRON_RULES == RULE_NAMES
    result = CliRunner().invoke(main, ["--database", db, "cron", "--only", only, "--dry-run"])
    assert result.exit_code == 64, result.output  # EX_USAGE
    assert "'bogus' is not one of 'invoice', 'notice', 'late_fee'" in result.output


def test_only_takes_commas_or_repeats(db: str, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from tui.cli import main

    runner = CliRunner()
    for args in (["--only", "late_fee,invoice"], ["--only", "invoice", "--only", "late_fee"]):
        result = runner.invoke(
            main, ["--database", db, "cron", "--date", "2026-03-10", "--dry-run", "--json", *args]
        )
        assert result.exit_code == 0, result.output
        assert list(json.loads(result.output)["rules"]) == ["invoice", "late_fee"]
