"""0022_payments_and_credit: staff record payments, refunds and credit (issue 13).

- ``invoice.credit``: credit applied to the invoice from the client's credit balance, in
  minor units; an invoice's balance is total - credit - money received.
- ``client.credit``: the client's credit balance, minor units (WHMCS "Credit Balance").
- ``credit``: each movement of that balance (WHMCS ``tblcredit``): positive when added,
  negative when applied to an invoice.
"""

from __future__ import annotations

from typing import Any


def up(migrator: Any, db: Any) -> None:
    from peewee import SqliteDatabase

    sqlite = isinstance(db, SqliteDatabase)
    money = "INTEGER" if sqlite else "BIGINT"
    db.execute_sql(f'ALTER TABLE "invoice" ADD COLUMN "credit" {money} NOT NULL DEFAULT 0')
    db.execute_sql(f'ALTER TABLE "client" ADD COLUMN "credit" {money} NOT NULL DEFAULT 0')
    key = "INTEGER NOT NULL PRIMARY KEY" if sqlite else "SERIAL NOT NULL PRIMARY KEY"
    stamp = "DATETIME" if sqlite else "TIMESTAMP"
    db.execute_sql(
        f'CREATE TABLE "credit" ("id" {key}, "client_id" INTEGER NOT NULL, '
        f'"date" DATE NOT NULL, "description" TEXT NOT NULL, "amount" {money} NOT NULL, '
        f'"invoice_id" INTEGER, "created_at" {stamp} NOT NULL, '
        'FOREIGN KEY ("client_id") REFERENCES "client" ("id") ON DELETE RESTRICT, '
        'FOREIGN KEY ("invoice_id") REFERENCES "invoice" ("id") ON DELETE SET NULL)'
    )
    db.execute_sql('CREATE INDEX "credit_client_id" ON "credit" ("client_id")')
    db.execute_sql('CREATE INDEX "credit_invoice_id" ON "credit" ("invoice_id")')
