"""Client profile changes: create, update with optimistic locking, contacts, cascades.

Plain functions used by the staff app and usable headless. Every change is
validated whole (nothing is saved when any field is invalid), checked against
the actor's role, written with its audit rows in one transaction, and refused
when someone else saved the client since it was read.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

from rules.audit import Actor, record
from rules.clients.currencies import rescale_client_amounts
from rules.clients.fields import (
    BILLING_FIELDS,
    CONTACT_KEYS,
    EDITABLE_FIELDS,
    FIELDS,
    ProfileField,
)
from rules.clients.validation import (
    check_custom_value,
    clean_country,
    clean_email,
    clean_phone,
    clean_state,
    clean_text,
)
from rules.errors import FieldError, RuleError, StoredDataConflict, ValidationError, transaction
from rules.permissions import require
from store.keys import email_key, normalise_state
from store.models import (
    Addon,
    AuditLog,
    Client,
    ClientGroup,
    Contact,
    Currency,
    CustomField,
    CustomFieldValue,
    Domain,
    Invoice,
    Service,
    Transaction,
    utcnow,
)
from store.models.clients import CLIENT_DERIVED
from store.models.enums import GATEWAYS, ClientStatus, InvoiceStatus
from store.queries import among

CUSTOM = "custom_fields"
#: The refusals of a taken email, whichever path finds it (the check or the unique index).
EMAIL_TAKEN = "another client has this email"
CONTACT_EMAIL_TAKEN = "this client already has a contact with this email"


class StaleEdit(RuleError):
    """Someone saved this client after it was read; ``current`` holds the stored values."""

    def __init__(self, current: dict[str, Any], version: int) -> None:
        super().__init__("this client was changed by someone else since you opened it")
        self.current = current
        self.version = version


@dataclass(frozen=True)
class SaveResult:
    client_id: int
    version: int
    changed: tuple[str, ...]
    cascaded: int = 0


@dataclass(frozen=True)
class CascadeCount:
    """What changing the payment method will update, shown before saving."""

    services: int = 0
    addons: int = 0
    domains: int = 0
    unpaid_invoices: int = 0

    @property
    def total(self) -> int:
        return self.services + self.addons + self.domains + self.unpaid_invoices


@dataclass(frozen=True)
class CurrencyUsage:
    invoices: int = 0
    services: int = 0
    transactions: int = 0

    @property
    def in_use(self) -> bool:
        return bool(self.invoices or self.services or self.transactions)


# --------------------------------------------------------------------------- reading


def profile_values(client: Client) -> dict[str, Any]:
    """The editable values of a client, as the editor and the conflict dialog show them."""
    values = {name: getattr(client, name) for name in EDITABLE_FIELDS}
    values[CUSTOM] = {
        v.field_id: v.value
        for v in CustomFieldValue.select().where(CustomFieldValue.client == client.id)
    }
    return values


def get_client(client_id: int, actor: Actor) -> Client:
    require(actor, "client.view")
    client = Client.get_or_none(Client.id == client_id)
    if client is None:
        raise RuleError(f"no client {client_id}")
    return client


def payment_method_cascade(client_id: int, old: str) -> CascadeCount:
    """How many records still use ``old`` and would follow a new default (4 queries)."""
    return CascadeCount(
        services=_count(Service, client_id, old),
        addons=_count(Addon, client_id, old),
        domains=_count(Domain, client_id, old),
        unpaid_invoices=Invoice.select()
        .where(
            (Invoice.client == client_id)
            & (Invoice.payment_method == old)
            & (Invoice.status == InvoiceStatus.UNPAID)
        )
        .count(),
    )


def _count(model: Any, client_id: int, method: str) -> int:
    return int(
        model.select().where((model.client == client_id) & (model.payment_method == method)).count()
    )


def currency_usage(client_id: int) -> CurrencyUsage:
    return CurrencyUsage(
        invoices=Invoice.select().where(Invoice.client == client_id).count(),
        services=Service.select().where(Service.client == client_id).count(),
        transactions=Transaction.select().where(Transaction.client == client_id).count(),
    )


# --------------------------------------------------------------------------- email uniqueness


def emails_in_use(keys: Collection[str], *, except_client: int | None = None) -> set[str]:
    """Which of these email keys (``store.keys.email_key``) a client already has.

    The one uniqueness check of client emails (PRODUCT.md §1: unique, case-insensitive
    under full Unicode case folding), for the editor, import and the portal: an exact
    lookup through the unique ``client.email_key`` index, one query whatever the count
    (the keys as one parameter, ``store.queries.among``); no pattern, no scan.
    ``except_client`` is the client being edited. The unique index also refuses a clash
    that slips between check and write (``is_email_clash``).
    """
    query = Client.select(Client.email_key).where(among(Client.email_key, set(keys)))
    if except_client is not None:
        query = query.where(Client.id != except_client)
    rows: Any = query.tuples()
    return {key for (key,) in rows}


def contact_email_in_use(client_id: int, email: str, *, except_contact: int | None) -> bool:
    """Whether another contact of this client has ``email`` (same key), by the unique index."""
    query = Contact.select().where(
        (Contact.client == client_id) & (Contact.email_key == email_key(email))
    )
    if except_contact is not None:
        query = query.where(Contact.id != except_contact)
    return bool(query.exists())


def is_email_clash(exc: BaseException) -> bool:
    """Whether a write was refused by a unique email-key index (a clash that raced the
    check): a ``StoredDataConflict`` or the driver's ``IntegrityError``."""
    return "email_key" in str(exc)


