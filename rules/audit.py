"""The activity log: who did what, from where, with old and new values."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

from store.models import AuditLog
from store.models.enums import ActorType, Source


@dataclass(frozen=True)
class Actor:
    """Who acts: a staff member, a client, or the System (cron), through which door, and
    from where (``client_address``; every audit row of the actor records it)."""

    type: ActorType
    name: str
    source: Source
    id: int | None = None
    role: str = ""
    address: str = ""


#: Longest address kept (an IPv6 address with a zone fits).
ADDRESS_MAX = 64


def client_address(environ: Mapping[str, str] | None = None) -> str:
    """Where the person at the keyboard is: the client address of ``SSH_CONNECTION``
    ("client-ip client-port server-ip server-port", set by sshd) when set, else "local"
    (a terminal on the machine itself)."""
    env = os.environ if environ is None else environ
    parts = env.get("SSH_CONNECTION", "").split()
    return parts[0][:ADDRESS_MAX] if parts else "local"


SYSTEM_CLI = Actor(ActorType.SYSTEM, "System", Source.CLI)
SYSTEM_CRON = Actor(ActorType.SYSTEM, "System", Source.CRON)


def record(
    actor: Actor,
    entity: str,
    entity_id: int | None,
    action: str,
    *,
    client_id: int | None = None,
    field: str = "",
    old_value: str = "",
    new_value: str = "",
) -> None:
    """Write one audit row; call inside the transaction of the change it describes."""
    AuditLog.create(
        actor_type=actor.type,
        actor_id=actor.id,
        actor_name=actor.name,
        source=actor.source,
        client=client_id,
        entity=entity,
        entity_id=entity_id,
        action=action,
        field=field,
        old_value=old_value,
        new_value=new_value,
        address=actor.address,
    )
