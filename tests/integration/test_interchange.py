from __future__ import annotations

import copy
import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rules.audit import SYSTEM_CLI
from rules.billing.cron import run_rules
from rules.demo import generate_demo
from rules.errors import RuleError
from rules.interchange.checking import load_document
from rules.interchange.export import build_export, dumps
from rules.interchange.importer import import_document, import_file
from rules.interchange.schema import ImportError_
from rules.mail.delivery import LEASE, SmtpTransport, _lease, flush, resend
from rules.mail.massmail import MassMailFilter, send_mass_mail
from store.config import SmtpConfig
from store.models import (
    ActionLedger,
    Addon,
    Client,
    Currency,
    Domain,
    Email,
    Invoice,
    InvoiceItem,
    Service,
    Setting,
    TaxRule,
    Transaction,
    utcnow,
)
from store.settings import load_settings
from tests.conftest import Databases, SmtpRecorder, on_sqlite_and_first_on_postgres

DAY = dt.date(2026, 11, 25)


def _minimal() -> dict[str, Any]:
    """A small valid document touching every section."""
    return {
        "format": "gobiller/1",
        "settings": {"timezone": "Europe/London", "late_fee_amount": "7.50"},
        "currencies": [
            {
                "code": "USD",
                "prefix": "$",
                "suffix": "",
                "decimals": 2,
                "rate": "1",
                "default": True,
            },
            {
                "code": "JPY",
                "prefix": "¥",
                "suffix": "",
                "decimals": 0,
                "rate": "150",
                "default": False,
            },
        ],
        "client_groups": [
            {
                "name": "Resellers",
                "colour": "#ff8800",
                "discount_percent": "12.5",
                "separate_invoices": True,
            }
        ],
        "tax_rules": [{"level": 1, "name": "VAT", "country": "GB", "state": "", "rate": "20"}],
        "custom_fields": [
            {
                "name": "Source",
                "type": "dropdown",
                "options": ["Web", "Friend"],
                "required": False,
                "admin_only": False,
                "regex": "",
            }
        ],
        "clients": [
            {
                "id": 7,
                "first_name": "Siobhán",
                "last_name": "O'Brien",
                "email": "s@example.com",
                "country": "GB",
                "phone": "020 7183 8750",
                "currency": "USD",
                "group": "Resellers",
                "payment_method": "sandboxcard",
                "billing_contact": "bill@example.com",
                "custom_fields": {"Source": "Web"},
                "contacts": [
                    {"first_name": "Bill", "last_name": "Ing", "email": "bill@example.com"}
                ],
                "cards": [
                    {
                        "gateway": "sandboxcard",
                        "token": "ok_1",
                        "last4": "4242",
                        "expiry": "2028-01",
                    }
                ],
                "services": [
                    {
                        "product": "VPS",
                        "status": "Active",
                        "billing_cycle": "Monthly",
                        "amount": "9.99",
                        "next_due_date": "2026-12-01",
                        "payment_method": "sandboxcard",
                        "addons": [
                            {
                                "name": "Backups",
                                "status": "Active",
                                "amount": "2.00",
                                "next_due_date": "2026-12-01",
                                "payment_method": "sandboxcard",
                            }
                        ],
                    }
                ],
                "domains": [
                    {
                        "name": "obrien.ie",
                        "status": "Active",
                        "amount": "12.00",
                        "next_due_date": "2027-01-01",
                        "payment_method": "sandboxcard",
                    }
                ],
                "invoices": [
                    {
                        "number": "1001",
                        "date": "2026-11-01",
                        "due_date": "2026-11-15",
                        "status": "Unpaid",
                        "payment_method": "sandboxcard",
                        "subtotal": "10.00",
                        "tax": "2.00",
                        "tax2": "0.00",
                        "total": "12.00",
                        "items": [
                            {
                                "type": "Hosting",
                                "description": "VPS",
                                "amount": "10.00",
                                "taxed": True,
                            }
                        ],
                    }
                ],
            },
            {
                "id": 8,
                "first_name": "翔太",
                "last_name": "田中",
                "email": "shota@example.org",
                "currency": "JPY",
                "invoices": [
                    {
                        "number": "1002",
                        "date": "2026-11-01",
                        "due_date": "2026-11-15",
                        "status": "Paid",
                        "date_paid": "2026-11-02",
                        "payment_method": "banktransfer",
                        "subtotal": "1500",
                        "total": "1500",
                        "items": [],
                    }
                ],
            },
        ],
    }


def test_import_writes_everything(db: str) -> None:
    assert import_document(_minimal()) == 2
    c = Client.get_by_id(7)
    assert c.phone == "+442071838750" and c.group.name == "Resellers"
    assert c.billing_contact.email == "bill@example.com"
    assert Invoice.get(Invoice.number == "1002").total == 1500  # JPY has no decimals
    assert load_settings().late_fee_amount == "7.50"
    doc = build_export()
    assert doc["client_groups"][0]["discount_percent"] == "12.50"
    assert doc["clients"][0]["services"][0]["addons"][0]["amount"] == "2.00"
    assert doc["clients"][1]["invoices"][0]["total"] == "1500"
    # A new client after an import with explicit ids gets a fresh id (sequence moved on).
    new = Client.create(
        first_name="N", last_name="N", email="n@example.com", currency=Currency.get(code="USD")
    )
    assert new.id > 8


def test_export_import_export_is_byte_identical(
    databases: Databases, reopen: Callable[[str], str], tmp_path: Path
) -> None:
    reopen(databases.new_url())
    generate_demo(300, seed=5, today=DAY)
    first = tmp_path / "first.json"
    first.write_text(dumps(build_export()), encoding="utf-8")
    reopen(databases.new_url())
    assert import_file(first) == 300
    assert dumps(build_export()) == first.read_text(encoding="utf-8")


def test_demo_is_deterministic(databases: Databases, reopen: Callable[[str], str]) -> None:
    exports = []
    for seed in (3, 3, 4):
        reopen(databases.new_url())
        generate_demo(50, seed=seed, today=DAY)
        exports.append(dumps(build_export()))
    assert exports[0] == exports[1]
    assert exports[0] != exports[2]


