"""Invoice PDFs (issue 13): what they print, in the currency's own format, for any name;
read-only at a fixed cost; attached to the invoice emails when they are delivered."""

from __future__ import annotations

import datetime as dt
import io
import json
import mailbox
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path

import pytest
from playhouse.test_utils import assert_query_count, count_queries

from rules.audit import SYSTEM_CLI
from rules.billing import invoice_pdf
from rules.billing.invoice_pdf import render_invoice_pdf, tax_rate_text
from rules.billing.payments import InvoiceNotFound, find_invoice
from rules.mail.delivery import FlushResult, MaildirTransport, SmtpTransport, flush, resend
from rules.mail.outbox import Notice, queue
from store.config import SmtpConfig
from store.db import writer
from store.models import (
    Client,
    Contact,
    Currency,
    Email,
    Invoice,
    InvoiceItem,
    Transaction,
    utcnow,
)
from store.money import format_money
from store.settings import load_settings, save_settings
from tests.conftest import SmtpRecorder
from tui.open_file import Opened, open_invoice_pdf, open_pdf, system_viewer


def _pypdf_text(data: bytes) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)


def _pdftotext(data: bytes) -> str:
    """The text poppler's ``pdftotext`` reads (the Done-when tool). In CI it must be there
    (``.ci/run`` installs poppler-utils): a missing tool fails there instead of skipping."""
    if shutil.which("pdftotext") is None:
        if os.environ.get("CI"):
            pytest.fail("pdftotext (poppler-utils) is not installed: .ci/run installs it")
        pytest.skip("pdftotext (poppler-utils) is not installed; the pypdf test still runs")
    done = subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=data, capture_output=True, check=True
    )
    return done.stdout.decode("utf-8")


EXTRACTORS: dict[str, Callable[[bytes], str]] = {"pypdf": _pypdf_text, "pdftotext": _pdftotext}


def _bhd() -> Currency:
    return Currency.create(code="BHD", prefix="BD ", suffix="", decimals=3, rate="0.376")


def _client(currency: Currency, n: int = 1, **extra: object) -> Client:
    return Client.create(
        first_name=extra.pop("first_name", f"Ana{n}"),
        last_name=extra.pop("last_name", "Núñez"),
        email=f"ana{n}@example.com",
        currency=currency,
        address1="Building 12, Road 3",
        city="Manama",
        postcode="317",
        country="BH",
        tax_id="BH-VAT-200",
        **extra,
    )


def _two_level_invoice(client: Client, number: str = "INV-2026-00042") -> Invoice:
    """Two items, 10% then 5% compound, in BHD (3 decimals): 1,234.567 + 100.000."""
    invoice = Invoice.create(
        client=client,
        number=number,
        date=dt.date(2026, 11, 1),
        due_date=dt.date(2026, 11, 15),
        payment_method="banktransfer",
        subtotal=1_334_567,
        tax=133_457,
        tax2=73_401,
        total=1_541_425,
        tax_rate1_e4=100_000,
        tax_rate2_e4=50_000,
    )
    InvoiceItem.create(
        invoice=invoice, type="Hosting", description="VPS 8GB (01/11 - 30/11)", amount=1_234_567
    )
    InvoiceItem.create(invoice=invoice, type="Item", description="Setup fee", amount=100_000)
    return invoice


