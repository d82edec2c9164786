"""``gobiller demo``: a deterministic, realistic data set for trials and benchmarks.

The same seed and date give the same database. Rows are built as tuples and
bulk inserted in chunks (one transaction each), so a million clients stream in
bounded memory.

The data is billed up to its date as if the daily cron had always run (``_Billing``):
paid history, invoices coming due, a realistic set of overdue ones with the notices and
late fees they have had, and client statuses that follow their products, so the first
``gobiller cron`` on a fresh demo does one day's work.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import multiprocessing
import os
import queue
import random
import sys
from collections.abc import Callable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import phonenumbers
from dateutil.relativedelta import relativedelta

from rules.accounts.passwords import generate_password, hash_password
from rules.accounts.staff import add_staff
from rules.audit import SYSTEM_CLI
from rules.billing.automation import RunContext, business_date
from rules.billing.capture import CARD_EXPIRED, EPOCH, TRANSACTION_COLUMNS
from rules.billing.invoicing import CYCLE_MONTHS, INVOICE_COLUMNS, ITEM_COLUMNS, ITEM_TYPES
from rules.billing.late_fees import fee_for
from rules.billing.notices import stage_dates
from rules.billing.tax import TaxTable, compute
from rules.clients.fields import PREFERENCE_FIELDS
from rules.dates import DATE_MAX, DATE_MIN, WINDOW_TEXT
from rules.errors import RuleError
from store import sequences
from store.bulk import (
    analyze,
    bulk_insert,
    bulk_update,
    copy_rows,
    copy_text,
    indexes_built_after,
    reset_sequences,
)
from store.db import is_postgres, writer
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
    Invoice,
    InvoiceItem,
    Pricing,
    Product,
    ProductAddon,
    SecurityQuestion,
    Service,
    Staff,
    StoredCard,
    TaxRule,
    Transaction,
    utcnow,
)
from store.models.enums import (
    ACTIVE_DOMAIN_STATUSES,
    ACTIVE_SERVICE_STATUSES,
    BillingCycle,
    ClientStatus,
    DomainStatus,
    InvoiceStatus,
    ItemType,
    PricingType,
    ProductType,
    ServiceStatus,
)
from store.money import from_default_currency
from store.queries import lookup
from store.settings import Settings, load_settings, save_settings

CHUNK = 5000
#: The demo company's timezone: its business date is the demo's default date.
DEMO_TIMEZONE = "Europe/London"

# (display name, ascii form for email addresses)
FIRST_NAMES: list[tuple[str, str]] = [
    ("James", "james"),
    ("Mary", "mary"),
    ("José", "jose"),
    ("Zoë", "zoe"),
    ("Chloé", "chloe"),
    ("Søren", "soren"),
    ("Łukasz", "lukasz"),
    ("Björn", "bjorn"),
    ("Anaïs", "anais"),
    ("François", "francois"),
    ("Siobhán", "siobhan"),
    ("Ngozi", "ngozi"),
    ("Priya", "priya"),
    ("محمد", "mohammed"),
    ("فاطمة", "fatima"),
    ("أحمد", "ahmed"),
    ("ليلى", "layla"),
    ("伟", "wei"),
    ("芳", "fang"),
    ("翔太", "shota"),
    ("さくら", "sakura"),
    ("민준", "minjun"),
    ("Дмитрий", "dmitry"),
    ("Αλέξανδρος", "alexandros"),
    ("Ana", "ana"),
    ("Liam", "liam"),
]
LAST_NAMES: list[tuple[str, str]] = [
    ("Smith", "smith"),
    ("O'Brien", "obrien"),
    ("D'Angelo", "dangelo"),
    ("Müller", "muller"),
    ("García", "garcia"),
    ("Núñez", "nunez"),
    ("Dvořák", "dvorak"),
    ("Łęcki", "lecki"),
    ("van der Berg", "vanderberg"),
    ("Ó Súilleabháin", "osullivan"),
    ("Okafor", "okafor"),
    ("Patel", "patel"),
    ("العلي", "alali"),
    ("الحسن", "alhassan"),
    ("王", "wang"),
    ("李", "li"),
    ("田中", "tanaka"),
    ("佐藤", "sato"),
    ("김", "kim"),
    ("Иванов", "ivanov"),
    ("Παπαδόπουλος", "papadopoulos"),
    ("Johnson", "johnson"),
    ("Nguyễn", "nguyen"),
]
COMPANIES = [
    "",
    "",
    "",
    "Acme Hosting Ltd",
    "Nordlicht GmbH",
    "Café Olé SARL",
    "O'Reilly & Sons",
    "株式会社サクラ",
    "شركة النور",
    "Pixel Forge LLC",
    "Blue Ocean Web",
    "[TODO] Labs",
    "Müller & Partner",
    "Zhōngguó Cloud",
    "Reseller Hub Inc",
]
COUNTRIES: list[tuple[str, str, str, str]] = [
    # code, city, state, postcode
    ("US", "Austin", "TX", "73301"),
    ("US", "San Francisco", "CA", "94103"),
    ("GB", "London", "", "SW1A 1AA"),
    ("DE", "München", "BY", "80331"),
    ("FR", "Paris", "", "75001"),
    ("JP", "東京", "Tokyo", "100-0001"),
    ("EG", "القاهرة", "", "11511"),
    ("SA", "الرياض", "", "11564"),
    ("BR", "São Paulo", "SP", "01000-000"),
    ("IN", "Mumbai", "MH", "400001"),
    ("CA", "Toronto", "ON", "M5H 2N2"),
    ("AU", "Sydney", "NSW", "2000"),
    ("ES", "Sevilla", "", "41001"),
    ("NL", "Amsterdam", "", "1011"),
    ("CN", "北京", "Beijing", "100000"),
    ("IE", "Dún Laoghaire", "", "A96 K0H2"),
]
CURRENCY_FOR = {
    "US": "USD",
    "GB": "GBP",
    "DE": "EUR",
    "FR": "EUR",
    "ES": "EUR",
    "NL": "EUR",
    "IE": "EUR",
}
PRODUCTS = [
    ("Shared Hosting Starter", 499),
    ("Shared Hosting Pro", 999),
    ("Reseller Hosting", 2999),
    ("VPS 2GB", 1500),
    ("VPS 8GB", 4800),
    ("Dedicated Server", 12900),
    ("Managed WordPress", 1900),
]
ADDONS = [
    ("Daily Backups", 300),
    ("Dedicated IP", 200),
    ("SSL Certificate", 900),
    ("cPanel Licence", 1500),
]
TLDS = [("com", 1299), ("net", 1399), ("org", 1199), ("co.uk", 899), ("de", 799), ("io", 3999)]
STREETS = [
    "Main Street",
    "Rue de Rivoli",
    "Königsallee",
    "High Street",
    "شارع التحرير",
    "銀座通り",
    "Avenida Paulista",
    "Baker Street",
]
SERVICE_STATUSES = [s.value for s in ServiceStatus]
DOMAIN_STATUSES = [s.value for s in DomainStatus]
CYCLES = [
    BillingCycle.MONTHLY,
    BillingCycle.MONTHLY,
    BillingCycle.QUARTERLY,
    BillingCycle.SEMI_ANNUALLY,
    BillingCycle.ANNUALLY,
    BillingCycle.ANNUALLY,
    BillingCycle.BIENNIALLY,
    BillingCycle.TRIENNIALLY,
    BillingCycle.FREE,
    BillingCycle.ONE_TIME,
]
SECURITY_QUESTIONS = [
    "What was the name of your first pet?",
    "In which city were you born?",
    "What was your first car?",
]


def _preference(name: str, method: str, r: Callable[[], float]) -> bool:
    """A demo client's billing preference (``rules.clients.fields``): each ticked for about
    one client in 20, marketing opt-out one in 10, Disable CC Processing only for card
    payers."""
    if name == "cc_processing_disabled":
        return method == "sandboxcard" and r() < 0.05
    return r() < (0.1 if name == "marketing_opt_out" else 0.05)


CLIENT_COLUMNS = (
    "id",
    "first_name",
    "last_name",
    "company",
    "email",
    "address1",
    "address2",
    "city",
    "state",
    "postcode",
    "country",
    "phone",
    "tax_id",
    "language",
    "status",
    "currency_id",
    "group_id",
    "payment_method",
    "billing_contact_id",
    *PREFERENCE_FIELDS,
    "admin_notes",
    "password_hash",
    "password_must_change",
    "security_question_id",
    "security_answer_hash",
    "totp_secret",
    "totp_last_step",
    "created_at",
    "updated_at",
    "last_login_at",
    "last_login_ip",
    "version",
    "email_key",
    "search_text",
)
CONTACT_COLUMNS = (
    "id",
    "client_id",
    "first_name",
    "last_name",
    "company",
    "email",
    "address1",
    "address2",
    "city",
    "state",
    "postcode",
    "country",
    "phone",
    "email_key",
)
SERVICE_COLUMNS = (
    "id",
    "client_id",
    "product_id",
    "domain",
    "status",
    "billing_cycle",
    "amount",
    "next_due_date",
    "anchor_day",
    "payment_method",
    "created_at",
)
ADDON_COLUMNS = (
    "id",
    "service_id",
    "client_id",
    "product_addon_id",
    "name",
    "status",
    "billing_cycle",
    "amount",
    "next_due_date",
    "anchor_day",
    "payment_method",
    "created_at",
)
DOMAIN_COLUMNS = (
    "id",
    "client_id",
    "name",
    "status",
    "amount",
    "next_due_date",
    "anchor_day",
    "payment_method",
    "created_at",
)
LEDGER_COLUMNS = (
    "id",
    "rule",
    "subject",
    "stage",
    "business_date",
    "outcome",
    "detail",
    "created_at",
)
CARD_COLUMNS = ("id", "client_id", "gateway", "token", "last4", "expiry", "created_at")
VALUE_COLUMNS = ("id", "client_id", "field_id", "value")


@dataclass
class DemoResult:
    clients: int
    admin_password: str | None
    rows: int


def _phone_pool(rng: random.Random) -> dict[str, list[str]]:
    """Valid mobile numbers per country: the example number with its tail varied."""
    pool: dict[str, list[str]] = {}
    for code in sorted({c[0] for c in COUNTRIES}):
        example = phonenumbers.example_number_for_type(code, phonenumbers.PhoneNumberType.MOBILE)
        assert example is not None, code
        base = phonenumbers.format_number(example, phonenumbers.PhoneNumberFormat.E164)
        found = []
        for _ in range(60):
            candidate = base[:-3] + f"{rng.randrange(1000):03d}"
            if phonenumbers.is_valid_number(phonenumbers.parse(candidate, None)):
                found.append(candidate)
        pool[code] = found or [base]
    return pool


def _reference_data() -> dict[str, Any]:
    """Settings, currencies, groups, tax rules, fields, questions and products."""
    save_settings(
        {
            "company_name": "Demo Hosting Ltd",
            "company_address": "1 Demo Street, Springfield, SP1 2AB, United Kingdom",
            "bank_transfer_instructions": "Demo Bank, sort code 00-00-00, account 12345678",
            "system_url": "https://billing.demo.test/",
            "timezone": DEMO_TIMEZONE,
        }
    )
    for code, prefix, suffix, rate, default in (
        ("USD", "$", " USD", "1", True),
        ("EUR", "€", " EUR", "0.92", False),
        ("GBP", "£", " GBP", "0.79", False),
    ):
        Currency.create(
            code=code, prefix=prefix, suffix=suffix, decimals=2, rate=rate, is_default=default
        )
    for name, colour, bp, sep in (
        ("Resellers", "#ff8800", 1000, True),
        ("VIP", "#8a2be2", 500, False),
        ("Non-profit", "#2e8b57", 2000, False),
    ):
        ClientGroup.create(name=name, colour=colour, discount_bp=bp, separate_invoices=sep)
    tax_rules: list[tuple[int, str, str, str, int]] = [
        (1, "VAT", "GB", "", 200000),
        (1, "MwSt", "DE", "", 190000),
        (1, "TVA", "FR", "", 200000),
        (1, "Sales Tax", "US", "CA", 72500),
        (1, "IVA", "ES", "", 210000),
        (2, "County Tax", "US", "CA", 10000),
    ]
    for level, name, country, state, rate_e4 in tax_rules:
        TaxRule.create(level=level, name=name, country=country, state=state, rate_e4=rate_e4)
    CustomField.create(name="Customer Number", type="text", regex=r"C-\d{6}", sort_order=0)
    CustomField.create(
        name="Referral Source",
        type="dropdown",
        sort_order=1,
        options=json.dumps(["Search", "Friend", "Advert", "Other"]),
    )
    CustomField.create(name="Newsletter", type="tickbox", sort_order=2)
    CustomField.create(name="Reseller Password", type="password", admin_only=True, sort_order=3)
    for q in SECURITY_QUESTIONS:
        SecurityQuestion.create(question=q)
    _catalogue()
    return {
        "currency": lookup(Currency, Currency.code, Currency.id),
        "groups": [g.id for g in ClientGroup.select().order_by(ClientGroup.id)],
        "discounts": {g.id: (g.discount_bp, g.name) for g in ClientGroup.select()},
        "rates": {c.id: (c.decimals, str(c.rate)) for c in Currency.select()},
        "fields": {f.name: f.id for f in CustomField.select()},
        "questions": [q.id for q in SecurityQuestion.select().order_by(SecurityQuestion.id)],
        "products": [p.id for p in Product.select().order_by(Product.id)],
        "addons": {a.name: a.id for a in ProductAddon.select()},
    }


#: Demo prices per billing cycle: the monthly price times the months, less a discount
#: for paying ahead (basis points off).
CYCLE_DISCOUNT_BP = {
    BillingCycle.MONTHLY: 0,
    BillingCycle.QUARTERLY: 0,
    BillingCycle.SEMI_ANNUALLY: 300,
    BillingCycle.ANNUALLY: 1000,
    BillingCycle.BIENNIALLY: 1500,
    BillingCycle.TRIENNIALLY: 2000,
}


def _catalogue() -> None:
    """The demo products and product addons, priced in every demo currency and every
    recurring cycle (converted from USD at the currency's rate), so the add dialogs and
    ``gobiller service add`` price from the catalogue."""
    currencies = list(Currency.select())
    rows: list[dict[str, Any]] = []
    entries: list[tuple[str, Any, str, int, dict[str, Any]]] = [
        (PricingType.PRODUCT, Product, name, monthly, {"type": _product_type(name)})
        for name, monthly in PRODUCTS
    ] + [(PricingType.ADDON, ProductAddon, name, monthly, {}) for name, monthly in ADDONS]
    for kind, model, name, monthly, extra in entries:
        entry = model.create(name=name, **extra)
        for currency in currencies:
            for cycle, off_bp in CYCLE_DISCOUNT_BP.items():
                usd = Decimal(monthly * CYCLE_MONTHS[cycle] * (10_000 - off_bp)) / 1_000_000
                amount = from_default_currency(usd, currency.rate, currency.decimals)
                rows.append(
                    {
                        "type": kind,
                        "related_id": entry.id,
                        "currency": currency.id,
                        "billing_cycle": cycle,
                        "amount": amount,
                    }
                )
    Pricing.insert_many(rows).execute()


def _product_type(name: str) -> str:
    return ProductType.OTHER if name == "Dedicated Server" else ProductType.HOSTING


def _due_near(day: dt.date, rng: random.Random) -> dt.date:
    """A due date near ``day``: spread over recent and coming weeks."""
    return day + dt.timedelta(days=rng.randrange(-40, 60))


#: How far the demo data reaches around its date: accounts created up to 2000 days
#: before it, cards expiring up to 3 years after it (due dates stay within 60 days).
DEMO_DAYS_BEFORE = 2000
DEMO_YEARS_AFTER = 3
#: The demo's dates for which every generated date stays inside the plausible window.
DEMO_FIRST = DATE_MIN + dt.timedelta(days=DEMO_DAYS_BEFORE)
DEMO_LAST = dt.date(DATE_MAX.year - DEMO_YEARS_AFTER, 12, 31)


#: Paid invoices kept per billed item before its current period: a short history, so a
#: million-client demo stays a few rows a client.
HISTORY_PERIODS = 2
HISTORY_DAYS = 120
OTHER_STATUSES = (
    InvoiceStatus.CANCELLED,
    InvoiceStatus.REFUNDED,
    InvoiceStatus.DRAFT,
    InvoiceStatus.COLLECTIONS,
    InvoiceStatus.PAYMENT_PENDING,
)
#: The share of bank transfer and mail-in invoices paid by their due date; the rest are
#: the demo's overdue invoices (a declined or expired card leaves its invoices unpaid too).
PAID_SHARE = 0.85


@dataclass(frozen=True)
class _Payer:
    """What billing needs to know of a demo client."""

    id: int
    country: str
    state: str
    tax_exempt: bool
    late_fees_exempt: bool
    method: str
    #: "ok": a card the sandbox approves; "declined"; "" for no card (or processing off).
    card: str
    card_id: int
    card_expiry: str  # YYYY-MM, "" without a card
    discount_bp: int
    group_name: str
    decimals: int
    rate: str
    created: dt.date


class _Billing:
    """The invoices, late fees and ledger the daily cron would have left by the demo date.

    Every billed item (a service or addon in an active status on a recurring cycle, an
    active domain, yearly) is invoiced for each due date up to the horizon the cron of
    the day before reached (``invoice_days_before_due`` - 1 days after the demo date),
    with a short paid history before that. Card clients were charged on the due date
    (the capture rule's default), others paid by it with ``PAID_SHARE``; what is left
    unpaid carries the notices already sent and the late fee already added (in the
    ledger, with the keys the rules claim: PRODUCT.md §3), so the first ``gobiller cron``
    on the demo date does one day's work, not the backlog of years.
    """

    def __init__(self, today: dt.date, settings: Settings, rng: random.Random) -> None:
        self.today = today
        self.settings = settings
        self.rng = rng
        self.ctx = RunContext(business_date=today, settings=settings)
        self.taxes = TaxTable()
        self.horizon = today + dt.timedelta(days=settings.invoice_days_before_due - 1)
        self.invoices: list[tuple[Any, ...]] = []
        self.items: list[tuple[Any, ...]] = []
        self.ledger: list[tuple[Any, ...]] = []
        #: The money received on paid invoices (their balance is zero, as the rules read it).
        self.transactions: list[tuple[Any, ...]] = []
        self.asked: set[int] = set()  # cards whose client was asked for a new one
        self.stamp = dt.datetime.combine(today, dt.time(9, 0)).isoformat(" ")

    def bill(
        self,
        counters: dict[str, int],
        payer: _Payer,
        kind: str,
        item_id: int,
        name: str,
        amount: int,
        months: int,
        due: dt.date,
    ) -> dt.date:
        """Invoice item ``item_id`` (a ``kind`` billed every ``months`` months, first
        drawn due ``due``) up to the horizon; return its next due date (the first period
        not paid)."""
        anchor = due.day
        earlier = []
        for n in range(1, HISTORY_PERIODS + 1):
            back = due + relativedelta(months=-months * n, day=anchor)
            if back < payer.created or (self.today - back).days > HISTORY_DAYS:
                break
            earlier.append(back)
        for back in reversed(earlier):
            self._invoice(counters, payer, kind, item_id, name, amount, back, paid=True)
        while due <= self.horizon:
            paid = self._paid(payer, due)
            self._invoice(counters, payer, kind, item_id, name, amount, due, paid=paid)
            if not paid:
                break
            due = due + relativedelta(months=months, day=anchor)
        return due

    def _paid(self, payer: _Payer, due: dt.date) -> bool:
        """Whether the invoice due on ``due`` was paid before the demo date."""
        if due >= self.today:
            return False  # charged or paid on its due date at the earliest
        if payer.card:
            return payer.card == "ok" and payer.card_expiry >= f"{due:%Y-%m}"
        return self.rng.random() < PAID_SHARE

    def _invoice(
        self,
        counters: dict[str, int],
        payer: _Payer,
        kind: str,
        item_id: int,
        name: str,
        amount: int,
        due: dt.date,
        *,
        paid: bool,
    ) -> None:
        counters["invoice"] += 1
        iid = counters["invoice"]
        s = self.settings
        issued = min(max(due - dt.timedelta(days=s.invoice_days_before_due), payer.created), due)
        taxable = not payer.tax_exempt and s.tax_enabled
        text = {"service": "Hosting", "addon": "Addon", "domain": "Domain renewal"}[kind]
        lines: list[tuple[Any, ...]] = [
            (ITEM_TYPES[kind], f"{text}: {name} ({due:%d/%m/%Y})", amount, taxable, kind, item_id)
        ]
        if payer.discount_bp:
            off = (amount * payer.discount_bp + 5000) // 10_000
            if off:
                share = f"{Decimal(payer.discount_bp) / 100}%"
                text = f"Client group discount: {payer.group_name} ({share})"
                lines.append((ItemType.ITEM.value, text, -off, taxable, None, None))
        overdue_from = max(due, issued)
        late = (
            not paid
            and not payer.late_fees_exempt
            and s.late_fee_days > 0
            and overdue_from + dt.timedelta(days=s.late_fee_days) < self.today
        )
        if late:
            subtotal = sum(line[2] for line in lines)
            fee = fee_for(subtotal, payer.decimals, payer.rate, s)
            if fee > 0:
                taxed = s.late_fee_taxed and taxable
                lines.append((ItemType.LATE_FEE.value, "Late fee", fee, taxed, None, None))
                self._claim(counters, "late_fee", f"invoice:{iid}", "", overdue_from)
        rates = self.taxes.rates_for(
            payer.country, payer.state, exempt=payer.tax_exempt, settings=s
        )
        totals = compute([(line[2], line[3]) for line in lines], rates, s)
        if paid:
            status, date_paid = InvoiceStatus.PAID, due
            if not payer.card:
                date_paid = max(issued, due - dt.timedelta(days=self.rng.randrange(0, 10)))
            self.transactions.append(
                (
                    payer.id,
                    iid,
                    payer.method,
                    f"demo-{iid}",
                    None,
                    totals.total,
                    0,
                    0,
                    f"Invoice Payment ({iid})",
                    f"{date_paid.isoformat()} 09:00:00",
                )
            )
        else:
            status, date_paid = InvoiceStatus.UNPAID, None
            for stage, day in stage_dates(due, self.ctx, issued).items():
                if day < self.today:  # sent by an earlier day's run
                    self._claim(counters, "notice", f"invoice:{iid}", stage, day)
            yesterday = self.today - dt.timedelta(days=1)
            if payer.card and due <= yesterday and payer.card_expiry < f"{yesterday:%Y-%m}":
                if payer.card_id not in self.asked:  # asked once for a new card
                    self.asked.add(payer.card_id)
                    self._claim(
                        counters,
                        CARD_EXPIRED,
                        f"client:{payer.id}",
                        f"card:{payer.card_id}",
                        EPOCH,
                    )
        self.invoices.append(
            (
                iid,
                payer.id,
                str(iid),
                issued.isoformat(),
                due.isoformat(),
                date_paid.isoformat() if date_paid else None,
                status,
                payer.method,
                totals.subtotal,
                totals.tax,
                totals.tax2,
                totals.total,
                rates.level1_e4,
                rates.level2_e4,
                "",
                f"{issued.isoformat()} 09:00:00",
                1,
            )
        )
        for n, (itype, description, value, taxed, rtype, rid) in enumerate(lines):
            counters["item"] += 1
            self.items.append(
                (
                    counters["item"],
                    iid,
                    itype,
                    description,
                    value,
                    taxed,
                    rtype,
                    rid,
                    due.isoformat() if rtype else None,
                    n,
                )
            )

    def _claim(
        self, counters: dict[str, int], rule: str, subject: str, stage: str, day: dt.date
    ) -> None:
        counters["ledger"] += 1
        self.ledger.append(
            (counters["ledger"], rule, subject, stage, day.isoformat(), "done", "", self.stamp)
        )

    def other(
        self, counters: dict[str, int], payer: _Payer, status: str, product: tuple[str, int]
    ) -> None:
        """One invoice of ``status`` (Cancelled, Draft...: none the rules act on), billing
        nothing the rules track, dated in the last ``HISTORY_DAYS`` days."""
        counters["invoice"] += 1
        iid = counters["invoice"]
        issued = max(
            self.today - dt.timedelta(days=self.rng.randrange(HISTORY_DAYS)), payer.created
        )
        due = issued + dt.timedelta(days=self.settings.invoice_days_before_due)
        taxable = not payer.tax_exempt and self.settings.tax_enabled
        rates = self.taxes.rates_for(
            payer.country, payer.state, exempt=payer.tax_exempt, settings=self.settings
        )
        name, amount = product
        totals = compute([(amount, taxable)], rates, self.settings)
        self.invoices.append(
            (
                iid,
                payer.id,
                str(iid),
                issued.isoformat(),
                due.isoformat(),
                None,
                status,
                payer.method,
                totals.subtotal,
                totals.tax,
                totals.tax2,
                totals.total,
                rates.level1_e4,
                rates.level2_e4,
                "",
                f"{issued.isoformat()} 09:00:00",
                1,
            )
        )
        counters["item"] += 1
        self.items.append(
            (
                counters["item"],
                iid,
                ItemType.ITEM.value,
                f"{name} ({issued:%d/%m/%Y})",
                amount,
                taxable,
                None,
                None,
                None,
                0,
            )
        )

    def take(self) -> list[tuple[Any, tuple[str, ...], list[tuple[Any, ...]]]]:
        """The rows built since the last call, for bulk insertion."""
        rows = [
            (Invoice, INVOICE_COLUMNS, self.invoices),
            (InvoiceItem, ITEM_COLUMNS, self.items),
            (ActionLedger, LEDGER_COLUMNS, self.ledger),
            (Transaction, TRANSACTION_COLUMNS, self.transactions),
        ]
        self.invoices, self.items, self.ledger, self.transactions = [], [], [], []
        return rows


def generate_demo(
    clients: int,
    seed: int = 1,
    today: dt.date | None = None,
    progress: Callable[[int], None] | None = None,
) -> DemoResult:
    """Fill an empty database with ``clients`` demo clients and everything around them,
    billed up to ``today`` (default: the business date of the demo's timezone, the date
    ``gobiller cron`` runs for): every item due within ``invoice_days_before_due`` less
    one day has its invoice, so the first cron invoices one day's items (``_Billing``).

    Raises ``RuleError`` for fewer than one client, a database that is not empty, or a
    date whose data would leave the plausible window (``DEMO_FIRST``..``DEMO_LAST``).
    """
    if clients < 1:
        raise RuleError("--clients must be at least 1")
    if Client.select().exists() or Currency.select().exists():
        raise RuleError("the database is not empty: demo data goes into a new database")
    today = today or business_date(utcnow(), Settings(timezone=DEMO_TIMEZONE))[0]
    if not DEMO_FIRST <= today <= DEMO_LAST:
        raise RuleError(
            f"--date must be between {DEMO_FIRST} and {DEMO_LAST}: the demo spreads its data up "
            f"to {DEMO_DAYS_BEFORE} days before and {DEMO_YEARS_AFTER} years after it, and every "
            f"date must stay {WINDOW_TEXT}"
        )
    rng = random.Random(seed)
    with writer():
        ref = _reference_data()
        admin_password = None
        if not Staff.select().where(Staff.username == "admin").exists():
            admin_password = generate_password()
            add_staff("admin", admin_password, "admin", SYSTEM_CLI)
    phones = _phone_pool(rng)
    # Hashing is slow on purpose: a few hashes shared by the demo clients that have one.
    demo_password_hash = hash_password("demo-client-password")
    answer_hash = hash_password("london")
    counters = {
        "contact": 0,
        "service": 0,
        "addon": 0,
        "domain": 0,
        "invoice": 0,
        "item": 0,
        "card": 0,
        "value": 0,
        "ledger": 0,
    }
    biller = _Billing(today, load_settings(), rng)
    rows_total = 0
    filled: dict[Any, None] = {}  # the tables loaded, in order
    now = dt.datetime.combine(today, dt.time(12, 0))

    def make(ids: range) -> tuple[list[_Rows], list[tuple[int, int]]]:
        return _build_chunk(
            ids,
            rng,
            ref,
            phones,
            counters,
            today,
            now,
            demo_password_hash,
            answer_hash,
            biller,
        )

    # PostgreSQL: the whole load is one transaction (a failed demo leaves the database as
    # it was) with the indexes built once at its end, not row by row (store.bulk).
    with writer() if is_postgres() else nullcontext(), indexes_built_after():
        for chunk in _chunks(clients, make):
            with writer():
                for model, columns, rows, count in chunk.tables:
                    filled[model] = None
                    if isinstance(rows, str):
                        copy_rows(model, columns, rows)
                    else:
                        bulk_insert(model, columns, rows)
                    rows_total += count
                # Billing contacts point at contacts inserted after their clients.
                bulk_update(Client, ("billing_contact_id",), chunk.billing)
            if progress:
                progress(chunk.stop - 1)
        with writer():
            # Demo invoices are numbered by their ids: the sequence goes on after the last.
            sequences.raise_to(
                [str(Invoice.select(Invoice.id).order_by(Invoice.id.desc()).scalar())]
            )
            reset_sequences(
                (
                    Client,
                    Contact,
                    Service,
                    Addon,
                    Domain,
                    Invoice,
                    InvoiceItem,
                    StoredCard,
                    CustomFieldValue,
                    ActionLedger,
                )
            )
        analyze(filled)
    return DemoResult(clients=clients, admin_password=admin_password, rows=rows_total)


#: A table's rows of one chunk: the model, its columns, the rows.
_Rows = tuple[Any, tuple[str, ...], list[tuple[Any, ...]]]


@dataclass
class _Chunk:
    """The rows of one chunk of clients, ready to load: per table the model, the columns,
    the rows (or, made in the second process, their COPY text) and their number."""

    stop: int
    tables: Sequence[tuple[Any, tuple[str, ...], list[tuple[Any, ...]] | str, int]]
    billing: list[tuple[int, int]]


def _chunks(
    clients: int, make: Callable[[range], tuple[list[_Rows], list[tuple[int, int]]]]
) -> Iterator[_Chunk]:
    """The demo's chunks of ``CHUNK`` clients, in order, each made by ``make``. On
    PostgreSQL, with more than one chunk, they are made (and written as COPY text) in a
    second process while this one loads the previous chunk: the same rows in the same
    order, as one process makes them all, so the same seed still gives the same data."""
    ranges = [
        range(start, min(start + CHUNK, clients + 1)) for start in range(1, clients + 1, CHUNK)
    ]
    if is_postgres() and len(ranges) > 1:
        yield from _made_in_a_second_process(ranges, make)
        return
    for ids in ranges:
        tables, billing = make(ids)
        yield _Chunk(ids.stop, [(m, c, rows, len(rows)) for m, c, rows in tables], billing)


def _made_in_a_second_process(
    ranges: list[range], make: Callable[[range], tuple[list[_Rows], list[tuple[int, int]]]]
) -> Iterator[_Chunk]:
    """``_chunks`` made by a forked process that never touches the database (its rows go
    through a queue of two chunks at most). Raises ``RuleError`` when that process fails
    or stops; it is stopped when the load ends early."""
    context = multiprocessing.get_context("fork")
    out: Any = context.Queue(maxsize=2)

    parent = os.getpid()

    def put(item: _Chunk | str | None) -> None:
        while True:
            try:
                out.put(item, timeout=1.0)
                return
            except queue.Full:
                if os.getppid() != parent:  # the loading process is gone (killed)
                    os._exit(1)

    def produce() -> None:
        try:
            for ids in ranges:
                tables, billing = make(ids)
                texts = [(m, c, copy_text(rows), len(rows)) for m, c, rows in tables]
                put(_Chunk(ids.stop, texts, billing))
            put(None)
        except BaseException as exc:  # noqa: BLE001  (reported by the loading process)
            put(f"{type(exc).__name__}: {exc}")

    sys.stdout.flush()  # what is buffered now must not be written twice
    sys.stderr.flush()
    child = context.Process(target=produce, name="gobiller-demo-rows", daemon=True)
    child.start()
    try:
        while True:
            try:
                item = out.get(timeout=1.0)
            except queue.Empty:
                if child.is_alive():
                    continue
                try:  # what it put last may still be on its way
                    item = out.get(timeout=1.0)
                except queue.Empty:
                    raise RuleError(
                        f"the process making the demo's rows stopped (exit code {child.exitcode})"
                    ) from None
            if item is None:
                return
            if isinstance(item, str):
                raise RuleError(f"the demo's rows could not be made: {item}")
            yield item
    finally:
        if child.is_alive():
            child.terminate()
        child.join()


def _build_chunk(
    ids: range,
    rng: random.Random,
    ref: dict[str, Any],
    phones: dict[str, list[str]],
    counters: dict[str, int],
    today: dt.date,
    now: dt.datetime,
    password_hash: str,
    answer_hash: str,
    biller: _Billing,
) -> tuple[list[_Rows], list[tuple[int, int]]]:
    clients: list[tuple[Any, ...]] = []
    contacts: list[tuple[Any, ...]] = []
    services: list[tuple[Any, ...]] = []
    addons: list[tuple[Any, ...]] = []
    domains: list[tuple[Any, ...]] = []
    cards: list[tuple[Any, ...]] = []
    values: list[tuple[Any, ...]] = []
    billing: list[tuple[int, int]] = []
    r = rng.random
    choice = rng.choice
    fields = ref["fields"]
    for cid in ids:
        first, first_ascii = choice(FIRST_NAMES)
        last, last_ascii = choice(LAST_NAMES)
        country, city, state, postcode = choice(COUNTRIES)
        currency = CURRENCY_FOR.get(country, "USD")
        roll = r()
        status = "Active" if roll < 0.8 else ("Inactive" if roll < 0.95 else "Closed")
        method = choice(("banktransfer", "sandboxcard", "sandboxcard", "mailin"))
        created = now - dt.timedelta(
            days=rng.randrange(1, DEMO_DAYS_BEFORE), seconds=rng.randrange(86400)
        )
        login = (
            now - dt.timedelta(days=rng.randrange(0, 200), seconds=rng.randrange(86400))
            if r() < 0.85
            else None
        )
        has_question = r() < 0.3
        two_factor = r() < 0.05
        domain = choice(("example.com", "example.org", "example.net"))
        email = f"{first_ascii}.{last_ascii}{cid}@{domain}"
        group_id = choice(ref["groups"]) if r() < 0.2 else None
        company = choice(COMPANIES)  # drawn in the order the row lists them (same data per seed)
        address1 = f"{rng.randrange(1, 400)} {choice(STREETS)}"
        address2 = "Suite 5" if r() < 0.1 else ""
        phone = choice(phones[country])
        derived = Client.derived_values(
            {
                "first_name": first,
                "last_name": last,
                "company": company,
                "email": email,
                "phone": phone,
            }
        )
        clients.append(
            (
                cid,
                first,
                last,
                company,
                email,
                address1,
                address2,
                city,
                state,
                postcode,
                country,
                phone,
                f"VAT{cid:08d}" if r() < 0.1 else "",
                "",
                status,
                ref["currency"][currency],
                group_id,
                method,
                None,
                *(_preference(name, method, r) for name in PREFERENCE_FIELDS),
                "Prefers email contact.\nVerified by phone." if r() < 0.05 else "",
                password_hash if r() < 0.01 else "",
                False,
                choice(ref["questions"]) if has_question else None,
                answer_hash if has_question else "",
                base64.b32encode(rng.randbytes(20)).decode() if two_factor else "",
                0,
                created.isoformat(" "),
                created.isoformat(" "),
                login.isoformat(" ") if login else None,
                "203.0.113.7" if login else "",
                1,
                derived["email_key"],
                derived["search_text"],
            )
        )
        if r() < 0.3:
            counters["contact"] += 1
            contact_id = counters["contact"]
            cfirst, cfirst_ascii = choice(FIRST_NAMES)
            contact_email = f"{cfirst_ascii}.billing{cid}@example.net"
            contacts.append(
                (
                    contact_id,
                    cid,
                    cfirst,
                    last,
                    "",
                    contact_email,
                    f"{rng.randrange(1, 99)} {choice(STREETS)}",
                    "",
                    city,
                    state,
                    postcode,
                    country,
                    choice(phones[country]),
                    Contact.derived_values({"email": contact_email})["email_key"],
                )
            )
            if r() < 0.5:
                billing.append((cid, contact_id))
        if r() < 0.7:
            counters["value"] += 1
            values.append((counters["value"], cid, fields["Customer Number"], f"C-{cid:06d}"))
        if r() < 0.4:
            counters["value"] += 1
            values.append(
                (
                    counters["value"],
                    cid,
                    fields["Referral Source"],
                    choice(("Search", "Friend", "Advert", "Other")),
                )
            )
        if r() < 0.3:
            counters["value"] += 1
            values.append((counters["value"], cid, fields["Newsletter"], "on"))
        card, card_id, expiry = "", 0, ""
        if method == "sandboxcard":
            counters["card"] += 1
            card_id = counters["card"]
            declined = r() >= 0.85
            token = f"{'dec' if declined else 'ok'}_{rng.getrandbits(48):012x}"
            expiry = (
                f"{today.year + rng.randrange(DEMO_YEARS_AFTER + 1)}-{rng.randrange(1, 13):02d}"
            )
            cards.append(
                (
                    card_id,
                    cid,
                    "sandboxcard",
                    token,
                    f"{rng.randrange(10000):04d}",
                    expiry,
                    created.isoformat(" "),
                )
            )
            card = "declined" if declined else "ok"
        row = dict(zip(CLIENT_COLUMNS, clients[-1], strict=True))
        discount_bp, group_name = ref["discounts"].get(group_id, (0, ""))
        decimals, rate = ref["rates"][row["currency_id"]]
        payer = _Payer(
            id=cid,
            country=country,
            state=state,
            tax_exempt=bool(row["tax_exempt"]),
            late_fees_exempt=bool(row["late_fees_exempt"]),
            method=method,
            card="" if row["cc_processing_disabled"] else card,
            card_id=card_id,
            card_expiry=expiry,
            discount_bp=discount_bp,
            group_name=group_name,
            decimals=decimals,
            rate=rate,
            created=created.date(),
        )
        has_active = False
        active = status != "Closed"
        for _ in range(rng.choice((0, 1, 1, 1, 2, 2, 3)) if active else rng.choice((0, 1))):
            counters["service"] += 1
            sid = counters["service"]
            pidx = rng.randrange(len(PRODUCTS))
            sstatus = "Active" if r() < 0.7 else choice(SERVICE_STATUSES)
            cycle = choice(CYCLES)
            drawn = _due_near(today, rng)
            due = drawn
            product, price = PRODUCTS[pidx]
            if sstatus in ACTIVE_SERVICE_STATUSES:
                has_active = True
                if cycle in CYCLE_MONTHS:
                    due = biller.bill(
                        counters, payer, "service", sid, product, price, CYCLE_MONTHS[cycle], drawn
                    )
            services.append(
                (
                    sid,
                    cid,
                    ref["products"][pidx],
                    f"{last_ascii}{cid}.example.com",
                    sstatus,
                    cycle,
                    price,
                    due.isoformat(),
                    drawn.day,
                    method,
                    created.isoformat(" "),
                )
            )
            if r() < 0.25:
                counters["addon"] += 1
                name, price = choice(ADDONS)
                astatus = "Active" if r() < 0.7 else choice(SERVICE_STATUSES)
                due = drawn
                if astatus in ACTIVE_SERVICE_STATUSES:
                    has_active = True
                    due = biller.bill(
                        counters, payer, "addon", counters["addon"], name, price, 1, drawn
                    )
                addons.append(
                    (
                        counters["addon"],
                        sid,
                        cid,
                        ref["addons"][name],
                        name,
                        astatus,
                        BillingCycle.MONTHLY,
                        price,
                        due.isoformat(),
                        drawn.day,
                        method,
                        created.isoformat(" "),
                    )
                )
        for _ in range(rng.choice((0, 0, 1, 1, 2))):
            counters["domain"] += 1
            tld, price = choice(TLDS)
            name = f"{last_ascii}{cid}-{counters['domain']}.{tld}"
            dstatus = "Active" if r() < 0.7 else choice(DOMAIN_STATUSES)
            drawn = due = _due_near(today, rng)
            if dstatus in ACTIVE_DOMAIN_STATUSES:
                has_active = True
                due = biller.bill(
                    counters, payer, "domain", counters["domain"], name, price, 12, drawn
                )
            domains.append(
                (
                    counters["domain"],
                    cid,
                    name,
                    dstatus,
                    price,
                    due.isoformat(),
                    drawn.day,
                    method,
                    created.isoformat(" "),
                )
            )
        if status != ClientStatus.CLOSED and not row["status_locked"]:
            # As the daily Client Status Update would have left it (PRODUCT.md §3).
            status = ClientStatus.ACTIVE if has_active else ClientStatus.INACTIVE
            clients[-1] = tuple(status if c == "status" else v for c, v in row.items())
        if r() < 0.1:  # one invoice of a status the rules leave alone, for variety
            biller.other(
                counters, payer, choice(OTHER_STATUSES), PRODUCTS[rng.randrange(len(PRODUCTS))]
            )
    return [
        (Client, CLIENT_COLUMNS, clients),
        (Contact, CONTACT_COLUMNS, contacts),
        (CustomFieldValue, VALUE_COLUMNS, values),
        (StoredCard, CARD_COLUMNS, cards),
        (Service, SERVICE_COLUMNS, services),
        (Addon, ADDON_COLUMNS, addons),
        (Domain, DOMAIN_COLUMNS, domains),
        *biller.take(),
    ], billing
