"""0011_invoice_sequence: one increasing invoice number sequence.

A single row holding the last number issued, started above every number already
in the database (their trailing digits), so the next invoice never goes below one
already issued, imported invoices included (PRODUCT.md §3).
"""

from __future__ import annotations

import re
from typing import Any


def up(migrator: Any, db: Any) -> None:
    from peewee import SqliteDatabase

    if isinstance(db, SqliteDatabase):
        db.execute_sql(
            'CREATE TABLE "invoice_sequence" ("id" INTEGER NOT NULL PRIMARY KEY, '
            '"last_value" INTEGER NOT NULL)'
        )
    else:
        db.execute_sql(
            'CREATE TABLE "invoice_sequence" ("id" SERIAL NOT NULL PRIMARY KEY, '
            '"last_value" BIGINT NOT NULL)'
        )
    last = 0
    cursor = db.execute_sql('SELECT "number" FROM "invoice"')
    trailing = re.compile(r"(\d+)$")
    for (number,) in cursor.fetchall():
        found = trailing.search(str(number).strip())
        if found and len(found.group(1)) <= 18:
            last = max(last, int(found.group(1)))
    db.execute_sql(
        f'INSERT INTO "invoice_sequence" ("id", "last_value") VALUES (1, {db.param})', (last,)
    )
