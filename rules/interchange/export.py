"""``gobiller export``: the interchange document (PRODUCT.md §5) built from the database."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from rules.interchange.schema import (
    ADDRESS_KEYS,
    CARD_KEYS,
    CONTACT_KEYS,
    FORMAT,
    PREFERENCE_KEYS,
    _date_text,
    _money_text,
    _percent_text,
    _time_text,
)
from store.files import write_atomically
from store.models import (
    ActionLedger,
    Addon,
    Client,
    ClientGroup,
    ClientNote,
    Contact,
    Credit,
    Currency,
    CustomField,
    CustomFieldValue,
    Domain,
    Email,
    Invoice,
    InvoiceItem,
    Pricing,
    Product,
    ProductAddon,
    Service,
    StoredCard,
    TaxRule,
    Transaction,
)
from store.models.enums import PricingType
from store.settings import (
    interchange_settings,
    load_settings,
)

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
    credits = _grouped(Credit.select().order_by(Credit.id), "client_id")
    notes = _grouped(ClientNote.select().order_by(ClientNote.id), "client_id")
    catalogue_addons = list(ProductAddon.select().order_by(ProductAddon.id))
    product_addons = {a.id: a.name for a in catalogue_addons}
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
            "credit": money(c.credit),
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
                    "notes": s.notes,
                    "addons": [
                        {
                            "id": a.id,
                            "name": a.name,
                            "product_addon": product_addons.get(a.product_addon_id),
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
                    "credit": money(i.credit),
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
            "credits": [
                {
                    "date": _date_text(x.date),
                    "description": x.description,
                    "amount": money(x.amount),
                    "invoice": x.invoice_id,
                }
                for x in credits.get(c.id, [])
            ],
            "notes": [
                {
                    "note": n.note,
                    "author": n.author,
                    "sticky": n.sticky,
                    "created_at": _time_text(n.created_at),
                    "updated_at": _time_text(n.updated_at),
                }
                for n in notes.get(c.id, [])
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
        **build_catalogue(by_currency, catalogue_addons),
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
        if not number.isdecimal() or int(number) not in present.get(kind, ()):
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


def build_catalogue(
    by_currency: dict[int, Currency], product_addons: list[ProductAddon]
) -> dict[str, list[dict[str, Any]]]:
    """The catalogue sections (``products``, ``product_addons``), each with its prices per
    currency and billing cycle, in the order they were written (ids), as an import of the
    document writes them again. ``product_addons``: the catalogue's addons in id order."""
    prices: dict[tuple[str, int], list[dict[str, Any]]] = defaultdict(list)
    for price in Pricing.select().order_by(Pricing.id):
        currency = by_currency[price.currency_id]
        prices[(price.type, price.related_id)].append(
            {
                "currency": currency.code,
                "billing_cycle": price.billing_cycle,
                "amount": _money_text(price.amount, currency.decimals),
            }
        )
    return {
        "products": [
            {
                "name": x.name,
                "type": x.type,
                "taxed": x.taxed,
                "description": x.description,
                "prices": prices.get((PricingType.PRODUCT, x.id), []),
            }
            for x in Product.select().order_by(Product.id)
        ],
        "product_addons": [
            {
                "name": x.name,
                "taxed": x.taxed,
                "description": x.description,
                "prices": prices.get((PricingType.ADDON, x.id), []),
            }
            for x in product_addons
        ],
    }


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
