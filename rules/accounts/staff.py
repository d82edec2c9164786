"""Staff accounts: creation and credentials (roles are enforced by the rules that act)."""

from __future__ import annotations

import datetime as dt
import re

from rules.accounts import throttle
from rules.accounts.passwords import (
    check_new_password,
    hash_password,
    needs_rehash,
    verify_or_pretend,
    verify_password,
)
from rules.accounts.throttle import LoginFailed, LoginRefused, TooManyAttempts
from rules.audit import Actor, record
from rules.errors import FieldError, RuleError, ValidationError
from store.db import writer
from store.models import Staff, utcnow
from store.models.enums import ActorType, Source, StaffRole

_USERNAME = re.compile(r"^[a-z][a-z0-9._-]{1,63}$")


def add_staff(username: str, password: str, role: str, actor: Actor) -> Staff:
    """Create a staff member; refuses duplicates, unknown roles and a password that fails
    the policy of ``rules.accounts.passwords`` (the same for staff and clients)."""
    errors: dict[str, str] = {}
    if not _USERNAME.match(username):
        errors["username"] = "2-64 lower-case letters, digits, '.', '_' or '-', starting a-z"
    if role not in {r.value for r in StaffRole}:
        errors["role"] = f"must be one of {', '.join(r.value for r in StaffRole)}"
    try:
        check_new_password(password, context=(username, "gobiller"))
    except FieldError as exc:
        errors["password"] = str(exc)
    if errors:
        raise ValidationError(errors)
    with writer():
        if Staff.select().where(Staff.username == username).exists():
            raise RuleError(f"staff member {username!r} already exists")
        staff = Staff.create(username=username, password_hash=hash_password(password), role=role)
        record(actor, "staff", staff.id, "create", new_value=f"{username} ({role})")
    return staff


def _refused(exc: TooManyAttempts) -> LoginRefused:
    return LoginRefused(exc.retry_after)


def _audit_attempt(
    staff: Staff | None, typed: str, source: Source, address: str, action: str, detail: str
) -> None:
    """Audit a failed or refused attempt: who it was for, when (the row's time) and from
    where; never the password."""
    name = "".join(ch for ch in typed.strip() if ch.isprintable())[:64]
    actor = Actor(
        ActorType.STAFF,
        staff.username if staff else name,
        source,
        staff.id if staff else None,
        address=address,
    )
    record(actor, "staff", staff.id if staff else None, action, new_value=detail)


def authenticate(
    username: str,
    password: str,
    source: Source = Source.TUI,
    *,
    address: str = "local",
    now: dt.datetime | None = None,
) -> Actor:
    """Check a staff login; rehash when argon2 parameters changed; audit the login.

    Every failure is audited ("login_failed", with the address, never the password) and
    counted per username (``rules.accounts.throttle``): after the third, attempts are refused for
    a growing delay ("login_refused", raised as ``LoginRefused`` saying how many seconds
    remain) without checking the password. Raises ``LoginFailed``. PRODUCT.md §2.
    """
    now = now or utcnow()
    typed = username.strip()
    staff = Staff.get_or_none(Staff.username == typed)
    try:
        throttle.before_attempt(throttle.STAFF, typed, now)
    except TooManyAttempts as exc:
        with writer():
            _audit_attempt(staff, typed, source, address, "login_refused", str(exc))
        raise _refused(exc) from None
    stored = staff.password_hash if staff is not None else None
    # verify_or_pretend: the same argon2 work whether or not the user exists
    if staff is None or not verify_or_pretend(stored, password) or staff.disabled:
        with writer():
            failures = throttle.record_failure(throttle.STAFF, typed, now)
            _audit_attempt(
                staff, typed, source, address, "login_failed", f"failure {failures} in a row"
            )
        raise LoginFailed("invalid username or password")
    actor = Actor(ActorType.STAFF, staff.username, source, staff.id, staff.role, address)
    changes: dict[str, object] = {"last_login_at": now}
    if needs_rehash(staff.password_hash):  # argon2 is slow: never inside the write lock
        changes["password_hash"] = hash_password(password)
    with writer():
        throttle.record_success(throttle.STAFF, typed)
        Staff.update(**changes).where(Staff.id == staff.id).execute()
        record(actor, "staff", staff.id, "login")
    return actor


def check_password(actor: Actor, password: str, *, now: dt.datetime | None = None) -> bool:
    """Unlock after the idle lock: the same staff member's password, under the same
    throttle and audit as a login ("unlock", "unlock_failed", "unlock_refused"). Raises
    ``LoginRefused`` while the account refuses attempts."""
    now = now or utcnow()
    staff = Staff.get_or_none(Staff.id == actor.id)
    try:
        throttle.before_attempt(throttle.STAFF, actor.name, now)
    except TooManyAttempts as exc:
        with writer():
            _audit_attempt(
                staff, actor.name, actor.source, actor.address, "unlock_refused", str(exc)
            )
        raise _refused(exc) from None
    if staff is None or staff.disabled or not verify_password(staff.password_hash, password):
        with writer():
            failures = throttle.record_failure(throttle.STAFF, actor.name, now)
            _audit_attempt(
                staff,
                actor.name,
                actor.source,
                actor.address,
                "unlock_failed",
                f"failure {failures} in a row",
            )
        return False
    with writer():
        throttle.record_success(throttle.STAFF, actor.name)
        record(actor, "staff", staff.id, "unlock")
    return True