# --------------------------------------------------------------------------- validation


def _clean(client_id: int | None, changes: dict[str, Any], country: str) -> dict[str, Any]:
    """Validate every change; raise one ``ValidationError`` naming each bad field."""
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    try:  # the phone is read in the (new) country, so clean that first
        country = clean_country(country) if isinstance(country, str) else ""
    except FieldError:
        country = ""
    for name, value in changes.items():
        try:
            if name == CUSTOM:
                clean[name] = _clean_custom(value, errors)
            else:
                clean[name] = _clean_field(name, value, country, client_id)
        except FieldError as exc:
            errors[name] = str(exc)
    if errors:
        raise ValidationError(errors)
    return clean


def _clean_field(name: str, value: Any, country: str, client_id: int | None) -> Any:
    spec = FIELDS.get(name)
    if spec is None:
        raise FieldError("cannot be changed here")
    if spec.kind == "email":
        email = clean_email(value)
        if emails_in_use([email_key(email)], except_client=client_id):
            raise FieldError(EMAIL_TAKEN)
        return email
    if spec.kind == "tick":
        if not isinstance(value, bool):
            raise FieldError("must be ticked or not")
        return value
    if spec.kind == "choice":
        return _CHOICES[name](value, client_id)
    return clean_value(spec, value, country)


def clean_value(spec: ProfileField, value: Any, country: str) -> Any:
    """A text, state, country, phone, email or notes value of ``spec`` cleaned for
    storage (the same for clients and contacts); the phone and the state are read in
    ``country`` (ISO 3166-1 alpha-2, or "").

    Raises ``FieldError`` with the reason shown beside the field.
    """
    if spec.kind == "state":
        return clean_state(value, country)
    if spec.kind == "country":
        return clean_country(value)
    if spec.kind == "phone":
        return clean_phone(value, country)
    if spec.kind == "email":
        return clean_email(value)
    if spec.kind == "notes":
        assert spec.max_length is not None
        return clean_text(value, spec.max_length, multiline=True)
    assert spec.kind == "text" and spec.max_length is not None, spec
    return clean_text(value, spec.max_length, required=spec.required)


def _payment_method(value: Any, client_id: int | None) -> str:
    if value not in GATEWAYS:
        raise FieldError(f"must be one of {', '.join(GATEWAYS)}")
    return str(value)


def _status(value: Any, client_id: int | None) -> str:
    if value not in {s.value for s in ClientStatus}:
        raise FieldError("must be Active, Inactive or Closed")
    return str(value)


