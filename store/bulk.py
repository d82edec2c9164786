"""Fast multi-row inserts for demo data and large imports.

Goes under the ORM on purpose: building a model instance per row costs more
than the insert itself at a million rows. Values must already be in database
form (ints, bools, ISO date/time strings).
"""

from __future__ import annotations

import datetime as dt
import io
import re
import zlib
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from enum import Enum
from typing import Any

from peewee import Model

from store.db import database, is_postgres


def bulk_insert(
    model: type[Model],
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    skip_conflicts: bool = False,
) -> int:
    """Insert ``rows`` (tuples in ``columns`` order); return how many were inserted.

    With ``skip_conflicts`` a row that breaks a unique constraint is skipped
    (idempotent queuing), not an error.
    """
    return insert_rows(model._meta.table_name, columns, rows, skip_conflicts=skip_conflicts)


def insert_rows(
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    skip_conflicts: bool = False,
) -> int:
    """``bulk_insert`` into a table by name (temporary tables have no model)."""
    if not rows:
        return 0
    cols = ", ".join(f'"{c}"' for c in columns)
    cursor = database.cursor()
    if is_postgres():
        if skip_conflicts:  # COPY has no ON CONFLICT
            return len(insert_new_rows(table, columns, rows, ("1",)))
        _copy_in(table, cols, CopyText(rows))
        return len(rows)
    marks = ", ".join("?" * len(columns))
    verb = "INSERT OR IGNORE" if skip_conflicts else "INSERT"
    cursor.executemany(f'{verb} INTO "{table}" ({cols}) VALUES ({marks})', rows)
    return int(cursor.rowcount)


def copy_text(rows: Iterable[Sequence[Any]]) -> str:
    """``rows`` in PostgreSQL's COPY text format (``copy_field`` values, a line each):
    what ``copy_rows`` loads. Made without a database, so another process can make it."""
    return CopyText(rows).read()


def copy_rows(model: type[Model], columns: Sequence[str], text: str) -> None:
    """PostgreSQL: load ``text`` (``copy_text`` of rows in ``columns`` order) into
    ``model``'s table with one COPY. Raises what the database raises for a bad row."""
    _copy_in(model._meta.table_name, ", ".join(f'"{c}"' for c in columns), io.StringIO(text))


def _copy_in(table: str, cols: str, source: Any) -> None:
    """One ``COPY table (cols) FROM STDIN`` of ``source`` (a file-like of COPY text)."""
    database.cursor().copy_expert(f'COPY "{table}" ({cols}) FROM STDIN', source, size=1 << 20)


def insert_new_rows(
    table: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    returning: Sequence[str],
) -> list[tuple[Any, ...]]:
    """Insert ``rows`` (tuples in ``columns`` order, database form) into ``table``, skipping
    each that breaks a unique key (``ON CONFLICT DO NOTHING``); return the ``returning``
    expressions (quoted column names, or ``1``) of the rows inserted, in no particular
    order, as the driver gives them.

    PostgreSQL: ``COPY`` into a temporary table of those columns, then one ``INSERT ...
    SELECT ... ON CONFLICT DO NOTHING``: COPY has no ``ON CONFLICT``, and the multi-row
    ``INSERT ... VALUES`` it replaces cost more to build, send, parse and plan than to
    execute (a claim of 5,000 ledger rows: 28 ms planning of a 64 ms statement, beside
    the client building the text). Three round trips whatever the count. SQLite: ``INSERT
    ... ON CONFLICT DO NOTHING RETURNING`` with 1,000 rows a statement (at most 32,766
    parameters).
    """
    if not rows:
        return []
    cols = ", ".join(f'"{c}"' for c in columns)
    back = ", ".join(returning)
    cursor = database.cursor()
    if is_postgres():
        # Only these columns, their types, no keys or defaults (the sequence is the
        # table's); a temporary table is this session's, and goes with a rollback. One
        # per table and set of columns, so each call finds the columns it writes.
        staged = f"new_{table}_{zlib.crc32(cols.encode()):08x}"
        cursor.execute(
            f'CREATE TEMP TABLE IF NOT EXISTS "{staged}" AS SELECT {cols} FROM "{table}" '
            f'WITH NO DATA; TRUNCATE "{staged}"'
        )
        _copy_in(staged, cols, CopyText(rows))
        cursor.execute(
            f'INSERT INTO "{table}" ({cols}) SELECT {cols} FROM "{staged}" '
            f"ON CONFLICT DO NOTHING RETURNING {back}"
        )
        return cursor.fetchall()
    found: list[tuple[Any, ...]] = []
    for start in range(0, len(rows), 1000):
        batch = rows[start : start + 1000]
        marks = ", ".join("(" + ", ".join("?" * len(columns)) + ")" for _ in batch)
        cursor.execute(
            f'INSERT INTO "{table}" ({cols}) VALUES {marks} ON CONFLICT DO NOTHING '
            f"RETURNING {back}",
            [_sqlite_value(v) for row in batch for v in row],
        )
        found.extend(cursor.fetchall())
    return found


