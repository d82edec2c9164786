"""``gobiller explain CLIENT``: rule by rule, would the cron act, and if not, why not.

The answer is the cron's own run, rolled back (``run_cron(dry_run=True)``) and
restricted to the client: what it lists is what a run does for that client, claims in
the ledger included. The reasons come from the rules' own skips (exempt, disabled,
already in the ledger, no valid card...); when a rule found nothing at all for the
client, from the client's facts that put it out of the rule's reach.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from rules.billing import capture, late_fees, notices
from rules.billing.cron import DATE_CHECK, RULE_NAMES, run_cron
from rules.errors import RuleError
from store.models import ActionLedger, Client, Invoice, StoredCard
from store.models.enums import InvoiceStatus
from store.queries import balances
from store.settings import Settings


@dataclass(frozen=True)
class Explanation:
    rule: str
    acts: bool
    reason: str


def explain(client_id: int, day: dt.date, settings: Settings) -> list[Explanation]:
    """For each rule (and the date check), whether a cron run for business date ``day``
    acts for client ``client_id``, and what it does or why not.

    Takes the cron lock for the rolled-back run: raises ``store.locks.AlreadyRunning``
    while a cron runs, ``RuleError`` for an unknown client, and the faults of
    ``run_cron``."""
    client = Client.get_or_none(Client.id == client_id)
    if client is None:
        raise RuleError(f"no client {client_id}")
    summary = run_cron(
        settings=settings,
        day=day,
        dry_run=True,
        client_ids=[client_id],
        deliver=False,
        reasons=True,
    )
    lines = []
    creates = any(a.rule == "invoice" for a in summary.actions)
    bad_dates = summary.rules.get(DATE_CHECK)
    if bad_dates is not None:
        lines.append(Explanation(DATE_CHECK, False, "; ".join(bad_dates.errors)))
    for name in RULE_NAMES:
        acts = [a for a in summary.actions if a.rule == name]
        skips = [s for s in summary.skips if s.rule == name]
        if acts:
            reason = "; ".join(f"{a.subject}: {a.detail}" for a in acts)
        elif skips:
            reason = "; ".join(f"{s.subject}: {s.reason}" for s in skips)
        else:
            reason = _why_not(name, client, day, settings)
            if creates and name in ("notice", "late_fee", "capture"):
                reason += " (and the invoice this run creates is not due for it yet)"
        lines.append(Explanation(name, bool(acts), reason))
    return lines


def _done_before(rule: str, subjects: list[str]) -> str:
    row = (
        ActionLedger.select()
        .where((ActionLedger.rule == rule) & ActionLedger.subject.in_(subjects))
        .order_by(ActionLedger.created_at.desc())
        .first()
    )
    if row is None:
        return ""
    return f"already done on {row.created_at:%Y-%m-%d} ({row.subject} {row.stage})".replace(
        " )", ")"
    )


def _clocks(unpaid: list[Invoice], client: Client) -> str:
    """What moves the overdue clock of the client's unpaid invoices: one issued after its
    due date counts from its date; one with nothing owing is never chased."""
    notes = []
    owed = balances([i.id for i in unpaid])
    for invoice in unpaid:
        if owed.get(invoice.id, invoice.total) <= 0:
            notes.append(f"invoice #{invoice.number} has nothing owing, so it is not chased")
        elif invoice.date > invoice.due_date:
            notes.append(
                f"invoice #{invoice.number} was issued on {invoice.date}, after its due date "
                f"{invoice.due_date}: notices and the late fee count from {invoice.date}"
            )
    return "; ".join(notes)


def _why_not(rule: str, client: Client, day: dt.date, settings: Settings) -> str:
    """Why ``rule`` had no candidate at all for ``client`` (the run found nothing to act
    on or to skip): the rule switched off, or the facts that keep the client out of its
    query (no unpaid invoice, status locked...), and the ledger's last action."""
    unpaid = list(
        Invoice.select().where(
            (Invoice.client == client.id) & (Invoice.status == InvoiceStatus.UNPAID)
        )
    )
    subjects = [f"invoice:{i.id}" for i in unpaid]
    if rule == "invoice":
        return (
            f"nothing due within {settings.invoice_days_before_due} days that is not "
            "already invoiced"
        )
    if rule == "notice":
        if not unpaid:
            return "no unpaid invoices"
        if client.overdue_notices_disabled:
            reason = "overdue notices disabled for this client (reminders still go)"
        else:
            reason = "no reminder or notice falls due today"
        reason = "; ".join(filter(None, [reason, _clocks(unpaid, client)]))
        done = _done_before(notices.RULE, subjects)
        return f"{reason}; {done}" if done else reason
    if rule == "late_fee":
        off = late_fees.rule_off(settings)
        if off:
            return off
        if client.late_fees_exempt:
            return "client is Late Fees exempt"
        if not unpaid:
            return "no unpaid invoices"
        done = _done_before(late_fees.RULE, subjects)
        reason = done or (
            f"no unpaid invoice is {settings.late_fee_days} days overdue without a fee"
        )
        return "; ".join(filter(None, [reason, _clocks(unpaid, client)]))
    if rule == "capture":
        if client.cc_processing_disabled:
            return "CC processing disabled for this client"
        merchant = [i for i in unpaid if i.payment_method in capture.MERCHANT_GATEWAYS]
        if not merchant:
            return "no unpaid invoice payable through a merchant gateway"
        cards = list(
            StoredCard.select().where(StoredCard.client == client.id).order_by(StoredCard.id.desc())
        )
        if not cards:
            return "no stored card"
        if all(card.expiry < f"{day:%Y-%m}" for card in cards):
            asked = _done_before(capture.CARD_EXPIRED, [f"client:{client.id}"])
            return (
                f"no attempt: every stored card has expired (newest ending {cards[0].last4}, "
                f"expired {cards[0].expiry}); the client is asked once for a new card"
                + (f"; {asked}" if asked else "")
            )
        done = _done_before(capture.RULE, [f"invoice:{i.id}" for i in merchant])
        return done or "not due for capture yet"
    if rule == "status_update":
        if settings.status_update == "off":
            return "status update is off in Automation Settings"
        if client.status_locked:
            return "status locked for this client"
        if client.status == "Closed":
            return "client is Closed"
        return f"status {client.status} already matches the client's products"
    return ""


__all__ = ["Explanation", "explain"]
