"""Developer tool: freeze the current models' DDL into a new migration script.

    python -m store.migrations.freeze 0001_initial

writes ``store/migrations/0001_initial.py`` holding the exact SQL for SQLite
and PostgreSQL, so later model changes never alter what an old migration does.
Only for creating tables; later changes are hand-written with
``playhouse.migrate``.
"""

from __future__ import annotations

import pprint
import sys
from pathlib import Path

from peewee import Database, PostgresqlDatabase, SqliteDatabase

from store.models import ALL_MODELS


def ddl(db: Database) -> list[str]:
    """CREATE TABLE/INDEX statements for every model, in dependency order."""
    statements: list[str] = []
    deferred = [
        f for m in ALL_MODELS for f in m._meta.fields.values() if getattr(f, "deferred", False)
    ]
    inline = isinstance(db, SqliteDatabase)  # SQLite accepts forward references inline.
    for field in deferred:
        field.deferred = not inline
    try:
        with db.bind_ctx(ALL_MODELS):
            for model in ALL_MODELS:
                ctx = db.get_sql_context().sql(model._schema._create_table(safe=False))  # type: ignore[attr-defined]
                statements.append(ctx.query()[0])
            for model in ALL_MODELS:
                for index in model._schema._create_indexes(safe=False):  # type: ignore[attr-defined]
                    statements.append(db.get_sql_context().sql(index).query()[0])
            if not inline:
                for field in deferred:
                    ctx = db.get_sql_context().sql(field.model._schema._create_foreign_key(field))
                    statements.append(ctx.query()[0])
    finally:
        for field in deferred:
            field.deferred = True
    return statements


TEMPLATE = '''"""{name}: frozen by store.migrations.freeze; do not edit."""

from __future__ import annotations

from typing import Any

SQLITE = {sqlite}

POSTGRES = {postgres}


def up(migrator: Any, db: Any) -> None:
    from peewee import SqliteDatabase

    for statement in SQLITE if isinstance(db, SqliteDatabase) else POSTGRES:
        db.execute_sql(statement)
'''


def main(name: str) -> None:
    path = Path(__file__).with_name(f"{name}.py")
    text = TEMPLATE.format(
        name=name,
        sqlite=pprint.pformat(ddl(SqliteDatabase(None)), width=96),
        postgres=pprint.pformat(ddl(PostgresqlDatabase(None)), width=96),
    )
    path.write_text(text)
    print(f"wrote {path}")


if __name__ == "__main__":
    main(sys.argv[1])
