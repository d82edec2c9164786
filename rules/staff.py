"""Staff accounts: creation and credentials (roles are enforced by the rules that act)."""

from __future__ import annotations

import re
from functools import lru_cache

from rules.audit import Actor, record
from rules.errors import RuleError, ValidationError
from rules.passwords import hash_password, needs_rehash, verify_password
from store.db import writer
from store.models import Staff, utcnow
from store.models.enums import ActorType, Source, StaffRole

_USERNAME = re.compile(r"^[a-z][a-z0-9._-]{1,63}$")
MIN_PASSWORD = 10


def add_staff(username: str, password: str, role: str, actor: Actor) -> Staff:
    """Create a staff member; refuses duplicates, weak passwords and unknown roles."""
    errors: dict[str, str] = {}
    if not _USERNAME.match(username):
        errors["username"] = "2-64 lower-case letters, digits, '.', '_' or '-', starting a-z"
    if role not in {r.value for r in StaffRole}:
        errors["role"] = f"must be one of {', '.join(r.value for r in StaffRole)}"
    if len(password) < MIN_PASSWORD:
        errors["password"] = f"must be at least {MIN_PASSWORD} characters"
    if errors:
        raise ValidationError(errors)
    with writer():
        if Staff.select().where(Staff.username == username).exists():
            raise RuleError(f"staff member {username!r} already exists")
        staff = Staff.create(username=username, password_hash=hash_password(password), role=role)
        record(actor, "staff", staff.id, "create", new_value=f"{username} ({role})")
    return staff


class LoginFailed(RuleError):
    """Wrong username or password (the message never says which)."""


def authenticate(username: str, password: str, source: Source = Source.TUI) -> Actor:
    """Check a staff login; rehash when argon2 parameters changed; audit the login."""
    staff = Staff.get_or_none(Staff.username == username.strip())
    if staff is None or staff.disabled or not verify_password(staff.password_hash, password):
        if staff is None:
            verify_password(_dummy_hash(), password)  # same time whether or not the user exists
        raise LoginFailed("invalid username or password")
    actor = Actor(ActorType.STAFF, staff.username, source, staff.id, staff.role)
    with writer():
        changes: dict[str, object] = {"last_login_at": utcnow()}
        if needs_rehash(staff.password_hash):
            changes["password_hash"] = hash_password(password)
        Staff.update(**changes).where(Staff.id == staff.id).execute()
        record(actor, "staff", staff.id, "login")
    return actor


def check_password(actor: Actor, password: str) -> bool:
    """Unlock after the idle lock: the same staff member's password."""
    staff = Staff.get_or_none(Staff.id == actor.id)
    return staff is not None and verify_password(staff.password_hash, password)


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return hash_password("not a real password, only for timing")
