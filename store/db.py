"""The one database handle, and how GoBiller opens SQLite or PostgreSQL.

Models bind to :data:`database`, a proxy that :func:`open_database` points at
the real connection, so the same code serves tests, the app and the cron.
"""

from __future__ import annotations

import os
import stat
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from store.faults import LOCK_WAIT_MS, DatabaseFault, StorageError, fault_of
from store.files import FILE_MODE, make_private_folder

# peewee imports the PostgreSQL driver (psycopg2, and with it ssl) as it is imported: 30-40
# ms of every start, a tenth of the staff app's list open on SQLite. Hidden while peewee
# is imported; ``_peewee_postgres_driver`` hands it to peewee when a PostgreSQL URL opens.
_DRIVER_HIDDEN = "peewee" not in sys.modules and "psycopg2" not in sys.modules
if _DRIVER_HIDDEN:
    sys.modules["psycopg2"] = None  # type: ignore[assignment]  # import psycopg2 fails
try:
    import peewee
    from peewee import Database, DatabaseProxy, PostgresqlDatabase, SqliteDatabase
finally:
    if _DRIVER_HIDDEN:
        del sys.modules["psycopg2"]

__all__ = [
    "database",
    "open_database",
    "writer",
    "is_sqlite",
    "is_postgres",
    "close_database",
    "sqlite_file",
    "quick_check",
]

database: DatabaseProxy = DatabaseProxy()

