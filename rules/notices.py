"""The Invoice Payment Reminder and the First/Second/Third Overdue Notices.

For each unpaid invoice only the latest stage now due is sent, never a backlog:
a run that missed the reminder and the first notice sends the second. Each
stage is claimed with the date it fell due, so it goes once whatever the runs.
The reminder goes even to clients with Don't Send Overdue Emails; the overdue
notices do not.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from rules.automation import PlannedAction, RuleTally, RunContext, chunks, claim
from rules.mail import Notice, queue
from store.db import writer
from store.models import Client, Invoice
from store.models.enums import InvoiceStatus

RULE = "notice"
STAGES = ("reminder", "first", "second", "third")
TEMPLATES = {
    "reminder": "Invoice Payment Reminder",
    "first": "First Invoice Overdue Notice",
    "second": "Second Invoice Overdue Notice",
    "third": "Third Invoice Overdue Notice",
}
#: Notices are sent for stages that fell due at most this long ago (a long-stopped cron
#: does not wake up to send notices for invoices months overdue).
LOOKBACK_DAYS = 30


def stage_dates(due: dt.date, ctx: RunContext) -> dict[str, dt.date]:
    """When each enabled stage falls due for an invoice due on ``due``."""
    s = ctx.settings
    dates: dict[str, dt.date] = {}
    if s.payment_reminder_days:
        dates["reminder"] = due - dt.timedelta(days=s.payment_reminder_days)
    for stage, days in zip(STAGES[1:], s.overdue_notice_days, strict=True):
        if days:
            dates[stage] = due + dt.timedelta(days=days)
    return dates


def latest_stage(due: dt.date, ctx: RunContext) -> tuple[str, dt.date] | None:
    """The latest stage whose date has come, or None."""
    today = ctx.business_date
    passed = [(d, stage) for stage, d in stage_dates(due, ctx).items() if d <= today]
    if not passed:
        return None
    day, stage = max(passed)
    if (today - day).days > LOOKBACK_DAYS:
        return None
    return stage, day


def candidates(ctx: RunContext) -> list[tuple[int, int, dt.date, bool]]:
    """Unpaid invoices in the notice window: (invoice, client, due, notices disabled)."""
    s = ctx.settings
    longest = max([*s.overdue_notice_days, 0]) + LOOKBACK_DAYS
    query: Any = (
        Invoice.select(
            Invoice.id, Invoice.client, Invoice.due_date, Client.overdue_notices_disabled
        )
        .join(Client)
        .where(
            (Invoice.status == InvoiceStatus.UNPAID)
            & (Invoice.due_date <= ctx.business_date + dt.timedelta(days=s.payment_reminder_days))
            & (Invoice.due_date >= ctx.business_date - dt.timedelta(days=longest))
        )
    )
    if ctx.client_ids is not None:
        query = query.where(Invoice.client.in_(list(ctx.client_ids)))
    return [
        (i, c, d if isinstance(d, dt.date) else dt.date.fromisoformat(str(d)), bool(off))
        for i, c, d, off in query.tuples()
    ]


def run(ctx: RunContext) -> RuleTally:
    tally = RuleTally()
    due: list[tuple[int, int, str, dt.date]] = []
    for invoice_id, client_id, due_date, disabled in candidates(ctx):
        found = latest_stage(due_date, ctx)
        if found is None:
            continue
        stage, day = found
        if stage != "reminder" and disabled:
            tally.skipped += 1  # Don't Send Overdue Emails
            continue
        due.append((invoice_id, client_id, stage, day))
    if ctx.dry_run:
        done = _already(ctx, due)
        for invoice_id, client_id, stage, day in due:
            if (f"invoice:{invoice_id}", stage, day) in done:
                tally.skipped += 1
                continue
            ctx.planned(
                PlannedAction(
                    RULE, client_id, f"invoice:{invoice_id}", stage, f"send {TEMPLATES[stage]!r}"
                )
            )
            tally.acted += 1
        return tally
    for batch in chunks(due):
        with writer():
            won = claim(ctx, RULE, [(f"invoice:{i}", stage, day) for i, _, stage, day in batch])
            by_stage: dict[str, list[Notice]] = {}
            for invoice_id, client_id, stage, day in batch:
                if (f"invoice:{invoice_id}", stage, day) not in won:
                    tally.skipped += 1
                    continue
                by_stage.setdefault(stage, []).append(
                    Notice(client_id, invoice_id, unique_key=f"notice:{invoice_id}:{stage}:{day}")
                )
            for stage, notices in by_stage.items():
                queued = queue(TEMPLATES[stage], notices)  # none when the template is disabled
                tally.acted += queued
                tally.skipped += len(notices) - queued
    return tally


def _already(ctx: RunContext, due: list[tuple[int, int, str, dt.date]]) -> set[Any]:
    """Ledger keys already claimed (for the dry-run plan)."""
    from store.models import ActionLedger

    subjects = [f"invoice:{i}" for i, *_ in due]
    found: set[Any] = set()
    for batch in chunks(subjects, 10_000):
        rows: Any = (
            ActionLedger.select(
                ActionLedger.subject, ActionLedger.stage, ActionLedger.business_date
            )
            .where((ActionLedger.rule == RULE) & ActionLedger.subject.in_(list(batch)))
            .tuples()
        )
        for subject, stage, day in rows:
            found.add(
                (
                    subject,
                    stage,
                    day if isinstance(day, dt.date) else dt.date.fromisoformat(str(day)),
                )
            )
    return found
