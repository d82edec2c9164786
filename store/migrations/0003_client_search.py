"""0003_client_search: search-as-you-type over name, company, email and phone.

SQLite: an FTS5 table with the trigram tokenizer (substring search), kept in
step with ``client`` by triggers. PostgreSQL: a ``client_search`` table with a
pg_trgm GIN index, kept in step the same way. Neither is a model: queries live
in ``store.client_list``.
"""

from __future__ import annotations

from typing import Any

FIELDS = ("first_name", "last_name", "company", "email", "phone")


def body(row: str = "") -> str:
    """The searched text of a client row: its fields joined by spaces."""
    return " || ' ' || ".join(f"{row}{name}" for name in FIELDS)


BODY = body()

SQLITE = [
    "CREATE VIRTUAL TABLE client_search USING fts5(body, tokenize = 'trigram')",
    f"INSERT INTO client_search(rowid, body) SELECT id, {BODY} FROM client",
    f"""CREATE TRIGGER client_search_insert AFTER INSERT ON client BEGIN
        INSERT INTO client_search(rowid, body) VALUES (new.id, {body("new.")});
    END""",
    """CREATE TRIGGER client_search_delete AFTER DELETE ON client BEGIN
        DELETE FROM client_search WHERE rowid = old.id;
    END""",
    f"""CREATE TRIGGER client_search_update AFTER UPDATE OF first_name, last_name, company,
        email, phone ON client BEGIN
        UPDATE client_search SET body = {body("new.")}
        WHERE rowid = new.id;
    END""",
]

POSTGRES = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    """CREATE TABLE client_search (
        client_id INTEGER PRIMARY KEY REFERENCES client (id) ON DELETE CASCADE,
        body TEXT NOT NULL)""",
    f"INSERT INTO client_search (client_id, body) SELECT id, lower({BODY}) FROM client",
    "CREATE INDEX client_search_body_trgm ON client_search USING gin (body gin_trgm_ops)",
    f"""CREATE FUNCTION client_search_sync() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO client_search (client_id, body)
        VALUES (NEW.id, lower({body("NEW.")}))
        ON CONFLICT (client_id) DO UPDATE SET body = EXCLUDED.body;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER client_search_sync AFTER INSERT OR UPDATE OF first_name, last_name,
        company, email, phone ON client FOR EACH ROW EXECUTE FUNCTION client_search_sync()""",
]


def up(migrator: Any, db: Any) -> None:
    from peewee import SqliteDatabase

    for statement in SQLITE if isinstance(db, SqliteDatabase) else POSTGRES:
        db.execute_sql(statement)
