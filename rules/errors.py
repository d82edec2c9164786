"""Domain errors that every front door shows as a clear message.

The rules' boundary with the database is :func:`transaction` (the unit of work every
staff-facing writer uses) and :func:`refusal_of`: a database that is busy, full,
damaged, unreachable or that refuses a row (a constraint) becomes a :class:`RuleError`
here, in one place, so a front door never sees a driver's error and never closes over
one (issue 11: a locked database closed the staff app and lost the edits).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from peewee import DatabaseError, IntegrityError, OperationalError

from store.db import sqlite_file, writer
from store.faults import DatabaseFault, LockTimeout, fault_of


class RuleError(Exception):
    """Base for refusals the user can act on."""


class ValidationError(RuleError):
    """One or more fields are invalid; ``errors`` maps a field path to its reason."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))


class FieldError(ValueError):
    """A single invalid value; the message is the reason shown beside the field (every
    ``clean_*`` of ``rules.clients.validation`` and the password policy raise it)."""


class DatabaseBusy(RuleError):
    """Another program held the database's write lock longer than GoBiller waits
    (``store.faults.LOCK_WAIT_MS``): the refused change was not made, and trying again
    later is safe. Front doors show it as "busy, try again" (the command line exits 75,
    EX_TEMPFAIL); the staff app keeps the edits on screen."""


class DatabaseUnavailable(RuleError):
    """The database could not do its part (disk full, file unreadable or damaged, server
    unreachable): nothing was changed. ``fault`` is the ``store.faults.DatabaseFault``
    that says why (the command line picks its exit code from it)."""

    def __init__(self, fault: DatabaseFault) -> None:
        self.fault = fault
        super().__init__(str(fault))


class StoredDataConflict(RuleError):
    """The database refused the change because it contradicts a stored row (a unique,
    foreign-key or check constraint: e.g. another program wrote a clashing row between
    the rule's check and its write). Nothing was changed; ``detail`` is the database's
    own words."""

    def __init__(self, detail: str) -> None:
        self.detail = " ".join(detail.split())
        super().__init__(
            f"the database refused the change ({self.detail}); nothing was saved: "
            "reload and try again"
        )


def refusal_of(exc: BaseException) -> RuleError | None:
    """The :class:`RuleError` a database failure ``exc`` stands for, or None when ``exc``
    is no database failure (a bug, or already a ``RuleError``).

    ``store.faults.LockTimeout`` (SQLite's "database is locked", PostgreSQL's
    lock_not_available, deadlock, serialization failure) -> :class:`DatabaseBusy`; any
    other ``DatabaseFault`` -> :class:`DatabaseUnavailable`; peewee's ``IntegrityError``
    -> :class:`StoredDataConflict`; another peewee ``OperationalError`` (or
    ``DatabaseError`` of the driver) -> :class:`DatabaseUnavailable`. A
    ``ProgrammingError`` (bad SQL: a bug) is not a refusal and returns None.
    """
    if isinstance(exc, RuleError):
        return None
    fault = fault_of(exc, sqlite_file())
    if isinstance(fault, LockTimeout):
        return DatabaseBusy(str(fault))
    if fault is not None:
        return DatabaseUnavailable(fault)
    if isinstance(exc, IntegrityError):
        return StoredDataConflict(str(exc))
    if isinstance(exc, OperationalError) or type(exc) is DatabaseError:
        return DatabaseUnavailable(
            DatabaseFault(f"the database failed: {' '.join(str(exc).split())}")
        )
    return None


@contextmanager
def transaction() -> Iterator[None]:
    """The rules' unit of work: ``store.db.writer`` (one transaction, IMMEDIATE on SQLite,
    rolled back whole on any error), with every database failure raised as the
    :class:`RuleError` :func:`refusal_of` names, its cause chained. Nested calls are
    savepoints; the innermost translates and outer ones pass its refusal through."""
    with database_refusals(), writer():
        yield


@contextmanager
def database_refusals() -> Iterator[None]:
    """Every database failure inside the block raised as the :class:`RuleError`
    :func:`refusal_of` names (cause chained); for work that is not one ``writer`` block,
    such as the cron run's delivery or its rolled-back dry run."""
    try:
        yield
    except RuleError:
        raise
    except Exception as exc:
        refusal = refusal_of(exc)
        if refusal is None:
            raise
        raise refusal from exc
