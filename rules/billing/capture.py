"""Card capture: unpaid invoices payable through a merchant gateway are charged.

On the due date (or ``capture_days_before_due`` earlier), retried daily, never for
clients with Disable CC Processing or without a stored card. Each attempt has an
idempotency key (invoice and business date) and is claimed before the gateway is
called; one whose result was never recorded is replayed with that same key, so
no run, rerun or crash charges twice. A decline sends "Credit Card Payment Failed"
and is not a failure of the run; an approval records a transaction, marks the
invoice paid and sends the confirmation.
"""

from __future__ import annotations

import datetime as dt
import time
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from rules.billing.automation import RuleTally, RunContext, chunks, claim, in_window
from rules.billing.gateways import MERCHANT_GATEWAYS, Gateway
from rules.billing.invoicing import mark_paid
from rules.mail.outbox import Notice, queue
from store.bulk import bulk_insert
from store.db import database, writer
from store.models import (
    ActionLedger,
    Client,
    Currency,
    Invoice,
    StoredCard,
    Transaction,
    utcnow,
)
from store.models.enums import InvoiceStatus
from store.money import format_money
from store.queries import among, balance_due, filter_only

RULE = "capture"


def candidates(ctx: RunContext, invoice_ids: list[int] | None = None) -> list[tuple[Any, ...]]:
    """(invoice, client, balance, method, currency, decimals, cc disabled, card token,
    expired card): the invoices due for capture, or (``invoice_ids``) those invoices
    whatever their state. The balance (total less money already received, minor units)
    is what is charged. The token is that of the newest card on the invoice's gateway
    valid on the business date (a card is valid to the end of its expiry month), never
    an expired one (PRODUCT.md §3); when there is none, ``expired card`` is the id of the
    newest expired card, if any, so the client can be asked for a new one."""
    horizon = ctx.business_date + dt.timedelta(days=ctx.settings.capture_days_before_due)
    month = f"{ctx.business_date:%Y-%m}"  # expiry is "YYYY-MM": text order is date order
    card = StoredCard.alias("card")
    on_gateway = (card.client == Invoice.client) & (card.gateway == Invoice.payment_method)
    token = (  # an index lookup a row
        card.select(card.token)
        .where(on_gateway & (card.expiry >= month))
        .order_by(card.id.desc())
        .limit(1)
    )
    expired = card.select(card.id).where(on_gateway).order_by(card.id.desc()).limit(1)
    query: Any = (
        Invoice.select(
            Invoice.id,
            Invoice.client,
            balance_due(),
            Invoice.payment_method,
            Currency.code,
            Currency.decimals,
            Client.cc_processing_disabled,
            token.alias("token"),
            expired.alias("expired"),
        )
        .join(Client)
        .join(Currency)
    )
    if invoice_ids is not None:
        query = query.where(among(Invoice.id, invoice_ids))
    else:
        query = query.where(
            (Invoice.status == InvoiceStatus.UNPAID)
            & Invoice.payment_method.in_(list(MERCHANT_GATEWAYS))
            & (Invoice.due_date <= horizon)
            & in_window(Invoice.due_date)  # never charge for an absurd date (rules.dates)
            & in_window(Invoice.date)
            & (balance_due() > 0)
        )
    if ctx.client_ids is not None:
        query = query.where(Invoice.client.in_(list(ctx.client_ids)))
    return database.execute(query).fetchall()  # plain rows: the invoice rows can be many


