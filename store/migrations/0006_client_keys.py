"""0006_client_keys: the normalised keys emails, search and regions are matched on.

- ``client.email_key`` and ``contact.email_key``: the email under full Unicode case
  folding (``store.keys.email_key``), unique per client table and per client's contacts.
  They replace the LOWER(email) indexes: LOWER folds ASCII only on SQLite and follows the
  collation on PostgreSQL, so "ÉMILE@x" and "émile@x" could both be stored.
- ``client.search_text`` (``store.keys.client_search_text``): what the list search
  looks in, folded in Python the same way as the typed term. SQLite: the FTS5 trigram
  index of 0003 becomes an external-content index over this column (case-sensitive: the
  text is already folded, and FTS5 folds fewer characters than Unicode does). PostgreSQL:
  ``client_search.body`` is copied from it by the trigger instead of ``lower(...)``.
- State/region: subdivision codes upper-cased on clients, contacts and tax rules ("ca" is
  "CA" in the US); names stay as written (``store.keys.normalise_state``).

The keys are computed in Python for both databases, by the functions the application
uses, in pages of ``PAGE`` rows. Emails that already shared a key (possible under the old
indexes) keep working: the later clients get ``<key> #<id>`` as their key, so the unique
index can be built, and a warning names them; staff resolve them on the next edit.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from store.keys import (
    EMAIL_KEY_MAX,
    client_search_text,
    email_key,
    normalise_state,
    region_key,
)

log = logging.getLogger("gobiller.migrate")

PAGE = 5000

SQLITE_BEFORE = [
    "DROP TRIGGER client_search_insert",
    "DROP TRIGGER client_search_delete",
    "DROP TRIGGER client_search_update",
    "DROP TABLE client_search",
    "DROP INDEX client_email_lower",
    "DROP INDEX contact_client_email",
    f"ALTER TABLE client ADD COLUMN email_key VARCHAR({EMAIL_KEY_MAX}) NOT NULL DEFAULT ''",
    "ALTER TABLE client ADD COLUMN search_text TEXT NOT NULL DEFAULT ''",
    f"ALTER TABLE contact ADD COLUMN email_key VARCHAR({EMAIL_KEY_MAX}) NOT NULL DEFAULT ''",
]

SQLITE_AFTER = [
    'CREATE UNIQUE INDEX "client_email_key" ON "client" ("email_key")',
    'CREATE UNIQUE INDEX "contact_client_id_email_key" ON "contact" ("client_id", "email_key")',
    """CREATE VIRTUAL TABLE client_search USING fts5(search_text, content = 'client',
        content_rowid = 'id', tokenize = 'trigram case_sensitive 1')""",
    "INSERT INTO client_search (client_search) VALUES ('rebuild')",
    """CREATE TRIGGER client_search_insert AFTER INSERT ON client BEGIN
        INSERT INTO client_search (rowid, search_text) VALUES (new.id, new.search_text);
    END""",
    """CREATE TRIGGER client_search_delete AFTER DELETE ON client BEGIN
        INSERT INTO client_search (client_search, rowid, search_text)
        VALUES ('delete', old.id, old.search_text);
    END""",
    """CREATE TRIGGER client_search_update AFTER UPDATE OF search_text ON client BEGIN
        INSERT INTO client_search (client_search, rowid, search_text)
        VALUES ('delete', old.id, old.search_text);
        INSERT INTO client_search (rowid, search_text) VALUES (new.id, new.search_text);
    END""",
]

POSTGRES_BEFORE = [
    "DROP TRIGGER client_search_sync ON client",
    "DROP INDEX client_search_body_trgm",
    "DROP INDEX client_email_lower",
    "DROP INDEX contact_client_email",
    f"ALTER TABLE client ADD COLUMN email_key VARCHAR({EMAIL_KEY_MAX}) NOT NULL DEFAULT '', "
    "ADD COLUMN search_text TEXT NOT NULL DEFAULT ''",
    f"ALTER TABLE contact ADD COLUMN email_key VARCHAR({EMAIL_KEY_MAX}) NOT NULL DEFAULT ''",
]

POSTGRES_AFTER = [
    "ALTER TABLE client ALTER COLUMN email_key DROP DEFAULT",
    "ALTER TABLE contact ALTER COLUMN email_key DROP DEFAULT",
    'CREATE UNIQUE INDEX "client_email_key" ON "client" ("email_key")',
    'CREATE UNIQUE INDEX "contact_client_id_email_key" ON "contact" ("client_id", "email_key")',
    "TRUNCATE client_search",
    "INSERT INTO client_search (client_id, body) SELECT id, search_text FROM client",
    "CREATE INDEX client_search_body_trgm ON client_search USING gin (body gin_trgm_ops)",
    """CREATE OR REPLACE FUNCTION client_search_sync() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO client_search (client_id, body) VALUES (NEW.id, NEW.search_text)
        ON CONFLICT (client_id) DO UPDATE SET body = EXCLUDED.body;
        RETURN NULL;
    END $$""",
    """CREATE TRIGGER client_search_sync AFTER INSERT OR UPDATE OF search_text ON client
        FOR EACH ROW EXECUTE FUNCTION client_search_sync()""",
]


def _pages(db: Any, table: str, columns: Sequence[str]) -> Iterator[list[tuple[Any, ...]]]:
    """Every row of ``table`` (``id`` first), ``PAGE`` at a time, by id."""
    last = 0
    mark = "?" if _is_sqlite(db) else "%s"
    while True:
        rows = db.execute_sql(
            f'SELECT id, {", ".join(columns)} FROM "{table}" WHERE id > {mark} '
            f"ORDER BY id LIMIT {PAGE}",
            (last,),
        ).fetchall()
        if not rows:
            return
        yield rows
        last = rows[-1][0]


def _is_sqlite(db: Any) -> bool:
    from peewee import SqliteDatabase

    return isinstance(db, SqliteDatabase)


def _update(db: Any, table: str, columns: Sequence[str], rows: list[tuple[Any, ...]]) -> None:
    """Set ``columns`` by id from rows of (id, *values)."""
    if not rows:
        return
    cursor = db.cursor()
    if _is_sqlite(db):
        sets = ", ".join(f'"{c}" = ?' for c in columns)
        cursor.executemany(
            f'UPDATE "{table}" SET {sets} WHERE id = ?', [(*r[1:], r[0]) for r in rows]
        )
        return
    from psycopg2.extras import execute_values

    sets = ", ".join(f'"{c}" = v."{c}"' for c in columns)
    names = ", ".join(f'"{c}"' for c in ("id", *columns))
    execute_values(
        cursor,
        f'UPDATE "{table}" AS t SET {sets} FROM (VALUES %s) AS v ({names}) WHERE t.id = v.id',
        rows,
        page_size=PAGE,
    )


def _backfill(
    db: Any,
    table: str,
    sources: Sequence[str],
    targets: Sequence[str],
    compute: Callable[[dict[str, Any]], tuple[Any, ...]],
) -> None:
    for page in _pages(db, table, sources):
        rows = []
        for row in page:
            values = dict(zip(sources, row[1:], strict=True))
            rows.append((row[0], *compute(values)))
        _update(db, table, targets, rows)


def _client_keys(values: dict[str, Any]) -> tuple[str, str, str]:
    return (
        email_key(values["email"]),
        client_search_text(
            values["first_name"],
            values["last_name"],
            values["company"],
            values["email"],
            values["phone"],
        ),
        normalise_state(values["country"], values["state"]),
    )


def _contact_keys(values: dict[str, Any]) -> tuple[str, str]:
    return email_key(values["email"]), normalise_state(values["country"], values["state"])


def _separate_duplicates(db: Any, table: str, scope: str) -> None:
    """Keys shared by earlier rows (of the same ``scope``): the later rows get ``key #id``."""
    group = f"{scope}, email_key" if scope else "email_key"
    clashes = db.execute_sql(
        f'SELECT {group} FROM "{table}" GROUP BY {group} HAVING COUNT(*) > 1'
    ).fetchall()
    mark = "?" if _is_sqlite(db) else "%s"
    for clash in clashes:
        where = " AND ".join(f"{c.strip()} = {mark}" for c in group.split(","))
        ids = [
            i
            for (i,) in db.execute_sql(
                f'SELECT id FROM "{table}" WHERE {where} ORDER BY id', clash
            ).fetchall()
        ]
        log.warning(
            "%s %s share the email %r under case folding: the later keep it but need an edit",
            table,
            ", ".join(f"#{i}" for i in ids),
            clash[-1],
        )
        _update(db, table, ["email_key"], [(i, f"{clash[-1]} #{i}") for i in ids[1:]])