@pytest.mark.parametrize("extract", sorted(EXTRACTORS))
def test_pdf_shows_the_screens_totals_number_status_items_and_tax_rates(
    db: str, extract: str
) -> None:
    save_settings(
        {
            "company_name": "Gulf Hosting W.L.L.",
            "company_address": "Seef District, Manama, Bahrain",
            "bank_transfer_instructions": "IBAN BH67 BMAG 0000 1299 1234 56",
            "tax_compound": True,
        }
    )
    currency = _bhd()
    invoice = _two_level_invoice(_client(currency))
    Transaction.create(
        client=invoice.client, invoice=invoice, gateway="banktransfer", amount_in=500_000
    )
    text = EXTRACTORS[extract](render_invoice_pdf(invoice.id))
    flat = " ".join(text.split())
    for minor in (1_334_567, 133_457, 73_401, 1_541_425, 1_234_567, 100_000, 500_000, 1_041_425):
        assert format_money(minor, currency) in flat  # BD 1,541.425: the screen's string
    for words in (
        "INV-2026-00042",
        "UNPAID",
        "VPS 8GB (01/11 - 30/11)",
        "Setup fee",
        "Tax 10.00%",
        "Tax 5.00% (compound)",
        "Gulf Hosting W.L.L.",
        "Seef District, Manama, Bahrain",
        "IBAN BH67 BMAG 0000 1299 1234 56",
        "Bahrain",  # the country's name, not its code
        "BH-VAT-200",
        "2026-11-15",
    ):
        assert words in flat, words


def test_pdf_balance_is_the_rules_balance_with_credit_applied(db: str) -> None:
    """Credit applied through the rules shows as its own line, and the PDF's balance is
    ``store.queries.balance_due``'s (total less credit less money received)."""
    from decimal import Decimal

    from rules.billing.payments import add_credit, apply_credit
    from store.queries import balances

    currency = _bhd()
    invoice = _two_level_invoice(_client(currency))
    Transaction.create(
        client=invoice.client, invoice=invoice, gateway="banktransfer", amount_in=500_000
    )
    add_credit(invoice.client.id, Decimal("41.425"), "Goodwill", SYSTEM_CLI)
    apply_credit(invoice.id, Decimal("41.425"), SYSTEM_CLI)
    flat = " ".join(EXTRACTORS["pypdf"](render_invoice_pdf(invoice.id)).split())
    balance = balances([invoice.id])[invoice.id]
    assert balance == 1_541_425 - 41_425 - 500_000
    assert f"Credit {format_money(41_425, currency)}" in flat
    assert f"Balance {format_money(balance, currency)}" in flat


def test_pdf_is_addressed_to_the_billing_contact(db: str) -> None:
    currency = _bhd()
    client = _client(currency)
    contact = Contact.create(
        client=client,
        first_name="Layla",
        last_name="Accounts",
        email="accounts@example.com",
        address1="PO Box 9",
        country="SA",
    )
    client.billing_contact = contact
    client.save()
    flat = " ".join(_pypdf_text(render_invoice_pdf(_two_level_invoice(client).id)).split())
    assert "Layla Accounts" in flat and "Saudi Arabia" in flat
    assert "Ana1" not in flat


def test_pdf_payment_instructions_follow_the_payment_method(db: str) -> None:
    save_settings({"company_name": "Acme", "company_address": "1 Main St, Springfield"})
    currency = _bhd()
    client = _client(currency)
    invoice = _two_level_invoice(client)
    for method, expected in (
        ("mailin", "send your payment to Acme, 1 Main St, Springfield"),
        ("sandboxcard", "card on file will be charged automatically on 2026-11-15"),
        ("banktransfer", "Ask us for our bank details"),
    ):
        Invoice.update(payment_method=method).where(Invoice.id == invoice.id).execute()
        flat = " ".join(_pypdf_text(render_invoice_pdf(invoice.id)).split())
        assert expected in flat, method
    save_settings({"capture_days_before_due": 3})
    Client.update(cc_processing_disabled=True).where(Client.id == client.id).execute()
    Invoice.update(payment_method="sandboxcard").where(Invoice.id == invoice.id).execute()
    flat = " ".join(_pypdf_text(render_invoice_pdf(invoice.id)).split())
    assert "pay this invoice by card in the client area" in flat
    Client.update(cc_processing_disabled=False).where(Client.id == client.id).execute()
    flat = " ".join(_pypdf_text(render_invoice_pdf(invoice.id)).split())
    assert "charged automatically on 2026-11-12" in flat  # 3 days before it is due
    Invoice.update(
        status="Paid", date_paid=dt.date(2026, 11, 3), payment_method="sandboxcard"
    ).where(Invoice.id == invoice.id).execute()
    flat = " ".join(_pypdf_text(render_invoice_pdf(invoice.id)).split())
    assert "PAID" in flat and "Paid by card on 2026-11-03" in flat


