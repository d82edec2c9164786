"""What clients buy: products, services, addons and domains."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from peewee import (
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
from store.models.enums import BillingCycle, DomainStatus, ProductType, ServiceStatus
from store.models.settings import Currency


class Product(BaseModel):
    name = CharField(max_length=150, unique=True)
    description = TextField(default="")
    #: ``ProductType``: Hosting or Other.
    type = CharField(max_length=16, default=ProductType.HOSTING)
    #: Whether its invoice items are taxed (when tax applies to the client at all).
    taxed = BooleanField(default=True)


class ProductAddon(BaseModel):
    """An addon of the catalogue (WHMCS "Product Addons"); a client's ``Addon`` may come
    from one (and keeps its own name and price)."""

    name = CharField(max_length=150, unique=True)
    description = TextField(default="")
    taxed = BooleanField(default=True)


class Pricing(BaseModel):
    """One price of a product or product addon (WHMCS ``tblpricing``): for one currency
    and billing cycle, ``amount`` in that currency's minor units. ``type`` is a
    ``PricingType``; ``related_id`` the product's or product addon's id (no foreign key:
    it points at either table, and the rules delete prices with what they price)."""

    type = CharField(max_length=16)
    related_id = IntegerField()
    currency = ForeignKeyField(Currency, on_delete="CASCADE")
    billing_cycle = CharField(max_length=16)
    amount = MoneyField(default=0)

    if TYPE_CHECKING:
        currency_id: Any

    class Meta:
        indexes = ((("type", "related_id", "currency", "billing_cycle"), True),)


class Service(BaseModel):
    #: Indexed by the (client, ...) index below: its leading column (migration 0024).
    client = ForeignKeyField(Client, backref="services", on_delete="CASCADE", index=False)
    product = ForeignKeyField(Product, on_delete="RESTRICT")
    domain = CharField(max_length=253, default="")
    status = CharField(max_length=16, default=ServiceStatus.PENDING)
    billing_cycle = CharField(max_length=16, default=BillingCycle.MONTHLY)
    amount = MoneyField(default=0)
    next_due_date = DateField(null=True)
    #: Day of the month (1-31) the item was first due: each next due date comes back to
    #: it when the month has that day (PRODUCT.md §3); null means the next due date's day.
    anchor_day = IntegerField(null=True)
    payment_method = CharField(max_length=32)
    created_at = DateTimeField(default=utcnow)
    #: Staff notes on this service (free text).
    notes = TextField(default="")

    if TYPE_CHECKING:
        client_id: Any
        product_id: Any

    class Meta:
        indexes = (
            (("status", "next_due_date"), False),
            (("client", "payment_method"), False),
        )


class Addon(BaseModel):
    service = ForeignKeyField(Service, backref="addons", on_delete="CASCADE")
    #: Denormalised from the service so rules filter addons by client in one query.
    #: Indexed by the (client, ...) index below: its leading column (migration 0024).
    client = ForeignKeyField(Client, on_delete="CASCADE", index=False)
    #: The catalogue addon it was added from, if any (its name is copied to ``name``).
    product_addon = ForeignKeyField(ProductAddon, null=True, on_delete="SET NULL")
    name = CharField(max_length=150)
    status = CharField(max_length=16, default=ServiceStatus.PENDING)
    billing_cycle = CharField(max_length=16, default=BillingCycle.MONTHLY)
    amount = MoneyField(default=0)
    next_due_date = DateField(null=True)
    #: Day of the month (1-31) the item was first due: each next due date comes back to
    #: it when the month has that day (PRODUCT.md §3); null means the next due date's day.
    anchor_day = IntegerField(null=True)
    payment_method = CharField(max_length=32)
    created_at = DateTimeField(default=utcnow)

    if TYPE_CHECKING:
        client_id: Any
        service_id: Any
        product_addon_id: Any

    class Meta:
        indexes = (
            (("status", "next_due_date"), False),
            (("client", "payment_method"), False),
        )


class Domain(BaseModel):
    #: Indexed by the (client, ...) index below: its leading column (migration 0024).
    client = ForeignKeyField(Client, backref="domains", on_delete="CASCADE", index=False)
    name = CharField(max_length=253)
    status = CharField(max_length=24, default=DomainStatus.PENDING)
    amount = MoneyField(default=0)
    next_due_date = DateField(null=True)
    #: Day of the month (1-31) the item was first due: each next due date comes back to
    #: it when the month has that day (PRODUCT.md §3); null means the next due date's day.
    anchor_day = IntegerField(null=True)
    payment_method = CharField(max_length=32)
    created_at = DateTimeField(default=utcnow)

    class Meta:
        indexes = (
            (("status", "next_due_date"), False),
            (("client", "payment_method"), False),
            (("name",), False),
        )

    if TYPE_CHECKING:
        client_id: Any
