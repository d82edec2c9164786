"""Exit codes (sysexits.h) and the one-line report of any failure of a headless command.

PRODUCT.md §5: exit codes follow sysexits, and no command prints a traceback to a user.
:func:`failure` names what went wrong in one line and picks the code; ``tui.cli``'s
command group calls it for anything a command lets escape. Nothing here imports
Textual, peewee or the models at import time (``gobiller --help`` stays fast).
"""

from __future__ import annotations

import os
import traceback
from enum import IntEnum

import click


class Exit(IntEnum):
    """The codes ``gobiller`` exits with; 1 stays the plain "refused" of a bad input or a
    failed action (a declined import, a failed email), as the README says."""

    OK = 0
    REFUSED = 1
    USAGE = 64  # EX_USAGE: the command line was wrong
    DATAERR = 65  # EX_DATAERR: the database file is damaged or not a database
    UNAVAILABLE = 69  # EX_UNAVAILABLE: the database server cannot be reached
    SOFTWARE = 70  # EX_SOFTWARE: a bug in GoBiller
    OSERR = 71  # EX_OSERR: out of memory and the like
    CANTCREAT = 73  # EX_CANTCREAT: a file GoBiller must create cannot be (the cron lock)
    IOERR = 74  # EX_IOERR: disk full, I/O error, cannot open or write the database file
    TEMPFAIL = 75  # EX_TEMPFAIL: busy or already running: try again later
    CONFIG = 78  # EX_CONFIG: configuration, or a database this version does not know
    INTERRUPTED = 130  # 128 + SIGINT, as shells report Ctrl+C


#: Set to 1 to see the traceback of an internal error (for a bug report).
TRACEBACK_ENV = "GOBILLER_TRACEBACK"


def one_line(text: str) -> str:
    """``text`` with every run of whitespace (newlines too) made one space."""
    return " ".join(str(text).split())


def failure(exc: BaseException, database_file: str | None = None) -> tuple[int, str]:
    """The exit code and one-line message for ``exc``, which a command did not handle.

    ``database_file`` is the SQLite file in use, so that a write failure can be told
    apart: a full disk or file-size limit from another I/O error.
    """
    from rules.errors import DatabaseBusy, DatabaseUnavailable, RuleError
    from store.config import ConfigError
    from store.faults import (
        CorruptDatabase,
        DatabaseUnreachable,
        DiskFull,
        LockTimeout,
        StorageError,
        fault_of,
    )
    from store.locks import AlreadyRunning, LockUnavailable
    from store.migrate import SchemaMismatch

    if isinstance(exc, DatabaseUnavailable):  # its exit code is its fault's (full, damaged…)
        exc = exc.fault
    if isinstance(exc, click.UsageError):
        return Exit.USAGE, one_line(exc.format_message())
    if isinstance(exc, click.ClickException):
        return exc.exit_code, one_line(exc.format_message())
    if isinstance(exc, click.Abort | KeyboardInterrupt):
        return Exit.INTERRUPTED, "interrupted"
    if isinstance(exc, DatabaseBusy | AlreadyRunning):
        return Exit.TEMPFAIL, one_line(str(exc))
    if isinstance(exc, LockUnavailable):
        return Exit.CANTCREAT, one_line(str(exc))
    if isinstance(exc, SchemaMismatch | ConfigError):
        return Exit.CONFIG, one_line(str(exc))
    if isinstance(exc, RuleError):
        return Exit.REFUSED, one_line(str(exc))
    fault = fault_of(exc, database_file)
    if isinstance(fault, LockTimeout):
        return Exit.TEMPFAIL, one_line(str(fault))
    if isinstance(fault, DiskFull | StorageError):
        return Exit.IOERR, one_line(str(fault))
    if isinstance(fault, CorruptDatabase):
        return Exit.DATAERR, one_line(str(fault))
    if isinstance(fault, DatabaseUnreachable):
        return Exit.UNAVAILABLE, one_line(str(fault))
    if isinstance(exc, MemoryError):
        return Exit.OSERR, "out of memory"
    if isinstance(exc, OSError):
        return Exit.IOERR, one_line(str(exc))
    return Exit.SOFTWARE, one_line(
        f"internal error ({type(exc).__name__}: {exc}); please report it "
        f"(set {TRACEBACK_ENV}=1 to see where it happened)"
    )


def show_traceback(exc: BaseException) -> bool:
    """Print the traceback of ``exc`` when the user asked to see tracebacks
    (``GOBILLER_TRACEBACK=1``); return whether it did."""
    if os.environ.get(TRACEBACK_ENV) == "1":
        traceback.print_exception(exc)
        return True
    return False
