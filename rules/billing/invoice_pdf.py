"""Invoice PDFs (issue 13, PRODUCT.md §3-§4): what ``gobiller invoice pdf``, the Invoices
tab and the "Invoice Created" / "Invoice Payment Confirmation" attachments print.

Rendering reads and never writes: three queries (the invoice with its client, currency,
billing contact and payments; its items; the settings, unless given), then pure drawing.
Amounts are ``store.money.format_money`` strings, the very text the screens and emails
show, in the client's currency (its prefix, suffix and decimals).

Text is drawn with DejaVu Sans (Bitstream Vera licence) and, for the Chinese and
Japanese characters it lacks, Droid Sans Fallback (Apache 2.0), shipped in
``rules/billing/fonts`` cut into pieces (``fonts/make_fonts.py``): a PDF uses the Latin
piece and only the pieces its characters need. A character neither font has (Korean
Hangul, most emoji) is printed as ``?``, so any name renders and never raises. Arabic
and Hebrew are drawn right to left (the Unicode bidirectional algorithm, fpdf2's
``fpdf.bidi``), Arabic letters in their isolated forms (no contextual shaping: HarfBuzz
is not a dependency). Every text prints as typed (nothing in it is markup or an alias).

Cost (issue 14: the invoice emails render their PDF when they are delivered): a PDF
takes a few milliseconds, whatever the script, and a few tens of KB
(``bench/invoice_pdf.py``). fpdf2 lays out the pages and writes the file; the texts and
fonts are written here. ``_Writer`` cuts each text into runs by the font that draws it,
wraps it, and writes it in glyph numbers; each font is embedded as the shipped piece with
only the glyphs drawn kept (``_FontProgram``: no fontTools subsetter), its deflated
program and ToUnicode map built once per set of characters and reused
(``_FontFile.embedded``); the fonts are read once per process. The fpdf2 internals this
relies on are listed in ``_invoice_pdf_class`` and checked by a test.
"""

from __future__ import annotations

import bisect
import copy
import datetime as dt
import json
import re
import struct
import threading
import unicodedata
import zlib
from collections.abc import Iterable
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


