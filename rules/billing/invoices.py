"""Staff work on invoices: read them, create manual invoices, add and remove items.

Totals always come from the cron's own arithmetic: a manual invoice is written with the
client's tax rates at creation (``rules.billing.tax.TaxTable``, as the cron reads them)
and its subtotal, tax, tax2 and total are set by ``rules.billing.tax.recompute_invoices``
(``compute``, the function the cron uses), as are an edited invoice's. Numbers come
from the one sequence (``rules.billing.invoicing.allocate_numbers``). Every change is one
``rules.errors.transaction()`` with its audit rows, and bumps the invoice ``version``
(WHMCS "Create Invoice", "Add Item", "Delete Item"; PRODUCT.md §3).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from peewee import fn

from rules.audit import Actor, record
from rules.billing.catalogue import to_minor
from rules.billing.invoicing import allocate_numbers, mark_paid
from rules.billing.payments import (
    MONEY_RIGHT,
    InvoiceNotFound,
    InvoiceRefused,
    InvoiceState,
    bump_version,
    business_today,
    check_version,
    checked_date,
    invoice_state,
    load_invoice,
    settle,
)
from rules.billing.tax import E4, TaxTable, recompute_invoices
from rules.clients.validation import clean_line
from rules.errors import RuleError, ValidationError, transaction
from rules.mail.outbox import Notice, queue
from rules.permissions import require
from store.models import Client, Credit, Currency, Invoice, InvoiceItem, Transaction
from store.models.enums import InvoiceStatus
from store.money import format_money
from store.queries import balance_due
from store.settings import load_settings

#: Longest item description.
ITEM_TEXT_MAX = 1000
#: Most items on one manual invoice.
ITEMS_MAX = 200
#: Most invoices one list returns.
LIST_MAX = 10_000


@dataclass(frozen=True)
class InvoiceRow:
    """One line of an invoice list; amounts formatted in the client's currency."""

    id: int
    number: str
    client_id: int
    date: dt.date
    due_date: dt.date
    date_paid: dt.date | None
    status: str
    total: str
    balance: str
    payment_method: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "number": self.number,
            "client": self.client_id,
            "date": self.date.isoformat(),
            "due_date": self.due_date.isoformat(),
            "date_paid": self.date_paid.isoformat() if self.date_paid else None,
            "status": self.status,
            "total": self.total,
            "balance": self.balance,
            "payment_method": self.payment_method,
        }


@dataclass(frozen=True)
class ItemLine:
    id: int
    type: str
    description: str
    amount: str
    taxed: bool


@dataclass(frozen=True)
class TransactionLine:
    id: int
    date: dt.date
    gateway: str
    transaction_id: str
    amount_in: str
    amount_out: str
    description: str
    #: Money going back to the client (``amount_out``), not received.
    refund: bool


@dataclass(frozen=True)
class InvoiceDetail:
    """An invoice as the screen and ``invoice show`` present it. ``tax_lines``: (label
    with its rate, amount) for each level that has a rate; ``balance_minor`` and
    ``currency_decimals`` for forms; ``version`` to carry into the next change."""

    row: InvoiceRow
    client_name: str
    subtotal: str
    tax_lines: list[tuple[str, str]]
    credit: str
    total: str
    items: list[ItemLine]
    transactions: list[TransactionLine]
    balance_minor: int
    currency_code: str
    currency_decimals: int
    client_credit: str
    client_credit_minor: int
    version: int

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.row.as_dict(),
            "client_name": self.client_name,
            "subtotal": self.subtotal,
            "tax_lines": [{"name": n, "amount": a} for n, a in self.tax_lines],
            "credit": self.credit,
            "currency": self.currency_code,
            "version": self.version,
            "items": [
                {
                    "id": i.id,
                    "type": i.type,
                    "description": i.description,
                    "amount": i.amount,
                    "taxed": i.taxed,
                }
                for i in self.items
            ],
            "transactions": [
                {
                    "id": t.id,
                    "date": t.date.isoformat(),
                    "gateway": t.gateway,
                    "transaction_id": t.transaction_id,
                    "amount_in": t.amount_in,
                    "amount_out": t.amount_out,
                    "description": t.description,
                    "refund": t.refund,
                }
                for t in self.transactions
            ],
        }


