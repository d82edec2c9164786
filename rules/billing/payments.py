"""Staff money on invoices: payments, refunds, cancel / mark unpaid, credit (issue 13).

Each function is one ``rules.errors.transaction()`` with its audit rows (old and new
values, PRODUCT.md §1). A payment recorded twice pays once, by the database and not by
timing: a repeated gateway reference is found by the unique
``Transaction.idempotency_key`` and reported "already recorded"; the form or command
carries the invoice ``version`` it read (optimistic lock, a stale one is refused with
the current balance); and the invoice becomes Paid only through
``rules.billing.invoicing.mark_paid``, whose UPDATE is guarded by status and balance, so
two payments racing for one invoice can never both take it to Paid, renew its items
twice or confirm it twice (WHMCS "Add Payment", "Refund", "Mark Cancelled", "Mark
Unpaid", "Add Credit", "Apply Credit").

Amounts are ``Decimal`` in the client's currency, stored in its minor units; balances
are ``store.queries.balance_due`` (total less credit applied and money received).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from rules.audit import Actor, record
from rules.billing.catalogue import to_minor
from rules.billing.invoicing import PAYABLE_STATUSES, mark_paid
from rules.clients.validation import clean_line
from rules.dates import DateOutOfWindow, check_date, parse_date
from rules.errors import RuleError, ValidationError, transaction
from rules.permissions import require
from store.db import is_postgres
from store.models import Client, Credit, Currency, Invoice, Transaction
from store.models.enums import GATEWAYS, InvoiceStatus
from store.money import MoneyError, format_money, parse_amount
from store.queries import amount_paid, balance_due
from store.settings import load_settings

#: The right every money change needs (``rules.permissions``): billing and admin staff.
MONEY_RIGHT = "client.edit_billing"
#: Longest gateway reference kept (``Transaction.transaction_id``).
TRANSACTION_ID_MAX = 128
#: Longest credit description.
DESCRIPTION_MAX = 1000


class InvoiceNotFound(RuleError):
    """No invoice has that id or number."""


class InvoiceChanged(RuleError):
    """The invoice changed since the form or command read it (its version moved):
    nothing was done; the message gives the current status and balance."""


class InvoiceRefused(RuleError):
    """The invoice's status does not allow this action (e.g. paying a Paid invoice)."""


@dataclass(frozen=True)
class InvoiceState:
    """An invoice after a money change: ``balance`` in minor units and ``balance_text``
    formatted in the client's currency; ``version`` the one to carry to the next change."""

    invoice_id: int
    number: str
    client_id: int
    status: str
    balance: int
    balance_text: str
    version: int


@dataclass(frozen=True)
class PaymentResult:
    """What ``record_payment`` did: ``already_recorded`` when the same payment (same
    gateway reference, or the same form submitted twice) was recorded before, in which
    case nothing changed; ``paid`` when this payment took the invoice to Paid (its items
    renewed, "Invoice Payment Confirmation" queued); ``transaction`` the row's id."""

    state: InvoiceState
    transaction: int | None
    already_recorded: bool
    paid: bool


@dataclass(frozen=True)
class LoadedInvoice:
    invoice: Invoice
    currency: Currency
    balance: int
    received: int


def load_invoice(invoice_id: int) -> LoadedInvoice:
    """The invoice (locked for the transaction on PostgreSQL, so payments for one invoice
    wait for each other; SQLite's writer transaction is already exclusive), its currency,
    balance and money received (2 queries)."""
    query: Any = Invoice.select().where(Invoice.id == invoice_id)
    if is_postgres():
        query = query.for_update()
    invoice = query.first()
    if invoice is None:
        raise InvoiceNotFound(f"no invoice with id {invoice_id}")
    row: Any = (
        Invoice.select(balance_due(), amount_paid(Invoice.id), Currency)
        .join(Client)
        .join(Currency)
        .where(Invoice.id == invoice_id)
        .tuples()
        .first()
    )
    balance, received = int(row[0]), int(row[1])
    currency = Currency.get_by_id(row[2])
    return LoadedInvoice(invoice, currency, balance, received)


def invoice_state(invoice_id: int) -> InvoiceState:
    loaded = load_invoice(invoice_id)
    return _state_of(loaded.invoice, loaded.currency, loaded.balance)


def _state_of(invoice: Invoice, currency: Currency, balance: int) -> InvoiceState:
    return InvoiceState(
        invoice.id,
        invoice.number,
        invoice.client_id,
        invoice.status,
        balance,
        format_money(balance, currency),
        invoice.version,
    )


