"""The interchange document's shape (PRODUCT.md §5): its keys, text formats and field parsers."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pycountry

from rules.billing.capture import TRANSACTION_COLUMNS
from rules.clients.fields import FIELDS, PREFERENCE_FIELDS, PROFILE_FIELDS
from rules.clients.validation import (
    clean_text,
)
from rules.dates import parse_date, parse_time
from rules.errors import FieldError
from store.models.clients import ADDRESS_FIELDS
from store.money import MoneyError, format_decimal, parse_amount
from store.settings import (
    SettingsError,
)

FORMAT = "gobiller/1"
#: How errors about the document as a whole are labelled.
DOCUMENT = "(document)"

TOP_KEYS = (
    "format",
    "settings",
    "currencies",
    "client_groups",
    "tax_rules",
    "custom_fields",
    "products",
    "product_addons",
    "clients",
    "ledger",
)
CURRENCY_KEYS = ("code", "prefix", "suffix", "decimals", "rate", "default")
GROUP_KEYS = ("name", "colour", "discount_percent", "separate_invoices")
TAX_KEYS = ("level", "name", "country", "state", "rate")
#: The catalogue (``store.models.catalogue``): a product and its prices per currency and
#: billing cycle; a product addon likewise, without a type.
PRODUCT_KEYS = ("name", "type", "taxed", "description", "prices")
PRODUCT_ADDON_KEYS = ("name", "taxed", "description", "prices")
PRICE_KEYS = ("currency", "billing_cycle", "amount")
#: A Client Note (``store.models.ClientNote``).
NOTE_KEYS = ("note", "author", "sticky", "created_at", "updated_at")
CUSTOM_FIELD_KEYS = ("name", "type", "options", "required", "admin_only", "regex")
ADDRESS_KEYS = ADDRESS_FIELDS
#: The profile's ticks (``rules.clients.fields``), by the same names in the document.
PREFERENCE_KEYS = tuple(FIELDS[name].interchange or name for name in PREFERENCE_FIELDS)
CLIENT_KEYS = (
    "id",
    *(f.interchange for f in PROFILE_FIELDS if f.interchange),
    "custom_fields",
    "created_at",
    "last_login_at",
    "credit",
    "contacts",
    "cards",
    "services",
    "domains",
    "invoices",
    "transactions",
    "credits",
    "notes",
    "emails",
)
CONTACT_KEYS = ADDRESS_KEYS
CARD_KEYS = ("id", "gateway", "token", "last4", "expiry")
ADDON_KEYS = (
    "id",
    "name",
    "product_addon",
    "status",
    "billing_cycle",
    "amount",
    "next_due_date",
    "anchor_day",
    "payment_method",
)
SERVICE_KEYS = (
    "id",
    "product",
    "domain",
    "status",
    "billing_cycle",
    "amount",
    "next_due_date",
    "anchor_day",
    "payment_method",
    "notes",
    "addons",
)
DOMAIN_KEYS = ("id", "name", "status", "amount", "next_due_date", "anchor_day", "payment_method")
INVOICE_KEYS = (
    "id",
    "number",
    "date",
    "due_date",
    "date_paid",
    "status",
    "payment_method",
    "subtotal",
    "tax",
    "tax2",
    "total",
    "credit",
    "tax_rate",
    "tax_rate2",
    "items",
)
ITEM_KEYS = ("type", "description", "amount", "taxed", "related")
RELATED_KEYS = ("type", "id", "due_date")
#: A transaction's columns (``rules.billing.capture``), its invoice named by id.
TRANSACTION_KEYS = (
    "invoice",
    *(c for c in TRANSACTION_COLUMNS if c not in ("client_id", "invoice_id")),
)
#: A movement of the client's credit balance (``store.models.Credit``): added (positive)
#: or applied to one of the client's invoices, named by id (negative).
CREDIT_KEYS = ("date", "description", "amount", "invoice")
EMAIL_KEYS = ("template", "to", "subject", "status", "created_at")
LEDGER_KEYS = ("rule", "subject", "stage", "business_date", "outcome", "detail", "created_at")
#: What the ledger's subjects ("invoice:42") and invoice items' links name, by their ids.
SUBJECT_KINDS = ("client", "service", "addon", "domain", "invoice")
BILLED_KINDS = ("service", "addon", "domain")

_COLOUR = re.compile(r"^(#[0-9a-fA-F]{6})?$")
_INVOICE_NUMBER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9/_.-]{0,31}$")
_DOMAIN = re.compile(r"^(?=.{1,253}$)[^\s/]+\.[^\s/.]+$")


class ImportError_(Exception):
    """The document was refused; ``errors`` lists every ``path: reason``, nothing was written."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        super().__init__(f"{len(errors)} error(s) in the import file:\n" + "\n".join(errors))


# --------------------------------------------------------------------------- formatting


def _percent_text(value_e: int, scale: int) -> str:
    """A percent stored as an integer of ``scale`` places: at least two decimals."""
    text = format(Decimal(value_e).scaleb(-scale), "f")
    whole, _, frac = text.partition(".")
    frac = frac.rstrip("0").ljust(2, "0")
    return f"{whole}.{frac}"


