"""The profile's fields are declared once (rules.clients.fields) and everything reads them."""

from __future__ import annotations

from peewee import BooleanField

from rules.clients import fields
from rules.interchange.schema import CLIENT_KEYS, PREFERENCE_KEYS
from store.models import Client


def test_every_declared_field_is_a_client_column() -> None:
    columns = {f.column_name for f in Client._meta.sorted_fields}
    assert [f.name for f in fields.PROFILE_FIELDS if f.name not in columns] == []


def test_ticks_are_boolean_columns_with_their_own_key() -> None:
    ticks = [f for f in fields.PROFILE_FIELDS if f.kind == "tick"]
    assert ticks, "the billing preferences are ticks"
    for tick in ticks:
        assert isinstance(Client._meta.columns[tick.name], BooleanField), tick.name
        assert tick.key, f"{tick.name} has no toggle key"
    keys = [t.key for t in ticks]
    assert len(keys) == len(set(keys))


def test_the_document_carries_every_field_that_has_a_key() -> None:
    carried = [f.interchange for f in fields.PROFILE_FIELDS if f.interchange]
    assert set(carried) <= set(CLIENT_KEYS)
    assert set(PREFERENCE_KEYS) == set(fields.PREFERENCE_FIELDS)
    # a key is never guessed from a column name: the foreign keys name what they point at
    assert {"currency", "group", "billing_contact"} <= set(carried)
    assert not {"currency_id", "group_id", "billing_contact_id"} & set(carried)


def test_rights_split_the_profile_in_two() -> None:
    assert set(fields.CONTACT_FIELDS) | set(fields.BILLING_FIELDS) == set(fields.EDITABLE_FIELDS)
    assert not set(fields.CONTACT_FIELDS) & set(fields.BILLING_FIELDS)
    assert "admin_notes" in fields.CONTACT_FIELDS  # support staff may write notes (README roles)
    assert set(fields.PREFERENCE_FIELDS) <= set(fields.BILLING_FIELDS)


def test_text_limits_match_the_columns() -> None:
    for name, limit in fields.TEXT_LIMITS.items():
        column = Client._meta.columns[name]
        assert getattr(column, "max_length", None) == limit, name
