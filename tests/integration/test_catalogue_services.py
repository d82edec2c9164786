"""The catalogue, services, addons, domains and Client Notes as staff change them
(issue 13): defaults from the catalogue, validation (nothing saved), rights, audit rows
with old and new values, the currency rule of PRODUCT.md §1, the taxed flag in
invoicing, and the cron acting on what staff added."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest
from playhouse.test_utils import count_queries

from rules.audit import Actor
from rules.billing.catalogue import (
    CatalogueInUse,
    delete_product,
    delete_product_addon,
    price_of,
    product_addons,
    products,
    save_product,
    save_product_addon,
)
from rules.billing.cron import run_rules
from rules.billing.services import (
    add_addon,
    add_domain,
    add_service,
    clean_hostname,
    client_billing,
    domains_of,
    services_of,
    update_addon,
    update_domain,
    update_service,
)
from rules.clients.currencies import check_decimals_change
from rules.clients.notes import (
    add_note,
    delete_note,
    notes_of,
    set_sticky,
    sticky_notes_of,
    update_note,
)
from rules.clients.profile import currency_usage
from rules.errors import FieldError, RuleError, ValidationError
from rules.permissions import PermissionDenied
from store.models import (
    Addon,
    AuditLog,
    Client,
    ClientNote,
    Currency,
    Domain,
    Invoice,
    InvoiceItem,
    Pricing,
    Product,
    Service,
    TaxRule,
)
from store.models.enums import ActorType, Source
from store.settings import load_settings, save_settings

ADMIN = Actor(ActorType.STAFF, "Ada Admin", Source.TUI, 1, "admin")
BILLING = Actor(ActorType.STAFF, "Bill Billing", Source.TUI, 2, "billing")
SUPPORT = Actor(ActorType.STAFF, "Sue Support", Source.TUI, 3, "support")
DAY = dt.date(2026, 3, 10)


def _setup() -> tuple[Client, Currency, Currency]:
    usd = Currency.create(code="USD", prefix="$", decimals=2, is_default=True)
    jpy = Currency.create(code="JPY", prefix="¥", decimals=0)
    client = Client.create(
        first_name="Ann", last_name="Lee", email="ann@example.com", currency=usd, country="GB"
    )
    return client, usd, jpy


def _product(usd: Currency, jpy: Currency, **extra: Any) -> Product:
    return save_product(
        {
            "name": "Starter",
            "type": "Hosting",
            "taxed": True,
            "prices": {
                (usd.id, "Monthly"): "9.99",
                (usd.id, "Annually"): "99.00",
                (jpy.id, "Monthly"): "1200",
            },
            **extra,
        },
        ADMIN,
    )


def _audit(entity: str) -> list[tuple[str, str, str, str]]:
    return [
        (a.action, a.field, a.old_value, a.new_value)
        for a in AuditLog.select().where(AuditLog.entity == entity).order_by(AuditLog.id)
    ]


# ------------------------------------------------------------------ catalogue


def test_catalogue_prices_per_currency_and_cycle_are_audited(db: str) -> None:
    _, usd, jpy = _setup()
    product = _product(usd, jpy)
    assert price_of("product", product.id, usd.id, "Monthly") == 999
    assert price_of("product", product.id, jpy.id, "Monthly") == 1200
    assert price_of("product", product.id, usd.id, "Quarterly") is None
    assert price_of("product", product.id, usd.id, "Free") == 0
    save_product(
        {"name": "Starter Plus", "taxed": False, "prices": {(usd.id, "Monthly"): "12.50"}},
        ADMIN,
        product.id,
    )
    [entry] = products()
    assert (entry.name, entry.taxed, entry.prices) == (
        "Starter Plus",
        False,
        {(usd.id, "Monthly"): 1250},
    )
    rows = _audit("product")
    assert ("update", "name", "Starter", "Starter Plus") in rows
    assert ("price", "USD Monthly", "9.99", "12.50") in rows  # in the currency's decimals
    assert ("price", "JPY Monthly", "1200", "") in rows


def test_catalogue_refuses_bad_input_and_saves_nothing(db: str) -> None:
    _, usd, jpy = _setup()
    _product(usd, jpy)
    before = (Product.select().count(), Pricing.select().count(), AuditLog.select().count())
    cases: list[tuple[dict[str, Any], str]] = [
        ({"name": ""}, "name"),
        ({"name": "Starter"}, "name"),  # taken
        ({"name": "X", "type": "Reseller"}, "type"),
        ({"name": "X", "prices": {(usd.id, "Monthly"): "9.999"}}, "price.USD.Monthly"),
        ({"name": "X", "prices": {(jpy.id, "Monthly"): "1.5"}}, "price.JPY.Monthly"),
        ({"name": "X", "prices": {(usd.id, "Monthly"): "-1"}}, "price.USD.Monthly"),
        ({"name": "X", "prices": {(usd.id, "Monthly"): "1e3"}}, "price.USD.Monthly"),
        ({"name": "X", "prices": {(usd.id, "Free"): "1"}}, "price.USD.Free"),
        ({"name": "X", "prices": {(usd.id, "Monthly"): "1000000000000"}}, "price.USD.Monthly"),
    ]
    for values, key in cases:
        with pytest.raises(ValidationError) as caught:
            save_product(values, ADMIN)
        assert key in caught.value.errors, (values, caught.value.errors)
    with pytest.raises(PermissionDenied):
        save_product({"name": "Y"}, BILLING)
    assert (Product.select().count(), Pricing.select().count(), AuditLog.select().count()) == before


def test_a_product_in_use_is_not_deleted_an_addon_is(db: str) -> None:
    client, usd, jpy = _setup()
    product = _product(usd, jpy)
    extra = save_product_addon({"name": "Backups", "prices": {(usd.id, "Monthly"): "2.00"}}, ADMIN)
    service = add_service(client.id, {"product_id": product.id}, BILLING)
    addon = add_addon(service.id, {"product_addon_id": extra.id}, BILLING)
    with pytest.raises(CatalogueInUse):
        delete_product(product.id, ADMIN)
    assert Product.select().count() == 1 and Pricing.select().count() == 4
    delete_product_addon(extra.id, ADMIN)
    assert product_addons() == []
    kept = Addon.get_by_id(addon.id)
    assert (kept.name, kept.amount, kept.product_addon_id) == ("Backups", 200, None)
    assert Pricing.select().where(Pricing.type == "addon").count() == 0
    Service.delete().execute()
    delete_product(product.id, ADMIN)
    assert Pricing.select().count() == 0
    assert ("delete", "", "Starter", "") in _audit("product")


def test_prices_hold_a_currency_s_decimals(db: str) -> None:
    """A price is in minor units: the currency's decimals cannot change under it."""
    _, usd, jpy = _setup()
    save_product({"name": "Yen only", "prices": {(jpy.id, "Monthly"): "500"}}, ADMIN)
    with pytest.raises(ValidationError) as caught:
        check_decimals_change("JPY", 2)
    assert "decimals" in caught.value.errors


