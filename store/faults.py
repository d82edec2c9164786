"""What can go wrong under the database, named for the person who has to act on it.

The drivers speak in codes (``SQLITE_BUSY``, ``SQLITE_IOERR_WRITE``, PostgreSQL's
``55P03``) and sometimes hide the cause: after a failed COMMIT SQLite has already
rolled the transaction back, so the ROLLBACK that follows fails with "cannot rollback
- no transaction is active" and that is all a user would see. :func:`fault_of` looks
through such a masking error to the first one, and says what kind of fault it is.
Every front door turns a fault into one clear line and a sysexits code
(``tui.exits``); ``store.db.writer`` raises them in place of the driver's errors.
"""

from __future__ import annotations

import errno
import os
import resource
import shutil
from collections.abc import Iterator

__all__ = [
    "DatabaseFault",
    "LockTimeout",
    "DiskFull",
    "StorageError",
    "CorruptDatabase",
    "DatabaseUnreachable",
    "fault_of",
]

#: How long a writer waits for another's lock before giving up (SQLite's busy timeout,
#: PostgreSQL's lock_timeout), in milliseconds.
LOCK_WAIT_MS = 10_000


class DatabaseFault(Exception):
    """The database could not do its part; the message says why, in one line."""


class LockTimeout(DatabaseFault):
    """Another program held the lock longer than :data:`LOCK_WAIT_MS`: nothing was
    changed by the refused transaction, so running again later is safe."""


class DiskFull(DatabaseFault):
    """No room to write (no free space, a quota or a file-size limit)."""


class StorageError(DatabaseFault):
    """The database file cannot be opened, read or written (permissions, I/O error, not a
    regular file)."""


class CorruptDatabase(DatabaseFault):
    """The file is not a database, or its pages are damaged."""


class DatabaseUnreachable(DatabaseFault):
    """The database server cannot be reached or refused the connection."""


#: Errors that only say a rollback found no transaction left to roll back: the driver
#: (SQLite after an I/O error, a full disk or a busy COMMIT) already ended it.
_MASKING = (
    "cannot rollback - no transaction is active",
    "cannot commit - no transaction is active",
    "no such savepoint",
)

