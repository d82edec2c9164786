"""Region matching follows what people type: a state/region written as a code or a name,
in any case, is one region for the tax rules (PRODUCT.md §3), on every path that saves one."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from rules.audit import SYSTEM_CLI
from rules.billing.cron import run_rules
from rules.clients.profile import add_contact, create_client, update_client, update_contact
from rules.errors import ValidationError
from rules.interchange.importer import import_document
from rules.interchange.reference import save
from rules.interchange.schema import ImportError_
from store.models import Client, Contact, Currency, Invoice, Product, Service, TaxRule
from store.settings import load_settings

DAY = dt.date(2026, 6, 6)


def _doc(clients: list[dict[str, Any]], tax_rules: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "format": "gobiller/1",
        "currencies": [
            {
                "code": "USD",
                "prefix": "$",
                "suffix": "",
                "decimals": 2,
                "rate": "1",
                "default": True,
            }
        ],
        "tax_rules": tax_rules,
        "clients": clients,
    }


def _client(cid: int, country: str, state: str) -> dict[str, Any]:
    return {
        "id": cid,
        "first_name": f"C{cid}",
        "last_name": "Ortega",
        "email": f"c{cid}@example.net",
        "country": country,
        "state": state,
        "currency": "USD",
        "services": [
            {
                "product": "Hosting",
                "status": "Active",
                "billing_cycle": "Monthly",
                "amount": "100.00",
                "next_due_date": "2026-06-20",
                "payment_method": "banktransfer",
            }
        ],
    }


RULES = [
    {"level": 1, "name": "California sales tax", "country": "US", "state": "CA", "rate": "7.25"},
    {"level": 1, "name": "Vorarlberg", "country": "AT", "state": "Vorarlberg", "rate": "20"},
    # Hong Kong has no ISO 3166-2 subdivisions: free text, matched without case.
    {"level": 1, "name": "Kowloon levy", "country": "HK", "state": "Kowloon", "rate": "5"},
]

#: (country, state as typed) -> tax on 100.00
TYPED = {
    ("US", "CA"): "7.25",
    ("US", "ca"): "7.25",
    ("US", "Ca"): "7.25",
    ("US", " ca "): "7.25",
    ("US", "us-ca"): "7.25",
    ("US", "California"): "7.25",
    ("US", "CALIFORNIA"): "7.25",
    ("US", "NV"): "0.00",
    ("US", "Nevada"): "0.00",
    ("AT", "vorarlberg"): "20.00",
    ("AT", "VORARLBERG"): "20.00",
    ("AT", "8"): "20.00",  # its ISO code, AT-8
    ("AT", "Tirol"): "0.00",
    ("HK", "kowloon"): "5.00",
    ("HK", "KOWLOON"): "5.00",
    ("HK", "Lantau"): "0.00",
}


def test_region_matching_follows_what_people_type(db: str) -> None:
    """Imported clients, and clients written before states were normalised, are taxed by
    the rule for their region however the state was typed."""
    typed = list(TYPED.items())
    import_document(_doc([_client(100 + n, c, s) for n, ((c, s), _) in enumerate(typed)], RULES))
    # Rows written without the rules (older data, other tools) keep the state as typed:
    # the tax table normalises the client's state when it looks up, too.
    usd = Currency.get(Currency.code == "USD")
    hosting = Product.get(Product.name == "Hosting")
    for n, ((country, state), _) in enumerate(typed):
        raw = Client.create(
            id=500 + n,
            first_name=f"R{n}",
            last_name="Raw",
            email=f"raw{n}@example.net",
            country=country,
            state=state,
            currency=usd,
        )
        Service.create(
            client=raw,
            product=hosting,
            status="Active",
            billing_cycle="Monthly",
            amount=10_000,
            next_due_date=dt.date(2026, 6, 20),
            payment_method="banktransfer",
        )
    assert Client.get_by_id(500 + typed.index((("US", "ca"), "7.25"))).state == "ca"

    run_rules(DAY, load_settings(), only=("invoice",))

    taxes = {i.client_id: f"{i.tax / 100:.2f}" for i in Invoice.select()}
    for n, ((country, state), want) in enumerate(typed):
        assert taxes[100 + n] == want, (country, state, "imported")
        assert taxes[500 + n] == want, (country, state, "stored as typed")
    totals = {i.client_id: i.total for i in Invoice.select()}
    assert totals[101] == 10_725  # "ca": 107.25


def test_region_matching_follows_what_people_type_when_saved(db: str) -> None:
    """Every path that saves a state stores a subdivision code in upper case and keeps a
    name as written (it is part of the address); rules for one region cannot be doubled."""
    Currency.create(code="USD", is_default=True)
    made = create_client(
        {
            "first_name": "A",
            "last_name": "B",
            "email": "a@example.com",
            "country": "us",
            "state": "ca",
        },
        SYSTEM_CLI,
    )
    assert (made.country, made.state) == ("US", "CA")
    named = create_client(
        {
            "first_name": "N",
            "last_name": "B",
            "email": "n@example.com",
            "country": "GB",
            "state": " Kent ",
        },
        SYSTEM_CLI,
    )
    assert named.state == "Kent"  # not "KEN": an address shows the name
    update_client(made.id, 1, {"state": "us-ny"}, SYSTEM_CLI)
    assert Client.get_by_id(made.id).state == "NY"
    # A state typed before its country is normalised when the country is set.
    loose = create_client(
        {"first_name": "L", "last_name": "B", "email": "l@example.com", "state": "on"}, SYSTEM_CLI
    )
    assert loose.state == "on"
    update_client(loose.id, 1, {"country": "CA"}, SYSTEM_CLI)
    assert Client.get_by_id(loose.id).state == "ON"

    contact = add_contact(
        made.id,
        {
            "first_name": "C",
            "last_name": "D",
            "email": "c@example.com",
            "country": "US",
            "state": "tx",
        },
        SYSTEM_CLI,
    )
    assert Contact.get_by_id(contact.id).state == "TX"
    update_contact(contact.id, {"state": "wa"}, SYSTEM_CLI)  # in the contact's own country
    assert Contact.get_by_id(contact.id).state == "WA"

    import_document(_doc([_client(9, "US", "fl")], []))
    assert Client.get_by_id(9).state == "FL"

    # Tax rules (the Tax Rules screen and import share the check).
    save(
        "tax_rules",
        {"level": 1, "name": "CA", "country": "us", "state": "ca", "rate": "7.25"},
        SYSTEM_CLI,
    )
    assert [(r.country, r.state) for r in TaxRule.select()] == [("US", "CA")]
    with pytest.raises(ValidationError, match="same level, country and state"):
        save(
            "tax_rules",
            {"level": 1, "name": "Cal", "country": "US", "state": "California", "rate": "8"},
            SYSTEM_CLI,
        )
    save(
        "tax_rules",
        {"level": 1, "name": "CA", "country": "US", "state": "CA", "rate": "7.5"},
        SYSTEM_CLI,
    )  # the same rule, edited
    save(
        "tax_rules",
        {"level": 2, "name": "County", "country": "US", "state": "California", "rate": "1"},
        SYSTEM_CLI,
    )
    assert sorted((r.level, r.state, r.rate_e4) for r in TaxRule.select()) == [
        (1, "CA", 75_000),
        (2, "California", 10_000),
    ]
    with pytest.raises(ImportError_) as refused:
        import_document(
            _doc(
                [],
                [
                    {"level": 1, "name": "A", "country": "AT", "state": "Tirol", "rate": "1"},
                    {"level": 1, "name": "B", "country": "AT", "state": "tirol", "rate": "2"},
                ],
            )
        )
    assert refused.value.errors == [
        "tax_rules[1]: another rule has the same level, country and state"
    ]
