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

import json
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from peewee import IntegrityError, Model, fn

from rules.billing.invoicing import fill_anchor_days
from rules.billing.tax import TaxTable, rates_from_amounts
from rules.clients.currencies import check_decimals_change
from rules.clients.profile import is_email_clash
from rules.errors import ValidationError
from rules.interchange.checking import _Plan, check_document, load_document
from rules.interchange.schema import ADDRESS_KEYS, DOCUMENT, PREFERENCE_KEYS, ImportError_, _Checker
from store import sequences
from store.bulk import analyze, bulk_update, reset_sequences
from store.db import writer
from store.keys import email_key
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
    utcnow,
)
from store.models.enums import (
    EmailStatus,
    PricingType,
)
from store.queries import lookup
from store.settings import (
    load_settings,
    save_settings,
)

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
            _write_catalogue(plan)
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
    stored amounts (``rules.clients.currencies.check_decimals_change``)."""
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


def _write_catalogue(plan: _Plan) -> None:
    """Products and product addons by name (a name already in the database takes the
    document's type, taxed flag and description) and their prices by currency and
    billing cycle (a price already there takes the document's amount): one statement
    per table and ``BATCH`` rows."""
    currency_ids = lookup(Currency, Currency.code, Currency.id)
    prices: list[dict[str, Any]] = []
    for model, kind, items in (
        (Product, PricingType.PRODUCT, plan.products),
        (ProductAddon, PricingType.ADDON, plan.product_addons),
    ):
        if not items:
            continue
        kept = [model.type] if model is Product else []
        rows = [{k: v for k, v in item.items() if k != "prices"} for item in items]
        for start in range(0, len(rows), BATCH):
            model.insert_many(rows[start : start + BATCH]).on_conflict(
                conflict_target=[model.name],
                preserve=[*kept, model.taxed, model.description],
            ).execute()
        ids = lookup(model, model.name, model.id)
        prices.extend(
            {
                "type": kind,
                "related_id": ids[item["name"]],
                "currency": currency_ids[price["currency"]],
                "billing_cycle": price["billing_cycle"],
                "amount": price["amount"],
            }
            for item in items
            for price in item["prices"]
        )
    for start in range(0, len(prices), BATCH):
        Pricing.insert_many(prices[start : start + BATCH]).on_conflict(
            conflict_target=[
                Pricing.type,
                Pricing.related_id,
                Pricing.currency,
                Pricing.billing_cycle,
            ],
            preserve=[Pricing.amount],
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
    addon_ids = lookup(ProductAddon, ProductAddon.name, ProductAddon.id)

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
                "credit",
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
                dict(
                    a,
                    id=ids[Addon].keep(a["id"]),
                    service=sid,
                    client=cid,
                    product_addon=addon_ids.get(a["product_addon"]),
                )
                for a in addons
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
        rows[Credit].extend(dict(x, client=cid) for x in c["credits"])
        rows[ClientNote].extend(dict(n, client=cid) for n in c["notes"])
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
        Credit,
        ClientNote,
        Email,
    ):
        _insert(model, rows[model])
    bulk_update(Client, ("billing_contact_id",), billing_links)
    reset_sequences((Client, Contact, StoredCard, Service, Addon, Domain, Invoice, Email))
    if sum(len(loaded) for loaded in rows.values()) >= 10_000:  # autovacuum sees to less
        analyze(model for model in rows if rows[model])


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
