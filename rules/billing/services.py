"""What a client buys, changed by staff: services, their addons, and domains
(the Products/Services and Domains tabs, ``gobiller service add``; issue 13).

- A new service comes from the catalogue: its recurring amount is the product's price
  in the client's currency for the chosen billing cycle unless staff type another;
  Free costs 0. It starts Active (staff add what the client already has or has just
  ordered and paid for; the cron's status update then makes an Inactive client Active,
  PRODUCT.md §3), first due on the business date unless given, its anchor day that
  date's day, paid by the client's payment method.
- Editing the next due date is staff's override: the anchor day becomes the new date's
  day (the cron moves due dates only through ``rules.billing.invoicing``).
- Addons belong to a service (and its client), from a product addon or by name.
- Domains: the name is a hostname (IDNA 2008 with UTS 46 mapping, the ``idna``
  library), stored lower-case in its Unicode form; they renew yearly.

Each write is one transaction with its audit rows (old and new values); money changes
need the ``client.edit_billing`` right, reading ``client.view``. Money is typed as
decimal text in the client's currency and stored in its minor units.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

import idna

from rules.audit import Actor, record
from rules.billing.automation import business_date
from rules.billing.catalogue import format_price, price_of, to_minor
from rules.clients.validation import clean_text
from rules.dates import parse_date
from rules.errors import FieldError, RuleError, ValidationError, transaction
from rules.permissions import require
from store.models import (
    Addon,
    Client,
    Currency,
    Domain,
    Product,
    ProductAddon,
    Service,
    utcnow,
)
from store.models.enums import (
    GATEWAYS,
    BillingCycle,
    DomainStatus,
    PricingType,
    ServiceStatus,
)
from store.money import format_money
from store.settings import load_settings

NOTES_MAX = 10_000
ADDON_NAME_MAX = 150
HOSTNAME_MAX = 253


@dataclass(frozen=True)
class ClientBilling:
    """What the add dialogs need of the client: its currency and payment method, and
    today's business date (the default next due date)."""

    client_id: int
    currency_id: int
    currency_code: str
    decimals: int
    payment_method: str
    today: dt.date
    prefix: str = ""
    suffix: str = ""

    def money(self, minor: int) -> str:
        """``minor`` units as the screens show money in this client's currency."""
        return format_money(
            minor,
            SimpleNamespace(
                code=self.currency_code,
                prefix=self.prefix,
                suffix=self.suffix,
                decimals=self.decimals,
            ),
        )

    def text(self, minor: int) -> str:
        """``minor`` units as a text box holds an amount ("9.99")."""
        return format_price(minor, self.decimals)


@dataclass(frozen=True)
class AddonRow:
    id: int
    service_id: int
    product_addon_id: int | None
    name: str
    status: str
    billing_cycle: str
    amount: int
    next_due_date: dt.date | None
    payment_method: str


@dataclass(frozen=True)
class ServiceRow:
    id: int
    product_id: int
    product_name: str
    domain: str
    status: str
    billing_cycle: str
    amount: int
    next_due_date: dt.date | None
    payment_method: str
    notes: str
    addons: list[AddonRow] = field(default_factory=list)


@dataclass(frozen=True)
class DomainRow:
    id: int
    name: str
    status: str
    amount: int
    next_due_date: dt.date | None
    payment_method: str


# --------------------------------------------------------------------------- cleaning


def clean_hostname(value: object, *, required: bool = True) -> str:
    """A domain name as typed -> its normalised form: trimmed, no trailing dot, mapped
    by UTS 46 (lower case, width folded), valid IDNA 2008 labels of at most 63 octets,
    at least two labels, at most 253 octets in ASCII; returned in Unicode ("bücher.de",
    "example.com"). Raises ``FieldError`` with the reason; "" when blank and not
    ``required``."""
    if not isinstance(value, str):
        raise FieldError("must be text")
    text = value.strip().rstrip(".")
    if not text:
        if required:
            raise FieldError("is required")
        return ""
    try:
        ascii_name = idna.encode(text, uts46=True).decode("ascii")
        unicode_name = idna.decode(ascii_name)
    except (idna.IDNAError, UnicodeError) as exc:
        raise FieldError(f"is not a valid domain name ({exc})") from exc
    if "." not in ascii_name:
        raise FieldError("is not a valid domain name (needs a dot, e.g. example.com)")
    if len(ascii_name) > HOSTNAME_MAX:
        raise FieldError(f"is longer than {HOSTNAME_MAX} characters")
    return unicode_name


