"""Render and queue N invoice notices; compare with inserting pre-rendered rows.

    python bench/queueing.py [--notices 30000] [--database URL]

Prints each figure and the ratio; the last line is one JSON object. The
baseline (same process, same database) bulk-inserts the same number of
already-rendered rows: the floor for writing them, without reading or rendering.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from rules.mail.outbox import OUTBOX_COLUMNS, Notice, queue
from store.bulk import bulk_insert, row_maker  # noqa: E402
from store.db import open_database, writer  # noqa: E402
from store.migrate import upgrade  # noqa: E402
from store.models import Client, Currency, Email, Invoice, InvoiceItem  # noqa: E402


def build(n: int) -> list[Notice]:
    with writer():
        usd = Currency.create(code="USD", is_default=True)
        columns, make = row_maker(Client)
        bulk_insert(
            Client,
            columns,
            [
                make(
                    id=i,
                    first_name=f"First{i}",
                    last_name="Last",
                    email=f"c{i}@example.com",
                    country="GB",
                    currency=usd.id,
                    created_at="2026-01-01 00:00:00",
                    updated_at="2026-01-01 00:00:00",
                )
                for i in range(1, n + 1)
            ],
        )
        bulk_insert(
            Invoice,
            (
                "id",
                "client_id",
                "number",
                "date",
                "due_date",
                "status",
                "payment_method",
                "subtotal",
                "tax",
                "tax2",
                "total",
                "tax_rate1_e4",
                "tax_rate2_e4",
                "notes",
                "created_at",
                "version",
            ),
            [
                (
                    i,
                    i,
                    str(i),
                    "2026-11-01",
                    "2026-11-15",
                    "Unpaid",
                    "banktransfer",
                    1000,
                    200,
                    0,
                    1200,
                    0,
                    0,
                    "",
                    "2026-11-01 00:00:00",
                    1,
                )
                for i in range(1, n + 1)
            ],
        )
        bulk_insert(
            InvoiceItem,
            ("invoice_id", "type", "description", "amount", "taxed", "sort_order"),
            [(i, "Hosting", "Shared Hosting Pro", 1000, True, 0) for i in range(1, n + 1)],
        )
    return [Notice(i, i, unique_key=f"bench:{i}") for i in range(1, n + 1)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--notices", type=int, default=30_000)
    parser.add_argument("--database", help="an EMPTY database URL (default: a temporary SQLite)")
    args = parser.parse_args()
    tmp = tempfile.mkdtemp()
    open_database(args.database or f"sqlite:///{tmp}/bench.sqlite3")
    upgrade()
    notices = build(args.notices)

    started = time.perf_counter()
    with writer():
        queued = queue("First Invoice Overdue Notice", notices)
    seconds = time.perf_counter() - started
    assert queued == args.notices, queued

    rows = [
        (
            e.client_id,
            e.template,
            e.to,
            e.subject,
            e.body_text,
            "",
            "",
            None,
            False,
            "2026-01-01 00:00:00",
            "2026-01-01 00:00:00",
            "queued",
            "",
            0,
            "",
            "",
        )
        for e in Email.select()
    ]
    started = time.perf_counter()
    with writer():
        bulk_insert(Email, OUTBOX_COLUMNS, rows)
    baseline = time.perf_counter() - started

    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"render+queue {args.notices} notices: {seconds:.2f} s ({args.notices / seconds:,.0f}/s)")
    print(f"baseline insert of pre-rendered rows: {baseline:.2f} s")
    print(f"ratio: {seconds / baseline:.1f}x the bare insert; peak RSS {peak_mb:.0f} MB")
    print(
        json.dumps(
            {
                "notices": args.notices,
                "seconds": round(seconds, 3),
                "baseline_insert_seconds": round(baseline, 3),
                "ratio": round(seconds / baseline, 2),
                "peak_rss_mb": round(peak_mb),
            }
        )
    )


if __name__ == "__main__":
    main()
