"""The products catalogue: products, product addons and their prices (PRODUCT.md §3,
issue 13; WHMCS "Products/Services" and "Product Addons" with ``tblpricing``).

A product or product addon has a name (unique among its kind), a description, a taxed
flag (its invoice items are taxed when tax applies to the client) and prices: at most
one per (currency, billing cycle), each in that currency's minor units. A price left
out means "not offered in that currency and cycle". Free has no price (always 0);
One Time is a price like any other but is never invoiced by the cron.

The catalogue is a setting: only staff with the ``settings`` right (admins) change it.
Every change is one transaction with its audit rows (old and new values).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from rules.audit import Actor, record
from rules.clients.validation import clean_text
from rules.errors import FieldError, RuleError, ValidationError, transaction
from rules.permissions import require
from store.models import Addon, Currency, Pricing, Product, ProductAddon, Service
from store.models.enums import BillingCycle, PricingType, ProductType
from store.money import MoneyError, format_decimal, parse_amount

#: Cycles a price can be set for, in the order screens show them (Free is always 0).
PRICED_CYCLES: tuple[str, ...] = tuple(c.value for c in BillingCycle if c != BillingCycle.FREE)
#: The largest amount accepted anywhere in the catalogue and on services (major units).
AMOUNT_LIMIT = Decimal(10) ** 12
NAME_MAX = 150
DESCRIPTION_MAX = 5_000

#: A product's or product addon's prices: (currency id, billing cycle) -> amount in the
#: currency's minor units.
Prices = dict[tuple[int, str], int]


@dataclass(frozen=True)
class CatalogueEntry:
    """A product or product addon as the catalogue screen shows it."""

    id: int
    name: str
    description: str
    taxed: bool
    #: ``ProductType`` for products, "" for product addons.
    type: str = ""
    prices: Prices = field(default_factory=dict)
    #: Services (products) or client addons (product addons) made from it.
    in_use: int = 0


class CatalogueInUse(RuleError):
    """A product still sold to clients cannot be deleted."""


def to_minor(
    value: Any, decimals: int, field_name: str = "amount", *, allow_negative: bool = False
) -> int:
    """An amount (a string like ``"9.99"`` or a ``Decimal``) as minor units of a currency
    with ``decimals`` places: the one conversion of amounts staff type (catalogue prices,
    services, payments, credit, invoice items). Raises ``ValidationError`` on
    ``field_name``: not a decimal, negative (unless ``allow_negative``), more decimals
    than the currency has, or not below ``AMOUNT_LIMIT`` either way."""
    if isinstance(value, Decimal) and value.is_finite():
        quantum = Decimal(1).scaleb(-decimals)
        value = str(value.quantize(quantum)) if value == value.quantize(quantum) else str(value)
    try:
        text = value if isinstance(value, str) else str(value)
        amount = parse_amount(text, decimals, allow_negative=allow_negative)
    except MoneyError as exc:
        raise ValidationError({field_name: str(exc)}) from exc
    if abs(amount) >= AMOUNT_LIMIT:
        raise ValidationError({field_name: f"must be less than {AMOUNT_LIMIT:,}"})
    return int(amount.scaleb(decimals))


def _entries(kind: str, rows: list[Any], used: dict[int, int]) -> list[CatalogueEntry]:
    prices: dict[int, Prices] = {}
    ids = [r.id for r in rows]
    if ids:
        for p in Pricing.select().where((Pricing.type == kind) & Pricing.related_id.in_(ids)):
            prices.setdefault(p.related_id, {})[(p.currency_id, p.billing_cycle)] = p.amount
    return [
        CatalogueEntry(
            r.id,
            r.name,
            r.description,
            bool(r.taxed),
            getattr(r, "type", "") if kind == PricingType.PRODUCT else "",
            prices.get(r.id, {}),
            used.get(r.id, 0),
        )
        for r in rows
    ]


def _usage(model: Any, column: Any) -> dict[int, int]:
    from peewee import fn

    rows: Any = (
        model.select(column, fn.COUNT(model.id)).where(column.is_null(False)).group_by(column)
    )
    return {rid: n for rid, n in rows.tuples()}


def products() -> list[CatalogueEntry]:
    """Every product with its prices and how many services use it, by name (3 queries).
    Reading the catalogue needs no right: the service dialogs show it to every staff."""
    rows = list(Product.select().order_by(Product.name))
    return _entries(PricingType.PRODUCT, rows, _usage(Service, Service.product))


def product_addons() -> list[CatalogueEntry]:
    """Every product addon with its prices and how many client addons came from it,
    by name (3 queries)."""
    rows = list(ProductAddon.select().order_by(ProductAddon.name))
    return _entries(PricingType.ADDON, rows, _usage(Addon, Addon.product_addon))


def price_of(kind: str, related_id: int, currency_id: int, cycle: str) -> int | None:
    """The catalogue price (minor units) of a product or product addon in one currency
    and cycle; 0 for Free; None when none is set (1 query, none for Free)."""
    if cycle == BillingCycle.FREE:
        return 0
    row = Pricing.get_or_none(
        (Pricing.type == kind)
        & (Pricing.related_id == related_id)
        & (Pricing.currency == currency_id)
        & (Pricing.billing_cycle == cycle)
    )
    return None if row is None else int(row.amount)


def _clean_prices(raw: Mapping[tuple[int, str], Any], errors: dict[str, str]) -> Prices:
    """Typed prices -> minor units; blank means not offered. Errors keyed
    ``price.<currency code>.<cycle>``."""
    currencies = {c.id: c for c in Currency.select()}
    clean: Prices = {}
    for (currency_id, cycle), value in raw.items():
        currency = currencies.get(int(currency_id))
        key = f"price.{currency.code if currency else currency_id}.{cycle}"
        if currency is None:
            errors[key] = "no such currency"
            continue
        if cycle not in PRICED_CYCLES:
            errors[key] = f"no price is set for {cycle}"
            continue
        if value is None or (isinstance(value, str) and not value.strip()):
            continue
        try:
            clean[(currency.id, cycle)] = to_minor(value, currency.decimals, key)
        except ValidationError as exc:
            errors.update(exc.errors)
    return clean


def _clean_entry(values: Mapping[str, Any], *, product: bool) -> tuple[dict[str, Any], Prices]:
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    for name, limit, required in (
        ("name", NAME_MAX, True),
        ("description", DESCRIPTION_MAX, False),
    ):
        if name in values:
            try:
                clean[name] = clean_text(
                    values[name], limit, required=required, multiline=name == "description"
                )
            except FieldError as exc:
                errors[name] = str(exc)
    if "taxed" in values:
        clean["taxed"] = bool(values["taxed"])
    if product and "type" in values:
        if values["type"] not in set(ProductType):
            errors["type"] = f"must be one of {', '.join(ProductType)}"
        else:
            clean["type"] = str(values["type"])
    prices = _clean_prices(values.get("prices") or {}, errors)
    if errors:
        raise ValidationError(errors)
    return clean, prices


def _write_prices(
    kind: str, related_id: int, prices: Prices, replace: bool, actor: Actor, entity: str
) -> None:
    """Set the given prices (and with ``replace`` remove the ones not given); audit each
    change. A fixed number of queries: one read, one delete, one insert, updates per
    changed price."""
    old: Prices = {
        (p.currency_id, p.billing_cycle): p.amount
        for p in Pricing.select().where((Pricing.type == kind) & (Pricing.related_id == related_id))
    }
    currencies = {c.id: (c.code, c.decimals) for c in Currency.select()}
    gone = [key for key in old if key not in prices] if replace else []
    for currency_id, cycle in gone:
        Pricing.delete().where(
            (Pricing.type == kind)
            & (Pricing.related_id == related_id)
            & (Pricing.currency == currency_id)
            & (Pricing.billing_cycle == cycle)
        ).execute()
    new_rows = []
    for key, amount in prices.items():
        if key in old and old[key] == amount:
            continue
        if key in old:
            Pricing.update(amount=amount).where(
                (Pricing.type == kind)
                & (Pricing.related_id == related_id)
                & (Pricing.currency == key[0])
                & (Pricing.billing_cycle == key[1])
            ).execute()
        else:
            new_rows.append(
                {
                    "type": kind,
                    "related_id": related_id,
                    "currency": key[0],
                    "billing_cycle": key[1],
                    "amount": amount,
                }
            )
    if new_rows:
        Pricing.insert_many(new_rows).execute()
    for key in sorted(set(old) | set(prices)):
        before = old.get(key)
        after = prices[key] if key in prices else (None if replace else before)
        if before != after:
            record(
                actor,
                entity,
                related_id,
                "price",
                field=f"{currencies[key[0]][0]} {key[1]}",
                old_value="" if before is None else format_price(before, currencies[key[0]][1]),
                new_value="" if after is None else format_price(after, currencies[key[0]][1]),
            )


def _save(
    model: Any,
    kind: str,
    entity: str,
    entry_id: int | None,
    values: Mapping[str, Any],
    actor: Actor,
) -> Any:
    require(actor, "settings")
    clean, prices = _clean_entry(values, product=model is Product)
    label = "product" if model is Product else "product addon"
    if entry_id is None and "name" not in clean:
        raise ValidationError({"name": "is required"})
    with transaction():
        if "name" in clean:
            clash = model.select().where(model.name == clean["name"])
            if entry_id is not None:
                clash = clash.where(model.id != entry_id)
            if clash.exists():
                raise ValidationError({"name": f"another {label} is called {clean['name']}"})
        if entry_id is None:
            row = model.create(**clean)
            record(actor, entity, row.id, "create", new_value=row.name)
        else:
            row = model.get_or_none(model.id == entry_id)
            if row is None:
                raise RuleError(f"no {label} {entry_id}")
            for name, value in clean.items():
                old = getattr(row, name)
                if old != value:
                    record(
                        actor,
                        entity,
                        row.id,
                        "update",
                        field=name,
                        old_value=str(old),
                        new_value=str(value),
                    )
                    setattr(row, name, value)
            row.save()
        _write_prices(kind, row.id, prices, "prices" in values, actor, entity)
    return row


def save_product(values: Mapping[str, Any], actor: Actor, product_id: int | None = None) -> Product:
    """Create (``product_id`` None) or edit a product.

    ``values``: ``name`` (required on create, unique), ``description``, ``type`` (a
    ``ProductType``), ``taxed`` (bool), ``prices``: {(currency id, billing cycle): amount
    as typed ("9.99", Decimal; blank = not offered)}; given prices replace all the
    product's prices. Raises ``ValidationError`` (keys ``name``, ``type``,
    ``price.<CODE>.<cycle>``; nothing saved), ``PermissionDenied`` (needs ``settings``),
    ``RuleError`` (no such product). Audited: create, each changed field, each price.
    """
    return _save(Product, PricingType.PRODUCT, "product", product_id, values, actor)


def save_product_addon(
    values: Mapping[str, Any], actor: Actor, product_addon_id: int | None = None
) -> ProductAddon:
    """Create or edit a product addon; ``values`` as :func:`save_product` without
    ``type``. Same errors and audit."""
    return _save(ProductAddon, PricingType.ADDON, "product_addon", product_addon_id, values, actor)


def _delete(model: Any, kind: str, entity: str, entry_id: int, actor: Actor, used: Any) -> None:
    require(actor, "settings")
    label = "product" if model is Product else "product addon"
    with transaction():
        row = model.get_or_none(model.id == entry_id)
        if row is None:
            raise RuleError(f"no {label} {entry_id}")
        count = used.count()
        if count and model is Product:
            raise CatalogueInUse(
                f"{row.name} has {count} service(s): change or delete them first; "
                "nothing was deleted"
            )
        Pricing.delete().where((Pricing.type == kind) & (Pricing.related_id == entry_id)).execute()
        record(actor, entity, entry_id, "delete", old_value=row.name)
        row.delete_instance()


def delete_product(product_id: int, actor: Actor) -> None:
    """Delete a product and its prices. Raises ``CatalogueInUse`` while any service is
    of that product (WHMCS refuses too), ``RuleError`` when there is no such product,
    ``PermissionDenied``. Audited."""
    _delete(
        Product,
        PricingType.PRODUCT,
        "product",
        product_id,
        actor,
        Service.select().where(Service.product == product_id),
    )


def delete_product_addon(product_addon_id: int, actor: Actor) -> None:
    """Delete a product addon and its prices; client addons made from it keep their
    name, price and cycle (their link becomes empty). Audited."""
    _delete(
        ProductAddon,
        PricingType.ADDON,
        "product_addon",
        product_addon_id,
        actor,
        Addon.select().where(Addon.product_addon == product_addon_id),
    )


def format_price(minor: int, decimals: int) -> str:
    """Minor units as the catalogue's text boxes show them ("9.99")."""
    return format_decimal(Decimal(minor).scaleb(-decimals), decimals)