def _choice(value: Any, allowed: Any, what: str) -> str:
    names = [str(a) for a in allowed]
    if value not in names:
        raise FieldError(f"must be one of {', '.join(names)}")
    return str(value)


def _date(value: Any) -> dt.date:
    if isinstance(value, dt.date):
        return value
    try:
        return parse_date(value)
    except ValueError as exc:
        raise FieldError(str(exc)) from exc


def _client_billing(client_id: int) -> ClientBilling:
    row = (
        Client.select(
            Client.id,
            Client.payment_method,
            Currency.id,
            Currency.code,
            Currency.decimals,
            Currency.prefix,
            Currency.suffix,
        )
        .join(Currency)
        .where(Client.id == client_id)
        .tuples()
        .first()
    )
    if row is None:
        raise RuleError(f"no client {client_id}")
    today, _ = business_date(utcnow(), load_settings())
    return ClientBilling(row[0], row[2], row[3], row[4], row[1], today, row[5], row[6])


def client_billing(client_id: int, actor: Actor) -> ClientBilling:
    """The client's currency, payment method and today's business date (2 queries).
    Raises ``RuleError`` when there is no such client, ``PermissionDenied``."""
    require(actor, "client.view")
    return _client_billing(client_id)


def _clean_item(
    values: Mapping[str, Any],
    billing: ClientBilling,
    *,
    statuses: Any,
    cycles: bool,
    errors: dict[str, str],
) -> dict[str, Any]:
    """The recurring fields common to services, addons and domains, as typed."""
    clean: dict[str, Any] = {}
    checks: list[tuple[str, Any]] = [
        ("status", lambda v: _choice(v, statuses, "status")),
        ("payment_method", lambda v: _choice(v, GATEWAYS, "payment method")),
        ("next_due_date", _date),
    ]
    if cycles:
        checks.append(("billing_cycle", lambda v: _choice(v, BillingCycle, "billing cycle")))
    for name, check in checks:
        if name in values and values[name] is not None:
            try:
                clean[name] = check(values[name])
            except FieldError as exc:
                errors[name] = str(exc)
    if "amount" in values and values["amount"] is not None and str(values["amount"]).strip():
        try:
            clean["amount"] = to_minor(values["amount"], billing.decimals)
        except ValidationError as exc:
            errors.update(exc.errors)
    if clean.get("billing_cycle") == BillingCycle.FREE and clean.get("amount", 0) != 0:
        errors["amount"] = "a Free item costs 0"
    return clean


def _editable(actor: Actor, model: Any, entity: str, item_id: int) -> tuple[Any, ClientBilling]:
    """The stored service, addon or domain about to be edited and its client's billing
    facts, after the right check. Raises ``PermissionDenied``, ``RuleError`` when gone."""
    require(actor, "client.edit_billing")
    current = model.get_or_none(model.id == item_id)
    if current is None:
        raise RuleError(f"no {entity} {item_id}")
    return current, _client_billing(current.client_id)


def _free_costs_nothing(clean: dict[str, Any], cycle: str, errors: dict[str, str]) -> None:
    """A Free item's recurring amount is 0 (PRODUCT.md §5 billing cycles): a typed
    non-zero amount is refused on ``amount``; none typed becomes 0."""
    if cycle == BillingCycle.FREE:
        if clean.get("amount", 0) != 0:
            errors["amount"] = "a Free item costs 0"
        clean["amount"] = 0


def _save_changes(
    model: Any,
    entity: str,
    item_id: int,
    clean: Mapping[str, Any],
    billing: ClientBilling,
    actor: Actor,
) -> Any:
    """Write the fields of ``clean`` that differ from the stored row of ``model``
    (a service, addon or domain), each audited old -> new in the same transaction; a new
    next due date also becomes the anchor day (PRODUCT.md §3). Returns the row as stored.
    Raises ``RuleError`` when the row is gone."""
    with transaction():
        row = model.get_or_none(model.id == item_id)
        if row is None:
            raise RuleError(f"no {entity} {item_id}")
        changed = _audit_changes(actor, entity, row, clean, billing)
        if "next_due_date" in changed:
            changed["anchor_day"] = changed["next_due_date"].day
        if changed:
            model.update(**changed).where(model.id == item_id).execute()
    return model.get_by_id(item_id)


