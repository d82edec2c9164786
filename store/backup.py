"""``gobiller backup`` and ``gobiller restore``: a consistent online copy, and back.

SQLite: the backup is itself a SQLite file, made with SQLite's online backup API
while writers carry on (each step copies a consistent snapshot), checked with
``PRAGMA quick_check`` and moved into place only when complete (temporary file
beside the target, fsync, rename). PostgreSQL: ``pg_dump --format=custom``, the
same way into place; restore is ``pg_restore``.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import tempfile
from pathlib import Path

from store.db import database, is_postgres


class BackupError(Exception):
    """A backup or restore that could not be done; the message says why, in one line."""


def _atomic_target(path: Path) -> tuple[int, Path]:
    """A new private temporary file beside ``path`` (so the rename stays on one disk)."""
    folder = path.parent
    if not folder.is_dir():
        raise BackupError(f"no such folder: {folder}")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
    return fd, Path(tmp)


def _commit_file(tmp: Path, path: Path) -> None:
    """fsync ``tmp``, rename it over ``path`` and fsync the folder: all or nothing."""
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    folder = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(folder)
    finally:
        os.close(folder)


def _pg_url() -> str:
    """The open PostgreSQL database as a URL without its password (``_run`` passes that
    in ``PGPASSWORD``, never on a command line others can read)."""
    real = database.obj
    params = dict(real.connect_params)
    user = params.get("user", "")
    host = params.get("host", "")
    port = params.get("port", "")
    auth = f"{user}@" if user else ""
    return f"postgresql://{auth}{host}{':' + str(port) if port else ''}/{real.database}"


def backup(path: Path) -> int:
    """Write a consistent copy of the open database to ``path``; return its size in
    bytes. The previous file at ``path`` is replaced only by a complete, checked copy.
    Raises ``BackupError``."""
    path = path.expanduser().resolve()
    fd, tmp = _atomic_target(path)
    os.close(fd)
    try:
        if is_postgres():
            _run(["pg_dump", "--format=custom", f"--file={tmp}", f"--dbname={_pg_url()}"])
        else:
            source = sqlite3.connect(str(database.obj.database))
            target = sqlite3.connect(str(tmp))
            try:
                with target:
                    source.backup(target, pages=4096)
                (result,) = target.execute("PRAGMA quick_check").fetchone()
                if result != "ok":
                    raise BackupError(f"the copy failed its integrity check: {result}")
                target.execute("PRAGMA journal_mode=DELETE")
            finally:
                target.close()
                source.close()
        _commit_file(tmp, path)
    except OSError as exc:
        raise BackupError(f"cannot write {path}: {exc.strerror or exc}") from exc
    finally:
        tmp.unlink(missing_ok=True)
    return path.stat().st_size


def is_empty() -> bool:
    """Whether the open database holds no clients, invoices or emails (safe to restore
    into without ``--force``)."""
    from store.models import Client, Email, Invoice

    if not database.table_exists("client"):
        return True
    return not any(m.select().exists() for m in (Client, Invoice, Email))


def restore(path: Path, *, force: bool = False) -> None:
    """Replace the open database's contents with the backup at ``path``. Refused
    (``BackupError``) when the database holds data and ``force`` is not set, or when
    the file is not a backup of this database kind."""
    path = path.expanduser()
    if not path.is_file():
        raise BackupError(f"no such backup file: {path}")
    if not force and not is_empty():
        raise BackupError("the database is not empty: restore with --force to replace it")
    if is_postgres():
        database.close()
        try:
            _run(
                [
                    "pg_restore",
                    "--clean",
                    "--if-exists",
                    "--no-owner",
                    "--single-transaction",
                    f"--dbname={_pg_url()}",
                    str(path),
                ]
            )
        finally:
            database.connect(reuse_if_open=True)
        return
    try:
        source = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        (result,) = source.execute("PRAGMA quick_check").fetchone()
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{path} is not a SQLite backup: {exc}") from exc
    if result != "ok":
        source.close()
        raise BackupError(f"{path} fails its integrity check: {result}")
    database.close()
    target = sqlite3.connect(str(database.obj.database), timeout=10)
    try:
        source.backup(target)
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"cannot restore: {exc}") from exc
    finally:
        target.close()
        source.close()
        database.connect(reuse_if_open=True)


def _run(command: list[str]) -> None:
    if shutil.which(command[0]) is None:
        raise BackupError(f"{command[0]} is not installed (it comes with the PostgreSQL client)")
    env = dict(os.environ)
    if is_postgres() and database.obj.connect_params.get("password"):
        env["PGPASSWORD"] = str(database.obj.connect_params["password"])
    done = subprocess.run(command, capture_output=True, text=True, check=False, env=env)
    if done.returncode != 0:
        line = (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
        raise BackupError(f"{command[0]} failed: {line}")