def test_pdf_rendering_is_read_only_at_a_fixed_number_of_queries(db: str) -> None:
    from store.settings import load_settings

    currency = _bhd()
    small = _two_level_invoice(_client(currency, 1), "A-1")
    big = _two_level_invoice(_client(currency, 2), "A-2")
    for n in range(40):
        InvoiceItem.create(invoice=big, type="Item", description=f"Line {n}", amount=n)
        Transaction.create(client=big.client, invoice=big, gateway="mailin", amount_in=1)
    settings = load_settings()
    for invoice in (small, big):
        with assert_query_count(2):  # the invoice with its client and payments; its items
            render_invoice_pdf(invoice.id, settings)
        with assert_query_count(3):  # and the settings
            render_invoice_pdf(invoice.id)
    assert "Line 39" in _pypdf_text(render_invoice_pdf(big.id))


def test_invoices_read_together_are_each_read_as_alone(db: str) -> None:
    """The set-based read of the PDFs' invoices (``load_invoice_documents``: what delivery
    reads for a batch) gives each invoice the document it has alone: its own items,
    payments, credit and billing contact, never another's; an unknown id is left out."""
    from decimal import Decimal

    from rules.billing.payments import add_credit, apply_credit

    def invoices_ids(invoices: list[Invoice]) -> list[int]:
        return [invoice.id for invoice in invoices]

    currency = _bhd()
    plain_client = _client(currency, 1)
    billed = _client(currency, 2, first_name="Zoë")
    billed.billing_contact = Contact.create(
        client=billed, first_name="Layla", last_name="Accounts", email="l@example.com"
    )
    billed.save()
    invoices = [_two_level_invoice(plain_client, "Q-1"), _two_level_invoice(billed, "Q-2")]
    Transaction.create(client=billed, invoice=invoices[1], gateway="mailin", amount_in=500_000)
    add_credit(billed.id, Decimal("41.425"), "Goodwill", SYSTEM_CLI)
    apply_credit(invoices[1].id, Decimal("41.425"), SYSTEM_CLI)
    Invoice.update(status="Paid", date_paid=dt.date(2026, 11, 3)).where(
        Invoice.id == invoices[0].id
    ).execute()
    settings = load_settings()
    together = invoice_pdf.load_invoice_documents([*invoices_ids(invoices), 424242], settings)
    assert sorted(together) == sorted(invoices_ids(invoices))  # an unknown id is left out
    for invoice in invoices:
        alone = invoice_pdf.load_invoice_documents([invoice.id], settings)[invoice.id]
        assert together[invoice.id] == alone == invoice_pdf.load_invoice_document(invoice.id)
        assert together[invoice.id].number == invoice.number


def test_unknown_invoice_is_a_clear_refusal(db: str) -> None:
    with pytest.raises(InvoiceNotFound, match="no invoice 424242"):
        render_invoice_pdf(424242)
    with pytest.raises(InvoiceNotFound, match="no invoice numbered 'X-1'"):
        find_invoice("X-1")


@pytest.mark.parametrize(
    ("rate_e4", "text"), [(100_000, "10.00%"), (88_750, "8.875%"), (0, "0.00%"), (5, "0.0005%")]
)
def test_tax_rates_print_with_two_to_four_decimals(rate_e4: int, text: str) -> None:
    assert tax_rate_text(rate_e4) == text


UNICODE_NAMES = [
    ("محمد", "العلي"),  # Arabic (right to left)
    ("王", "小明"),  # CJK: from the fallback font
    ("Zoë", "Ångström-Łukasiewicz"),  # accents, Latin Extended
    ("Ана", "Петрова"),  # Cyrillic
    ("Νίκος", "Παπαδόπουλος"),  # Greek
    ("Ane\u0301", "e\u0308"),  # combining marks (NFC makes them one character)
    ("😀 Party", "👨‍👩‍👧 Family"),  # emoji and a zero-width joiner
    ("שרה", "Levi (עברית) mixed"),  # Hebrew mixed with Latin
    ("\u200b\u200f", "W" * 100),  # invisible marks, and the longest name (wider than a line)
]