def run(ctx: RunContext, gateways: dict[str, Gateway] | None = None) -> RuleTally:
    """Charge the invoices due for capture through ``gateways`` (default: the run's,
    ``ctx.gateways``, else ``MERCHANT_GATEWAYS``): replay unresolved attempts, ask clients
    whose every card expired for a new one, then claim and charge (PRODUCT.md §3)."""
    gateways = gateways or ctx.gateways or MERCHANT_GATEWAYS
    tally = RuleTally()
    pending = _unresolved(ctx)
    due = []
    lapsed = []
    for row in candidates(ctx):
        invoice_id, client_id, _, _, _, _, disabled, token, newest = row
        subject = f"invoice:{invoice_id}"
        if disabled:
            tally.skipped += 1  # Disable CC Processing
            ctx.skipped(RULE, client_id, subject, "CC processing disabled for this client")
        elif invoice_id in pending:
            tally.skipped += 1  # replayed below with the key of its first attempt
        elif token:
            due.append(row)
        else:
            tally.skipped += 1  # no valid card: never charge an expired one
            ctx.skipped(
                RULE,
                client_id,
                subject,
                "no valid stored card" + (f" (card {newest} has expired)" if newest else ""),
            )
            if newest:
                lapsed.append((client_id, invoice_id, newest))
    _ask_for_new_cards(ctx, lapsed)
    if not (pending or due):
        return tally
    currencies = {c.code: c for c in Currency.select()}
    if pending:
        _resolve(ctx, pending, gateways, tally, currencies)
    for batch in chunks(due):
        keys = [(f"invoice:{row[0]}", "", ctx.business_date) for row in batch]
        with writer():  # committed before any charge: a rerun never charges again
            won = claim(ctx, RULE, keys, outcome=CHARGING)
        mine = []
        for row, key in zip(batch, keys, strict=True):
            if key in won:
                mine.append((row, ctx.business_date))
            else:
                ctx.skipped(RULE, row[1], key[0], f"already attempted on {ctx.business_date}")
        tally.skipped += len(batch) - len(mine)
        _charge(ctx, mine, gateways, tally, currencies)
    return tally


#: Ledger rule of the one message a client gets when every card on file has expired.
CARD_EXPIRED = "card_expired"


def _card_keys(lapsed: list[tuple[int, int, int]]) -> dict[tuple[str, str, dt.date], Notice]:
    """One ledger key (and message) per client and newest expired card: the client is
    asked once per card, not once a day or once per invoice."""
    keys: dict[tuple[str, str, dt.date], Notice] = {}
    # The message names the client's first such invoice (by id), whatever order the
    # database returned them in: the same state gives the same message.
    for client_id, invoice_id, card_id in sorted(lapsed):
        key = (f"client:{client_id}", f"card:{card_id}", EPOCH)
        keys.setdefault(key, Notice(client_id, invoice_id, unique_key=f"card_expired:{card_id}"))
    return keys


#: The business date of card-expiry claims: they are per card, not per day.
EPOCH = dt.date(1970, 1, 1)


def _ask_for_new_cards(ctx: RunContext, lapsed: list[tuple[int, int, int]]) -> None:
    """Claim and queue "Credit Card Expired" for clients whose every card has expired."""
    keys = _card_keys(lapsed)
    if not keys:
        return
    with writer():
        won = claim(ctx, CARD_EXPIRED, list(keys), outcome="asked")
        queue("Credit Card Expired", [keys[k] for k in keys if k in won], settings=ctx.settings)
    for key, notice in keys.items():
        if key not in won:
            continue
        ctx.acted(
            RULE,
            notice.client_id,
            f"invoice:{notice.invoice_id}",
            CARD_EXPIRED,
            f"no valid card ({key[1].replace(':', ' ')} has expired): ask the client for a new one",
        )


#: The ledger outcome of a claimed attempt whose result is not recorded yet.
CHARGING = "charging"
#: Charge results are committed at least this often, so a crash loses few records.
RECORD_EVERY = 5000
RECORD_SECONDS = 1.0


def _unresolved(ctx: RunContext) -> dict[int, dt.date]:
    """Attempts an earlier run claimed but never recorded (it crashed, or the gateway
    failed): invoice -> the business date of the attempt, whose key they keep."""
    rows: Any = (
        ActionLedger.select(ActionLedger.subject, ActionLedger.business_date)
        .where((ActionLedger.rule == RULE) & (ActionLedger.outcome == CHARGING))
        .tuples()
    )
    found = {}
    for subject, day in rows:
        found[int(subject.split(":", 1)[1])] = (
            day if isinstance(day, dt.date) else dt.date.fromisoformat(str(day))
        )
    if ctx.client_ids is not None and found:  # candidates() keeps these clients' only
        mine = {row[0] for row in candidates(ctx, list(found))}
        found = {i: d for i, d in found.items() if i in mine}
    return found


