"""Client Status Update: Active / Inactive follows whether the client has anything active.

Modes: ``off``, ``active_products`` (default) and ``active_products_and_login``.
Clients that are status locked or Closed are never touched. A client with no
active product or addon (Active or Suspended) and no active domain (Active or
Pending Transfer) becomes Inactive (with the login mode, only when it has not
logged in for 3 months); a client who has one becomes Active again.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from dateutil.relativedelta import relativedelta
from peewee import fn

from rules.billing.automation import RuleTally, RunContext, chunks, claim
from store.bulk import bulk_insert
from store.db import writer
from store.models import ActionLedger, Addon, AuditLog, Client, Domain, Service, utcnow
from store.models.enums import (
    ACTIVE_DOMAIN_STATUSES,
    ACTIVE_SERVICE_STATUSES,
    ActorType,
    ClientStatus,
    Source,
)
from store.queries import among, filter_only

RULE = "status_update"


def _has_active() -> Any:
    return (
        fn.EXISTS(
            Service.select(Service.id).where(
                (Service.client == Client.id) & Service.status.in_(ACTIVE_SERVICE_STATUSES)
            )
        )
        | fn.EXISTS(
            Addon.select(Addon.id).where(
                (Addon.client == Client.id) & Addon.status.in_(ACTIVE_SERVICE_STATUSES)
            )
        )
        | fn.EXISTS(
            Domain.select(Domain.id).where(
                (Domain.client == Client.id) & Domain.status.in_(ACTIVE_DOMAIN_STATUSES)
            )
        )
    )


def changes(ctx: RunContext) -> list[tuple[int, str, str]]:
    """(client, old status, new status) for every client this rule would change (2 queries)."""
    mode = ctx.settings.status_update
    if mode == "off":
        return []
    movable = ~Client.status_locked & (Client.status != ClientStatus.CLOSED)
    if ctx.client_ids is not None:
        movable &= Client.id.in_(list(ctx.client_ids))
    to_inactive = movable & (Client.status == ClientStatus.ACTIVE) & ~_has_active()
    if mode == "active_products_and_login":
        since = dt.datetime.combine(ctx.business_date - relativedelta(months=3), dt.time())
        # A client who never logged in counts from the account's creation (PRODUCT.md §3):
        # a week-old account has not gone 3 months without a login.
        to_inactive &= fn.COALESCE(Client.last_login_at, Client.created_at) < since
    to_active = movable & (Client.status == ClientStatus.INACTIVE) & _has_active()
    result: list[tuple[int, str, str]] = []
    for condition, old, new in (
        (to_inactive, ClientStatus.ACTIVE, ClientStatus.INACTIVE),
        (to_active, ClientStatus.INACTIVE, ClientStatus.ACTIVE),
    ):
        ids: Any = Client.select(Client.id).where(condition).tuples()
        result.extend((cid, old.value, new.value) for (cid,) in ids)
    return result


def run(ctx: RunContext) -> RuleTally:
    tally = RuleTally()
    moves = changes(ctx)
    for batch in chunks(moves):
        with writer():
            won = claim(
                ctx, RULE, [(f"client:{cid}", new, ctx.business_date) for cid, _, new in batch]
            )
            done = []
            for cid, old, new in batch:
                if (f"client:{cid}", new, ctx.business_date) in won:
                    done.append((cid, old, new))
                else:  # a staff change since the rule's own change today stands
                    ctx.skipped(RULE, cid, f"client:{cid}", f"already set {new} today")
            changed: set[int] = set()
            for old_status, target in (
                (ClientStatus.INACTIVE, ClientStatus.ACTIVE),
                (ClientStatus.ACTIVE, ClientStatus.INACTIVE),
            ):
                ids = [cid for cid, _, new in done if new == target]
                if ids:
                    # Only clients still as we read them: a staff edit in between wins.
                    updated: Any = (
                        Client.update(
                            status=target, version=Client.version + 1, updated_at=utcnow()
                        )
                        .where(
                            among(Client.id, ids)
                            & (filter_only(Client.status) == old_status)
                            & ~Client.status_locked
                        )
                        .returning(Client.id)
                        .tuples()
                        .execute()
                    )
                    changed.update(cid for (cid,) in updated)
            stale = [f"client:{cid}" for cid, _, _ in done if cid not in changed]
            if stale:  # the ledger says only what was done
                ActionLedger.delete().where(
                    (ActionLedger.rule == RULE)
                    & (ActionLedger.run == ctx.run_id)
                    & among(ActionLedger.subject, stale)
                ).execute()
            for cid, _, _ in done:
                if cid not in changed:
                    ctx.skipped(RULE, cid, f"client:{cid}", "changed by staff meanwhile")
            done = [move for move in done if move[0] in changed]
            for cid, old, new in done:
                ctx.acted(RULE, cid, f"client:{cid}", new, f"{old} -> {new}")
            stamp = utcnow().isoformat(" ")
            bulk_insert(
                AuditLog,
                AUDIT_COLUMNS,
                [
                    (
                        stamp,
                        ActorType.SYSTEM.value,
                        None,
                        "System",
                        Source.CRON.value,
                        cid,
                        "client",
                        cid,
                        "status_update",
                        "status",
                        old,
                        new,
                    )
                    for cid, old, new in done
                ],
            )
            tally.acted += len(done)
            tally.skipped += len(batch) - len(done)
    return tally


AUDIT_COLUMNS = (
    "at",
    "actor_type",
    "actor_id",
    "actor_name",
    "source",
    "client_id",
    "entity",
    "entity_id",
    "action",
    "field",
    "old_value",
    "new_value",
)
