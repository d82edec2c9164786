"""The interchange document of PRODUCT.md §5: ``gobiller import`` and ``gobiller export``.

Import checks the whole document first and reports every bad record by its
path (``clients[3].email: not a valid email``); only a document with no error
is written, in one transaction. Export orders everything by keys that import
preserves, so export → import into an empty database → export gives the same
bytes.

A restored database acts exactly as the original would (PRODUCT.md §5): services,
addons, domains, cards and invoices keep their ids (refused, like client ids, when
the database already has them), so the references that carry the rules' "done once"
keep meaning the same records: each invoice item's link to what it bills and the due
date billed (``related``), the transactions received (the balance the rules read,
and capture idempotency keys naming invoice ids) and the action ledger (``ledger``:
claims on ``invoice:42``, ``client:7``, ``service:9``, ``card:3`` stages). Every one
of these is optional on import; a record without an ``id`` gets a new one.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Any

import pycountry
from peewee import IntegrityError, Model, fn

from rules.automation import chunks
from rules.clients import emails_in_use, is_email_clash
from rules.currencies import check_decimals_change
from rules.dates import parse_date, parse_expiry, parse_time
from rules.errors import ValidationError
from rules.invoicing import fill_anchor_days
from rules.mail import SUBJECT_MAX
from rules.tax import TaxTable, rates_from_amounts
from rules.validation import (
    TEXT_LIMITS,
    FieldError,
    check_custom_value,
    check_pattern,
    clean_country,
    clean_email,
    clean_phone,
    clean_state,
    clean_text,
)
from store import sequences
from store.bulk import bulk_update_column, reset_sequences
from store.db import writer
from store.files import write_atomically
from store.keys import email_key, region_key
from store.models import (
    ActionLedger,
    Addon,
    Client,
    ClientGroup,
    Contact,
    Currency,
    CustomField,
    CustomFieldValue,
    Domain,
    Email,
    Invoice,
    InvoiceItem,
    Product,
    Service,
    StoredCard,
    TaxRule,
    Transaction,
    utcnow,
)
from store.models.clients import ADDRESS_FIELDS, NOTES_MAX
from store.models.enums import (
    GATEWAYS,
    BillingCycle,
    ClientStatus,
    CustomFieldType,
    DomainStatus,
    EmailStatus,
    InvoiceStatus,
    ItemType,
    ServiceStatus,
)
from store.money import MoneyError, format_decimal, parse_amount
from store.queries import column, lookup
from store.settings import (
    INTERCHANGE_SETTINGS,
    SettingsError,
    interchange_settings,
    load_settings,
    save_settings,
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
    "clients",
    "ledger",
)
CURRENCY_KEYS = ("code", "prefix", "suffix", "decimals", "rate", "default")
GROUP_KEYS = ("name", "colour", "discount_percent", "separate_invoices")
TAX_KEYS = ("level", "name", "country", "state", "rate")
CUSTOM_FIELD_KEYS = ("name", "type", "options", "required", "admin_only", "regex")
ADDRESS_KEYS = ADDRESS_FIELDS
PREFERENCE_KEYS = (
    "late_fees_exempt",
    "overdue_notices_disabled",
    "tax_exempt",
    "separate_invoices",
    "cc_processing_disabled",
    "status_locked",
    "marketing_opt_out",
)
CLIENT_KEYS = (
    "id",
    *ADDRESS_KEYS,
    "tax_id",
    "status",
    "currency",
    "group",
    "payment_method",
    "billing_contact",
    *PREFERENCE_KEYS,
    "admin_notes",
    "custom_fields",
    "created_at",
    "last_login_at",
    "contacts",
    "cards",
    "services",
    "domains",
    "invoices",
    "transactions",
    "emails",
)
CONTACT_KEYS = ADDRESS_KEYS
CARD_KEYS = ("id", "gateway", "token", "last4", "expiry")
ADDON_KEYS = (
    "id",
    "name",
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
    "tax_rate",
    "tax_rate2",
    "items",
)
ITEM_KEYS = ("type", "description", "amount", "taxed", "related")
RELATED_KEYS = ("type", "id", "due_date")
TRANSACTION_KEYS = (
    "invoice",
    "gateway",
    "transaction_id",
    "idempotency_key",
    "amount_in",
    "amount_out",
    "fees",
    "description",
    "date",
)
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


# --------------------------------------------------------------------------- export


def _grouped(query: Iterable[Any], key: str) -> dict[int, list[Any]]:
    groups: dict[int, list[Any]] = defaultdict(list)
    for row in query:
        groups[getattr(row, key)].append(row)
    return groups


def build_export() -> dict[str, Any]:
    """The whole database as an interchange document (a fixed number of queries).

    Services, addons, domains, cards and invoices carry their ids, invoice items what
    they bill, and the document the action ledger, so a database restored from it acts
    exactly as this one would (PRODUCT.md §5).
    """
    currencies = list(Currency.select().order_by(Currency.code))
    by_currency = {c.id: c for c in currencies}
    groups = list(ClientGroup.select().order_by(ClientGroup.name))
    group_names = {g.id: g.name for g in groups}
    fields_ = list(CustomField.select().order_by(CustomField.sort_order, CustomField.id))
    field_names = {f.id: f.name for f in fields_}
    contacts = _grouped(Contact.select().order_by(Contact.id), "client_id")
    contact_emails = {c.id: c.email for rows in contacts.values() for c in rows}
    values = _grouped(CustomFieldValue.select(), "client_id")
    field_order = {f.id: i for i, f in enumerate(fields_)}
    cards = _grouped(StoredCard.select().order_by(StoredCard.id), "client_id")
    products = {p.id: p.name for p in Product.select()}
    services = _grouped(Service.select().order_by(Service.id), "client_id")
    addons = _grouped(Addon.select().order_by(Addon.id), "service_id")
    domains = _grouped(Domain.select().order_by(Domain.id), "client_id")
    invoices = _grouped(Invoice.select().order_by(Invoice.id), "client_id")
    items = _grouped(
        InvoiceItem.select().order_by(InvoiceItem.sort_order, InvoiceItem.id), "invoice_id"
    )
    transactions = _grouped(Transaction.select().order_by(Transaction.id), "client_id")
    emails = _grouped(Email.select().order_by(Email.id), "client_id")
    clients = list(Client.select().order_by(Client.id))

    def client_doc(c: Client) -> dict[str, Any]:
        d = by_currency[c.currency_id].decimals

        def money(minor: int) -> str:
            return _money_text(minor, d)

        cvals = sorted(values.get(c.id, []), key=lambda v: field_order[v.field_id])
        return {
            "id": c.id,
            **{k: getattr(c, k) for k in ADDRESS_KEYS},
            "tax_id": c.tax_id,
            "status": c.status,
            "currency": by_currency[c.currency_id].code,
            "group": group_names.get(c.group_id),
            "payment_method": c.payment_method,
            "billing_contact": contact_emails.get(c.billing_contact_id),
            **{k: getattr(c, k) for k in PREFERENCE_KEYS},
            "admin_notes": c.admin_notes,
            "custom_fields": {field_names[v.field_id]: v.value for v in cvals},
            "created_at": _time_text(c.created_at),
            "last_login_at": _time_text(c.last_login_at),
            "contacts": [{k: getattr(x, k) for k in CONTACT_KEYS} for x in contacts.get(c.id, [])],
            "cards": [{k: getattr(x, k) for k in CARD_KEYS} for x in cards.get(c.id, [])],
            "services": [
                {
                    "id": s.id,
                    "product": products[s.product_id],
                    "domain": s.domain,
                    "status": s.status,
                    "billing_cycle": s.billing_cycle,
                    "amount": money(s.amount),
                    "next_due_date": _date_text(s.next_due_date),
                    "anchor_day": s.anchor_day,
                    "payment_method": s.payment_method,
                    "addons": [
                        {
                            "id": a.id,
                            "name": a.name,
                            "status": a.status,
                            "billing_cycle": a.billing_cycle,
                            "amount": money(a.amount),
                            "next_due_date": _date_text(a.next_due_date),
                            "anchor_day": a.anchor_day,
                            "payment_method": a.payment_method,
                        }
                        for a in addons.get(s.id, [])
                    ],
                }
                for s in services.get(c.id, [])
            ],
            "domains": [
                {
                    "id": x.id,
                    "name": x.name,
                    "status": x.status,
                    "amount": money(x.amount),
                    "next_due_date": _date_text(x.next_due_date),
                    "anchor_day": x.anchor_day,
                    "payment_method": x.payment_method,
                }
                for x in domains.get(c.id, [])
            ],
            "invoices": [
                {
                    "id": i.id,
                    "number": i.number,
                    "date": _date_text(i.date),
                    "due_date": _date_text(i.due_date),
                    "date_paid": _date_text(i.date_paid),
                    "status": i.status,
                    "payment_method": i.payment_method,
                    "subtotal": money(i.subtotal),
                    "tax": money(i.tax),
                    "tax2": money(i.tax2),
                    "total": money(i.total),
                    "tax_rate": _percent_text(i.tax_rate1_e4, 4),
                    "tax_rate2": _percent_text(i.tax_rate2_e4, 4),
                    "items": [
                        {
                            "type": it.type,
                            "description": it.description,
                            "amount": money(it.amount),
                            "taxed": it.taxed,
                            "related": _related_doc(it),
                        }
                        for it in items.get(i.id, [])
                    ],
                }
                for i in invoices.get(c.id, [])
            ],
            "transactions": [
                {
                    "invoice": t.invoice_id,
                    "gateway": t.gateway,
                    "transaction_id": t.transaction_id,
                    "idempotency_key": t.idempotency_key,
                    "amount_in": money(t.amount_in),
                    "amount_out": money(t.amount_out),
                    "fees": money(t.fees),
                    "description": t.description,
                    "date": _time_text(t.date),
                }
                for t in transactions.get(c.id, [])
            ],
            "emails": [
                {
                    "template": e.template,
                    "to": e.to,
                    "subject": e.subject,
                    "status": e.status,
                    "created_at": _time_text(e.created_at),
                }
                for e in emails.get(c.id, [])
            ],
        }

    return {
        "format": FORMAT,
        "settings": interchange_settings(load_settings()),
        **build_reference(currencies, groups, fields_),
        "clients": [client_doc(c) for c in clients],
        "ledger": _ledger_doc(
            {
                "client": {c.id for c in clients},
                "service": {s.id for rows in services.values() for s in rows},
                "addon": {a.id for rows in addons.values() for a in rows},
                "domain": {d.id for rows in domains.values() for d in rows},
                "invoice": {i.id for rows in invoices.values() for i in rows},
            }
        ),
    }


def _related_doc(item: InvoiceItem) -> dict[str, Any] | None:
    """What an invoice item bills, and for which due date (null for fees, discounts)."""
    if item.related_type is None:
        return None
    return {
        "type": item.related_type,
        "id": item.related_id,
        "due_date": _date_text(item.related_due_date),
    }


def _ledger_doc(present: dict[str, set[int]]) -> list[dict[str, Any]]:
    """The action ledger: every claim the rules check before acting, in the order made.

    ``present`` holds the exported ids by kind ("invoice": {42, ...}). A claim on a
    record no longer in the database is left out: the document cannot name it, and its
    id must not stop a new record's action in the restored database.
    """
    out = []
    for row in ActionLedger.select().order_by(ActionLedger.id):
        kind, _, number = row.subject.partition(":")
        if not number.isdigit() or int(number) not in present.get(kind, ()):
            continue
        out.append(
            {
                "rule": row.rule,
                "subject": row.subject,
                "stage": row.stage,
                "business_date": _date_text(row.business_date),
                "outcome": row.outcome,
                "detail": row.detail,
                "created_at": _time_text(row.created_at),
            }
        )
    return out


def build_reference(
    currencies: list[Currency] | None = None,
    groups: list[ClientGroup] | None = None,
    fields_: list[CustomField] | None = None,
) -> dict[str, list[dict[str, Any]]]:
    """The reference sections of the document (currencies, groups, tax rules, fields)."""
    if currencies is None:
        currencies = list(Currency.select().order_by(Currency.code))
    if groups is None:
        groups = list(ClientGroup.select().order_by(ClientGroup.name))
    if fields_ is None:
        fields_ = list(CustomField.select().order_by(CustomField.sort_order, CustomField.id))
    return {
        "currencies": [
            {
                "code": c.code,
                "prefix": c.prefix,
                "suffix": c.suffix,
                "decimals": c.decimals,
                "rate": c.rate,
                "default": c.is_default,
            }
            for c in currencies
        ],
        "client_groups": [
            {
                "name": g.name,
                "colour": g.colour,
                "discount_percent": _percent_text(g.discount_bp, 2),
                "separate_invoices": g.separate_invoices,
            }
            for g in groups
        ],
        "tax_rules": [
            {
                "level": t.level,
                "name": t.name,
                "country": t.country,
                "state": t.state,
                "rate": _percent_text(t.rate_e4, 4),
            }
            for t in TaxRule.select().order_by(
                TaxRule.level, TaxRule.country, TaxRule.state, TaxRule.name
            )
        ],
        "custom_fields": [
            {
                "name": f.name,
                "type": f.type,
                "options": json.loads(f.options),
                "required": f.required,
                "admin_only": f.admin_only,
                "regex": f.regex,
            }
            for f in fields_
        ],
    }


def export_to(path: Path) -> int:
    """Write the document to ``path`` (0600, all at once: ``store.files``); return the
    number of clients. Raises ``FileWriteError`` (disk full, no such folder, ...) with the
    previous file at ``path`` untouched."""
    doc = build_export()
    write_atomically(path, dumps(doc))
    return len(doc["clients"])


def dumps(doc: dict[str, Any]) -> str:
    return json.dumps(doc, ensure_ascii=False, indent=1) + "\n"


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


# --------------------------------------------------------------------------- importing


@dataclass
class _Plan:
    """The checked document, ready to write."""

    settings: dict[str, Any] = field(default_factory=dict)
    currencies: list[dict[str, Any]] = field(default_factory=list)
    groups: list[dict[str, Any]] = field(default_factory=list)
    tax_rules: list[dict[str, Any]] = field(default_factory=list)
    custom_fields: list[dict[str, Any]] = field(default_factory=list)
    clients: list[dict[str, Any]] = field(default_factory=list)
    ledger: list[dict[str, Any]] = field(default_factory=list)
    refs: _Refs = field(default_factory=lambda: _Refs())


def load_document(text: str) -> Any:
    """Parse JSON text, refusing duplicate keys, non-finite numbers, numbers of more than
    ``NUMBER_DIGITS_MAX`` characters and nesting deeper than Python's parser can follow."""

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for key, value in items:
            if key in result:
                raise ImportError_([f"{key}: duplicate key"])
            result[key] = value
        return result

    def constant(name: str) -> Any:
        raise ImportError_([f"{DOCUMENT}: {name} is not allowed in JSON"])

    def number(parse: Callable[[str], Any]) -> Callable[[str], Any]:
        def check(digits: str) -> Any:
            if len(digits) > NUMBER_DIGITS_MAX:
                raise ImportError_(
                    [f"{DOCUMENT}: a number of {len(digits):,} characters is too long"]
                )
            return parse(digits)

        return check

    try:
        return json.loads(
            text,
            object_pairs_hook=pairs,
            parse_float=number(Decimal),
            parse_int=number(int),
            parse_constant=constant,
        )
    except RecursionError as exc:
        raise ImportError_([f"{DOCUMENT}: nested too deeply"]) from exc
    except json.JSONDecodeError as exc:
        raise ImportError_(
            [f"{DOCUMENT}: not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"]
        ) from exc


