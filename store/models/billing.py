"""Invoices, their items, and money received (transactions)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from peewee import (
    BigIntegerField,
    BooleanField,
    CharField,
    DateField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    TextField,
)

from store.models.base import BaseModel, MoneyField, utcnow
from store.models.clients import Client
from store.models.enums import InvoiceStatus


class Invoice(BaseModel):
    #: Indexed by the (client, ...) index below: its leading column (migration 0024).
    client = ForeignKeyField(Client, backref="invoices", on_delete="RESTRICT", index=False)
    number = CharField(max_length=32, unique=True)
    date = DateField()
    due_date = DateField()
    date_paid = DateField(null=True)
    status = CharField(max_length=16, default=InvoiceStatus.UNPAID)
    payment_method = CharField(max_length=32)
    subtotal = MoneyField(default=0)
    tax = MoneyField(default=0)
    tax2 = MoneyField(default=0)
    total = MoneyField(default=0)
    #: Rates applied, in ten-thousandths of a percent, kept for reprinting.
    tax_rate1_e4 = IntegerField(default=0)
    tax_rate2_e4 = IntegerField(default=0)
    notes = TextField(default="")
    created_at = DateTimeField(default=utcnow)
    #: Optimistic lock: every change of the invoice (payment, item, status) bumps it.
    version = IntegerField(default=1)
    #: Credit applied to the invoice from the client's credit balance, minor units: the
    #: balance is total - credit - money received (``store.queries.balance_due``).
    credit = MoneyField(default=0)

    if TYPE_CHECKING:
        client_id: Any

    class Meta:
        indexes = (
            # The rules' selections: Unpaid by due date, answered from the index (0025).
            (("status", "due_date", "date", "client", "payment_method"), False),
            (("status", "date"), False),
            (("client", "status"), False),
            (("client", "payment_method"), False),
        )


class InvoiceItem(BaseModel):
    #: Indexed by (invoice, type) below: its leading column (migration 0025).
    invoice = ForeignKeyField(Invoice, backref="items", on_delete="CASCADE", index=False)
    type = CharField(max_length=16)
    description = TextField()
    amount = MoneyField()
    taxed = BooleanField(default=False)
    #: What was billed ("service", "addon", "domain") and for which due date:
    #: unique, so no item is ever invoiced twice for the same due date.
    related_type = CharField(max_length=16, null=True)
    related_id = IntegerField(null=True)
    related_due_date = DateField(null=True)
    sort_order = IntegerField(default=0)

    class Meta:
        indexes = (
            (("related_type", "related_id", "related_due_date"), True),
            (("invoice", "type"), False),  # "has it a late fee": from the index (0025)
        )


class Transaction(BaseModel):
    client = ForeignKeyField(Client, backref="transactions", on_delete="RESTRICT")
    invoice = ForeignKeyField(Invoice, null=True, backref="transactions", on_delete="SET NULL")
    gateway = CharField(max_length=32)
    #: The gateway's own reference.
    transaction_id = CharField(max_length=128, default="")
    #: One key per capture attempt: a retry can never charge twice.
    idempotency_key = CharField(max_length=128, null=True, unique=True)
    amount_in = MoneyField(default=0)
    amount_out = MoneyField(default=0)
    fees = MoneyField(default=0)
    description = TextField(default="")
    date = DateTimeField(default=utcnow)


class Credit(BaseModel):
    """One movement of a client's credit balance (WHMCS ``tblcredit``): ``amount`` in
    minor units, positive when credit is added, negative when it is applied to
    ``invoice``; ``date`` is the business date. ``Client.credit`` is their sum."""

    client = ForeignKeyField(Client, backref="credits", on_delete="RESTRICT")
    date = DateField()
    description = TextField(default="")
    amount = MoneyField()
    invoice = ForeignKeyField(Invoice, null=True, backref="credits", on_delete="SET NULL")
    created_at = DateTimeField(default=utcnow)


class InvoiceSequence(BaseModel):
    """The one invoice number sequence (a single row, id 1): the last number issued.

    Raised in the transaction that creates invoices, so a rolled-back run leaves no
    gap and concurrent writers wait on the row; never below a number already issued,
    imported ones included (PRODUCT.md §3).
    """

    last_value = BigIntegerField(default=0)
