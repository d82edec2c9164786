"""Growing delays after failed logins, per account, never a permanent lock.

The first ``FREE_FAILURES`` failures cost nothing; after that each failure makes the
account refuse attempts for ``min(2 ** (failures - FREE_FAILURES) s, 15 min)``: 1 s
after the third, 2 s after the fourth ... 15 minutes from the thirteenth on, so an
online guesser gets about 100 tries a day instead of thousands a minute, while the
real user, at worst, waits 15 minutes (OWASP Authentication Cheat Sheet; NIST SP
800-63B §5.2.2 limits failed attempts without locking the account for good). A
success resets the count.

Nothing sleeps: a refused attempt returns at once with the seconds to wait
(``TooManyAttempts``), so a screen's event loop never blocks. The delays are kept
in the database (``LoginThrottle``), so they hold across the SSH sessions and
processes of one installation. Keyed by realm ("staff", "client") and the login name
as typed, so staff logins now and client logins later share this code, and an
unknown name is delayed just like a real one.
"""

from __future__ import annotations

import datetime as dt
import math

from rules.errors import RuleError
from store.db import writer
from store.models import LoginThrottle, utcnow

__all__ = [
    "CLIENT",
    "FREE_FAILURES",
    "LoginFailed",
    "LoginRefused",
    "MAX_DELAY",
    "STAFF",
    "TooManyAttempts",
    "before_attempt",
    "delay_after",
    "record_failure",
    "record_success",
]

STAFF = "staff"
CLIENT = "client"
FREE_FAILURES = 3
MAX_DELAY = dt.timedelta(minutes=15)
LOGIN_MAX = 254


class TooManyAttempts(RuleError):
    """The account refuses attempts for ``retry_after`` more seconds."""

    def __init__(self, retry_after: int) -> None:
        self.retry_after = retry_after
        super().__init__(f"too many attempts, try again in {retry_after} s")


class LoginFailed(RuleError):
    """A login that failed, staff or client, with a message that never says whether the
    name or the password was wrong (each realm words it: ``rules.accounts.staff``,
    ``rules.accounts.client_login.LOGIN_FAILED``)."""


class LoginRefused(LoginFailed, TooManyAttempts):
    """The account refuses attempts for ``retry_after`` more seconds after repeated
    failures ("too many attempts, try again in N s"); the password was not checked."""


def delay_after(failures: int) -> dt.timedelta:
    """How long an account refuses attempts after ``failures`` failures in a row."""
    if failures < FREE_FAILURES:
        return dt.timedelta(0)
    return min(dt.timedelta(seconds=2 ** min(failures - FREE_FAILURES, 20)), MAX_DELAY)


def _key(login: str) -> str:
    return login.strip().casefold()[:LOGIN_MAX]


def before_attempt(realm: str, login: str, now: dt.datetime | None = None) -> None:
    """Call before checking a password: raises ``TooManyAttempts`` while the account
    refuses attempts. Otherwise, once failures have begun to cost time, it holds the
    account for the delay this attempt would earn if it fails (a success clears it), so
    parallel sessions cannot check many passwords in the same instant. Two queries.
    """
    now = now or utcnow()
    key = _key(login)
    with writer():
        row = LoginThrottle.get_or_none(
            (LoginThrottle.realm == realm) & (LoginThrottle.login == key)
        )
        if row is None:
            return
        if row.refuse_until is not None and row.refuse_until > now:
            raise TooManyAttempts(math.ceil((row.refuse_until - now).total_seconds()))
        hold = delay_after(row.failures + 1)
        if hold:
            LoginThrottle.update(refuse_until=now + hold).where(
                LoginThrottle.id == row.id
            ).execute()


def record_failure(realm: str, login: str, now: dt.datetime | None = None) -> int:
    """Count one more failure and set the delay it earns; return the failures in a row.
    Call inside the transaction that audits the failure."""
    now = now or utcnow()
    key = _key(login)
    with writer():
        rows = list(
            LoginThrottle.insert(realm=realm, login=key, failures=1, last_failure_at=now)
            .on_conflict(
                conflict_target=[LoginThrottle.realm, LoginThrottle.login],
                update={
                    LoginThrottle.failures: LoginThrottle.failures + 1,
                    LoginThrottle.last_failure_at: now,
                },
            )
            .returning(LoginThrottle.id, LoginThrottle.failures)
            .tuples()
            .execute()
        )
        row_id, failures = rows[0]
        delay = delay_after(failures)
        LoginThrottle.update(refuse_until=now + delay if delay else None).where(
            LoginThrottle.id == row_id
        ).execute()
    return int(failures)


def record_success(realm: str, login: str) -> None:
    """A correct password: forget the failures (the delays start again from nothing)."""
    with writer():
        LoginThrottle.delete().where(
            (LoginThrottle.realm == realm) & (LoginThrottle.login == _key(login))
        ).execute()
