"""0021_catalogue_and_notes: the products catalogue, its prices, and Client Notes (issue 13).

- ``product``: ``type`` (Hosting or Other; existing products are Hosting) and ``taxed``
  (existing products stay taxed: their items were taxed before this migration).
- ``product_addon``: the catalogue's addons (WHMCS "Product Addons").
- ``pricing``: one price per (product or product addon, currency, billing cycle), in
  the currency's minor units (WHMCS ``tblpricing``).
- ``service.notes``: per-service staff notes; ``addon.product_addon_id``: the catalogue
  addon a client's addon came from (existing addons: none).
- ``client_note``: dated staff notes on a client, sticky ones shown on the Summary.
"""

from __future__ import annotations

from typing import Any

SQLITE = (
    'CREATE TABLE "product_addon" ("id" INTEGER NOT NULL PRIMARY KEY, "name" VARCHAR(150) '
    'NOT NULL, "description" TEXT NOT NULL, "taxed" INTEGER NOT NULL)',
    'CREATE TABLE "pricing" ("id" INTEGER NOT NULL PRIMARY KEY, "type" VARCHAR(16) NOT NULL, '
    '"related_id" INTEGER NOT NULL, "currency_id" INTEGER NOT NULL, "billing_cycle" '
    'VARCHAR(16) NOT NULL, "amount" INTEGER NOT NULL, FOREIGN KEY ("currency_id") '
    'REFERENCES "currency" ("id") ON DELETE CASCADE)',
    'CREATE TABLE "client_note" ("id" INTEGER NOT NULL PRIMARY KEY, "client_id" INTEGER NOT '
    'NULL, "author" VARCHAR(150) NOT NULL, "staff_id" INTEGER, "note" TEXT NOT NULL, "sticky" '
    'INTEGER NOT NULL, "created_at" DATETIME NOT NULL, "updated_at" DATETIME NOT NULL, '
    'FOREIGN KEY ("client_id") REFERENCES "client" ("id") ON DELETE CASCADE)',
    """ALTER TABLE "product" ADD COLUMN "type" VARCHAR(16) NOT NULL DEFAULT 'Hosting'""",
    'ALTER TABLE "product" ADD COLUMN "taxed" INTEGER NOT NULL DEFAULT 1',
    """ALTER TABLE "service" ADD COLUMN "notes" TEXT NOT NULL DEFAULT ''""",
    'ALTER TABLE "addon" ADD COLUMN "product_addon_id" INTEGER REFERENCES "product_addon" '
    '("id") ON DELETE SET NULL',
)
POSTGRES = (
    'CREATE TABLE "product_addon" ("id" SERIAL NOT NULL PRIMARY KEY, "name" VARCHAR(150) '
    'NOT NULL, "description" TEXT NOT NULL, "taxed" BOOLEAN NOT NULL)',
    'CREATE TABLE "pricing" ("id" SERIAL NOT NULL PRIMARY KEY, "type" VARCHAR(16) NOT NULL, '
    '"related_id" INTEGER NOT NULL, "currency_id" INTEGER NOT NULL, "billing_cycle" '
    'VARCHAR(16) NOT NULL, "amount" BIGINT NOT NULL, FOREIGN KEY ("currency_id") '
    'REFERENCES "currency" ("id") ON DELETE CASCADE)',
    'CREATE TABLE "client_note" ("id" SERIAL NOT NULL PRIMARY KEY, "client_id" INTEGER NOT '
    'NULL, "author" VARCHAR(150) NOT NULL, "staff_id" INTEGER, "note" TEXT NOT NULL, "sticky" '
    'BOOLEAN NOT NULL, "created_at" TIMESTAMP NOT NULL, "updated_at" TIMESTAMP NOT NULL, '
    'FOREIGN KEY ("client_id") REFERENCES "client" ("id") ON DELETE CASCADE)',
    """ALTER TABLE "product" ADD COLUMN "type" VARCHAR(16) NOT NULL DEFAULT 'Hosting'""",
    'ALTER TABLE "product" ADD COLUMN "taxed" BOOLEAN NOT NULL DEFAULT TRUE',
    """ALTER TABLE "service" ADD COLUMN "notes" TEXT NOT NULL DEFAULT ''""",
    'ALTER TABLE "addon" ADD COLUMN "product_addon_id" INTEGER REFERENCES "product_addon" '
    '("id") ON DELETE SET NULL',
)
INDEXES = (
    'CREATE UNIQUE INDEX "product_addon_name" ON "product_addon" ("name")',
    'CREATE INDEX "pricing_currency_id" ON "pricing" ("currency_id")',
    'CREATE UNIQUE INDEX "pricing_type_related_id_currency_id_billing_cycle" ON "pricing" '
    '("type", "related_id", "currency_id", "billing_cycle")',
    'CREATE INDEX "client_note_client_id" ON "client_note" ("client_id")',
    'CREATE INDEX "addon_product_addon_id" ON "addon" ("product_addon_id")',
)


def up(migrator: Any, db: Any) -> None:
    from peewee import SqliteDatabase

    for sql in SQLITE if isinstance(db, SqliteDatabase) else POSTGRES:
        db.execute_sql(sql)
    for sql in INDEXES:
        db.execute_sql(sql)