def test_demo_is_deterministic_whatever_its_chunks(
    databases: Databases, reopen: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Chunks of 40 clients (on PostgreSQL made by a second process while the first loads
    the one before) give the same database as one chunk of them all."""
    import rules.demo

    exports = []
    for chunk in (10_000, 40):
        monkeypatch.setattr(rules.demo, "CHUNK", chunk)
        reopen(databases.new_url())
        generate_demo(300, seed=3, today=DAY)
        exports.append(dumps(build_export()))
    assert exports[0] == exports[1]
    assert Client.select().count() == 300


def test_demo_rows_that_cannot_be_made_leave_the_database_empty(
    databases: Databases, reopen: Callable[[str], str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A chunk whose rows cannot be made (here the fifth) stops the demo with one line
    saying why, and leaves nothing behind on PostgreSQL, where the demo is one
    transaction (SQLite keeps the chunks loaded before, as it always did)."""
    import rules.demo

    monkeypatch.setattr(rules.demo, "CHUNK", 40)
    real = rules.demo._build_chunk

    def failing(ids: range, *args: Any) -> Any:
        if ids.start > 160:
            raise ValueError("no more names")
        return real(ids, *args)

    monkeypatch.setattr(rules.demo, "_build_chunk", failing)
    url = databases.new_url()
    reopen(url)
    with pytest.raises((RuleError, ValueError), match="no more names"):
        generate_demo(300, seed=3, today=DAY)
    expected = 0 if url.startswith("postgresql") else 160
    assert Client.select().count() == expected


def test_demo_covers_the_vocabularies(db: str) -> None:
    generate_demo(400, seed=1, today=DAY)
    doc = build_export()
    clients = doc["clients"]
    statuses = {c["status"] for c in clients}
    assert statuses == {"Active", "Inactive", "Closed"}
    assert {c["currency"] for c in clients} == {"USD", "EUR", "GBP"}
    names = " ".join(c["first_name"] + c["last_name"] for c in clients)
    assert any("\u0600" <= ch <= "\u06ff" for ch in names)  # Arabic
    assert any("\u4e00" <= ch <= "\u9fff" for ch in names)  # CJK
    assert "'" in names
    invoices = [i["status"] for c in clients for i in c["invoices"]]
    assert {"Paid", "Unpaid"} <= set(invoices)
    assert any(
        i["due_date"] < DAY.isoformat() and i["status"] == "Unpaid"
        for c in clients
        for i in c["invoices"]
    )
    assert len({s["status"] for c in clients for s in c["services"]}) >= 6
    assert len({d["status"] for c in clients for d in c["domains"]}) >= 8
    assert any(c["contacts"] for c in clients) and any(c["billing_contact"] for c in clients)
    assert Client.select().where(Client.totp_secret != "").exists()
    assert Client.select().where(Client.security_question.is_null(False)).exists()


def _errors(doc: Any) -> list[str]:
    with pytest.raises(ImportError_) as info:
        import_document(doc)
    return info.value.errors


def _assert_nothing_written() -> None:
    assert Client.select().count() == 0
    assert Currency.select().count() == 0
    assert Setting.select().count() == 0


def _mutate(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    doc = copy.deepcopy(_minimal())
    change(doc)
    return doc


EMAIL = {
    "template": "Invoice Created",
    "to": "s@example.com",
    "subject": "Invoice 1001",
    "status": "sent",
    "created_at": "2026-11-01T09:00:00Z",
}

CASES: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("unknown top key", lambda d: d.update(extra=1), "extra: unknown key"),
    (
        "unknown client key",
        lambda d: d["clients"][0].update(nickname="x"),
        "clients[0].nickname: unknown key",
    ),
    (
        "wrong type",
        lambda d: d["clients"][0].update(late_fees_exempt="yes"),
        "clients[0].late_fees_exempt: must be true or false",
    ),
    ("id type", lambda d: d["clients"][1].update(id="8"), "clients[1].id: must be a whole number"),
    (
        "unknown currency",
        lambda d: d["clients"][0].update(currency="XYZ"),
        "clients[0].currency: unknown currency",
    ),
    (
        "bad currency code",
        lambda d: d["currencies"][1].update(code="ZZZ"),
        "currencies[1].code: not an ISO 4217 currency code",
    ),
    (
        "status",
        lambda d: d["clients"][0].update(status="Deleted"),
        "clients[0].status: must be one of Active, Inactive, Closed",
    ),
    (
        "service status",
        lambda d: d["clients"][0]["services"][0].update(status="Live"),
        "clients[0].services[0].status: must be one of",
    ),
    (
        "invoice status",
        lambda d: d["clients"][0]["invoices"][0].update(status="Open"),
        "clients[0].invoices[0].status: must be one of",
    ),
    (
        "duplicate email",
        lambda d: d["clients"][1].update(email="S@EXAMPLE.COM"),
        "clients[1].email: duplicate email (also at clients[0].email)",
    ),
    (
        "invalid email",
        lambda d: d["clients"][1].update(email="not-an-email"),
        "clients[1].email: not a valid email",
    ),
    (
        "invalid phone",
        lambda d: d["clients"][0].update(phone="12345"),
        "clients[0].phone: not a valid phone number",
    ),
    (
        "invalid country",
        lambda d: d["clients"][0].update(country="QQ"),
        "clients[0].country: not an ISO 3166-1 country code",
    ),
    (
        "too many decimals",
        lambda d: d["clients"][0]["services"][0].update(amount="9.999"),
        "clients[0].services[0].amount: '9.999' has more than 2 decimal places",
    ),
    (
        "decimals per currency",
        lambda d: d["clients"][1]["invoices"][0].update(subtotal="15.5", total="15.5"),
        "clients[1].invoices[0].subtotal: '15.5' has more than 0 decimal places",
    ),
    (
        "float amount",
        lambda d: d["clients"][0]["domains"][0].update(amount=12.0),
        "clients[0].domains[0].amount: must be a decimal string",
    ),
    (
        "control characters",
        lambda d: d["clients"][0].update(last_name="O\x1b[31mBrien"),
        "clients[0].last_name: must not contain control characters",
    ),
    (
        "too long",
        lambda d: d["clients"][0].update(city="x" * 101),
        "clients[0].city: must be at most 100 characters",
    ),
    (
        "unknown group",
        lambda d: d["clients"][0].update(group="Gold"),
        "clients[0].group: unknown client group",
    ),
    (
        "billing contact",
        lambda d: d["clients"][0].update(billing_contact="x@example.com"),
        "clients[0].billing_contact: not the email of one of this client's contacts",
    ),
    (
        "custom field",
        lambda d: d["clients"][0].update(custom_fields={"Source": "TV"}),
        "clients[0].custom_fields.Source: must be one of Web, Friend",
    ),
    (
        "duplicate invoice",
        lambda d: d["clients"][1]["invoices"][0].update(number="1001"),
        "clients[1].invoices[0].number: duplicate invoice number 1001",
    ),
    (
        "totals",
        lambda d: d["clients"][0]["invoices"][0].update(total="13.00"),
        "clients[0].invoices[0].total: must equal subtotal + tax + tax2",
    ),
    (
        "setting",
        lambda d: d["settings"].update(daily_hour=25),
        "settings.daily_hour: must be between 0 and 23",
    ),
    (
        "unknown setting",
        lambda d: d["settings"].update(colour="red"),
        "settings.colour: unknown key",
    ),
    (
        "date",
        lambda d: d["clients"][0]["invoices"][0].update(due_date="15/11/2026"),
        "clients[0].invoices[0].due_date: must be a date YYYY-MM-DD",
    ),
    ("missing", lambda d: d["clients"][0].pop("email"), "clients[0].email: is required"),
    (
        "tax rate",
        lambda d: d["clients"][0]["invoices"][0].update(tax_rate="ten"),
        "clients[0].invoices[0].tax_rate: 'ten' is not a decimal amount",
    ),
    (
        "tax rate range",
        lambda d: d["clients"][0]["invoices"][0].update(tax_rate2="100.5"),
        "clients[0].invoices[0].tax_rate2: must be at most 100",
    ),
    (
        "email status",
        lambda d: d["clients"][0].update(emails=[dict(EMAIL, status="delivered")]),
        "clients[0].emails[0].status: must be one of",
    ),
    (
        "email time",
        lambda d: d["clients"][0].update(emails=[dict(EMAIL, created_at="2026-01-01")]),
        "clients[0].emails[0].created_at: must be an ISO 8601 UTC time",
    ),
    (
        "email key",
        lambda d: d["clients"][0].update(emails=[dict(EMAIL, body="hello")]),
        "clients[0].emails[0].body: unknown key",
    ),
    (
        "email missing",
        lambda d: d["clients"][0].update(emails=[{"template": "Mass Mail"}]),
        "clients[0].emails[0].to: is required",
    ),
    ("format", lambda d: d.update(format="other/2"), 'format: must be "gobiller/1"'),
]


@on_sqlite_and_first_on_postgres("name,change,expected", CASES, ids=[c[0] for c in CASES])
def test_bad_record_is_reported_and_nothing_written(
    db: str, name: str, change: Callable[[dict[str, Any]], None], expected: str
) -> None:
    errors = _errors(_mutate(change))
    assert any(e.startswith(expected) for e in errors), errors
    _assert_nothing_written()


def test_every_bad_record_is_reported_at_once(db: str) -> None:
    def change(d: dict[str, Any]) -> None:
        d["clients"][0]["email"] = "bad"
        d["clients"][1]["country"] = "ZZ"
        d["clients"][1]["status"] = "Gone"

    errors = _errors(_mutate(change))
    assert len(errors) == 3, errors
    _assert_nothing_written()


def test_existing_client_email_is_a_duplicate(db: str) -> None:
    import_document(_minimal())
    doc = _minimal()
    doc["clients"] = [dict(doc["clients"][1], id=99, email="SHOTA@example.org", invoices=[])]
    errors = _errors(doc)
    assert errors == ["clients[0].email: a client with this email already exists"]
    assert Client.select().count() == 2


@pytest.mark.parametrize(
    "text,expected",
    [
        ('{"format": "gobiller/1", "clients": [', "(document): not valid JSON"),
        ('{"format": "gobiller/1", "format": "gobiller/1"}', "format: duplicate key"),
        ("[1, 2]", "(document): must be an object"),
        ('{"format": "gobiller/1", "clients": [NaN]}', "(document): NaN is not allowed"),
    ],
)
def test_malformed_file(db: str, tmp_path: Path, text: str, expected: str) -> None:
    path = tmp_path / "in.json"
    path.write_text(text)
    with pytest.raises(ImportError_) as info:
        import_file(path)
    assert info.value.errors[0].startswith(expected), info.value.errors
    _assert_nothing_written()


def test_not_utf8(db: str, tmp_path: Path) -> None:
    path = tmp_path / "in.json"
    path.write_bytes(b'{"format": "gobiller/1", "x": "\xff"}')
    with pytest.raises(ImportError_, match="not UTF-8"):
        import_file(path)


# ------------------------------------------------------------------ links between records


def _linked() -> dict[str, Any]:
    """``_minimal`` with what a restore needs to act as the original: kept ids, anchor
    days, an item's link to what it bills, a part payment and the action ledger."""
    doc = _minimal()
    ana = doc["clients"][0]
    ana["cards"][0]["id"] = 3
    ana["services"][0].update(id=5, anchor_day=1)
    ana["services"][0]["addons"][0].update(id=6, anchor_day=1)
    ana["domains"][0].update(id=7, anchor_day=1)
    ana["invoices"][0]["id"] = 9
    ana["invoices"][0]["items"][0]["related"] = {
        "type": "service",
        "id": 5,
        "due_date": "2026-11-15",
    }
    ana["transactions"] = [
        {
            "invoice": 9,
            "gateway": "sandboxcard",
            "transaction_id": "sbx_1",
            "idempotency_key": "capture:9:2026-11-15",
            "amount_in": "5.00",
            "amount_out": "0.00",
            "fees": "0.00",
            "description": "Card capture",
            "date": "2026-11-15T09:00:00Z",
        }
    ]
    doc["ledger"] = [
        {
            "rule": "capture",
            "subject": "invoice:9",
            "stage": "",
            "business_date": "2026-11-15",
            "outcome": "approved",
            "detail": "",
            "created_at": "2026-11-15T09:00:00Z",
        },
        {
            "rule": "card_expired",
            "subject": "client:7",
            "stage": "card:3",
            "business_date": "1970-01-01",
            "outcome": "asked",
        },
    ]
    return doc


def test_a_restore_behaves_exactly_like_the_original_with_its_links_and_payments(
    databases: Databases, reopen: Callable[[str], str]
) -> None:
    """The ids, anchor days, item links, transactions and claims of a document are kept,
    round trip byte for byte, and the rules act on them: the claimed capture day is not
    charged again, the next day charges only the balance (12.00 less 5.00 received)."""
    reopen(databases.new_url())
    import_document(_linked())
    assert Service.get_by_id(5).anchor_day == 1 and Domain.get_by_id(7).client_id == 7
    item = InvoiceItem.get(InvoiceItem.invoice == 9)
    assert (item.related_type, item.related_id, item.related_due_date) == (
        "service",
        5,
        dt.date(2026, 11, 15),
    )
    exported = dumps(build_export())
    doc = json.loads(exported)
    assert doc["ledger"][1]["stage"] == "card:3"
    assert doc["clients"][0]["transactions"][0]["idempotency_key"] == "capture:9:2026-11-15"
    # Records given no id get new ones above the kept ids; the sequences move past them.
    assert Service.create(client=7, product=Service.get().product, payment_method="x").id > 5
    reopen(databases.new_url())
    import_document(load_document(exported))
    assert dumps(build_export()) == exported
    settings = load_settings()
    assert run_rules(dt.date(2026, 11, 15), settings, only=("capture",)).rules["capture"].acted == 0
    run_rules(dt.date(2026, 11, 16), settings, only=("capture",))
    charged = Transaction.select().order_by(Transaction.id)
    assert [(t.amount_in, t.idempotency_key) for t in charged] == [
        (500, "capture:9:2026-11-15"),
        (700, "capture:9:2026-11-16"),
    ]


def _item(doc: dict[str, Any], client: int = 0) -> dict[str, Any]:
    item: dict[str, Any] = doc["clients"][client]["invoices"][0]["items"][0]
    return item


def _second_item(d: dict[str, Any]) -> None:
    items = d["clients"][0]["invoices"][0]["items"]
    items.append(copy.deepcopy(items[0]))


def _other_clients_item(d: dict[str, Any]) -> None:
    d["clients"][1]["invoices"][0]["items"] = [copy.deepcopy(_item(d))]


def _transaction(d: dict[str, Any]) -> dict[str, Any]:
    txn: dict[str, Any] = d["clients"][0]["transactions"][0]
    return txn


LINK_ITEM = "clients[0].invoices[0].items[0].related"
LINK_CASES: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    (
        "unknown record",
        lambda d: _item(d)["related"].update(id=99),
        f"{LINK_ITEM}.id: not the id of one of this client's services",
    ),
    (
        "another client's record",
        _other_clients_item,
        "clients[1].invoices[0].items[0].related.id: not the id of one of this client's services",
    ),
    (
        "related type",
        lambda d: _item(d)["related"].update(type="product"),
        f"{LINK_ITEM}.type: must be one of service, addon, domain",
    ),
    (
        "related due date",
        lambda d: _item(d)["related"].pop("due_date"),
        f"{LINK_ITEM}.due_date: is required",
    ),
    (
        "related key",
        lambda d: _item(d)["related"].update(period="monthly"),
        f"{LINK_ITEM}.period: unknown key",
    ),
    (
        "billed twice",
        _second_item,
        "clients[0].invoices[0].items[1].related: service 5 due 2026-11-15 is billed twice "
        f"(also at {LINK_ITEM})",
    ),
    (
        "duplicate id",
        lambda d: d["clients"][1].update(
            domains=[dict(d["clients"][0]["domains"][0], name="tanaka.jp")]
        ),
        "clients[1].domains[0].id: duplicate domain id 7 (also at clients[0].domains[0])",
    ),
    (
        "id type",
        lambda d: d["clients"][0]["services"][0].update(id="5"),
        "clients[0].services[0].id: must be a whole number",
    ),
    (
        "anchor day",
        lambda d: d["clients"][0]["services"][0]["addons"][0].update(anchor_day=32),
        "clients[0].services[0].addons[0].anchor_day: must be a day of the month, 1 to 31",
    ),
    (
        "transaction invoice",
        lambda d: _transaction(d).update(invoice=1),
        "clients[0].transactions[0].invoice: not the id of one of this client's invoices",
    ),
    (
        "transaction amount",
        lambda d: _transaction(d).update(amount_in=5.0),
        "clients[0].transactions[0].amount_in: must be a decimal string",
    ),
    (
        "transaction time",
        lambda d: _transaction(d).pop("date"),
        "clients[0].transactions[0].date: is required",
    ),
    (
        "idempotency key twice",
        lambda d: d["clients"][0]["transactions"].append(copy.deepcopy(_transaction(d))),
        "clients[0].transactions[1].idempotency_key: duplicate idempotency key "
        "(also at clients[0].transactions[0].idempotency_key)",
    ),
    ("ledger list", lambda d: d.update(ledger={}), "ledger: must be a list"),
    (
        "ledger subject",
        lambda d: d["ledger"][0].update(subject="invoice:99"),
        "ledger[0].subject: names no invoice in the document (by its id)",
    ),
    (
        "ledger subject form",
        lambda d: d["ledger"][0].update(subject="inv-9"),
        "ledger[0].subject: must name a record such as invoice:42",
    ),
    (
        "ledger rule",
        lambda d: d["ledger"][0].update(rule="Capture!"),
        "ledger[0].rule: must be a rule name such as notice",
    ),
    (
        "ledger date",
        lambda d: d["ledger"][0].pop("business_date"),
        "ledger[0].business_date: is required",
    ),
    ("ledger key", lambda d: d["ledger"][0].update(run=4), "ledger[0].run: unknown key"),
    (
        "ledger twice",
        lambda d: d["ledger"].append(dict(d["ledger"][0], outcome="declined")),
        "ledger[2]: duplicate claim (also at ledger[0])",
    ),
]


