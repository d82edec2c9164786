"""``gobiller cron``: every billing rule for one business date, then the outbox.

Rules run in a fixed order (invoices first, so a reminder can follow on the same
day), each set-based and chunked; every run is recorded for ``cron status``. The first
daily run of each business date checks the SQLite file first and refuses a damaged
one before writing anything.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from rules.billing import capture, invoicing, late_fees, notices, status_update
from rules.billing.automation import (
    PlannedAction,
    RuleTally,
    RunContext,
    dates_outside_window,
    next_daily_run,
)
from rules.errors import DatabaseBusy, busy_is_refusal
from rules.mail.delivery import FlushResult
from store.db import is_sqlite, quick_check, writer
from store.faults import CorruptDatabase, LockTimeout
from store.models import CronRun, utcnow
from store.settings import Settings

RULES: dict[str, Callable[[RunContext], RuleTally]] = {
    "invoice": invoicing.run,
    "notice": notices.run,
    "late_fee": late_fees.run,
    "capture": capture.run,
    "status_update": status_update.run,
}
RULE_NAMES = tuple(RULES)
#: The summary entry that lists dates outside the plausible window (``rules.dates``).
DATE_CHECK = "date_check"


@dataclass
class CronSummary:
    business_date: dt.date
    dry_run: bool
    daily_due: bool
    rules: dict[str, RuleTally] = field(default_factory=dict)
    plan: list[PlannedAction] = field(default_factory=list)
    mail: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    run_id: int | None = None
    #: Before the daily hour: when the daily rules will run (aware local time).
    daily_next: dt.datetime | None = None
    #: Whether this run checked the SQLite file with ``PRAGMA quick_check`` first.
    quick_check: bool = False

    @property
    def failed(self) -> int:
        mail = int(self.mail.get("failed", 0)) + bool(self.mail.get("session_error"))
        return sum(t.failed for t in self.rules.values()) + mail

    def as_dict(self) -> dict[str, Any]:
        return {
            "business_date": self.business_date.isoformat(),
            "dry_run": self.dry_run,
            "daily_rules_due": self.daily_due,
            "daily_rules_next": self.daily_next.isoformat() if self.daily_next else None,
            "rules": {name: t.as_dict() for name, t in self.rules.items()},
            "mail": self.mail,
            "seconds": round(self.seconds, 3),
            "outcome": "failed" if self.failed else "ok",
            "run_id": self.run_id,
            "quick_check": self.quick_check,
        }


def run_rules(
    business_date: dt.date,
    settings: Settings,
    *,
    dry_run: bool = False,
    only: tuple[str, ...] = RULE_NAMES,
    daily_due: bool = True,
    client_ids: list[int] | None = None,
    progress: Callable[[str], None] | None = None,
) -> CronSummary:
    """Run the chosen rules; record the run unless it is a dry run.

    ``daily_due`` False (a run before the daily hour) runs no rule: the summary says
    when they will (``daily_next``) and the run is recorded as not daily, so ``cron
    status`` notices a schedule that never reaches the daily hour.

    Call it holding the cron lock (``store.locks.cron_lock``): a run still recorded as
    running is then one that died, and is recorded as crashed. The first daily run of a
    business date on SQLite runs ``PRAGMA quick_check`` before writing anything.

    Raises ``store.faults.CorruptDatabase`` when that check finds damage (nothing was
    written), ``rules.errors.DatabaseBusy`` when another writer held the lock too long,
    and the store's other faults (``DiskFull``...) as they come: each transaction is
    whole or absent, and a rerun completes what was left.
    """
    started = time.perf_counter()
    summary = CronSummary(business_date, dry_run, daily_due)
    if not daily_due:
        summary.daily_next = next_daily_run(utcnow(), settings)
    ctx = RunContext(business_date, settings, dry_run=dry_run, client_ids=client_ids)
    if not dry_run:
        checked = _check_file(business_date) if daily_due else False
        with busy_is_refusal(), writer():
            CronRun.update(outcome="crashed").where(CronRun.outcome == "running").execute()
            run = CronRun.create(
                business_date=business_date,
                pid=os.getpid(),
                daily_rules=daily_due,
                quick_check=checked,
            )
        ctx.run_id = summary.run_id = run.id
        summary.quick_check = checked
    try:
        if daily_due:
            # Defence in depth: the rules skip dates outside the plausible window; the run
            # names them and fails (exit 1) so that someone corrects them.
            bad_dates = dates_outside_window(ctx)
            if bad_dates:
                summary.rules[DATE_CHECK] = RuleTally(failed=len(bad_dates), errors=bad_dates)
            for name in only:
                if progress:
                    progress(name)
                rule_started = time.perf_counter()
                tally = RULES[name](ctx)
                tally.seconds = time.perf_counter() - rule_started
                summary.rules[name] = tally
    except LockTimeout as exc:
        if not dry_run:
            _record_crash(summary)
        raise DatabaseBusy(str(exc)) from exc
    except BaseException:
        if not dry_run:
            _record_crash(summary)
        raise
    summary.plan = ctx.plan
    summary.seconds = time.perf_counter() - started
    return summary


def _check_file(business_date: dt.date) -> bool:
    """Run SQLite's quick_check unless a run already did for ``business_date``; return
    whether it ran. Raises ``CorruptDatabase`` with what it found."""
    if not is_sqlite():
        return False
    done = CronRun.select().where((CronRun.business_date == business_date) & CronRun.quick_check)
    if done.exists():
        return False
    problems = quick_check()
    if problems:
        raise CorruptDatabase(
            f"the database file is damaged (SQLite quick_check found {len(problems)} "
            f"problem(s), first: {problems[0]}); nothing was run: restore the last backup"
        )
    return True


def _record_crash(summary: CronSummary) -> None:
    """Record the run as crashed if the database lets us; when it cannot (busy, full),
    the next run does (a run still "running" under the cron lock is a dead one)."""
    try:
        finish(summary, outcome="crashed")
    except Exception:  # the error that ended the run is the one to report
        pass


def finish(summary: CronSummary, outcome: str | None = None) -> None:
    """Record the end of a run (after the outbox flush, whose result it includes)."""
    if summary.run_id is None:
        return
    with writer():
        CronRun.update(
            finished_at=utcnow(),
            outcome=outcome or ("failed" if summary.failed else "ok"),
            counts=json.dumps(summary.as_dict()),
        ).where(CronRun.id == summary.run_id).execute()


def flush_and_finish(summary: CronSummary, flush: Callable[[], FlushResult] | None) -> None:
    """The outbox flush that ends a run, then the run's record; a flush that raises
    still records the run (as crashed) before the error goes on."""
    try:
        if flush is not None:
            with busy_is_refusal():
                result = flush()
            summary.mail = {
                "sent": result.sent,
                "retried": result.retried,
                "failed": result.failed,
                "skipped": result.skipped,
                "deferred": result.deferred,
                "session_error": result.session_error,
                "errors": result.errors[:20],
            }
    except BaseException:
        _record_crash(summary)
        raise
    with busy_is_refusal():
        finish(summary)


def recent_runs(limit: int = 20) -> list[CronRun]:
    return list(
        CronRun.select().order_by(CronRun.started_at.desc(), CronRun.id.desc()).limit(limit)
    )


@dataclass(frozen=True)
class DailyHealth:
    """Whether the daily rules ran in the last 24 hours (WHMCS's Automation Status), and
    a one-line message saying so or why not."""

    ok: bool
    message: str
    last_daily: CronRun | None
    #: Whether any run (daily or early) finished within the window.
    finished_recently: bool = True


def daily_health(
    now_utc: dt.datetime, settings: Settings, within: dt.timedelta = dt.timedelta(hours=24)
) -> DailyHealth:
    """The health of the billing schedule at ``now_utc`` (naive UTC): ok when a run that
    ran the daily rules finished within ``within``. Otherwise the message says why: no
    run finished at all, or every run came before the daily hour (PRODUCT.md §3: `cron
    status` exits 1 then too). Two queries."""
    since = now_utc - within
    finished = CronRun.finished_at.is_null(False)
    last_daily = (
        CronRun.select()
        .where(finished & CronRun.daily_rules)
        .order_by(CronRun.finished_at.desc())
        .first()
    )
    if last_daily is not None and last_daily.finished_at >= since:
        return DailyHealth(
            True,
            f"the daily rules last ran at {last_daily.finished_at:%Y-%m-%d %H:%M} UTC "
            f"(business date {last_daily.business_date})",
            last_daily,
        )
    early = CronRun.select().where(finished & (CronRun.finished_at >= since)).count()
    hours = int(within.total_seconds() // 3600)
    when = f"last at {last_daily.finished_at:%Y-%m-%d %H:%M} UTC" if last_daily else "never so far"
    if early:
        why = (
            f"the {early} run(s) in that time all started before the daily hour "
            f"({settings.daily_hour:02d}:00 {settings.timezone}), when the daily rules wait; "
            "schedule the cron at or after that hour (e.g. every 5 minutes)"
        )
    else:
        why = "no cron run finished in that time: check the crontab"
    return DailyHealth(
        False,
        f"the daily rules have not run for more than {hours} hours ({when}): {why}",
        last_daily,
        finished_recently=bool(early),
    )
