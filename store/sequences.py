"""The invoice number sequence: one increasing series, allocated inside the writer's
transaction (PRODUCT.md §3 "Invoice numbers form one increasing sequence ... never
below a number already issued, imported ones included")."""

from __future__ import annotations

import re
from collections.abc import Iterable

from store.db import database, is_postgres

_TRAILING = re.compile(r"(\d+)$")


def trailing_number(number: str) -> int | None:
    """The sequence value an invoice number carries: its trailing digits ("INV-2026-00042"
    is 42, "1005" is 1005), or None when it ends in something else."""
    found = _TRAILING.search(number.strip())
    return int(found.group(1)) if found and len(found.group(1)) <= 18 else None


def allocate(count: int) -> int:
    """Take ``count`` consecutive values; return the first. Call inside the transaction
    that creates the invoices: the row stays locked (PostgreSQL) or the database is held
    by this writer (SQLite) until it commits, and a rollback returns the values, so
    there are no gaps and no two writers get the same value."""
    cursor = database.execute_sql(
        'UPDATE "invoice_sequence" SET "last_value" = "last_value" + '
        f'{database.param} WHERE "id" = 1 RETURNING "last_value"',
        (count,),
    )
    row = cursor.fetchone()
    if row is None:  # the row was removed (a hand-emptied database): start above all numbers
        numbers = database.execute_sql('SELECT "number" FROM "invoice"').fetchall()
        start = max((trailing_number(str(n)) or 0 for (n,) in numbers), default=0)
        database.execute_sql(
            f'INSERT INTO "invoice_sequence" ("id", "last_value") VALUES (1, {database.param})',
            (start + count,),
        )
        return start + 1
    return int(row[0]) - count + 1


def raise_to(numbers: Iterable[str]) -> None:
    """Move the sequence past every number in ``numbers`` (imported invoices), so the
    next allocated value is above all of them. Call before inserting them, in the same
    transaction, so a concurrent cron waits rather than takes one of their numbers (the
    row is locked even when no number ends in digits)."""
    values = [v for v in (trailing_number(n) for n in numbers) if v is not None]
    greatest = "GREATEST" if is_postgres() else "MAX"
    database.execute_sql(
        f'UPDATE "invoice_sequence" SET "last_value" = {greatest}("last_value", '
        f'{database.param}) WHERE "id" = 1',
        (max(values, default=0),),
    )
