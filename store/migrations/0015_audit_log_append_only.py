"""0015_audit_log_append_only: the activity log can be written, never rewritten.

PRODUCT.md §1: every change is written to the activity log. A log that plain SQL can
``UPDATE`` or ``DELETE`` proves nothing, so the database itself refuses both (and
``TRUNCATE`` on PostgreSQL), whoever connects.

The log's link to its client was ``ON DELETE SET NULL``: deleting a client would have
rewritten its history (an UPDATE of every row). Clients are closed, never deleted
(PRODUCT.md §1), so the link becomes ``ON DELETE RESTRICT``: a client with history
cannot be deleted, and the log keeps whom each row was about. SQLite cannot alter a
foreign key in place, so its table is rebuilt (nothing refers to ``audit_log``).
"""

from __future__ import annotations

from typing import Any

REFUSED = "the activity log (audit_log) is append-only: rows cannot be changed or deleted"

SQLITE = [
    'CREATE TABLE "audit_log_new" ("id" INTEGER NOT NULL PRIMARY KEY, "at" DATETIME NOT NULL, '
    '"actor_type" VARCHAR(16) NOT NULL, "actor_id" INTEGER, "actor_name" VARCHAR(254) NOT NULL, '
    '"source" VARCHAR(16) NOT NULL, "client_id" INTEGER, "entity" VARCHAR(32) NOT NULL, '
    '"entity_id" INTEGER, "action" VARCHAR(64) NOT NULL, "field" VARCHAR(64) NOT NULL, '
    '"old_value" TEXT NOT NULL, "new_value" TEXT NOT NULL, '
    'FOREIGN KEY ("client_id") REFERENCES "client" ("id") ON DELETE RESTRICT)',
    'INSERT INTO "audit_log_new" SELECT "id", "at", "actor_type", "actor_id", "actor_name", '
    '"source", "client_id", "entity", "entity_id", "action", "field", "old_value", '
    '"new_value" FROM "audit_log"',
    'DROP TABLE "audit_log"',
    'ALTER TABLE "audit_log_new" RENAME TO "audit_log"',
    'CREATE INDEX "audit_log_client_id" ON "audit_log" ("client_id")',
    'CREATE INDEX "audit_log_client_id_at" ON "audit_log" ("client_id", "at")',
    'CREATE INDEX "audit_log_at" ON "audit_log" ("at")',
    f"""CREATE TRIGGER "audit_log_no_update" BEFORE UPDATE ON "audit_log"
    BEGIN SELECT RAISE(ABORT, '{REFUSED}'); END""",
    f"""CREATE TRIGGER "audit_log_no_delete" BEFORE DELETE ON "audit_log"
    BEGIN SELECT RAISE(ABORT, '{REFUSED}'); END""",
]

POSTGRES = [
    'ALTER TABLE "audit_log" DROP CONSTRAINT "audit_log_client_id_fkey"',
    'ALTER TABLE "audit_log" ADD CONSTRAINT "audit_log_client_id_fkey" FOREIGN KEY ("client_id") '
    'REFERENCES "client" ("id") ON DELETE RESTRICT',
    f"""CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        RAISE EXCEPTION '{REFUSED}' USING ERRCODE = 'insufficient_privilege';
    END $$""",
    """CREATE TRIGGER audit_log_no_rewrite BEFORE UPDATE OR DELETE ON "audit_log"
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only()""",
    """CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON "audit_log"
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only()""",
]


def up(migrator: Any, db: Any) -> None:
    from peewee import SqliteDatabase

    for statement in SQLITE if isinstance(db, SqliteDatabase) else POSTGRES:
        db.execute_sql(statement)