# ------------------------------------------------------------------ services


def test_a_service_takes_the_catalogue_price_in_the_client_s_currency(db: str) -> None:
    client, usd, jpy = _setup()
    product = _product(usd, jpy)
    today = client_billing(client.id, BILLING).today
    service = add_service(
        client.id, {"product_id": product.id, "billing_cycle": "Annually"}, BILLING
    )
    row = Service.get_by_id(service.id)
    assert (row.amount, row.status, row.billing_cycle) == (9_900, "Active", "Annually")
    assert (row.next_due_date, row.anchor_day) == (today, today.day)
    assert row.payment_method == client.payment_method
    Client.update(currency=jpy).where(Client.id == client.id).execute()
    yen = add_service(client.id, {"product_id": product.id}, BILLING)
    assert Service.get_by_id(yen.id).amount == 1200
    typed = add_service(
        client.id,
        {"product_id": product.id, "amount": "1500", "next_due_date": "2026-01-31"},
        BILLING,
    )
    got = Service.get_by_id(typed.id)
    assert (got.amount, got.next_due_date, got.anchor_day) == (1500, dt.date(2026, 1, 31), 31)
    free = add_service(client.id, {"product_id": product.id, "billing_cycle": "Free"}, BILLING)
    assert Service.get_by_id(free.id).amount == 0
    [created, *_] = _audit("service")
    assert created[0] == "create" and "Starter Annually 99.00 USD Active" in created[3]