def _currency(value: Any, client_id: int | None) -> Any:
    if Currency.get_or_none(Currency.id == value) is None:
        raise FieldError("unknown currency")
    return value


def _group(value: Any, client_id: int | None) -> Any:
    if value is not None and ClientGroup.get_or_none(ClientGroup.id == value) is None:
        raise FieldError("unknown client group")
    return value


def _billing_contact(value: Any, client_id: int | None) -> Any:
    if (
        value is not None
        and not Contact.select()
        .where((Contact.id == value) & (Contact.client == client_id))
        .exists()
    ):
        raise FieldError("must be one of this client's contacts")
    return value


#: How each choice field is checked: (value, client id) -> the stored value.
_CHOICES: dict[str, Callable[[Any, int | None], Any]] = {
    "payment_method": _payment_method,
    "status": _status,
    "currency_id": _currency,
    "group_id": _group,
    "billing_contact_id": _billing_contact,
}


def _clean_custom(values: Any, errors: dict[str, str]) -> dict[int, str]:
    if not isinstance(values, dict):
        raise FieldError("custom fields must be a mapping")
    fields = {f.id: f for f in CustomField.select()}
    clean: dict[int, str] = {}
    for field_id, value in values.items():
        spec = fields.get(field_id)
        if spec is None:
            errors[f"{CUSTOM}.{field_id}"] = "unknown custom field"
            continue
        try:
            clean[field_id] = check_custom_field(spec, value)
        except FieldError as exc:
            errors[f"{CUSTOM}.{field_id}"] = str(exc)
    return clean


def check_custom_field(spec: CustomField, value: Any) -> str:
    return check_custom_value(spec.type, json.loads(spec.options), spec.regex, spec.required, value)


def _check_rights(actor: Actor, changes: dict[str, Any]) -> None:
    require(actor, "client.edit_contact")
    if any(name in BILLING_FIELDS for name in changes):
        require(actor, "client.edit_billing")


# --------------------------------------------------------------------------- writing


def _text(value: Any) -> str:
    return "" if value is None else str(value)


def create_client(values: dict[str, Any], actor: Actor) -> Client:
    """A new client from the editor's values (defaults for what is not given)."""
    require(actor, "client.create")
    values = dict(values)
    values.setdefault("currency_id", _default_currency_id())
    custom = values.pop(CUSTOM, {})
    clean = _clean(None, values, values.get("country", ""))
    missing = {n: "is required" for n in ("first_name", "last_name", "email") if not clean.get(n)}
    if missing:
        raise ValidationError(missing)
    if "billing_contact_id" in clean and clean["billing_contact_id"] is not None:
        raise ValidationError({"billing_contact_id": "add contacts after creating the client"})
    custom_clean = _clean(None, {CUSTOM: custom}, "")[CUSTOM] if custom else {}
    try:
        with transaction():
            client = Client.create(**clean)
            record(
                actor,
                "client",
                client.id,
                "create",
                client_id=client.id,
                new_value=f"{client.first_name} {client.last_name} <{client.email}>",
            )
            _write_custom(client.id, custom_clean, {}, actor)
    except StoredDataConflict as exc:
        if is_email_clash(exc):
            raise ValidationError({"email": EMAIL_TAKEN}) from exc
        raise
    return client


def _default_currency_id() -> int:
    currency = Currency.get_or_none(Currency.is_default) or Currency.select().first()
    if currency is None:
        raise RuleError("no currency is configured: add one in Currencies first")
    return int(currency.id)


def update_client(
    client_id: int, expected_version: int, changes: dict[str, Any], actor: Actor
) -> SaveResult:
    """Save Changes: all edited fields at once, or none.

    Raises ``ValidationError`` (nothing saved), ``PermissionDenied``, or
    ``StaleEdit`` when the client's version is no longer ``expected_version``.
    """
    _check_rights(actor, changes)
    client = get_client(client_id, actor)
    country = changes.get("country", client.country)
    if "country" in changes and "state" not in changes:
        changes = {**changes, "state": client.state}  # a state is written in its country
    clean = _clean(client_id, changes, country if isinstance(country, str) else "")
    custom = clean.pop(CUSTOM, {})
    try:
        return _save_client(client_id, expected_version, clean, custom, actor)
    except StoredDataConflict as exc:
        if is_email_clash(exc):
            raise ValidationError({"email": EMAIL_TAKEN}) from exc
        raise


