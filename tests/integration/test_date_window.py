"""Dates outside the plausible window (1970-01-01 .. 2100-12-31) are refused at every door,
and the cron never bills, chases or charges for one that reached the database anyway."""

from __future__ import annotations

import copy
import datetime as dt
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rules.billing.cron import RULE_NAMES, run_rules
from rules.billing.explain import explain
from rules.errors import ValidationError
from rules.interchange.importer import import_document
from rules.interchange.schema import ImportError_
from rules.mail.massmail import MassMailFilter
from store.models import (
    Addon,
    Client,
    Currency,
    Domain,
    Email,
    Invoice,
    InvoiceItem,
    Product,
    Service,
    StoredCard,
    Transaction,
)
from store.settings import load_settings
from tests.conftest import Databases, on_sqlite_and_first_on_postgres
from tests.integration.test_interchange import _minimal

DAY = dt.date(2026, 3, 10)
WINDOW = "between 1970-01-01 and 2100-12-31"
DATE_MIN, DATE_MAX = dt.date(1970, 1, 1), dt.date(2100, 12, 31)
#: The cron summary's entry naming dates outside the window (``rules.billing.cron.DATE_CHECK``).
DATE_CHECK = "date_check"

EMAIL = {
    "template": "Invoice Created",
    "to": "s@example.com",
    "subject": "Invoice 1001",
    "status": "sent",
    "created_at": "2026-11-01T09:00:00Z",
}


def _doc() -> dict[str, Any]:
    doc = copy.deepcopy(_minimal())
    first = doc["clients"][0]
    first["created_at"] = "2025-01-01T00:00:00Z"
    first["last_login_at"] = "2026-01-01T00:00:00Z"
    first["emails"] = [dict(EMAIL)]
    return doc


#: Every date and time field of the interchange document: (path, setter).
FIELDS: list[tuple[str, Callable[[dict[str, Any], str], None], str]] = [
    (
        "clients[0].services[0].next_due_date",
        lambda d, v: d["clients"][0]["services"][0].update(next_due_date=v),
        "date",
    ),
    (
        "clients[0].services[0].addons[0].next_due_date",
        lambda d, v: d["clients"][0]["services"][0]["addons"][0].update(next_due_date=v),
        "date",
    ),
    (
        "clients[0].domains[0].next_due_date",
        lambda d, v: d["clients"][0]["domains"][0].update(next_due_date=v),
        "date",
    ),
    (
        "clients[0].invoices[0].date",
        lambda d, v: d["clients"][0]["invoices"][0].update(date=v),
        "date",
    ),
    (
        "clients[0].invoices[0].due_date",
        lambda d, v: d["clients"][0]["invoices"][0].update(due_date=v),
        "date",
    ),
    (
        "clients[1].invoices[0].date_paid",
        lambda d, v: d["clients"][1]["invoices"][0].update(date_paid=v),
        "date",
    ),
    ("clients[0].created_at", lambda d, v: d["clients"][0].update(created_at=v), "time"),
    ("clients[0].last_login_at", lambda d, v: d["clients"][0].update(last_login_at=v), "time"),
    (
        "clients[0].emails[0].created_at",
        lambda d, v: d["clients"][0]["emails"][0].update(created_at=v),
        "time",
    ),
    (
        "clients[0].cards[0].expiry",
        lambda d, v: d["clients"][0]["cards"][0].update(expiry=v),
        "expiry",
    ),
]

ABSURD = {
    "date": ["0001-01-01", "1969-12-31", "2101-01-01", "9999-12-31"],
    # The offsets push these past year 1 / 9999 when converted to UTC: refused, not a crash.
    "time": [
        "0001-01-01T00:00:00Z",
        "0001-01-01T00:00:00+01:00",
        "9999-12-31T23:59:59-01:00",
        "1969-12-31T23:59:59Z",
        "2101-01-01T00:00:00Z",
    ],
    "expiry": ["0001-01", "1969-12", "2101-01", "9999-12"],
}
EDGES = {
    "date": ["1970-01-01", "2100-12-31"],
    "time": ["1970-01-01T00:00:00Z", "2100-12-31T23:59:59Z"],
    "expiry": ["1970-01", "2100-12"],
}