@pytest.mark.parametrize(("first", "last"), UNICODE_NAMES)
def test_unicode_names_never_break_the_pdf(db: str, first: str, last: str) -> None:
    save_settings({"company_name": "Société Générale d'Hébergement 株式会社"})
    currency = _bhd()
    client = _client(currency, first_name=first, last_name=last, company=f"{last} Ltd")
    invoice = _two_level_invoice(client)
    InvoiceItem.create(
        invoice=invoice, type="Item", description=f"Domain {first}.example", amount=0
    )
    long = f"{first} {last} renewal, " * 150  # a description longer than a page
    InvoiceItem.create(invoice=invoice, type="Item", description=long, amount=1)
    data = render_invoice_pdf(invoice.id)
    assert data.startswith(b"%PDF-")
    flat = " ".join(_pypdf_text(data).split())
    assert "INV-2026-00042" in flat and format_money(1_541_425, currency) in flat
    assert "Société Générale d'Hébergement 株式会社" in flat


def test_cjk_names_are_drawn_and_characters_no_font_has_are_question_marks(db: str) -> None:
    """Chinese and Japanese from the fallback font; Korean Hangul (in neither font) as ?."""
    client = _client(_bhd(), first_name="王小明", last_name="김민준", company="東京都 株式会社")
    flat = " ".join(_pypdf_text(render_invoice_pdf(_two_level_invoice(client).id)).split())
    assert "王小明 ???" in flat and "東京都 株式会社" in flat


def _embedded_fonts(data: bytes) -> list[bytes]:
    """The font programs a PDF embeds (each font's FontFile2 stream)."""
    from pypdf import PdfReader

    programs = []
    for page in PdfReader(io.BytesIO(data)).pages:
        for font in page["/Resources"]["/Font"].values():
            descendant = font.get_object()["/DescendantFonts"][0].get_object()
            programs.append(descendant["/FontDescriptor"]["/FontFile2"].get_object().get_data())
    return sorted(programs)


def test_consecutive_pdfs_each_embed_their_own_characters(db: str) -> None:
    """The fonts and their embedded forms are kept per process (``_FontFile.embedded``,
    by the characters drawn): a PDF made after others embeds the same font programs as
    when made first."""
    currency = _bhd()
    names = [("Ана", "Петрова"), ("Νίκος", "Παπαδόπουλος"), ("Zoë", "Ørsted"), ("Ана", "Ωmega")]
    invoices = [
        _two_level_invoice(_client(currency, n, first_name=a, last_name=b), f"C-{n}")
        for n, (a, b) in enumerate(names)
    ]
    after_others = {}
    for (first, last), invoice in zip(names, invoices, strict=True):
        data = render_invoice_pdf(invoice.id)
        assert f"{first} {last}" in " ".join(_pypdf_text(data).split())
        after_others[invoice.id] = _embedded_fonts(data)
    for invoice in invoices:
        invoice_pdf._FONT_FILES.clear()  # as in a new process
        assert _embedded_fonts(render_invoice_pdf(invoice.id)) == after_others[invoice.id]


# --------------------------------------------------------------------------- emails


class Clock:
    def __init__(self) -> None:
        self.now = utcnow() + dt.timedelta(seconds=1)  # just after the emails were queued

    def __call__(self) -> dt.datetime:
        return self.now


def _queue_invoice_emails(invoice: Invoice) -> None:
    """What the cron queues: "Invoice Created" on invoicing, the confirmation on payment,
    with the keys ``rules.billing.invoicing`` and ``rules.billing.capture`` give them."""
    client_id, invoice_id = invoice.client_id, invoice.id
    with writer():
        queue(
            "Invoice Created",
            [Notice(client_id, invoice_id, unique_key=f"invoice_created:{invoice_id}")],
        )
        queue(
            "Invoice Payment Confirmation",
            [Notice(client_id, invoice_id, unique_key=f"paid:{invoice_id}")],
        )
        queue("Password Reset Confirmation", [Notice(client_id)])