def _save_client(
    client_id: int,
    expected_version: int,
    clean: dict[str, Any],
    custom: dict[int, str],
    actor: Actor,
) -> SaveResult:
    with transaction():
        current = Client.get_by_id(client_id)
        if current.version != expected_version:
            raise StaleEdit(profile_values(current), current.version)
        diffs = {k: v for k, v in clean.items() if getattr(current, k) != v}
        old_custom = {
            v.field_id: v.value
            for v in CustomFieldValue.select().where(CustomFieldValue.client == client_id)
        }
        custom = {k: v for k, v in custom.items() if old_custom.get(k, "") != v}
        if not diffs and not custom:
            return SaveResult(client_id, current.version, ())
        derived = {  # the keys follow the fields they come from, and only those
            name: value
            for name, value in Client.derived_values({**current.__data__, **diffs}).items()
            if diffs.keys() & set(CLIENT_DERIVED[name])
        }
        updated = (
            Client.update(**diffs, **derived, version=Client.version + 1, updated_at=utcnow())
            .where((Client.id == client_id) & (Client.version == expected_version))
            .execute()
        )
        if updated != 1:  # lost a race with another writer
            fresh = Client.get_by_id(client_id)
            raise StaleEdit(profile_values(fresh), fresh.version)
        for name, new in diffs.items():
            record(
                actor,
                "client",
                client_id,
                "update",
                client_id=client_id,
                field=name,
                old_value=_text(getattr(current, name)),
                new_value=_text(new),
            )
        if "currency_id" in diffs:  # the numbers stay: "only changes the symbol"
            old_currency = Currency.get_by_id(current.currency_id)
            new_currency = Currency.get_by_id(diffs["currency_id"])
            rescale_client_amounts(client_id, old_currency.decimals, new_currency.decimals)
        cascaded = 0
        if "payment_method" in diffs:
            cascaded = _cascade_payment_method(
                client_id, current.payment_method, diffs["payment_method"], actor
            )
        _write_custom(client_id, custom, old_custom, actor)
    return SaveResult(
        client_id,
        expected_version + 1,
        tuple(diffs) + tuple(f"{CUSTOM}.{k}" for k in custom),
        cascaded,
    )


def _cascade_payment_method(client_id: int, old: str, new: str, actor: Actor) -> int:
    """Everything that used the old default follows the new one (a fixed 4 updates)."""
    total = 0
    for model, condition in (
        (Service, True),
        (Addon, True),
        (Domain, True),
        (Invoice, Invoice.status == InvoiceStatus.UNPAID),
    ):
        total += (
            model.update(payment_method=new)
            .where((model.client == client_id) & (model.payment_method == old) & condition)
            .execute()
        )
    record(
        actor,
        "client",
        client_id,
        "payment_method_cascade",
        client_id=client_id,
        field="payment_method",
        old_value=old,
        new_value=f"{new} ({total} records)",
    )
    return int(total)


def _write_custom(
    client_id: int, values: dict[int, str], old: dict[int, str], actor: Actor
) -> None:
    """Store and log each custom value that differs from ``old`` (a field left empty on a
    new client, or unchanged, writes no row and no audit line)."""
    values = {k: v for k, v in values.items() if v != old.get(k, "")}
    if not values:
        return
    names = {f.id: f.name for f in CustomField.select(CustomField.id, CustomField.name)}
    secret = {f.id for f in CustomField.select().where(CustomField.type == "password")}
    for field_id, value in values.items():
        CustomFieldValue.insert(client=client_id, field=field_id, value=value).on_conflict(
            conflict_target=[CustomFieldValue.client, CustomFieldValue.field],
            update={CustomFieldValue.value: value},
        ).execute()
        hide = field_id in secret  # secrets are never logged
        record(
            actor,
            "client",
            client_id,
            "update",
            client_id=client_id,
            field=f"custom:{names[field_id]}",
            old_value="(hidden)" if hide else old.get(field_id, ""),
            new_value="(hidden)" if hide else value,
        )


