"""What every billing rule shares: the business date, the action ledger, the run's tally.

Each automatic action is claimed in the ledger by its unique key (rule, subject,
stage, business date) in the same transaction as its effect; a claim that
already exists means another run did it, so any number of runs act once.

A rule has one implementation: it acts, and says what it did (``RunContext.acted``)
at the point where it does it. The dry run and ``gobiller explain`` are that same run
inside a transaction that is rolled back (``rules.billing.cron.run_cron``), so what
they list is what a run does, by construction.
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from rules.dates import DATE_MAX, DATE_MIN, WINDOW_TEXT
from store.bulk import insert_new_rows
from store.models import ActionLedger, Addon, Domain, Invoice, Service
from store.models.enums import ACTIVE_DOMAIN_STATUSES, ACTIVE_SERVICE_STATUSES, InvoiceStatus
from store.queries import filter_only, rarely
from store.settings import Settings

#: Rows per write transaction: short enough that staff keep working during a run.
CHUNK = 5000


@dataclass(frozen=True, slots=True)
class Action:
    """One thing a run did (rolled back: would do), recorded where the rule does it.

    ``subject`` is what it acted on (``invoice:7``, ``client:3``), ``stage`` the step
    (a notice stage, a new status, an invoice's due date) and ``detail`` says what, in
    words, with money in the currency's format."""

    rule: str
    client_id: int
    subject: str
    stage: str
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {
            "rule": self.rule,
            "client_id": self.client_id,
            "subject": self.subject,
            "stage": self.stage,
            "detail": self.detail,
        }


@dataclass(frozen=True, slots=True)
class Skip:
    """Why a rule left a candidate alone (kept only when asked: ``gobiller explain``)."""

    rule: str
    client_id: int
    subject: str
    reason: str


@dataclass
class RuleTally:
    acted: int = 0
    skipped: int = 0
    failed: int = 0
    seconds: float = 0.0
    errors: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "acted": self.acted,
            "skipped": self.skipped,
            "failed": self.failed,
            "seconds": round(self.seconds, 3),
            "errors": self.errors[:20],
        }


@dataclass
class RunContext:
    """One cron run: the business date, the settings in force (read once per run), the
    merchant gateways to charge through, and what the run did.

    Rules never ask whether they are rolled back: a dry run differs only in the
    gateways (recorders) and in the transaction around it."""

    business_date: dt.date
    settings: Settings
    run_id: int | None = None
    #: When set, only these clients are considered (``gobiller explain``).
    client_ids: Sequence[int] | None = None
    #: Gateway name -> gateway; None means ``rules.billing.gateways.MERCHANT_GATEWAYS``.
    gateways: dict[str, Any] | None = None
    actions: list[Action] = field(default_factory=list)
    #: Why candidates were left alone; None (the default) keeps none.
    skips: list[Skip] | None = None

    def acted(self, rule: str, client_id: int, subject: str, stage: str, detail: str) -> None:
        """Record one action, where the rule takes it (after its claim was won)."""
        self.actions.append(Action(rule, client_id, subject, stage, detail))

    def skipped(self, rule: str, client_id: int, subject: str, reason: str) -> None:
        """Record why a candidate was left alone (when the run keeps reasons)."""
        if self.skips is not None:
            self.skips.append(Skip(rule, client_id, subject, reason))


def business_date(now_utc: dt.datetime, settings: Settings) -> tuple[dt.date, bool]:
    """The local date of ``now_utc`` and whether the daily rules are due (at/after the hour)."""
    tz = zoneinfo.ZoneInfo(settings.timezone)
    local = now_utc.replace(tzinfo=dt.UTC).astimezone(tz)
    return local.date(), local.hour >= settings.daily_hour


def next_daily_run(now_utc: dt.datetime, settings: Settings) -> dt.datetime:
    """When the daily rules next act: the coming daily hour in the configured timezone
    (today's if it has not come yet), as an aware local time (PRODUCT.md §3)."""
    tz = zoneinfo.ZoneInfo(settings.timezone)
    local = now_utc.replace(tzinfo=dt.UTC).astimezone(tz)
    day = local.date() if local.hour < settings.daily_hour else local.date() + dt.timedelta(1)
    return dt.datetime.combine(day, dt.time(settings.daily_hour), tzinfo=tz)