def _day(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


def list_invoices(
    actor: Actor,
    *,
    client_id: int | None = None,
    status: str | None = None,
    limit: int = LIST_MAX,
) -> list[InvoiceRow]:
    """Invoices newest first (one query), optionally of one client and one status (a
    ``store.models.enums.InvoiceStatus`` value; ``ValidationError`` on ``status``
    otherwise). Needs ``client.view``."""
    require(actor, "client.view")
    if status is not None and status not in {s.value for s in InvoiceStatus}:
        raise ValidationError(
            {"status": f"must be one of {', '.join(s.value for s in InvoiceStatus)}"}
        )
    query: Any = (
        Invoice.select(
            Invoice.id,
            Invoice.number,
            Invoice.client,
            Invoice.date,
            Invoice.due_date,
            Invoice.date_paid,
            Invoice.status,
            Invoice.total,
            balance_due(),
            Invoice.payment_method,
            Currency.code,
            Currency.prefix,
            Currency.suffix,
            Currency.decimals,
        )
        .join(Client)
        .join(Currency)
    )
    if client_id is not None:
        query = query.where(Invoice.client == client_id)
    if status is not None:
        query = query.where(Invoice.status == status)
    rows = []
    for r in query.order_by(Invoice.date.desc(), Invoice.id.desc()).limit(limit).tuples():
        currency = Currency(code=r[10], prefix=r[11], suffix=r[12], decimals=r[13])
        rows.append(
            InvoiceRow(
                r[0],
                r[1],
                r[2],
                _day(r[3]),
                _day(r[4]),
                _day(r[5]) if r[5] else None,
                r[6],
                format_money(int(r[7]), currency),
                format_money(int(r[8]), currency),
                r[9],
            )
        )
    return rows


def invoice_detail(invoice_id: int, actor: Actor) -> InvoiceDetail:
    """One invoice with its items, tax lines (with their rates), credit, transactions
    and balance (four queries). Raises ``InvoiceNotFound``; needs ``client.view``."""
    require(actor, "client.view")
    row: Any = (
        Invoice.select(Invoice, balance_due().alias("balance_due"), Client, Currency)
        .join(Client)
        .join(Currency)
        .where(Invoice.id == invoice_id)
        .first()
    )
    if row is None:
        raise InvoiceNotFound(f"no invoice with id {invoice_id}")
    client = row.client
    currency = client.currency
    money = lambda minor: format_money(int(minor), currency)  # noqa: E731
    items = [
        ItemLine(i.id, i.type, i.description, money(i.amount), bool(i.taxed))
        for i in InvoiceItem.select()
        .where(InvoiceItem.invoice == invoice_id)
        .order_by(InvoiceItem.sort_order, InvoiceItem.id)
    ]
    transactions = [
        TransactionLine(
            t.id,
            _day(t.date),
            t.gateway,
            t.transaction_id,
            money(t.amount_in),
            money(t.amount_out),
            t.description,
            t.amount_out > 0 and not t.amount_in,
        )
        for t in Transaction.select()
        .where(Transaction.invoice == invoice_id)
        .order_by(Transaction.date, Transaction.id)
    ]
    tax_lines = []
    for label, rate, amount in (
        ("Tax", row.tax_rate1_e4, row.tax),
        ("Tax 2", row.tax_rate2_e4, row.tax2),
    ):
        if rate or amount:
            tax_lines.append((f"{label} {(Decimal(rate) / E4).normalize():f}%", money(amount)))
    balance = int(row.balance_due)
    listed = InvoiceRow(
        row.id,
        row.number,
        client.id,
        _day(row.date),
        _day(row.due_date),
        _day(row.date_paid) if row.date_paid else None,
        row.status,
        money(row.total),
        money(balance),
        row.payment_method,
    )
    return InvoiceDetail(
        listed,
        f"{client.first_name} {client.last_name}".strip(),
        money(row.subtotal),
        tax_lines,
        money(row.credit),
        money(row.total),
        items,
        transactions,
        balance,
        currency.code,
        currency.decimals,
        money(client.credit),
        int(client.credit),
        row.version,
    )


@dataclass(frozen=True)
class ClientCredit:
    """The Invoices tab's header: the client's credit balance, formatted and in minor
    units, and the currency a form's amounts are in (the services' billing facts are
    ``rules.billing.services.ClientBilling``)."""

    credit: str
    credit_minor: int
    currency_code: str
    currency_decimals: int
    credits: list[tuple[dt.date, str, str]]


def client_credit(client_id: int, actor: Actor) -> ClientCredit:
    """The client's credit balance and its last credit movements (two queries)."""
    require(actor, "client.view")
    row: Any = (
        Client.select(Client.credit, Currency).join(Currency).where(Client.id == client_id).first()
    )
    if row is None:
        raise RuleError(f"no client with id {client_id}")
    currency = row.currency
    credits = [
        (_day(c.date), c.description, format_money(c.amount, currency))
        for c in Credit.select()
        .where(Credit.client == client_id)
        .order_by(Credit.id.desc())
        .limit(20)
    ]
    return ClientCredit(
        format_money(row.credit, currency),
        int(row.credit),
        currency.code,
        currency.decimals,
        credits,
    )


def _clean_item(
    description: str, amount: Decimal, currency: Currency, prefix: str
) -> tuple[str, int]:
    errors: dict[str, str] = {}
    text = ""
    try:
        text = clean_line(f"{prefix}description", description, ITEM_TEXT_MAX, required=True)
    except ValidationError as exc:
        errors.update(exc.errors)
    minor = 0
    try:
        minor = to_minor(amount, currency.decimals, f"{prefix}amount", allow_negative=True)
    except ValidationError as exc:
        errors.update(exc.errors)
    if errors:
        raise ValidationError(errors)
    return text, minor


def create_manual_invoice(
    client_id: int,
    date: dt.date,
    due_date: dt.date,
    items: Sequence[tuple[str, Decimal, bool]],
    actor: Actor,
) -> InvoiceState:
    """A manual invoice for the client (WHMCS "Create Invoice"), dated ``date`` and due
    ``due_date`` (business dates), with ``items`` of (description, amount as a Decimal in
    the client's currency, taxed). Its number is the sequence's next; tax rates are the
    client's at creation (none when tax exempt or tax is off); totals come from
    ``recompute_invoices``, as the cron's. No group discount is added (manual items are
    priced by staff). It is Unpaid and "Invoice Created" is queued, unless its total is
    0.00 or less: then it is Paid at once (``mark_paid``), as the cron's. Raises
    ``ValidationError`` (date, due_date, items[n].description/amount), ``RuleError`` for
    an unknown client, ``PermissionDenied``."""
    require(actor, MONEY_RIGHT)
    day = checked_date(date)
    try:
        due = checked_date(due_date)
    except ValidationError as exc:
        raise ValidationError({"due_date": exc.errors["date"]}) from exc
    if due < day:
        raise ValidationError({"due_date": "must not be before the invoice date"})
    if not items:
        raise ValidationError({"items": "add at least one item"})
    if len(items) > ITEMS_MAX:
        raise ValidationError({"items": f"at most {ITEMS_MAX} items"})
    settings = load_settings()
    with transaction():
        client = (
            Client.select(Client, Currency).join(Currency).where(Client.id == client_id).first()
        )
        if client is None:
            raise RuleError(f"no client with id {client_id}")
        currency = client.currency
        lines = []
        errors: dict[str, str] = {}
        for n, (description, amount, taxed) in enumerate(items):
            try:
                text, minor = _clean_item(description, amount, currency, f"items[{n}].")
            except ValidationError as exc:
                errors.update(exc.errors)
                continue
            lines.append((text, minor, bool(taxed)))
        if errors:
            raise ValidationError(errors)
        rates = TaxTable().rates_for(
            client.country, client.state, exempt=bool(client.tax_exempt), settings=settings
        )
        taxable = not client.tax_exempt and settings.tax_enabled
        (number,) = allocate_numbers(1, settings.invoice_number_format, day)
        invoice = Invoice.create(
            client=client.id,
            number=number,
            date=day,
            due_date=due,
            status=InvoiceStatus.UNPAID,
            payment_method=client.payment_method,
            tax_rate1_e4=rates.level1_e4,
            tax_rate2_e4=rates.level2_e4,
        )
        InvoiceItem.insert_many(
            [
                {
                    "invoice": invoice.id,
                    "type": "Item",
                    "description": text,
                    "amount": minor,
                    "taxed": taxed and taxable,
                    "sort_order": n,
                }
                for n, (text, minor, taxed) in enumerate(lines)
            ]
        ).execute()
        totals = recompute_invoices([invoice.id], settings)[invoice.id]
        record(
            actor,
            "invoice",
            invoice.id,
            "create",
            client_id=client.id,
            field="total",
            new_value=f"{number}: {len(lines)} item(s), "
            f"total {format_money(totals.total, currency)}",
        )
        if totals.total > 0:
            queue(
                "Invoice Created",
                [Notice(client.id, invoice.id, unique_key=f"invoice_created:{invoice.id}")],
                settings=settings,
            )
        else:
            mark_paid([invoice.id], day, settings=settings, confirm=False)
        return invoice_state(invoice.id)


def _editable(invoice_id: int, expected_version: int | None) -> Any:
    loaded = load_invoice(invoice_id)
    check_version(loaded, expected_version)
    if loaded.invoice.status != InvoiceStatus.UNPAID:
        raise InvoiceRefused(
            f"invoice {loaded.invoice.number} is {loaded.invoice.status}: only Unpaid invoices "
            "can be edited"
        )
    return loaded


def _after_edit(loaded: Any, actor: Actor, action: str, what: str) -> InvoiceState:
    """Recompute the totals (the cron's function), refuse a total below what was already
    paid or credited, bump the version, audit; a balance of zero marks it Paid."""
    settings = load_settings()
    invoice = loaded.invoice
    totals = recompute_invoices([invoice.id], settings)[invoice.id]
    balance = int(Invoice.select(balance_due()).where(Invoice.id == invoice.id).scalar())
    if balance < 0:
        raise InvoiceRefused(
            f"the new total {format_money(totals.total, loaded.currency)} would be less than "
            f"what was already paid or credited on invoice {invoice.number}; nothing was changed"
        )
    bump_version(loaded)
    record(
        actor,
        "invoice",
        invoice.id,
        action,
        client_id=invoice.client_id,
        field="total",
        old_value=format_money(invoice.total, loaded.currency),
        new_value=f"{format_money(totals.total, loaded.currency)} ({what})",
    )
    if balance == 0:
        settle(invoice, business_today(), actor, invoice.status)
    return invoice_state(invoice.id)


def add_item(
    invoice_id: int,
    description: str,
    amount: Decimal,
    taxed: bool,
    actor: Actor,
    expected_version: int | None = None,
) -> InvoiceState:
    """Add an item (type Item) to an Unpaid invoice; tax at the invoice's own rates,
    totals recomputed by ``recompute_invoices``. Raises ``ValidationError``
    (description, amount), ``InvoiceRefused`` (not Unpaid, or a total below what was
    received), ``InvoiceChanged``, ``PermissionDenied``."""
    require(actor, MONEY_RIGHT)
    with transaction():
        loaded = _editable(invoice_id, expected_version)
        text, minor = _clean_item(description, amount, loaded.currency, "")
        exempt = not (loaded.invoice.tax_rate1_e4 or loaded.invoice.tax_rate2_e4)
        last = (
            InvoiceItem.select(fn.MAX(InvoiceItem.sort_order))
            .where(InvoiceItem.invoice == invoice_id)
            .scalar()
        )
        InvoiceItem.create(
            invoice=invoice_id,
            type="Item",
            description=text,
            amount=minor,
            taxed=bool(taxed) and not exempt,
            sort_order=(last or 0) + 1,
        )
        return _after_edit(
            loaded, actor, "add_item", f"added {text}: {format_money(minor, loaded.currency)}"
        )


def remove_item(
    invoice_id: int, item_id: int, actor: Actor, expected_version: int | None = None
) -> InvoiceState:
    """Remove an item from an Unpaid invoice, totals recomputed by
    ``recompute_invoices``. A removed service, addon or domain item is free to be
    invoiced again by the cron for that due date. The last item cannot be removed
    (cancel the invoice instead). Raises ``InvoiceRefused``, ``InvoiceChanged``,
    ``RuleError`` for an item not on the invoice, ``PermissionDenied``."""
    require(actor, MONEY_RIGHT)
    with transaction():
        loaded = _editable(invoice_id, expected_version)
        item = InvoiceItem.get_or_none(
            (InvoiceItem.id == item_id) & (InvoiceItem.invoice == invoice_id)
        )
        if item is None:
            raise RuleError(f"invoice {loaded.invoice.number} has no item {item_id}")
        count = InvoiceItem.select().where(InvoiceItem.invoice == invoice_id).count()
        if count <= 1:
            raise InvoiceRefused(
                f"{item.description!r} is the only item of invoice {loaded.invoice.number}: "
                "cancel the invoice instead"
            )
        item.delete_instance()
        return _after_edit(
            loaded,
            actor,
            "remove_item",
            f"removed {item.description}: {format_money(item.amount, loaded.currency)}",
        )


__all__ = [
    "ClientCredit",
    "InvoiceDetail",
    "InvoiceRow",
    "add_item",
    "client_credit",
    "create_manual_invoice",
    "invoice_detail",
    "list_invoices",
    "remove_item",
]
