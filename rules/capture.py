"""Card capture: unpaid invoices payable through a merchant gateway are charged.

On the due date (or ``capture_days_before_due`` earlier), retried daily, never for
clients with Disable CC Processing or without a stored card. Each attempt has an
idempotency key (invoice and business date), so a rerun cannot charge twice. A
decline sends "Credit Card Payment Failed" and is not a failure of the run; an
approval records a transaction, marks the invoice paid and sends the confirmation.
"""

from __future__ import annotations

import datetime as dt
import time
from decimal import Decimal
from typing import Any

from peewee import JOIN, fn

from rules.automation import PlannedAction, RuleTally, RunContext, chunks, claim
from rules.gateways import MERCHANT_GATEWAYS, Gateway
from rules.invoicing import advance_due_dates
from rules.mail import Notice, queue
from store.bulk import bulk_insert
from store.db import database, writer
from store.models import Client, Currency, Invoice, StoredCard, Transaction, utcnow
from store.models.enums import InvoiceStatus

RULE = "capture"


def candidates(ctx: RunContext) -> list[tuple[Any, ...]]:
    """(invoice, client, total, method, currency, decimals, cc disabled, card token)."""
    horizon = ctx.business_date + dt.timedelta(days=ctx.settings.capture_days_before_due)
    latest_card = (
        StoredCard.select(
            StoredCard.client, StoredCard.gateway, fn.MAX(StoredCard.id).alias("card_id")
        )
        .group_by(StoredCard.client, StoredCard.gateway)
        .alias("latest")
    )
    card = StoredCard.alias("card")
    query: Any = (
        Invoice.select(
            Invoice.id,
            Invoice.client,
            Invoice.total,
            Invoice.payment_method,
            Currency.code,
            Currency.decimals,
            Client.cc_processing_disabled,
            card.token,
        )
        .join(Client)
        .join(Currency)
        .switch(Invoice)
        .join(
            latest_card,
            JOIN.LEFT_OUTER,
            on=(
                (latest_card.c.client_id == Invoice.client)
                & (latest_card.c.gateway == Invoice.payment_method)
            ),
        )
        .join(card, JOIN.LEFT_OUTER, on=(card.id == latest_card.c.card_id))
        .where(
            (Invoice.status == InvoiceStatus.UNPAID)
            & Invoice.payment_method.in_(list(MERCHANT_GATEWAYS))
            & (Invoice.due_date <= horizon)
            & (Invoice.total > 0)
        )
    )
    if ctx.client_ids is not None:
        query = query.where(Invoice.client.in_(list(ctx.client_ids)))
    return database.execute(query).fetchall()  # plain rows: the invoice rows can be many


def run(ctx: RunContext, gateways: dict[str, Gateway] | None = None) -> RuleTally:
    gateways = gateways or MERCHANT_GATEWAYS
    tally = RuleTally()
    due = []
    for row in candidates(ctx):
        _, _, _, _, _, _, disabled, token = row
        if disabled or not token:
            tally.skipped += 1  # Disable CC Processing, or no stored card
            continue
        due.append(row)
    if ctx.dry_run:
        for invoice_id, client_id, total, method, code, decimals, _, _ in due:
            amount = Decimal(total).scaleb(-decimals)
            ctx.planned(
                PlannedAction(
                    RULE,
                    client_id,
                    f"invoice:{invoice_id}",
                    "",
                    f"charge {amount} {code} through {method}",
                )
            )
        tally.acted = len(due)
        return tally
    for batch in chunks(due):
        _capture(ctx, batch, gateways, tally)
    return tally


#: Charge results are committed at least this often, so a crash loses few records.
RECORD_EVERY = 5000
RECORD_SECONDS = 1.0


def _capture(ctx: RunContext, batch: Any, gateways: dict[str, Gateway], tally: RuleTally) -> None:
    """Claim, charge, record: the gateway is called with no transaction open.

    The claim commits first, so a crash after it can never charge twice (the
    attempt is retried on the next business date); the charges run outside any
    transaction, so the write lock is not held across network calls; results
    commit every ``RECORD_EVERY`` charges or ``RECORD_SECONDS``, whichever comes
    first, and only invoices still Unpaid become Paid.
    """
    keys = [(f"invoice:{row[0]}", "", ctx.business_date) for row in batch]
    with writer():
        won = claim(ctx, RULE, keys)
    approved: list[tuple[Any, ...]] = []
    declines: list[Notice] = []
    recorded_at = time.monotonic()
    for row, key in zip(batch, keys, strict=True):
        if key not in won:
            tally.skipped += 1
            continue
        invoice_id, client_id, total, method, code, decimals, _, token = row
        idempotency = f"capture:{invoice_id}:{ctx.business_date.isoformat()}"
        try:
            result = gateways[method].capture(
                token, Decimal(total).scaleb(-decimals), code, idempotency
            )
        except Exception as exc:  # a gateway outage fails this attempt, not the run's others
            tally.failed += 1
            tally.errors.append(f"invoice {invoice_id}: {exc}")
            continue
        tally.acted += 1
        if result.approved:
            approved.append((row, result.transaction_id, idempotency))
        else:
            declines.append(
                Notice(
                    client_id, invoice_id, unique_key=f"declined:{invoice_id}:{ctx.business_date}"
                )
            )
        if (
            len(approved) + len(declines) >= RECORD_EVERY
            or time.monotonic() - recorded_at >= RECORD_SECONDS
        ):
            _commit(ctx, approved, declines)
            approved, declines = [], []
            recorded_at = time.monotonic()
    _commit(ctx, approved, declines)


def _commit(ctx: RunContext, approved: list[tuple[Any, ...]], declines: list[Notice]) -> None:
    if approved or declines:
        with writer():
            _record(ctx, approved)
            queue("Credit Card Payment Failed", declines)


def _record(ctx: RunContext, approved: list[tuple[Any, ...]]) -> None:
    """Every approved charge becomes a transaction (the money was taken); invoices
    paid meanwhile by someone else keep their payment, and get no confirmation."""
    if not approved:
        return
    now = utcnow().isoformat(" ")
    transactions = [
        (client_id, invoice_id, method, txn, idempotency, total, 0, 0, "Card capture", now)
        for (invoice_id, client_id, total, method, *_), txn, idempotency in approved
    ]
    bulk_insert(Transaction, TRANSACTION_COLUMNS, transactions, skip_conflicts=True)
    updated: Any = (
        Invoice.update(status=InvoiceStatus.PAID, date_paid=ctx.business_date)
        .where(
            Invoice.id.in_([row[0] for row, _, _ in approved])
            & (Invoice.status == InvoiceStatus.UNPAID)
        )
        .returning(Invoice.id, Invoice.client)
        .tuples()
        .execute()
    )
    paid = [(invoice_id, client_id) for invoice_id, client_id in updated]
    advance_due_dates([invoice_id for invoice_id, _ in paid])
    queue(
        "Invoice Payment Confirmation",
        [Notice(c, i, unique_key=f"paid:{i}") for i, c in paid],
    )


TRANSACTION_COLUMNS = (
    "client_id",
    "invoice_id",
    "gateway",
    "transaction_id",
    "idempotency_key",
    "amount_in",
    "amount_out",
    "fees",
    "description",
    "date",
)
