"""0005_billing_anchor: recurring items keep their anchor day; overdue clocks can use the
invoice date.

- ``anchor_day`` on services, addons and domains: the day of the month the item was
  first due (PRODUCT.md §3 "Recurring due dates keep their anchor day"). Existing rows
  take the day of their next due date: the best that can be known of them.
- An index on invoices by (status, date), so the notice and late-fee rules, which count
  from the later of the due date and the invoice date, stay index lookups.
"""

from __future__ import annotations

from typing import Any

TABLES = ("service", "addon", "domain")


def up(migrator: Any, db: Any) -> None:
    from peewee import SqliteDatabase

    sqlite = isinstance(db, SqliteDatabase)
    for table in TABLES:
        db.execute_sql(f'ALTER TABLE "{table}" ADD COLUMN "anchor_day" INTEGER')
        day = (
            "CAST(strftime('%d', \"next_due_date\") AS INTEGER)"
            if sqlite
            else 'CAST(EXTRACT(DAY FROM "next_due_date") AS INTEGER)'
        )
        db.execute_sql(
            f'UPDATE "{table}" SET "anchor_day" = {day} WHERE "next_due_date" IS NOT NULL'
        )
    db.execute_sql('CREATE INDEX "invoice_status_date" ON "invoice" ("status", "date")')