def _pdf_attachments(message: EmailMessage) -> list[tuple[str, bytes]]:
    return [
        (str(part.get_filename()), part.get_content())
        for part in message.iter_attachments()
        if part.get_content_type() == "application/pdf"
    ]


def _delivered(
    how: str, tmp_path: Path, smtp: tuple[SmtpRecorder, SmtpConfig]
) -> tuple[FlushResult, list[EmailMessage]]:
    recorder, config = smtp
    if how == "smtp":
        result = flush(SmtpTransport(config, "billing@example.com"), now=Clock())
        return result, recorder.parsed()
    result = flush(MaildirTransport(tmp_path / "Maildir"), now=Clock())
    box = mailbox.Maildir(str(tmp_path / "Maildir"), create=False)
    parsed = [message_from_bytes(box.get_bytes(key), policy=default_policy) for key in box.keys()]
    return result, [m for m in parsed if isinstance(m, EmailMessage)]


@pytest.mark.parametrize("how", ["smtp", "maildir"])
def test_invoice_emails_carry_the_invoice_pdf(
    db: str, how: str, tmp_path: Path, smtp_server: tuple[SmtpRecorder, SmtpConfig]
) -> None:
    currency = _bhd()
    invoice = _two_level_invoice(_client(currency, first_name="Zoë"), "INV 2026/7")
    _queue_invoice_emails(invoice)
    result, messages = _delivered(how, tmp_path, smtp_server)
    assert (result.sent, result.failed) == (3, 0), result.errors
    by_template = {str(m["X-GoBiller-Template"]): m for m in messages}
    assert _pdf_attachments(by_template["Password Reset Confirmation"]) == []
    for template in ("Invoice Created", "Invoice Payment Confirmation"):
        message = by_template[template]
        [(filename, data)] = _pdf_attachments(message)
        assert filename == "Invoice-INV-2026-7.pdf"
        assert data.startswith(b"%PDF-")
        flat = " ".join(_pypdf_text(data).split())
        assert "INV 2026/7" in flat and format_money(1_541_425, currency) in flat
        assert "Dear Zoë" in message.get_body(("plain",)).get_content()  # the body is kept


def test_the_pdf_is_rendered_when_the_email_leaves(
    db: str, tmp_path: Path, smtp_server: tuple[SmtpRecorder, SmtpConfig]
) -> None:
    """Not stored per email: the PDF shows the invoice as it is at delivery (paid since)."""
    invoice = _two_level_invoice(_client(_bhd()))
    _queue_invoice_emails(invoice)
    Invoice.update(status="Paid", date_paid=dt.date(2026, 11, 2)).where(
        Invoice.id == invoice.id
    ).execute()
    _result, messages = _delivered("smtp", tmp_path, smtp_server)
    pdfs = [data for message in messages for _name, data in _pdf_attachments(message)]
    assert len(pdfs) == 2
    for data in pdfs:
        assert "PAID" in _pypdf_text(data) and "UNPAID" not in _pypdf_text(data)


