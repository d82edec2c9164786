"""The cron lock: one run at a time per database.

SQLite: an exclusive ``flock`` on a lock file beside the database file.
PostgreSQL: a session advisory lock. Either way a second run learns at once.
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


@contextmanager
def cron_lock(sqlite_path: str | None = None) -> Iterator[None]:
    if is_postgres():
        got = database.execute_sql("SELECT pg_try_advisory_lock(%s)", (ADVISORY_KEY,)).fetchone()
        if not got or not got[0]:
            raise AlreadyRunning("another gobiller cron is running on this database")
        try:
            yield
        finally:
            database.execute_sql("SELECT pg_advisory_unlock(%s)", (ADVISORY_KEY,))
        return
    path = Path(f"{sqlite_path or database.obj.database}.cron.lock")
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
