"""Invoice PDFs (issue 13, PRODUCT.md §3-§4): what ``gobiller invoice pdf``, the Invoices
tab and the "Invoice Created" / "Invoice Payment Confirmation" attachments print.

Rendering reads and never writes: three queries (the invoice with its client, currency,
billing contact and payments; its items; the settings, unless given), then pure drawing
with fpdf2. Amounts are ``store.money.format_money`` strings, the very text the screens
and emails show, in the client's currency (its prefix, suffix and decimals).

Text is drawn with DejaVu Sans, shipped in ``rules/billing/fonts`` (Bitstream Vera
licence, LICENSE-DejaVu there): Latin, Greek, Cyrillic, Arabic, Hebrew and more; Chinese
and Japanese characters with Droid Sans Fallback beside it (Apache 2.0), read only for a
document that needs it. A character neither has a glyph for (Korean Hangul, most emoji)
is printed as ``?``, so any name renders and never raises. Arabic and Hebrew are ordered
right to left (fpdf2's bidi algorithm) without contextual shaping (HarfBuzz, fpdf2's
optional shaper, is not a dependency).
"""

from __future__ import annotations

import copy
import datetime as dt
import io
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from peewee import JOIN

from rules.billing.gateways import MERCHANT_GATEWAYS
from rules.billing.payments import InvoiceNotFound
from store.models import Client, Contact, Currency, Invoice, InvoiceItem
from store.models.enums import InvoiceStatus
from store.money import format_money
from store.queries import amount_paid, balance_due
from store.settings import Settings, load_settings

FONT_FOLDER = Path(__file__).with_name("fonts")
FONT_FILES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}
#: Subsets of the same (``fonts/make_latin.py``), enough for most invoices and far faster
#: to embed.
LATIN_FONT_FILES = {"": "DejaVuSans-Latin.ttf", "B": "DejaVuSans-Bold-Latin.ttf"}
FAMILY = "DejaVu"
#: For the characters DejaVu Sans lacks: CJK ideographs, kana (regular only: bold text
#: falls back to it too).
FALLBACK_FILE = "DroidSansFallbackFull.ttf"
FALLBACK_FAMILY = "Fallback"
#: What stands for a character the font cannot draw.
MISSING_GLYPH = "?"


@dataclass(frozen=True)
class InvoiceLine:
    description: str
    amount: str


@dataclass(frozen=True)
class InvoiceDocument:
    """Everything an invoice PDF prints, as text (amounts already formatted)."""

    number: str
    date: str
    due_date: str
    date_paid: str
    status: str
    payment_method: str
    company_name: str
    company_address: str
    company_email: str
    bill_to: tuple[str, ...]
    items: tuple[InvoiceLine, ...]
    #: (label, amount) rows under the items: subtotal, taxes, total, credit, payments,
    #: balance; the last is the balance.
    totals: tuple[tuple[str, str], ...]
    payment_instructions: tuple[str, ...]


def tax_rate_text(rate_e4: int) -> str:
    """A rate kept in ten-thousandths of a percent as printed: ``100000`` is ``"10.00%"``,
    ``88750`` is ``"8.875%"`` (two decimals at least, four at most)."""
    rate = Decimal(rate_e4).scaleb(-4)
    text = f"{rate:.4f}".rstrip("0")
    whole, _, decimals = text.partition(".")
    return f"{whole}.{decimals.ljust(2, '0')}%"


def country_name(code: str) -> str:
    """The ISO 3166 name of a two-letter code (``"BH"`` is ``"Bahrain"``); the code itself
    when pycountry does not know it; "" for none."""
    if not code:
        return ""
    import pycountry  # here: its import is slow and most commands never need it

    country = pycountry.countries.get(alpha_2=code.upper())
    return str(getattr(country, "common_name", None) or country.name) if country else code


