"""Domain errors that every front door shows as a clear message."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from store.faults import LockTimeout


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


@contextmanager
def busy_is_refusal() -> Iterator[None]:
    """Turn the store's ``LockTimeout`` into :class:`DatabaseBusy`, a refusal every front
    door already shows as a message (and never a crash)."""
    try:
        yield
    except LockTimeout as exc:
        raise DatabaseBusy(str(exc)) from exc