#: COPY's text format: these characters are written as backslash escapes.
_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_COPY_SPECIAL = re.compile(r"[\\\t\n\r]")


def copy_field(value: Any, _special: Any = _COPY_SPECIAL.search) -> str:
    """One value in PostgreSQL's COPY text format: NULL is ``\\N``, booleans ``t``/``f``,
    dates ISO, bytes ``\\x`` hex (bytea), and text with backslash, tab, newline and
    carriage return escaped, so every value reaches its column exactly as given
    (PostgreSQL manual, COPY, "Text Format"). Text and integers first: a load is
    millions of them."""
    kind = type(value)
    if kind is str:
        return value.translate(_COPY_ESCAPES) if _special(value) else value
    if kind is int:
        return str(value)
    if value is None:
        return "\\N"
    if value is True or value is False:
        return "t" if value else "f"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, dt.datetime):
        return value.isoformat(" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, bytes | bytearray | memoryview):
        return "\\\\x" + bytes(value).hex()
    if isinstance(value, Enum):
        return copy_field(value.value)
    if isinstance(value, str):  # its text, not its str() (a str enum names its class)
        return str.__str__(value).translate(_COPY_ESCAPES)
    return str(value).translate(_COPY_ESCAPES)


class CopyText:
    """``rows`` as the file ``cursor.copy_expert`` reads for ``COPY ... FROM STDIN``:
    lines of tab-separated ``copy_field`` values, produced a batch of rows at a time, so
    a million rows are never one string in memory."""

    def __init__(self, rows: Iterable[Sequence[Any]], batch: int = 2000) -> None:
        self._rows = iter(rows)
        self._batch = batch
        self._buffer = ""

    def read(self, size: int = -1) -> str:
        """Up to ``size`` characters (all that is left when negative); "" at the end."""
        while size < 0 or len(self._buffer) < size:
            lines = [
                "\t".join(map(copy_field, row))
                for _, row in zip(range(self._batch), self._rows, strict=False)
            ]
            if not lines:
                break
            self._buffer += "\n".join(lines) + "\n"
        if size < 0:
            text, self._buffer = self._buffer, ""
        else:
            text, self._buffer = self._buffer[:size], self._buffer[size:]
        return text

    def readline(self, size: int = -1) -> str:  # psycopg2 asks for read() only
        return self.read(size)


#: PostgreSQL types of peewee's field types, for the values of ``bulk_update`` (a VALUES
#: list types a column by its literals; all-NULL is text).
_PG_TYPES = {
    "AUTO": "integer",
    "BIGAUTO": "bigint",
    "INT": "integer",
    "BIGINT": "bigint",
    "SMALLINT": "smallint",
    "BOOL": "boolean",
    "DATE": "date",
    "DATETIME": "timestamp",
    "TIME": "time",
    "DECIMAL": "numeric",
    "FLOAT": "real",
    "DOUBLE": "double precision",
    "BLOB": "bytea",
}


def bulk_update(model: type[Model], columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
    """Set ``columns`` per primary key from rows ``(id, value, ...)`` (values in
    ``columns`` order, in database form or dates).

    PostgreSQL: one ``UPDATE ... FROM (VALUES ...)`` per 5,000 rows, each row looked up
    by its key. SQLite: one ``UPDATE`` with a ``CASE`` per column per 500 rows (its
    statements take at most 32,766 parameters).
    """
    if not rows:
        return
    table = model._meta.table_name
    cursor = database.cursor()
    if is_postgres():
        from psycopg2.extras import execute_values

        fields = model._meta.columns
        sets = ", ".join(
            f'"{c}" = v."{c}"::{_PG_TYPES.get(fields[c].field_type, "text")}' for c in columns
        )
        names = ", ".join(f'"{c}"' for c in ("id", *columns))
        execute_values(
            cursor,
            f'UPDATE "{table}" SET {sets} FROM (VALUES %s) AS v ({names}) '
            f'WHERE "{table}"."id" = v."id"',
            rows,
            page_size=5000,
        )
        return
    # SQLite keeps dates as ISO text, as peewee writes them.
    rows = [[_sqlite_value(v) for v in row] for row in rows]
    for start in range(0, len(rows), 500):
        batch = rows[start : start + 500]
        cases = " ".join("WHEN ? THEN ?" for _ in batch)
        sets = ", ".join(f'"{c}" = CASE "id" {cases} END' for c in columns)
        params: list[Any] = [
            v for n in range(len(columns)) for row in batch for v in (row[0], row[n + 1])
        ]
        params.extend(row[0] for row in batch)
        cursor.execute(
            f'UPDATE "{table}" SET {sets} WHERE "id" IN ({", ".join("?" for _ in batch)})',
            params,
        )


def reset_sequences(models: Iterable[type[Model]]) -> None:
    """After explicit ids, move PostgreSQL's sequences past them (SQLite needs nothing)."""
    if not is_postgres():
        return
    for model in models:
        table = model._meta.table_name
        database.execute_sql(
            f"SELECT setval(pg_get_serial_sequence('\"{table}\"', 'id'), "
            f'COALESCE((SELECT MAX(id) FROM "{table}"), 0) + 1, false)'
        )


@contextmanager
def indexes_built_after() -> Iterator[None]:
    """PostgreSQL: drop the foreign keys and the secondary indexes (neither unique nor
    backing a constraint) of every table, run the body, then create them again from their own
    definitions (``pg_get_indexdef``, ``pg_get_constraintdef``): one sorted build per
    index and one join per foreign key, instead of an index insert per row per index
    and a locking lookup of the parent per row (a 100,000-client demo spent most of its
    time there, the trigram index of the client search worst). Primary keys, unique
    constraints and unique indexes (most of this schema's keys are ``CREATE UNIQUE
    INDEX``) stay, so ``ON CONFLICT`` and reads by key work in the body as before.
    SQLite: the body runs as is.

    Call inside the transaction of the load (``store.db.writer``): DDL is transactional
    on PostgreSQL, so a load that fails leaves every index and key as it was, and a row
    that breaks a foreign key fails the load when the key is added again. Other
    sessions wait for the tables meanwhile (for an empty database being filled: nobody).
    """
    if not is_postgres():
        yield
        return
    keys = database.execute_sql(
        "SELECT quote_ident(n.nspname) || '.' || quote_ident(t.relname), "
        "quote_ident(k.conname), pg_get_constraintdef(k.oid) "
        "FROM pg_constraint k JOIN pg_class t ON t.oid = k.conrelid "
        "JOIN pg_namespace n ON n.oid = t.relnamespace "
        "WHERE n.nspname = current_schema() AND k.contype = 'f' ORDER BY t.relname, k.conname"
    ).fetchall()
    indexes = database.execute_sql(
        "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), "
        "pg_get_indexdef(i.indexrelid) "
        "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "JOIN pg_namespace n ON n.oid = c.relnamespace "
        "WHERE n.nspname = current_schema() AND NOT i.indisunique "
        "AND NOT EXISTS (SELECT 1 FROM pg_constraint k WHERE k.conindid = i.indexrelid) "
        "ORDER BY c.relname"
    ).fetchall()
    for table, name, _ in keys:
        database.execute_sql(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
    for name, _ in indexes:
        database.execute_sql(f"DROP INDEX {name}")
    yield
    for _, definition in indexes:
        database.execute_sql(definition)
    for table, name, definition in keys:
        database.execute_sql(f"ALTER TABLE {table} ADD CONSTRAINT {name} {definition}")


def analyze(models: Iterable[type[Model]]) -> None:
    """After a bulk load, PostgreSQL's planner statistics for ``models``' tables
    (``ANALYZE``): autovacuum gets to a freshly filled table only later, and until then
    the planner takes a million invoices for the few it last saw (hash joins and
    sequential scans where one index lookup per row was wanted). SQLite: nothing (its
    plans do not start from statistics)."""
    if is_postgres():
        tables = ", ".join(f'"{model._meta.table_name}"' for model in models)
        database.execute_sql(f"ANALYZE {tables}")


def _sqlite_value(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat(" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def row_maker(model: type[Model]) -> tuple[tuple[str, ...], Any]:
    """Columns of ``model`` and a function building one row from keyword values.

    Fields not given take the model's defaults (evaluated once, not per row), so
    scripts can bulk insert without spelling out every NOT NULL column. Columns a
    model keeps from others (``derived_values``, e.g. a client's ``email_key``) are
    computed from the row's values.
    """
    fields = [f for f in model._meta.sorted_fields]
    defaults: dict[str, Any] = {}
    for f in fields:
        default = f.default() if callable(f.default) else f.default
        if isinstance(default, dt.datetime):
            default = default.isoformat(" ")
        defaults[f.name] = default
    columns = tuple(f.column_name for f in fields)
    derive = getattr(model, "derived_values", None)

    def make(**values: Any) -> tuple[Any, ...]:
        if derive is not None:
            values = {**values, **derive({**defaults, **values})}
        return tuple(values.get(f.name, defaults[f.name]) for f in fields)

    return columns, make