def _invoices_select() -> Any:
    """Invoices with their client, currency, billing contact and payments (one row each)."""
    billing = Contact.alias("billing")
    party: tuple[str, ...] = ("first_name", "last_name", "company", "address1", "address2")
    party += ("city", "state", "postcode", "country")
    return (
        Invoice.select(
            Invoice.id.alias("invoice_id"),
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
    )


def load_invoice_document(invoice_id: int, settings: Settings | None = None) -> InvoiceDocument:
    """Read what invoice ``invoice_id``'s PDF prints (``load_invoice_documents``): two
    queries, plus one for the settings when not given. Raises ``InvoiceNotFound``."""
    settings = settings or load_settings()
    document = load_invoice_documents([invoice_id], settings).get(invoice_id)
    if document is None:
        raise InvoiceNotFound(f"no invoice {invoice_id}")
    return document


def load_invoice_documents(
    invoice_ids: Iterable[int], settings: Settings
) -> dict[int, InvoiceDocument]:
    """What the PDFs of ``invoice_ids`` print, set-based: two queries (the invoices, then
    their items in order) whatever their number (what delivery reads for a leased
    batch's invoice emails, so a batch costs a fixed number of statements). An id no
    invoice has is left out of the result (its email fails alone, as ``InvoiceNotFound``)."""
    ids = sorted(set(invoice_ids))
    if not ids:
        return {}
    found: Any = _invoices_select().where(Invoice.id.in_(ids)).dicts()
    rows = {row["invoice_id"]: row for row in found}
    if not rows:
        return {}
    items: dict[int, list[Any]] = {invoice_id: [] for invoice_id in rows}
    item_rows: Any = (
        InvoiceItem.select(InvoiceItem.invoice, InvoiceItem.description, InvoiceItem.amount)
        .where(InvoiceItem.invoice.in_(list(rows)))
        .order_by(InvoiceItem.invoice, InvoiceItem.sort_order, InvoiceItem.id)
        .tuples()
    )
    for invoice_id, text, amount in item_rows:
        items[invoice_id].append((text, amount))
    return {
        invoice_id: _document(row, items[invoice_id], settings) for invoice_id, row in rows.items()
    }


def _document(row: dict[str, Any], items: list[Any], settings: Settings) -> InvoiceDocument:
    """The document from an ``_invoices_select`` row (as a dict) and its items'
    (description, amount in minor units) rows."""
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
    """One font file, read once per process: its metrics, character map and descriptor
    (parsed by fpdf2's ``add_font``), how a text is written in it, and its tables for
    ``_FontProgram``. A PDF's text is written in glyph numbers (two bytes each), so its
    codes are the font's glyph numbers (``CIDToGIDMap /Identity``)."""

    def __init__(self, family: str, style: str, name: str) -> None:
        from fpdf import FPDF
        from fpdf.fonts import TTFFont
        from fpdf.util import escape_parens  # a PDF literal string (ISO 32000-1 §7.3.4.2)

        self.style, self.file = style, name
        proto = FPDF()
        proto.add_font(family, style, str(FONT_FOLDER / name))
        [parsed] = proto.fonts.values()
        assert isinstance(parsed, TTFFont)
        parsed.close()  # its tables come from _FontProgram
        #: The PDF font descriptor (copied per document) and the font's name.
        self.descriptor, self.name = parsed.desc, parsed.name
        self.missing_width = parsed.desc.missing_width
        #: Code point -> glyph number, advance width (thousandths of the font size).
        self.glyphs: dict[int, int] = dict(parsed.glyph_ids)
        self.codes = frozenset(self.glyphs)
        self.widths: dict[int, int] = {code: int(parsed.cw[code]) for code in self.codes}
        #: ``str.translate`` table: a character -> its glyph number as PDF string bytes.
        self.encoding = {
            code: escape_parens(glyph.to_bytes(2, "big").decode("latin-1"))
            for code, glyph in self.glyphs.items()
        }
        #: Characters embedded whatever a PDF draws: printable ASCII in the Latin fonts
        #: (most invoices draw little else, so most PDFs share one embedded form).
        self.always = ALWAYS_EMBEDDED if name in LATIN_FONT_FILES.values() else frozenset()
        self._program: _FontProgram | None = None
        self._lock = threading.Lock()
        self._embedded: dict[frozenset[str], _Embedded] = {}

    def embedded(self, chars: frozenset[str]) -> _Embedded:
        """What a PDF embeds for this font when it draws ``chars``: built once per set of
        characters (the ``EMBEDDINGS_KEPT`` sets last used are kept: the ASCII set most
        invoices share stays), so a PDF never runs the fontTools subsetter and most PDFs
        deflate nothing here."""
        with self._lock:
            found = self._embedded.pop(chars, None)
            if found is None:
                if self._program is None:
                    self._program = _FontProgram((FONT_FOLDER / self.file).read_bytes())
                found = _Embedded.of(self, self._program, chars)
                if len(self._embedded) >= EMBEDDINGS_KEPT:
                    del self._embedded[next(iter(self._embedded))]  # the least recently used
            self._embedded[chars] = found  # (again) the most recently used
            return found


#: Embedded forms kept per font file, by the characters drawn (a few KB each, tens for
#: a CJK piece with many characters drawn).
EMBEDDINGS_KEPT = 64
#: The Latin fonts' characters every PDF embeds (``_FontFile.always``).
ALWAYS_EMBEDDED = frozenset(map(chr, range(0x20, 0x7F)))


@dataclass(frozen=True)
class _Embedded:
    """One font as a PDF embeds it for a set of characters: the deflated font program
    (``_FontProgram``) and its length before deflating, the deflated ToUnicode map
    (glyph number -> character, for copying and searching text) and the ``W`` array."""

    program: bytes
    program_length: int
    to_unicode: bytes
    widths: str

    @classmethod
    def of(cls, font: _FontFile, program: _FontProgram, chars: frozenset[str]) -> _Embedded:
        unicode: dict[int, int] = {}
        for ch in sorted(chars):
            unicode.setdefault(font.glyphs[ord(ch)], ord(ch))
        data = program.program(unicode)
        bfchar = [f"<{gid:04X}> <{_utf16_hex(code)}>\n" for gid, code in sorted(unicode.items())]
        blocks = "".join(
            f"{len(bfchar[n : n + 100])} beginbfchar\n{''.join(bfchar[n : n + 100])}endbfchar\n"
            for n in range(0, len(bfchar), 100)
        )
        cmap = (
            "/CIDInit /ProcSet findresource begin\n12 dict begin\nbegincmap\n"
            "/CIDSystemInfo\n<</Registry (Adobe)\n/Ordering (UCS)\n/Supplement 0\n>> def\n"
            "/CMapName /Adobe-Identity-UCS def\n/CMapType 2 def\n"
            "1 begincodespacerange\n<0000> <FFFF>\nendcodespacerange\n"
            f"{blocks}endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend"
        )
        widths = {gid: font.widths[code] for gid, code in unicode.items()}
        return cls(
            zlib.compress(data), len(data), zlib.compress(cmap.encode("ascii")), _widths(widths)
        )


class _FontProgram:
    """A TrueType font file (a piece in ``fonts/``) cut down for one PDF without the
    fontTools subsetter: every glyph keeps its number, the glyphs the PDF does not use
    are left empty (zero length in ``loca``), and the other tables are the file's own,
    read once per process (the name table cut to its names 0-6 and ``post`` to its
    version 3 header, as fontTools' subsetter leaves them). The PDF's character codes
    are these glyph numbers (``CIDToGIDMap /Identity``, ISO 32000-1 §9.7.4.2), and the
    program keeps the tables a ``FontFile2`` needs (§9.9: head, hhea, hmtx, loca, maxp,
    glyf, and cvt, fpgm, prep when present). Costs well under a millisecond per font."""

    #: Tables a PDF viewer never reads from an embedded CID font (layout, vertical
    #: metrics, device metrics, math, signatures): left out, like fpdf2's subsetter does.
    DROPPED = frozenset(
        ("GDEF", "GPOS", "GSUB", "MATH", "kern", "hdmx", "VDMX", "LTSH", "DSIG", "FFTM")
        + ("vhea", "vmtx", "meta", "BASE", "JSTF")
    )

    def __init__(self, data: bytes) -> None:
        count = struct.unpack_from(">H", data, 4)[0]
        tables: dict[str, bytes] = {}
        for n in range(count):
            tag, _sum, offset, length = struct.unpack_from(">4sLLL", data, 12 + 16 * n)
            tables[tag.decode("latin-1")] = data[offset : offset + length]
        head, glyf = tables["head"], tables["glyf"]
        glyphs = struct.unpack_from(">H", tables["maxp"], 4)[0]
        if struct.unpack_from(">h", head, 50)[0] == 0:
            loca = [2 * n for n in struct.unpack_from(f">{glyphs + 1}H", tables["loca"])]
        else:
            loca = list(struct.unpack_from(f">{glyphs + 1}L", tables["loca"]))
        #: Glyph number -> its ``glyf`` bytes (b"" for an empty glyph such as space).
        self.glyphs = [glyf[loca[n] : loca[n + 1]] for n in range(glyphs)]
        fixed = {tag: table for tag, table in tables.items() if tag not in self.DROPPED}
        fixed["head"] = head[:8] + b"\0\0\0\0" + head[12:50] + b"\0\1" + head[52:]  # long loca
        if "post" in tables:
            fixed["post"] = b"\0\3\0\0" + tables["post"][4:32]
        if "name" in tables:
            fixed["name"] = _short_name_table(tables["name"])
        del fixed["glyf"], fixed["loca"]
        self.fixed = fixed
        self.fixed_sums = {tag: _checksum(table) for tag, table in fixed.items()}

    def closure(self, used: Iterable[int]) -> list[int]:
        """``used`` glyph numbers, glyph 0 (``.notdef``) and the components of composite
        glyphs, sorted."""
        seen = {0}
        todo = [g for g in used if 0 <= g < len(self.glyphs)]
        while todo:
            gid = todo.pop()
            if gid not in seen:
                seen.add(gid)
                todo.extend(_components(self.glyphs[gid]))
        return sorted(seen)

    def program(self, used: Iterable[int]) -> bytes:
        """The font file with only ``used`` glyphs (and those ``closure`` adds) drawn."""
        keep = self.closure(used)
        glyf = bytearray()
        offsets = [0] * (len(self.glyphs) + 1)
        last = 0
        for gid in keep:
            for n in range(last + 1, gid + 1):
                offsets[n] = len(glyf)
            data = self.glyphs[gid]
            glyf += data + b"\0" * (-len(data) % 4)
            last = gid
        for n in range(last + 1, len(offsets)):
            offsets[n] = len(glyf)
        tables = dict(self.fixed)
        tables["glyf"] = bytes(glyf)
        tables["loca"] = struct.pack(f">{len(offsets)}L", *offsets)
        return _sfnt(tables, self.fixed_sums)


def _checksum(data: bytes | bytearray) -> int:
    """The TrueType checksum of a table: its big-endian 32-bit words summed, mod 2**32."""
    padded = bytes(data) + b"\0" * (-len(data) % 4)
    return sum(struct.unpack(f">{len(padded) // 4}L", padded)) & 0xFFFFFFFF


def _components(glyph: bytes) -> list[int]:
    """The glyphs a composite glyph is drawn from (TrueType ``glyf`` component records);
    [] for a simple or empty glyph."""
    if len(glyph) < 10 or struct.unpack_from(">h", glyph)[0] >= 0:
        return []
    found, at = [], 10
    while True:
        flags, gid = struct.unpack_from(">HH", glyph, at)
        found.append(gid)
        at += 4 + (4 if flags & 0x0001 else 2)  # ARG_1_AND_2_ARE_WORDS
        at += 2 if flags & 0x0008 else 4 if flags & 0x0040 else 8 if flags & 0x0080 else 0
        if not flags & 0x0020:  # MORE_COMPONENTS
            return found


def _short_name_table(name: bytes) -> bytes:
    """A format 0 ``name`` table with only its names 0-6 (copyright, family, style,
    unique ID, full name, version, PostScript name); other formats unchanged."""
    version, count, storage = struct.unpack_from(">HHH", name)
    if version != 0:
        return name
    kept, strings = [], bytearray()
    for n in range(count):
        platform, encoding, language, name_id, length, offset = struct.unpack_from(
            ">6H", name, 6 + 12 * n
        )
        if name_id <= 6:
            text = name[storage + offset : storage + offset + length]
            kept.append((platform, encoding, language, name_id, len(text), len(strings)))
            strings += text
    records = b"".join(struct.pack(">6H", *record) for record in kept)
    return struct.pack(">HHH", 0, len(kept), 6 + 12 * len(kept)) + records + bytes(strings)


def _sfnt(tables: dict[str, bytes], sums: dict[str, int]) -> bytes:
    """A TrueType file of ``tables`` (tag -> bytes; ``sums`` the checksums known), with
    its table directory and ``head.checkSumAdjustment``."""
    tags = sorted(tables)
    selector = len(tags).bit_length() - 1
    search = 16 << selector
    header = struct.pack(">LHHHH", 0x00010000, len(tags), search, selector, 16 * len(tags) - search)
    offset = 12 + 16 * len(tags)
    directory, body, head_at = [], [], 0
    for tag in tags:
        table = tables[tag]
        checksum = sums[tag] if tag in sums else _checksum(table)
        directory.append(struct.pack(">4sLLL", tag.encode("latin-1"), checksum, offset, len(table)))
        if tag == "head":
            head_at = offset
        body.append(table + b"\0" * (-len(table) % 4))
        offset += len(body[-1])
    font = bytearray(header + b"".join(directory) + b"".join(body))
    adjustment = (0xB1B0AFBA - _checksum(font)) & 0xFFFFFFFF
    font[head_at + 8 : head_at + 12] = struct.pack(">L", adjustment)
    return bytes(font)


_FONT_FILES: dict[tuple[str, str, str], _FontFile] = {}
_FONT_FILES_LOCK = threading.Lock()


def _font_file(family: str, style: str, name: str) -> _FontFile:
    """The font file ``name`` in ``fonts/``, read on first use, one per process (a PDF
    drawn in one thread while another reads the font gets the same one)."""
    key = (family, style, name)
    font = _FONT_FILES.get(key)  # read per character drawn: no lock once it is read
    if font is not None:
        return font
    with _FONT_FILES_LOCK:
        font = _FONT_FILES.get(key)
        if font is None:
            font = _FONT_FILES[key] = _FontFile(family, style, name)
        return font


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
        return f"piece{self.number}"  # the family name fpdf2's add_font reads it under

    def fonts(self) -> tuple[_FontFile, ...]:
        return tuple(_font_file(self.family, style, name) for style, name in self.files)

    def font(self, style: str, code: int) -> _FontFile:
        """The font of ``style`` that draws ``code``, else the piece's other font that
        does (Droid Sans Fallback has no bold)."""
        fonts = self.fonts()
        return next(
            (f for f in fonts if f.style == style and code in f.codes),
            next((f for f in fonts if code in f.codes), fonts[0]),
        )


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
#: The bidirectional formatting characters (UAX #9 table 4: embeddings, overrides,
#: isolates, their ends, and the marks): ``drawable_text`` keeps them for the order they
#: give a text (``_visual_lines``), which draws none of them.
_BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
#: ``str.translate`` table that drops ``_BIDI_CONTROLS``.
_UNDRAWN = dict.fromkeys(map(ord, _BIDI_CONTROLS))


@lru_cache(maxsize=1)
def _plain_latin() -> frozenset[str]:
    """The Latin fonts' characters ``drawable_text`` keeps as they are."""
    return frozenset(chr(code) for code in _latin_codes()) - _LINE_BREAKS


#: Unicode's default-ignorable code points (DerivedCoreProperties.txt,
#: ``Default_Ignorable_Code_Point``): invisible, so one no font has prints as nothing.
#: (first, last) ranges; the format marks (Cf) among them are dropped anyway.
_DEFAULT_IGNORABLE = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160),
    (0x17B4, 0x17B5), (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E),
    (0x2060, 0x206F), (0x3164, 0x3164), (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF),
    (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3), (0x1D173, 0x1D17A),
    (0xE0000, 0xE0FFF),
)  # fmt: skip