@on_sqlite_and_first_on_postgres("name,change,expected", LINK_CASES, ids=[c[0] for c in LINK_CASES])
def test_a_restore_behaves_exactly_like_the_original_bad_links_are_reported(
    db: str, name: str, change: Callable[[dict[str, Any]], None], expected: str
) -> None:
    doc = _linked()
    change(doc)
    errors = _errors(doc)
    assert any(e.startswith(expected) for e in errors), errors
    _assert_nothing_written()


def test_a_restore_behaves_exactly_like_the_original_ids_in_use_are_refused(db: str) -> None:
    """Kept ids and keys already in the database are refused by path, as client ids are."""
    import_document(_linked())
    doc = _linked()
    ana = doc["clients"][0]
    ana.update(id=20, email="ana20@example.com", billing_contact=None, contacts=[])
    ana["invoices"][0]["number"] = "2001"
    ana["domains"][0]["id"] = 17
    doc["clients"] = [ana]
    doc["ledger"] = []
    assert sorted(_errors(doc)) == [
        "clients[0].cards[0].id: duplicate card id 3",
        "clients[0].invoices[0].id: duplicate invoice id 9",
        "clients[0].invoices[0].items[0].related: an invoice in the database already bills "
        "service 5 due 2026-11-15",
        "clients[0].services[0].addons[0].id: duplicate addon id 6",
        "clients[0].services[0].id: duplicate service id 5",
        "clients[0].transactions[0].idempotency_key: a transaction with this key already exists",
    ]
    assert Client.select().count() == 2


