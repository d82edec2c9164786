from __future__ import annotations

import datetime as dt

import pytest
from peewee import IntegrityError

from store.db import writer
from store.models import (
    ActionLedger,
    Client,
    Contact,
    Currency,
    Invoice,
    InvoiceItem,
    Product,
    Service,
)
from store.settings import Settings, SettingsError, load_settings, save_settings


def _client(email: str = "ana@example.com", **extra: object) -> Client:
    currency = Currency.get_or_create(code="USD", defaults={"is_default": True})[0]
    return Client.create(
        first_name="Ana", last_name="Núñez", email=email, currency=currency, **extra
    )


def test_client_round_trip(db: str) -> None:
    c = _client(
        company="[bold]x",
        phone="+442071838750",
        country="GB",
        tax_exempt=True,
        admin_notes="line 1\nline 2",
        last_login_at=dt.datetime(2026, 1, 2, 3, 4, 5),
    )
    got = Client.get_by_id(c.id)
    assert (got.first_name, got.last_name, got.company) == ("Ana", "Núñez", "[bold]x")
    assert got.tax_exempt is True and got.late_fees_exempt is False
    assert got.last_login_at == dt.datetime(2026, 1, 2, 3, 4, 5)
    assert got.version == 1 and got.status == "Active"


def test_email_unique_case_insensitively(db: str) -> None:
    _client("ana@example.com")
    with pytest.raises(IntegrityError), writer():
        _client("ANA@Example.COM")
    assert Client.select().count() == 1


def test_billing_contact_link_and_delete(db: str) -> None:
    c = _client()
    contact = Contact.create(client=c, first_name="Bo", last_name="Li", email="bo@example.com")
    Client.update(billing_contact=contact).where(Client.id == c.id).execute()
    assert Client.get_by_id(c.id).billing_contact_id == contact.id
    contact.delete_instance()
    assert Client.get_by_id(c.id).billing_contact_id is None  # ON DELETE SET NULL


def test_money_columns_take_integers_only(db: str) -> None:
    c = _client()
    product = Product.create(name="VPS")
    with pytest.raises(TypeError):
        Service.create(client=c, product=product, amount=9.99, payment_method="banktransfer")
    s = Service.create(client=c, product=product, amount=999, payment_method="banktransfer")
    assert Service.get_by_id(s.id).amount == 999


def test_item_never_invoiced_twice_for_a_due_date(db: str) -> None:
    c = _client()
    inv = Invoice.create(
        client=c,
        number="1",
        date=dt.date(2026, 1, 1),
        due_date=dt.date(2026, 1, 15),
        payment_method="banktransfer",
    )
    due = dt.date(2026, 1, 15)
    InvoiceItem.create(
        invoice=inv,
        type="Hosting",
        description="VPS",
        amount=500,
        related_type="service",
        related_id=1,
        related_due_date=due,
    )
    with pytest.raises(IntegrityError), writer():
        InvoiceItem.create(
            invoice=inv,
            type="Hosting",
            description="VPS",
            amount=500,
            related_type="service",
            related_id=1,
            related_due_date=due,
        )
    # Items not tied to a service (NULL keys) are never in conflict.
    for _ in range(2):
        InvoiceItem.create(invoice=inv, type="Item", description="Setup", amount=100)
    assert InvoiceItem.select().count() == 3


def test_ledger_key_is_unique(db: str) -> None:
    day = dt.date(2026, 3, 1)
    ActionLedger.create(
        rule="overdue_notice", subject="invoice:1", stage="first", business_date=day
    )
    with pytest.raises(IntegrityError), writer():
        ActionLedger.create(
            rule="overdue_notice", subject="invoice:1", stage="first", business_date=day
        )
    ActionLedger.create(
        rule="overdue_notice", subject="invoice:1", stage="second", business_date=day
    )
    assert ActionLedger.select().count() == 2


def test_settings_defaults_and_saving(db: str) -> None:
    assert load_settings() == Settings()
    s = load_settings()
    assert (s.invoice_days_before_due, s.payment_reminder_days, s.overdue_notice_days) == (
        14,
        7,
        [1, 2, 3],
    )
    assert (s.late_fee_days, s.late_fee_type, s.late_fee_amount) == (5, "percentage", "10.00")
    assert (s.status_update, s.daily_hour, s.tax_inclusive) == ("active_products", 9, False)
    saved = save_settings({"late_fee_amount": "12.5", "timezone": "Europe/Berlin"})
    assert (saved.late_fee_amount, saved.timezone) == ("12.50", "Europe/Berlin")


def test_invalid_settings_write_nothing(db: str) -> None:
    with pytest.raises(SettingsError, match="daily_hour"):
        save_settings({"timezone": "Asia/Tokyo", "daily_hour": 24})
    assert load_settings().timezone == "UTC"
