"""Delivery's cost does not grow with the email history (every statement checked by EXPLAIN)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

from playhouse.test_utils import count_queries

from rules.mail.delivery import LEASE, MaildirTransport, flush
from rules.mail.outbox import OUTBOX_COLUMNS
from store.bulk import bulk_insert
from store.db import database, is_postgres, writer
from store.models import Email, utcnow
from store.settings import save_settings

HISTORY = 20_000
#: Indexes delivery may read ``email`` through: the primary key (by id), the due rows,
#: the marketing sends by time. Anything else walks rows that are not due.
ALLOWED = {"email_pkey", "INTEGER PRIMARY KEY", "email_due", "email_marketing_sent"}
TOUCHES_EMAIL = re.compile(r'(FROM|UPDATE|INTO) "email"(\s|$)')


def _row(n: int, status: str, marketing: bool, at: dt.datetime, sent: dt.datetime | None) -> Any:
    stamp = at.isoformat(" ")
    return (
        None,
        "Mass Mail" if marketing else "Invoice Created",
        f"c{n}@example.com",
        f"Subject {n}",
        "Body",
        "",
        "",
        None,
        marketing,
        stamp,
        stamp,
        status,
        "",
        1 if sent else 0,
        "other:1" if status == "sending" else "",
        "",
        sent.isoformat(" ") if sent else None,
    )


def _fill(now: dt.datetime) -> None:
    """A year of sent mail (half marketing), a few sent in the rate window, a queue due
    now, some not yet due, and some leased by another flusher."""
    year_ago = now - dt.timedelta(days=365)
    rows = [
        _row(n, "sent", n % 2 == 0, year_ago + dt.timedelta(minutes=n), year_ago)
        for n in range(HISTORY)
    ]
    rows += [_row(n, "sent", True, now, now - dt.timedelta(seconds=5)) for n in range(3)]
    rows += [_row(n, "queued", n % 2 == 0, now - dt.timedelta(minutes=1), None) for n in range(40)]
    rows += [_row(n, "queued", False, now + dt.timedelta(hours=1), None) for n in range(5)]
    rows += [_row(n, "sending", True, now + LEASE, None) for n in range(2)]
    with writer():
        bulk_insert(Email, (*OUTBOX_COLUMNS, "sent_at"), rows)
    if is_postgres():
        database.execute_sql("ANALYZE email")  # as autovacuum would; SQLite runs without stats


def _plan(sql: str, params: Any) -> list[str]:
    if is_postgres():
        return [r[0] for r in database.execute_sql("EXPLAIN " + sql, params).fetchall()]
    return [r[3] for r in database.execute_sql("EXPLAIN QUERY PLAN " + sql, params).fetchall()]


def _unwanted_reads(plan: list[str]) -> list[str]:
    """The steps of ``plan`` that read ``email`` other than through a wanted index range."""
    bad = []
    if is_postgres():
        for n, line in enumerate(plan):
            if "Seq Scan on email" in line:
                bad.append(line)
            scan = re.search(r"(?:Index|Index Only|Bitmap Index) Scan (?:using|on) (\w+)", line)
            if scan and scan.group(1).startswith("email") and scan.group(1) != "email_template":
                details = []
                for more in plan[n + 1 :]:
                    if "->" in more:
                        break
                    details.append(more)
                if scan.group(1) not in ALLOWED or not any("Index Cond" in d for d in details):
                    bad.append(line)  # a walk of the index, filtering as it goes
        return bad
    for line in plan:
        # The outcomes of a batch are a list of constant rows (a CTE): reading them is no
        # read of the email table.
        if line.startswith("SCAN ") and not re.fullmatch(
            r"SCAN (?:\d+ )?CONSTANT ROWS?|SCAN outcome", line
        ):
            bad.append(line)
        used = re.search(r"USING (?:COVERING )?(?:INDEX (\w+)|(INTEGER PRIMARY KEY))", line)
        if used and (used.group(1) or used.group(2)) not in ALLOWED:
            bad.append(line)
    return bad


def test_delivery_reads_only_due_rows_whatever_the_history(db: str, tmp_path: Path) -> None:
    save_settings({"mail_rate_limit": 25, "mail_rate_window_seconds": 30})
    now = utcnow()
    _fill(now)
    with count_queries() as counter:
        result = flush(MaildirTransport(tmp_path / "Maildir"), now=lambda: now, batch=10)
    # 20 transactional; marketing: 25 a window, 3 sent and 2 leased elsewhere in it.
    assert (result.sent, result.deferred) == (40, 0)
    statements = [r.msg for r in counter.get_queries() if TOUCHES_EMAIL.search(r.msg[0])]
    assert len(statements) >= 2 * 4  # a lease and one outcome statement for each batch
    plans = {sql: _plan(sql, params) for sql, params in statements}
    for sql, plan in plans.items():
        assert not _unwanted_reads(plan), (sql, plan)
    lease = [p for s, p in plans.items() if "ORDER BY" in s and 'SELECT "t1"."id"' in s]
    count = [p for s, p in plans.items() if s.startswith("SELECT (COALESCE((SELECT COUNT")]
    assert lease and all(any("email_due" in step for step in p) for p in lease), lease
    assert count and all(any("email_marketing_sent" in step for step in p) for p in count), count