def check_version(loaded: LoadedInvoice, expected_version: int | None) -> None:
    if expected_version is not None and loaded.invoice.version != expected_version:
        raise InvoiceChanged(
            f"invoice {loaded.invoice.number} changed since it was read (now "
            f"{loaded.invoice.status}, balance {format_money(loaded.balance, loaded.currency)}); "
            "nothing was done: reload and try again"
        )


def bump_version(loaded: LoadedInvoice, **changes: Any) -> None:
    """Guarded write of the invoice: only the version read, bumped (compare and set)."""
    done = (
        Invoice.update(version=Invoice.version + 1, **changes)
        .where((Invoice.id == loaded.invoice.id) & (Invoice.version == loaded.invoice.version))
        .execute()
    )
    if done != 1:
        raise InvoiceChanged(
            f"invoice {loaded.invoice.number} changed while this was saved; nothing was done: "
            "reload and try again"
        )


def _positive(amount: Decimal, currency: Currency) -> int:
    minor = to_minor(amount, currency.decimals, allow_negative=True)
    if minor <= 0:
        raise ValidationError({"amount": "must be more than zero"})
    return minor


def checked_date(value: dt.date) -> dt.date:
    try:
        return check_date(value)
    except DateOutOfWindow as exc:
        raise ValidationError({"date": str(exc)}) from exc


def business_today() -> dt.date:
    """Today's business date (the configured timezone, PRODUCT.md §3): the default date
    of a payment or a manual invoice."""
    from rules.billing.automation import business_date
    from store.models import utcnow

    return business_date(utcnow(), load_settings())[0]


def find_invoice(number: str) -> int:
    """The id of the invoice numbered ``number``; ``InvoiceNotFound`` when none is."""
    found = Invoice.select(Invoice.id).where(Invoice.number == number.strip()).scalar()
    if found is None:
        raise InvoiceNotFound(f"no invoice numbered {number.strip()!r}")
    return int(found)


def payment_key(invoice_id: int, gateway: str, transaction_id: str, version: int | None) -> str:
    """The idempotency key of a staff payment: the gateway's reference when given (the
    same bank transfer recorded twice, by two staff or a retry, is one payment), else
    the invoice version the form read (the same form submitted twice); "" when neither
    is known (a command without a reference: each run is a payment)."""
    if transaction_id:
        return f"payment:{invoice_id}:{gateway}:{transaction_id}"[:128]
    if version is not None:
        return f"payment:{invoice_id}:v{version}"
    return ""


