"""Every field of the client profile, declared once.

One row per field gives its column (also its name in the rules), the label staff
see, the editor section it sits in, how it is checked (``kind`` and the length
limit), the function key that toggles a tick, who may change it and its key in
the interchange document (PRODUCT.md §1 for the fields, §5 for the document).
The editor's fields and sections, the rules' field groups, the interchange
keys, the demo's columns and the length limits are all read from here, so a new
billing preference is one row (plus its column and migration in ``store``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from store.models.clients import (
    ADDRESS_FIELDS,
    ADDRESS_MAX,
    CITY_MAX,
    COMPANY_MAX,
    EMAIL_MAX,
    NAME_MAX,
    NOTES_MAX,
    PHONE_MAX,
    POSTCODE_MAX,
    STATE_MAX,
    TAX_ID_MAX,
)

#: How a value is checked and which widget edits it.
Kind = Literal["text", "email", "phone", "country", "state", "tick", "choice", "notes"]
#: Kinds typed on one line (the rest: ticks, choices and the multi-line notes).
LINE_KINDS: tuple[Kind, ...] = ("text", "email", "phone", "country", "state")
#: The permission (``rules.permissions``) a change to the field needs.
Right = Literal["client.edit_contact", "client.edit_billing"]

CONTACT: Right = "client.edit_contact"
BILLING: Right = "client.edit_billing"


@dataclass(frozen=True)
class ProfileField:
    """One profile field.

    ``name`` is the Client column (``*_id`` for a foreign key); ``interchange`` its
    key in the document, or None when the document does not carry it; ``max_length``
    counts characters after normalisation; ``key`` is the editor's toggle key.
    """

    name: str
    label: str
    section: str
    kind: Kind
    right: Right
    max_length: int | None = None
    required: bool = False
    key: str | None = None
    interchange: str | None = None

    @property
    def short_label(self) -> str:
        """The label without its qualifier ("Late Fees" for "Late Fees: exempt")."""
        return self.label.split(":")[0]


CONTACT_DETAILS = "Contact details"
BILLING_PREFERENCES = "Billing preferences"
STATUS = "Status"
MISC = "Misc"
ADMIN_NOTES = "Admin notes"


def _f(
    name: str,
    label: str,
    section: str,
    kind: Kind,
    right: Right,
    max_length: int | None = None,
    *,
    required: bool = False,
    key: str | None = None,
    interchange: str | bool = True,
) -> ProfileField:
    doc_key = (name if interchange is True else interchange) or None
    return ProfileField(name, label, section, kind, right, max_length, required, key, doc_key)


#: The profile, in the editor's order (PRODUCT.md §1).
PROFILE_FIELDS: tuple[ProfileField, ...] = (
    _f("first_name", "First name", CONTACT_DETAILS, "text", CONTACT, NAME_MAX, required=True),
    _f("last_name", "Last name", CONTACT_DETAILS, "text", CONTACT, NAME_MAX, required=True),
    _f("company", "Company", CONTACT_DETAILS, "text", CONTACT, COMPANY_MAX),
    _f("email", "Email address", CONTACT_DETAILS, "email", CONTACT, EMAIL_MAX, required=True),
    _f("address1", "Address 1", CONTACT_DETAILS, "text", CONTACT, ADDRESS_MAX),
    _f("address2", "Address 2", CONTACT_DETAILS, "text", CONTACT, ADDRESS_MAX),
    _f("city", "City", CONTACT_DETAILS, "text", CONTACT, CITY_MAX),
    _f("state", "State/Region", CONTACT_DETAILS, "state", CONTACT, STATE_MAX),
    _f("postcode", "Postcode", CONTACT_DETAILS, "text", CONTACT, POSTCODE_MAX),
    _f("country", "Country (ISO code)", CONTACT_DETAILS, "country", CONTACT, 2),
    _f("phone", "Phone number", CONTACT_DETAILS, "phone", CONTACT, PHONE_MAX),
    _f("tax_id", "Tax ID", CONTACT_DETAILS, "text", CONTACT, TAX_ID_MAX),
    _f("language", "Language", CONTACT_DETAILS, "text", CONTACT, 35, interchange=False),
    _f("late_fees_exempt", "Late Fees: exempt", BILLING_PREFERENCES, "tick", BILLING, key="f2"),
    _f(
        "overdue_notices_disabled",
        "Don't Send Overdue Emails",
        BILLING_PREFERENCES,
        "tick",
        BILLING,
        key="f3",
    ),
    _f("tax_exempt", "Tax Exempt", BILLING_PREFERENCES, "tick", BILLING, key="f4"),
    _f("separate_invoices", "Separate Invoices", BILLING_PREFERENCES, "tick", BILLING, key="f5"),
    _f(
        "cc_processing_disabled",
        "Disable CC Processing",
        BILLING_PREFERENCES,
        "tick",
        BILLING,
        key="f6",
    ),
    _f("payment_method", "Payment Method", BILLING_PREFERENCES, "choice", BILLING),
    _f(
        "billing_contact_id",
        "Billing Contact",
        BILLING_PREFERENCES,
        "choice",
        BILLING,
        interchange="billing_contact",
    ),
    _f("currency_id", "Currency", BILLING_PREFERENCES, "choice", BILLING, interchange="currency"),
    _f("group_id", "Client Group", BILLING_PREFERENCES, "choice", BILLING, interchange="group"),
    _f("status", "Status", STATUS, "choice", BILLING),
    _f("status_locked", "Status Update: locked", STATUS, "tick", BILLING, key="f7"),
    _f("marketing_opt_out", "Marketing Emails Opt-out", MISC, "tick", BILLING, key="f8"),
    _f("admin_notes", "Admin Notes", ADMIN_NOTES, "notes", CONTACT, NOTES_MAX),
)

FIELDS: dict[str, ProfileField] = {f.name: f for f in PROFILE_FIELDS}
#: The sections of the profile, in order.
SECTIONS: tuple[str, ...] = tuple(dict.fromkeys(f.section for f in PROFILE_FIELDS))
#: Fields support staff may change; everything else on the profile needs billing rights.
CONTACT_FIELDS = tuple(f.name for f in PROFILE_FIELDS if f.right == CONTACT)
#: The ticks of the billing preferences, status lock and marketing opt-out.
PREFERENCE_FIELDS = tuple(f.name for f in PROFILE_FIELDS if f.kind == "tick")
BILLING_FIELDS = tuple(f.name for f in PROFILE_FIELDS if f.right == BILLING)
EDITABLE_FIELDS = tuple(f.name for f in PROFILE_FIELDS)
#: Free-text fields and their length limits (characters, after normalisation).
TEXT_LIMITS: dict[str, int] = {
    f.name: f.max_length for f in PROFILE_FIELDS if f.kind == "text" and f.max_length
}
#: The fields a contact has: the shared name-and-address block.
CONTACT_KEYS: tuple[str, ...] = ADDRESS_FIELDS
LABELS: dict[str, str] = {f.name: f.label for f in PROFILE_FIELDS}


def in_section(section: str) -> tuple[ProfileField, ...]:
    """The fields of one editor section, in order."""
    return tuple(f for f in PROFILE_FIELDS if f.section == section)