def _text_value(value: Any, decimals: int, name: str) -> str:
    if value is None:
        return ""
    if name == "amount":
        return format_price(int(value), decimals)
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _audit_changes(
    actor: Actor,
    entity: str,
    row: Any,
    clean: Mapping[str, Any],
    billing: ClientBilling,
) -> dict[str, Any]:
    """Audit and return the fields of ``clean`` that differ from ``row``."""
    changed: dict[str, Any] = {}
    for name, value in clean.items():
        old = getattr(row, name)
        if isinstance(old, str) and name == "next_due_date":
            old = dt.date.fromisoformat(old)
        if old != value:
            changed[name] = value
            record(
                actor,
                entity,
                row.id,
                "update",
                client_id=billing.client_id,
                field=name,
                old_value=_text_value(old, billing.decimals, name),
                new_value=_text_value(value, billing.decimals, name),
            )
    return changed


def _amount_for(
    kind: str, related_id: int, billing: ClientBilling, cycle: str, clean: dict[str, Any]
) -> int:
    """The typed amount, else the catalogue price; refused when neither exists."""
    if cycle == BillingCycle.FREE:
        return 0
    if "amount" in clean:
        return int(clean["amount"])
    price = price_of(kind, related_id, billing.currency_id, cycle)
    if price is None:
        raise ValidationError(
            {
                "amount": f"no catalogue price in {billing.currency_code} for {cycle}: "
                "type the recurring amount"
            }
        )
    return price


def _created(actor: Actor, entity: str, row: Any, client_id: int, text: str) -> None:
    record(actor, entity, row.id, "create", client_id=client_id, new_value=text)


# --------------------------------------------------------------------------- services


def add_service(client_id: int, values: Mapping[str, Any], actor: Actor) -> Service:
    """Add a service from the catalogue for a client.

    ``values``: ``product_id`` (required), ``billing_cycle`` (default Monthly),
    ``amount`` (decimal text in the client's currency; default the product's price in
    that currency and cycle; Free is 0), ``status`` (a ``ServiceStatus``, default
    Active), ``next_due_date`` (date or YYYY-MM-DD, default today's business date in the
    settings' timezone), ``payment_method`` (default the client's), ``domain``
    (hostname or blank), ``notes``. ``anchor_day`` is the next due date's day.

    Raises ``ValidationError`` per field (nothing saved; ``amount`` when the product has
    no price for the client's currency and cycle and none is typed),
    ``PermissionDenied`` (needs ``client.edit_billing``), ``RuleError`` (no client).
    The client's first service fixes its currency (PRODUCT.md §1): the profile warns on
    a currency change from then on (``rules.clients.profile.currency_usage``). Audited.
    """
    require(actor, "client.edit_billing")
    billing = _client_billing(client_id)
    errors: dict[str, str] = {}
    clean = _clean_item(values, billing, statuses=ServiceStatus, cycles=True, errors=errors)
    clean.update(_clean_service_text(values, errors))
    product = None
    product_id = values.get("product_id")
    if product_id is None or str(product_id).strip() == "":
        errors["product_id"] = "is required"
    else:
        product = Product.get_or_none(Product.id == product_id)
        if product is None:
            errors["product_id"] = "no such product"
    cycle = clean.get("billing_cycle", BillingCycle.MONTHLY)
    amount = 0
    if product is not None and not {"billing_cycle", "amount"} & set(errors):
        try:  # with the other fields' errors: every refusal at once
            amount = _amount_for(PricingType.PRODUCT, product.id, billing, cycle, clean)
        except ValidationError as exc:
            errors.update(exc.errors)
    if errors:
        raise ValidationError(errors)
    assert product is not None
    due = clean.get("next_due_date", billing.today)
    with transaction():
        service = Service.create(
            client=client_id,
            product=product.id,
            domain=clean.get("domain", ""),
            status=clean.get("status", ServiceStatus.ACTIVE),
            billing_cycle=cycle,
            amount=amount,
            next_due_date=due,
            anchor_day=due.day,
            payment_method=clean.get("payment_method", billing.payment_method),
            notes=clean.get("notes", ""),
        )
        _created(
            actor,
            "service",
            service,
            client_id,
            f"{product.name} {cycle} {format_price(amount, billing.decimals)} "
            f"{billing.currency_code} {service.status}, next due {due.isoformat()}",
        )
    return service


def _clean_service_text(values: Mapping[str, Any], errors: dict[str, str]) -> dict[str, Any]:
    clean: dict[str, Any] = {}
    if "domain" in values and values["domain"] is not None:
        try:
            clean["domain"] = clean_hostname(values["domain"], required=False)
        except FieldError as exc:
            errors["domain"] = str(exc)
    if "notes" in values and values["notes"] is not None:
        try:
            clean["notes"] = clean_text(values["notes"], NOTES_MAX, multiline=True)
        except FieldError as exc:
            errors["notes"] = str(exc)
    return clean


