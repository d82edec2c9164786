"""Milliseconds per invoice PDF: what every "Invoice Created" email costs at delivery.

    python bench/invoice_pdf.py [--invoices 50] [--items 5] [--database URL]

Makes ``--invoices`` invoices of ``--items`` items each for a Latin-named client, one
whose name needs the full font (Arabic, Cyrillic) and one who needs the CJK fallback
font, then times ``rules.billing.invoice_pdf.render_invoice_pdf`` (queries and drawing)
for each kind, and prints each kind's PDF size. The first render of a process (importing
fpdf2, reading the fonts) is timed apart. In the same run, a baseline: the Latin
invoices drawn by fpdf2 alone, as a plain fpdf2 program would (``add_font`` per PDF,
``multi_cell`` per text, fpdf2's own font subsetting when writing), from the same
documents. The last line is one JSON object (with the load average, as other work on
the machine inflates every figure). ``--database`` takes an EMPTY database (SQLite or
PostgreSQL).

Issue 14, this machine (2 CPUs, shared), SQLite, 5 items, medians. Before (fpdf2
subsetting each font of each PDF with fontTools, texts by ``multi_cell`` with fallback
fonts), idle: Latin 28 ms, Arabic and Cyrillic 50 ms, CJK 56 ms, first PDF 222 ms,
Latin PDF 14.5 KB. Before and after in turns, load average 4.3-4.7 (other work
running): before Latin 58-59 ms, Arabic and Cyrillic 77-101 ms, CJK 90-109 ms; after
Latin 1.4-1.6 ms, Arabic and Cyrillic 3.6-4.9 ms, CJK 3.0-3.7 ms, PDFs of 20, 27 and
31 KB; fpdf2 alone 61-62 ms (ours 0.023-0.026 of it); first PDF of a process (six
runs each) 402 ms before, 370 ms after.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rules.billing.invoice_pdf import (  # noqa: E402
    FAMILY,
    FONT_FOLDER,
    LATIN_FONT_FILES,
    InvoiceDocument,
    load_invoice_document,
    render_invoice_pdf,
)
from store.db import open_database  # noqa: E402
from store.migrate import upgrade  # noqa: E402
from store.models import Client, Currency, Invoice, InvoiceItem  # noqa: E402
from store.settings import Settings, load_settings  # noqa: E402


def make_invoices(first: str, last: str, count: int, items: int, tag: str) -> list[int]:
    currency = Currency.get_or_create(code="USD", defaults={"prefix": "$", "suffix": " USD"})[0]
    client = Client.create(
        first_name=first, last_name=last, email=f"{tag}@example.com", currency=currency
    )
    ids = []
    for n in range(count):
        invoice = Invoice.create(
            client=client,
            number=f"{tag}-{n}",
            date=dt.date(2026, 11, 1),
            due_date=dt.date(2026, 11, 15),
            payment_method="banktransfer",
            subtotal=items * 1999,
            tax=items * 200,
            total=items * 2199,
            tax_rate1_e4=100_000,
        )
        for i in range(items):
            InvoiceItem.create(
                invoice=invoice,
                type="Hosting",
                description=f"Shared Hosting - site{i}.example.com (01/11/2026 - 30/11/2026)",
                amount=1999,
            )
        ids.append(invoice.id)
    return ids


def fpdf2_alone(invoice_id: int, settings: Settings) -> bytes:
    """The baseline: the invoice's texts drawn by a plain fpdf2 program (the Latin fonts
    added to each PDF, one ``multi_cell`` per text, fpdf2 subsetting the fonts)."""
    from fpdf import FPDF

    doc: InvoiceDocument = load_invoice_document(invoice_id, settings)
    pdf = FPDF(format="A4", unit="mm")
    for style, name in LATIN_FONT_FILES.items():
        pdf.add_font(FAMILY, style, str(FONT_FOLDER / name))
    pdf.add_page()
    texts = [doc.status.upper(), doc.company_name, doc.company_address, doc.company_email]
    texts += [f"Invoice {doc.number}", doc.date, doc.due_date, doc.status, *doc.bill_to]
    texts += [t for item in doc.items for t in (item.description, item.amount)]
    texts += [t for row in doc.totals for t in row] + list(doc.payment_instructions)
    for n, text in enumerate(texts):
        pdf.set_font(FAMILY, "B" if n % 4 == 0 else "", 10)
        pdf.multi_cell(0, 5, text, new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def median_ms(render: Callable[[int], bytes], ids: list[int]) -> tuple[float, int]:
    """The median milliseconds of ``render`` over ``ids``, and the last PDF's size."""
    times, size = [], 0
    for invoice_id in ids:
        started = time.perf_counter()
        size = len(render(invoice_id))
        times.append((time.perf_counter() - started) * 1000)
    return round(statistics.median(times), 2), size


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--invoices", type=int, default=50)
    parser.add_argument("--items", type=int, default=5)
    parser.add_argument("--database")
    args = parser.parse_args()
    folder = tempfile.mkdtemp()
    open_database(args.database or f"sqlite:///{folder}/bench.sqlite3")
    upgrade()
    latin = make_invoices("José", "Núñez", args.invoices, args.items, "L")
    other = make_invoices("محمد", "Петров", args.invoices, args.items, "U")
    cjk = make_invoices("王小明", "Tanaka", args.invoices, args.items, "C")
    settings = load_settings()
    started = time.perf_counter()
    render_invoice_pdf(latin[0], settings)
    first_ms = (time.perf_counter() - started) * 1000
    result: dict[str, float] = {"first_render_ms": round(first_ms, 1)}

    def ours(invoice_id: int) -> bytes:
        return render_invoice_pdf(invoice_id, settings)

    for name, ids in (("latin", latin), ("full_font", other), ("cjk_fallback", cjk)):
        ms, size = median_ms(ours, ids)
        result[f"{name}_ms_median"], result[f"{name}_pdf_bytes"] = ms, size
        print(f"{name}: {ms:.2f} ms per invoice (median of {len(ids)}), PDF {size:,} bytes")
    fpdf2_alone(latin[0], settings)  # its first PDF apart, as ours
    ms, size = median_ms(lambda invoice_id: fpdf2_alone(invoice_id, settings), latin)
    result["fpdf2_alone_latin_ms_median"], result["fpdf2_alone_latin_pdf_bytes"] = ms, size
    result["latin_vs_fpdf2_alone"] = round(result["latin_ms_median"] / ms, 3)
    print(f"fpdf2 alone, Latin: {ms:.2f} ms per invoice, PDF {size:,} bytes")
    print(f"  ours / fpdf2 alone: {result['latin_vs_fpdf2_alone']:.2f}x (same run)")
    print(f"first render (fpdf2 imported, fonts read): {first_ms:.0f} ms")
    result["load_average_1min"] = round(os.getloadavg()[0], 2)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
