"""``gobiller doctor``: is this installation healthy? One line per check.

Each check says OK, WARN (needs attention, nothing is broken yet) or FAIL (something is
broken), with the reason. A check that raises becomes FAIL with the error's one-line
reason; the others still run. Issue 10, "Also deliver: Operations commands" (integrity
check, migrations current, last cron run and lock state, failed emails, file
permissions, settings sanity); the staff app can show the same list.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

from store.config import Config

__all__ = ["OK", "WARN", "FAIL", "Check", "run_checks", "healthy"]

OK, WARN, FAIL = "OK", "WARN", "FAIL"

#: A queued email whose attempt time passed this long ago is stuck: every cron run (at
#: least daily) flushes the outbox.
STUCK_AFTER = dt.timedelta(hours=1)
#: The detail of a check that needs the database when it could not be opened or read.
SKIPPED = "not checked: the database could not be opened or read (see integrity)"


@dataclass(frozen=True)
class Check:
    """One check's outcome: ``status`` is OK, WARN or FAIL; ``detail`` one line."""

    name: str
    status: str
    detail: str

    def as_dict(self) -> dict[str, str]:
        return asdict(self)


def healthy(checks: list[Check]) -> bool:
    """Whether nothing needs attention (every check OK)."""
    return all(c.status == OK for c in checks)


def _one_line(exc: BaseException) -> str:
    from store.faults import fault_of

    fault = fault_of(exc)
    text = " ".join(str(fault or exc).split()) or type(exc).__name__
    return text if fault is not None else f"{type(exc).__name__}: {text}"


def _guarded(name: str, check: Callable[[], tuple[str, str]]) -> Check:
    try:
        status, detail = check()
    except Exception as exc:  # a check must never stop the others, nor show a traceback
        return Check(name, FAIL, _one_line(exc))
    return Check(name, status, " ".join(detail.split()))  # one line, whatever it quotes


def _open(config: Config) -> tuple[str, str]:
    """Open the database without creating or upgrading it."""
    from store.db import _sqlite_path, database, open_database

    url = config.database_url
    if url.startswith("sqlite"):
        path = _sqlite_path(url)
        if path and path != ":memory:" and not Path(path).expanduser().exists():
            return FAIL, f"the database file {path} does not exist (gobiller db upgrade creates it)"
    if database.obj is None or database.obj.is_closed():
        open_database(url, create_dirs=False)
    return OK, ""


def _integrity() -> tuple[str, str]:
    from store.db import database, is_sqlite, quick_check

    if not is_sqlite():
        database.execute_sql("SELECT 1").fetchone()
        return OK, "connected to the PostgreSQL server"
    problems = quick_check()
    if problems:
        return FAIL, (
            f"SQLite quick_check found {len(problems)} problem(s), first: {problems[0]}; "
            "restore the last backup"
        )
    return OK, "SQLite quick_check: ok"


def _migrations() -> tuple[str, str]:
    from store.migrate import SchemaMismatch, check_schema, check_tables, status

    try:
        check_schema()
    except SchemaMismatch as exc:
        return FAIL, str(exc)
    states = status()
    waiting = [m.name for m in states if not m.applied]
    if waiting:
        return WARN, (
            f"{len(waiting)} migration(s) pending ({', '.join(waiting)}): run gobiller db upgrade"
        )
    try:
        check_tables()
    except SchemaMismatch as exc:
        return FAIL, str(exc)
    return OK, f"all {len(states)} migrations applied"


def _cron_runs(now_utc: dt.datetime) -> tuple[str, str]:
    from rules.billing.cron import daily_health
    from store.settings import load_settings

    health = daily_health(now_utc, load_settings())
    return (OK if health.ok else WARN), health.message


def _cron_lock() -> tuple[str, str]:
    from store.locks import cron_running
    from store.models import CronRun

    last = CronRun.select().order_by(CronRun.started_at.desc(), CronRun.id.desc()).first()
    if cron_running():
        since = f" (run {last.id} started {last.started_at:%Y-%m-%d %H:%M} UTC)" if last else ""
        return OK, f"a cron is running now{since}"
    if last is not None and last.outcome == "running":
        return WARN, (
            f"run {last.id} (started {last.started_at:%Y-%m-%d %H:%M} UTC) never finished and "
            "holds no lock: it was killed; the next run completes its work"
        )
    return OK, "no cron is running"