@pytest.mark.parametrize("how", ["smtp", "maildir"])
def test_an_invoice_pdf_that_cannot_be_built_fails_only_its_email(
    db: str,
    how: str,
    tmp_path: Path,
    smtp_server: tuple[SmtpRecorder, SmtpConfig],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    currency = _bhd()
    good = _two_level_invoice(_client(currency, 1), "GOOD-1")
    broken = _two_level_invoice(_client(currency, 2), "BROKEN-1")
    _queue_invoice_emails(good)
    _queue_invoice_emails(broken)
    Email.create(  # an email whose invoice is gone (deleted by hand in the database)
        client=good.client_id,
        template="Invoice Created",
        to="ana1@example.com",
        subject="Invoice",
        body_text="Dear Ana",
        unique_key="invoice_created:999",
        next_attempt_at=utcnow(),
    )
    draw = invoice_pdf.draw_invoice_pdf

    def failing_draw(doc: invoice_pdf.InvoiceDocument) -> bytes:
        if doc.number == "BROKEN-1":
            raise RuntimeError("the font file is damaged")
        return draw(doc)

    monkeypatch.setattr(invoice_pdf, "draw_invoice_pdf", failing_draw)
    result, messages = _delivered(how, tmp_path, smtp_server)
    assert (result.sent, result.failed) == (4, 3), result.errors
    failed = {e.unique_key: e.last_error for e in Email.select().where(Email.status == "failed")}
    assert set(failed) == {
        f"invoice_created:{broken.id}",
        f"paid:{broken.id}",
        "invoice_created:999",
    }
    assert "the font file is damaged" in failed[f"paid:{broken.id}"]
    assert "no invoice 999" in failed["invoice_created:999"]
    sent = [name for m in messages for name, _ in _pdf_attachments(m)]
    assert sent == ["Invoice-GOOD-1.pdf"] * 2


def test_invoice_emails_queued_by_any_caller_carry_the_pdf(
    db: str, tmp_path: Path, smtp_server: tuple[SmtpRecorder, SmtpConfig]
) -> None:
    """Whoever queues the email (a staff payment without a key, a caller with a key of its
    own, the set-based or the rendered path), it names its invoice and carries the PDF;
    a caller's key still queues once."""
    invoice = _two_level_invoice(_client(_bhd()), "K-1")
    client_id = invoice.client_id
    with writer():
        queue("Invoice Payment Confirmation", [Notice(client_id, invoice.id)])
        for _twice in range(2):
            queue(
                "Invoice Payment Confirmation",
                [Notice(client_id, invoice.id, unique_key="staff-payment:77")],
                set_based=False,
            )
    assert Email.select().count() == 2
    result, messages = _delivered("smtp", tmp_path, smtp_server)
    assert result.sent == 2
    assert [n for m in messages for n, _ in _pdf_attachments(m)] == ["Invoice-K-1.pdf"] * 2


def test_a_resent_invoice_email_still_carries_its_pdf(
    db: str, tmp_path: Path, smtp_server: tuple[SmtpRecorder, SmtpConfig]
) -> None:
    invoice = _two_level_invoice(_client(_bhd()), "R-1")
    with writer():
        queue(
            "Invoice Created",
            [Notice(invoice.client_id, invoice.id, f"invoice_created:{invoice.id}")],
        )
    _delivered("smtp", tmp_path, smtp_server)
    resend(Email.get().id, SYSTEM_CLI)
    recorder = smtp_server[0]
    recorder.messages.clear()
    result, [message] = _delivered("smtp", tmp_path, smtp_server)
    assert result.sent == 1
    assert [name for name, _ in _pdf_attachments(message)] == ["Invoice-R-1.pdf"]


# --------------------------------------------------------------------------- command line


def _gobiller(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args], capture_output=True, text=True, timeout=120
    )


def test_invoice_pdf_command_writes_the_pdf_and_refuses_in_one_line(
    db: str, tmp_path: Path
) -> None:
    currency = _bhd()
    _two_level_invoice(_client(currency))
    target = tmp_path / "invoice.pdf"
    done = _gobiller("--database", db, "invoice", "pdf", "INV-2026-00042", str(target), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout) == {
        "invoice": "INV-2026-00042",
        "file": str(target),
        "bytes": target.stat().st_size,
    }
    assert format_money(1_541_425, currency) in _pypdf_text(target.read_bytes())
    assert target.stat().st_mode & 0o077 == 0  # readable by its owner only

    unknown = _gobiller("--database", db, "invoice", "pdf", "NOPE-1", str(target), "--json")
    assert (unknown.returncode, json.loads(unknown.stdout)) == (
        1,
        {"error": "no invoice numbered 'NOPE-1'"},
    )
    unwritable = _gobiller(
        "--database", db, "invoice", "pdf", "INV-2026-00042", str(tmp_path / "no" / "x.pdf")
    )
    assert unwritable.returncode == 73 and unwritable.stdout == ""
    assert unwritable.stderr.strip().splitlines() == [
        f"Error: cannot write {tmp_path / 'no' / 'x.pdf'}: no such folder {tmp_path / 'no'}"
    ]