def record_payment(
    invoice_id: int,
    amount: Decimal,
    gateway: str,
    date: dt.date,
    transaction_id: str,
    actor: Actor,
    expected_version: int | None = None,
) -> PaymentResult:
    """Record money received on an invoice (WHMCS "Add Payment"): a transaction of
    ``amount`` (Decimal, the client's currency) through ``gateway`` on ``date`` (a
    business date) with the gateway's reference ``transaction_id``.

    When the balance reaches zero the invoice becomes Paid on ``date`` through
    ``mark_paid``: each service, addon and domain it bills moves to its next due date
    once, and "Invoice Payment Confirmation" is queued once (PRODUCT.md §3, issue 13).
    A payment already recorded (same reference, or the same form version) changes
    nothing and says so. Raises ``ValidationError`` (amount, gateway, date,
    transaction_id) for bad input, ``InvoiceRefused`` for an invoice that is not
    payable (Unpaid, Payment Pending, Collections) or an amount above the balance (the
    rest goes to the client's credit with ``add_credit``), ``InvoiceChanged`` when
    ``expected_version`` is stale, ``PermissionDenied`` without the billing right.
    """
    require(actor, MONEY_RIGHT)
    errors = {}
    if gateway not in GATEWAYS:
        errors["gateway"] = f"must be one of {', '.join(sorted(GATEWAYS))}"
    try:
        reference = clean_line("transaction_id", transaction_id, TRANSACTION_ID_MAX)
    except ValidationError as exc:
        errors.update(exc.errors)
    if errors:
        raise ValidationError(errors)
    day = checked_date(date)
    key = payment_key(invoice_id, gateway, reference, expected_version)
    with transaction():
        loaded = load_invoice(invoice_id)
        minor = _positive(amount, loaded.currency)
        if key:
            earlier = Transaction.get_or_none(Transaction.idempotency_key == key)
            # The same payment again (same reference, or the same form sent twice): a
            # different amount or gateway under one form version is another payment made
            # on a stale screen, refused below as changed.
            if earlier is not None and (
                reference or (earlier.amount_in, earlier.gateway) == (minor, gateway)
            ):
                return PaymentResult(
                    _state_of(loaded.invoice, loaded.currency, loaded.balance),
                    earlier.id,
                    already_recorded=True,
                    paid=False,
                )
        check_version(loaded, expected_version)
        invoice = loaded.invoice
        if invoice.status not in PAYABLE_STATUSES:
            raise InvoiceRefused(
                f"invoice {invoice.number} is {invoice.status}: only Unpaid, Payment Pending "
                "or Collections invoices take payments"
            )
        if minor > loaded.balance:
            shown = format_money(loaded.balance, loaded.currency)
            raise InvoiceRefused(
                f"{format_money(minor, loaded.currency)} is more than the balance {shown} of "
                f"invoice {invoice.number}: record {shown} and add the rest to the client's "
                "credit (add credit)"
            )
        row = Transaction.create(
            client=invoice.client_id,
            invoice=invoice.id,
            gateway=gateway,
            transaction_id=reference,
            idempotency_key=key or None,
            amount_in=minor,
            description=f"Invoice Payment ({invoice.number})",
            date=dt.datetime.combine(day, dt.time()),
        )
        bump_version(loaded)
        after = loaded.balance - minor
        record(
            actor,
            "invoice",
            invoice.id,
            "payment",
            client_id=invoice.client_id,
            field="balance",
            old_value=format_money(loaded.balance, loaded.currency),
            new_value=format_money(after, loaded.currency),
        )
        record(
            actor,
            "transaction",
            row.id,
            "create",
            client_id=invoice.client_id,
            field="amount_in",
            new_value=f"{format_money(minor, loaded.currency)} via {gateway} on {day}"
            + (f" ref {reference}" if reference else ""),
        )
        paid = settle(invoice, day, actor, loaded.invoice.status) if after <= 0 else False
        state = invoice_state(invoice.id)
    return PaymentResult(state, row.id, already_recorded=False, paid=paid)


def settle(invoice: Invoice, day: dt.date, actor: Actor, old_status: str) -> bool:
    """The balance reached zero (a payment, credit, an item edit): mark Paid through
    ``invoicing.mark_paid`` (renew, confirm) and audit it as ``paid``, in the caller's
    transaction. True when this call made it Paid."""
    done = mark_paid([invoice.id], day)
    if done:
        record(
            actor,
            "invoice",
            invoice.id,
            "paid",
            client_id=invoice.client_id,
            field="status",
            old_value=old_status,
            new_value=f"{InvoiceStatus.PAID} on {day}; the items it bills moved to their next "
            "due date; Invoice Payment Confirmation queued",
        )
    return bool(done)


def refund(
    invoice_id: int,
    amount: Decimal,
    actor: Actor,
    transaction_id: str = "",
    expected_version: int | None = None,
    date: dt.date | None = None,
) -> InvoiceState:
    """Refund money received on an invoice (WHMCS "Refund"): a negative transaction
    (``amount_out``) of ``amount`` (Decimal, at most the money received, net of earlier
    refunds) through the gateway of its latest payment. A full refund of a Paid invoice
    makes it Refunded (an Unpaid one stays Unpaid: it is still owed). The next due
    dates its payment moved do NOT move back (WHMCS does not either): the audit row
    says so, and so do the screens. Raises ``ValidationError``,
    ``InvoiceRefused`` (nothing received to refund, or more than received),
    ``InvoiceChanged``, ``PermissionDenied``."""
    require(actor, MONEY_RIGHT)
    reference = clean_line("transaction_id", transaction_id, TRANSACTION_ID_MAX)
    day = checked_date(date or business_today())
    with transaction():
        loaded = load_invoice(invoice_id)
        check_version(loaded, expected_version)
        invoice = loaded.invoice
        minor = _positive(amount, loaded.currency)
        if loaded.received <= 0:
            raise InvoiceRefused(f"invoice {invoice.number} has no payment to refund")
        if minor > loaded.received:
            raise InvoiceRefused(
                f"{format_money(minor, loaded.currency)} is more than the "
                f"{format_money(loaded.received, loaded.currency)} received on invoice "
                f"{invoice.number}"
            )
        last: Any = (
            Transaction.select(Transaction.gateway)
            .where((Transaction.invoice == invoice.id) & (Transaction.amount_in > 0))
            .order_by(Transaction.id.desc())
            .scalar()
        )
        row = Transaction.create(
            client=invoice.client_id,
            invoice=invoice.id,
            gateway=last or invoice.payment_method,
            transaction_id=reference,
            amount_out=minor,
            description=f"Refund ({invoice.number})",
            date=dt.datetime.combine(day, dt.time()),
        )
        full = minor == loaded.received and invoice.status == InvoiceStatus.PAID
        changes: dict[str, Any] = {"status": InvoiceStatus.REFUNDED} if full else {}
        bump_version(loaded, **changes)
        record(
            actor,
            "invoice",
            invoice.id,
            "refund",
            client_id=invoice.client_id,
            field="status" if full else "balance",
            old_value=invoice.status if full else format_money(loaded.balance, loaded.currency),
            new_value=(
                InvoiceStatus.REFUNDED
                if full
                else format_money(loaded.balance + minor, loaded.currency)
            )
            + f"; refunded {format_money(minor, loaded.currency)}; next due dates not moved back",
        )
        record(
            actor,
            "transaction",
            row.id,
            "create",
            client_id=invoice.client_id,
            field="amount_out",
            new_value=format_money(minor, loaded.currency),
        )
        return invoice_state(invoice.id)


