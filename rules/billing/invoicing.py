"""Invoice generation: services, addons and domains due soon become invoices.

Items are invoiced ``invoice_days_before_due`` days before their next due date.
Items of one client due the same date with the same payment method share an
invoice unless Separate Invoices is set on the client or its group. Status never
stops invoicing. The unique (item, due date) key on invoice items means no item
is ever invoiced twice for the same due date, however many runs there are.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from dateutil.relativedelta import relativedelta
from peewee import JOIN, Value, fn

from rules.billing.automation import RuleTally, RunContext, chunks, claim, in_window
from rules.billing.tax import TaxTable, compute
from rules.mail.outbox import Notice, queue
from store import sequences
from store.bulk import bulk_insert, bulk_update, reset_sequences
from store.db import is_postgres, writer
from store.models import (
    ActionLedger,
    Addon,
    Client,
    ClientGroup,
    Domain,
    Invoice,
    InvoiceItem,
    Product,
    ProductAddon,
    Service,
    utcnow,
)
from store.models.enums import (
    ACTIVE_DOMAIN_STATUSES,
    ACTIVE_SERVICE_STATUSES,
    BillingCycle,
    InvoiceStatus,
)
from store.money import round_half_up
from store.queries import among, balance_due, filter_only
from store.settings import Settings

RULE = "invoice"
ITEM_TYPES = {"service": "Hosting", "addon": "Addon", "domain": "Domain"}
NOT_BILLED = (BillingCycle.FREE, BillingCycle.ONE_TIME)


@dataclass(frozen=True)
class DueItem:
    kind: str  # service, addon, domain
    id: int
    client_id: int
    description: str
    amount: int
    due: dt.date
    payment_method: str
    #: The product's or product addon's taxed flag (domains, and addons from no catalogue
    #: addon, are taxed): tax applies only when it also applies to the client.
    taxed: bool = True


def _due_items(ctx: RunContext) -> list[DueItem]:
    """Everything due within the window and not yet invoiced for that due date (3 queries)."""
    horizon = ctx.business_date + dt.timedelta(days=ctx.settings.invoice_days_before_due)
    items: list[DueItem] = []
    sources: list[tuple[str, Any, Any, Any, Any]] = [
        (
            "service",
            Service,
            Service.status.in_(ACTIVE_SERVICE_STATUSES) & Service.billing_cycle.not_in(NOT_BILLED),
            Product.name,
            Product.taxed,
        ),
        (
            "addon",
            Addon,
            Addon.status.in_(ACTIVE_SERVICE_STATUSES) & Addon.billing_cycle.not_in(NOT_BILLED),
            Addon.name,
            fn.COALESCE(ProductAddon.taxed, True),
        ),
        ("domain", Domain, Domain.status.in_(ACTIVE_DOMAIN_STATUSES), Domain.name, Value(True)),
    ]
    for kind, model, active, label, taxed_flag in sources:
        billed = InvoiceItem.select(InvoiceItem.id).where(
            (InvoiceItem.related_type == kind)
            & (InvoiceItem.related_id == model.id)
            & (InvoiceItem.related_due_date == model.next_due_date)
        )
        query = model.select(
            model.id,
            model.client,
            label,
            model.amount,
            model.next_due_date,
            model.payment_method,
            taxed_flag,
        )
        if model is Service:
            query = query.join(Product)
        elif model is Addon:
            query = query.join(ProductAddon, JOIN.LEFT_OUTER)
        query = query.where(
            active
            & in_window(model.next_due_date)  # never a year-0001 period (rules.dates)
            & (model.next_due_date <= horizon)
            & ~fn.EXISTS(billed)
        )
        if ctx.client_ids is not None:
            query = query.where(model.client.in_(list(ctx.client_ids)))
        for id_, client_id, name, amount, due, method, taxed in query.tuples():
            due = due if isinstance(due, dt.date) else dt.date.fromisoformat(str(due))
            text = {"service": "Hosting", "addon": "Addon", "domain": "Domain renewal"}[kind]
            description = f"{text}: {name} ({due:%d/%m/%Y})"
            items.append(
                DueItem(kind, id_, client_id, description, amount, due, method, bool(taxed))
            )
    # Items already invoiced today (a payment earlier today may have moved their due date).
    done: Any = (
        ActionLedger.select(ActionLedger.subject)
        .where((ActionLedger.rule == RULE) & (ActionLedger.business_date == ctx.business_date))
        .tuples()
    )
    claimed = {subject for (subject,) in done}
    return [i for i in items if f"{i.kind}:{i.id}" not in claimed]


def run(ctx: RunContext) -> RuleTally:
    tally = RuleTally()
    items = _due_items(ctx)
    if not items:
        return tally
    client_ids = sorted({i.client_id for i in items})
    rows: Any = (
        Client.select(
            Client.id,
            Client.country,
            Client.state,
            Client.tax_exempt,
            Client.separate_invoices,
            ClientGroup.separate_invoices,
            ClientGroup.discount_bp,
            ClientGroup.name,
        )
        .join(ClientGroup, JOIN.LEFT_OUTER)
        .where(among(Client.id, client_ids))
        .tuples()
    )
    clients: dict[int, tuple[Any, ...]] = {row[0]: row for row in rows}
    # Group: client, due date, payment method; one invoice per item when separate.
    groups: dict[tuple[Any, ...], list[DueItem]] = defaultdict(list)
    for item in items:
        _, _, _, _, sep_client, sep_group, _, _ = clients[item.client_id]
        separate = bool(sep_client or sep_group)
        key = (
            item.client_id,
            item.due,
            item.payment_method,
            (item.kind, item.id) if separate else None,
        )
        groups[key].append(item)
    taxes = TaxTable()
    # Invoices take ids and numbers in one order (client, due date, method, item), not
    # the order the database happened to return the items in: the same state gives the
    # same invoices, so a dry run's invoice ids are the run's (PostgreSQL may scan in
    # another order each time).
    ordered = sorted(groups.items(), key=lambda group: (group[0][:3], group[0][3] or ("", 0)))
    for batch in chunks(ordered, 2000):
        with writer():
            tally.acted += _write_invoices(ctx, batch, clients, taxes)
    return tally


def _write_invoices(
    ctx: RunContext, batch: Any, clients: dict[int, tuple[Any, ...]], taxes: TaxTable
) -> int:
    """One transaction: claim each item for today, then invoices, items and emails.

    Items are claimed per business day, so a second run the same day invoices nothing,
    even for an item whose next period came due after a payment earlier in that run.
    """
    keys = [(f"{m.kind}:{m.id}", "", ctx.business_date) for _, members in batch for m in members]
    won = claim(ctx, RULE, keys)
    kept = []
    for key, members in batch:
        mine = []
        for m in members:
            if (f"{m.kind}:{m.id}", "", ctx.business_date) in won:
                mine.append(m)
            else:
                ctx.skipped(RULE, m.client_id, f"{m.kind}:{m.id}", "already invoiced today")
        kept.append((key, mine))
    batch = kept
    wanted = sum(1 for _, members in batch if members)
    if not wanted:
        return 0
    # Numbers first: taking the sequence makes any other invoice writer (an import on
    # PostgreSQL) wait for this transaction, so the ids read next are not stale.
    numbers = iter(allocate_numbers(wanted, ctx.settings.invoice_number_format, ctx.business_date))
    first_id = (Invoice.select(fn.MAX(Invoice.id)).scalar() or 0) + 1
    free_ids = iter(range(first_id, first_id + wanted))
    next_item = (InvoiceItem.select(fn.MAX(InvoiceItem.id)).scalar() or 0) + 1
    invoices: list[tuple[Any, ...]] = []
    lines: list[tuple[Any, ...]] = []
    notices: list[Notice] = []
    paid_now: list[int] = []
    now = utcnow().isoformat(" ")
    for (client_id, due, method, _), members in batch:
        if not members:
            continue
        _, country, state, exempt, _, _, discount_bp, group_name = clients[client_id]
        invoice_id = next(free_ids)
        taxable = not exempt and ctx.settings.tax_enabled
        rows = [
            (m.amount, taxable and m.taxed, m.description, m.kind, m.id, m.due, ITEM_TYPES[m.kind])
            for m in members
        ]
        if discount_bp:
            base = sum(m.amount for m in members)
            off = int(round_half_up(Decimal(base) * discount_bp / Decimal(10_000), 0))
            # The discount is taxed as what it discounts: the part of it on untaxed
            # items (an untaxed product) is an untaxed line of its own.
            taxed_base = sum(m.amount for m in members if m.taxed)
            off_taxed = (
                off
                if taxed_base == base
                else int(round_half_up(Decimal(taxed_base) * discount_bp / Decimal(10_000), 0))
            )
            label = f"Client group discount: {group_name} ({Decimal(discount_bp) / 100}%)"
            for part, taxed in ((off_taxed, taxable), (off - off_taxed, False)):
                if part:
                    rows.append((-part, taxed, label, None, None, None, "Item"))
        rates = taxes.rates_for(country, state, exempt=bool(exempt), settings=ctx.settings)
        totals = compute([(amount, taxed) for amount, taxed, *_ in rows], rates, ctx.settings)
        # Nothing to pay (a 0.00 service, a 100% discount): Paid at once and its items
        # renewed, as WHMCS does; never reminded, chased, captured or fined.
        owed = totals.total > 0
        if not owed:
            paid_now.append(invoice_id)
        invoices.append(
            (
                invoice_id,
                client_id,
                next(numbers),
                ctx.business_date.isoformat(),
                due.isoformat(),
                None,
                "Unpaid",  # nothing owed: marked Paid by ``mark_paid`` below
                method,
                totals.subtotal,
                totals.tax,
                totals.tax2,
                totals.total,
                rates.level1_e4,
                rates.level2_e4,
                "",
                now,
                1,
            )
        )
        for n, (amount, taxed, text, kind, rid, rdue, itype) in enumerate(rows):
            lines.append(
                (
                    next_item,
                    invoice_id,
                    itype,
                    text,
                    amount,
                    taxed,
                    kind,
                    rid,
                    rdue.isoformat() if rdue else None,
                    n,
                )
            )
            next_item += 1
        if owed:
            notices.append(
                Notice(client_id, invoice_id, unique_key=f"invoice_created:{invoice_id}")
            )
        ctx.acted(
            RULE,
            client_id,
            f"client:{client_id}",
            due.isoformat(),
            f"invoice {len(members)} item(s) due {due} by {method}"
            + ("" if owed else " (nothing to pay: marked Paid)"),
        )
    bulk_insert(Invoice, INVOICE_COLUMNS, invoices)
    bulk_insert(InvoiceItem, ITEM_COLUMNS, lines)
    reset_sequences((Invoice, InvoiceItem))
    mark_paid(paid_now, ctx.business_date, settings=ctx.settings, confirm=False)
    queue("Invoice Created", notices, settings=ctx.settings)
    return len(invoices)


def allocate_numbers(count: int, number_format: str, day: dt.date) -> list[str]:
    """``count`` new invoice numbers, the next values of the one sequence, formatted.

    Call inside the transaction that creates the invoices (see ``store.sequences``).
    A number some other path already wrote (plain SQL, an old import) is never reused:
    the sequence moves past it and allocates again (one query when nothing collides).
    """
    while True:
        first = sequences.allocate(count)
        numbers = [invoice_number(number_format, v, day) for v in range(first, first + count)]
        taken: Any = Invoice.select(Invoice.number).where(among(Invoice.number, numbers)).tuples()
        if not taken.exists():
            return numbers
        # Numbers written past the sequence (plain SQL, an old tool): move past all of
        # them at once, not a batch at a time (one read of the numbers, on this rare path).
        every: Any = Invoice.select(Invoice.number).tuples().iterator()
        sequences.raise_to(number for (number,) in every)


def invoice_number(number_format: str, seq: int, day: dt.date) -> str:
    """An invoice number: ``number_format`` (a validated setting such as
    ``INV-{year}-{seq:05d}``) filled with the sequence value and the invoice's business
    date (year, two-digit month)."""
    return number_format.format(year=day.year, month=f"{day.month:02d}", seq=seq)


INVOICE_COLUMNS = (
    "id",
    "client_id",
    "number",
    "date",
    "due_date",
    "date_paid",
    "status",
    "payment_method",
    "subtotal",
    "tax",
    "tax2",
    "total",
    "tax_rate1_e4",
    "tax_rate2_e4",
    "notes",
    "created_at",
    "version",
)
ITEM_COLUMNS = (
    "id",
    "invoice_id",
    "type",
    "description",
    "amount",
    "taxed",
    "related_type",
    "related_id",
    "related_due_date",
    "sort_order",
)


CYCLE_MONTHS: dict[str, int] = {
    BillingCycle.MONTHLY: 1,
    BillingCycle.QUARTERLY: 3,
    BillingCycle.SEMI_ANNUALLY: 6,
    BillingCycle.ANNUALLY: 12,
    BillingCycle.BIENNIALLY: 24,
    BillingCycle.TRIENNIALLY: 36,
}


def next_due_date(current: dt.date, cycle: str, anchor_day: int | None) -> dt.date | None:
    """The due date after ``current`` (a business date) for an item billed every ``cycle``.

    The day comes back to ``anchor_day`` (the day of the month the item was first due)
    whenever the month has it and is the month's last day otherwise: a Monthly item
    anchored on the 31st is due Jan 31, Feb 28, Mar 31, Apr 30; an Annually one anchored
    on Feb 29 is due on Feb 28 and again on Feb 29 in leap years (PRODUCT.md §3). Each
    step starts from the anchor, never from an already shortened date, so nothing
    drifts. ``anchor_day`` None means the day of ``current``. None for cycles that do
    not recur (Free, One Time). Month arithmetic is ``dateutil.relativedelta``'s.
    """
    months = CYCLE_MONTHS.get(cycle)
    if months is None:
        return None
    return current + relativedelta(months=months, day=anchor_day or current.day)


#: Invoice statuses a payment (or credit) may settle: Unpaid, and the two WHMCS statuses
#: of an unpaid invoice waiting on someone else (a gateway's confirmation, a collector).
PAYABLE_STATUSES = (
    InvoiceStatus.UNPAID,
    InvoiceStatus.PAYMENT_PENDING,
    InvoiceStatus.COLLECTIONS,
)


def mark_paid(
    invoice_ids: Sequence[int],
    day: dt.date,
    *,
    settings: Settings | None = None,
    confirm: bool = True,
) -> list[tuple[int, int]]:
    """The one way an invoice becomes Paid: those of ``invoice_ids`` still payable
    (``PAYABLE_STATUSES``) whose balance (``store.queries.balance_due``: total less
    credit and money received) is zero or less become Paid on ``day`` (a business date),
    their version bumped; each item they bill moves to its next due date
    (:func:`advance_due_dates`) and, with ``confirm``, "Invoice Payment Confirmation" is
    queued once per invoice (unique key ``paid:{id}``). Returns (invoice id, client id)
    of the invoices this call marked Paid, so two payments racing for one invoice mark
    it (and renew it, and confirm it) once: the UPDATE is guarded by status and balance.

    Call inside the transaction that recorded the payment, capture or credit; a fixed
    number of queries. Used by staff payments and credit (``rules.billing.payments``),
    card capture and 0.00 invoices (created Paid at once, WHMCS), PRODUCT.md §3.
    """
    if not invoice_ids:
        return []
    updated: Any = (
        Invoice.update(status=InvoiceStatus.PAID, date_paid=day, version=Invoice.version + 1)
        .where(
            among(Invoice.id, invoice_ids)
            & filter_only(Invoice.status).in_(list(PAYABLE_STATUSES))
            & (balance_due() <= 0)
        )
        .returning(Invoice.id, Invoice.client)
        .tuples()
        .execute()
    )
    paid = sorted((invoice_id, client_id) for invoice_id, client_id in updated)
    advance_due_dates([invoice_id for invoice_id, _ in paid])
    if confirm:
        queue(
            "Invoice Payment Confirmation",
            [Notice(c, i, unique_key=f"paid:{i}") for i, c in paid],
            settings=settings,
        )
    return paid


def advance_due_dates(invoice_ids: list[int]) -> None:
    """Paid: the items an invoice billed move to their next period (a fixed number of queries).

    Only items still due on the date that was billed move, so paying twice moves nothing.
    """
    if not invoice_ids:
        return
    billed: Any = (
        InvoiceItem.select(
            InvoiceItem.related_type, InvoiceItem.related_id, InvoiceItem.related_due_date
        )
        .where(
            among(InvoiceItem.invoice, invoice_ids)
            & filter_only(InvoiceItem.related_type).is_null(False)
        )
        .tuples()
    )
    by_kind: dict[str, dict[int, dt.date]] = defaultdict(dict)
    for kind, rid, due in billed:
        by_kind[kind][rid] = due if isinstance(due, dt.date) else dt.date.fromisoformat(str(due))
    for kind, model in (("service", Service), ("addon", Addon), ("domain", Domain)):
        due_by_id = by_kind.get(kind)
        if not due_by_id:
            continue
        annual: Any = BillingCycle.ANNUALLY.value  # domains renew yearly
        cycle = annual if model is Domain else model.billing_cycle  # type: ignore[union-attr]
        columns = (model.id, model.next_due_date, model.anchor_day) + (
            () if model is Domain else (cycle,)
        )
        rows: Any = model.select(*columns).where(among(model.id, due_by_id)).tuples()
        moves = []
        anchors = []  # rows written without an anchor keep the day they were due from now on
        for rid, current, anchor, *rest in rows:
            current = (
                current if isinstance(current, dt.date) else dt.date.fromisoformat(str(current))
            )
            following = next_due_date(current, rest[0] if rest else annual, anchor)
            if current == due_by_id[rid] and following is not None:
                moves.append((rid, following))
                if anchor is None:
                    anchors.append((rid, current.day))
        bulk_update(model, ("next_due_date",), moves)
        if anchors:
            bulk_update(model, ("anchor_day",), anchors)


def fill_anchor_days() -> None:
    """Give every service, addon and domain written without an ``anchor_day`` the day of
    its next due date (3 statements); for bulk writers (demo, import) that insert rows
    without one."""
    for model in (Service, Addon, Domain):
        day = (
            fn.date_part("day", model.next_due_date)
            if is_postgres()
            else fn.strftime("%d", model.next_due_date)
        ).cast("INTEGER")
        model.update(anchor_day=day).where(
            model.anchor_day.is_null() & model.next_due_date.is_null(False)
        ).execute()