def check_document(doc: Any) -> _Plan:
    """Check the whole document against itself and the database; raise with every error."""
    ck = _Checker()
    plan = _Plan()
    top = ck.obj(doc, DOCUMENT, TOP_KEYS, required=("format",))
    if top is None:
        raise ImportError_(ck.errors)
    if top.get("format") != FORMAT:
        ck.fail("format", f'must be "{FORMAT}"')

    settings = top.get("settings", {})
    if isinstance(settings, dict):
        for key in settings:
            if key not in INTERCHANGE_SETTINGS:
                ck.fail(f"settings.{key}", "unknown key")
                continue
            plan.settings[key] = ck.field(settings, key, "settings", partial(_setting, key))
    else:
        ck.fail("settings", "must be an object")

    # Reference data: the document's own, then what the database already has.
    currencies = lookup(Currency, Currency.code, Currency.decimals)
    defaults = 0
    for path, raw in ck.items(top.get("currencies", []), "currencies"):
        rec = ck.obj(raw, path, CURRENCY_KEYS, required=("code",))
        if rec is None:
            continue
        code = ck.field(rec, "code", path, _currency_code)
        item = {
            "code": code,
            "prefix": ck.field(rec, "prefix", path, _text(8, strip=False), ""),
            "suffix": ck.field(rec, "suffix", path, _text(8, strip=False), ""),
            "decimals": ck.field(rec, "decimals", path, _decimals, 2),
            "rate": ck.field(rec, "rate", path, _rate, "1"),
            "is_default": ck.field(rec, "default", path, _bool, False),
        }
        defaults += bool(item["is_default"])
        if code in {c["code"] for c in plan.currencies}:
            ck.fail(f"{path}.code", f"duplicate currency {code}")
        if code:
            plan.currencies.append(item)
            currencies[code] = item["decimals"]
    if defaults > 1:
        ck.fail("currencies", "only one currency can be the default")
    if (
        plan.currencies
        and defaults == 0
        and not Currency.select().where(Currency.is_default).exists()
    ):
        ck.fail("currencies", "one currency must be the default")

    group_names = column(ClientGroup, ClientGroup.name)
    seen: set[str] = set()
    for path, raw in ck.items(top.get("client_groups", []), "client_groups"):
        rec = ck.obj(raw, path, GROUP_KEYS, required=("name",))
        if rec is None:
            continue
        name = ck.field(rec, "name", path, _text(100, required=True))
        if name in seen:
            ck.fail(f"{path}.name", f"duplicate group {name!r}")
        seen.add(name)
        group_names.add(name)
        plan.groups.append(
            {
                "name": name,
                "colour": ck.field(rec, "colour", path, _colour, ""),
                "discount_bp": ck.field(rec, "discount_percent", path, _percent(2), 0),
                "separate_invoices": ck.field(rec, "separate_invoices", path, _bool, False),
            }
        )

    # A rule's state matches clients by region (code or name, any case): two rules of one
    # level for the same region would compete, so they clash even when spelled apart.
    rules: Any = TaxRule.select(TaxRule.level, TaxRule.country, TaxRule.state).tuples()
    stored_rules = {
        (level, country, region_key(country, state)): state for level, country, state in rules
    }
    tax_keys: set[tuple[int, str, str]] = set()
    for path, raw in ck.items(top.get("tax_rules", []), "tax_rules"):
        rec = ck.obj(raw, path, TAX_KEYS, required=("level", "name", "rate"))
        if rec is None:
            continue
        country = ck.field(rec, "country", path, clean_country, "")
        item = {
            "level": ck.field(rec, "level", path, _choice_int((1, 2))),
            "name": ck.field(rec, "name", path, _text(100, required=True)),
            "country": country,
            "state": ck.field(
                rec,
                "state",
                path,
                partial(clean_state, country=country or ""),
                "",
            ),
            "rate_e4": ck.field(rec, "rate", path, _percent(4)),
        }
        key = (item["level"], item["country"], region_key(country or "", item["state"] or ""))
        stored = stored_rules.get(key)
        if key in tax_keys or (stored is not None and stored != item["state"]):
            ck.fail(path, "another rule has the same level, country and state")
        tax_keys.add(key)
        plan.tax_rules.append(item)

    fields_by_name = {
        f.name: {
            "type": f.type,
            "options": json.loads(f.options),
            "regex": f.regex,
            "required": f.required,
        }
        for f in CustomField.select()
    }
    seen = set()
    for i, (path, raw) in enumerate(ck.items(top.get("custom_fields", []), "custom_fields")):
        rec = ck.obj(raw, path, CUSTOM_FIELD_KEYS, required=("name", "type"))
        if rec is None:
            continue
        item = {
            "name": ck.field(rec, "name", path, _text(100, required=True)),
            "type": ck.field(rec, "type", path, _choice(t.value for t in CustomFieldType)),
            "options": ck.field(rec, "options", path, _options, []),
            "required": ck.field(rec, "required", path, _bool, False),
            "admin_only": ck.field(rec, "admin_only", path, _bool, False),
            "regex": ck.field(rec, "regex", path, _regex, ""),
            "sort_order": i,
        }
        if item["name"] in seen:
            ck.fail(f"{path}.name", f"duplicate custom field {item['name']!r}")
        seen.add(item["name"])
        if item["name"]:
            fields_by_name[item["name"]] = item
        plan.custom_fields.append(item)

    refs = plan.refs
    _check_clients(ck, top.get("clients", []), plan, currencies, group_names, fields_by_name, refs)
    _check_ledger(ck, top.get("ledger", []), plan, refs)
    refs.check_database(ck)
    if ck.errors:
        raise ImportError_(ck.errors)
    return plan


