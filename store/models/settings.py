"""Reference data staff configure: settings, currencies, groups, tax rules, custom fields."""

from __future__ import annotations

from peewee import BooleanField, CharField, IntegerField, TextField

from store.models.base import BaseModel


class Setting(BaseModel):
    """One typed setting, JSON-encoded; absent keys take the defaults of ``store.settings``."""

    key = CharField(max_length=64, primary_key=True)
    value = TextField()


class Currency(BaseModel):
    code = CharField(max_length=3, unique=True)
    prefix = CharField(max_length=8, default="")
    suffix = CharField(max_length=8, default="")
    decimals = IntegerField(default=2)
    #: Exchange rate against the default currency, an exact decimal string.
    rate = CharField(max_length=32, default="1")
    is_default = BooleanField(default=False, column_name="is_default")


class ClientGroup(BaseModel):
    name = CharField(max_length=100, unique=True)
    colour = CharField(max_length=16, default="")
    #: Percent in hundredths (12.5% is 1250): exact and integer.
    discount_bp = IntegerField(default=0)
    separate_invoices = BooleanField(default=False)


class TaxRule(BaseModel):
    level = IntegerField()
    name = CharField(max_length=100)
    #: ISO 3166-1 alpha-2, or "" for every country.
    country = CharField(max_length=2, default="")
    #: State/region as written on the client, or "" for the whole country.
    state = CharField(max_length=100, default="")
    #: Percent in ten-thousandths (8.875% is 88750).
    rate_e4 = IntegerField()

    class Meta:
        indexes = ((("level", "country", "state"), True),)


class CustomField(BaseModel):
    name = CharField(max_length=100, unique=True)
    type = CharField(max_length=16)
    #: Dropdown choices, JSON list of strings.
    options = TextField(default="[]")
    required = BooleanField(default=False)
    admin_only = BooleanField(default=False)
    regex = CharField(max_length=500, default="")
    sort_order = IntegerField(default=0)


class SecurityQuestion(BaseModel):
    question = CharField(max_length=255, unique=True)