# --------------------------------------------------------------------------- opening


@pytest.mark.parametrize(
    ("platform", "env", "installed", "expected"),
    [
        ("darwin", {}, {"open"}, "open"),
        ("linux", {"DISPLAY": ":0"}, {"xdg-open"}, "xdg-open"),
        ("linux", {"WAYLAND_DISPLAY": "wayland-0"}, {"xdg-open"}, "xdg-open"),
        ("linux", {}, {"xdg-open"}, None),  # plain SSH: no display to show it on
        ("linux", {"DISPLAY": ":0"}, set(), None),  # no xdg-utils
    ],
)
def test_system_viewer_only_where_a_display_can_show_it(
    platform: str, env: dict[str, str], installed: set[str], expected: str | None
) -> None:
    def which(name: str) -> str | None:
        return f"/usr/bin/{name}" if name in installed else None

    assert system_viewer(env, platform, which) == expected


def test_without_a_viewer_the_pdf_is_saved_privately_and_the_message_says_where(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "data" / "invoices"
    opened = open_pdf(b"%PDF-1.4 x", "Invoice-7.pdf", folder=folder, find_viewer=lambda: None)
    assert opened == Opened(folder / "Invoice-7.pdf", None)
    assert opened.message == f"No viewer on this terminal: saved to {folder / 'Invoice-7.pdf'}"
    assert (folder / "Invoice-7.pdf").read_bytes() == b"%PDF-1.4 x"
    assert folder.stat().st_mode & 0o777 == 0o700
    assert (folder / "Invoice-7.pdf").stat().st_mode & 0o777 == 0o600


def test_the_viewer_is_started_on_the_saved_file(tmp_path: Path) -> None:
    seen = tmp_path / "seen"
    viewer = tmp_path / "viewer"
    viewer.write_text(f'#!/bin/sh\nprintf "%s" "$1" > "{seen}.tmp" && mv "{seen}.tmp" "{seen}"\n')
    viewer.chmod(0o700)
    opened = open_pdf(b"%PDF-1.4 y", "Invoice-8.pdf", folder=tmp_path, viewer=str(viewer))
    assert opened.viewer == str(viewer) and "Opened Invoice-8.pdf with" in opened.message
    deadline = time.monotonic() + 10
    while not seen.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert seen.read_text() == str(tmp_path / "Invoice-8.pdf")


def test_a_viewer_that_cannot_start_leaves_the_file_saved(tmp_path: Path) -> None:
    opened = open_pdf(b"%PDF", "Invoice-9.pdf", folder=tmp_path, viewer=str(tmp_path / "none"))
    assert opened == Opened(tmp_path / "Invoice-9.pdf", None)
    assert opened.path.read_bytes() == b"%PDF"


def test_open_invoice_pdf_renders_and_saves_the_invoice(db: str, tmp_path: Path) -> None:
    invoice = _two_level_invoice(_client(_bhd()), "INV/9")
    opened = open_invoice_pdf(invoice.id, folder=tmp_path)
    assert opened.path == tmp_path / "Invoice-INV-9.pdf"
    assert "INV/9" in _pypdf_text(opened.path.read_bytes())


def test_a_batch_of_invoice_emails_costs_the_same_statements_whatever_its_size(
    db: str, tmp_path: Path
) -> None:
    """The invoices a leased batch's emails print are read set-based
    (``rules.mail.delivery.invoice_documents``): a batch with one invoice's emails and one
    with five invoices' emails cost the same statements, and every PDF is the one its
    invoice would print alone (number, bill-to name)."""
    currency = _bhd()
    counts = []
    for n in (1, 5):
        invoices = [
            _two_level_invoice(
                _client(currency, 100 * n + i, first_name=f"Zoë{n}{i}"), f"B-{n}-{i}"
            )
            for i in range(n)
        ]
        for invoice in invoices:
            _queue_invoice_emails(invoice)
        with count_queries() as counter:
            result = flush(MaildirTransport(tmp_path / f"Maildir{n}"), now=Clock(), batch=100)
        assert (result.sent, result.failed) == (3 * n, 0), result.errors
        counts.append(counter.count)
        box = mailbox.Maildir(str(tmp_path / f"Maildir{n}"), create=False)
        parsed = [message_from_bytes(box.get_bytes(k), policy=default_policy) for k in box.keys()]
        pdfs = {
            name: data
            for message in parsed
            if isinstance(message, EmailMessage)
            for name, data in _pdf_attachments(message)
        }
        assert sorted(pdfs) == sorted(f"Invoice-B-{n}-{i}.pdf" for i in range(n))
        for i in range(n):
            text = " ".join(_pypdf_text(pdfs[f"Invoice-B-{n}-{i}.pdf"]).split())
            assert f"Zoë{n}{i}" in text and f"B-{n}-{i}" in text
    assert counts[0] == counts[1], counts


def test_invoice_pdfs_drawn_by_worker_processes_are_each_its_invoices(
    db: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch with ``PARALLEL_PDFS`` invoices or more has its PDFs drawn by worker
    processes while the flusher builds the rest: every email still carries its own
    invoice's PDF (number, bill-to name)."""
    from rules.mail import delivery

    started: list[int] = []
    real_draw = delivery._PdfWorkers.draw

    def draw(self: delivery._PdfWorkers, documents: object) -> dict[int, object]:
        drawn = real_draw(self, documents)  # type: ignore[arg-type]
        started.append(len(drawn))
        return drawn  # type: ignore[return-value]

    monkeypatch.setattr(delivery._PdfWorkers, "draw", draw)
    currency = _bhd()
    count = delivery.PARALLEL_PDFS + 2
    for i in range(count):
        invoice = _two_level_invoice(_client(currency, 500 + i, first_name=f"Zoë{i}"), f"W-{i}")
        _queue_invoice_emails(invoice)
    result = flush(MaildirTransport(tmp_path / "Maildir"), now=Clock(), batch=100)
    assert (result.sent, result.failed) == (3 * count, 0), result.errors
    assert started == [count]  # one batch, its PDFs all drawn by the workers
    box = mailbox.Maildir(str(tmp_path / "Maildir"), create=False)
    seen: set[int] = set()
    for key in box.keys():
        message = message_from_bytes(box.get_bytes(key), policy=default_policy)
        assert isinstance(message, EmailMessage)
        for name, data in _pdf_attachments(message):
            i = int(name.removeprefix("Invoice-W-").removesuffix(".pdf"))
            text = " ".join(_pypdf_text(data).split())
            assert f"Zoë{i}" in text and f"W-{i}" in text
            seen.add(i)
    assert seen == set(range(count))


def test_invoice_pdfs_a_broken_worker_pool_draws_in_the_flusher(db: str) -> None:
    """A worker process that dies (killed, out of memory) breaks the pool: the PDFs it
    had not drawn are drawn by the flusher instead, each still its own invoice's, and
    later batches no longer use the pool."""
    from rules.billing.invoice_pdf import load_invoice_documents
    from rules.mail import delivery

    currency = _bhd()
    ids = [
        _two_level_invoice(_client(currency, 700 + i, first_name=f"Ana{i}"), f"K-{i}").id
        for i in range(delivery.PARALLEL_PDFS)
    ]
    settings = load_settings()
    documents = load_invoice_documents(ids, settings)
    workers = delivery._PdfWorkers()
    try:
        drawn = workers.draw(documents)
        assert len(drawn) == len(ids)
        killer = workers._pool.submit(os._exit, 1)  # type: ignore[union-attr]
        with pytest.raises(delivery.BrokenProcessPool):
            killer.result(timeout=60)
        for n, invoice_id in enumerate(ids):
            message = EmailMessage()
            delivery.attach_invoice_pdf(message, invoice_id, settings, documents, drawn)
            [(name, data)] = _pdf_attachments(message)
            assert name == f"Invoice-K-{n}.pdf" and f"Ana{n}" in _pypdf_text(data)
        assert workers.draw(documents) == {}  # broken: drawn in the flusher from now on
    finally:
        workers.close()
