"""0024_redundant_indexes_and_fillfactor: fewer indexes to keep, invoice totals in place.

- Nine indexes on ``client_id`` alone go: each is the leading column of another index
  of its table (``(client_id, created_at)`` on ``email``, ``(client_id, status)`` and
  ``(client_id, payment_method)`` on ``invoice``, ...), which serves every lookup, join
  and foreign-key check by client the single-column one served, on both databases.
  Every row the cron writes (an email, an invoice, an audit row) maintained both.
- PostgreSQL: ``invoice`` pages keep 10% free (``fillfactor`` 90), so a change that
  touches no indexed column (a late fee's or a tax recompute's new totals) is written
  beside the old row without a new entry in each of the table's indexes (a HOT update).
  Pages written from now on keep the space; existing ones get it when the table is
  rewritten (``VACUUM FULL``), not by this migration. SQLite updates rows in place.
"""

from __future__ import annotations

from typing import Any

DROPPED = [
    "addon_client_id",  # (client_id, payment_method)
    "audit_log_client_id",  # (client_id, at)
    "contact_client_id",  # (client_id, email_key), unique
    "custom_field_value_client_id",  # (client_id, field_id), unique
    "domain_client_id",  # (client_id, payment_method)
    "email_client_id",  # (client_id, created_at)
    "invoice_client_id",  # (client_id, status), (client_id, payment_method)
    "password_reset_token_client_id",  # (client_id, created_at)
    "service_client_id",  # (client_id, payment_method)
]

SQLITE = [f'DROP INDEX "{name}"' for name in DROPPED]
POSTGRES = [
    *(f'DROP INDEX "{name}"' for name in DROPPED),
    'ALTER TABLE "invoice" SET (fillfactor = 90)',
]


def up(migrator: Any, db: Any) -> None:
    from peewee import SqliteDatabase

    for statement in SQLITE if isinstance(db, SqliteDatabase) else POSTGRES:
        db.execute_sql(statement)