def _tax_rule_states(db: Any) -> None:
    """Subdivision codes upper-cased; rules that name one region twice are reported."""
    rules = db.execute_sql("SELECT id, level, country, state FROM tax_rule ORDER BY id").fetchall()
    taken = {(level, country, state) for _, level, country, state in rules}
    regions: dict[tuple[int, str, str], int] = {}
    changes = []
    for rule_id, level, country, state in rules:
        region = (level, country, region_key(country, state))
        if region in regions:
            log.warning(
                "tax rules #%s and #%s are for one region: #%s applies",
                regions[region],
                rule_id,
                regions[region],
            )
        regions.setdefault(region, rule_id)
        code = normalise_state(country, state)
        if code != state and (level, country, code) not in taken:
            taken.add((level, country, code))
            changes.append((rule_id, code))
    _update(db, "tax_rule", ["state"], changes)


def up(migrator: Any, db: Any) -> None:
    sqlite = _is_sqlite(db)
    for statement in SQLITE_BEFORE if sqlite else POSTGRES_BEFORE:
        db.execute_sql(statement)
    _backfill(
        db,
        "client",
        ("first_name", "last_name", "company", "email", "phone", "country", "state"),
        ("email_key", "search_text", "state"),
        _client_keys,
    )
    _backfill(db, "contact", ("email", "country", "state"), ("email_key", "state"), _contact_keys)
    _separate_duplicates(db, "client", "")
    _separate_duplicates(db, "contact", "client_id")
    _tax_rule_states(db)
    for statement in SQLITE_AFTER if sqlite else POSTGRES_AFTER:
        db.execute_sql(statement)