OUTSIDE = [(path, value) for path, _, kind in FIELDS for value in ABSURD[kind]]


@on_sqlite_and_first_on_postgres("path, value", OUTSIDE, ids=[f"{p}={v}" for p, v in OUTSIDE])
def test_date_outside_the_window_is_refused_on_import(db: str, path: str, value: str) -> None:
    setter = next(s for p, s, _ in FIELDS if p == path)
    doc = _doc()
    setter(doc, value)
    with pytest.raises(ImportError_) as info:
        import_document(doc)
    assert [e for e in info.value.errors if e.startswith(f"{path}: ")] == [
        f"{path}: {value} is not a plausible "
        f"{'expiry' if path.endswith('expiry') else 'time' if path.endswith('_at') else 'date'}"
        f": must be {WINDOW}"
    ], info.value.errors
    assert Client.select().count() == 0 and Currency.select().count() == 0


def test_dates_at_the_edges_of_the_window_are_accepted_on_import(
    databases: Databases, reopen: Callable[[str], str]
) -> None:
    for edge in (0, 1):
        reopen(databases.new_url())
        doc = _doc()
        for _, setter, kind in FIELDS:
            setter(doc, EDGES[kind][edge])
        assert import_document(doc) == 2
        assert Service.get().next_due_date == (DATE_MIN, DATE_MAX)[edge]


def test_date_parsers_share_one_window() -> None:
    from rules.dates import parse_date, parse_expiry, parse_time

    assert parse_date("1970-01-01") == DATE_MIN and parse_date("2100-12-31") == DATE_MAX
    assert parse_time("2100-12-31T23:59:59Z") == dt.datetime(2100, 12, 31, 23, 59, 59)
    assert parse_expiry("2100-12") == "2100-12"
    for bad in ("1969-12-31", "2101-01-01", "0001-01-01"):
        with pytest.raises(ValueError, match=WINDOW):
            parse_date(bad)
    for text in ("", "2026-13-01", "26-01-01", "2026-02-30", None, 20260101):
        with pytest.raises(ValueError, match="YYYY-MM-DD"):
            parse_date(text)


def test_date_outside_the_window_is_refused_by_the_mass_mail_filter() -> None:
    """The staff app's mass mail screen and ``gobiller mail mass`` share this parser."""
    for key in ("created_from", "created_to"):
        for value in ("0001-01-01", "9999-12-31", "2101-01-01"):
            with pytest.raises(ValidationError) as info:
                MassMailFilter.parse([f"{key}={value}"])
            assert WINDOW in info.value.errors[key]
    assert MassMailFilter.parse(["created_to=2100-12-31"]).created_to == DATE_MAX


def _gobiller(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", "--database", url, *args],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "XDG_DATA_HOME": os.environ.get("XDG_DATA_HOME", "/tmp")},
    )


def test_date_outside_the_window_is_refused_on_the_command_line(
    databases: Databases, tmp_path: Path
) -> None:
    url = databases.new_url()
    cases = [
        ("cron", "--date", "0001-01-01"),
        ("cron", "--date", "2101-01-01", "--dry-run"),
        ("explain", "1", "--date", "9999-12-31"),
        ("demo", "--clients", "1", "--date", "0001-01-01"),
        ("mail", "mass", "--filter", "created_from=0001-01-01", "--dry-run"),
        ("mail", "mass", "--filter", "created_to=9999-12-31", "--dry-run", "--json"),
    ]
    for args in cases:
        out = _gobiller(url, *args)
        assert out.returncode != 0, (args, out.stdout, out.stderr)
        said = out.stdout + out.stderr
        assert "Traceback" not in said, (args, said)
        assert WINDOW in said, (args, said)
    # The demo's own data reaches 2000 days back and 3 years on: its date keeps all inside.
    out = _gobiller(url, "demo", "--clients", "1", "--date", "1971-01-01")
    assert out.returncode == 1 and WINDOW in out.stderr and "Traceback" not in out.stderr
    assert _gobiller(url, "cron", "--date", "2100-12-31", "--json").returncode == 0
    listed = _gobiller(url, "mail", "list", "--json")
    assert json.loads(listed.stdout) == []  # nothing was created by the refused commands


