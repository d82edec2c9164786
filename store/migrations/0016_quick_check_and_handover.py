"""0016_quick_check_and_handover: the cron checks the file once a day; delivery knows
which email may already have left.

- ``cron_run.quick_check``: whether the run checked the SQLite file with
  ``PRAGMA quick_check`` before acting (the first daily run of each business date
  does; a damaged file is refused before anything is written).
- ``email.handed_at``: when the email was handed to the mail server (or Maildir) in
  the current attempt; every outcome clears it. An email whose lease ran out while it
  was set may have been delivered without the outcome being recorded (the flusher
  died, the database refused the write): it is marked failed as uncertain, never sent
  a second time.
"""

from __future__ import annotations

from typing import Any

SQLITE = [
    'ALTER TABLE "cron_run" ADD COLUMN "quick_check" INTEGER NOT NULL DEFAULT 0',
    'ALTER TABLE "email" ADD COLUMN "handed_at" DATETIME',
]
POSTGRES = [
    'ALTER TABLE "cron_run" ADD COLUMN "quick_check" BOOLEAN NOT NULL DEFAULT false',
    'ALTER TABLE "email" ADD COLUMN "handed_at" TIMESTAMP',
]


def up(migrator: Any, db: Any) -> None:
    from peewee import SqliteDatabase

    for statement in SQLITE if isinstance(db, SqliteDatabase) else POSTGRES:
        db.execute_sql(statement)
