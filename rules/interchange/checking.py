"""`gobiller import`, first half: every record of a document checked before any write."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from functools import partial
from typing import Any

from rules.clients.fields import TEXT_LIMITS
from rules.clients.profile import emails_in_use
from rules.clients.validation import (
    check_custom_value,
    check_pattern,
    clean_country,
    clean_email,
    clean_phone,
    clean_state,
    clean_text,
)
from rules.dates import parse_expiry
from rules.errors import FieldError
from rules.interchange.schema import (
    _COLOUR,
    _DOMAIN,
    _INVOICE_NUMBER,
    ADDON_KEYS,
    BILLED_KINDS,
    CARD_KEYS,
    CLIENT_KEYS,
    CONTACT_KEYS,
    CREDIT_KEYS,
    CURRENCY_KEYS,
    CUSTOM_FIELD_KEYS,
    DOCUMENT,
    DOMAIN_KEYS,
    EMAIL_KEYS,
    FORMAT,
    GROUP_KEYS,
    INVOICE_KEYS,
    ITEM_KEYS,
    LEDGER_KEYS,
    NOTE_KEYS,
    NUMBER_DIGITS_MAX,
    PREFERENCE_KEYS,
    PRICE_KEYS,
    PRODUCT_ADDON_KEYS,
    PRODUCT_KEYS,
    RELATED_KEYS,
    SERVICE_KEYS,
    SUBJECT_KINDS,
    TAX_KEYS,
    TOP_KEYS,
    TRANSACTION_KEYS,
    ImportError_,
    _bool,
    _Checker,
    _choice,
    _currency_code,
    _date,
    _int,
    _percent,
    _rate,
    _required_date,
    _required_time,
    _text,
    _time,
)
from rules.mail.templates import SUBJECT_MAX
from store.keys import email_key, region_key
from store.models import (
    ActionLedger,
    Addon,
    Client,
    ClientGroup,
    Currency,
    CustomField,
    Domain,
    Invoice,
    InvoiceItem,
    ProductAddon,
    Service,
    StoredCard,
    TaxRule,
    Transaction,
)
from store.models.clients import NOTES_MAX
from store.models.enums import (
    GATEWAYS,
    BillingCycle,
    ClientStatus,
    CustomFieldType,
    DomainStatus,
    EmailStatus,
    InvoiceStatus,
    ItemType,
    ProductType,
    ServiceStatus,
)
from store.models.notes import NOTE_MAX
from store.money import MoneyError, parse_amount
from store.queries import among, column, lookup
from store.settings import (
    INTERCHANGE_SETTINGS,
    SettingsError,
)

# --------------------------------------------------------------------------- importing


@dataclass
class _Plan:
    """The checked document, ready to write."""

    settings: dict[str, Any] = field(default_factory=dict)
    currencies: list[dict[str, Any]] = field(default_factory=list)
    groups: list[dict[str, Any]] = field(default_factory=list)
    tax_rules: list[dict[str, Any]] = field(default_factory=list)
    custom_fields: list[dict[str, Any]] = field(default_factory=list)
    products: list[dict[str, Any]] = field(default_factory=list)
    product_addons: list[dict[str, Any]] = field(default_factory=list)
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

    plan.products = _catalogue(ck, top.get("products", []), "products", currencies)
    plan.product_addons = _catalogue(
        ck, top.get("product_addons", []), "product_addons", currencies
    )
    addon_names = column(ProductAddon, ProductAddon.name) | {
        a["name"] for a in plan.product_addons if a["name"]
    }
    refs = plan.refs
    refs.product_addons = addon_names
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
        client["credit"] = ck.field(rec, "credit", path, _money(decimals), 0)
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
            service["notes"] = ck.field(srec, "notes", spath, _text(5000, multiline=True), "")
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
                addon["product_addon"] = ck.field(
                    arec,
                    "product_addon",
                    apath,
                    _known_or_null(refs.product_addons, "unknown product addon"),
                )
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
        client["credits"] = [
            _credit(ck, r, p, decimals, refs, cid)
            for p, r in _records(
                ck, rec.get("credits", []), f"{path}.credits", CREDIT_KEYS, ("date", "amount")
            )
        ]
        if client["credits"] and isinstance(client["credit"], int):
            moved = [c["amount"] for c in client["credits"]]
            if all(isinstance(a, int) for a in moved) and sum(moved) != client["credit"]:
                ck.fail(f"{path}.credit", "must equal the sum of the credits' amounts")
        client["notes"] = [
            {
                "note": ck.field(r, "note", p, _text(NOTE_MAX, required=True, multiline=True)),
                "author": ck.field(r, "author", p, _text(150), ""),
                "sticky": ck.field(r, "sticky", p, _bool, False),
                "created_at": ck.field(r, "created_at", p, _required_time),
                "updated_at": ck.field(r, "updated_at", p, _required_time),
            }
            for p, r in _records(
                ck, rec.get("notes", []), f"{path}.notes", NOTE_KEYS, ("note", "created_at")
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


def _catalogue(
    ck: _Checker, value: Any, path: str, currencies: dict[str, int]
) -> list[dict[str, Any]]:
    """The ``products`` or ``product_addons`` section: unique names, a type (products),
    the taxed flag (true unless said), and prices, one per currency and billing cycle,
    each in a known currency and never for Free (a Free item costs nothing)."""
    products = path == "products"
    keys = PRODUCT_KEYS if products else PRODUCT_ADDON_KEYS
    found: list[dict[str, Any]] = []
    names: set[str] = set()
    for p, rec in _records(ck, value, path, keys, ("name",)):
        item: dict[str, Any] = {
            "name": ck.field(rec, "name", p, _text(150, required=True)),
            "taxed": ck.field(rec, "taxed", p, _bool, True),
            "description": ck.field(rec, "description", p, _text(5000, multiline=True), ""),
        }
        if products:
            item["type"] = ck.field(
                rec, "type", p, _choice(t.value for t in ProductType), ProductType.HOSTING
            )
        if item["name"] in names:
            ck.fail(f"{p}.name", f"duplicate name {item['name']!r}")
        names.add(item["name"])
        prices: list[dict[str, Any]] = []
        seen: set[tuple[str, str]] = set()
        for pp, price in _records(ck, rec.get("prices", []), f"{p}.prices", PRICE_KEYS, PRICE_KEYS):
            code = ck.field(price, "currency", pp, _known(currencies, "unknown currency"))
            cycle = ck.field(price, "billing_cycle", pp, _cycle)
            if cycle == BillingCycle.FREE:
                ck.fail(f"{pp}.billing_cycle", "a Free item has no price")
            amount = ck.field(price, "amount", pp, _money(currencies.get(code or "", 2)))
            if (code, cycle) in seen:
                ck.fail(pp, f"a second price in {code} for {cycle}")
            seen.add((code, cycle))
            prices.append({"currency": code, "billing_cycle": cycle, "amount": amount})
        item["prices"] = prices
        found.append(item)
    return found


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
        "credit": ck.field(rec, "credit", path, _money(decimals), 0),
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
    invoice = _own_invoice(ck, rec, path, refs, client_id)
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


def _own_invoice(
    ck: _Checker, rec: dict[str, Any], path: str, refs: _Refs, client_id: int | None
) -> int | None:
    """The record's ``invoice``: null, or the id of one of this client's invoices in the
    document (a transaction or credit on another client's invoice is refused)."""
    invoice = ck.field(rec, "invoice", path, lambda v: None if v is None else _positive_id(v))
    if invoice is not None and refs.owner("invoice", invoice) != client_id:
        ck.fail(f"{path}.invoice", "not the id of one of this client's invoices")
    return invoice


def _credit(
    ck: _Checker,
    rec: dict[str, Any],
    path: str,
    decimals: int,
    refs: _Refs,
    client_id: int | None,
) -> dict[str, Any]:
    """A movement of the client's credit balance (``store.models.Credit``): added
    (positive) or applied (negative) to one of this client's invoices, by id."""
    invoice = _own_invoice(ck, rec, path, refs, client_id)
    return {
        "date": ck.field(rec, "date", path, _required_date),
        "description": ck.field(rec, "description", path, _text(1000, strip=False), ""),
        "amount": ck.field(rec, "amount", path, _money(decimals, allow_negative=True)),
        "invoice": invoice,
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
    #: Product addon names an addon may name: the document's and the database's.
    product_addons: set[str] = field(default_factory=set)

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
        number of queries whatever the count: the keys go as one parameter,
        ``store.queries.among``). Run when checking, and again inside the
        import's transaction, so a writer in between cannot make the import fail."""
        for key in sorted(emails_in_use(self.emails), key=self.emails.__getitem__):
            ck.fail(self.emails[key], "a client with this email already exists")
        taken_numbers: Any = (
            Invoice.select(Invoice.number).where(among(Invoice.number, self.numbers)).tuples()
        )
        for (number,) in sorted(taken_numbers):
            ck.fail(self.numbers[number], f"duplicate invoice number {number}")
        for kind, model in (
            ("client", Client),
            ("card", StoredCard),
            ("service", Service),
            ("addon", Addon),
            ("domain", Domain),
            ("invoice", Invoice),
        ):
            rows: Any = model.select(model.id).where(among(model.id, self.ids[kind])).tuples()
            for (record_id,) in sorted(rows):
                ck.fail(f"{self.ids[kind][record_id][0]}.id", f"duplicate {kind} id {record_id}")
        taken: Any = (
            Transaction.select(Transaction.idempotency_key)
            .where(among(Transaction.idempotency_key, self.idempotency_keys))
            .tuples()
        )
        for (key,) in sorted(taken):
            ck.fail(self.idempotency_keys[key], "a transaction with this key already exists")
        for kind in BILLED_KINDS:
            wanted = {rid for k, rid, _ in self.billed if k == kind}
            items: Any = (
                InvoiceItem.select(InvoiceItem.related_id, InvoiceItem.related_due_date)
                .where((InvoiceItem.related_type == kind) & among(InvoiceItem.related_id, wanted))
                .order_by(InvoiceItem.related_id, InvoiceItem.related_due_date)
                .tuples()
            )
            for rid, due in items:
                day = due if isinstance(due, dt.date) else dt.date.fromisoformat(str(due))
                path = self.billed.get((kind, rid, day))
                if path is not None:
                    ck.fail(
                        path, f"an invoice in the database already bills {kind} {rid} due {day}"
                    )
        held: Any = (
            ActionLedger.select(
                ActionLedger.rule,
                ActionLedger.subject,
                ActionLedger.stage,
                ActionLedger.business_date,
            )
            .where(among(ActionLedger.subject, {key[1] for key in self.claims}))
            .order_by(ActionLedger.subject, ActionLedger.id)
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