def load_invoice_document(invoice_id: int, settings: Settings | None = None) -> InvoiceDocument:
    """Read what invoice ``invoice_id``'s PDF prints: two queries, plus one for the
    settings when not given. Raises ``InvoiceNotFound``."""
    settings = settings or load_settings()
    billing = Contact.alias("billing")
    party: tuple[str, ...] = ("first_name", "last_name", "company", "address1", "address2")
    party += ("city", "state", "postcode", "country")
    row: Any = (
        Invoice.select(
            Invoice.number,
            Invoice.date,
            Invoice.due_date,
            Invoice.date_paid,
            Invoice.status,
            Invoice.payment_method,
            Invoice.subtotal,
            Invoice.tax,
            Invoice.tax2,
            Invoice.total,
            Invoice.tax_rate1_e4,
            Invoice.tax_rate2_e4,
            Client.tax_id,
            Client.cc_processing_disabled,
            Currency.code,
            Currency.prefix,
            Currency.suffix,
            Currency.decimals,
            billing.id.alias("billing_id"),
            *(getattr(Client, name).alias(f"client_{name}") for name in party),
            *(getattr(billing, name).alias(f"billing_{name}") for name in party),
            amount_paid(Invoice.id).alias("paid"),
            Invoice.credit.alias("credit_applied"),
            balance_due().alias("balance"),
        )
        .join(Client, on=Invoice.client == Client.id)
        .join(Currency, on=Client.currency == Currency.id)
        .join(billing, JOIN.LEFT_OUTER, on=Client.billing_contact == billing.id)
        .where(Invoice.id == invoice_id)
        .dicts()
        .first()
    )
    if row is None:
        raise InvoiceNotFound(f"no invoice {invoice_id}")
    items: list[Any] = list(
        InvoiceItem.select(InvoiceItem.description, InvoiceItem.amount)
        .where(InvoiceItem.invoice == invoice_id)
        .order_by(InvoiceItem.sort_order, InvoiceItem.id)
        .tuples()
    )
    currency = Currency(
        code=row["code"], prefix=row["prefix"], suffix=row["suffix"], decimals=row["decimals"]
    )

    def money(minor: int) -> str:
        return format_money(int(minor), currency)

    paid, credit = int(row["paid"] or 0), int(row["credit_applied"] or 0)
    totals: list[tuple[str, str]] = [("Sub Total", money(row["subtotal"]))]
    if row["tax"] or row["tax_rate1_e4"]:
        totals.append(("Tax " + tax_rate_text(row["tax_rate1_e4"]), money(row["tax"])))
    if row["tax2"] or row["tax_rate2_e4"]:
        compound = " (compound)" if settings.tax_compound else ""
        label = "Tax " + tax_rate_text(row["tax_rate2_e4"]) + compound
        totals.append((label, money(row["tax2"])))
    totals.append(("Total", money(row["total"])))
    if credit:
        totals.append(("Credit", money(credit)))
    totals.append(("Payments", money(paid)))
    balance = int(row["balance"])  # store.queries.balance_due: the one definition
    totals.append(("Balance", money(balance)))

    client = _bill_to_fields(row)
    date_paid = _date_text(row["date_paid"])
    return InvoiceDocument(
        number=row["number"],
        date=_date_text(row["date"]),
        due_date=_date_text(row["due_date"]),
        date_paid=date_paid,
        status=row["status"],
        payment_method=row["payment_method"],
        company_name=settings.company_name,
        company_address=settings.company_address,
        company_email=settings.company_email,
        bill_to=client,
        items=tuple(InvoiceLine(text, money(amount)) for text, amount in items),
        totals=tuple(totals),
        payment_instructions=payment_instructions(
            PaymentFacts(
                status=row["status"],
                payment_method=row["payment_method"],
                balance=balance,
                number=row["number"],
                due_date=_date_text(row["due_date"]),
                date_paid=date_paid,
                card_charged=not row["cc_processing_disabled"],
            ),
            settings,
        ),
    )


def _date_text(value: Any) -> str:
    """A date as ISO text (SQLite may hand back the text itself); "" for none."""
    if not value:
        return ""
    return value.isoformat() if isinstance(value, dt.date) else str(value)


def _bill_to_fields(row: Any) -> tuple[str, ...]:
    """The billing contact's name and address when the client has one (PRODUCT.md §1:
    invoices are addressed to it), otherwise the client's; then the client's tax ID."""
    who = "billing_" if row["billing_id"] else "client_"

    def part(name: str) -> str:
        return str(row[who + name] or "")

    lines = [f"{part('first_name')} {part('last_name')}".strip(), part("company")]
    lines += [part("address1"), part("address2")]
    lines.append(" ".join(p for p in (part("city"), part("state"), part("postcode")) if p))
    lines.append(country_name(part("country")))
    if row["tax_id"]:
        lines.append("Tax ID: " + row["tax_id"])
    return tuple(line for line in lines if line)


