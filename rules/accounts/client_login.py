"""Client login (PRODUCT.md §2): email and password, then a TOTP or backup code when
two-factor is on; the forced password change after a staff reset; password changes.

A login is refused with one message, ``LOGIN_FAILED``, whatever the reason: an unknown
email, a wrong password, no password yet, or a Closed client (PRODUCT.md §1: "Closed:
cannot log in to the client area"), so the answer does not reveal who is a client. The
password is checked (argon2, or a dummy hash) in every case, so the time does not either.

Failures are counted per account (``rules.accounts.throttle``, realm ``client``, keyed by
the email as typed): after the third, attempts wait 1 s, 2 s, 4 s ... at most 15 minutes,
never locked for good. This realm is the login's own: the forgotten-password flow
(``rules.accounts.resets``) is throttled apart and never waits on it.

Every attempt is in the activity log with its time and address (``SSH_CONNECTION``'s
client address, else "local"), never a password or code.
"""

from __future__ import annotations

import datetime as dt
import secrets
import threading
from dataclasses import dataclass, replace
from typing import NoReturn

from rules.accounts import throttle
from rules.accounts.passwords import (
    check_new_password,
    hash_password,
    needs_rehash,
    verify_or_pretend,
    verify_password,
)
from rules.accounts.throttle import LoginFailed, LoginRefused, TooManyAttempts
from rules.accounts.totp import accept_code
from rules.audit import Actor, client_address, record
from rules.errors import FieldError, RuleError, ValidationError
from rules.mail.outbox import Notice, queue
from store.db import writer
from store.keys import email_key
from store.models import Client, PasswordResetToken, utcnow
from store.models.enums import ActorType, ClientStatus, Source

__all__ = [
    "LOGIN_FAILED",
    "SECOND_FACTOR_LIFETIME",
    "SECOND_FACTOR_TRIES",
    "ClientSession",
    "LoginFailed",
    "LoginRefused",
    "SecondFactorChallenge",
    "SecondFactorFailed",
    "WrongPassword",
    "change_password",
    "check_current_password",
    "login",
    "verify_second_factor",
]

LOGIN_FAILED = "invalid email or password"
#: How long a correct password waits for its second factor, and how many codes it may try.
SECOND_FACTOR_LIFETIME = dt.timedelta(minutes=5)
SECOND_FACTOR_TRIES = 3
#: ``Client.last_login_ip`` holds an IPv6 address at most.
LOGIN_IP_MAX = 45
AUDIT_NAME_MAX = 254


class SecondFactorFailed(RuleError):
    """A wrong, reused or expired TOTP or backup code, or a login that waited too long
    for one (then ``restart`` is True: the client logs in again from the password)."""

    def __init__(self, message: str, *, restart: bool = False) -> None:
        super().__init__(message)
        self.restart = restart


class WrongPassword(RuleError):
    """The current password given to confirm a change (password, 2FA, question) is wrong."""


@dataclass(frozen=True)
class ClientSession:
    """A logged-in client. ``must_change_password``: after a staff Reset & Send Password
    the portal shows nothing but the password change (``change_password``) until done."""

    client_id: int
    email: str
    address: str
    source: Source = Source.PORTAL
    must_change_password: bool = False

    @property
    def actor(self) -> Actor:
        """The client as the audit log's actor."""
        return Actor(
            ActorType.CLIENT, self.email, self.source, self.client_id, address=self.address
        )


@dataclass(frozen=True)
class SecondFactorChallenge:
    """The password was right and the client has two-factor on: pass this and a code to
    ``verify_second_factor`` within ``SECOND_FACTOR_LIFETIME``. Only this process can
    redeem it (the nonce names an entry of this module's memory)."""

    nonce: str
    email: str


@dataclass
class _Pending:
    client_id: int
    login: str
    address: str
    source: Source
    expires_at: dt.datetime
    tries: int = 0


_pending: dict[str, _Pending] = {}
_pending_lock = threading.Lock()


def find_client(email: str) -> Client | None:
    """The client whose email is ``email`` under full case folding (``store.keys``)."""
    typed = email.strip()
    if not typed or len(typed) > 3 * 254:
        return None
    return Client.get_or_none(Client.email_key == email_key(typed))


def audit_name(typed: str) -> str:
    """What was typed as the login, made safe for the log (printable, bounded)."""
    return "".join(ch for ch in typed.strip() if ch.isprintable())[:AUDIT_NAME_MAX]


def _actor(client: Client | None, typed: str, source: Source, address: str) -> Actor:
    if client is None:
        return Actor(ActorType.CLIENT, audit_name(typed), source, None, address=address)
    return Actor(ActorType.CLIENT, client.email, source, client.id, address=address)