def test_a_service_refuses_bad_input_and_saves_nothing(db: str) -> None:
    client, usd, jpy = _setup()
    product = _product(usd, jpy)
    before = (Service.select().count(), AuditLog.select().count())
    cases: list[tuple[dict[str, Any], str]] = [
        ({}, "product_id"),
        ({"product_id": 999}, "product_id"),
        ({"product_id": product.id, "billing_cycle": "Weekly"}, "billing_cycle"),
        ({"product_id": product.id, "billing_cycle": "Quarterly"}, "amount"),  # no price
        ({"product_id": product.id, "amount": "abc"}, "amount"),
        ({"product_id": product.id, "amount": "1.234"}, "amount"),
        ({"product_id": product.id, "billing_cycle": "Free", "amount": "5"}, "amount"),
        ({"product_id": product.id, "status": "Happy"}, "status"),
        ({"product_id": product.id, "payment_method": "cash"}, "payment_method"),
        ({"product_id": product.id, "next_due_date": "0001-01-01"}, "next_due_date"),
        ({"product_id": product.id, "next_due_date": "31/01/2026"}, "next_due_date"),
        ({"product_id": product.id, "domain": "not a domain"}, "domain"),
        ({"product_id": product.id, "notes": "bell\x07"}, "notes"),
    ]
    for values, key in cases:
        with pytest.raises(ValidationError) as caught:
            add_service(client.id, values, BILLING)
        assert key in caught.value.errors, (values, caught.value.errors)
    with pytest.raises(PermissionDenied):
        add_service(client.id, {"product_id": product.id}, SUPPORT)
    with pytest.raises(RuleError):
        add_service(999, {"product_id": product.id}, BILLING)
    assert (Service.select().count(), AuditLog.select().count()) == before


def test_editing_a_service_audits_each_field_and_moves_the_anchor(db: str) -> None:
    client, usd, jpy = _setup()
    product = _product(usd, jpy)
    service = add_service(
        client.id, {"product_id": product.id, "next_due_date": "2026-01-31"}, BILLING
    )
    update_service(
        service.id,
        {
            "status": "Suspended",
            "billing_cycle": "Quarterly",
            "amount": "25.00",
            "next_due_date": "2026-02-15",
            "payment_method": "mailin",
            "domain": "Example.COM.",
            "notes": "moved to the new server",
        },
        BILLING,
    )
    row = Service.get_by_id(service.id)
    assert (row.status, row.billing_cycle, row.amount) == ("Suspended", "Quarterly", 2500)
    assert (row.next_due_date, row.anchor_day) == (dt.date(2026, 2, 15), 15)
    assert (row.payment_method, row.domain, row.notes) == (
        "mailin",
        "example.com",
        "moved to the new server",
    )
    changes = {f: (o, n) for a, f, o, n in _audit("service") if a == "update"}
    assert changes["amount"] == ("9.99", "25.00")
    assert changes["next_due_date"] == ("2026-01-31", "2026-02-15")
    assert changes["status"] == ("Active", "Suspended")
    count = AuditLog.select().count()
    update_service(service.id, {"status": "Suspended"}, BILLING)  # no change, no row
    assert AuditLog.select().count() == count
    with pytest.raises(ValidationError):
        update_service(service.id, {"billing_cycle": "Free", "amount": "3"}, BILLING)
    update_service(service.id, {"billing_cycle": "Free"}, BILLING)
    assert Service.get_by_id(service.id).amount == 0
    [listed] = services_of(client.id, SUPPORT)
    assert listed.product_name == "Starter" and listed.addons == []


