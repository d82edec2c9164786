"""Apply the frozen migrations with peewee's own runner, and refuse a schema this
version does not know (a newer GoBiller's, or another program's database)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from store.db import database

if TYPE_CHECKING:
    from playhouse.migrations import Runner

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
TABLE = "schema_migration"


class SchemaMismatch(Exception):
    """The database's schema is not one this version of GoBiller knows: acting on it could
    write what another version or program does not expect. Nothing was changed."""


@dataclass(frozen=True)
class MigrationState:
    name: str
    applied: bool
    #: False for a migration recorded in the database that this version does not ship.
    known: bool = True


def _runner() -> Runner:
    # peewee's runner (and its schema migrator, which imports the PostgreSQL driver) only
    # when a migration is to run: every start checks, few migrate.
    from playhouse.migrations import Runner

    return Runner(database.obj, directory=str(MIGRATIONS_DIR), table_name=TABLE)


def _order(name: str) -> tuple[int, str]:
    """A migration's place, as peewee's runner orders them (its leading number, then name)."""
    number = re.match(r"\d+", name)
    return (int(number.group()) if number else -1, name)


def upgrade() -> list[str]:
    """Apply every pending migration, each in its own transaction; return their names.

    Writes nothing when none is pending (a start-up under another writer's lock does not
    wait for it). Raises ``SchemaMismatch`` as :func:`check_schema` does.
    """
    check_schema()
    if not pending():
        return []
    return list(_runner().up())


def status() -> list[MigrationState]:
    """Every shipped migration and every one recorded in the database, in order."""
    shipped = {path.stem for path in MIGRATIONS_DIR.glob("[0-9]*.py")}
    applied: set[str] = set()
    if TABLE in _tables():  # the runner's history table, read as the runner reads it
        applied = {name for (name,) in database.execute_sql(f'SELECT "name" FROM "{TABLE}"')}
    return [
        MigrationState(name, name in applied, name in shipped)
        for name in sorted(shipped | applied, key=_order)
    ]


def pending() -> list[str]:
    return [m.name for m in status() if not m.applied]


def unknown() -> list[str]:
    """Migrations recorded as applied that this version does not ship (a newer GoBiller
    upgraded the database)."""
    return [m.name for m in status() if not m.known]


def _tables() -> set[str]:
    return {t for t in database.get_tables() if not t.startswith("sqlite_")}


def check_schema() -> None:
    """Refuse a database whose schema this version does not know; two or three reads.

    Raises ``SchemaMismatch`` when the database records migrations this version does not
    ship (a newer GoBiller's: run that version), or has tables but no migration history
    (another program's database: check the URL). An empty database, or one with
    migrations pending, is fine: :func:`upgrade` applies them.
    """
    tables = _tables()
    if tables and TABLE not in tables:
        shown = ", ".join(sorted(tables)[:5]) + (", ..." if len(tables) > 5 else "")
        raise SchemaMismatch(
            f"not a GoBiller database: it has tables ({shown}) but no {TABLE}; "
            "check the database URL"
        )
    if TABLE in tables:
        newer = unknown()
        if newer:
            raise SchemaMismatch(
                "this database was upgraded by a newer GoBiller (migration(s) "
                f"{', '.join(newer)} unknown to this version); run that version"
            )


def check_tables() -> None:
    """Refuse a migrated database that lacks a table the models use (dropped by hand).

    Raises ``SchemaMismatch`` naming them; one read.
    """
    from store.models import ALL_MODELS

    missing = sorted({m._meta.table_name for m in ALL_MODELS} - _tables())
    if missing:
        raise SchemaMismatch(
            f"the database lacks table(s) {', '.join(missing)} although its migrations "
            "are applied: restore it from a backup"
        )
