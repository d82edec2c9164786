"""Apply the frozen migrations with peewee's own runner."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from playhouse.migrations import Runner

from store.db import database

MIGRATIONS_DIR = Path(__file__).with_name("migrations")


@dataclass(frozen=True)
class MigrationState:
    name: str
    applied: bool


def _runner() -> Runner:
    return Runner(database.obj, directory=str(MIGRATIONS_DIR), table_name="schema_migration")


def upgrade() -> list[str]:
    """Apply every pending migration, each in its own transaction; return their names."""
    return list(_runner().up())


def status() -> list[MigrationState]:
    return [MigrationState(m.name, m.applied is not None) for m in _runner().status()]


def pending() -> list[str]:
    return [m.name for m in status() if not m.applied]