# --------------------------------------------------------------------------- contacts


def _clean_contact(
    client_id: int, values: dict[str, Any], contact_id: int | None, current_country: str = ""
) -> dict[str, Any]:
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    try:  # the phone and the state are read in the (new) country
        country = clean_country(values.get("country", current_country))
    except FieldError:
        country = ""
    for key in CONTACT_KEYS:
        if key not in values:
            continue
        try:
            clean[key] = clean_value(FIELDS[key], values[key], country)
        except FieldError as exc:
            errors[key] = str(exc)
    if "email" in clean and contact_email_in_use(
        client_id, clean["email"], except_contact=contact_id
    ):
        errors["email"] = CONTACT_EMAIL_TAKEN
    if errors:
        raise ValidationError(errors)
    return clean


def add_contact(client_id: int, values: dict[str, Any], actor: Actor) -> Contact:
    require(actor, "client.edit_contact")
    clean = _clean_contact(client_id, values, None)
    missing = {k: "is required" for k in ("first_name", "last_name", "email") if not clean.get(k)}
    if missing:
        raise ValidationError(missing)
    try:
        with transaction():
            contact = Contact.create(client=client_id, **clean)
            record(
                actor,
                "contact",
                contact.id,
                "create",
                client_id=client_id,
                new_value=f"{contact.first_name} {contact.last_name} <{contact.email}>",
            )
    except StoredDataConflict as exc:
        if is_email_clash(exc):
            raise ValidationError({"email": CONTACT_EMAIL_TAKEN}) from exc
        raise
    return contact


def update_contact(contact_id: int, values: dict[str, Any], actor: Actor) -> Contact:
    require(actor, "client.edit_contact")
    contact = Contact.get_or_none(Contact.id == contact_id)
    if contact is None:
        raise RuleError(f"no contact {contact_id}")
    clean = _clean_contact(contact.client_id, values, contact_id, contact.country)
    if "country" in clean and "state" not in clean:  # a state is written in its country
        clean["state"] = normalise_state(clean["country"], contact.state)
    try:
        _save_contact(contact, clean, actor)
    except StoredDataConflict as exc:
        if is_email_clash(exc):
            raise ValidationError({"email": CONTACT_EMAIL_TAKEN}) from exc
        raise
    return contact


def _save_contact(contact: Contact, clean: dict[str, Any], actor: Actor) -> None:
    contact_id = contact.id
    with transaction():
        for key, value in clean.items():
            if getattr(contact, key) != value:
                record(
                    actor,
                    "contact",
                    contact_id,
                    "update",
                    client_id=contact.client_id,
                    field=key,
                    old_value=getattr(contact, key),
                    new_value=value,
                )
                setattr(contact, key, value)
        contact.save()


def remove_contact(contact_id: int, actor: Actor) -> None:
    """Remove a contact; a client billed to it falls back to its own address."""
    require(actor, "client.edit_contact")
    contact = Contact.get_or_none(Contact.id == contact_id)
    if contact is None:
        raise RuleError(f"no contact {contact_id}")
    with transaction():
        Client.update(billing_contact=None, version=Client.version + 1).where(
            Client.billing_contact == contact_id
        ).execute()
        record(
            actor,
            "contact",
            contact_id,
            "delete",
            client_id=contact.client_id,
            old_value=f"{contact.first_name} {contact.last_name} <{contact.email}>",
        )
        contact.delete_instance()


# --------------------------------------------------------------------------- profile tabs


def contacts_of(client_id: int) -> list[Contact]:
    return list(Contact.select().where(Contact.client == client_id).order_by(Contact.id))


def audit_of(client_id: int, limit: int = 500) -> list[AuditLog]:
    return list(
        AuditLog.select()
        .where(AuditLog.client == client_id)
        .order_by(AuditLog.at.desc(), AuditLog.id.desc())
        .limit(limit)
    )