# Billing data must survive power loss: synchronous=FULL, not NORMAL.
SQLITE_PRAGMAS: tuple[tuple[str, Any], ...] = (
    ("journal_mode", "wal"),
    ("foreign_keys", 1),
    ("synchronous", "full"),
    ("busy_timeout", LOCK_WAIT_MS),
    ("cache_size", -64_000),
    ("temp_store", "memory"),
    # Reads through the OS page cache without a syscall a page, over the whole file:
    # SQLite cuts the request to its build's ceiling (2 GB in Python's usual builds).
    # At 1M clients (3.6 GB) 1 GB left most invoices to read(2) into the 64 MB cache:
    # the day's rules took 23.7 s instead of 21.9 s.
    ("mmap_size", 1 << 40),
    # Deleted and overwritten content is zeroed, not left in free space: once a reset
    # email is delivered, its password is nowhere in the file (PRODUCT.md §2).
    ("secure_delete", 1),
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
    Raises ``ValueError`` for a URL it cannot use, ``store.faults.StorageError`` for a
    SQLite path that is not a regular file (``/dev/null``, a folder), ``OSError`` when
    the file cannot be made, and the driver's error when the connection fails
    (``store.faults.fault_of`` names it). A writer waits at most ``LOCK_WAIT_MS`` for
    another's lock on either database.
    """
    if url.startswith("sqlite"):
        path = _sqlite_path(url)
        if not path:
            raise ValueError(f"SQLite URL has no file path: {url}")
        if path != ":memory:":
            file = Path(path).expanduser()
            try:
                mode = file.stat().st_mode
            except FileNotFoundError:
                mode = None
            except OSError as exc:
                raise StorageError(f"cannot open {file}: {exc.strerror}") from exc
            if mode is not None and not stat.S_ISREG(mode):
                raise StorageError(f"{file} is not a regular file, so not a GoBiller database")
            if create_dirs:
                make_private_folder(file.parent)
            if file.parent.is_dir():
                _create_private(file)
        real: Database = SqliteDatabase(
            str(Path(path).expanduser()) if path != ":memory:" else path,
            pragmas=SQLITE_PRAGMAS,
            check_same_thread=False,
            timeout=LOCK_WAIT_MS / 1000,
        )
    elif url.startswith(("postgres://", "postgresql://")):
        _peewee_postgres_driver()
        from playhouse import db_url

        # Writers wait for a row or table lock as long as SQLite's busy timeout, then fail
        # with lock_not_available (a LockTimeout), instead of hanging the cron forever.
        # No JIT: compiling a rule's INSERT ... SELECT (an email body is a long expression)
        # took 1.4 s of a 1.5 s statement over 2,245 rows; GoBiller's statements are
        # index-driven and never run long enough to win it back (README, PostgreSQL).
        given = parse_qs(urlsplit(url).query).get("options", [""])[0]
        options = f"-c jit=off {given} -c lock_timeout={LOCK_WAIT_MS}".strip()
        real = db_url.connect(url, options=options)
    else:
        raise ValueError(f"unsupported database URL {url!r}: use sqlite:/// or postgresql://")
    close_database()  # a process that opens another database lets go of the first
    database.initialize(real)
    real.connect(reuse_if_open=True)
    return real


def _peewee_postgres_driver() -> None:
    """What peewee sets up when it finds psycopg2 at its import (peewee.py's ``import
    psycopg2`` block and ``Psycopg2Adapter``'s transaction states), done when the first
    PostgreSQL database opens instead. Without the driver it does nothing: peewee then
    raises its ``ImproperlyConfigured`` on connecting, as when it found none at import."""
    orm: Any = peewee  # attributes peewee defines only when it finds the driver
    if orm.psycopg2 is not None:
        return
    try:
        import psycopg2
        from psycopg2 import extensions, extras
    except ImportError:
        return

    orm.psycopg2 = psycopg2
    orm.pg_extensions = extensions
    orm.Json_pg2 = extras.Json
    orm.pg_register_uuid = extras.register_uuid
    extras.register_uuid()
    adapter = peewee.Psycopg2Adapter
    adapter.txn_idle = extensions.TRANSACTION_STATUS_IDLE
    adapter.txn_inerror = extensions.TRANSACTION_STATUS_INERROR
    adapter.txn_unknown = extensions.TRANSACTION_STATUS_UNKNOWN


def close_database() -> None:
    real = database.obj
    if real is not None and not real.is_closed():
        real.close()


def is_sqlite() -> bool:
    return isinstance(database.obj, SqliteDatabase)


def is_postgres() -> bool:
    return isinstance(database.obj, PostgresqlDatabase)


def sqlite_file() -> str | None:
    """The path of the open SQLite file (None on PostgreSQL or in memory)."""
    real = database.obj
    if isinstance(real, SqliteDatabase) and real.database != ":memory:":
        return str(real.database)
    return None


@contextmanager
def writer() -> Iterator[None]:
    """A write transaction (the unit of work).

    On SQLite it begins IMMEDIATE: a deferred transaction whose first read later
    turns into a write skips the busy handler and fails with "database is
    locked" under concurrency. Nested calls become savepoints.

    Raises a ``store.faults.DatabaseFault`` in place of the driver's error when the
    transaction fails for a reason outside the program: ``LockTimeout`` (another writer
    held the lock for ``LOCK_WAIT_MS``), ``DiskFull``, ``StorageError``,
    ``CorruptDatabase``. The whole transaction is rolled back either way; the fault names
    the first error, never the "cannot rollback - no transaction is active" that SQLite's
    own rollback of it makes peewee's rollback raise.
    """
    real = database.obj
    try:
        if isinstance(real, SqliteDatabase) and real.transaction_depth() == 0:
            with real.atomic("IMMEDIATE"):
                yield
        else:
            with database.atomic():
                yield
    except DatabaseFault:
        raise
    except Exception as exc:
        fault = fault_of(exc, sqlite_file())
        if fault is None:
            raise
        raise fault from exc


def quick_check(limit: int = 20) -> list[str]:
    """SQLite's ``PRAGMA quick_check``: the problems found (at most ``limit``), or [] when
    the file is sound. O(size of the file); PostgreSQL has no equivalent and gets []."""
    if not is_sqlite():
        return []
    rows = database.execute_sql(f"PRAGMA quick_check({int(limit)})").fetchall()
    # Each problem is a row (a row may hold several lines); the first line of the first
    # row is a "*** in database main ***" heading, which names no problem: dropped.
    lines = [line for row in rows for line in str(row[0]).splitlines()]
    problems = [line for line in lines if line.strip() and not line.startswith("*** in database")]
    return [] if problems == ["ok"] else problems
