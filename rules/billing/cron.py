"""``gobiller cron``: every billing rule for one business date, then the outbox.

``run_cron`` is the one use case behind ``gobiller cron``, its dry run, ``gobiller
explain`` and the staff app's Automation screen: it reads the settings once, takes the
cron lock, runs the rules in a fixed order (invoices first, so a reminder can follow on
the same day), each set-based and chunked, delivers the outbox and records the run for
``cron status``. The first daily run of each business date checks the SQLite file
first and refuses a damaged one before writing anything.

A dry run is that same run inside one transaction that is rolled back, with the
merchant gateways and the mail transport replaced by recorders: what it lists is what
the run would do, by construction (there is no second, planning implementation).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from rules.billing import capture, invoicing, late_fees, notices, status_update
from rules.billing.automation import (
    Action,
    RuleTally,
    RunContext,
    Skip,
    business_date,
    dates_outside_window,
    next_daily_run,
)
from rules.billing.gateways import Gateway, recording_gateways
from rules.errors import RuleError, database_refusals, refusal_of, transaction
from rules.mail.delivery import FlushResult, RecordingTransport, Transport, flush, transport_for
from store.config import Config
from store.db import is_sqlite, quick_check, writer
from store.faults import CorruptDatabase
from store.locks import cron_lock
from store.models import CronRun, utcnow
from store.settings import Settings, load_settings

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
    """What one run did (a dry run: would do): per rule a tally, every action in the
    order taken, the outbox flush, and the run's record id."""

    business_date: dt.date
    dry_run: bool
    daily_due: bool
    rules: dict[str, RuleTally] = field(default_factory=dict)
    actions: list[Action] = field(default_factory=list)
    #: Why candidates were left alone (kept only when asked: ``gobiller explain``).
    skips: list[Skip] = field(default_factory=list)
    mail: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    run_id: int | None = None
    #: Before the daily hour: when the daily rules will run (aware local time).
    daily_next: dt.datetime | None = None
    #: Whether this run checked the SQLite file with ``PRAGMA quick_check`` first.
    quick_check: bool = False
    #: How long that check took (seconds; 0.0 when it did not run). It reads the whole
    #: file: at 1M clients (3.6 GB) it is most of a day's run.
    check_seconds: float = 0.0

    @property
    def failed(self) -> int:
        mail = int(self.mail.get("failed", 0)) + bool(self.mail.get("session_error"))
        return sum(t.failed for t in self.rules.values()) + mail

    def as_dict(self) -> dict[str, Any]:
        """The summary as recorded in ``cron_run.counts`` (the actions are not: a run
        can take millions; ``actions_as_dicts`` lists them)."""
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
            "quick_check_seconds": round(self.check_seconds, 6),
        }

    def actions_as_dicts(self) -> list[dict[str, Any]]:
        return [a.as_dict() for a in self.actions]


class _RollBack(Exception):
    """Ends the dry run's transaction (never escapes ``rolled_back``)."""


@contextmanager
def rolled_back() -> Iterator[None]:
    """One write transaction around the block, always rolled back at its end: the
    block's own transactions become savepoints inside it, so nothing it writes lasts
    (rows, ledger claims, the invoice number sequence, which is a table row). Only
    PostgreSQL's id sequences move on (``setval`` is not transactional): ids may skip,
    invoice numbers never do. On SQLite the block holds the write lock throughout."""
    try:
        with writer():
            yield
            raise _RollBack
    except _RollBack:
        pass