def _setting(key: str, value: Any) -> Any:
    from store.settings import validate_setting

    if isinstance(value, Decimal):
        raise SettingsError(key, "must not be a fractional number; amounts are strings")
    return validate_setting(key, value, key)


def _decimals(value: Any) -> int:
    number = _int(value)
    if not 0 <= number <= 4:
        raise FieldError("must be between 0 and 4")
    return number


def _colour(value: Any) -> str:
    if not isinstance(value, str) or not _COLOUR.match(value):
        raise FieldError('must be a colour such as "#1e90ff" or empty')
    return value


def _choice_int(options: tuple[int, ...]) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if _int(value) not in options:
            raise FieldError(f"must be one of {', '.join(map(str, options))}")
        return int(value)

    return check


def _options(value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise FieldError("must be a list of strings")
    return [clean_text(v, 100) for v in value]


def _regex(value: Any) -> str:
    return check_pattern(value)


def _check_clients(
    ck: _Checker,
    clients: Any,
    plan: _Plan,
    currencies: dict[str, int],
    groups: set[str],
    custom: dict[str, dict[str, Any]],
    refs: _Refs,
) -> None:
    """Check every client record against the document; clashes with the database are
    checked afterwards, all at once (``_Refs.check_database``)."""
    emails = refs.emails
    for path, raw in ck.items(clients, "clients"):
        rec = ck.obj(
            raw, path, CLIENT_KEYS, required=("id", "first_name", "last_name", "email", "currency")
        )
        if rec is None:
            continue
        client: dict[str, Any] = {}
        cid = ck.field(rec, "id", path, _positive_id)
        if cid is not None:
            if cid in refs.ids["client"]:
                ck.fail(f"{path}.id", f"duplicate client id {cid}")
            refs.ids["client"].setdefault(cid, (path, cid))
        client["id"] = cid
        country = ck.field(rec, "country", path, clean_country, "")
        client.update(_address(ck, rec, path, country))
        email = client.get("email")
        if email:
            key = email_key(email)
            if key in emails:
                ck.fail(f"{path}.email", f"duplicate email (also at {emails[key]})")
            else:
                emails[key] = f"{path}.email"
        client["tax_id"] = ck.field(rec, "tax_id", path, _text(TEXT_LIMITS["tax_id"]), "")
        client["status"] = ck.field(
            rec, "status", path, _choice(s.value for s in ClientStatus), ClientStatus.ACTIVE
        )
        code = ck.field(rec, "currency", path, _known(currencies, "unknown currency"))
        client["currency"] = code
        decimals = currencies.get(code or "", 2)
        client["group"] = ck.field(
            rec, "group", path, _known_or_null(groups, "unknown client group")
        )
        client["payment_method"] = ck.field(rec, "payment_method", path, _gateway, "banktransfer")
        for key in PREFERENCE_KEYS:
            client[key] = ck.field(rec, key, path, _bool, False)
        client["admin_notes"] = ck.field(
            rec, "admin_notes", path, _text(NOTES_MAX, multiline=True), ""
        )
        client["created_at"] = ck.field(rec, "created_at", path, _time)
        client["last_login_at"] = ck.field(rec, "last_login_at", path, _time)
        client["custom_fields"] = _custom_values(
            ck, rec.get("custom_fields", {}), f"{path}.custom_fields", custom
        )

        contacts = []
        contact_emails: set[str] = set()
        for cpath, craw in ck.items(rec.get("contacts", []), f"{path}.contacts"):
            crec = ck.obj(craw, cpath, CONTACT_KEYS, required=("first_name", "last_name", "email"))
            if crec is None:
                continue
            ccountry = ck.field(crec, "country", cpath, clean_country, "")
            contact = _address(ck, crec, cpath, ccountry)
            if contact.get("email"):
                if email_key(contact["email"]) in contact_emails:
                    ck.fail(f"{cpath}.email", "duplicate contact email for this client")
                contact_emails.add(email_key(contact["email"]))
            contacts.append(contact)
        client["contacts"] = contacts
        billing = ck.field(
            rec, "billing_contact", path, lambda v: None if v is None else clean_email(v)
        )
        if billing is not None and email_key(billing) not in contact_emails:
            ck.fail(f"{path}.billing_contact", "not the email of one of this client's contacts")
        client["billing_contact"] = billing

        client["cards"] = [
            {
                "id": refs.record_id(ck, r, p, "card", cid),
                "gateway": ck.field(r, "gateway", p, _gateway),
                "token": ck.field(r, "token", p, _text(255, required=True)),
                "last4": ck.field(r, "last4", p, _last4),
                "expiry": ck.field(r, "expiry", p, _expiry),
            }
            for p, r in _records(
                ck,
                rec.get("cards", []),
                f"{path}.cards",
                CARD_KEYS,
                ("gateway", "token", "last4", "expiry"),
            )
        ]
        services = []
        for spath, srec in _records(
            ck,
            rec.get("services", []),
            f"{path}.services",
            SERVICE_KEYS,
            ("product", "status", "amount", "payment_method"),
        ):
            service = _billable(ck, srec, spath, decimals, ServiceStatus)
            service["id"] = refs.record_id(ck, srec, spath, "service", cid)
            service["product"] = ck.field(srec, "product", spath, _text(150, required=True))
            service["domain"] = ck.field(srec, "domain", spath, _text(253), "")
            service["billing_cycle"] = ck.field(srec, "billing_cycle", spath, _cycle, "Monthly")
            addons = []
            for apath, arec in _records(
                ck,
                srec.get("addons", []),
                f"{spath}.addons",
                ADDON_KEYS,
                ("name", "status", "amount", "payment_method"),
            ):
                addon = _billable(ck, arec, apath, decimals, ServiceStatus)
                addon["id"] = refs.record_id(ck, arec, apath, "addon", cid)
                addon["name"] = ck.field(arec, "name", apath, _text(150, required=True))
                addon["billing_cycle"] = ck.field(arec, "billing_cycle", apath, _cycle, "Monthly")
                addons.append(addon)
            service["addons"] = addons
            services.append(service)
        client["services"] = services
        domains = []
        for dpath, drec in _records(
            ck,
            rec.get("domains", []),
            f"{path}.domains",
            DOMAIN_KEYS,
            ("name", "status", "amount", "payment_method"),
        ):
            domain = _billable(ck, drec, dpath, decimals, DomainStatus)
            domain["id"] = refs.record_id(ck, drec, dpath, "domain", cid)
            domain["name"] = ck.field(drec, "name", dpath, _domain_name)
            domains.append(domain)
        client["domains"] = domains

        invoices = []
        for ipath, irec in _records(
            ck,
            rec.get("invoices", []),
            f"{path}.invoices",
            INVOICE_KEYS,
            ("number", "date", "due_date", "status", "payment_method", "subtotal", "total"),
        ):
            invoice = _invoice(ck, irec, ipath, decimals, refs, cid)
            number = invoice["number"]
            if number is not None:
                if number in refs.numbers:
                    ck.fail(f"{ipath}.number", f"duplicate invoice number {number}")
                refs.numbers.setdefault(number, f"{ipath}.number")
            invoices.append(invoice)
        client["invoices"] = invoices
        client["transactions"] = [
            _transaction(ck, r, p, decimals, refs, cid)
            for p, r in _records(
                ck,
                rec.get("transactions", []),
                f"{path}.transactions",
                TRANSACTION_KEYS,
                ("gateway", "date"),
            )
        ]
        client["emails"] = [
            {
                "template": ck.field(r, "template", p, _text(100, required=True, strip=False)),
                "to": ck.field(r, "to", p, _text(254, required=True, strip=False)),
                "subject": ck.field(r, "subject", p, _text(SUBJECT_MAX, strip=False), ""),
                "status": ck.field(r, "status", p, _choice(s.value for s in EmailStatus)),
                "created_at": ck.field(r, "created_at", p, _required_time),
            }
            for p, r in _records(
                ck,
                rec.get("emails", []),
                f"{path}.emails",
                EMAIL_KEYS,
                ("template", "to", "status", "created_at"),
            )
        ]
        plan.clients.append(client)


def _records(
    ck: _Checker, value: Any, path: str, keys: tuple[str, ...], required: tuple[str, ...]
) -> Iterator[tuple[str, dict[str, Any]]]:
    for p, raw in ck.items(value, path):
        rec = ck.obj(raw, p, keys, required)
        if rec is not None:
            yield p, rec


def _address(ck: _Checker, rec: dict[str, Any], path: str, country: str) -> dict[str, Any]:
    out: dict[str, Any] = {"country": country}
    for key in ("first_name", "last_name"):
        out[key] = ck.field(rec, key, path, _text(TEXT_LIMITS[key], required=True))
    for key in ("company", "address1", "address2", "city", "state", "postcode"):
        check = (
            partial(clean_state, country=country or "")
            if key == "state"
            else _text(TEXT_LIMITS[key])
        )
        out[key] = ck.field(rec, key, path, check, "")
    out["email"] = ck.field(rec, "email", path, clean_email)
    out["phone"] = ck.field(rec, "phone", path, lambda v: clean_phone(v, country), "")
    return out


def _billable(
    ck: _Checker,
    rec: dict[str, Any],
    path: str,
    decimals: int,
    statuses: type[ServiceStatus] | type[DomainStatus],
) -> dict[str, Any]:
    return {
        "status": ck.field(rec, "status", path, _choice(s.value for s in statuses)),
        "amount": ck.field(rec, "amount", path, _money(decimals)),
        "next_due_date": ck.field(rec, "next_due_date", path, _date),
        # None: not in the document, the day of the next due date (fill_anchor_days).
        "anchor_day": ck.field(rec, "anchor_day", path, _anchor_day),
        "payment_method": ck.field(rec, "payment_method", path, _gateway),
    }


def _anchor_day(value: Any) -> int | None:
    if value is None:
        return None
    day = _int(value)
    if not 1 <= day <= 31:
        raise FieldError("must be a day of the month, 1 to 31, or null")
    return day


def _invoice(
    ck: _Checker,
    rec: dict[str, Any],
    path: str,
    decimals: int,
    refs: _Refs,
    client_id: int | None,
) -> dict[str, Any]:
    money = _money(decimals, allow_negative=True)
    invoice: dict[str, Any] = {
        "id": refs.record_id(ck, rec, path, "invoice", client_id),
        "number": ck.field(rec, "number", path, _invoice_number),
        "date": ck.field(rec, "date", path, _required_date),
        "due_date": ck.field(rec, "due_date", path, _required_date),
        "date_paid": ck.field(rec, "date_paid", path, _date),
        "status": ck.field(rec, "status", path, _choice(s.value for s in InvoiceStatus)),
        "payment_method": ck.field(rec, "payment_method", path, _gateway),
        "subtotal": ck.field(rec, "subtotal", path, money),
        "tax": ck.field(rec, "tax", path, money, 0),
        "tax2": ck.field(rec, "tax2", path, money, 0),
        "total": ck.field(rec, "total", path, money),
        # None: not in the document, read back from the amounts when written.
        "tax_rate1_e4": ck.field(rec, "tax_rate", path, _percent(4)),
        "tax_rate2_e4": ck.field(rec, "tax_rate2", path, _percent(4)),
    }
    parts = (invoice["subtotal"], invoice["tax"], invoice["tax2"], invoice["total"])
    if all(isinstance(p, int) for p in parts) and parts[0] + parts[1] + parts[2] != parts[3]:
        ck.fail(f"{path}.total", "must equal subtotal + tax + tax2")
    invoice["items"] = [
        {
            "type": ck.field(r, "type", p, _choice(t.value for t in ItemType)),
            "description": ck.field(r, "description", p, _text(1000, multiline=True), ""),
            "amount": ck.field(r, "amount", p, money),
            "taxed": ck.field(r, "taxed", p, _bool, False),
            **_related(ck, r.get("related"), f"{p}.related", refs, client_id),
        }
        for p, r in _records(
            ck, rec.get("items", []), f"{path}.items", ITEM_KEYS, ("type", "amount")
        )
    ]
    return invoice


NOT_RELATED: dict[str, Any] = {
    "related_type": None,
    "related_id": None,
    "related_due_date": None,
}


def _related(
    ck: _Checker, value: Any, path: str, refs: _Refs, client_id: int | None
) -> dict[str, Any]:
    """An invoice item's link to the service, addon or domain it bills and the due date
    billed (the invoicing rule's "already invoiced" key): one of this client's records
    in the document, by id, and never two items for the same one and date."""
    if value is None:
        return NOT_RELATED
    link = ck.obj(value, path, RELATED_KEYS, required=RELATED_KEYS)
    if link is None:
        return NOT_RELATED
    kind = ck.field(link, "type", path, _choice(BILLED_KINDS))
    rid = ck.field(link, "id", path, _positive_id)
    due = ck.field(link, "due_date", path, _required_date)
    if kind is None or rid is None or due is None:
        return NOT_RELATED
    if refs.owner(kind, rid) != client_id:
        ck.fail(f"{path}.id", f"not the id of one of this client's {kind}s")
    key = (kind, rid, due)
    if key in refs.billed:
        ck.fail(path, f"{kind} {rid} due {due} is billed twice (also at {refs.billed[key]})")
    refs.billed[key] = path
    return {"related_type": kind, "related_id": rid, "related_due_date": due}


def _transaction(
    ck: _Checker,
    rec: dict[str, Any],
    path: str,
    decimals: int,
    refs: _Refs,
    client_id: int | None,
) -> dict[str, Any]:
    """Money received (or refunded) by a client, on one of its invoices or none; the
    balance every rule reads is the invoice total less these (PRODUCT.md §3)."""
    money = _money(decimals)
    invoice = ck.field(rec, "invoice", path, lambda v: None if v is None else _positive_id(v))
    if invoice is not None and refs.owner("invoice", invoice) != client_id:
        ck.fail(f"{path}.invoice", "not the id of one of this client's invoices")
    exact = _text(128, required=True, strip=False)  # sent to the gateway as it is
    key = ck.field(rec, "idempotency_key", path, lambda v: None if v is None else exact(v))
    if key is not None:
        if key in refs.idempotency_keys:
            ck.fail(
                f"{path}.idempotency_key",
                f"duplicate idempotency key (also at {refs.idempotency_keys[key]})",
            )
        refs.idempotency_keys.setdefault(key, f"{path}.idempotency_key")
    return {
        "invoice": invoice,
        "gateway": ck.field(rec, "gateway", path, _gateway),
        "transaction_id": ck.field(rec, "transaction_id", path, _text(128, strip=False), ""),
        "idempotency_key": key,
        "amount_in": ck.field(rec, "amount_in", path, money, 0),
        "amount_out": ck.field(rec, "amount_out", path, money, 0),
        "fees": ck.field(rec, "fees", path, money, 0),
        "description": ck.field(
            rec, "description", path, _text(1000, multiline=True, strip=False), ""
        ),
        "date": ck.field(rec, "date", path, _required_time),
    }


_SUBJECT = re.compile(r"^([a-z]+):([1-9][0-9]{0,9})$")
_RULE = re.compile(r"^[a-z][a-z0-9_]{0,31}$")


def _check_ledger(ck: _Checker, value: Any, plan: _Plan, refs: _Refs) -> None:
    """The action ledger: each claim names a record of the document by its id
    ("invoice:42") and is unique by rule, subject, stage and business date, as in the
    database. Restored claims stop the rules from acting again (PRODUCT.md §3, §5)."""
    seen: dict[tuple[Any, ...], str] = {}
    for path, rec in _records(
        ck, value, "ledger", LEDGER_KEYS, ("rule", "subject", "business_date")
    ):
        entry = {
            "rule": ck.field(rec, "rule", path, _pattern(_RULE, "a rule name such as notice")),
            "subject": ck.field(rec, "subject", path, _subject(refs)),
            "stage": ck.field(rec, "stage", path, _text(32, strip=False), ""),
            "business_date": ck.field(rec, "business_date", path, _required_date),
            "outcome": ck.field(rec, "outcome", path, _text(16, required=True), "done"),
            "detail": ck.field(rec, "detail", path, _text(1000, multiline=True, strip=False), ""),
            "created_at": ck.field(rec, "created_at", path, _time),
        }
        key = (entry["rule"], entry["subject"], entry["stage"], entry["business_date"])
        if None not in key:
            if key in seen:
                ck.fail(path, f"duplicate claim (also at {seen[key]})")
            seen[key] = path
            refs.claims[key] = path
        plan.ledger.append(entry)


def _pattern(pattern: re.Pattern[str], what: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str) or not pattern.match(value):
            raise FieldError(f"must be {what}")
        return value

    return check


def _subject(refs: _Refs) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        found = _SUBJECT.match(value) if isinstance(value, str) else None
        if found is None or found.group(1) not in SUBJECT_KINDS:
            raise FieldError(
                "must name a record such as invoice:42 (client, service, addon, domain, invoice)"
            )
        kind, number = found.group(1), int(found.group(2))
        if number not in refs.ids[kind]:
            raise FieldError(f"names no {kind} in the document (by its id)")
        return str(value)

    return check


@dataclass
class _Refs:
    """The ids the document gives its records, and the keys that must stay unique in the
    database, gathered while checking so references can be checked and clashes with
    rows already in the database reported by path (one query per table at the end)."""

    #: kind -> id -> (path of the record, its client's id)
    ids: dict[str, dict[int, tuple[str, int | None]]] = field(
        default_factory=lambda: defaultdict(dict)
    )
    #: client email key (``store.keys.email_key``) -> its path; invoice number -> its path
    emails: dict[str, str] = field(default_factory=dict)
    numbers: dict[str, str] = field(default_factory=dict)
    billed: dict[tuple[str, int, dt.date], str] = field(default_factory=dict)
    idempotency_keys: dict[str, str] = field(default_factory=dict)
    claims: dict[tuple[Any, ...], str] = field(default_factory=dict)

    def record_id(
        self, ck: _Checker, rec: dict[str, Any], path: str, kind: str, client_id: int | None
    ) -> int | None:
        """The record's optional ``id``, checked unique in the document; None when absent
        (the import gives it a new one)."""
        record_id = ck.field(rec, "id", path, lambda v: None if v is None else _positive_id(v))
        if record_id is None:
            return None
        known = self.ids[kind]
        if record_id in known:
            ck.fail(
                f"{path}.id", f"duplicate {kind} id {record_id} (also at {known[record_id][0]})"
            )
        else:
            known[record_id] = (path, client_id)
        return record_id

    def owner(self, kind: str, record_id: int) -> int | None:
        """The client of the document's ``kind`` record ``record_id`` (None: no such one)."""
        found = self.ids[kind].get(record_id)
        return None if found is None else found[1]

    def check_database(self, ck: _Checker) -> None:
        """Ids and unique keys the database already holds are refused, by path (a fixed
        number of queries per 10,000 records). Run when checking, and again inside the
        import's transaction, so a writer in between cannot make the import fail."""
        for key in sorted(emails_in_use(self.emails), key=self.emails.__getitem__):
            ck.fail(self.emails[key], "a client with this email already exists")
        for batch in chunks(sorted(self.numbers), 10_000):
            taken_numbers: Any = (
                Invoice.select(Invoice.number).where(Invoice.number.in_(list(batch))).tuples()
            )
            for (number,) in taken_numbers:
                ck.fail(self.numbers[number], f"duplicate invoice number {number}")
        for kind, model in (
            ("client", Client),
            ("card", StoredCard),
            ("service", Service),
            ("addon", Addon),
            ("domain", Domain),
            ("invoice", Invoice),
        ):
            for batch in chunks(sorted(self.ids[kind]), 10_000):
                rows: Any = model.select(model.id).where(model.id.in_(list(batch))).tuples()
                for (record_id,) in rows:
                    ck.fail(
                        f"{self.ids[kind][record_id][0]}.id", f"duplicate {kind} id {record_id}"
                    )
        keys = sorted(self.idempotency_keys)
        for batch in chunks(keys, 10_000):
            taken: Any = (
                Transaction.select(Transaction.idempotency_key)
                .where(Transaction.idempotency_key.in_(list(batch)))
                .tuples()
            )
            for (key,) in taken:
                ck.fail(self.idempotency_keys[key], "a transaction with this key already exists")
        for kind in BILLED_KINDS:
            wanted = sorted({rid for k, rid, _ in self.billed if k == kind})
            for batch in chunks(wanted, 10_000):
                items: Any = (
                    InvoiceItem.select(InvoiceItem.related_id, InvoiceItem.related_due_date)
                    .where(
                        (InvoiceItem.related_type == kind) & InvoiceItem.related_id.in_(list(batch))
                    )
                    .tuples()
                )
                for rid, due in items:
                    day = due if isinstance(due, dt.date) else dt.date.fromisoformat(str(due))
                    path = self.billed.get((kind, rid, day))
                    if path is not None:
                        ck.fail(
                            path, f"an invoice in the database already bills {kind} {rid} due {day}"
                        )
        subjects = sorted({key[1] for key in self.claims})
        for batch in chunks(subjects, 10_000):
            held: Any = (
                ActionLedger.select(
                    ActionLedger.rule,
                    ActionLedger.subject,
                    ActionLedger.stage,
                    ActionLedger.business_date,
                )
                .where(ActionLedger.subject.in_(list(batch)))
                .tuples()
            )
            for rule, subject, stage, day in held:
                day = day if isinstance(day, dt.date) else dt.date.fromisoformat(str(day))
                path = self.claims.get((rule, subject, stage, day))
                if path is not None:
                    ck.fail(path, "the database already holds this claim")


def _custom_values(
    ck: _Checker, value: Any, path: str, custom: dict[str, dict[str, Any]]
) -> dict[str, str]:
    if not isinstance(value, dict):
        ck.fail(path, "must be an object of field name to value")
        return {}
    out: dict[str, str] = {}
    for name, raw in value.items():
        spec = custom.get(name)
        if spec is None:
            ck.fail(f"{path}.{name}", "unknown custom field")
            continue
        try:
            out[name] = check_custom_value(
                spec["type"], spec["options"], spec["regex"], spec["required"], raw
            )
        except FieldError as exc:
            ck.fail(f"{path}.{name}", str(exc))
    return out


def _positive_id(value: Any) -> int:
    number = _int(value)
    if not 0 < number < 2**31:
        raise FieldError("must be a positive whole number")
    return number


def _known(known: dict[str, int] | set[str], message: str) -> Callable[[Any], str]:
    def check(value: Any) -> str:
        if not isinstance(value, str) or value not in known:
            raise FieldError(f"{message} {value!r}")
        return value

    return check


def _known_or_null(known: set[str], message: str) -> Callable[[Any], str | None]:
    check = _known(known, message)
    return lambda v: None if v is None else check(v)


def _gateway(value: Any) -> str:
    if value not in GATEWAYS:
        raise FieldError(f"unknown payment method; one of {', '.join(GATEWAYS)}")
    return str(value)


def _cycle(value: Any) -> str:
    return _choice(c.value for c in BillingCycle)(value)


def _money(decimals: int, *, allow_negative: bool = False) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if not isinstance(value, str):
            raise FieldError('must be a decimal string such as "9.99"')
        try:
            amount = parse_amount(value, decimals, allow_negative=allow_negative)
        except MoneyError as exc:
            raise FieldError(str(exc)) from exc
        if abs(amount) >= Decimal(10) ** 13:
            raise FieldError("is too large")
        return int(amount.scaleb(decimals))

    return check


def _last4(value: Any) -> str:
    if not isinstance(value, str) or not re.fullmatch(r"\d{4}", value):
        raise FieldError("must be four digits")
    return value


def _expiry(value: Any) -> str:
    return parse_expiry(value)


def _invoice_number(value: Any) -> str:
    if not isinstance(value, str) or not _INVOICE_NUMBER.match(value):
        raise FieldError("must be 1-32 letters, digits or / _ . -")
    return value


def _domain_name(value: Any) -> str:
    text = clean_text(value, 253, required=True)
    if not _DOMAIN.match(text):
        raise FieldError("not a domain name")
    return text.lower()


# --------------------------------------------------------------------------- writing


class _Ids:
    """Keeps the ids the document gives and hands out new ones, above the current maximum
    and every kept id, to records that come without, so rows can be bulk inserted."""

    def __init__(self, model: type[Model], kept: Iterable[int] = ()) -> None:
        self.model = model
        top = model.select(fn.MAX(model._meta.primary_key)).scalar() or 0
        self.next = max(top, max(kept, default=0)) + 1

    def take(self) -> int:
        value = self.next
        self.next += 1
        return value

    def keep(self, record_id: int | None) -> int:
        """``record_id`` when the document gave one, else a new id."""
        return self.take() if record_id is None else record_id


BATCH = 2000


def _insert(model: type[Model], rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), BATCH):
        model.insert_many(rows[start : start + BATCH]).execute()


