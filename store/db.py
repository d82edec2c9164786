"""The one database handle, and how GoBiller opens SQLite or PostgreSQL.

Models bind to :data:`database`, a proxy that :func:`open_database` points at
the real connection, so the same code serves tests, the app and the cron.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from peewee import Database, DatabaseProxy, PostgresqlDatabase, SqliteDatabase

from store.files import FILE_MODE, make_private_folder

__all__ = ["database", "open_database", "writer", "is_sqlite", "is_postgres", "close_database"]

database: DatabaseProxy = DatabaseProxy()

# Billing data must survive power loss: synchronous=FULL, not NORMAL.
SQLITE_PRAGMAS: tuple[tuple[str, Any], ...] = (
    ("journal_mode", "wal"),
    ("foreign_keys", 1),
    ("synchronous", "full"),
    ("busy_timeout", 10_000),
    ("cache_size", -64_000),
    ("temp_store", "memory"),
    ("mmap_size", 1 << 30),  # reads through the OS page cache without a syscall a page
)


def _sqlite_path(url: str) -> str:
    """The file of ``sqlite:///relative`` or ``sqlite:////absolute`` (``:memory:`` too)."""
    rest = url.split(":", 1)[1]
    if not rest.startswith("//"):
        return ""
    return unquote(urlsplit(rest).path[1:] if rest.startswith("///") else "")


def _create_private(path: Path) -> None:
    """Create an empty SQLite file readable by its owner only (0600), unless it exists.

    An empty file is a valid empty database; SQLite gives the -wal, -shm and -journal
    files the permissions of the database file, so they are 0600 too. Created before
    SQLite opens it, so no byte of data is ever in a file others can read.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        return
    os.close(fd)


def open_database(url: str, *, create_dirs: bool = True) -> Database:
    """Connect ``database`` to ``url`` (``sqlite:///path`` or ``postgresql://...``).

    A new SQLite file is created 0600 and missing folders 0700 (``store.files``).
    Raises ``ValueError`` for an unusable URL, ``OSError`` when the file cannot be made.
    """
    if url.startswith("sqlite"):
        path = _sqlite_path(url)
        if not path:
            raise ValueError(f"SQLite URL has no file path: {url}")
        if path != ":memory:":
            file = Path(path).expanduser()
            if create_dirs:
                make_private_folder(file.parent)
            if file.parent.is_dir():
                _create_private(file)
        real: Database = SqliteDatabase(
            str(Path(path).expanduser()) if path != ":memory:" else path,
            pragmas=SQLITE_PRAGMAS,
            check_same_thread=False,
            timeout=10,
        )
    elif url.startswith(("postgres://", "postgresql://")):
        from playhouse import db_url  # imports the PostgreSQL driver: only when needed

        real = db_url.connect(url)
    else:
        raise ValueError(f"unsupported database URL {url!r}: use sqlite:/// or postgresql://")
    database.initialize(real)
    real.connect(reuse_if_open=True)
    return real


def close_database() -> None:
    real = database.obj
    if real is not None and not real.is_closed():
        real.close()


def is_sqlite() -> bool:
    return isinstance(database.obj, SqliteDatabase)


def is_postgres() -> bool:
    return isinstance(database.obj, PostgresqlDatabase)


@contextmanager
def writer() -> Iterator[None]:
    """A write transaction (the unit of work).

    On SQLite it begins IMMEDIATE: a deferred transaction whose first read later
    turns into a write skips the busy handler and fails with "database is
    locked" under concurrency. Nested calls become savepoints.
    """
    real = database.obj
    if isinstance(real, SqliteDatabase) and real.transaction_depth() == 0:
        with real.atomic("IMMEDIATE"):
            yield
    else:
        with database.atomic():
            yield
