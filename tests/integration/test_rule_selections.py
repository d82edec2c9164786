"""The rules' selections read the invoices they may act on, not every open invoice.

Each selection carries guards that hold for nearly every row (a date inside the
plausible window, ``rules.billing.automation.in_window``). SQLite keeps no histogram,
takes any range for a narrow one, and walked the guard's index range, every Unpaid
invoice, instead of the index of the rule's own narrow window: at 1M clients the
notice selections took 11 s for 38,000 rows. The work of each selection is counted
here in SQLite virtual-machine steps (``set_progress_handler``), a count that does not
depend on the machine's speed; invoices no rule can act on must not add to it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import Any

import pytest

from rules.billing import capture, invoicing, late_fees, notices
from rules.billing.automation import RunContext, dates_outside_window
from rules.billing.cron import run_rules
from rules.billing.invoicing import INVOICE_COLUMNS
from store.bulk import bulk_insert
from store.db import database, writer
from store.models import Client, Currency, Invoice, Product, Service, StoredCard
from store.settings import load_settings
from tests.conftest import Databases, bulk_clients

DAY = dt.date(2026, 3, 10)
STAMP = "2026-01-01 00:00:00"

SELECTIONS: dict[str, Callable[[RunContext], Any]] = {
    "invoice": invoicing._due_items,
    "notice": notices.candidates,
    "late_fee": late_fees.candidates,
    "capture": capture.candidates,
    "date_check": dates_outside_window,
}


def _invoice(number: int, client: int, issued: dt.date, due: dt.date) -> tuple[Any, ...]:
    # Numbered apart from the sequence the rules number new invoices from.
    return (number, client, f"T{number}", issued.isoformat(), due.isoformat(), None, "Unpaid",
            "sandboxcard", 1000, 0, 0, 1000, 0, 0, "", STAMP, 1)  # fmt: skip


def _seed(clients: int) -> None:
    """``clients`` clients paying by stored card, each with a service to invoice and an
    invoice for every other kind of work: a reminder, a first and a third overdue
    notice, a late fee, a capture today; and one invoice due in 2101, which only the
    date check finds."""
    currency = Currency.create(code="USD", prefix="$", is_default=True)
    Product.create(name="Hosting")
    with writer():
        bulk_clients(range(1, clients + 1), currency.id, payment_method="sandboxcard")
        bulk_insert(
            StoredCard,
            ("client_id", "gateway", "token", "last4", "expiry", "created_at"),
            [(c, "sandboxcard", "ok_1", "4242", "2030-01", STAMP) for c in range(1, clients + 1)],
        )
        rows = []
        for c in range(1, clients + 1):
            for days in (7, -1, -3, -10, 0):  # due in: reminder, first, third, fee, capture
                due = DAY + dt.timedelta(days=days)
                rows.append(_invoice(len(rows) + 1, c, due - dt.timedelta(days=14), due))
        rows.append(_invoice(len(rows) + 1, 1, DAY, dt.date(2101, 1, 1)))
        bulk_insert(Invoice, INVOICE_COLUMNS, rows)
        _services(1, clients, DAY + dt.timedelta(days=3))


def _services(first: int, count: int, due: dt.date) -> None:
    """``count`` Active monthly services, one per client from ``first`` on (in turn)."""
    product = Product.get()
    clients = Client.select().count()
    bulk_insert(
        Service,
        ("id", "client_id", "product_id", "domain", "status", "billing_cycle", "amount",
         "next_due_date", "payment_method", "created_at"),
        [(first + n, 1 + n % clients, product.id, "", "Active", "Monthly", 1000,
          due.isoformat(), "sandboxcard", STAMP) for n in range(count)],
    )  # fmt: skip


def _idle(first: int, count: int, clients: int) -> None:
    """``count`` Unpaid invoices and ``count`` Active services no rule acts on today:
    invoices issued today and due in 40 days, services due in 40 days."""
    with writer():
        bulk_insert(
            Invoice,
            INVOICE_COLUMNS,
            [
                _invoice(first + n, 1 + n % clients, DAY, DAY + dt.timedelta(days=40))
                for n in range(count)
            ],
        )
        _services(first, count, DAY + dt.timedelta(days=40))


def _steps(ctx: RunContext) -> dict[str, tuple[int, int]]:
    """Per selection: (rows found, virtual-machine steps / 100)."""
    connection = database.connection()
    found: dict[str, tuple[int, int]] = {}
    ticks = [0]

    def tick() -> int:
        ticks[0] += 1
        return 0  # go on

    for name, select in SELECTIONS.items():
        ticks[0] = 0
        connection.set_progress_handler(tick, 100)
        try:
            rows = len(select(ctx))
        finally:
            connection.set_progress_handler(None, 0)
        found[name] = (rows, ticks[0])
    return found


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
@pytest.mark.parametrize("analyzed", [True, False], ids=["analyzed", "no-statistics"])
def test_invoices_no_rule_acts_on_add_no_work_to_the_selections(db: str, analyzed: bool) -> None:
    """20,000 Unpaid invoices and services due in 40 days, beside 240 that each rule acts on: every
    selection finds the same rows and does less than a tenth more work, with planner
    statistics (ANALYZE, as the benchmark runs) and without (a database nobody analyzed)."""
    clients = 40
    _seed(clients)
    ctx = RunContext(DAY, load_settings())
    if analyzed:
        database.execute_sql("ANALYZE")
    before = _steps(ctx)
    assert all(rows for rows, _ in before.values()), before
    _idle(10_000, 20_000, clients)
    if analyzed:
        database.execute_sql("ANALYZE")
    after = _steps(ctx)
    for name, (rows, steps) in after.items():
        assert rows == before[name][0], (name, before, after)
        # Reading the 20,000 idle rows costs several steps each (~2,000 ticks of 100).
        assert steps <= before[name][1] * 1.1 + 20, (name, before, after)


def _run_counted(analyzed: bool) -> tuple[dict[str, int], int]:
    """The day's rules on the open database (no file check: it reads the whole file by
    design): what each acted on, and the virtual-machine steps / 100 of the run."""
    if analyzed:
        database.execute_sql("ANALYZE")
    ticks = [0]

    def tick() -> int:
        ticks[0] += 1
        return 0

    connection = database.connection()
    connection.set_progress_handler(tick, 100)
    try:
        summary = run_rules(DAY, load_settings(), check_file=False)
    finally:
        connection.set_progress_handler(None, 0)
    return {name: t.acted for name, t in summary.rules.items()}, ticks[0]


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
@pytest.mark.parametrize("analyzed", [True, False], ids=["analyzed", "no-statistics"])
def test_invoices_no_rule_acts_on_add_no_work_to_the_day(
    databases: Databases, analyzed: bool
) -> None:
    """The whole day, writes included (claims, emails, charges, invoices marked paid): a
    database with 20,000 idle Unpaid invoices and services beside the same 240 that the
    rules act on does the same and less than a tenth more work. The kind: a batch looked
    up by its keys (``store.queries.among``) beside a broad condition (Unpaid, a status)
    that the planner took as the narrower one, and walked."""
    databases.open(databases.new_url(migrated=True))
    _seed(40)
    plain, plain_steps = _run_counted(analyzed)
    databases.open(databases.new_url(migrated=True))
    _seed(40)
    _idle(10_000, 20_000, 40)
    busy, busy_steps = _run_counted(analyzed)
    assert busy == plain and plain["capture"] and plain["notice"], (plain, busy)
    assert busy_steps <= plain_steps * 1.1 + 50, (plain_steps, busy_steps)