#: PostgreSQL SQLSTATEs by kind (https://www.postgresql.org/docs/15/errcodes-appendix.html).
_PG_BUSY = {"55P03", "40P01", "40001", "55006"}  # lock not available, deadlock, serialization
_PG_FULL = {"53100"}  # disk_full
_PG_CORRUPT = {"XX001", "XX002"}  # data_corrupted, index_corrupted
_PG_UNREACHABLE_CLASSES = ("08", "57", "53")  # connection, operator intervention, resources
_PG_REFUSED = {"42501"}  # insufficient_privilege


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, the driver error a peewee error wraps, and, through masking errors, the
    error that was being handled when the rollback failed."""
    seen: set[int] = set()
    todo = [exc]
    while todo:
        current = todo.pop(0)
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)  # peewee keeps the driver's error here
        if isinstance(orig, BaseException):
            todo.append(orig)
        if _is_masking(current) and current.__context__ is not None:
            todo.append(current.__context__)


def _is_masking(exc: BaseException) -> bool:
    text = str(exc)
    return any(m in text for m in _MASKING)


def fault_of(exc: BaseException, path: str | None = None) -> DatabaseFault | None:
    """The fault behind ``exc`` (a driver, peewee or OS error), or None when it is not one.

    ``path`` is the SQLite file, used to tell a full disk or a file-size limit from
    another I/O error. Looks through "cannot rollback - no transaction is active" to
    the error that ended the transaction.
    """
    if isinstance(exc, DatabaseFault):
        return exc
    for cause in _causes(exc):
        if _is_masking(cause):
            continue
        fault = _classify(cause, path)
        if fault is not None:
            return fault
    return None


def _classify(exc: BaseException, path: str | None) -> DatabaseFault | None:
    if isinstance(exc, OSError):
        if exc.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
            return DiskFull(f"disk full: {exc.strerror or exc}")
        where = f": {exc.filename}" if exc.filename else ""
        return StorageError(f"{exc.strerror or exc}{where}")
    name = getattr(exc, "sqlite_errorname", None)
    text = " ".join(str(exc).split())
    if name is not None or type(exc).__module__ == "sqlite3":
        return _sqlite(str(name or ""), text, path)
    if type(exc).__module__.startswith(("psycopg2", "psycopg")):
        connection = any(
            k.__name__ in ("OperationalError", "InterfaceError") for k in type(exc).__mro__
        )
        return _postgres(getattr(exc, "pgcode", None), text, connection)
    return None


def _sqlite(name: str, text: str, path: str | None) -> DatabaseFault | None:
    if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")) or "database is locked" in text:
        return LockTimeout(
            "the database is busy: another program held its write lock for more than "
            f"{LOCK_WAIT_MS // 1000} s; nothing was changed, try again"
        )
    if name == "SQLITE_FULL" or "database or disk is full" in text:
        return DiskFull(f"disk full: {disk_full_cause(path) or text}")
    if name.startswith("SQLITE_IOERR") or "disk I/O error" in text:
        cause = disk_full_cause(path)
        if cause:
            return DiskFull(f"disk full: {cause}")
        return StorageError(f"cannot read or write the database file ({text})")
    if name.startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) or "malformed" in text:
        return CorruptDatabase(f"the database file is damaged or not a database ({text})")
    if "file is not a database" in text:
        return CorruptDatabase(f"the database file is damaged or not a database ({text})")
    if name.startswith(("SQLITE_CANTOPEN", "SQLITE_READONLY", "SQLITE_PERM", "SQLITE_AUTH")):
        return StorageError(f"cannot open or write the database file ({text})")
    if "unable to open database file" in text or "readonly database" in text:
        return StorageError(f"cannot open or write the database file ({text})")
    return None


def _postgres(pgcode: str | None, text: str, connection: bool) -> DatabaseFault | None:
    if pgcode in _PG_BUSY:
        return LockTimeout(
            "the database is busy: another session held a lock for more than "
            f"{LOCK_WAIT_MS // 1000} s ({text}); nothing was changed, try again"
        )
    if pgcode in _PG_FULL:
        return DiskFull(f"disk full on the database server ({text})")
    if pgcode in _PG_CORRUPT:
        return CorruptDatabase(f"the database server reports damaged data ({text})")
    if pgcode in _PG_REFUSED:
        # The role lacks a privilege (PostgreSQL 15+ gives a database's public schema to
        # its owner only): the operator's to grant, not a bug in GoBiller.
        return StorageError(
            f"the database server refused a privilege GoBiller needs ({text}); grant it to "
            "the role, or use a database that role owns"
        )
    if (pgcode is None and connection) or (pgcode or "").startswith(_PG_UNREACHABLE_CLASSES):
        # No SQLSTATE on an operational error: the connection itself failed (refused,
        # closed, authentication).
        return DatabaseUnreachable(f"cannot reach the database server ({text})")
    return None


def disk_full_cause(path: str | None) -> str:
    """Why a write to the SQLite file ``path`` (or its journal) found no room, or "" when
    neither the file-size limit (``ulimit -f``) nor the free space explains it."""
    if not path or path == ":memory:":
        return ""
    soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    if soft != resource.RLIM_INFINITY:
        sizes = {}
        for suffix in ("-wal", "-journal", ""):
            try:
                sizes[path + suffix] = os.stat(path + suffix).st_size
            except OSError:
                continue
        # The file that stopped at the limit (within the largest page SQLite writes), else
        # one already beyond it (written before the limit was set).
        at_limit = [f for f, size in sizes.items() if soft - 65_536 <= size <= soft]
        beyond = [f for f, size in sizes.items() if size > soft]
        if at_limit or beyond:
            return (
                f"the file-size limit (ulimit -f) of {soft:,} bytes was reached writing "
                f"{(at_limit or beyond)[0]}; nothing was half-written: raise the limit or "
                "free space, then run again"
            )
    try:
        free = shutil.disk_usage(os.path.dirname(os.path.abspath(path))).free
    except OSError:
        return ""
    if free < 1 << 20:
        return (
            f"{free:,} bytes free beside {path}; nothing was half-written: free space, "
            "then run again"
        )
    return ""
