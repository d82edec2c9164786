"""Late fees: once per invoice, ``late_fee_days`` after it fell due.

Percentage of the subtotal (before tax) or a fixed amount, never below the
minimum; taxed when ``late_fee_taxed`` unless the client is tax exempt; never for
Late Fees exempt clients.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import Any

from peewee import fn

from rules.automation import PlannedAction, RuleTally, RunContext, chunks, claim
from rules.tax import TaxRates, compute
from store.bulk import bulk_insert, bulk_update_column
from store.db import writer
from store.models import Client, Currency, Invoice, InvoiceItem
from store.models.enums import InvoiceStatus, ItemType
from store.money import round_half_up

RULE = "late_fee"


def fee_for(subtotal: int, decimals: int, ctx: RunContext) -> int:
    """The fee in minor units for an invoice subtotal in minor units."""
    s = ctx.settings
    scale = Decimal(10) ** decimals
    if s.late_fee_type == "percentage":
        fee = Decimal(subtotal) * s.late_fee_decimal / 100
    else:
        fee = s.late_fee_decimal * scale
    minimum = s.late_fee_minimum_decimal * scale
    return int(round_half_up(max(fee, minimum), 0))


def candidates(ctx: RunContext) -> list[tuple[Any, ...]]:
    """Unpaid invoices past the late-fee day without a late fee, with what the fee needs."""
    cutoff = ctx.business_date - dt.timedelta(days=ctx.settings.late_fee_days)
    has_fee = InvoiceItem.select(InvoiceItem.id).where(
        (InvoiceItem.invoice == Invoice.id) & (InvoiceItem.type == ItemType.LATE_FEE)
    )
    query: Any = (
        Invoice.select(
            Invoice.id,
            Invoice.client,
            Invoice.due_date,
            Invoice.subtotal,
            Invoice.tax_rate1_e4,
            Invoice.tax_rate2_e4,
            Client.late_fees_exempt,
            Client.tax_exempt,
            Currency.decimals,
        )
        .join(Client)
        .join(Currency)
        .where(
            (Invoice.status == InvoiceStatus.UNPAID)
            & (Invoice.due_date <= cutoff)
            & ~fn.EXISTS(has_fee)
        )
    )
    if ctx.client_ids is not None:
        query = query.where(Invoice.client.in_(list(ctx.client_ids)))
    return list(query.tuples())


def run(ctx: RunContext) -> RuleTally:
    tally = RuleTally()
    due = []
    for row in candidates(ctx):
        if row[6]:  # Late Fees exempt
            tally.skipped += 1
            continue
        due.append(row)
    if ctx.dry_run:
        for invoice_id, client_id, _, subtotal, *_, decimals in due:
            ctx.planned(
                PlannedAction(
                    RULE,
                    client_id,
                    f"invoice:{invoice_id}",
                    "",
                    f"add late fee {fee_for(subtotal, decimals, ctx)} (minor units)",
                )
            )
        tally.acted = len(due)
        return tally
    for batch in chunks(due):
        with writer():
            tally.acted += _apply(ctx, batch)
    return tally


def _apply(ctx: RunContext, batch: Any) -> int:
    """Claim, add fee items and recompute the totals of a batch (a fixed number of queries)."""
    keys = [(f"invoice:{row[0]}", "", _date(row[2])) for row in batch]
    won = claim(ctx, RULE, keys)
    rows = [row for row, key in zip(batch, keys, strict=True) if key in won]
    if not rows:
        return 0
    ids = [row[0] for row in rows]
    items: dict[int, list[tuple[int, bool]]] = defaultdict(list)
    order: dict[int, int] = defaultdict(int)
    existing: Any = (
        InvoiceItem.select(
            InvoiceItem.invoice, InvoiceItem.amount, InvoiceItem.taxed, InvoiceItem.sort_order
        )
        .where(InvoiceItem.invoice.in_(ids))
        .tuples()
    )
    for invoice_id, amount, taxed, sort in existing:
        items[invoice_id].append((amount, bool(taxed)))
        order[invoice_id] = max(order[invoice_id], sort + 1)
    new_items = []
    totals: dict[str, list[tuple[int, int]]] = {"subtotal": [], "tax": [], "tax2": [], "total": []}
    for invoice_id, _, _, subtotal, rate1, rate2, _, exempt, decimals in rows:
        fee = fee_for(subtotal, decimals, ctx)
        taxed = ctx.settings.late_fee_taxed and not exempt
        new_items.append(
            (invoice_id, ItemType.LATE_FEE.value, "Late fee", fee, taxed, order[invoice_id])
        )
        lines = compute([*items[invoice_id], (fee, taxed)], TaxRates(rate1, rate2), ctx.settings)
        for name in totals:
            totals[name].append((invoice_id, getattr(lines, name)))
    bulk_insert(
        InvoiceItem,
        ("invoice_id", "type", "description", "amount", "taxed", "sort_order"),
        new_items,
    )
    for name, pairs in totals.items():
        bulk_update_column(Invoice, name, pairs)
    return len(rows)


def _date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