def test_addons_from_the_catalogue_or_by_name(db: str) -> None:
    client, usd, jpy = _setup()
    product = _product(usd, jpy)
    backups = save_product_addon(
        {"name": "Backups", "taxed": False, "prices": {(usd.id, "Monthly"): "2.00"}}, ADMIN
    )
    service = add_service(client.id, {"product_id": product.id}, BILLING)
    first = add_addon(service.id, {"product_addon_id": backups.id}, BILLING)
    row = Addon.get_by_id(first.id)
    assert (row.name, row.amount, row.billing_cycle, row.client_id) == (
        "Backups",
        200,
        "Monthly",
        client.id,
    )
    with pytest.raises(ValidationError) as caught:
        add_addon(service.id, {}, BILLING)
    assert "name" in caught.value.errors
    with pytest.raises(ValidationError) as caught:
        add_addon(
            service.id, {"product_addon_id": backups.id, "billing_cycle": "Annually"}, BILLING
        )
    assert "amount" in caught.value.errors
    second = add_addon(service.id, {"name": "Extra IP", "amount": "3.00"}, BILLING)
    update_addon(second.id, {"amount": "4.00", "next_due_date": "2026-05-30"}, BILLING)
    got = Addon.get_by_id(second.id)
    assert (got.amount, got.anchor_day) == (400, 30)
    [listed] = services_of(client.id, BILLING)
    assert [a.name for a in listed.addons] == ["Backups", "Extra IP"]
    assert ("update", "amount", "3.00", "4.00") in _audit("addon")


def test_domain_names_are_validated_and_normalised(db: str) -> None:
    client, _, _ = _setup()
    assert clean_hostname("  Bücher.DE. ") == "bücher.de"
    assert clean_hostname("xn--bcher-kva.de") == "bücher.de"
    assert clean_hostname("ＥＸＡＭＰＬＥ.com") == "example.com"
    for bad in ("", "localhost", "a_b.com", "-bad.com", "a..com", "x" * 64 + ".com", "a b.com"):
        with pytest.raises(FieldError):
            clean_hostname(bad)
    domain = add_domain(client.id, {"name": "Example.org", "amount": "15.00"}, BILLING)
    row = Domain.get_by_id(domain.id)
    assert (row.name, row.amount, row.status) == ("example.org", 1500, "Active")
    with pytest.raises(ValidationError) as caught:
        add_domain(client.id, {"name": "bad_name.org", "status": "Parked"}, BILLING)
    assert set(caught.value.errors) == {"name", "status"}
    update_domain(domain.id, {"status": "Expired", "next_due_date": "2027-02-28"}, BILLING)
    assert Domain.get_by_id(domain.id).anchor_day == 28
    assert [d.name for d in domains_of(client.id, SUPPORT)] == ["example.org"]
    assert ("update", "status", "Active", "Expired") in _audit("domain")
    with pytest.raises(PermissionDenied):
        update_domain(domain.id, {"amount": "1.00"}, SUPPORT)


def test_the_first_service_fixes_the_client_s_currency(db: str) -> None:
    """PRODUCT.md §1: after the first order the profile's currency change warns."""
    client, usd, jpy = _setup()
    assert not currency_usage(client.id).in_use
    add_service(client.id, {"product_id": _product(usd, jpy).id}, BILLING)
    assert currency_usage(client.id).services == 1 and currency_usage(client.id).in_use


# ------------------------------------------------------------------ invoicing