def _default_ignorable(code: int) -> bool:
    """Whether character ``code`` is default-ignorable (``_DEFAULT_IGNORABLE``)."""
    n = bisect.bisect_right(_DEFAULT_IGNORABLE, (code, 0x10FFFF)) - 1
    return n >= 0 and code <= _DEFAULT_IGNORABLE[n][1]


def drawable_text(text: str) -> str:
    """``text`` as the PDF prints it: NFC, one line, invisible controls and format marks
    dropped but the bidirectional ones (``_BIDI_CONTROLS``: they order the text, are
    never drawn), each character no shipped font has a glyph for replaced by
    ``MISSING_GLYPH`` (never an exception, never a silently missing character) unless it
    is invisible anyway (default-ignorable: a variation selector, a filler), then
    dropped."""
    if _plain_latin().issuperset(text) and unicodedata.is_normalized("NFC", text):
        return text  # what most texts are: the loop below would keep every character
    latin = _latin_codes()
    out = []
    for ch in unicodedata.normalize("NFC", text):
        code = ord(ch)
        if ch in _LINE_BREAKS:
            out.append(" ")
        elif code in latin or ch in _BIDI_CONTROLS:
            out.append(ch)
        elif unicodedata.category(ch) in ("Cc", "Cf"):
            continue  # nothing to draw
        elif _piece_for(code) is not None:
            out.append(ch)
        elif not _default_ignorable(code):
            out.append(MISSING_GLYPH)
    return "".join(out)