def import_document(doc: Any) -> int:
    """Check, then write the whole document in one transaction; return clients imported.

    Raises ``ImportError_`` (nothing written) for a bad document, or when a writer that
    ran between the check and the transaction took one of its ids or keys (the unique
    indexes refuse what slips past the second check; the check is run again to name it).
    """
    plan = check_document(doc)
    try:
        with writer():
            if plan.settings:
                save_settings(plan.settings)
            write_reference(plan)
            # First, so a cron running meanwhile waits instead of taking one of these
            # numbers or invoice ids (it allocates numbers before choosing ids).
            sequences.raise_to(i["number"] for c in plan.clients for i in c["invoices"])
            again = _Checker()
            plan.refs.check_database(again)
            if again.errors:
                raise ImportError_(again.errors)
            _write_clients(plan)
            _write_ledger(plan)
            fill_anchor_days()
    except IntegrityError as exc:
        if not is_email_clash(exc):
            raise
        check_document(doc)  # names the clashing records
        raise ImportError_(
            [f"{DOCUMENT}: a client with one of these emails was added meanwhile"]
        ) from exc
    return len(plan.clients)


def import_file(path: Path) -> int:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ImportError_([f"{DOCUMENT}: not UTF-8 text: {exc.reason}"]) from exc
    return import_document(load_document(text))


