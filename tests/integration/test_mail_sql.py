"""Set-based queuing (rules.mail.sql) writes exactly what rendering each email with Jinja writes."""

from __future__ import annotations

import datetime as dt

import pytest

from rules.mail.outbox import Notice, queue
from rules.mail.sql import compile_template, dialect
from rules.mail.templates import INVOICE_TEMPLATES, company_context
from store.db import writer
from store.models import Client, Contact, Currency, Email, EmailTemplate, Invoice, InvoiceItem
from store.settings import load_settings, save_settings

NAMES = ["Ana", "Núñez", "O'Brien", "[bold]x", "王小明", "Zoë-Ann", "a[0]]", "محمد"]


def _data() -> list[Notice]:
    """Clients and invoices that reach every branch: currencies with 0, 2, 3 and 4 decimals,
    a prefix, a suffix, both or neither (and SQL-looking ones), negative and large amounts,
    taxes on and off, paid and unpaid, several items in an order that is not their ids',
    billing contacts, empty fields."""
    currencies = [
        Currency.create(code="USD", prefix="$", suffix=" USD", is_default=True),
        Currency.create(code="EUR", suffix=" €"),
        Currency.create(code="JPY", prefix="¥", decimals=0),
        Currency.create(code="BHD", prefix="BHD ", decimals=3),
        Currency.create(code="GBP"),
        Currency.create(code="XTS", prefix="'%s?", suffix=" 100%'", decimals=4),
    ]
    notices = []
    for n, name in enumerate(NAMES):
        client = Client.create(
            first_name=name,
            last_name=NAMES[-n - 1],
            company="" if n % 2 else f"{name} & Co",
            email=f"c{n}@example.com",
            currency=currencies[n % len(currencies)],
            city="Zürich" if n % 3 else "",
        )
        if n % 3 == 0:
            contact = Contact.create(
                client=client, first_name="Bill", last_name="Ing", email=f"bill{n}@example.com"
            )
            Client.update(billing_contact=contact).where(Client.id == client.id).execute()
        amounts = [123_456_789 * (n + 1), -500, 7, 0][: 1 + n % 4]
        invoice = Invoice.create(
            client=client,
            number=f"INV-{n:04d}",
            date=dt.date(2026, 1, 1 + n),
            due_date=dt.date(2026, 2, 1 + n),
            date_paid=dt.date(2026, 2, 3) if n % 2 else None,
            status="Paid" if n % 2 else "Unpaid",
            payment_method="banktransfer",
            subtotal=sum(amounts),
            tax=(n % 3) * 1234,
            tax2=(n % 2) * 99,
            total=sum(amounts) + (n % 3) * 1234 + (n % 2) * 99,
        )
        for k, amount in enumerate(amounts):
            InvoiceItem.create(
                invoice=invoice,
                type="Hosting",
                description=f"Item {k} for {name} 🚀",
                amount=amount,
                sort_order=len(amounts) - k,
            )
        notices.append(Notice(client.id, invoice.id))
    return notices


def _emails() -> list[tuple[str, ...]]:
    rows = Email.select().order_by(Email.id)
    return [(e.client_id, e.template, e.to, e.subject, e.body_text, e.body_html) for e in rows]


@pytest.mark.parametrize("template", sorted(INVOICE_TEMPLATES))
def test_both_paths_write_the_same_emails(db: str, template: str) -> None:
    save_settings({"company_name": "Ünïcode & Sons", "signature": ""})
    notices = _data()
    stored = EmailTemplate.get(EmailTemplate.name == template)
    company = tuple(sorted(company_context(load_settings()).items()))
    for source in (stored.subject, stored.body_text):  # the set-based path is the one taken
        assert compile_template(source, company, dialect()) is not None
    with writer():
        assert queue(template, notices, set_based=False) == len(notices)
    by_jinja = _emails()
    Email.delete().execute()
    with writer():
        assert queue(template, notices) == len(notices)
    assert _emails() == by_jinja
    with writer():  # queued again: the same unique keys are skipped on this path too
        keyed = [Notice(n.client_id, n.invoice_id, unique_key=f"k{n.invoice_id}") for n in notices]
        assert queue(template, keyed) == len(notices)
        assert queue(template, keyed) == 0


def test_a_custom_template_with_branches_and_company_values(db: str) -> None:
    save_settings({"company_name": "Acme", "signature": "-- Acme billing"})
    source = (
        "{% if client.company %}For {{ client.company }}{% else %}For you{% endif %}: "
        "{{ client.full_name }} ({{ client.id }}), {{ invoice.number }}"
        "{% if invoice.date_paid %} paid {{ invoice.date_paid }}{% endif %}"
        "{% if company.name %} / {{ company.name }}{% endif %}\n"
        "{% for item in invoice.items %}* {{ item.description }} = {{ item.amount }}\n"
        "{% endfor %}{{ company.signature or company.name }}"
    )
    EmailTemplate.update(body_text=source).where(EmailTemplate.name == "Invoice Created").execute()
    notices = _data()
    with writer():
        queue("Invoice Created", notices, set_based=False)
    by_jinja = _emails()
    Email.delete().execute()
    with writer():
        queue("Invoice Created", notices)
    assert _emails() == by_jinja


def test_amounts_in_emails_use_the_currencys_own_prefix_suffix_and_decimals(db: str) -> None:
    """Both paths (Jinja and SQL) write amounts as Setup configures the currency."""
    source = "{% for item in invoice.items %}{{ item.amount }};{% endfor %}{{ invoice.total }}"
    EmailTemplate.update(body_text=source).where(EmailTemplate.name == "Invoice Created").execute()
    notices = []
    for n, (code, prefix, suffix, decimals, amount) in enumerate(
        [("USD", "$", " USD", 2, 1000), ("BHD", "BHD ", "", 3, 12345), ("JPY", "¥", "", 0, 1500)]
    ):
        currency = Currency.create(code=code, prefix=prefix, suffix=suffix, decimals=decimals)
        client = Client.create(first_name="A", last_name="B", email=f"{n}@x.org", currency=currency)
        invoice = Invoice.create(
            client=client,
            number=str(n),
            date=dt.date(2026, 1, 1),
            due_date=dt.date(2026, 1, 1),
            payment_method="banktransfer",
            subtotal=amount,
            total=amount * 1000,
        )
        InvoiceItem.create(invoice=invoice, type="Hosting", description="x", amount=amount)
        notices.append(Notice(client.id, invoice.id))
    expected = ["$10.00 USD;$10,000.00 USD", "BHD 12.345;BHD 12,345.000", "¥1,500;¥1,500,000"]
    for set_based in (False, True):
        Email.delete().execute()
        with writer():
            queue("Invoice Created", notices, set_based=set_based)
        assert [e.body_text for e in Email.select().order_by(Email.id)] == expected, set_based


@pytest.mark.parametrize(
    "source",
    [
        "{{ client.first_name|upper }}",
        "{{ client.first_name ~ '!' }}",
        "{% for item in invoice.items %}{{ loop.index }}{% endfor %}",
        "{{ invoice.items|length }}",
        "{% set x = 1 %}{{ x }}",
        "{{ new_password }}",
    ],
)
def test_anything_else_falls_back_to_jinja(source: str) -> None:
    assert compile_template(source, (("name", "Acme"),)) is None
