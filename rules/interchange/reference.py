"""Staff edits of the reference data: currencies, client groups, tax rules, custom fields.

Values are checked by the same validators as the interchange document, so a
record the screen accepts is one that exports and imports again. Admins only;
every change is audited; deleting what clients still use is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from rules.audit import Actor, record
from rules.errors import RuleError, ValidationError, transaction
from rules.interchange.checking import check_document
from rules.interchange.schema import ImportError_
from rules.permissions import require
from store.models import Client, ClientGroup, Currency, CustomField, TaxRule


@dataclass(frozen=True)
class Kind:
    """One kind of reference record: its model, interchange section and editable keys."""

    name: str
    model: Any
    section: str
    keys: tuple[str, ...]
    natural_key: tuple[str, ...]


KINDS: dict[str, Kind] = {
    "currencies": Kind(
        "Currencies",
        Currency,
        "currencies",
        ("code", "prefix", "suffix", "decimals", "rate", "default"),
        ("code",),
    ),
    "client_groups": Kind(
        "Client Groups",
        ClientGroup,
        "client_groups",
        ("name", "colour", "discount_percent", "separate_invoices"),
        ("name",),
    ),
    "tax_rules": Kind(
        "Tax Rules",
        TaxRule,
        "tax_rules",
        ("level", "name", "country", "state", "rate"),
        ("level", "country", "state"),
    ),
    "custom_fields": Kind(
        "Custom Client Fields",
        CustomField,
        "custom_fields",
        ("name", "type", "options", "required", "admin_only", "regex"),
        ("name",),
    ),
}


def records(kind: str) -> list[dict[str, Any]]:
    """The records as the interchange document writes them (the screen shows these)."""
    from rules.interchange.export import build_reference

    return build_reference()[KINDS[kind].section]


def _refusal(exc: ImportError_) -> ValidationError:
    """The importer's path-named errors as the screen's per-field ones."""
    return ValidationError(
        {e.split(": ", 1)[0].rsplit(".", 1)[-1]: e.split(": ", 1)[-1] for e in exc.errors}
    )


def save(kind: str, values: dict[str, Any], actor: Actor) -> None:
    """Create or update one record (matched by its natural key) after full validation."""
    require(actor, "settings")
    spec = KINDS[kind]
    try:
        plan = check_document({"format": "gobiller/1", spec.section: [values]})
    except ImportError_ as exc:
        raise _refusal(exc) from exc
    from rules.interchange.importer import write_reference

    order = None
    if model_is_fields := spec.model is CustomField:
        existing = CustomField.get_or_none(CustomField.name == values.get("name"))
        top = (
            CustomField.select(CustomField.sort_order)
            .order_by(CustomField.sort_order.desc())
            .first()
        )
        order = existing.sort_order if existing else (top.sort_order + 1 if top else 0)
    with transaction():
        try:
            write_reference(plan)
        except ImportError_ as exc:  # e.g. decimals changed under stored amounts
            raise _refusal(exc) from exc
        if model_is_fields:  # keep a field's place; a new one goes last
            CustomField.update(sort_order=order).where(
                CustomField.name == values.get("name")
            ).execute()
        record(
            actor,
            spec.section,
            None,
            "save",
            field=json.dumps({k: values.get(k) for k in spec.natural_key}, ensure_ascii=False),
            new_value=json.dumps(values, ensure_ascii=False, default=str),
        )


def delete(kind: str, key: dict[str, Any], actor: Actor) -> None:
    """Delete one record; refused while clients use a currency."""
    require(actor, "settings")
    spec = KINDS[kind]
    model = spec.model
    condition = None
    for field in spec.natural_key:
        column = getattr(model, field)
        term = column == key[field]
        condition = term if condition is None else condition & term
    row = model.get_or_none(condition)
    if row is None:
        raise RuleError("no such record")
    if model is Currency and Client.select().where(Client.currency == row.id).exists():
        raise RuleError(f"clients still use {row.code}: change their currency first")
    with transaction():
        row.delete_instance()
        record(
            actor,
            spec.section,
            None,
            "delete",
            old_value=json.dumps(key, ensure_ascii=False, default=str),
        )
