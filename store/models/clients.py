"""Clients, their contacts, custom field values and stored cards."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from peewee import (
    BooleanField,
    CharField,
    DateTimeField,
    DeferredForeignKey,
    ForeignKeyField,
    IntegerField,
    TextField,
)

from store.keys import EMAIL_KEY_MAX, client_search_text, email_key
from store.models.base import BaseModel, MoneyField, utcnow
from store.models.enums import ClientStatus
from store.models.settings import ClientGroup, Currency, CustomField, SecurityQuestion

# Sane maximum lengths, shared by the models, validation and the screens.
NAME_MAX = 100
COMPANY_MAX = 150
EMAIL_MAX = 254
ADDRESS_MAX = 150
CITY_MAX = 100
STATE_MAX = 100
POSTCODE_MAX = 20
PHONE_MAX = 20
TAX_ID_MAX = 50
NOTES_MAX = 20_000

#: The name-and-address fields clients and contacts share, in the product's order.
ADDRESS_FIELDS: tuple[str, ...] = (
    "first_name",
    "last_name",
    "company",
    "email",
    "address1",
    "address2",
    "city",
    "state",
    "postcode",
    "country",
    "phone",
)


#: Columns kept from others by ``derived_values``, never typed: name -> the fields they follow.
CLIENT_DERIVED: dict[str, tuple[str, ...]] = {
    "email_key": ("email",),
    "search_text": ("first_name", "last_name", "company", "email", "phone"),
}


class Client(BaseModel):
    first_name = CharField(max_length=NAME_MAX)
    last_name = CharField(max_length=NAME_MAX)
    company = CharField(max_length=COMPANY_MAX, default="")
    #: Normalised (``rules.clients.validation.clean_email``).
    email = CharField(max_length=EMAIL_MAX)
    #: ``store.keys.email_key(email)``: unique, so emails are unique under full case folding.
    email_key = CharField(max_length=EMAIL_KEY_MAX, unique=True)
    address1 = CharField(max_length=ADDRESS_MAX, default="")
    address2 = CharField(max_length=ADDRESS_MAX, default="")
    city = CharField(max_length=CITY_MAX, default="")
    state = CharField(max_length=STATE_MAX, default="")
    postcode = CharField(max_length=POSTCODE_MAX, default="")
    country = CharField(max_length=2, default="")
    #: E.164, e.g. +442071838750; formatted only for display.
    phone = CharField(max_length=PHONE_MAX, default="")
    tax_id = CharField(max_length=TAX_ID_MAX, default="")
    language = CharField(max_length=35, default="")
    status = CharField(max_length=16, default=ClientStatus.ACTIVE)
    currency = ForeignKeyField(Currency, on_delete="RESTRICT")
    group = ForeignKeyField(ClientGroup, null=True, on_delete="SET NULL")
    payment_method = CharField(max_length=32, default="banktransfer")
    billing_contact = DeferredForeignKey("Contact", null=True, on_delete="SET NULL")
    # Billing preferences.
    late_fees_exempt = BooleanField(default=False)
    overdue_notices_disabled = BooleanField(default=False)
    tax_exempt = BooleanField(default=False)
    separate_invoices = BooleanField(default=False)
    cc_processing_disabled = BooleanField(default=False)
    # Status and misc.
    status_locked = BooleanField(default=False)
    marketing_opt_out = BooleanField(default=False)
    admin_notes = TextField(default="")
    # Login and security (never exported).
    password_hash = CharField(max_length=255, default="")
    password_must_change = BooleanField(default=False)
    security_question = ForeignKeyField(SecurityQuestion, null=True, on_delete="SET NULL")
    security_answer_hash = CharField(max_length=255, default="")
    totp_secret = CharField(max_length=64, default="")
    #: Last TOTP time step accepted, so each code is accepted once.
    totp_last_step = IntegerField(default=0)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)
    last_login_at = DateTimeField(null=True)
    last_login_ip = CharField(max_length=45, default="")
    #: Optimistic lock: every save bumps it; a save with a stale version is refused.
    version = IntegerField(default=1)
    #: The client's credit balance, minor units (WHMCS "Credit Balance"): added by staff,
    #: applied to invoices; the ledger is ``store.models.billing.Credit`` (migration 0022).
    credit = MoneyField(default=0)
    #: ``store.keys.client_search_text``: what the list search indexes (migration 0006).
    search_text = TextField(default="")

    if TYPE_CHECKING:
        currency_id: Any
        group_id: Any
        billing_contact_id: Any
        security_question_id: Any

    class Meta:
        indexes = (
            (("last_name", "first_name"), False),
            (("first_name",), False),
            (("status", "group"), False),
            (("created_at",), False),
            (("last_login_at",), False),
        )

    @property
    def two_factor_enabled(self) -> bool:
        return bool(self.totp_secret)

    @staticmethod
    def derived_values(values: Mapping[str, Any]) -> dict[str, str]:
        """``email_key`` and ``search_text`` of a client with these field values.

        Every path that writes ``email`` or a searched field writes these with it: ``save``
        (so ``create``) does, ``store.bulk.row_maker`` does, and ``update`` refuses a change
        of a source field without them, so they never drift from what they follow.
        """

        def text(name: str) -> str:
            value = values.get(name)
            return "" if value is None else str(value)

        return {
            "email_key": email_key(text("email")),
            "search_text": client_search_text(
                text("first_name"), text("last_name"), text("company"), text("email"), text("phone")
            ),
        }

    def save(self, force_insert: bool = False, only: Any = None) -> Any:
        derived = self.derived_values(self.__data__)
        for name, sources in CLIENT_DERIVED.items():
            if all(s in self.__data__ for s in sources):  # a partly loaded row keeps the rest
                self.__data__[name] = derived[name]
                if only is not None:
                    only = [*only, getattr(Client, name)]
        return super().save(force_insert=force_insert, only=only)

    @classmethod
    def update(cls, __data: Any = None, **update: Any) -> Any:
        names = {getattr(k, "name", k) for k in {**(__data or {}), **update}}
        for derived, sources in CLIENT_DERIVED.items():
            if names.intersection(sources) and derived not in names:
                raise TypeError(
                    f"Client.update of {sorted(names.intersection(sources))} must also set "
                    f"{derived} (Client.derived_values)"
                )
        return super().update(__data, **update)


class Contact(BaseModel):
    #: Indexed by the (client, ...) index below: its leading column (migration 0024).
    client = ForeignKeyField(Client, backref="contacts", on_delete="CASCADE", index=False)
    first_name = CharField(max_length=NAME_MAX)
    last_name = CharField(max_length=NAME_MAX)
    company = CharField(max_length=COMPANY_MAX, default="")
    email = CharField(max_length=EMAIL_MAX)
    #: ``store.keys.email_key(email)``: unique per client.
    email_key = CharField(max_length=EMAIL_KEY_MAX)
    address1 = CharField(max_length=ADDRESS_MAX, default="")
    address2 = CharField(max_length=ADDRESS_MAX, default="")
    city = CharField(max_length=CITY_MAX, default="")
    state = CharField(max_length=STATE_MAX, default="")
    postcode = CharField(max_length=POSTCODE_MAX, default="")
    country = CharField(max_length=2, default="")
    phone = CharField(max_length=PHONE_MAX, default="")

    if TYPE_CHECKING:
        client_id: Any

    class Meta:
        indexes = ((("client", "email_key"), True),)

    @staticmethod
    def derived_values(values: Mapping[str, Any]) -> dict[str, str]:
        """``email_key`` of a contact with these field values (see ``Client.derived_values``)."""
        return {"email_key": email_key(str(values.get("email") or ""))}

    def save(self, force_insert: bool = False, only: Any = None) -> Any:
        if "email" in self.__data__:
            self.__data__.update(self.derived_values(self.__data__))
            if only is not None:
                only = [*only, Contact.email_key]
        return super().save(force_insert=force_insert, only=only)

    @classmethod
    def update(cls, __data: Any = None, **update: Any) -> Any:
        names = {getattr(k, "name", k) for k in {**(__data or {}), **update}}
        if "email" in names and "email_key" not in names:
            raise TypeError("Contact.update of email must also set email_key")
        return super().update(__data, **update)


class CustomFieldValue(BaseModel):
    #: Indexed by the (client, ...) index below: its leading column (migration 0024).
    client = ForeignKeyField(Client, backref="custom_values", on_delete="CASCADE", index=False)
    field = ForeignKeyField(CustomField, on_delete="CASCADE")
    value = TextField(default="")

    if TYPE_CHECKING:
        client_id: Any
        field_id: Any

    class Meta:
        indexes = ((("client", "field"), True),)


class StoredCard(BaseModel):
    """A card kept by the gateway: we hold only its token, never the number."""

    client = ForeignKeyField(Client, backref="cards", on_delete="CASCADE")
    gateway = CharField(max_length=32)
    token = CharField(max_length=255)
    last4 = CharField(max_length=4)
    #: "YYYY-MM"
    expiry = CharField(max_length=7)
    created_at = DateTimeField(default=utcnow)


class TotpBackupCode(BaseModel):
    """One-time 2FA backup codes, stored only as hashes."""

    client = ForeignKeyField(Client, on_delete="CASCADE")
    code_hash = CharField(max_length=255)
    used_at = DateTimeField(null=True)


__all__ = [
    "Client",
    "Contact",
    "CustomFieldValue",
    "StoredCard",
    "TotpBackupCode",
]
