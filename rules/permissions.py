"""Roles, enforced where the work is done (not only hidden in the screens)."""

from __future__ import annotations

from rules.audit import Actor
from rules.errors import RuleError
from store.models.enums import ActorType, StaffRole

_CLIENT_WORK = frozenset(
    {
        "client.view",
        "client.create",
        "client.edit_contact",
        "client.edit_billing",
        "client.password",
        "client.2fa",
        "mail.send",
    }
)
ROLE_PERMISSIONS: dict[str, frozenset[str]] = {
    StaffRole.ADMIN: _CLIENT_WORK | {"settings", "staff"},
    StaffRole.BILLING: _CLIENT_WORK,
    StaffRole.SUPPORT: frozenset({"client.view", "client.edit_contact"}),
}


class PermissionDenied(RuleError):
    """The actor's role does not allow this."""


def allowed(actor: Actor, permission: str) -> bool:
    if actor.type == ActorType.SYSTEM:
        return True
    if actor.type == ActorType.CLIENT:
        return False
    return permission in ROLE_PERMISSIONS.get(actor.role, frozenset())


def require(actor: Actor, permission: str) -> None:
    if not allowed(actor, permission):
        raise PermissionDenied(
            f"{actor.name} ({actor.role or actor.type}) may not do this ({permission})"
        )
