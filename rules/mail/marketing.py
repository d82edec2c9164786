"""Who may receive marketing email: one rule for queuing, delivery and resending.

PRODUCT.md §1 and §4: mass mail marked "marketing" skips clients who opted out, and
"eligibility (opt-out, Closed) is checked again when a message leaves: one that is no
longer wanted is marked skipped, not sent". The rule is a SQL expression over ``client``
so each caller applies it to a whole set in one query: the mass-mail preview to every
match, delivery to a leased batch, a resend to its one client.
"""

from __future__ import annotations

from typing import Any

from peewee import Case

from store.models import Client
from store.models.enums import ClientStatus

OPTED_OUT = "the client opted out of marketing email"
CLOSED = "the client is Closed"


def marketing_refusal() -> Any:
    """SQL, over a ``Client`` row: why it may not receive marketing email (``OPTED_OUT``,
    ``CLOSED``), or NULL when it may. Transactional email ignores this rule."""
    return Case(
        None,
        (
            (Client.marketing_opt_out == True, OPTED_OUT),  # noqa: E712  (SQL, not Python)
            (Client.status == ClientStatus.CLOSED, CLOSED),
        ),
        None,
    )


def refusal_for(client_id: int) -> str | None:
    """Why client ``client_id`` may not receive marketing email now, or None (one query)."""
    reason = Client.select(marketing_refusal()).where(Client.id == client_id).scalar()
    return str(reason) if reason else None
