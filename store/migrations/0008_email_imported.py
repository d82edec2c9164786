"""0008_email_imported: emails restored by ``gobiller import`` are history, never delivered.

The interchange document carries each client's email log (PRODUCT.md §5); a restored
``queued`` or ``sending`` row keeps its status, so export → import → export gives the
same bytes, and this flag keeps delivery away from it.
"""

from __future__ import annotations

from typing import Any

SQLITE = ['ALTER TABLE "email" ADD COLUMN "imported" INTEGER NOT NULL DEFAULT 0']
POSTGRES = ['ALTER TABLE "email" ADD COLUMN "imported" BOOLEAN NOT NULL DEFAULT false']


def up(migrator: Any, db: Any) -> None:
    from peewee import SqliteDatabase

    for statement in SQLITE if isinstance(db, SqliteDatabase) else POSTGRES:
        db.execute_sql(statement)