def chunks(items: Sequence[Any], size: int = CHUNK) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


LEDGER_COLUMNS = (
    "rule",
    "subject",
    "stage",
    "business_date",
    "run_id",
    "outcome",
    "detail",
    "created_at",
)


def claim(
    ctx: RunContext,
    rule: str,
    keys: Sequence[tuple[str, str, dt.date]],
    outcome: str = "done",
    detail: str = "",
) -> set[tuple[str, str, dt.date]]:
    """Insert ledger rows for ``keys`` (subject, stage, date); return the ones this run won.

    Call inside the transaction of the effect: if the effect rolls back, so does the claim.
    A fixed number of statements whatever the count (``store.bulk.insert_new_rows``).
    """
    if not keys:
        return set()
    stamp = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0).isoformat(" ")
    rows = [
        (rule, subject, stage, day.isoformat(), ctx.run_id, outcome, detail, stamp)
        for subject, stage, day in keys
    ]
    won = insert_new_rows(
        ActionLedger._meta.table_name,
        LEDGER_COLUMNS,
        rows,
        ('"subject"', '"stage"', '"business_date"'),
    )
    return {
        (s, st, d if isinstance(d, dt.date) else dt.date.fromisoformat(str(d))) for s, st, d in won
    }


def in_window(column: Any) -> Any:
    """SQL: ``column`` (a date) lies inside the plausible window of ``rules.dates``; false
    for NULL. Every rule that bills, chases or charges requires it of the dates it acts
    on, so a date that reached the database some other way (an old import, direct SQL)
    never bills a year-0001 period or charges a card for it.

    A guard, not a selection: it never picks the index a query walks
    (``store.queries.filter_only``), so the rule's own narrow condition does."""
    return filter_only(column).between(DATE_MIN, DATE_MAX)


def outside_window(column: Any, among: Any) -> Any:
    """SQL: the rows of ``among`` (a condition on the column an index leads with) whose
    ``column`` (a date, the index's next column) lies outside the plausible window (NULL
    does not): the rows ``in_window`` keeps from the rules.

    Written as SQLite's planner seeks it, with statistics or without: an OR of one
    branch per end of the window, each repeating ``among`` and marked rarely true
    (``store.queries.rarely``), so each is a seek at one end of the index, nearly
    always empty, not a walk of every row of ``among``."""
    return (among & rarely(column < DATE_MIN)) | (among & rarely(column > DATE_MAX))


def dates_outside_window(ctx: RunContext) -> list[str]:
    """One line per active service, addon or domain whose next due date, and per Unpaid
    invoice whose date or due date, lies outside the plausible window: the billing rules
    skip them (``in_window``) and the run reports them as failures to fix. Four queries.
    """
    found: list[str] = []
    billable: list[tuple[str, Any, Any]] = [
        ("service", Service, Service.status.in_(ACTIVE_SERVICE_STATUSES)),
        ("addon", Addon, Addon.status.in_(ACTIVE_SERVICE_STATUSES)),
        ("domain", Domain, Domain.status.in_(ACTIVE_DOMAIN_STATUSES)),
    ]
    for kind, model, active in billable:
        query = model.select(model.id, model.client, model.next_due_date).where(
            outside_window(model.next_due_date, active)
        )
        if ctx.client_ids is not None:
            query = query.where(model.client.in_(list(ctx.client_ids)))
        for id_, client_id, due in query.tuples():
            found.append(
                f"{kind} {id_} of client {client_id}: next due date {due} is not {WINDOW_TEXT}; "
                "not invoiced until it is corrected"
            )
    unpaid = Invoice.status == InvoiceStatus.UNPAID
    invoices: Any = Invoice.select(
        Invoice.id, Invoice.client, Invoice.date, Invoice.due_date
    ).where(outside_window(Invoice.date, unpaid) | outside_window(Invoice.due_date, unpaid))
    if ctx.client_ids is not None:
        invoices = invoices.where(Invoice.client.in_(list(ctx.client_ids)))
    for id_, client_id, issued, due in invoices.tuples():
        found.append(
            f"invoice {id_} of client {client_id}: date {issued} / due date {due} is not "
            f"{WINDOW_TEXT}; no reminder, notice, late fee or capture until it is corrected"
        )
    return found