def _poisoned() -> tuple[Client, Client]:
    """What an import before the window existed (or direct SQL) left behind: a client whose
    service, addon and domain fall due in year 1 and whose Unpaid invoice was due then,
    with a card that the gateway approves; and an ordinary client beside it."""
    usd = Currency.get_or_create(code="USD", defaults={"is_default": True})[0]
    product = Product.get_or_create(name="Hosting")[0]
    bad = Client.create(
        first_name="Old", last_name="Date", email="old@example.com", currency=usd,
        payment_method="sandboxcard",
    )  # fmt: skip
    good = Client.create(
        first_name="New", last_name="Date", email="new@example.com", currency=usd,
        payment_method="sandboxcard",
    )  # fmt: skip
    ancient = dt.date(1, 1, 1)
    for owner, due in ((bad, ancient), (good, DAY)):
        StoredCard.create(
            client=owner, gateway="sandboxcard", token="ok_1", last4="4242", expiry="2030-01"
        )
        s = Service.create(
            client=owner, product=product, status="Active", billing_cycle="Annually",
            amount=10_000, next_due_date=due, payment_method="sandboxcard",
        )  # fmt: skip
        Addon.create(
            client=owner, service=s, name="Backups", status="Active", billing_cycle="Annually",
            amount=500, next_due_date=due, payment_method="sandboxcard",
        )  # fmt: skip
        Domain.create(
            client=owner, name=f"{owner.last_name.lower()}{owner.id}.example", status="Active",
            amount=1_200, next_due_date=due, payment_method="sandboxcard",
        )  # fmt: skip
    inv = Invoice.create(
        client=bad, number="OLD-1", date=ancient, due_date=ancient, status="Unpaid",
        payment_method="sandboxcard", subtotal=10_000, total=10_000,
    )  # fmt: skip
    InvoiceItem.create(invoice=inv, type="Hosting", description="Hosting", amount=10_000)
    return bad, good


def test_cron_never_acts_on_a_date_outside_the_window(db: str) -> None:
    bad, good = _poisoned()
    for n in range(3):  # three daily runs: nothing is billed, fined or charged for year 1
        summary = run_rules(DAY + dt.timedelta(days=n), load_settings(), only=RULE_NAMES)
        check = summary.rules[DATE_CHECK]
        assert check.failed == 4 and summary.failed >= 4
        assert all(f"client {bad.id}" in e and "1970-01-01" in e for e in check.errors)
    assert Invoice.select().where(Invoice.client == bad.id).count() == 1  # only its own
    assert InvoiceItem.select().join(Invoice).where(Invoice.client == bad.id).count() == 1
    assert not Transaction.select().join(Invoice).where(Invoice.client == bad.id).exists()
    assert not Email.select().where(Email.client == bad.id).exists()
    assert Service.get(Service.client == bad.id).next_due_date == dt.date(1, 1, 1)
    # The ordinary client beside it is billed and charged as usual.
    assert Invoice.select().where(Invoice.client == good.id).exists()
    assert Transaction.select().join(Invoice).where(Invoice.client == good.id).exists()
    # explain says why, and the dry run plans nothing for the poisoned client.
    lines = {line.rule: line for line in explain(bad.id, DAY, load_settings())}
    assert not any(line.acts for line in lines.values())
    assert "not invoiced until it is corrected" in lines[DATE_CHECK].reason