def cancel(invoice_id: int, actor: Actor, expected_version: int | None = None) -> InvoiceState:
    """Mark Cancelled (WHMCS): an Unpaid, Payment Pending, Collections or Draft invoice
    with no money received and no credit applied is no longer owed; it is never
    reminded, chased, fined or captured. Raises ``InvoiceRefused`` otherwise (refund
    first), ``InvoiceChanged``, ``PermissionDenied``."""
    require(actor, MONEY_RIGHT)
    with transaction():
        loaded = load_invoice(invoice_id)
        check_version(loaded, expected_version)
        invoice = loaded.invoice
        if invoice.status not in (*PAYABLE_STATUSES, InvoiceStatus.DRAFT):
            raise InvoiceRefused(
                f"invoice {invoice.number} is {invoice.status}: it cannot be cancelled"
            )
        if loaded.received or invoice.credit:
            raise InvoiceRefused(
                f"invoice {invoice.number} has money received or credit applied: refund it instead"
            )
        bump_version(loaded, status=InvoiceStatus.CANCELLED)
        record(
            actor,
            "invoice",
            invoice.id,
            "cancel",
            client_id=invoice.client_id,
            field="status",
            old_value=invoice.status,
            new_value=InvoiceStatus.CANCELLED,
        )
        return invoice_state(invoice.id)


def mark_unpaid(invoice_id: int, actor: Actor, expected_version: int | None = None) -> InvoiceState:
    """Mark Unpaid (WHMCS): a Paid, Cancelled or Refunded invoice is owed again (date paid
    cleared). The next due dates an earlier payment moved stay where they are (a later
    payment does not move them twice: ``advance_due_dates`` compares the billed date).
    Raises ``InvoiceRefused`` for other statuses, ``InvoiceChanged``,
    ``PermissionDenied``."""
    require(actor, MONEY_RIGHT)
    with transaction():
        loaded = load_invoice(invoice_id)
        check_version(loaded, expected_version)
        invoice = loaded.invoice
        if invoice.status not in (
            InvoiceStatus.PAID,
            InvoiceStatus.CANCELLED,
            InvoiceStatus.REFUNDED,
        ):
            raise InvoiceRefused(f"invoice {invoice.number} is {invoice.status} already owed")
        bump_version(loaded, status=InvoiceStatus.UNPAID, date_paid=None)
        record(
            actor,
            "invoice",
            invoice.id,
            "mark_unpaid",
            client_id=invoice.client_id,
            field="status",
            old_value=invoice.status,
            new_value=f"{InvoiceStatus.UNPAID}; next due dates not moved back",
        )
        return invoice_state(invoice.id)


