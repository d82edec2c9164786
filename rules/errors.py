"""Domain errors that every front door shows as a clear message."""

from __future__ import annotations


class RuleError(Exception):
    """Base for refusals the user can act on."""


class ValidationError(RuleError):
    """One or more fields are invalid; ``errors`` maps a field path to its reason."""

    def __init__(self, errors: dict[str, str]) -> None:
        self.errors = dict(errors)
        super().__init__("; ".join(f"{k}: {v}" for k, v in self.errors.items()))