def _resolve(
    ctx: RunContext,
    pending: dict[int, dt.date],
    gateways: dict[str, Gateway],
    tally: RuleTally,
    currencies: dict[str, Currency],
) -> None:
    """Replay each unresolved attempt with its own idempotency key: the gateway answers
    with the first result (charging only if the first call never reached it)."""
    rows = {row[0]: row for row in candidates(ctx, list(pending))}
    gone = [i for i in pending if i not in rows]
    if gone:
        with writer():
            _set_outcome(gone, "skipped")
    attempts = [(rows[i], day) for i, day in pending.items() if i in rows]
    _charge(ctx, attempts, gateways, tally, currencies)


def _charge(
    ctx: RunContext,
    attempts: list[tuple[Any, dt.date]],
    gateways: dict[str, Gateway],
    tally: RuleTally,
    currencies: dict[str, Currency],
) -> None:
    """Charge claimed invoices with no transaction open, recording results as they come.

    Before each stretch of charges the invoices are read again: one paid meanwhile
    (staff recorded a bank payment) is not charged. Results commit every
    ``RECORD_EVERY`` charges or ``RECORD_SECONDS``, and on the way out of an error,
    so little is ever charged but unrecorded; what is (a crash) stays ``charging``
    in the ledger and is replayed with the same key by the next run.
    """
    while attempts:
        unpaid = _still_unpaid([row[0] for row, _ in attempts[:RECORD_EVERY]])
        results = _Results()
        started = time.monotonic()
        done = 0
        try:
            for row, day in attempts[:RECORD_EVERY]:
                done += 1
                invoice_id, client_id, total, method, code, decimals, _, token, _ = row
                if invoice_id not in unpaid:
                    results.skipped.append(invoice_id)
                    tally.skipped += 1
                    ctx.skipped(RULE, client_id, f"invoice:{invoice_id}", "paid meanwhile")
                    continue
                key = f"capture:{invoice_id}:{day.isoformat()}"
                try:
                    result = gateways[method].capture(
                        token, Decimal(total).scaleb(-decimals), code, key
                    )
                except Exception as exc:  # stays charging: replayed with this key next run
                    tally.failed += 1
                    tally.errors.append(f"invoice {invoice_id}: {exc}")
                    continue
                tally.acted += 1
                again = "" if day == ctx.business_date else f" (replaying the attempt of {day})"
                ctx.acted(
                    RULE,
                    client_id,
                    f"invoice:{invoice_id}",
                    "",
                    f"charge {format_money(total, currencies[code])} through {method}{again}",
                )
                if result.approved:
                    results.approved.append((row, result.transaction_id, key))
                else:
                    results.declined.append(
                        Notice(client_id, invoice_id, unique_key=f"declined:{invoice_id}:{day}")
                    )
                if time.monotonic() - started >= RECORD_SECONDS:
                    break
        finally:
            _commit(ctx, results)
        attempts = attempts[done:]


@dataclass
class _Results:
    approved: list[tuple[Any, ...]] = field(default_factory=list)
    declined: list[Notice] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)


def _still_unpaid(invoice_ids: list[int]) -> set[int]:
    """Those of ``invoice_ids`` still Unpaid (one query; plain rows: a stretch holds
    thousands, and peewee's row objects cost more than the query)."""
    query = Invoice.select(Invoice.id).where(
        among(Invoice.id, invoice_ids) & (filter_only(Invoice.status) == InvoiceStatus.UNPAID)
    )
    return {invoice_id for (invoice_id,) in database.execute(query).fetchall()}


def _set_outcome(invoice_ids: list[int], outcome: str) -> None:
    if invoice_ids:
        ActionLedger.update(outcome=outcome).where(
            (ActionLedger.rule == RULE)
            & (ActionLedger.outcome == CHARGING)
            & among(ActionLedger.subject, [f"invoice:{i}" for i in invoice_ids])
        ).execute()


def _commit(ctx: RunContext, results: _Results) -> None:
    """The results of a stretch of charges, and their ledger outcomes, together."""
    if not (results.approved or results.declined or results.skipped):
        return
    with writer():
        _record(ctx, results.approved)
        queue("Credit Card Payment Failed", results.declined, settings=ctx.settings)
        _set_outcome([row[0] for row, _, _ in results.approved], "approved")
        _set_outcome([n.invoice_id for n in results.declined if n.invoice_id], "declined")
        _set_outcome(results.skipped, "skipped")


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
    mark_paid([row[0] for row, _, _ in approved], ctx.business_date, settings=ctx.settings)


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