@dataclass(frozen=True)
class PaymentFacts:
    """What decides an invoice's payment box."""

    status: str
    payment_method: str
    #: Still owed, in minor units (``store.queries.balance_due``).
    balance: int
    number: str
    #: ISO dates; ``date_paid`` "" while unpaid.
    due_date: str
    date_paid: str
    #: False when the client has Disable CC Processing (PRODUCT.md §1): never captured.
    card_charged: bool


def payment_instructions(facts: PaymentFacts, settings: Settings) -> tuple[str, ...]:
    """How this invoice is (or was) paid, by payment method, as WHMCS's invoice payment
    box: bank transfer prints the ``bank_transfer_instructions`` setting, mail-in the
    company's address, a merchant gateway the day the card on file is charged (the due
    date less ``capture_days_before_due``, PRODUCT.md §3) or, for a client with Disable CC
    Processing, to pay in the client area. Nothing for a Cancelled or Refunded invoice or
    one with nothing left to pay."""
    if facts.status == InvoiceStatus.PAID:
        by_card = " by card" if facts.payment_method in MERCHANT_GATEWAYS else ""
        when = f" on {facts.date_paid}" if facts.date_paid else ""
        return (f"Paid{by_card}{when}. Thank you.",)
    if facts.status in (InvoiceStatus.CANCELLED, InvoiceStatus.REFUNDED) or facts.balance <= 0:
        return ()
    quote = f"Please quote invoice number {facts.number} with your payment."
    if facts.payment_method == "banktransfer":
        how = settings.bank_transfer_instructions or "Ask us for our bank details."
        return ("Pay by bank transfer:", how, quote)
    if facts.payment_method == "mailin":
        to = ", ".join(p for p in (settings.company_name, settings.company_address) if p)
        return ("Pay by mail: send your payment to", to, quote)
    if facts.payment_method in MERCHANT_GATEWAYS:
        if not facts.card_charged:
            return (f"Please pay this invoice by card in the client area: {settings.system_url}",)
        try:
            due = dt.date.fromisoformat(facts.due_date)
        except ValueError:
            return ("The card on file will be charged automatically.",)
        day = due - dt.timedelta(days=settings.capture_days_before_due)
        return (f"The card on file will be charged automatically on {day.isoformat()}.",)
    return (f"Payment method: {facts.payment_method}.", quote)


def render_invoice_pdf(invoice_id: int, settings: Settings | None = None) -> bytes:
    """The PDF of invoice ``invoice_id`` (A4), as bytes: read-only, three queries (two when
    ``settings`` are given). Raises ``InvoiceNotFound``."""
    return draw_invoice_pdf(load_invoice_document(invoice_id, settings))


def pdf_filename(number: str) -> str:
    """``Invoice-<number>.pdf``, the number's characters outside ``A-Z a-z 0-9 . _ -``
    made ``-`` (a number format may hold spaces or slashes; a file name may not)."""
    return "Invoice-" + re.sub(r"[^A-Za-z0-9._-]", "-", number) + ".pdf"


def invoice_pdf_attachment(invoice_id: int, settings: Settings | None = None) -> tuple[str, bytes]:
    """(``pdf_filename``, PDF bytes) of invoice ``invoice_id``: what the invoice emails
    attach (``rules.mail.delivery``). Raises ``InvoiceNotFound``."""
    doc = load_invoice_document(invoice_id, settings)
    return pdf_filename(doc.number), draw_invoice_pdf(doc)


# --------------------------------------------------------------------------- drawing


