"""The cron lock: one run at a time per database, whatever path or URL reaches it.

SQLite: an exclusive ``flock`` on a lock file beside the database file itself, its
path resolved (symbolic links followed), so a run through a link to the file or to
its folder takes the same lock; this is also how SQLite names its own ``-wal`` and
``-shm`` files. PostgreSQL: a session advisory lock, which belongs to the database
itself, whatever host name or URL reaches it. Either way a second run learns at once.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from store.db import database, is_postgres

ADVISORY_KEY = 0x60B111E5  # "GoBiller" cron


class AlreadyRunning(Exception):
    """Another cron holds the lock."""


class LockUnavailable(Exception):
    """The lock could not be taken for another reason (permissions, no such folder)."""


def cron_running(sqlite_path: str | None = None) -> bool:
    """Whether a cron holds the lock of the open database (or of the SQLite file
    ``sqlite_path``) right now; takes and gives back nothing a cron would notice (on
    SQLite a lock file that does not exist is not created). One query on PostgreSQL.

    Raises ``LockUnavailable`` when the lock file exists but cannot be opened or tested.
    """
    if is_postgres():
        # A bigint advisory key shows in pg_locks as classid (high 32 bits), objid (low
        # 32 bits) and objsubid 1 (https://www.postgresql.org/docs/15/view-pg-locks.html).
        row = database.execute_sql(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND granted"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND classid = %s AND objid = %s AND objsubid = 1",
            (ADVISORY_KEY >> 32, ADVISORY_KEY & 0xFFFFFFFF),
        ).fetchone()
        return bool(row and row[0])
    real = os.path.realpath(Path(sqlite_path or database.obj.database).expanduser())
    path = Path(f"{real}.cron.lock")
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise LockUnavailable(f"cannot open the lock file {path}: {exc.strerror}") from exc
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError as exc:
        raise LockUnavailable(f"cannot test the lock {path}: {exc.strerror}") from exc
    finally:
        os.close(fd)  # closing releases the test lock
    return False


@contextmanager
def cron_lock(sqlite_path: str | None = None) -> Iterator[None]:
    """Hold the cron lock of the open database (or of the SQLite file ``sqlite_path``).

    Raises ``AlreadyRunning`` when another run holds it (the command line exits 75) and
    ``LockUnavailable`` when the lock file cannot be created (PRODUCT.md §5: the cron
    refuses to overlap a running cron).
    """
    if is_postgres():
        got = database.execute_sql("SELECT pg_try_advisory_lock(%s)", (ADVISORY_KEY,)).fetchone()
        if not got or not got[0]:
            raise AlreadyRunning("another gobiller cron is running on this database")
        try:
            yield
        finally:
            database.execute_sql("SELECT pg_advisory_unlock(%s)", (ADVISORY_KEY,))
        return
    real = os.path.realpath(Path(sqlite_path or database.obj.database).expanduser())
    path = Path(f"{real}.cron.lock")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    except OSError as exc:
        raise LockUnavailable(f"cannot open the lock file {path}: {exc.strerror}") from exc
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise AlreadyRunning(f"another gobiller cron is running (lock {path})") from exc
        except OSError as exc:
            raise LockUnavailable(f"cannot lock {path}: {exc.strerror}") from exc
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        yield
    finally:
        os.close(fd)  # closing releases the flock