def run_cron(
    *,
    settings: Settings | None = None,
    config: Config | None = None,
    day: dt.date | None = None,
    only: Sequence[str] = RULE_NAMES,
    dry_run: bool = False,
    client_ids: Sequence[int] | None = None,
    deliver: bool = True,
    reasons: bool = False,
    progress: Callable[[str], None] | None = None,
    now_utc: dt.datetime | None = None,
) -> CronSummary:
    """One cron run: the use case ``gobiller cron`` and the Automation screen call.

    ``settings`` are those in force (read here, once, when not given); ``config`` the
    configuration the outbox is delivered through (``[smtp]`` or the Maildir: nothing
    is delivered without it, nor with ``deliver`` False). ``day`` runs that business
    date in full; without it the date is today in the configured timezone (``now_utc``,
    naive UTC, default the clock) and the daily rules wait for the daily hour (PRODUCT.md
    §3). ``only`` names the rules to run, in their fixed order. ``client_ids`` restricts
    every rule to those clients (``gobiller explain``); ``reasons`` keeps why each
    candidate was left alone (``CronSummary.skips``). ``progress`` is told each step.

    ``dry_run``: the same run inside a transaction rolled back at the end, with the
    merchant gateways and the mail transport replaced by recorders; its run record,
    ledger claims, emails and invoice numbers are rolled back with it.

    Raises ``RuleError`` for an unknown rule name, ``store.locks.AlreadyRunning`` /
    ``LockUnavailable`` when the cron lock is held or cannot be taken,
    ``store.faults.CorruptDatabase`` when the day's first check finds damage (nothing
    written), ``rules.errors.DatabaseBusy`` when another writer held the lock too long,
    and the store's other faults (``DiskFull``...) as they come.
    """
    unknown = [name for name in only if name not in RULES]
    if unknown:
        raise RuleError(
            f"unknown rule(s) {', '.join(unknown)}; choose from {', '.join(RULE_NAMES)}"
        )
    only = tuple(name for name in RULE_NAMES if name in only)
    settings = settings if settings is not None else load_settings()
    if day is None:
        day, daily_due = business_date(now_utc or utcnow(), settings)
    else:
        daily_due = True
    transport: Transport | None = None
    gateways: dict[str, Gateway] | None = None
    if dry_run:
        transport = RecordingTransport() if deliver else None
        gateways = recording_gateways()
    elif deliver and config is not None:
        transport = transport_for(config, settings)

    def deliver_with(transport: Transport) -> Callable[[], FlushResult]:
        def deliver_outbox() -> FlushResult:
            if progress:
                progress("mail")
            return flush(transport, settings=settings)

        return deliver_outbox

    def one_run() -> CronSummary:
        summary = run_rules(
            day,
            settings,
            only=only,
            daily_due=daily_due,
            client_ids=client_ids,
            progress=progress,
            gateways=gateways,
            reasons=reasons,
            check_file=not dry_run,
        )
        summary.dry_run = dry_run
        flush_and_finish(summary, deliver_with(transport) if transport is not None else None)
        return summary

    with cron_lock():
        if not dry_run:
            return one_run()
        with database_refusals(), rolled_back():
            summary = one_run()
    return summary


def run_rules(
    business_date: dt.date,
    settings: Settings,
    *,
    only: Sequence[str] = RULE_NAMES,
    daily_due: bool = True,
    client_ids: Sequence[int] | None = None,
    progress: Callable[[str], None] | None = None,
    gateways: dict[str, Gateway] | None = None,
    reasons: bool = False,
    check_file: bool = True,
) -> CronSummary:
    """Record the run, then run the chosen rules (``run_cron`` adds the lock, the outbox
    and the dry run; tests and the benchmark call this part alone).

    ``daily_due`` False (a run before the daily hour) runs no rule: the summary says
    when they will (``daily_next``) and the run is recorded as not daily, so ``cron
    status`` notices a schedule that never reaches the daily hour.

    Call it holding the cron lock (``store.locks.cron_lock``): a run still recorded as
    running is then one that died, and is recorded as crashed. The first daily run of a
    business date on SQLite runs ``PRAGMA quick_check`` before writing anything
    (``check_file``; a dry run writes nothing that lasts and skips it).

    Raises ``store.faults.CorruptDatabase`` when that check finds damage (nothing was
    written), ``rules.errors.DatabaseBusy`` when another writer held the lock too long,
    and the store's other faults (``DiskFull``...) as they come: each transaction is
    whole or absent, and a rerun completes what was left.
    """
    started = time.perf_counter()
    summary = CronSummary(business_date, False, daily_due)
    if not daily_due:
        summary.daily_next = next_daily_run(utcnow(), settings)
    ctx = RunContext(
        business_date,
        settings,
        client_ids=client_ids,
        gateways=gateways,
        skips=[] if reasons else None,
    )
    check_started = time.perf_counter()
    checked = _check_file(business_date) if daily_due and check_file else False
    summary.check_seconds = time.perf_counter() - check_started if checked else 0.0
    with transaction():
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
    except BaseException as exc:
        _record_crash(summary)
        refusal = refusal_of(exc) if isinstance(exc, Exception) else None
        if refusal is not None:
            raise refusal from exc
        raise
    summary.actions = ctx.actions
    summary.skips = ctx.skips or []
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


def flush_and_finish(summary: CronSummary, deliver: Callable[[], FlushResult] | None) -> None:
    """The outbox flush that ends a run, then the run's record; a flush that raises
    still records the run (as crashed) before the error goes on."""
    try:
        if deliver is not None:
            with database_refusals():
                result = deliver()
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
    with database_refusals():
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