def add_credit(
    client_id: int,
    amount: Decimal,
    description: str,
    actor: Actor,
    date: dt.date | None = None,
) -> int:
    """Add ``amount`` (Decimal, the client's currency, above zero) to the client's credit
    balance (WHMCS "Add Credit"), with a ``Credit`` row dated ``date`` (default the
    business date). Returns the new credit balance in minor units. Raises
    ``ValidationError`` (amount, description), ``RuleError`` for an unknown client,
    ``PermissionDenied``."""
    require(actor, MONEY_RIGHT)
    text = clean_line("description", description, DESCRIPTION_MAX, required=True)
    day = checked_date(date or business_today())
    with transaction():
        row: Any = (
            Client.select(Client.credit, Currency)
            .join(Currency)
            .where(Client.id == client_id)
            .tuples()
            .first()
        )
        if row is None:
            raise RuleError(f"no client with id {client_id}")
        currency = Currency.get_by_id(row[1])
        minor = _positive(amount, currency)
        Client.update(credit=Client.credit + minor).where(Client.id == client_id).execute()
        Credit.create(client=client_id, date=day, description=text, amount=minor)
        new = int(row[0]) + minor
        record(
            actor,
            "client",
            client_id,
            "add_credit",
            client_id=client_id,
            field="credit",
            old_value=format_money(int(row[0]), currency),
            new_value=f"{format_money(new, currency)} ({text})",
        )
        return new


def apply_credit(
    invoice_id: int,
    amount: Decimal,
    actor: Actor,
    expected_version: int | None = None,
    date: dt.date | None = None,
) -> PaymentResult:
    """Apply ``amount`` (Decimal) of the client's credit balance to an invoice (WHMCS
    "Apply Credit"): at most the credit the client has and the invoice's balance. The
    invoice's ``credit`` grows, the client's shrinks (a ``Credit`` row with a negative
    amount names the invoice); when the balance reaches zero the invoice becomes Paid
    through ``mark_paid`` (renewed, confirmed). Raises ``ValidationError``,
    ``InvoiceRefused``, ``InvoiceChanged``, ``PermissionDenied``."""
    require(actor, MONEY_RIGHT)
    day = checked_date(date or business_today())
    with transaction():
        loaded = load_invoice(invoice_id)
        check_version(loaded, expected_version)
        invoice = loaded.invoice
        minor = _positive(amount, loaded.currency)
        if invoice.status not in PAYABLE_STATUSES:
            raise InvoiceRefused(f"invoice {invoice.number} is {invoice.status}: nothing to pay")
        if minor > loaded.balance:
            raise InvoiceRefused(
                f"{format_money(minor, loaded.currency)} is more than the balance "
                f"{format_money(loaded.balance, loaded.currency)} of invoice {invoice.number}"
            )
        taken = (
            Client.update(credit=Client.credit - minor)
            .where((Client.id == invoice.client_id) & (Client.credit >= minor))
            .execute()
        )
        if taken != 1:
            have = Client.select(Client.credit).where(Client.id == invoice.client_id).scalar()
            raise InvoiceRefused(
                f"the client has {format_money(int(have or 0), loaded.currency)} of credit, "
                f"less than {format_money(minor, loaded.currency)}"
            )
        Credit.create(
            client=invoice.client_id,
            date=day,
            description=f"Credit applied to invoice {invoice.number}",
            amount=-minor,
            invoice=invoice.id,
        )
        bump_version(loaded, credit=Invoice.credit + minor)
        after = loaded.balance - minor
        record(
            actor,
            "invoice",
            invoice.id,
            "apply_credit",
            client_id=invoice.client_id,
            field="credit",
            old_value=format_money(invoice.credit, loaded.currency),
            new_value=f"{format_money(invoice.credit + minor, loaded.currency)}; balance "
            f"{format_money(after, loaded.currency)}",
        )
        paid = settle(invoice, day, actor, invoice.status) if after <= 0 else False
        return PaymentResult(invoice_state(invoice.id), None, already_recorded=False, paid=paid)


def amount_from_text(text: str, field: str = "amount", *, allow_negative: bool = False) -> Decimal:
    """An amount typed on a form ("9.99", "1,234.50") as a Decimal; ``ValidationError`` on
    ``field`` for anything else (a float's exponent, letters). The currency's decimals
    are checked by the rule that takes it."""
    cleaned = str(text).strip().replace(",", "")
    try:
        return parse_amount(cleaned, 8, allow_negative=allow_negative)
    except MoneyError as exc:
        raise ValidationError({field: str(exc) if cleaned else "is required"}) from exc


def date_from_text(text: str, field: str = "date") -> dt.date:
    """A date typed on a form (YYYY-MM-DD, inside the window); ``ValidationError`` on
    ``field`` otherwise."""
    try:
        return parse_date(str(text))
    except ValueError as exc:
        raise ValidationError({field: str(exc)}) from exc