def _audit(
    client: Client | None, typed: str, source: Source, address: str, action: str, detail: str = ""
) -> None:
    record(
        _actor(client, typed, source, address),
        "client",
        client.id if client else None,
        action,
        client_id=client.id if client else None,
        new_value=detail,
    )


def login(
    email: str,
    password: str,
    *,
    address: str | None = None,
    source: Source = Source.PORTAL,
    now: dt.datetime | None = None,
) -> ClientSession | SecondFactorChallenge:
    """Check a client's email and password (PRODUCT.md §2).

    Returns a ``ClientSession`` (time and address of the login recorded on the client,
    the hash upgraded when the argon2 parameters changed), or a ``SecondFactorChallenge``
    when two-factor is on (nothing recorded until the code passes). ``address``: where
    the client is, default ``rules.audit.client_address()``; ``now``: naive UTC.

    Raises ``LoginRefused`` while the account waits after repeated failures and
    ``LoginFailed`` (``LOGIN_FAILED``) for an unknown email, a wrong password, a client
    without a password and a Closed client alike. Audited either way.
    """
    now = now or utcnow()
    address = address or client_address()
    typed = email.strip()
    client = find_client(typed)
    try:
        throttle.before_attempt(throttle.CLIENT, typed, now)
    except TooManyAttempts as exc:
        with writer():
            _audit(client, typed, source, address, "login_refused", str(exc))
        raise LoginRefused(exc.retry_after) from None
    stored = client.password_hash if client is not None else ""
    matches = verify_or_pretend(stored, password)
    if client is None or not matches or client.status == ClientStatus.CLOSED:
        why = "wrong password" if client is not None and stored else "no such account"
        if client is not None and matches:
            why = "client is Closed"
        _fail_login(client, typed, source, address, now, why)
    upgraded = hash_password(password) if needs_rehash(stored) else None
    if client.totp_secret:
        if upgraded:
            with writer():
                Client.update(password_hash=upgraded).where(Client.id == client.id).execute()
        nonce = secrets.token_urlsafe(32)
        with _pending_lock:
            _forget_expired(now)
            _pending[nonce] = _Pending(
                client.id, typed, address, source, now + SECOND_FACTOR_LIFETIME
            )
        return SecondFactorChallenge(nonce, client.email)
    return _logged_in(client, typed, source, address, now, upgraded, "password")


def _fail_login(
    client: Client | None, typed: str, source: Source, address: str, now: dt.datetime, why: str
) -> NoReturn:
    with writer():
        failures = throttle.record_failure(throttle.CLIENT, typed, now)
        _audit(
            client, typed, source, address, "login_failed", f"{why}; failure {failures} in a row"
        )
    raise LoginFailed(LOGIN_FAILED)


def _forget_expired(now: dt.datetime) -> None:
    for nonce in [n for n, p in _pending.items() if p.expires_at <= now]:
        del _pending[nonce]


def _logged_in(
    client: Client,
    typed: str,
    source: Source,
    address: str,
    now: dt.datetime,
    upgraded: str | None,
    how: str,
) -> ClientSession:
    """Record a completed login: time and address on the client, throttle cleared,
    audited. One transaction."""
    changes: dict[str, object] = {"last_login_at": now, "last_login_ip": address[:LOGIN_IP_MAX]}
    if upgraded:
        changes["password_hash"] = upgraded
    with writer():
        throttle.record_success(throttle.CLIENT, typed)
        Client.update(**changes).where(Client.id == client.id).execute()
        _audit(client, typed, source, address, "login", how)
    return ClientSession(
        client.id, client.email, address, source, bool(client.password_must_change)
    )


def verify_second_factor(
    challenge: SecondFactorChallenge, code: str, *, now: dt.datetime | None = None
) -> ClientSession:
    """Complete a login with a TOTP code (6 digits, ±1 step of 30 s, each step accepted
    once) or an unused backup code (``rules.accounts.two_factor``).

    Raises ``SecondFactorFailed`` for a wrong or reused code (counted as a failed login
    of the account, audited "login_2fa_failed"); after ``SECOND_FACTOR_TRIES`` wrong
    codes, or ``SECOND_FACTOR_LIFETIME`` after the password, the challenge is void and
    the error's ``restart`` is True. A client Closed meanwhile gets ``LoginFailed``.
    """

    now = now or utcnow()
    with _pending_lock:
        _forget_expired(now)
        pending = _pending.get(challenge.nonce)
    if pending is None:
        raise SecondFactorFailed("this login has expired: log in again", restart=True)
    client = Client.get_or_none(Client.id == pending.client_id)
    if client is None or client.status == ClientStatus.CLOSED:
        with _pending_lock:
            _pending.pop(challenge.nonce, None)
        raise LoginFailed(LOGIN_FAILED)
    how = "password"
    if client.totp_secret:  # staff may have switched two-factor off since the password
        how = accept_code(client.id, client.totp_secret, code, now)
        if not how:
            with _pending_lock:
                pending.tries += 1
                restart = pending.tries >= SECOND_FACTOR_TRIES
                if restart:
                    _pending.pop(challenge.nonce, None)
            with writer():
                failures = throttle.record_failure(throttle.CLIENT, pending.login, now)
                _audit(
                    client,
                    pending.login,
                    pending.source,
                    pending.address,
                    "login_2fa_failed",
                    f"wrong code; failure {failures} in a row",
                )
            raise SecondFactorFailed(
                "invalid code: log in again" if restart else "invalid code", restart=restart
            )
    with _pending_lock:
        if _pending.pop(challenge.nonce, None) is None:  # another thread used it meanwhile
            raise SecondFactorFailed("this login has expired: log in again", restart=True)
    return _logged_in(
        client, pending.login, pending.source, pending.address, now, None, f"password+{how}"
    )