def _time_text(value: dt.datetime | None) -> str | None:
    return None if value is None else value.strftime("%Y-%m-%dT%H:%M:%SZ")


def _date_text(value: dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


def _money_text(minor: int, decimals: int) -> str:
    return format_decimal(Decimal(minor).scaleb(-decimals), decimals)


# --------------------------------------------------------------------------- checking


def _join(path: str, key: str) -> str:
    return key if path == DOCUMENT else f"{path}.{key}"


@dataclass
class _Checker:
    """Collects every error with its path instead of stopping at the first."""

    errors: list[str] = field(default_factory=list)

    def fail(self, path: str, message: str) -> None:
        self.errors.append(f"{path}: {message}")

    def obj(
        self, value: Any, path: str, keys: tuple[str, ...], required: tuple[str, ...] = ()
    ) -> dict[str, Any] | None:
        if not isinstance(value, dict):
            self.fail(path, "must be an object")
            return None
        for key in value:
            if key not in keys:
                self.fail(_join(path, key), "unknown key")
        for key in required:
            if key not in value:
                self.fail(_join(path, key), "is required")
        return value

    def items(self, value: Any, path: str) -> Iterator[tuple[str, Any]]:
        if value is None:
            return
        if not isinstance(value, list):
            self.fail(path, "must be a list")
            return
        for i, item in enumerate(value):
            yield f"{path}[{i}]", item

    def field(
        self,
        record: dict[str, Any],
        key: str,
        path: str,
        clean: Callable[[Any], Any],
        default: Any = None,
    ) -> Any:
        """Run ``clean`` on one value, recording its error; missing keys take ``default``."""
        if key not in record:
            return default
        try:
            return clean(record[key])
        except (FieldError, MoneyError, SettingsError, ValueError) as exc:
            message = exc.message if isinstance(exc, SettingsError) else str(exc)
            self.fail(f"{path}.{key}", message)
            return default


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise FieldError("must be true or false")
    return value


#: The widest whole number a column holds (SQLite's and PostgreSQL's 64-bit integers).
INT_MAX = 2**63 - 1
#: JSON numbers longer than this are refused while parsing (Python refuses to convert
#: integers of over 4,300 digits, and no value here needs more than 19).
NUMBER_DIGITS_MAX = 40


def _int(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise FieldError("must be a whole number")
    if not -INT_MAX <= value <= INT_MAX:
        raise FieldError("is out of range")
    return value


def _choice(options: Iterable[str]) -> Callable[[Any], str]:
    allowed = tuple(options)

    def check(value: Any) -> str:
        if value not in allowed:
            raise FieldError(f"must be one of {', '.join(allowed)}")
        return str(value)

    return check


def _text(
    limit: int, *, required: bool = False, multiline: bool = False, strip: bool = True
) -> Callable[[Any], str]:
    return lambda v: clean_text(v, limit, required=required, multiline=multiline, strip=strip)


def _date(value: Any) -> dt.date | None:
    """A date ``YYYY-MM-DD`` inside the plausible window (``rules.dates``), or None."""
    return None if value is None else parse_date(value)


def _time(value: Any) -> dt.datetime | None:
    """An ISO 8601 UTC time inside the plausible window (``rules.dates``), or None."""
    return None if value is None else parse_time(value)


def _required(parse: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``parse``, refusing an absent value ("is required")."""

    def check(value: Any) -> Any:
        result = parse(value)
        if result is None:
            raise FieldError("is required")
        return result

    return check


_required_date = _required(_date)
_required_time = _required(_time)


def _percent(places: int) -> Callable[[Any], int]:
    """A percent as a decimal string (or number) into an integer of ``places`` places."""

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise FieldError('must be a decimal string such as "10.00"')
        try:
            number = parse_amount(str(value), places)
        except MoneyError as exc:
            raise FieldError(str(exc)) from exc
        if number > 100:
            raise FieldError("must be at most 100")
        return int(number.scaleb(places))

    return check


#: Exchange rates against the default currency: plain positive decimals within these
#: bounds (the widest real spread is about 1e-5 .. 1e6 against any major currency).
RATE_MIN = Decimal("0.000001")
RATE_MAX = Decimal("1000000000")
_RATE_TEXT = re.compile(r"\d{1,10}(\.\d{1,10})?")


def _rate(value: Any) -> str:
    """A currency's exchange rate: a plain decimal string ("150", "0.376") between
    ``RATE_MIN`` and ``RATE_MAX``; no sign, exponent, spaces or more than 10 places."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise FieldError('must be a decimal string such as "1.00"')
    text = str(value)
    if not _RATE_TEXT.fullmatch(text):
        raise FieldError('must be a plain decimal such as "1.00" or "0.376"')
    if not RATE_MIN <= Decimal(text) <= RATE_MAX:
        raise FieldError(f"must be between {RATE_MIN} and {RATE_MAX}")
    return text


def _currency_code(value: Any) -> str:
    if not isinstance(value, str) or pycountry.currencies.get(alpha_3=value) is None:
        raise FieldError("not an ISO 4217 currency code")
    return value
