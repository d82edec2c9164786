"""0007_email_due_indexes: delivery reads only the rows that are due, whatever the history.

- A lease is "not before": a leased email's ``next_attempt_at`` is when its lease runs
  out, so one column says when any queued or sending email is next due and
  ``lease_until`` goes (rows being sent keep their lease in ``next_attempt_at``).
- ``email_due``: the queued and sending rows only, by (marketing, when due, id); leasing
  and the marketing rate limit read it, never the sent history.
- ``email_marketing_sent``: marketing emails by when they were sent; the rate limit
  counts the last window from it.
- ``(status, next_attempt_at)`` served only the old lease; the email log filtered by
  status reads ``(status, created_at)`` instead.

The partial-index predicates are ``store.models.mail.DUE_ROWS`` and ``MARKETING``,
written here as they were when this migration was made. The rate limit's index holds no
status: ``sent_at`` is set only by a delivery, and a status in its WHERE would tempt
SQLite's planner to the ``(status, …)`` index, which reads every email ever sent.
"""

from __future__ import annotations

from typing import Any

DUE_ROWS = "\"status\" IN ('queued', 'sending')"
MARKETING = '"marketing"'

STATEMENTS = [
    'UPDATE "email" SET "next_attempt_at" = "lease_until"'
    ' WHERE "status" = \'sending\' AND "lease_until" IS NOT NULL',
    'DROP INDEX "email_status_next_attempt_at"',
    'ALTER TABLE "email" DROP COLUMN "lease_until"',
    'CREATE INDEX "email_status_created_at" ON "email" ("status", "created_at")',
    f'CREATE INDEX "email_due" ON "email" ("marketing", "next_attempt_at", "id") WHERE {DUE_ROWS}',
    f'CREATE INDEX "email_marketing_sent" ON "email" ("sent_at") WHERE {MARKETING}',
]


def up(migrator: Any, db: Any) -> None:
    for statement in STATEMENTS:
        db.execute_sql(statement)
