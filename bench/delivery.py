"""Lease time with a long email history: delivery must not slow down as mail is sent.

    python bench/delivery.py [--history 200000] [--leases 20] [--database URL]

Builds an outbox with ``--history`` sent emails (half of them marketing, sent over the
past year) and ``--leases`` x 100 queued ones, then times ``rules.mail.delivery._lease`` (the
rate-limit count and the claim of 100 due emails) on a history of none and of
``--history``. The ratio is the point: 1.0 means the history costs nothing. The last
line is one JSON object. ``--database`` takes an EMPTY database (SQLite or PostgreSQL).
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

from rules.mail.delivery import _lease
from rules.mail.outbox import OUTBOX_COLUMNS
from store.bulk import bulk_insert  # noqa: E402
from store.db import database, is_postgres, open_database, writer  # noqa: E402
from store.migrate import upgrade  # noqa: E402
from store.models import Email, utcnow  # noqa: E402
from store.settings import load_settings  # noqa: E402

BATCH = 100


def rows(first: int, count: int, status: str, at: dt.datetime) -> list[tuple[object, ...]]:
    stamp = at.isoformat(" ")
    sent = status == "sent"
    return [
        (
            None,
            "Mass Mail" if n % 2 and sent else "Invoice Created",
            f"c{n}@example.com",
            f"Invoice {n}",
            "Dear client, your invoice is attached.",
            "",
            "",
            None,
            bool(n % 2) and sent,
            stamp,
            stamp,
            status,
            "",
            1 if sent else 0,
            "",
            "",
            stamp if sent else None,
        )
        for n in range(first, first + count)
    ]


def insert(batch: list[tuple[object, ...]]) -> None:
    for start in range(0, len(batch), 20_000):
        with writer():
            bulk_insert(Email, (*OUTBOX_COLUMNS, "sent_at"), batch[start : start + 20_000])


def time_leases(leases: int, now: dt.datetime) -> list[float]:
    """Milliseconds of each lease of ``BATCH`` due emails (they stay leased: the next one
    takes the next 100)."""
    settings = load_settings()
    timings = []
    for n in range(leases):
        started = time.perf_counter()
        got = _lease(f"bench:{n}", now, BATCH, settings).emails
        timings.append((time.perf_counter() - started) * 1000)
        assert len(got) == BATCH, len(got)
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--history", type=int, default=200_000)
    parser.add_argument("--leases", type=int, default=20)
    parser.add_argument("--database", help="an EMPTY database URL (default: a temporary SQLite)")
    args = parser.parse_args()
    open_database(args.database or f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3")
    upgrade()
    now = utcnow()
    year_ago = now - dt.timedelta(days=365)
    due = now - dt.timedelta(minutes=1)

    insert(rows(0, args.leases * BATCH, "queued", due))
    empty = time_leases(args.leases, now)
    started = time.perf_counter()
    insert(rows(0, args.history, "sent", year_ago))
    insert(rows(0, args.leases * BATCH, "queued", due))
    if is_postgres():
        database.execute_sql("ANALYZE email")
    built = time.perf_counter() - started
    full = time_leases(args.leases, now)

    before, after = statistics.median(empty), statistics.median(full)
    kind = "PostgreSQL" if is_postgres() else "SQLite"
    print(f"{kind}: wrote {args.history:,} sent emails in {built:.1f} s")
    print(f"lease of {BATCH} with no history: median {before:.2f} ms")
    print(
        f"lease of {BATCH} after {args.history:,} sent: median {after:.2f} ms, "
        f"max {max(full):.2f} ms (ratio {after / before:.2f}x)"
    )
    print(
        json.dumps(
            {
                "database": kind,
                "history": args.history,
                "lease_ms_no_history": round(before, 3),
                "lease_ms_with_history": round(after, 3),
                "lease_ms_with_history_max": round(max(full), 3),
                "ratio": round(after / before, 2),
            }
        )
    )


if __name__ == "__main__":
    main()