class _FontKit:
    """A family (regular and bold, and optionally a fallback font) parsed once per
    process. fpdf2 parses a TrueType font on every ``add_font`` (tens of milliseconds) and
    subsets it in place when it writes the PDF, so each document gets a copy of the
    parsed fonts, each with its own ``TTFont`` opened on the cached bytes (cheap: tables
    load lazily) and its own subset."""

    def __init__(self, files: dict[str, str], fallback: str | None = None) -> None:
        from fpdf import FPDF

        proto = FPDF()
        for style, name in files.items():
            proto.add_font(FAMILY, style, str(FONT_FOLDER / name))
        fonts: dict[str, Any] = proto.fonts
        drawable: set[int] | None = None
        for font in fonts.values():
            keys = set(font.cmap)
            drawable = keys if drawable is None else drawable & keys
        drawable = drawable or set()
        self.fallback = fallback is not None
        if fallback is not None:
            proto.add_font(FALLBACK_FAMILY, "", str(FONT_FOLDER / fallback))
            drawable |= set(fonts[FALLBACK_FAMILY.lower()].cmap)
        self.prototypes = dict(fonts)
        self.data = {key: Path(f.ttffile).read_bytes() for key, f in self.prototypes.items()}
        #: The code points it draws in both styles.
        self.drawable = frozenset(drawable)

    def install(self, pdf: Any) -> None:
        """Give ``pdf`` its own copy of the fonts (as ``add_font`` would)."""
        from fontTools import ttLib
        from fpdf.fonts import SubsetMap

        for key, proto in self.prototypes.items():
            font = copy.copy(proto)
            font.ttfont = ttLib.TTFont(io.BytesIO(self.data[key]), recalcTimestamp=False, lazy=True)
            for table in ("GSUB", "GPOS", "GDEF"):  # unused without shaping; slow to subset
                if table in font.ttfont:
                    del font.ttfont[table]
            font.missing_glyphs = []
            font.subset = SubsetMap(font)
            pdf.fonts[key] = font
        if self.fallback:
            pdf.set_fallback_fonts([FALLBACK_FAMILY], exact_match=False)


@lru_cache(maxsize=1)
def _latin() -> _FontKit:
    return _FontKit(LATIN_FONT_FILES)


@lru_cache(maxsize=1)
def _full() -> _FontKit:
    return _FontKit(FONT_FILES)


@lru_cache(maxsize=1)
def _with_fallback() -> _FontKit:
    return _FontKit(FONT_FILES, FALLBACK_FILE)


