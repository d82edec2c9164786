"""Invoice PDF drawing without a database: every text prints with its own font's glyphs,
as typed, and each PDF embeds small fonts of its own without running the fontTools
subsetter (issue 14: a PDF costs milliseconds at delivery)."""

from __future__ import annotations

import inspect
import io
import shutil
import subprocess
import threading
import zlib
from typing import Any

import pytest
from fontTools import subset, ttLib
from fontTools.ttLib.sfnt import calcChecksum

from rules.billing import invoice_pdf
from rules.billing.invoice_pdf import InvoiceDocument, InvoiceLine, draw_invoice_pdf

ADDRESS = ("Building 12, Road 3", "Manama 317", "Bahrain", "Tax ID: BH-VAT-200")


def _document(name: str, description: str = "Shared Hosting (01/11/2026 - 30/11/2026)") -> Any:
    return InvoiceDocument(
        number="INV-7",
        date="2026-11-01",
        due_date="2026-11-15",
        date_paid="",
        status="Unpaid",
        payment_method="banktransfer",
        company_name="Gulf Hosting W.L.L.",
        company_address="Seef District, Manama, Bahrain",
        company_email="billing@example.com",
        bill_to=(name, *ADDRESS),
        items=(InvoiceLine(description, "BD 19.990"), InvoiceLine("Setup fee", "BD 5.000")),
        totals=(("Sub Total", "BD 24.990"), ("Total", "BD 24.990"), ("Balance", "BD 24.990")),
        payment_instructions=("Pay by bank transfer:", "Ask us for our bank details."),
    )


def _pypdf_lines(data: bytes) -> list[str]:
    from pypdf import PdfReader

    pages = PdfReader(io.BytesIO(data)).pages
    return [line.strip() for page in pages for line in (page.extract_text() or "").splitlines()]


def _pdftotext_lines(data: bytes) -> list[str]:
    if shutil.which("pdftotext") is None:
        return []  # pypdf still reads every line
    done = subprocess.run(["pdftotext", "-", "-"], input=data, capture_output=True, check=True)
    return [line.strip() for line in done.stdout.decode("utf-8").splitlines()]


NAMES = ["王小明 東京都 株式会社", "Ана Петрова", "Νίκος Παπαδόπουλος", "שרה לוי", "محمد العلي"]


@pytest.mark.parametrize("name", NAMES)
def test_lines_after_a_text_drawn_with_another_font_keep_their_own_font(name: str) -> None:
    """A name drawn with a piece of the fonts (CJK, Cyrillic, Greek, Hebrew, Arabic) is
    followed by the address in the Latin font: every address line reads as typed (fpdf2's
    fallback fonts drew them with the piece's or the bold font's glyphs: garbage)."""
    data = draw_invoice_pdf(_document(name))
    for lines in (_pypdf_lines(data), _pdftotext_lines(data) or _pypdf_lines(data)):
        for line in ADDRESS + ("Seef District, Manama, Bahrain", "Pay by bank transfer:"):
            assert line in lines, (line, lines)


def test_a_long_text_wraps_and_every_line_keeps_its_font() -> None:
    """A description longer than a page, starting with a CJK character, wraps at spaces
    onto more pages; a word wider than the line is cut inside; nothing is lost."""
    long = "王 renewal of example.com, " * 120 + "W" * 150
    data = draw_invoice_pdf(_document("王小明", long))
    lines = _pypdf_lines(data)
    flat = "".join("".join(lines).split())
    assert "".join(long.split()) in flat
    assert "Building 12, Road 3" in lines and "Setup fee" in " ".join(lines)
    from pypdf import PdfReader

    assert len(PdfReader(io.BytesIO(data)).pages) >= 2


@pytest.mark.parametrize("text", ["Ana {nb} Bond", "{nb}", "王 {nb}", "**bold** __it__ --s--"])
def test_texts_print_as_typed_never_as_layout_instructions(text: str) -> None:
    """fpdf2 replaced ``{nb}`` in any text with the page count; nothing in a name,
    description or address is read as an instruction (markdown, aliases)."""
    data = draw_invoice_pdf(_document(text, f"Item {text}"))
    lines = _pypdf_lines(data)
    assert text in lines and f"Item {text}" in " ".join(lines)