def update_service(service_id: int, values: Mapping[str, Any], actor: Actor) -> Service:
    """Edit a service: ``status``, ``billing_cycle``, ``amount`` (recurring amount,
    decimal text), ``next_due_date`` (its day becomes the anchor day), ``payment_method``,
    ``domain``, ``notes``; keys left out stay. Each changed field is audited with its old
    and new value. Errors as :func:`add_service`; ``RuleError`` when there is no such
    service."""
    current, billing = _editable(actor, Service, "service", service_id)
    errors: dict[str, str] = {}
    clean = _clean_item(values, billing, statuses=ServiceStatus, cycles=True, errors=errors)
    clean.update(_clean_service_text(values, errors))
    _free_costs_nothing(clean, clean.get("billing_cycle", current.billing_cycle), errors)
    if errors:
        raise ValidationError(errors)
    return _save_changes(Service, "service", service_id, clean, billing, actor)


# --------------------------------------------------------------------------- addons


def add_addon(service_id: int, values: Mapping[str, Any], actor: Actor) -> Addon:
    """Add an addon to a service.

    ``values``: ``product_addon_id`` (a catalogue addon; its name is copied) or ``name``
    (required without one), ``billing_cycle`` (default the service's), ``amount``
    (default the product addon's price in the client's currency and cycle; required
    without one), ``status`` (default Active), ``next_due_date`` (default today's
    business date), ``payment_method`` (default the service's). Errors as
    :func:`add_service`; ``RuleError`` when there is no such service. Audited.
    """
    require(actor, "client.edit_billing")
    service = Service.get_or_none(Service.id == service_id)
    if service is None:
        raise RuleError(f"no service {service_id}")
    billing = _client_billing(service.client_id)
    errors: dict[str, str] = {}
    clean = _clean_item(values, billing, statuses=ServiceStatus, cycles=True, errors=errors)
    catalogue = None
    pa_id = values.get("product_addon_id")
    if pa_id is not None and str(pa_id).strip() != "":
        catalogue = ProductAddon.get_or_none(ProductAddon.id == pa_id)
        if catalogue is None:
            errors["product_addon_id"] = "no such product addon"
    name = values.get("name")
    if name is not None and str(name).strip():
        try:
            clean["name"] = clean_text(name, ADDON_NAME_MAX, required=True)
        except FieldError as exc:
            errors["name"] = str(exc)
    elif catalogue is not None:
        clean["name"] = catalogue.name
    elif "product_addon_id" not in errors:
        errors["name"] = "is required (or choose a product addon)"
    cycle = clean.get("billing_cycle", service.billing_cycle)
    amount = 0
    if not {"billing_cycle", "amount", "product_addon_id"} & set(errors):
        try:  # with the other fields' errors: every refusal at once
            if catalogue is not None:
                amount = _amount_for(PricingType.ADDON, catalogue.id, billing, cycle, clean)
            elif cycle != BillingCycle.FREE:
                if "amount" not in clean:
                    raise ValidationError({"amount": "is required"})
                amount = clean["amount"]
        except ValidationError as exc:
            errors.update(exc.errors)
    if errors:
        raise ValidationError(errors)
    due = clean.get("next_due_date", billing.today)
    with transaction():
        addon = Addon.create(
            service=service.id,
            client=service.client_id,
            product_addon=catalogue.id if catalogue else None,
            name=clean["name"],
            status=clean.get("status", ServiceStatus.ACTIVE),
            billing_cycle=cycle,
            amount=amount,
            next_due_date=due,
            anchor_day=due.day,
            payment_method=clean.get("payment_method", service.payment_method),
        )
        _created(
            actor,
            "addon",
            addon,
            service.client_id,
            f"{addon.name} on service {service.id} {cycle} "
            f"{format_price(amount, billing.decimals)} {billing.currency_code} {addon.status}, "
            f"next due {due.isoformat()}",
        )
    return addon