def write_reference(plan: _Plan) -> None:
    """Write the reference sections. Raises ``ImportError_`` (in the caller's
    transaction, so nothing is kept) for a currency whose decimals would change under
    stored amounts (``rules.currencies.check_decimals_change``)."""
    for n, c in enumerate(plan.currencies):
        try:
            check_decimals_change(c["code"], c["decimals"])
        except ValidationError as exc:
            raise ImportError_(
                [f"currencies[{n}].{k}: {v}" for k, v in exc.errors.items()]
            ) from exc
    if any(c["is_default"] for c in plan.currencies):
        Currency.update(is_default=False).execute()
    for c in plan.currencies:
        Currency.insert(**c).on_conflict(
            conflict_target=[Currency.code],
            preserve=[
                Currency.prefix,
                Currency.suffix,
                Currency.decimals,
                Currency.rate,
                Currency.is_default,
            ],
        ).execute()
    for g in plan.groups:
        ClientGroup.insert(**g).on_conflict(
            conflict_target=[ClientGroup.name],
            preserve=[ClientGroup.colour, ClientGroup.discount_bp, ClientGroup.separate_invoices],
        ).execute()
    for t in plan.tax_rules:
        TaxRule.insert(**t).on_conflict(
            conflict_target=[TaxRule.level, TaxRule.country, TaxRule.state],
            preserve=[TaxRule.name, TaxRule.rate_e4],
        ).execute()
    for f in plan.custom_fields:
        row = dict(f, options=json.dumps(f["options"], ensure_ascii=False))
        CustomField.insert(**row).on_conflict(
            conflict_target=[CustomField.name],
            preserve=[
                CustomField.type,
                CustomField.options,
                CustomField.required,
                CustomField.admin_only,
                CustomField.regex,
                CustomField.sort_order,
            ],
        ).execute()