def _fonts(data: bytes) -> list[tuple[str, bytes, int, str, set[int]]]:
    """Each embedded font: (name, program, /Length1, CIDToGIDMap, glyphs in ToUnicode)."""
    from pypdf import PdfReader

    found = []
    resources: Any = PdfReader(io.BytesIO(data)).pages[0]["/Resources"]
    for font in resources["/Font"].values():
        font = font.get_object()
        cid_font = font["/DescendantFonts"][0].get_object()
        stream = cid_font["/FontDescriptor"]["/FontFile2"].get_object()
        cmap = font["/ToUnicode"].get_object().get_data().decode("ascii")
        glyphs = {
            int(line[1:5], 16)
            for line in cmap.splitlines()
            if line.startswith("<") and "> <" in line and len(line) > 12
        }
        found.append(
            (
                str(font["/BaseFont"]),
                stream.get_data(),
                int(stream["/Length1"]),
                str(cid_font["/CIDToGIDMap"]),
                glyphs,
            )
        )
    return found


def test_each_pdf_embeds_the_glyphs_it_draws_without_the_fonttools_subsetter(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The font program a PDF embeds is the shipped font with only the glyphs drawn
    (and .notdef, the parts of composite glyphs and, in the Latin fonts, printable
    ASCII): valid TrueType (checksums), each of those glyphs as in the shipped file,
    every other glyph empty. The fontTools subsetter (seconds per hundred PDFs) never
    runs. A Latin invoice stays a few tens of KB."""

    def refuse(*_args: object) -> None:
        raise AssertionError("the fontTools subsetter ran")

    monkeypatch.setattr(subset.Subsetter, "subset", refuse)
    data = draw_invoice_pdf(_document("Zoë Ørsted"))
    assert len(data) < 50_000
    fonts = _fonts(data)
    assert sorted(name.split("+")[1] for name, *_ in fonts) == ["DejaVuSansBold", "DejaVuSansBook"]
    for name, program, length, gid_map, glyphs in fonts:
        assert len(program) == length and gid_map == "/Identity"
        embedded = ttLib.TTFont(io.BytesIO(program))
        for tag, entry in embedded.reader.tables.items():
            table = embedded.reader[tag]
            if tag == "head":
                table = table[:8] + b"\0\0\0\0" + table[12:]
            assert entry.checkSum == calcChecksum(table), (name, tag)
        assert calcChecksum(program) == 0xB1B0AFBA  # head.checkSumAdjustment
        shipped_name = invoice_pdf.LATIN_FONT_FILES["B" if "Bold" in name else ""]
        shipped = ttLib.TTFont(invoice_pdf.FONT_FOLDER / shipped_name)
        order, embedded_order = shipped.getGlyphOrder(), embedded.getGlyphOrder()
        assert len(order) == len(embedded_order)  # the glyphs keep their numbers
        drawn = glyphs | {0}
        cmap = shipped.getBestCmap()
        assert {shipped.getGlyphID(cmap[code]) for code in range(0x20, 0x7F)} <= drawn
        assert "Bold" in name or shipped.getGlyphID(cmap[ord("Ø")]) in drawn  # the name's
        for gid, glyph_name in enumerate(order):
            ours = embedded["glyf"][embedded_order[gid]]
            theirs = shipped["glyf"][glyph_name]
            if gid in drawn:
                assert ours.compile(embedded["glyf"]) == theirs.compile(shipped["glyf"])
            elif ours.numberOfContours:  # kept only as a part of a drawn glyph
                assert any(
                    glyph_name in shipped["glyf"][order[g]].getComponentNames(shipped["glyf"])
                    for g in drawn
                    if shipped["glyf"][order[g]].isComposite()
                ), glyph_name
    cjk = draw_invoice_pdf(_document("王小明 東京都 株式会社 " * 3))
    assert len(cjk) < 100_000


def test_pdfs_drawn_at_once_in_threads_are_the_pdfs_drawn_one_by_one() -> None:
    """The fonts and their embedded forms are shared by every PDF of a process (the
    delivery pool and the staff app's workers draw at once): no PDF sees another's
    characters."""
    names = ["Zoë", "王小明", "Ана", "محمد", "Νίκος", "Ørsted"]
    alone = {name: _pypdf_lines(draw_invoice_pdf(_document(name))) for name in names}
    seen: dict[str, list[list[str]]] = {name: [] for name in names}
    failures: list[BaseException] = []

    def draw(name: str) -> None:
        try:
            for _ in range(5):
                seen[name].append(_pypdf_lines(draw_invoice_pdf(_document(name))))
        except BaseException as error:  # noqa: BLE001 - reported below
            failures.append(error)

    threads = [threading.Thread(target=draw, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert failures == []
    for name in names:
        assert seen[name] == [alone[name]] * 5


def test_fpdf2_internals_the_invoice_pdf_relies_on() -> None:
    """``rules.billing.invoice_pdf`` writes its texts and fonts through fpdf2 internals
    (fpdf2 is pinned <2.9): when an upgrade moves them, this says which one."""
    from fpdf import FPDF
    from fpdf.output import CIDSystemInfo, OutputProducer, PDFFont
    from fpdf.syntax import PDFContentStream

    assert "output_producer_class" in inspect.signature(FPDF.output).parameters
    assert "font_objs_per_index = self._add_fonts(" in inspect.getsource(
        OutputProducer._insert_resources
    )
    assert callable(OutputProducer._add_pdf_obj) and callable(FPDF._out)
    pdf = FPDF()
    assert callable(pdf._resource_catalog.add)
    stream = PDFContentStream(b"x", compress=True)
    assert stream._contents == zlib.compress(b"x", -1) and stream.length == len(stream._contents)
    assert str(stream.filter) == "FlateDecode"
    font = PDFFont(subtype="CIDFontType2", base_font="X")
    for name in ("descendant_fonts", "to_unicode", "c_i_d_system_info", "font_descriptor"):
        assert hasattr(font, name)
    assert "c_i_d_to_g_i_d_map" in vars(font) and CIDSystemInfo().supplement == 0


@pytest.mark.parametrize(
    ("name", "reads"),
    [
        ("שרה לוי", "שרה לוי"),
        ("محمد العلي", "محمد العلي"),
        ("Levi (עברית) mixed", "עברית"),
        ("(שרה) 42", "שרה"),
    ],
)
def test_right_to_left_names_are_drawn_right_to_left(name: str, reads: str) -> None:
    """Hebrew and Arabic are drawn in visual order (the Unicode bidirectional algorithm),
    so a reader puts them back in the order typed: poppler's ``pdftotext`` reads the
    name as typed (it read Hebrew and Arabic backwards when drawn left to right)."""
    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is not installed")
    lines = _pdftotext_lines(draw_invoice_pdf(_document(name)))
    plain = [line.replace("\u202b", "").replace("\u202c", "") for line in lines]
    assert any(reads in line for line in plain), plain[:12]


def _drawn_runs(data: bytes) -> list[tuple[float, float, str]]:
    """Each text run the PDF draws: (x, y, its text as the ToUnicode maps read it)."""
    from pypdf import PdfReader

    runs: list[tuple[float, float, str]] = []

    def visit(text: str, _cm: Any, tm: Any, *_rest: Any) -> None:
        if text.strip():
            runs.append((round(tm[4], 1), round(tm[5], 1), text))

    for page in PdfReader(io.BytesIO(data)).pages:
        page.extract_text(visitor_text=visit)
    return runs


def _is_hebrew(text: str) -> bool:
    return any("\u0590" <= ch <= "\u05ff" for ch in text)


@pytest.mark.parametrize(
    "description",
    [
        "שרה לוי " + "hosting plan " * 12 + "חבילה",
        "חבילה " + "hosting plan " * 12 + "plan (שרה)",
    ],
)
def test_a_wrapped_right_to_left_text_keeps_its_direction_on_every_line(
    description: str,
) -> None:
    """A right-to-left description (its first strong character Hebrew) that wraps is one
    paragraph: every line takes the paragraph's direction (UAX #9 P2-P3), right to left,
    so on its last line, which starts with a Latin word, the Hebrew word that follows it
    is drawn to its left. Each line on its own took the direction
    of its first letter and drew the Hebrew to the right of "plan"."""
    runs = _drawn_runs(draw_invoice_pdf(_document("Ana", description)))
    hebrew = [(x, y) for x, y, text in runs if _is_hebrew(text)]
    last_y = min(y for _x, y in hebrew)  # the description's last line (y grows upwards)
    plan = [x for x, y, text in runs if y == last_y and text.strip().startswith("plan")]
    assert plan, [run for run in runs if run[1] == last_y]
    assert all(x < plan[0] for x, y in hebrew if y == last_y), [r for r in runs if r[1] == last_y]


@pytest.mark.parametrize(
    ("typed", "printed"),
    [
        ("葛\U000e0100飾区", "葛飾区"),  # an ideographic variation sequence (Japanese names)
        ("Zoë\U000e0101 Ørsted", "Zoë Ørsted"),
        ("ᠠ\u180bᠢ Bat", "ᠠᠢ Bat"),  # a Mongolian variation selector
        ("Ana\u115f Bond", "Ana Bond"),  # a Hangul filler
        ("Ana\U000e0001\U000e0041 Bond", "Ana Bond"),  # language tags
    ],
)
def test_invisible_characters_print_as_nothing_never_as_question_marks(
    typed: str, printed: str
) -> None:
    """A default-ignorable character (Unicode's invisible ones: variation selectors,
    fillers, tags) that no shipped font has prints as nothing, like the format marks:
    ``MISSING_GLYPH`` is for a character that would have been seen. An IVS after a kanji
    printed the name as "葛?飾区"."""
    assert invoice_pdf.drawable_text(typed) == invoice_pdf.drawable_text(printed)
    lines = _pypdf_lines(draw_invoice_pdf(_document(typed)))
    assert invoice_pdf.drawable_text(printed) in lines, lines[:12]


def test_every_text_of_the_document_is_drawable_whatever_it_holds() -> None:
    """Every text of an invoice document, the status too (a text column: a row may hold
    anything), prints what a font has and ``MISSING_GLYPH`` for the rest; drawing never
    raises. A status with a character no font has raised AssertionError."""
    odd = "Ω한\ud800\x00\u202e😀"
    doc = InvoiceDocument(
        number=odd,
        date=odd,
        due_date=odd,
        date_paid=odd,
        status=odd,
        payment_method=odd,
        company_name=odd,
        company_address=odd,
        company_email=odd,
        bill_to=(odd,),
        items=(InvoiceLine(odd, odd),),
        totals=((odd, odd),),
        payment_instructions=(odd,),
    )
    text = " ".join(_pypdf_lines(draw_invoice_pdf(doc)))
    assert text.count("Ω") == text.count("Ω??") >= 14 and "한" not in text


@pytest.mark.parametrize(
    "name",
    [
        "\u2068محمد العلي\u2069 (VIP)",  # first strong isolated (FSI ... PDI): left to right
        "\u2066محمد العلي\u2069 (VIP)",  # LRI ... PDI
        "\u202aمحمد العلي\u202c (VIP)",  # LRE ... PDF
    ],
)
def test_bidi_formatting_characters_order_the_text_and_are_never_drawn(name: str) -> None:
    """The bidirectional formatting characters a text holds (isolates, embeddings,
    marks) order it as UAX #9 says and draw nothing: an Arabic name isolated before a
    Latin word leaves the line left to right, so the name is drawn left of "(VIP)". The
    isolates were dropped (the embeddings kept), so the name made the line right to
    left and "(VIP)" was drawn left of it."""
    runs = _drawn_runs(draw_invoice_pdf(_document(name)))
    vip = [(x, y) for x, y, text in runs if "VIP" in text]
    assert len(vip) == 1, runs
    x_vip, y = vip[0]
    arabic = [x for x, y_ar, text in runs if y_ar == y and "\u0645" in text]
    assert arabic and all(x < x_vip for x in arabic), [run for run in runs if run[1] == y]
    line = [text for _x, y_run, text in runs if y_run == y]
    assert not any(ch in "".join(line) for ch in "?\u2066\u2068\u2069\u202a\u202c"), line


@pytest.mark.parametrize(
    "description",
    [
        "שרה " + "\ufffc" * 1500 + " x",  # one line: U+FFFC is neutral and draws nothing
        "שרה " + "." * 3000 + " x",  # a paragraph of many lines
    ],
    ids=["one line", "many lines"],
)
def test_long_runs_of_neutral_characters_in_right_to_left_text_draw(description: str) -> None:
    """fpdf2's bidirectional algorithm recurses once per neutral character in a row: a
    right-to-left text with a thousand of them on a line (or in a paragraph, were the
    paragraph resolved at once) raised RecursionError. Such a text draws, every
    character kept."""
    lines = _pypdf_lines(draw_invoice_pdf(_document("Ana", description)))
    drawn = "".join(lines)
    assert drawn.count(".") >= description.count(".") and "Building 12, Road 3" in lines