#: Characters that would break a line: printed as a space (every text is one line).
_LINE_BREAKS = frozenset("\t\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


def drawable_text(text: str) -> str:
    """``text`` as the PDF prints it: NFC, one line, invisible controls and format marks
    dropped, each character no shipped font has a glyph for replaced by
    ``MISSING_GLYPH`` (never an exception, never a silently missing character). The
    larger fonts are read only when a character needs them."""
    out = []
    for ch in unicodedata.normalize("NFC", text):
        code = ord(ch)
        if ch in _LINE_BREAKS:
            out.append(" ")
        elif code in _latin().drawable or code in _full().drawable:
            out.append(ch)
        elif unicodedata.category(ch) in ("Cc", "Cf"):
            continue  # nothing to draw
        elif code in _with_fallback().drawable:
            out.append(ch)
        else:
            out.append(MISSING_GLYPH)
    return "".join(out)


def _printed(doc: InvoiceDocument) -> InvoiceDocument:
    """``doc`` with every text as ``drawable_text`` prints it."""
    return InvoiceDocument(
        number=drawable_text(doc.number),
        date=drawable_text(doc.date),
        due_date=drawable_text(doc.due_date),
        date_paid=drawable_text(doc.date_paid),
        status=doc.status,
        payment_method=drawable_text(doc.payment_method),
        company_name=drawable_text(doc.company_name),
        company_address=drawable_text(doc.company_address),
        company_email=drawable_text(doc.company_email),
        bill_to=tuple(map(drawable_text, doc.bill_to)),
        items=tuple(
            InvoiceLine(drawable_text(i.description), drawable_text(i.amount)) for i in doc.items
        ),
        totals=tuple((drawable_text(a), drawable_text(b)) for a, b in doc.totals),
        payment_instructions=tuple(map(drawable_text, doc.payment_instructions)),
    )


def _kit_for(doc: InvoiceDocument) -> _FontKit:
    """The smallest fonts that draw every character of ``doc`` (already
    ``drawable_text``): the Latin subsets (most invoices: a few milliseconds to embed),
    else DejaVu Sans, else DejaVu Sans with the CJK fallback."""
    texts = [doc.number, doc.date, doc.due_date, doc.date_paid, doc.status]
    texts += [doc.company_name, doc.company_address, doc.company_email, *doc.bill_to]
    texts += [t for item in doc.items for t in (item.description, item.amount)]
    texts += [t for row in doc.totals for t in row] + list(doc.payment_instructions)
    used = {ord(ch) for text in texts for ch in text}
    for kit in (_latin, _full):
        if used <= kit().drawable:
            return kit()
    return _with_fallback()


STATUS_COLOURS: dict[str, tuple[int, int, int]] = {
    InvoiceStatus.PAID: (0, 128, 0),
    InvoiceStatus.UNPAID: (192, 0, 0),
    InvoiceStatus.COLLECTIONS: (192, 0, 0),
}


def draw_invoice_pdf(doc: InvoiceDocument) -> bytes:
    """Draw ``doc`` on A4 pages (items flow onto more pages as needed); no database."""
    from fpdf import FPDF

    doc = _printed(doc)
    pdf = FPDF(format="A4", unit="mm")
    pdf.set_creator("GoBiller")
    pdf.set_title(f"Invoice {doc.number}")
    _kit_for(doc).install(pdf)
    pdf.set_auto_page_break(True, margin=15)
    pdf.add_page()
    width = pdf.epw

    def text(value: str, size: float = 10, style: str = "", h: float = 5, **kw: Any) -> None:
        pdf.set_font(FAMILY, style, size)
        pdf.multi_cell(kw.pop("w", 0), h, value, new_x="LMARGIN", new_y="NEXT", **kw)

    # Company (left) and status (right, prominent).
    top = pdf.get_y()
    pdf.set_font(FAMILY, "B", 18)
    pdf.set_text_color(*STATUS_COLOURS.get(doc.status, (90, 90, 90)))
    pdf.cell(width, 9, doc.status.upper(), align="R")
    pdf.set_text_color(0, 0, 0)
    pdf.set_xy(pdf.l_margin, top)
    text(doc.company_name, 16, "B", 8, w=width * 0.65)
    if doc.company_address:
        text(doc.company_address, 9, w=width * 0.65)
    if doc.company_email:
        text(doc.company_email, 9, w=width * 0.65)
    pdf.ln(6)

    text(f"Invoice {doc.number}", 14, "B", 7)
    facts = [("Invoice Date", doc.date), ("Due Date", doc.due_date)]
    if doc.date_paid:
        facts.append(("Date Paid", doc.date_paid))
    facts.append(("Status", doc.status))
    for label, value in facts:
        pdf.set_font(FAMILY, "B", 10)
        pdf.cell(30, 5, label)
        pdf.set_font(FAMILY, "", 10)
        pdf.cell(0, 5, value, new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)

    text("Invoiced To", 10, "B")
    for line in doc.bill_to:
        text(line, 10)
    pdf.ln(5)

    # Items.
    amount_w = 45
    pdf.set_fill_color(230, 230, 230)
    pdf.set_font(FAMILY, "B", 10)
    pdf.cell(width - amount_w, 7, "Description", border="B", fill=True)
    pdf.cell(amount_w, 7, "Amount", border="B", fill=True, align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FAMILY, "", 10)
    for item in doc.items:  # the amount on the first line, the description wrapping
        if pdf.will_page_break(6):
            pdf.add_page()
        y = pdf.get_y()
        pdf.set_x(pdf.l_margin + width - amount_w)
        pdf.cell(amount_w, 6, item.amount, align="R")
        pdf.set_xy(pdf.l_margin, y)
        pdf.multi_cell(width - amount_w, 6, item.description, align="L")
        pdf.line(pdf.l_margin, pdf.get_y(), pdf.l_margin + width, pdf.get_y())
    pdf.ln(1)

    # Totals: label and amount right-aligned; the total and the balance in bold.
    for label, amount in doc.totals:
        bold = "B" if label in ("Total", "Balance") else ""
        pdf.set_font(FAMILY, bold, 10)
        pdf.cell(width - amount_w, 6, label, align="R")
        pdf.cell(amount_w, 6, amount, align="R", new_x="LMARGIN", new_y="NEXT")
    pdf.ln(6)

    if doc.payment_instructions:
        text("Payment", 10, "B")
        for line in doc.payment_instructions:
            text(line, 10)
    return bytes(pdf.output())  # fpdf2 also empties its glyph caches here: no leak
