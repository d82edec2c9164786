"""Late fees: once per invoice, ``late_fee_days`` after it became overdue.

Percentage of the subtotal (before tax) or a fixed amount, never below the
minimum; taxed when ``late_fee_taxed`` unless the client is tax exempt; never for
Late Fees exempt clients (PRODUCT.md §3). The days count from the later of the
due date and the invoice date, so a fee never lands on an invoice the client has
only just been sent. Fixed amounts (the fixed fee, the minimum) are set in the
default currency and converted by the client currency's rate. A setting of 0
switches the rule off (``late_fee_amount`` 0, ``late_fee_days`` 0, as in WHMCS), and
a fee that comes to 0 is not added: no "Late fee 0.00" line, no claim used up.
Only invoices still owing (balance above zero) are charged.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from decimal import Decimal
from typing import Any

from peewee import fn

from rules.billing.automation import RuleTally, RunContext, chunks, claim, in_window
from rules.billing.tax import recompute_invoices
from store.bulk import bulk_insert
from store.db import writer
from store.models import Client, Currency, Invoice, InvoiceItem
from store.models.enums import InvoiceStatus, ItemType
from store.money import format_money, from_default_currency, round_half_up
from store.queries import among, balance_due, filter_only, overdue_from
from store.settings import Settings

RULE = "late_fee"


def rule_off(settings: Settings) -> str:
    """Why the late-fee rule is switched off by its settings, or "" when it is on."""
    if not settings.late_fee_days:
        return "late fees are off (late_fee_days is 0)"
    if not settings.late_fee_decimal:
        return "late fees are off (late_fee_amount is 0)"
    return ""


def fee_for(subtotal: int, decimals: int, rate: str, settings: Settings) -> int:
    """The late fee in minor units of the invoice's currency.

    ``subtotal`` is the invoice subtotal in those minor units; ``decimals`` and ``rate``
    are the currency's (rate against the default currency, an exact decimal string).
    Percentage fees are a percentage of the subtotal; a fixed fee and the minimum are
    amounts in the default currency, converted (``from_default_currency``). 0 when the
    rule is off or the fee comes to nothing.
    """
    if rule_off(settings):
        return 0
    if settings.late_fee_type == "percentage":
        fee = int(round_half_up(Decimal(subtotal) * settings.late_fee_decimal / 100, 0))
    else:
        fee = from_default_currency(settings.late_fee_decimal, rate, decimals)
    minimum = from_default_currency(settings.late_fee_minimum_decimal, rate, decimals)
    return max(fee, minimum, 0)


def candidates(ctx: RunContext) -> list[tuple[Any, ...]]:
    """(invoice, client, overdue from, subtotal, late fees exempt, tax exempt, decimals,
    rate, currency code)
    for Unpaid invoices still owing whose overdue clock passed ``late_fee_days`` and that
    have no late fee yet (one query)."""
    if rule_off(ctx.settings):
        return []
    cutoff = ctx.business_date - dt.timedelta(days=ctx.settings.late_fee_days)
    has_fee = InvoiceItem.select(InvoiceItem.id).where(
        (InvoiceItem.invoice == Invoice.id) & (InvoiceItem.type == ItemType.LATE_FEE)
    )
    query: Any = (
        Invoice.select(
            Invoice.id,
            Invoice.client,
            overdue_from(),
            Invoice.subtotal,
            Client.late_fees_exempt,
            Client.tax_exempt,
            Currency.decimals,
            Currency.rate,
            Currency.code,
        )
        .join(Client)
        .join(Currency)
        .where(
            (Invoice.status == InvoiceStatus.UNPAID)
            & (Invoice.due_date <= cutoff)
            # Read from the due-date index the query walks, which holds the date too.
            & (filter_only(Invoice.date) <= cutoff)
            & in_window(Invoice.due_date)
            & in_window(Invoice.date)
            & ~fn.EXISTS(has_fee)
            & (balance_due() > 0)
        )
    )
    if ctx.client_ids is not None:
        query = query.where(Invoice.client.in_(list(ctx.client_ids)))
    return list(query.tuples())


def run(ctx: RunContext) -> RuleTally:
    """Add the late fees due on the business date (a fixed number of queries)."""
    tally = RuleTally()
    due = []
    for row in candidates(ctx):
        invoice_id, client_id, since, subtotal, fees_exempt, tax_exempt, decimals, rate, code = row
        if fees_exempt:
            tally.skipped += 1
            ctx.skipped(RULE, client_id, f"invoice:{invoice_id}", "client is Late Fees exempt")
            continue
        fee = fee_for(subtotal, decimals, rate, ctx.settings)
        if fee <= 0:
            tally.skipped += 1  # nothing to add: no 0.00 line, the invoice's one fee kept
            ctx.skipped(RULE, client_id, f"invoice:{invoice_id}", "the fee comes to 0")
            continue
        due.append((invoice_id, client_id, _date(since), fee, bool(tax_exempt), code))
    if not due:
        return tally
    currencies = {c.code: c for c in Currency.select()}
    for batch in chunks(due):
        with writer():
            tally.acted += _apply(ctx, batch, currencies)
    return tally


def _apply(ctx: RunContext, batch: Any, currencies: dict[str, Currency]) -> int:
    """Claim, add fee items and recompute the totals of a batch (a fixed number of queries)."""
    keys = [(f"invoice:{row[0]}", "", row[2]) for row in batch]
    won = claim(ctx, RULE, keys)
    rows = []
    for row, key in zip(batch, keys, strict=True):
        invoice_id, client_id, since, fee, _, code = row
        if key in won:
            rows.append(row)
            amount = format_money(fee, currencies[code])
            ctx.acted(RULE, client_id, key[0], "", f"add late fee {amount}")
        else:
            ctx.skipped(RULE, client_id, key[0], f"late fee already added (overdue from {since})")
    if not rows:
        return 0
    order: dict[int, int] = defaultdict(int)
    existing: Any = (
        InvoiceItem.select(InvoiceItem.invoice, fn.MAX(InvoiceItem.sort_order))
        .where(among(InvoiceItem.invoice, [row[0] for row in rows]))
        .group_by(InvoiceItem.invoice)
        .tuples()
    )
    for invoice_id, sort in existing:
        order[invoice_id] = (sort or 0) + 1
    new_items = [
        (
            invoice_id,
            ItemType.LATE_FEE.value,
            "Late fee",
            fee,
            ctx.settings.late_fee_taxed and not tax_exempt,
            order[invoice_id],
        )
        for invoice_id, _, _, fee, tax_exempt, _ in rows
    ]
    bulk_insert(
        InvoiceItem,
        ("invoice_id", "type", "description", "amount", "taxed", "sort_order"),
        new_items,
    )
    recompute_invoices([row[0] for row in rows], ctx.settings)
    return len(rows)


def _date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))
