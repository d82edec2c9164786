"""Invoice PDFs (issue 13, PRODUCT.md §3-§4): what ``gobiller invoice pdf``, the Invoices
tab and the "Invoice Created" / "Invoice Payment Confirmation" attachments print.

Rendering reads and never writes: three queries (the invoice with its client, currency,
billing contact and payments; its items; the settings, unless given), then pure drawing
with fpdf2. Amounts are ``store.money.format_money`` strings, the very text the screens
and emails show, in the client's currency (its prefix, suffix and decimals).

Text is drawn with DejaVu Sans (Bitstream Vera licence) and, for the Chinese and
Japanese characters it lacks, Droid Sans Fallback (Apache 2.0), shipped in
``rules/billing/fonts`` cut into pieces (``fonts/make_fonts.py``): a PDF embeds the Latin
piece and only the pieces its characters need, which keeps a PDF in tens of
milliseconds whatever the script. A character neither font has (Korean Hangul, most
emoji) is printed as ``?``, so any name renders and never raises. Arabic and Hebrew are
ordered right to left (fpdf2's bidi algorithm) without contextual shaping (HarfBuzz,
fpdf2's optional shaper, is not a dependency).
"""

from __future__ import annotations

import bisect
import copy
import datetime as dt
import io
import json
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from functools import cache, lru_cache
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
#: What most invoices print (``fonts/make_fonts.py``); every other character is in a
#: piece listed in ``fonts/index.json``, embedded only by a PDF that uses it.
LATIN_FONT_FILES = {"": "DejaVuSans-Latin.ttf", "B": "DejaVuSans-Bold-Latin.ttf"}
FAMILY = "DejaVu"
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


class _FontFile:
    """One font file, parsed once per process. fpdf2 parses a TrueType font on every
    ``add_font`` and cuts it down in place when it writes the PDF, so each document gets
    a copy of the parsed font with its own ``TTFont`` opened on the cached bytes (cheap:
    tables load lazily) and its own subset."""

    def __init__(self, family: str, style: str, name: str) -> None:
        from fpdf import FPDF

        proto = FPDF()
        proto.add_font(family, style, str(FONT_FOLDER / name))
        fonts: dict[str, Any] = proto.fonts
        [(self.key, self.proto)] = fonts.items()
        self.data = (FONT_FOLDER / name).read_bytes()
        #: The code points it has a glyph for.
        self.codes = frozenset(self.proto.cmap)

    def install(self, pdf: Any, number: int) -> None:
        """Give ``pdf`` its own copy of the font (as ``add_font`` would), as its
        ``number``-th font."""
        from fontTools import ttLib
        from fpdf.fonts import SubsetMap

        font = copy.copy(self.proto)
        font.i = number
        font.ttfont = ttLib.TTFont(io.BytesIO(self.data), recalcTimestamp=False, lazy=True)
        font.missing_glyphs = []
        font.subset = SubsetMap(font)
        pdf.fonts[self.key] = font


@cache
def _font_file(family: str, style: str, name: str) -> _FontFile:
    return _FontFile(family, style, name)


def _latin() -> tuple[_FontFile, ...]:
    return tuple(_font_file(FAMILY, style, name) for style, name in LATIN_FONT_FILES.items())


@lru_cache(maxsize=1)
def _latin_codes() -> frozenset[int]:
    regular, bold = _latin()
    return regular.codes & bold.codes


@dataclass(frozen=True)
class _Piece:
    """A piece of the fonts (``fonts/index.json``): the characters ``first``..``last``,
    one file per style."""

    number: int
    first: int
    last: int
    files: tuple[tuple[str, str], ...]

    @property
    def family(self) -> str:
        return f"piece{self.number}"  # lower case: fpdf2 strips B and I to find styles

    def fonts(self) -> tuple[_FontFile, ...]:
        return tuple(_font_file(self.family, style, name) for style, name in self.files)


@lru_cache(maxsize=1)
def _pieces() -> tuple[tuple[tuple[int, ...], tuple[_Piece, ...]], ...]:
    """The pieces in runs that do not overlap (the DejaVu pieces' ranges overlap the
    fallback's), each in character order with its pieces' first characters (for
    bisection)."""
    listed = json.loads((FONT_FOLDER / "index.json").read_text(encoding="utf-8"))
    runs: list[list[_Piece]] = []
    for n, row in enumerate(sorted(listed, key=lambda row: row["first"]), 1):
        piece = _Piece(n, row["first"], row["last"], tuple(sorted(row["files"].items())))
        run = next((r for r in runs if r[-1].last < piece.first), None)
        if run is None:
            runs.append([piece])
        else:
            run.append(piece)
    return tuple((tuple(p.first for p in run), tuple(run)) for run in runs)


def _piece_for(code: int) -> _Piece | None:
    """The piece that draws character ``code``, or None when no shipped font has it."""
    for firsts, pieces in _pieces():
        n = bisect.bisect_right(firsts, code) - 1
        if n >= 0 and code <= pieces[n].last:
            piece = pieces[n]
            if any(code in font.codes for font in piece.fonts()):
                return piece
    return None


#: Characters that would break a line: printed as a space (every text is one line).
_LINE_BREAKS = frozenset("\t\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


def drawable_text(text: str) -> str:
    """``text`` as the PDF prints it: NFC, one line, invisible controls and format marks
    dropped, each character no shipped font has a glyph for replaced by
    ``MISSING_GLYPH`` (never an exception, never a silently missing character)."""
    latin = _latin_codes()
    out = []
    for ch in unicodedata.normalize("NFC", text):
        code = ord(ch)
        if ch in _LINE_BREAKS:
            out.append(" ")
        elif code in latin:
            out.append(ch)
        elif unicodedata.category(ch) in ("Cc", "Cf"):
            continue  # nothing to draw
        elif _piece_for(code) is not None:
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


def _install_fonts(pdf: Any, doc: InvoiceDocument) -> None:
    """The Latin fonts, and as fallbacks the pieces that draw the other characters of
    ``doc`` (already ``drawable_text``)."""
    texts = [doc.number, doc.date, doc.due_date, doc.date_paid, doc.status]
    texts += [doc.company_name, doc.company_address, doc.company_email, *doc.bill_to]
    texts += [t for item in doc.items for t in (item.description, item.amount)]
    texts += [t for row in doc.totals for t in row] + list(doc.payment_instructions)
    latin = _latin_codes()
    needed = {ord(ch) for text in texts for ch in text} - latin
    pieces = sorted({p for p in map(_piece_for, needed) if p is not None}, key=lambda p: p.first)
    fonts = [*_latin(), *(font for piece in pieces for font in piece.fonts())]
    for number, font in enumerate(fonts, 1):
        font.install(pdf, number)
    if pieces:
        pdf.set_fallback_fonts([p.family for p in pieces], exact_match=False)


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
    _install_fonts(pdf, doc)
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