def _write_clients(plan: _Plan) -> None:
    if not plan.clients:
        return
    currency_ids = lookup(Currency, Currency.code, Currency.id)
    group_ids = lookup(ClientGroup, ClientGroup.name, ClientGroup.id)
    field_ids = lookup(CustomField, CustomField.name, CustomField.id)
    product_ids = lookup(Product, Product.name, Product.id)
    new_products = sorted(
        {s["product"] for c in plan.clients for s in c["services"]} - set(product_ids)
    )
    _insert(Product, [{"name": n} for n in new_products])
    product_ids = lookup(Product, Product.name, Product.id)

    taxes = TaxTable()
    settings = load_settings()
    kept: dict[type[Model], set[int]] = defaultdict(set)
    for c in plan.clients:
        kept[StoredCard].update(card["id"] for card in c["cards"])
        kept[Service].update(s["id"] for s in c["services"])
        kept[Addon].update(a["id"] for s in c["services"] for a in s["addons"])
        kept[Domain].update(d["id"] for d in c["domains"])
        kept[Invoice].update(i["id"] for i in c["invoices"])
    ids = {
        m: _Ids(m, (pk for pk in kept[m] if pk is not None))
        for m in (Contact, StoredCard, Service, Addon, Domain, Invoice, Email)
    }
    rows: dict[type[Model], list[dict[str, Any]]] = defaultdict(list)
    billing_links: list[tuple[int, int]] = []
    for c in plan.clients:
        cid = c["id"]
        client_row = {
            k: c[k]
            for k in (
                *ADDRESS_KEYS,
                "tax_id",
                "status",
                "payment_method",
                *PREFERENCE_KEYS,
                "admin_notes",
                "last_login_at",
            )
        }
        client_row.update(
            id=cid,
            currency=currency_ids[c["currency"]],
            group=group_ids.get(c["group"]) if c["group"] else None,
            **Client.derived_values(c),
        )
        if c["created_at"] is not None:
            client_row["created_at"] = c["created_at"]
            client_row["updated_at"] = c["created_at"]
        rows[Client].append(client_row)
        for contact in c["contacts"]:
            contact_id = ids[Contact].take()
            rows[Contact].append(
                dict(contact, id=contact_id, client=cid, **Contact.derived_values(contact))
            )
            if c["billing_contact"] and email_key(contact["email"]) == email_key(
                c["billing_contact"]
            ):
                billing_links.append((cid, contact_id))
        for name, value in c["custom_fields"].items():
            rows[CustomFieldValue].append({"client": cid, "field": field_ids[name], "value": value})
        rows[StoredCard].extend(
            dict(card, id=ids[StoredCard].keep(card["id"]), client=cid) for card in c["cards"]
        )
        for s in c["services"]:
            sid = ids[Service].keep(s["id"])
            addons = s.pop("addons")
            rows[Service].append(dict(s, id=sid, client=cid, product=product_ids[s["product"]]))
            rows[Addon].extend(
                dict(a, id=ids[Addon].keep(a["id"]), service=sid, client=cid) for a in addons
            )
        rows[Domain].extend(dict(d, id=ids[Domain].keep(d["id"]), client=cid) for d in c["domains"])
        for inv in c["invoices"]:
            iid = ids[Invoice].keep(inv["id"])
            items = inv.pop("items")
            if inv["tax_rate1_e4"] is None or inv["tax_rate2_e4"] is None:
                in_force = taxes.rates_for(
                    c["country"], c["state"], exempt=c["tax_exempt"], settings=settings
                )
                taxable = sum(it["amount"] for it in items if it["taxed"])
                derived = rates_from_amounts(taxable, inv["tax"], inv["tax2"], in_force, settings)
                if inv["tax_rate1_e4"] is None:
                    inv["tax_rate1_e4"] = derived.level1_e4
                if inv["tax_rate2_e4"] is None:
                    inv["tax_rate2_e4"] = derived.level2_e4
            rows[Invoice].append(dict(inv, id=iid, client=cid))
            rows[InvoiceItem].extend(
                dict(it, invoice=iid, sort_order=n) for n, it in enumerate(items)
            )
        rows[Transaction].extend(dict(t, client=cid) for t in c["transactions"])
        rows[Email].extend(_restored_email(e, ids[Email].take(), cid) for e in c["emails"])
    for model in (
        Client,
        Contact,
        CustomFieldValue,
        StoredCard,
        Service,
        Addon,
        Domain,
        Invoice,
        InvoiceItem,
        Transaction,
        Email,
    ):
        _insert(model, rows[model])
    bulk_update_column(Client, "billing_contact_id", billing_links)
    reset_sequences((Client, Contact, StoredCard, Service, Addon, Domain, Invoice, Email))