def test_an_untaxed_product_s_items_are_untaxed_domains_stay_taxed(db: str) -> None:
    client, usd, jpy = _setup()
    save_settings({"tax_enabled": True})
    TaxRule.create(level=1, name="VAT", country="GB", state="", rate_e4=200_000)
    free_of_tax = _product(usd, jpy, taxed=False)
    service = add_service(
        client.id, {"product_id": free_of_tax.id, "next_due_date": DAY.isoformat()}, BILLING
    )
    taxed_addon = save_product_addon({"name": "Backups", "taxed": True}, ADMIN)
    untaxed_addon = save_product_addon({"name": "SSL", "taxed": False}, ADMIN)
    for addon in (taxed_addon, untaxed_addon):
        add_addon(
            service.id,
            {"product_addon_id": addon.id, "amount": "10.00", "next_due_date": DAY.isoformat()},
            BILLING,
        )
    add_addon(
        service.id,
        {"name": "By hand", "amount": "10.00", "next_due_date": DAY.isoformat()},
        BILLING,
    )
    add_domain(
        client.id,
        {"name": "ann.example", "amount": "10.00", "next_due_date": DAY.isoformat()},
        BILLING,
    )
    run_rules(DAY, load_settings(), only=("invoice",))
    taxed = {i.description.split(" (")[0]: i.taxed for i in InvoiceItem.select()}
    assert taxed == {
        "Hosting: Starter": False,
        "Addon: Backups": True,
        "Addon: SSL": False,
        "Addon: By hand": True,
        "Domain renewal: ann.example": True,
    }
    invoice = Invoice.get()
    assert invoice.tax == 6_00  # 20% of the three taxed 10.00 items


def test_a_group_discount_is_taxed_as_what_it_discounts(db: str) -> None:
    from store.models import ClientGroup

    client, usd, jpy = _setup()
    save_settings({"tax_enabled": True})
    TaxRule.create(level=1, name="VAT", country="GB", state="", rate_e4=200_000)
    group = ClientGroup.create(name="VIP", discount_bp=1000)
    Client.update(group=group).where(Client.id == client.id).execute()
    untaxed = _product(usd, jpy, taxed=False)
    service = add_service(
        client.id,
        {"product_id": untaxed.id, "amount": "100.00", "next_due_date": DAY.isoformat()},
        BILLING,
    )
    add_addon(
        service.id, {"name": "IP", "amount": "100.00", "next_due_date": DAY.isoformat()}, BILLING
    )
    run_rules(DAY, load_settings(), only=("invoice",))
    invoice = Invoice.get()
    discounts = sorted(
        (i.amount, i.taxed) for i in InvoiceItem.select().where(InvoiceItem.type == "Item")
    )
    assert discounts == [(-10_00, False), (-10_00, True)]
    assert (invoice.subtotal, invoice.tax, invoice.total) == (180_00, 18_00, 198_00)


def test_invoicing_reads_the_taxed_flags_in_a_fixed_number_of_queries(
    databases: Any, reopen: Any
) -> None:
    from rules.billing.automation import RunContext
    from rules.billing.invoicing import _due_items

    counts = []
    for n in (3, 40):
        reopen(databases.new_url())
        client, usd, jpy = _setup()
        product = _product(usd, jpy, taxed=False)
        extra = save_product_addon({"name": "Backups", "taxed": False}, ADMIN)
        for _ in range(n):
            service = add_service(
                client.id, {"product_id": product.id, "next_due_date": DAY.isoformat()}, BILLING
            )
            add_addon(
                service.id,
                {"product_addon_id": extra.id, "amount": "1", "next_due_date": DAY.isoformat()},
                BILLING,
            )
        ctx = RunContext(DAY, load_settings())
        with count_queries() as counter:
            items = _due_items(ctx)
        assert len(items) == 2 * n and not any(i.taxed for i in items)
        counts.append(counter.count)
    assert counts[0] == counts[1] == 4, counts


def test_the_cron_makes_a_client_with_a_new_active_service_active_and_invoices_it(
    db: str,
) -> None:
    client, usd, jpy = _setup()
    Client.update(status="Inactive").where(Client.id == client.id).execute()
    product = _product(usd, jpy)
    add_service(client.id, {"product_id": product.id, "next_due_date": DAY.isoformat()}, BILLING)
    run_rules(DAY, load_settings())
    assert Client.get_by_id(client.id).status == "Active"
    [item] = InvoiceItem.select()
    assert item.amount == 999 and Invoice.get().client_id == client.id