def _outbox(now_utc: dt.datetime) -> tuple[str, str]:
    from store.models import Email
    from store.models.enums import EmailStatus

    mine = Email.select().where(~Email.imported)  # imported history is never delivered here
    failed = mine.where(Email.status == EmailStatus.FAILED).count()
    stuck = mine.where(
        Email.status.in_([EmailStatus.QUEUED, EmailStatus.SENDING])
        & (Email.next_attempt_at < now_utc - STUCK_AFTER)
    ).count()
    problems = []
    if failed:
        problems.append(f"{failed} failed email(s) (gobiller mail list --status failed)")
    if stuck:
        problems.append(
            f"{stuck} queued email(s) past their attempt time by more than "
            f"{int(STUCK_AFTER.total_seconds() // 60)} minutes (is the cron running? "
            "gobiller mail flush)"
        )
    if problems:
        return WARN, "; ".join(problems)
    return OK, "no failed or stuck emails"


def _permissions(config: Config) -> tuple[str, str]:
    from store.permissions import check_permissions

    problems = check_permissions(config)
    if problems:
        return WARN, "; ".join(p.message for p in problems)
    return OK, "no GoBiller file or folder is readable by others"


def _settings() -> tuple[str, str]:
    from store.models import Currency, Setting
    from store.settings import (
        SETTING_NAMES,
        Settings,
        SettingsError,
        load_settings,
        validate_setting,
    )

    problems: list[str] = []
    for row in Setting.select():
        if row.key not in SETTING_NAMES:
            continue  # not read by this version (load_settings ignores it too)
        try:
            validate_setting(row.key, json.loads(row.value))
        except (SettingsError, ValueError) as exc:
            problems.append(f"stored setting {exc}")
    if problems:
        return FAIL, "; ".join(problems)
    settings, default = load_settings(), Settings()
    if settings.company_email == default.company_email:
        problems.append(
            f"company_email is still the default {default.company_email}: mail goes out "
            "from an address nobody reads"
        )
    if settings.system_url == default.system_url:
        problems.append(
            f"system_url is still the default {default.system_url}: links in emails lead nowhere"
        )
    defaults = Currency.select().where(Currency.is_default).count()
    if defaults != 1:
        problems.append(
            "no default currency" if not defaults else f"{defaults} currencies marked default"
        )
    fee = settings.late_fee_decimal
    if settings.late_fee_type == "percentage" and fee > 100:
        problems.append(f"late_fee_amount {fee}% is more than the invoice itself")
    if settings.late_fee_type == "fixed" and settings.late_fee_minimum_decimal > 0:
        problems.append(
            "late_fee_minimum applies to percentage late fees only, but late_fee_type is fixed"
        )
    if settings.late_fee_type == "percentage" and fee == 0 and settings.late_fee_minimum_decimal:
        problems.append("late_fee_amount is 0% but late_fee_minimum charges a fee anyway")
    if problems:
        return WARN, "; ".join(problems)
    return OK, (
        f"timezone {settings.timezone}, daily rules at {settings.daily_hour:02d}:00, "
        f"mail from {settings.company_email}"
    )


def run_checks(config: Config, now_utc: dt.datetime | None = None) -> list[Check]:
    """Every check, in order: integrity, migrations, cron runs, cron lock, outbox,
    permissions, settings. Opens the database of ``config`` if none is open (never
    creates nor upgrades it); when it cannot be opened, the checks that need it FAIL
    with that reason. ``now_utc`` is naive UTC (default: now). A few queries each;
    quick_check reads the whole SQLite file. Never raises.
    """
    from store.models import utcnow

    now = now_utc or utcnow()
    opened = _guarded("integrity", lambda: _open(config))
    db_checks: list[tuple[str, Callable[[], tuple[str, str]]]] = [
        ("integrity", _integrity),
        ("migrations", _migrations),
        ("cron runs", lambda: _cron_runs(now)),
        ("cron lock", _cron_lock),
        ("outbox", lambda: _outbox(now)),
    ]
    checks: list[Check] = []
    for name, check in db_checks:
        if opened.status != OK:
            checks.append(opened if name == "integrity" else Check(name, FAIL, SKIPPED))
            continue
        result = _guarded(name, check)
        checks.append(result)
        if name == "integrity" and result.status == FAIL:
            opened = Check(name, FAIL, result.detail)  # a damaged file: read no further
    checks.append(_guarded("permissions", lambda: _permissions(config)))
    if opened.status == OK:
        checks.append(_guarded("settings", _settings))
    else:
        checks.append(Check("settings", FAIL, SKIPPED))
    return checks