def check_current_password(
    session: ClientSession, password: str, *, now: dt.datetime | None = None
) -> Client:
    """The session's client, once ``password`` is its current password: the confirmation
    that changing the password, two-factor or the security question asks for.

    Throttled and audited like a login ("password_check_failed"): raises ``LoginRefused``
    while the account waits, ``WrongPassword`` for a wrong password, ``LoginFailed`` when
    the client is gone or Closed.
    """
    now = now or utcnow()
    try:
        throttle.before_attempt(throttle.CLIENT, session.email, now)
    except TooManyAttempts as exc:
        raise LoginRefused(exc.retry_after) from None
    client = Client.get_or_none(Client.id == session.client_id)
    if client is None or client.status == ClientStatus.CLOSED:
        raise LoginFailed(LOGIN_FAILED)
    if not verify_password(client.password_hash, password):
        with writer():
            failures = throttle.record_failure(throttle.CLIENT, session.email, now)
            _audit(
                client,
                session.email,
                session.source,
                session.address,
                "password_check_failed",
                f"failure {failures} in a row",
            )
        raise WrongPassword("the current password is not right")
    throttle.record_success(throttle.CLIENT, session.email)
    return client


def password_context(client: Client) -> tuple[str, ...]:
    """The client's own words a new password must not contain (``check_new_password``)."""
    return (client.email, client.first_name, client.last_name)


def checked_new_password(client: Client, new_password: str) -> str:
    """``new_password`` when it meets the policy (``rules.accounts.passwords``); raises
    ``ValidationError({"password": reason})`` otherwise."""
    try:
        return check_new_password(new_password, context=password_context(client))
    except FieldError as exc:
        raise ValidationError({"password": str(exc)}) from None


def change_password(
    session: ClientSession,
    new_password: str,
    *,
    current_password: str | None = None,
    now: dt.datetime | None = None,
) -> ClientSession:
    """Set the client's password (portal Security, and the forced change after a staff
    reset); returns the session with ``must_change_password`` False.

    ``current_password`` is required, except for the forced change of a session whose
    login just proved it (``session.must_change_password``). The new password meets the
    policy and, for a forced change, differs from the one staff sent. Unused reset and
    invitation links are voided; "Password Reset Confirmation" tells the client; audited
    ("password_change"). Raises ``ValidationError({"password": ...})``,
    ``WrongPassword``, ``LoginRefused``, ``LoginFailed``. PRODUCT.md §2.
    """
    now = now or utcnow()
    if current_password is None and not session.must_change_password:
        raise WrongPassword("enter your current password")
    if current_password is not None:
        client = check_current_password(session, current_password, now=now)
    else:
        found = Client.get_or_none(Client.id == session.client_id)
        if found is None or found.status == ClientStatus.CLOSED:
            raise LoginFailed(LOGIN_FAILED)
        client = found
    checked_new_password(client, new_password)
    if client.password_must_change and verify_password(client.password_hash, new_password):
        raise ValidationError({"password": "choose a new password, not the one we sent you"})
    new_hash = hash_password(new_password)
    with writer():
        Client.update(password_hash=new_hash, password_must_change=False).where(
            Client.id == client.id
        ).execute()
        void_tokens(client.id, now)
        record(session.actor, "client", client.id, "password_change", client_id=client.id)
        queue("Password Reset Confirmation", [Notice(client.id)])
    return replace(session, must_change_password=False)


def void_tokens(client_id: int, now: dt.datetime) -> int:
    """Mark every unused reset and invitation link of the client used; how many."""
    return int(
        PasswordResetToken.update(used_at=now)
        .where((PasswordResetToken.client == client_id) & PasswordResetToken.used_at.is_null())
        .execute()
    )