# ------------------------------------------------------------------ notes


def test_client_notes_add_edit_stick_delete_audited(db: str) -> None:
    client, _, _ = _setup()
    first = add_note(client.id, "Called about the renewal", SUPPORT)
    second = add_note(client.id, "VIP: never suspend", BILLING, sticky=True)
    assert [n.id for n in notes_of(client.id, SUPPORT)] == [second.id, first.id]
    assert [n.author for n in sticky_notes_of(client.id, SUPPORT)] == ["Bill Billing"]
    assert ClientNote.get_by_id(first.id).staff_id == SUPPORT.id
    update_note(first.id, SUPPORT, note="Called twice about the renewal")
    set_sticky(first.id, True, SUPPORT)
    assert {n.id for n in sticky_notes_of(client.id, SUPPORT)} == {first.id, second.id}
    for bad in ("", "   ", "x" * 10_001, "a\x1b[31m"):
        with pytest.raises(ValidationError):
            add_note(client.id, bad, SUPPORT)
    delete_note(second.id, SUPPORT)
    with pytest.raises(RuleError):
        delete_note(second.id, SUPPORT)
    rows = _audit("client_note")
    assert rows == [
        ("create", "", "", "Called about the renewal"),
        ("create", "", "", "[sticky] VIP: never suspend"),
        ("update", "note", "Called about the renewal", "Called twice about the renewal"),
        ("update", "sticky", "False", "True"),
        ("delete", "", "VIP: never suspend", ""),
    ]
    assert ClientNote.select().count() == 1


def test_money_is_decimal_in_minor_units_out(db: str) -> None:
    client, usd, jpy = _setup()
    product = _product(usd, jpy)
    service = add_service(client.id, {"product_id": product.id, "amount": Decimal("7.5")}, BILLING)
    assert Service.get_by_id(service.id).amount == 750


# ------------------------------------------------------------------ the command line


def test_service_add_command_prices_from_the_catalogue_and_refuses_in_one_line(
    databases: Any,
) -> None:
    import json
    import os
    import subprocess
    import sys

    from store.db import close_database

    url = databases.new_url()
    databases.open(url)
    client, usd, jpy = _setup()
    _product(usd, jpy)
    close_database()

    def gobiller(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tui.cli", "--database", url, "service", "add", *args],
            capture_output=True,
            text=True,
            env=os.environ,
            timeout=120,
        )

    done = gobiller(str(client.id), "--product", "Starter", "--cycle", "Annually", "--json")
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    assert (data["amount"], data["currency"], data["status"]) == ("99.00", "USD", "Active")
    text = gobiller(
        str(client.id), "--product", "1", "--amount", "5.00", "--next-due", "2026-04-30"
    )
    assert text.returncode == 0 and "5.00 USD" in text.stdout and "2026-04-30" in text.stdout
    refusals = [
        (["--product", "Nope"], "--product"),
        (["--product", "²"], "--product"),  # a digit to str.isdigit, not to int()
        (["--product", "Starter", "--cycle", "Quarterly"], "--amount: no catalogue price"),
        (["--product", "Starter", "--amount", "1.234"], "--amount"),
        (["--product", "Starter", "--next-due", "2026-02-30"], "--next-due"),
    ]
    for args, words in refusals:
        out = gobiller(str(client.id), *args, "--json")
        assert out.returncode == 1, (args, out.stderr)
        assert words in json.loads(out.stdout)["error"] and not out.stderr, args
        plain = gobiller(str(client.id), *args)
        assert plain.returncode == 1 and plain.stderr.count("\n") == 1, plain.stderr
        assert "Traceback" not in plain.stderr
    missing = gobiller("999", "--product", "Starter", "--json")
    assert missing.returncode == 1 and "no client 999" in json.loads(missing.stdout)["error"]
    databases.open(url)
    assert Service.select().count() == 2