def _printed(doc: InvoiceDocument) -> InvoiceDocument:
    """``doc`` with every text as ``drawable_text`` prints it."""
    return InvoiceDocument(
        number=drawable_text(doc.number),
        date=drawable_text(doc.date),
        due_date=drawable_text(doc.due_date),
        date_paid=drawable_text(doc.date_paid),
        status=drawable_text(doc.status),
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


def _font_tag(number: int) -> str:
    """Six capital letters naming a font subset (ISO 32000-1 §9.6.4), one per font of a
    PDF: ``GBAAAB`` for the first."""
    return "GB" + "".join(chr(65 + number // 26**k % 26) for k in (3, 2, 1, 0))


@cache
def _invoice_pdf_class() -> type:
    """fpdf2's ``FPDF`` that knows the fonts ``_Writer`` drew with, and whose
    ``output`` embeds them with ``_embed_font`` instead of fpdf2's font code (which runs
    the fontTools subsetter for every font of every PDF). fpdf2 internals used, pinned
    <2.9 and checked by ``test_fpdf2_internals_the_invoice_pdf_relies_on``:
    ``OutputProducer._add_fonts`` (its result: font number -> font object),
    ``OutputProducer._add_pdf_obj``, ``FPDF._out``, ``FPDF._resource_catalog`` and
    ``PDFContentStream``'s ``_contents``/``filter``/``length``."""
    from fpdf import FPDF
    from fpdf.output import OutputProducer

    class InvoiceOutput(OutputProducer):
        def _add_fonts(self, *_resources: Any) -> dict[int, Any]:
            pdf: Any = self.fpdf  # an InvoicePDF
            fonts: dict[_FontFile, tuple[int, set[str]]] = pdf.invoice_fonts
            return {n: _embed_font(self, font, n, chars) for font, (n, chars) in fonts.items()}

    class InvoicePDF(FPDF):
        def __init__(self) -> None:
            super().__init__(format="A4", unit="mm")
            #: Each font drawn with: its number in the PDF, the characters drawn.
            self.invoice_fonts: dict[_FontFile, tuple[int, set[str]]] = {}

        def output(self) -> bytearray:  # type: ignore[override]
            return super().output(output_producer_class=InvoiceOutput)

    return InvoicePDF


def _embed_font(out: Any, font: _FontFile, number: int, chars: set[str]) -> Any:
    """Add ``font`` to the PDF ``out`` writes as font number ``number``, drawing
    ``chars``: a Type0 font over a CIDFontType2 whose codes are the glyph numbers
    (ISO 32000-1 §9.7), with its widths, ToUnicode map, descriptor and font program
    (``_FontFile.embedded``), the objects fpdf2 would write. Returns the Type0 font."""
    from fpdf.output import CIDSystemInfo, PDFFont
    from fpdf.syntax import Name, PDFArray, PDFContentStream

    embedded = font.embedded(font.always.union(chars))

    def deflated(data: bytes) -> Any:
        stream = PDFContentStream(b"")
        stream._contents, stream.length, stream.filter = data, len(data), Name("FlateDecode")
        out._add_pdf_obj(stream, "fonts")
        return stream

    name = f"{_font_tag(number)}+{font.name}"
    type0 = PDFFont(subtype="Type0", base_font=name, encoding="Identity-H")
    out._add_pdf_obj(type0, "fonts")
    cid_font = PDFFont(
        subtype="CIDFontType2", base_font=name, d_w=font.missing_width, w=embedded.widths
    )
    out._add_pdf_obj(cid_font, "fonts")
    type0.descendant_fonts = PDFArray([cid_font])
    type0.to_unicode = deflated(embedded.to_unicode)
    cid_font.c_i_d_system_info = CIDSystemInfo()
    out._add_pdf_obj(cid_font.c_i_d_system_info, "fonts")
    cid_font.c_i_d_to_g_i_d_map = Name("Identity")  # type: ignore[assignment]
    descriptor = copy.copy(font.descriptor)  # shared by every PDF: never changed
    descriptor.font_name = Name(name)
    out._add_pdf_obj(descriptor, "fonts")
    cid_font.font_descriptor = descriptor
    program = deflated(embedded.program)
    program.length1 = embedded.program_length
    descriptor.font_file2 = program  # type: ignore[attr-defined]
    return type0


def _widths(widths: dict[int, int]) -> str:
    """A CID font's ``W`` array: each run of consecutive codes as ``first [w1 w2 ...]``."""
    runs: list[list[int]] = []
    for cid in sorted(widths):
        if runs and runs[-1][0] + len(runs[-1]) - 1 == cid:
            runs[-1].append(widths[cid])
        else:
            runs.append([cid, widths[cid]])
    return "[" + " ".join(f"{run[0]} [{' '.join(map(str, run[1:]))}]" for run in runs) + "]"


def _utf16_hex(code: int) -> str:
    """A code point as the ToUnicode map writes it: UTF-16BE in hex (a surrogate pair
    above U+FFFF)."""
    return chr(code).encode("utf-16-be").hex().upper()


STATUS_COLOURS: dict[str, tuple[int, int, int]] = {
    InvoiceStatus.PAID: (0, 128, 0),
    InvoiceStatus.UNPAID: (192, 0, 0),
    InvoiceStatus.COLLECTIONS: (192, 0, 0),
}
BLACK = (0, 0, 0)
#: The space left of and right of a text in its box, in mm (fpdf2's default ``c_margin``).
PADDING = 1.0
#: A text run: the font that draws it, the text, its width in thousandths of the size.
_Run = tuple[_FontFile, str, int]


@lru_cache(maxsize=2)
def _latin_widths(style: str) -> dict[str, int]:
    """Character -> advance width (thousandths of the font size) in the Latin font of
    ``style``, for the characters both Latin fonts have."""
    font = _latin()[0 if style == "" else 1]
    return {chr(code): font.widths[code] for code in _latin_codes()}


#: Bidirectional classes that make a line need reordering (Unicode UAX #9).
_RIGHT_TO_LEFT = frozenset(("R", "AL", "RLE", "RLO", "RLI"))
#: What a bracket shows as in right-to-left text (UAX #9 rule L4, the pairs that occur).
_MIRRORED = dict(zip("()[]{}<>«»‹›", ")(][}{><»«›‹", strict=True))


def _visual_order(line: str) -> str:
    """One line in the order its characters are drawn left to right (``_visual_lines``
    of a paragraph of one line). A line without right-to-left characters is returned
    as is."""
    return _visual_lines(line, [(0, len(line))])[0]


def _visual_lines(paragraph: str, lines: list[tuple[int, int]]) -> list[str]:
    """The lines ``paragraph[start:end]`` of one paragraph (in order, ``(start, end)``
    each), each in the order its characters are drawn left to right: right-to-left
    script (Arabic, Hebrew) reversed, with its brackets mirrored, by the Unicode
    bidirectional algorithm (fpdf2's ``fpdf.bidi``). Every line takes the paragraph's
    direction (its first strong character, UAX #9 rules P2-P3): a right-to-left
    paragraph stays right to left on a line that starts with a Latin word. Arabic
    letters are drawn in their isolated forms (no contextual shaping). The bidirectional
    formatting characters (``_BIDI_CONTROLS``) order the text and are left out of the
    lines. Without right-to-left characters the lines are as typed."""
    if paragraph.isascii():
        return [paragraph[start:end] for start, end in lines]
    if not any(unicodedata.bidirectional(ch) in _RIGHT_TO_LEFT for ch in paragraph):
        return [paragraph[start:end].translate(_UNDRAWN) for start, end in lines]
    from fpdf.bidi import auto_detect_base_direction

    direction = auto_detect_base_direction(paragraph)
    return [_reordered(paragraph[start:end], direction) for start, end in lines]


def _reordered(line: str, direction: Any) -> str:
    """``_visual_lines``' one line in the paragraph ``direction`` (fpdf2's
    ``TextDirection``)."""
    from fpdf.bidi import BidiParagraph

    try:
        characters = BidiParagraph(text=line, base_direction=direction).get_reordered_characters()
    except RecursionError:  # fpdf.bidi recurses once per neutral in a row (thousands)
        return line.translate(_UNDRAWN)
    return "".join(
        _MIRRORED.get(c.character, c.character) if c.embedding_level % 2 else c.character
        for c in characters
        if c.character not in _BIDI_CONTROLS
    )


class _Writer:
    """Writes one PDF's texts (already ``drawable_text``) into fpdf2's page content.
    Each text is cut into runs by the font that draws it (the Latin font of the style,
    or the piece of the fonts that has the character), long texts are wrapped here, and
    page breaks are taken before a line that would cross the bottom margin. fpdf2's own
    text drawing is not used: ``cell`` costs a tenth of a millisecond a line,
    ``multi_cell`` measures a line once per character, with fallback fonts every text is
    parsed character by character and, after a line that starts with a fallback font,
    the next lines come out in the wrong font's glyphs; and a ``{nb}`` in any text
    became the page count."""

    def __init__(self, pdf: Any) -> None:
        self.pdf = pdf
        self.fonts: dict[_FontFile, tuple[int, set[str]]] = pdf.invoice_fonts
        self.mm_per_unit = 1 / (1000 * pdf.k)  # a width unit at 1 pt, in mm

    def font(self, ch: str, style: str) -> _FontFile:
        """The font that draws ``ch`` (a ``drawable_text`` character) in ``style``."""
        if ch in _latin_widths(style):
            return _latin()[0 if style == "" else 1]
        piece = _piece_for(ord(ch))
        assert piece is not None, "drawable_text keeps only characters a font has"
        return piece.font(style, ord(ch))

    def widths(self, text: str, style: str) -> list[int]:
        """Each character's advance width (thousandths of the font size)."""
        latin = _latin_widths(style)
        try:
            return list(map(latin.__getitem__, text))
        except KeyError:  # a character from a piece, or one never drawn
            return [
                0 if ch in _BIDI_CONTROLS else self.font(ch, style).widths[ord(ch)] for ch in text
            ]

    def runs(self, text: str, style: str) -> list[_Run]:
        """``text`` cut into runs of characters drawn by the same font."""
        latin = _latin_widths(style)
        try:
            return [(_latin()[0 if style == "" else 1], text, sum(map(latin.__getitem__, text)))]
        except KeyError:
            pass
        runs: list[_Run] = []
        for ch in text:
            font = self.font(ch, style)
            width = font.widths[ord(ch)]
            if runs and runs[-1][0] is font:
                runs[-1] = (font, runs[-1][1] + ch, runs[-1][2] + width)
            else:
                runs.append((font, ch, width))
        return runs

    def wrap(self, text: str, style: str, size: float, width: float) -> list[str]:
        """``text`` (one paragraph) cut into lines no wider than ``width`` mm at ``size``
        pt (with ``PADDING`` both sides): at spaces, inside a word only when it is wider
        than a line. Each line in the order it is drawn (``_visual_lines``). One line,
        "" for an empty text."""
        limit = (width - 2 * PADDING) / (size * self.mm_per_unit)
        widths = self.widths(text, style)
        if sum(widths) <= limit:
            return [_visual_order(text)]
        lines: list[tuple[int, int]] = []
        start, end = 0, len(text)
        while start < end:
            used, at, space = 0, start, -1
            while at < end and used + widths[at] <= limit:
                if text[at] == " ":
                    space = at
                used += widths[at]
                at += 1
            if at == end:
                cut = end
            elif text[at] == " ":
                cut = at
            elif space > start:
                cut = space
            else:
                cut = max(at, start + 1)  # a word wider than the line
            lines.append((start, start + len(text[start:cut].rstrip(" "))))
            start = cut
            while start < end and text[start] == " ":
                start += 1
        return _visual_lines(text, lines or [(0, 0)])

    def room(self, height: float) -> None:
        """A new page when ``height`` mm more would cross the bottom margin."""
        if self.pdf.get_y() + height > self.pdf.page_break_trigger:
            self.pdf.add_page()

    def line(
        self,
        text: str,
        box: tuple[float, float],
        height: float,
        size: float,
        style: str = "",
        *,
        right: bool = False,
        colour: tuple[int, int, int] = BLACK,
        ordered: bool = False,
    ) -> None:
        """Draw ``text``, one line, at the current height in the box ``(x, width)``
        (mm), ``height`` mm high, at ``size`` pt, left-aligned or ``right``-aligned;
        ``ordered``: already in the order it is drawn (``wrap``'s lines), else put in it
        (``_visual_order``)."""
        from fpdf.enums import PDFResourceType

        pdf = self.pdf
        runs = self.runs(text if ordered else _visual_order(text), style)
        x, width = box
        if right:
            x += width - PADDING - sum(run[2] for run in runs) * size * self.mm_per_unit
        else:
            x += PADDING
        k = pdf.k
        y = (pdf.h - pdf.get_y() - 0.5 * height - 0.3 * size / k) * k  # as fpdf2's cell
        out = [] if colour == BLACK else [f"q {' '.join(f'{c / 255:.3f}' for c in colour)} rg"]
        for font, part, advance in runs:
            if font not in self.fonts:
                self.fonts[font] = (len(self.fonts) + 1, set())
            number, chars = self.fonts[font]
            chars.update(part)
            pdf._resource_catalog.add(PDFResourceType.FONT, number, pdf.page)
            encoded = part.translate(font.encoding)
            out.append(f"BT {x * k:.2f} {y:.2f} Td /F{number} {size:.2f} Tf ({encoded}) Tj ET")
            x += advance * size * self.mm_per_unit
        if colour != BLACK:
            out.append("Q")
        pdf._out("\n".join(out))

    def text(
        self, value: str, size: float = 10, style: str = "", height: float = 5, width: float = 0
    ) -> None:
        """``value`` from the left margin, wrapped to ``width`` mm (0: to the right
        margin), one ``height`` per line; the next text goes under it."""
        pdf = self.pdf
        width = width or pdf.epw
        for line in self.wrap(value, style, size, width):
            self.room(height)
            self.line(line, (pdf.l_margin, width), height, size, style, ordered=True)
            pdf.ln(height)


def draw_invoice_pdf(doc: InvoiceDocument) -> bytes:
    """Draw ``doc`` on A4 pages (items flow onto more pages as needed); no database."""
    doc = _printed(doc)
    pdf = _invoice_pdf_class()()
    pdf.set_creator("GoBiller")
    pdf.set_title(f"Invoice {doc.number}")
    pdf.set_auto_page_break(False, margin=15)  # _Writer.room breaks pages
    pdf.add_page()
    write = _Writer(pdf)
    width, left = pdf.epw, pdf.l_margin
    amount_w = 45
    description, amount = (left, width - amount_w), (left + width - amount_w, amount_w)

    # Company (left) and status (right, prominent).
    colour = STATUS_COLOURS.get(doc.status, (90, 90, 90))
    status = drawable_text(doc.status.upper())  # upper() may make what no font has
    write.line(status, (left, width), 9, 18, "B", right=True, colour=colour)
    write.text(doc.company_name, 16, "B", 8, width * 0.65)
    if doc.company_address:
        write.text(doc.company_address, 9, width=width * 0.65)
    if doc.company_email:
        write.text(doc.company_email, 9, width=width * 0.65)
    pdf.ln(6)

    write.text(f"Invoice {doc.number}", 14, "B", 7)
    facts = [("Invoice Date", doc.date), ("Due Date", doc.due_date)]
    if doc.date_paid:
        facts.append(("Date Paid", doc.date_paid))
    facts.append(("Status", doc.status))
    for label, value in facts:
        write.room(5)
        write.line(label, (left, 30), 5, 10, "B")
        write.line(value, (left + 30, width - 30), 5, 10)
        pdf.ln(5)
    pdf.ln(4)

    write.text("Invoiced To", 10, "B")
    for line in doc.bill_to:
        write.text(line, 10)
    pdf.ln(5)

    # Items: the amount on the first line, the description wrapping.
    write.room(7)
    pdf.set_fill_color(230, 230, 230)
    pdf.rect(left, pdf.get_y(), width, 7, style="F")
    pdf.set_fill_color(0, 0, 0)
    write.line("Description", description, 7, 10, "B")
    write.line("Amount", amount, 7, 10, "B", right=True)
    pdf.ln(7)
    pdf.line(left, pdf.get_y(), left + width, pdf.get_y())
    for item in doc.items:
        for n, line in enumerate(write.wrap(item.description, "", 10, description[1])):
            write.room(6)
            if n == 0:
                write.line(item.amount, amount, 6, 10, right=True)
            write.line(line, description, 6, 10, ordered=True)
            pdf.ln(6)
        pdf.line(left, pdf.get_y(), left + width, pdf.get_y())
    pdf.ln(1)

    # Totals: label and amount right-aligned; the total and the balance in bold.
    for label, total in doc.totals:
        bold = "B" if label in ("Total", "Balance") else ""
        write.room(6)
        write.line(label, description, 6, 10, bold, right=True)
        write.line(total, amount, 6, 10, bold, right=True)
        pdf.ln(6)
    pdf.ln(6)

    if doc.payment_instructions:
        write.text("Payment", 10, "B")
        for line in doc.payment_instructions:
            write.text(line, 10)
    return bytes(pdf.output())
