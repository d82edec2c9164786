"""A fresh demo is billed up to its date, as if the daily cron had always run: the first
``gobiller cron`` on it does one day's work, not the backlog of every service never
invoiced (on a 1,000-client demo it invoiced 840 items and sent 1,663 emails).

The bounds are derived from the demo's own data before the run: what falls due on the
business date itself (PRODUCT.md §3's rules, each acting once per subject and day).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from peewee import fn

from rules.billing.automation import RunContext
from rules.billing.notices import stage_dates
from rules.demo import generate_demo
from store.models import Addon, Domain, Email, Invoice, InvoiceItem, Service
from store.models.enums import ACTIVE_DOMAIN_STATUSES, ACTIVE_SERVICE_STATUSES, InvoiceStatus
from store.queries import balance_due
from store.settings import load_settings

DAY = dt.date(2026, 11, 20)
CLIENTS = 1000


def _date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def _billed_items() -> list[tuple[str, int, dt.date, Any]]:
    """(kind, id, next due date, status of the invoice billing that due date or None)
    for every item the invoice rule bills (active, on a recurring cycle)."""
    rows = []
    sources: list[tuple[str, Any, Any]] = [
        (
            "service",
            Service,
            Service.status.in_(ACTIVE_SERVICE_STATUSES)
            & Service.billing_cycle.not_in(("Free", "One Time")),
        ),
        (
            "addon",
            Addon,
            Addon.status.in_(ACTIVE_SERVICE_STATUSES)
            & Addon.billing_cycle.not_in(("Free", "One Time")),
        ),
        ("domain", Domain, Domain.status.in_(ACTIVE_DOMAIN_STATUSES)),
    ]
    for kind, model, billed in sources:
        covering = (
            Invoice.select(Invoice.status)
            .join(InvoiceItem)
            .where(
                (InvoiceItem.related_type == kind)
                & (InvoiceItem.related_id == model.id)
                & (InvoiceItem.related_due_date == model.next_due_date)
            )
            .limit(1)
        )
        query: Any = model.select(model.id, model.next_due_date, covering).where(billed).tuples()
        rows += [(kind, id_, _date(due), status) for id_, due, status in query]
    return rows


def _cron(url: str, tmp_path: Path) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "tui.cli", "--database", url, "cron", "--date", str(DAY), "--json"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={**os.environ, "XDG_DATA_HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)},
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    return dict(json.loads(out.stdout))


def test_a_fresh_demo_is_billed_up_to_its_date_and_the_first_cron_does_one_days_work(
    db: str, tmp_path: Path
) -> None:
    generate_demo(CLIENTS, seed=1, today=DAY)
    settings = load_settings()
    reached = DAY + dt.timedelta(days=settings.invoice_days_before_due)
    items = _billed_items()
    assert len(items) > CLIENTS  # not vacuous: a thousand clients hold many billed items

    # Nothing the cron of the day before would have invoiced is left without an invoice,
    # and an item past its due date is still due because its invoice is unpaid.
    missing = [i for i in items if i[2] < reached and i[3] is None]
    assert not missing, f"{len(missing)} items due by {reached} never invoiced: {missing[:5]}"
    paid_yet_due = [i for i in items if i[2] < DAY and i[3] != InvoiceStatus.UNPAID]
    assert not paid_yet_due, paid_yet_due[:5]
    # A realistic book: paid history, invoices coming due, and some overdue.
    counts: Any = (
        Invoice.select(Invoice.status, fn.COUNT(Invoice.id)).group_by(Invoice.status).tuples()
    )
    by_status: dict[str, int] = dict(counts)
    assert by_status[InvoiceStatus.PAID] > CLIENTS
    overdue = Invoice.select().where(
        (Invoice.status == InvoiceStatus.UNPAID) & (Invoice.due_date < DAY)
    )
    assert 0.02 * CLIENTS < overdue.count() < 0.4 * CLIENTS

    # What may act on the business date, from the data.
    ctx = RunContext(business_date=DAY, settings=settings)
    unpaid: Any = (
        Invoice.select(Invoice.id, Invoice.due_date, Invoice.date, Invoice.payment_method)
        .where((Invoice.status == InvoiceStatus.UNPAID) & (balance_due() > 0))
        .tuples()
    )
    invoices_due = sum(1 for i in items if i[2] == reached and i[3] is None)
    notices_due = late_fees_due = captures_due = 0
    for _, due, issued, method in unpaid:
        due, issued = _date(due), _date(issued)
        notices_due += DAY in stage_dates(due, ctx, issued).values()
        clock = max(due, issued) + dt.timedelta(days=settings.late_fee_days)
        late_fees_due += clock == DAY
        captures_due += method == "sandboxcard" and due <= DAY
    assert Email.select().count() == 0

    summary = _cron(db, tmp_path)

    acted = {name: tally["acted"] for name, tally in summary["rules"].items()}
    assert acted["invoice"] <= invoices_due, (acted, invoices_due)
    assert acted["notice"] <= notices_due, (acted, notices_due)
    assert acted["late_fee"] <= late_fees_due, (acted, late_fees_due)
    assert acted["capture"] <= captures_due, (acted, captures_due)
    assert acted["status_update"] == 0  # statuses already follow the clients' products
    # One email per invoice created, notice sent and capture (approved or declined), at
    # most one "Credit Card Expired" per capture candidate without a valid card.
    emails = Email.select().count()
    assert 0 < emails <= invoices_due + notices_due + captures_due, (emails, acted)
    assert emails < 0.2 * CLIENTS
