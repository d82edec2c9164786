"""Staff accounts: creation and credentials (roles are enforced by the rules that act)."""

from __future__ import annotations

import re

from rules.audit import Actor, record
from rules.errors import RuleError, ValidationError
from rules.passwords import hash_password
from store.db import writer
from store.models import Staff
from store.models.enums import StaffRole

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