def update_addon(addon_id: int, values: Mapping[str, Any], actor: Actor) -> Addon:
    """Edit an addon: ``name``, ``status``, ``billing_cycle``, ``amount``,
    ``next_due_date`` (its day becomes the anchor day), ``payment_method``. Errors and
    audit as :func:`update_service`."""
    current, billing = _editable(actor, Addon, "addon", addon_id)
    errors: dict[str, str] = {}
    clean = _clean_item(values, billing, statuses=ServiceStatus, cycles=True, errors=errors)
    if "name" in values and values["name"] is not None:
        try:
            clean["name"] = clean_text(values["name"], ADDON_NAME_MAX, required=True)
        except FieldError as exc:
            errors["name"] = str(exc)
    _free_costs_nothing(clean, clean.get("billing_cycle", current.billing_cycle), errors)
    if errors:
        raise ValidationError(errors)
    return _save_changes(Addon, "addon", addon_id, clean, billing, actor)


# --------------------------------------------------------------------------- domains


def add_domain(client_id: int, values: Mapping[str, Any], actor: Actor) -> Domain:
    """Add a domain for a client.

    ``values``: ``name`` (required; see :func:`clean_hostname`), ``status`` (a
    ``DomainStatus``, default Active), ``amount`` (the yearly recurring amount, decimal
    text in the client's currency, default 0), ``next_due_date`` (default today's
    business date), ``payment_method`` (default the client's). Errors as
    :func:`add_service`. Audited.
    """
    require(actor, "client.edit_billing")
    billing = _client_billing(client_id)
    errors: dict[str, str] = {}
    clean = _clean_item(values, billing, statuses=DomainStatus, cycles=False, errors=errors)
    try:
        clean["name"] = clean_hostname(values.get("name"))
    except FieldError as exc:
        errors["name"] = str(exc)
    if errors:
        raise ValidationError(errors)
    due = clean.get("next_due_date", billing.today)
    with transaction():
        domain = Domain.create(
            client=client_id,
            name=clean["name"],
            status=clean.get("status", DomainStatus.ACTIVE),
            amount=clean.get("amount", 0),
            next_due_date=due,
            anchor_day=due.day,
            payment_method=clean.get("payment_method", billing.payment_method),
        )
        _created(
            actor,
            "domain",
            domain,
            client_id,
            f"{domain.name} {format_price(domain.amount, billing.decimals)} "
            f"{billing.currency_code} {domain.status}, next due {due.isoformat()}",
        )
    return domain


def update_domain(domain_id: int, values: Mapping[str, Any], actor: Actor) -> Domain:
    """Edit a domain: ``name``, ``status``, ``amount``, ``next_due_date`` (its day becomes
    the anchor day), ``payment_method``. Errors and audit as :func:`update_service`."""
    current, billing = _editable(actor, Domain, "domain", domain_id)
    errors: dict[str, str] = {}
    clean = _clean_item(values, billing, statuses=DomainStatus, cycles=False, errors=errors)
    if "name" in values and values["name"] is not None:
        try:
            clean["name"] = clean_hostname(values["name"])
        except FieldError as exc:
            errors["name"] = str(exc)
    if errors:
        raise ValidationError(errors)
    return _save_changes(Domain, "domain", domain_id, clean, billing, actor)


# --------------------------------------------------------------------------- reading


def _day(value: Any) -> dt.date | None:
    if value is None or isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value))


def services_of(client_id: int, actor: Actor, limit: int = 500) -> list[ServiceRow]:
    """A client's services (by id, at most ``limit``) with their addons (2 queries)."""
    require(actor, "client.view")
    services: Any = (
        Service.select(Service, Product.name.alias("product_name"))
        .join(Product)
        .where(Service.client == client_id)
        .order_by(Service.id)
        .limit(limit)
        .objects()
    )
    addons: dict[int, list[AddonRow]] = {}
    for a in Addon.select().where(Addon.client == client_id).order_by(Addon.id):
        addons.setdefault(a.service_id, []).append(
            AddonRow(
                a.id,
                a.service_id,
                a.product_addon_id,
                a.name,
                a.status,
                a.billing_cycle,
                a.amount,
                _day(a.next_due_date),
                a.payment_method,
            )
        )
    return [
        ServiceRow(
            s.id,
            s.product_id,
            s.product_name,
            s.domain,
            s.status,
            s.billing_cycle,
            s.amount,
            _day(s.next_due_date),
            s.payment_method,
            s.notes,
            addons.get(s.id, []),
        )
        for s in services
    ]


def domains_of(client_id: int, actor: Actor, limit: int = 500) -> list[DomainRow]:
    """A client's domains by id, at most ``limit`` (1 query)."""
    require(actor, "client.view")
    return [
        DomainRow(d.id, d.name, d.status, d.amount, _day(d.next_due_date), d.payment_method)
        for d in Domain.select().where(Domain.client == client_id).order_by(Domain.id).limit(limit)
    ]
