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

from peewee import SQL, Value, fn

from rules.billing.automation import RuleTally, RunContext, chunks, claim, in_window
from rules.mail.outbox import Notice, queue
from store.db import database, is_postgres, writer
from store.models import ActionLedger, Client, Invoice
from store.models.enums import InvoiceStatus
from store.queries import balance_due, overdue_from

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


def stage_offsets(ctx: RunContext) -> dict[str, int]:
    """Each enabled stage's day relative to the due date (the reminder is before it)."""
    s = ctx.settings
    offsets: dict[str, int] = {}
    if s.payment_reminder_days:
        offsets["reminder"] = -s.payment_reminder_days
    for stage, days in zip(STAGES[1:], s.overdue_notice_days, strict=True):
        if days:
            offsets[stage] = days
    return offsets


def stage_dates(due: dt.date, ctx: RunContext, issued: dt.date | None = None) -> dict[str, dt.date]:
    """When each enabled stage falls due for an invoice due on ``due`` and dated
    ``issued`` (business dates).

    Overdue notices count from the later of the two (an invoice is never overdue to a
    client before it was issued, PRODUCT.md §3); the reminder comes before the due date
    and only when the invoice existed by then (otherwise "Invoice Created" told the
    client already).
    """
    start = max(due, issued) if issued else due
    dates = {}
    for stage, offset in stage_offsets(ctx).items():
        if offset < 0:
            day = due + dt.timedelta(days=offset)
            if issued is None or day >= issued:
                dates[stage] = day
        else:
            dates[stage] = start + dt.timedelta(days=offset)
    return dates


def latest_stage(
    due: dt.date, ctx: RunContext, issued: dt.date | None = None
) -> tuple[str, dt.date] | None:
    """The latest stage whose date has come, or None."""
    today = ctx.business_date
    passed = [(d, stage) for stage, d in stage_dates(due, ctx, issued).items() if d <= today]
    if not passed:
        return None
    day, stage = max(passed)
    if (today - day).days > LOOKBACK_DAYS:
        return None
    return stage, day


def stage_windows(ctx: RunContext) -> list[tuple[str, int, dt.date, dt.date]]:
    """(stage, offset, first date, last date): the invoices whose latest stage come by
    the business date is ``stage`` (within the lookback), as ranges of the date the
    stage counts from (the overdue clock's start; for the reminder, the due date).

    The same answer as ``latest_stage`` for every due date, in a form SQL can filter
    on: stage ``s`` with offset ``o`` is the latest for ``k = today - due`` from ``o``
    up to the next larger offset (or the lookback), so one range per stage.
    """
    today = ctx.business_date
    offsets = sorted((o, stage) for stage, o in stage_offsets(ctx).items())
    windows = []
    for n, (offset, stage) in enumerate(offsets):
        later = [o for o, _ in offsets[n + 1 :]]
        if later and later[0] == offset:
            continue  # a stage on the same day sorts after this one and wins
        last_k = min(later[0] - 1, offset + LOOKBACK_DAYS) if later else offset + LOOKBACK_DAYS
        windows.append(
            (stage, offset, today - dt.timedelta(days=last_k), today - dt.timedelta(days=offset))
        )
    return windows


def _plus_days(field: Any, days: int) -> Any:
    """``field + days`` as a date, in the database's dialect."""
    if is_postgres():
        return field + days
    return fn.date(field, f"{days:+d} days")


def candidates(ctx: RunContext) -> list[tuple[int, int, str, dt.date, bool]]:
    """(invoice, client, stage, stage date, notices disabled) for every Unpaid invoice
    still owing whose latest stage has come and is not in the ledger yet: one query per
    stage, however many invoices are open."""
    found: list[tuple[int, int, str, dt.date, bool]] = []
    since = overdue_from()
    for stage, offset, first, last in stage_windows(ctx):
        if offset < 0:  # the reminder: on the due date's clock, for invoices issued by then
            base = Invoice.due_date
            window = Invoice.due_date.between(first, last) & (
                Invoice.date <= _plus_days(Invoice.due_date, offset)
            )
        else:  # either date may be the later: each branch is an index range
            base = since
            window = (
                (Invoice.due_date.between(first, last) & (Invoice.date <= last))
                | (Invoice.date.between(first, last) & (Invoice.due_date <= last))
            ) & since.between(first, last)
        day = _plus_days(base, offset)
        ledger = ActionLedger.alias()
        done = ledger.select(SQL("1")).where(
            (ledger.rule == RULE)
            & (ledger.subject == Value("invoice:").concat(Invoice.id))
            & (ledger.stage == stage)
            & (ledger.business_date == day)
        )
        query: Any = (
            Invoice.select(Invoice.id, Invoice.client, base, Client.overdue_notices_disabled)
            .join(Client)
            .where(
                (Invoice.status == InvoiceStatus.UNPAID)
                & window
                & in_window(Invoice.due_date)
                & in_window(Invoice.date)
                & ~fn.EXISTS(done)
                & (balance_due() > 0)
            )
        )
        if ctx.client_ids is not None:
            query = query.where(Invoice.client.in_(list(ctx.client_ids)))
        cursor = database.execute(query)
        for invoice_id, client_id, start, disabled in cursor.fetchall():
            start = start if isinstance(start, dt.date) else dt.date.fromisoformat(start)
            found.append(
                (invoice_id, client_id, stage, start + dt.timedelta(days=offset), bool(disabled))
            )
    return found


def run(ctx: RunContext) -> RuleTally:
    """Claim and queue the latest stage due of each unpaid invoice (a fixed number of
    queries: one per stage to find them, then per chunk a claim and a queue per stage)."""
    tally = RuleTally()
    due: list[tuple[int, int, str, dt.date]] = []
    for invoice_id, client_id, stage, day, disabled in candidates(ctx):
        if stage != "reminder" and disabled:
            tally.skipped += 1  # Don't Send Overdue Emails
            ctx.skipped(
                RULE,
                client_id,
                f"invoice:{invoice_id}",
                f"{TEMPLATES[stage]!r} not sent: overdue notices disabled for this client "
                "(reminders still go)",
            )
            continue
        due.append((invoice_id, client_id, stage, day))
    for batch in chunks(due):
        with writer():
            won = claim(ctx, RULE, [(f"invoice:{i}", stage, day) for i, _, stage, day in batch])
            by_stage: dict[str, list[Notice]] = {}
            for invoice_id, client_id, stage, day in batch:
                if (f"invoice:{invoice_id}", stage, day) not in won:
                    tally.skipped += 1
                    ctx.skipped(
                        RULE, client_id, f"invoice:{invoice_id}", f"{stage} for {day} already sent"
                    )
                    continue
                by_stage.setdefault(stage, []).append(
                    Notice(client_id, invoice_id, unique_key=f"notice:{invoice_id}:{stage}:{day}")
                )
            for stage, notices in by_stage.items():
                # None when the template is disabled; a notice already in the outbox (same
                # key) is not queued twice.
                queued = queue(TEMPLATES[stage], notices, settings=ctx.settings)
                tally.acted += queued
                tally.skipped += len(notices) - queued
                for notice in notices if queued else ():
                    ctx.acted(
                        RULE,
                        notice.client_id,
                        f"invoice:{notice.invoice_id}",
                        stage,
                        f"send {TEMPLATES[stage]!r}",
                    )
                if not queued:
                    for notice in notices:
                        ctx.skipped(
                            RULE,
                            notice.client_id,
                            f"invoice:{notice.invoice_id}",
                            f"{TEMPLATES[stage]!r} not queued: the template is disabled "
                            "(or the email is already in the outbox)",
                        )
    return tally