def _write_ledger(plan: _Plan) -> None:
    """The document's claims, as made in the original database (no run: runs stay there)."""
    now = utcnow()
    _insert(
        ActionLedger,
        [dict(entry, created_at=entry["created_at"] or now) for entry in plan.ledger],
    )


#: Shown in the email log for a restored email that was still on its way when exported.
NOT_DELIVERED_HERE = "restored by import as history: never delivered by this database"


def _restored_email(email: dict[str, Any], email_id: int, client_id: int) -> dict[str, Any]:
    """An email log row as history (PRODUCT.md §5): kept with its status, never delivered.

    The document has no body, and no ``unique_key``: every rule claims its action in
    the ledger (which the document carries) before queuing, so the keys add nothing to a
    restore, and a key naming an invoice id in a document whose invoices come without
    ids could stop another invoice's notice here.
    A ``queued`` or ``sending`` row keeps its status (the round trip gives the same
    bytes) and says in ``last_error`` why it stays so; ``imported`` keeps delivery and
    resending away from every restored row.
    """
    on_its_way = email["status"] in (EmailStatus.QUEUED, EmailStatus.SENDING)
    return dict(
        email,
        id=email_id,
        client=client_id,
        body_text="",
        imported=True,
        next_attempt_at=email["created_at"],
        last_error=NOT_DELIVERED_HERE if on_its_way else "",
    )
