"""Milliseconds per invoice PDF: what every "Invoice Created" email costs at delivery.

    python bench/invoice_pdf.py [--invoices 50] [--items 5] [--database URL]

Makes ``--invoices`` invoices of ``--items`` items each for a Latin-named client, one
whose name needs the full font (Arabic, Cyrillic) and one who needs the CJK fallback
font, then times
``rules.billing.invoice_pdf.render_invoice_pdf`` (queries and drawing) for each kind.
The first render of a process (reading the fonts) is timed apart. The last line is one
JSON object. ``--database`` takes an EMPTY database (SQLite or PostgreSQL).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rules.billing.invoice_pdf import render_invoice_pdf  # noqa: E402
from store.db import open_database  # noqa: E402
from store.migrate import upgrade  # noqa: E402
from store.models import Client, Currency, Invoice, InvoiceItem  # noqa: E402
from store.settings import load_settings  # noqa: E402


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
    for name, ids in (("latin", latin), ("full_font", other), ("cjk_fallback", cjk)):
        times = []
        for invoice_id in ids:
            started = time.perf_counter()
            render_invoice_pdf(invoice_id, settings)
            times.append((time.perf_counter() - started) * 1000)
        result[f"{name}_ms_median"] = round(statistics.median(times), 1)
        print(f"{name}: {statistics.median(times):.1f} ms per invoice (median of {len(ids)})")
    print(f"first render (fonts read): {first_ms:.0f} ms")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