# ------------------------------------------------------------------ invoice tax rates


def _taxed_doc(
    invoices: list[dict[str, Any]] | None = None,
    services: list[dict[str, Any]] | None = None,
    tax_rules: list[dict[str, Any]] | None = None,
    state: str = "",
    settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """One US client and a 10% level-1 rule for every country (case 05-latefee-imported-tax)."""
    return {
        "format": "gobiller/1",
        "settings": {"late_fee_type": "percentage", "late_fee_amount": "10.00", **(settings or {})},
        "currencies": [{"code": "USD", "prefix": "$", "decimals": 2, "rate": "1", "default": True}],
        "tax_rules": tax_rules
        if tax_rules is not None
        else [{"level": 1, "name": "Sales tax", "country": "", "state": "", "rate": "10.00"}],
        "clients": [
            {
                "id": 6,
                "first_name": "Rania",
                "last_name": "Okafor",
                "email": "rania@example.net",
                "country": "US",
                "state": state,
                "currency": "USD",
                "services": services or [],
                "invoices": invoices or [],
            }
        ],
    }


def _imported_invoice(**extra: Any) -> dict[str, Any]:
    invoice: dict[str, Any] = {
        "number": "MIG-1001",
        "date": "2026-05-01",
        "due_date": "2026-05-10",
        "status": "Unpaid",
        "payment_method": "banktransfer",
        "subtotal": "100.00",
        "tax": "10.00",
        "tax2": "0.00",
        "total": "110.00",
        "items": [
            {"type": "Hosting", "description": "Web Hosting", "amount": "100.00", "taxed": True}
        ],
    }
    invoice.update(extra)
    return invoice


def _late_fee_day() -> None:
    """The late-fee rule on the day it falls due for the invoices above (due 05-10 + 5)."""
    summary = run_rules(dt.date(2026, 5, 15), load_settings(), only=("late_fee",))
    assert summary.rules["late_fee"].acted == 1


def _totals(number: str = "MIG-1001") -> tuple[int, int, int, int]:
    i = Invoice.get(Invoice.number == number)
    return i.subtotal, i.tax, i.tax2, i.total


def test_invoice_tax_rates_travel_with_the_invoice_when_absent_from_the_stored_amounts(
    db: str,
) -> None:
    """Case 05: an imported taxed invoice without rates keeps its tax when a fee is added."""
    import_document(_taxed_doc([_imported_invoice()]))
    invoice = Invoice.get(Invoice.number == "MIG-1001")
    assert (invoice.tax_rate1_e4, invoice.tax_rate2_e4) == (100_000, 0)
    exported = build_export()["clients"][0]["invoices"][0]
    assert (exported["tax_rate"], exported["tax_rate2"]) == ("10.00", "0.00")
    _late_fee_day()
    assert _totals() == (11_000, 1_100, 0, 12_100)


def test_invoice_tax_rates_travel_with_the_invoice_amounts_win_over_the_rules(db: str) -> None:
    """Issued at 7.25% while the rules now say 10%: the invoice keeps 7.25%."""
    invoice = _imported_invoice(tax="7.25", total="107.25")
    import_document(_taxed_doc([invoice]))
    assert Invoice.get().tax_rate1_e4 == 72_500
    _late_fee_day()
    # Fee 10.00 on the subtotal before tax, taxed at the invoice's 7.25%: 110.00 * 7.25% = 7.975.
    assert _totals() == (11_000, 798, 0, 11_798)


def test_invoice_tax_rates_travel_with_the_invoice_given_explicitly(db: str) -> None:
    invoice = _imported_invoice(tax="0.00", total="100.00", tax_rate="7.25", tax_rate2="1.5")
    import_document(_taxed_doc([invoice]))
    stored = Invoice.get()
    assert (stored.tax_rate1_e4, stored.tax_rate2_e4) == (72_500, 15_000)
    exported = build_export()["clients"][0]["invoices"][0]
    assert (exported["tax_rate"], exported["tax_rate2"]) == ("7.25", "1.50")


def test_invoice_tax_rates_travel_with_the_invoice_from_the_rules_when_nothing_was_taxed(
    db: str,
) -> None:
    """No taxed item: the amounts say nothing, so the client's rules in force (by state) apply."""
    rules = [
        {"level": 1, "name": "Sales tax", "country": "", "state": "", "rate": "10.00"},
        {"level": 1, "name": "CA sales tax", "country": "US", "state": "CA", "rate": "7.25"},
        {"level": 2, "name": "City tax", "country": "US", "state": "CA", "rate": "1.00"},
    ]
    untaxed = _imported_invoice(
        tax="0.00",
        total="100.00",
        items=[{"type": "Item", "description": "Setup", "amount": "100.00", "taxed": False}],
    )
    import_document(_taxed_doc([untaxed], tax_rules=rules, state="CA"))
    stored = Invoice.get()
    assert (stored.tax_rate1_e4, stored.tax_rate2_e4) == (72_500, 10_000)
    _late_fee_day()
    # Only the taxed fee (10.00) is taxed: 0.725 -> 0.73 and 0.10.
    assert _totals() == (11_000, 73, 10, 11_083)


def test_invoice_tax_rates_travel_with_the_invoice_through_export_and_import(
    databases: Databases, reopen: Callable[[str], str], tmp_path: Path
) -> None:
    """Case 05 part 2: a GoBiller invoice, exported and restored, keeps the rates it was issued
    with, even after the rules changed; the late fee is then taxed alike in both databases."""
    service = {
        "product": "Hosting",
        "status": "Active",
        "billing_cycle": "Monthly",
        "amount": "100.00",
        "next_due_date": "2026-05-10",
        "payment_method": "banktransfer",
    }
    reopen(databases.new_url())
    import_document(_taxed_doc(services=[service]))
    run_rules(dt.date(2026, 4, 26), load_settings(), only=("invoice",))
    number = Invoice.get().number
    TaxRule.update(rate_e4=200_000).execute()  # the rule changes after the invoice was issued
    exported = dumps(build_export())
    assert json.loads(exported)["clients"][0]["invoices"][0]["tax_rate"] == "10.00"
    _late_fee_day()
    original = _totals(number)
    reopen(databases.new_url())
    import_document(load_document(exported))
    assert (Invoice.get().tax_rate1_e4, Invoice.get().tax_rate2_e4) == (100_000, 0)
    assert dumps(build_export()) == exported
    _late_fee_day()
    assert _totals(number) == original == (11_000, 1_100, 0, 12_100)


# ------------------------------------------------------------------ the email log


def _mail_doc() -> dict[str, Any]:
    services = [
        {
            "product": "Hosting",
            "status": "Active",
            "billing_cycle": "Monthly",
            "amount": "25.00",
            "next_due_date": "2026-05-10",
            "payment_method": "banktransfer",
        }
    ]
    return {
        "format": "gobiller/1",
        "currencies": [{"code": "USD", "prefix": "$", "decimals": 2, "rate": "1", "default": True}],
        "clients": [
            {
                "id": n,
                "first_name": f"Ana{n}",
                "last_name": "Núñez",
                "email": f"ana{n}@example.com",
                "currency": "USD",
                "created_at": "2025-01-01T00:00:00Z",
                "services": services,
            }
            for n in (3, 4, 5)
        ],
    }


def test_round_trip_includes_the_email_log(
    databases: Databases,
    reopen: Callable[[str], str],
    tmp_path: Path,
    smtp_server: tuple[SmtpRecorder, SmtpConfig],
) -> None:
    """Sent, failed, queued and mid-delivery emails come back as they were, byte for byte,
    and the restored database never delivers any of them."""
    recorder, config = smtp_server
    transport = SmtpTransport(config, "billing@example.com")
    reopen(databases.new_url())
    import_document(_mail_doc())
    settings = load_settings()
    recorder.replies = ["550 no such user"]  # the first "Invoice Created" fails for good
    run_rules(dt.date(2026, 4, 26), settings, only=("invoice",))
    run_rules(dt.date(2026, 5, 3), settings, only=("notice",))
    flush(transport)
    run_rules(dt.date(2026, 5, 11), settings, only=("notice",))  # queued, not yet delivered
    send_mass_mail(MassMailFilter(), "Mass Mail", SYSTEM_CLI)
    later = utcnow() + dt.timedelta(seconds=1)
    _lease("crashed-flusher", later, 1, settings)  # a flusher died holding one email
    statuses = {e.status for e in Email.select()}
    assert statuses == {"sent", "failed", "queued", "sending"}, statuses
    delivered = len(recorder.messages)
    first = tmp_path / "first.json"
    first.write_text(dumps(build_export()), encoding="utf-8")
    assert sum(len(c["emails"]) for c in json.loads(first.read_text())["clients"]) == (
        Email.select().count()
    )

    reopen(databases.new_url())
    import_file(first)
    assert dumps(build_export()) == first.read_text(encoding="utf-8")
    # History only: no flush, now or after every lease has run out, sends any of it.
    assert flush(transport, now=lambda: later + LEASE * 2).sent == 0
    assert len(recorder.messages) == delivered
    assert dumps(build_export()) == first.read_text(encoding="utf-8")
    with pytest.raises(RuleError, match="restored"):
        resend(Email.get(Email.status == "sent").id, SYSTEM_CLI)


def test_round_trip_includes_the_email_log_without_colliding_with_new_mail(db: str) -> None:
    """Restored emails never hold a notice key, so the cron's own notices still go out."""
    doc = _mail_doc()
    doc["clients"][0]["emails"] = [
        {
            "template": "Invoice Created",
            "to": "ana3@example.com",
            "subject": "Invoice 1 created",
            "status": "sent",
            "created_at": "2026-04-26T09:00:00Z",
        }
    ]
    import_document(doc)
    restored = Email.get()
    assert (restored.status, restored.template, restored.unique_key) == (
        "sent",
        "Invoice Created",
        None,
    )
    assert restored.created_at == dt.datetime(2026, 4, 26, 9, 0)
    run_rules(dt.date(2026, 4, 26), load_settings(), only=("invoice",))
    assert Email.select().where(Email.template == "Invoice Created").count() == 4


# ------------------------------------------------------------------ a restore is the original


def _restore_doc() -> dict[str, Any]:
    """Clients for a month of billing history (case 25): bank transfer (taxed, with an
    addon and a domain; one with a late fee coming due after the export), a stored card
    that is approved (with a service anchored on the 31st), one that is declined, one
    that has expired, and a client with nothing active."""

    def billable(name: str, amount: str, due: str, method: str = "banktransfer") -> dict[str, Any]:
        return {
            "product": name,
            "status": "Active",
            "billing_cycle": "Monthly",
            "amount": amount,
            "next_due_date": due,
            "payment_method": method,
        }

    def person(cid: int, name: str, country: str, method: str, **extra: Any) -> dict[str, Any]:
        return {
            "id": cid,
            "first_name": name,
            "last_name": "Restore",
            "email": f"{name.lower()}@example.net",
            "country": country,
            "currency": "USD",
            "payment_method": method,
            "created_at": "2025-01-01T00:00:00Z",
            **extra,
        }

    def card(token: str, expiry: str) -> dict[str, Any]:
        return {"gateway": "sandboxcard", "token": token, "last4": "4242", "expiry": expiry}

    hosting = billable("Web Hosting", "25.00", "2026-06-01")
    backups = billable("Backups", "5.00", "2026-06-01")
    backups["name"] = backups.pop("product")
    hosting["addons"] = [backups]
    domain = {
        "name": "ana-restore.example",
        "status": "Active",
        "amount": "12.00",
        "next_due_date": "2026-07-10",
        "payment_method": "banktransfer",
    }
    card_services = [
        billable("VPS M", "40.00", "2026-07-01", "sandboxcard"),
        billable("VPS S", "20.00", "2026-05-31", "sandboxcard"),  # anchored on the 31st
    ]
    cancelled = dict(billable("Old plan", "9.00", "2026-06-05"), status="Cancelled")
    return {
        "format": "gobiller/1",
        "settings": {"timezone": "UTC", "late_fee_type": "percentage", "late_fee_amount": "10.00"},
        "currencies": [{"code": "USD", "prefix": "$", "decimals": 2, "rate": "1", "default": True}],
        "tax_rules": [
            {"level": 1, "name": "Sales tax", "country": "US", "state": "", "rate": "10"}
        ],
        "clients": [
            person(11, "Ana", "US", "banktransfer", services=[hosting], domains=[domain]),
            person(
                12, "Ben", "US", "banktransfer", services=[billable("Mail", "15.00", "2026-06-15")]
            ),
            person(
                13,
                "Cleo",
                "DE",
                "sandboxcard",
                cards=[card("ok_visa_4242", "2029-12")],
                services=card_services,
            ),
            person(
                14,
                "Dora",
                "US",
                "sandboxcard",
                cards=[card("no_funds_1", "2029-12")],
                services=[billable("VPS L", "60.00", "2026-06-20", "sandboxcard")],
            ),
            person(
                15,
                "Emil",
                "DE",
                "sandboxcard",
                cards=[card("ok_old_1", "2026-04")],
                services=[billable("VPS XS", "8.00", "2026-06-10", "sandboxcard")],
            ),
            person(16, "Gus", "US", "banktransfer", services=[cancelled]),
        ],
    }


def _billing_days(first: dt.date, last: dt.date) -> None:
    """The whole cron, once each business day from ``first`` to ``last``."""
    settings = load_settings()
    day = first
    while day <= last:
        run_rules(day, settings)
        day += dt.timedelta(days=1)


def _what_billing_did() -> dict[str, Any]:
    """Every invoice (with its items and what they bill), charge, email, claim in the
    ledger, due date and client status, per client in the order they happened."""
    numbers = dict(Invoice.select(Invoice.id, Invoice.number).tuples())
    items: dict[int, list[tuple[Any, ...]]] = {}
    for it in InvoiceItem.select().order_by(InvoiceItem.sort_order, InvoiceItem.id):
        items.setdefault(it.invoice_id, []).append(
            (
                it.type,
                it.description,
                it.amount,
                it.taxed,
                it.related_type,
                it.related_id,
                it.related_due_date,
            )
        )
    state: dict[str, Any] = {}
    for c in Client.select().order_by(Client.id):
        state[f"client {c.id}"] = {
            "status": c.status,
            "invoices": [
                (
                    i.number,
                    i.date,
                    i.due_date,
                    i.date_paid,
                    i.status,
                    i.payment_method,
                    i.subtotal,
                    i.tax,
                    i.tax2,
                    i.total,
                    i.tax_rate1_e4,
                    items.get(i.id, []),
                )
                for i in Invoice.select().where(Invoice.client == c.id).order_by(Invoice.id)
            ],
            "charges": [
                (numbers.get(t.invoice_id), t.gateway, t.amount_in, t.idempotency_key)
                for t in Transaction.select()
                .where(Transaction.client == c.id)
                .order_by(Transaction.id)
            ],
            "emails": [
                (e.template, e.to, e.subject, e.status)
                for e in Email.select().where(Email.client == c.id).order_by(Email.id)
            ],
            "due dates": [
                (kind, row.id, row.status, row.next_due_date, row.anchor_day)
                for kind, model in (("service", Service), ("addon", Addon), ("domain", Domain))
                for row in model.select().where(model.client == c.id).order_by(model.id)
            ],
        }
    state["ledger"] = sorted(
        (a.rule, a.subject, a.stage, a.business_date, a.outcome) for a in ActionLedger.select()
    )
    return state


def test_a_restore_behaves_exactly_like_the_original(
    databases: Databases, reopen: Callable[[str], str], tmp_path: Path
) -> None:
    """Case 25: a SQLite database with a month of billing history is exported the day its
    renewals were invoiced and imported into an empty database (SQLite, or PostgreSQL: the
    way between them). Then the cron runs the same 30 days on both, starting with that day
    again (the cron runs every few minutes): every invoice, charge, email, claim and due
    date is the same; nothing is invoiced, charged or sent twice."""
    export_day = dt.date(2026, 6, 17)
    last_day = export_day + dt.timedelta(days=30)
    reopen(f"sqlite:///{tmp_path / 'original.sqlite3'}")
    import_document(_restore_doc())
    _billing_days(dt.date(2026, 5, 17), export_day)
    backup = tmp_path / "backup.json"
    backup.write_text(dumps(build_export()), encoding="utf-8")
    _billing_days(export_day, last_day)
    original = _what_billing_did()
    # The month did what the test is about: renewals, a card charged, a late fee, notices.
    charged = original["client 13"]["charges"]
    assert [(amount, key.split(":")[2]) for _, _, amount, key in charged] == [
        (2000, "2026-05-31"),
        (2000, "2026-06-30"),
        (4000, "2026-07-01"),
    ]
    assert original["client 13"]["due dates"][1][3:] == (dt.date(2026, 7, 31), 31)
    assert any(
        item[0] == "LateFee" for inv in original["client 12"]["invoices"] for item in inv[-1]
    )
    assert sum(e[0] == "Credit Card Expired" for e in original["client 15"]["emails"]) == 1

    reopen(databases.new_url())
    import_file(backup)
    assert dumps(build_export()) == backup.read_text(encoding="utf-8")
    _billing_days(export_day, last_day)
    restored = _what_billing_did()
    for key in original:
        assert restored[key] == original[key], key


def test_kept_ids_taken_by_a_writer_meanwhile_are_refused_by_path(
    db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cron that invoices between the import's check and its transaction takes the
    next invoice id; the import, which keeps the document's ids, then refuses by path
    and writes nothing (no IntegrityError, no traceback)."""
    import rules.interchange.importer as interchange

    import_document(_restore_doc() | {"clients": [_restore_doc()["clients"][0]]})
    doc = _linked()
    invoices = [dict(_imported_invoice(), id=1)]
    doc["clients"] = [doc["clients"][1] | {"currency": "USD", "invoices": invoices}]
    doc["ledger"] = []
    checked = interchange.check_document

    def cron_meanwhile(document: Any) -> Any:
        plan = checked(document)
        run_rules(dt.date(2026, 5, 18), load_settings(), only=("invoice",))
        return plan

    monkeypatch.setattr(interchange, "check_document", cron_meanwhile)
    assert Invoice.select().count() == 0
    assert _errors(doc) == ["clients[0].invoices[0].id: duplicate invoice id 1"]
    assert [c.id for c in Client.select()] == [11]


def test_a_restore_behaves_exactly_like_the_original_with_its_credit(
    databases: Databases, reopen: Callable[[str], str]
) -> None:
    """Credit travels with the document (the client's balance, its movements, what was
    applied to each invoice): round trip byte for byte, and the rules read the same
    balance after a restore (12.00 less 5.00 received less 2.00 credit: 5.00 charged)."""
    doc = _linked()
    ana = doc["clients"][0]
    ana["credit"] = "1.00"
    ana["credits"] = [
        {"date": "2026-11-14", "description": "Goodwill", "amount": "3.00", "invoice": None},
        {"date": "2026-11-15", "description": "Applied", "amount": "-2.00", "invoice": 9},
    ]
    ana["invoices"][0]["credit"] = "2.00"
    reopen(databases.new_url())
    import_document(doc)
    exported = dumps(build_export())
    again = json.loads(exported)["clients"][0]
    assert again["credit"] == "1.00" and again["invoices"][0]["credit"] == "2.00"
    assert [c["amount"] for c in again["credits"]] == ["3.00", "-2.00"]
    reopen(databases.new_url())
    import_document(load_document(exported))
    assert dumps(build_export()) == exported
    run_rules(dt.date(2026, 11, 16), load_settings(), only=("capture",))
    charged = [t.amount_in for t in Transaction.select().order_by(Transaction.id)]
    assert charged == [500, 500]


def test_credit_that_does_not_add_up_is_refused(db: str) -> None:
    doc = _linked()
    doc["clients"][0]["credit"] = "4.00"
    doc["clients"][0]["credits"] = [
        {"date": "2026-11-14", "description": "Goodwill", "amount": "3.00", "invoice": None}
    ]
    assert any("credit" in e and "sum" in e for e in _errors(doc)), _errors(doc)
    _assert_nothing_written()


def _catalogued() -> dict[str, Any]:
    """``_minimal`` with its catalogue: an untaxed product priced in two currencies, a
    product addon the client's addon comes from, a service note and a Client Note."""
    doc = _minimal()
    doc["products"] = [
        {
            "name": "VPS",
            "type": "Other",
            "taxed": False,
            "description": "A virtual server",
            "prices": [
                {"currency": "USD", "billing_cycle": "Monthly", "amount": "9.99"},
                {"currency": "JPY", "billing_cycle": "Annually", "amount": "15000"},
            ],
        }
    ]
    doc["product_addons"] = [
        {
            "name": "Nightly backups",
            "taxed": True,
            "description": "",
            "prices": [{"currency": "USD", "billing_cycle": "Monthly", "amount": "2.00"}],
        }
    ]
    service = doc["clients"][0]["services"][0]
    service["notes"] = "Root password rotated\nin November"
    service["addons"][0]["product_addon"] = "Nightly backups"
    doc["clients"][0]["notes"] = [
        {
            "note": "Prefers phone calls",
            "author": "admin",
            "sticky": True,
            "created_at": "2026-11-01T10:00:00Z",
            "updated_at": "2026-11-02T10:00:00Z",
        }
    ]
    return doc


def test_a_restore_behaves_exactly_like_the_original_with_its_catalogue_and_notes(
    databases: Databases, reopen: Callable[[str], str]
) -> None:
    """The catalogue (type, taxed flag, prices), an addon's product addon, service notes
    and Client Notes travel with the document and round trip byte for byte; an untaxed
    product stays untaxed on the invoices a restored database makes."""
    from store.models import ClientNote, Pricing, Product, ProductAddon

    reopen(databases.new_url())
    import_document(_catalogued())
    exported = dumps(build_export())
    reopen(databases.new_url())
    import_document(load_document(exported))
    assert dumps(build_export()) == exported
    vps = Product.get(Product.name == "VPS")
    assert (vps.type, vps.taxed) == ("Other", False)
    assert sorted((p.billing_cycle, p.amount) for p in Pricing.select()) == [
        ("Annually", 15000),
        ("Monthly", 200),
        ("Monthly", 999),
    ]
    assert Addon.get().product_addon_id == ProductAddon.get().id
    assert Service.get().notes == "Root password rotated\nin November"
    note = ClientNote.get()
    assert (note.note, note.sticky, note.author) == ("Prefers phone calls", True, "admin")
    run_rules(dt.date(2026, 11, 17), load_settings(), only=("invoice",))
    hosting = InvoiceItem.get(
        InvoiceItem.type == "Hosting", InvoiceItem.related_type.is_null(False)
    )
    assert hosting.taxed is False  # the product's flag, kept by the restore


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda d: d["products"][0]["prices"].append(
                {"currency": "EUR", "billing_cycle": "Monthly", "amount": "1.00"}
            ),
            "products[0].prices[2].currency: unknown currency 'EUR'",
        ),
        (
            lambda d: d["products"][0]["prices"].append(
                {"currency": "USD", "billing_cycle": "Free", "amount": "0.00"}
            ),
            "products[0].prices[2].billing_cycle: a Free item has no price",
        ),
        (
            lambda d: d["products"][0]["prices"].append(
                {"currency": "USD", "billing_cycle": "Monthly", "amount": "8.00"}
            ),
            "products[0].prices[2]: a second price in USD for Monthly",
        ),
        (
            lambda d: d["clients"][0]["services"][0]["addons"][0].update(product_addon="Nope"),
            "clients[0].services[0].addons[0].product_addon: unknown product addon 'Nope'",
        ),
        (
            lambda d: d["products"].append(dict(d["products"][0])),
            "products[1].name: duplicate name 'VPS'",
        ),
    ],
)
def test_a_bad_catalogue_is_reported_and_nothing_written(
    db: str, change: Callable[[dict[str, Any]], None], expected: str
) -> None:
    doc = _catalogued()
    change(doc)
    assert expected in _errors(doc), _errors(doc)
    _assert_nothing_written()


def test_an_import_updates_the_catalogue_entries_already_there(db: str) -> None:
    """A product or price the database already has takes the document's values (one
    statement per table, whatever the catalogue's size)."""
    from store.models import Pricing, Product

    Currency.create(code="USD", is_default=True)
    old = Product.create(name="VPS", type="Hosting", taxed=True, description="old")
    Pricing.create(
        type="product",
        related_id=old.id,
        currency=Currency.get(code="USD"),
        billing_cycle="Monthly",
        amount=100,
    )
    import_document(_catalogued())
    vps = Product.get(Product.name == "VPS")
    assert vps.id == old.id and (vps.type, vps.taxed, vps.description) == (
        "Other",
        False,
        "A virtual server",
    )
    monthly = Pricing.get(
        (Pricing.type == "product")
        & (Pricing.related_id == old.id)
        & (Pricing.billing_cycle == "Monthly")
    )
    assert monthly.amount == 999 and Pricing.select().count() == 3
