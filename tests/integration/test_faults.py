"""Faults under the cron: a held lock, a second cron through another path, a damaged or
foreign database, a full disk. Each ends in one clear line and a sysexits code, with
nothing half-done and nothing done twice (issue 10). Real processes, real databases."""

from __future__ import annotations

import collections
import datetime as dt
import hashlib
import json
import os
import resource
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from store.db import database, is_postgres
from store.models import CronRun, Email, Invoice, Transaction
from tests.conftest import SmtpRecorder, smtp_controller
from tests.integration.test_cron import DAY, _everything, client, invoice

GOBILLER = [sys.executable, "-m", "tui.cli"]


def gobiller(
    *args: str,
    env: dict[str, str] | None = None,
    preexec_fn: Any = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GOBILLER, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=preexec_fn,
        env={**os.environ, "GOBILLER_SMTP_URL": "", **(env or {})},
    )


def _one_line_error(out: subprocess.CompletedProcess[str], as_json: bool) -> str:
    """The failure's message, checked to be one line and never a traceback."""
    assert "Traceback" not in out.stdout + out.stderr, out.stderr
    if as_json:
        [line] = out.stdout.splitlines()
        return str(json.loads(line)["error"])
    [line] = out.stderr.splitlines()
    assert line.startswith("Error: ")
    return line


@pytest.fixture
def mail_env(tmp_path: Path) -> dict[str, str]:
    """Deliver to a Maildir under tmp_path."""
    return {"XDG_DATA_HOME": str(tmp_path / "data")}


# ------------------------------------------------------------------ a held write lock


class WriteLockHolder:
    """Another program holding the database's write lock: a connection of its own that
    begins a write (SQLite: BEGIN IMMEDIATE; PostgreSQL: EXCLUSIVE locks on the tables)."""

    def __init__(self, url: str, tables: tuple[str, ...] = ("cron_run", "email")) -> None:
        self.url = url
        self.tables = tables
        self.conn: Any = None

    def take(self) -> None:
        if self.url.startswith("sqlite"):
            self.conn = sqlite3.connect(
                urlsplit(self.url).path[1:], isolation_level=None, check_same_thread=False
            )
            self.conn.execute("BEGIN IMMEDIATE")
        else:
            import psycopg2

            self.conn = psycopg2.connect(self.url)
            with self.conn.cursor() as cur:
                cur.execute(f"LOCK TABLE {', '.join(self.tables)} IN EXCLUSIVE MODE")

    def release(self) -> None:
        if self.conn is not None:
            self.conn.rollback()
            self.conn.close()
            self.conn = None


@pytest.mark.slow
def test_a_held_write_lock_makes_the_cron_exit_75_having_done_nothing(
    db: str, mail_env: dict[str, str]
) -> None:
    """Another writer holds the lock longer than the cron waits: one line, exit 75
    (EX_TEMPFAIL), nothing written; the next run does the work."""
    _everything()
    holder = WriteLockHolder(db)
    holder.take()
    try:
        started = time.monotonic()
        busy = gobiller("--database", db, "cron", "--date", DAY.isoformat(), "--json", env=mail_env)
        waited = time.monotonic() - started
    finally:
        holder.release()
    assert busy.returncode == 75, busy.stderr
    assert "busy" in _one_line_error(busy, as_json=True)
    assert waited >= 9  # it waited for the lock first
    assert (Invoice.select().count(), CronRun.select().count()) == (2, 0)
    again = gobiller("--database", db, "cron", "--date", DAY.isoformat(), "--json", env=mail_env)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["rules"]["invoice"]["acted"] == 1


class LockingOnDelivery(SmtpRecorder):
    """Accepts each message, but the first time, another program takes the database's
    write lock just before the server answers, and keeps it for ``hold`` seconds: the
    cron cannot record that the message was sent."""

    def __init__(self, holder: WriteLockHolder, hold: float) -> None:
        super().__init__()
        self.holder = holder
        self.hold = hold
        self.timer: threading.Timer | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.timer is None:
            self.holder.take()
            self.timer = threading.Timer(self.hold, self.holder.release)
            self.timer.start()
        return await super().handle_DATA(server, session, envelope)


@contextmanager
def smtp_sink(handler: SmtpRecorder) -> Iterator[str]:
    controller = smtp_controller(handler)
    try:
        yield f"smtp://127.0.0.1:{controller.port}?security=none"
    finally:
        controller.stop()


@pytest.mark.slow
def test_a_lock_held_during_delivery_sends_the_batch_again_and_loses_nothing(db: str) -> None:
    """The server accepted the batch's messages, then the database refused to record
    them as sent: the cron exits 75 at once. Once the batch's lease runs out, the next
    flush sends that batch again (at least once: the duplicates are that batch's emails
    only, each with the same Message-ID), and every email ends sent."""
    _everything()
    handler = LockingOnDelivery(WriteLockHolder(db, tables=("email", "cron_run")), hold=13)
    with smtp_sink(handler) as url:
        env = {"GOBILLER_SMTP_URL": url}
        first = gobiller("--database", db, "cron", "--date", DAY.isoformat(), env=env)
        assert handler.timer is not None
        handler.timer.join()
        assert first.returncode == 75, first.stderr
        assert "busy" in _one_line_error(first, as_json=False)
        batch = {e.id for e in Email.select().where(Email.status == "sending")}
        sent_first = collections.Counter(m["Message-ID"] for m in handler.parsed())
        assert batch and len(sent_first) >= 1 and set(sent_first.values()) == {1}
        # Time passes: every lease of the stopped run runs out.
        Email.update(next_attempt_at=dt.datetime(2000, 1, 1)).where(
            Email.status == "sending"
        ).execute()
        second = gobiller("--database", db, "mail", "flush", "--json", env=env)
    assert second.returncode == 0, second.stderr
    emails = list(Email.select())
    assert {e.status for e in emails} == {"sent"}
    deliveries = collections.Counter(m["Message-ID"] for m in handler.parsed())
    assert set(deliveries) == {e.message_id for e in emails}  # every email arrived
    assert max(deliveries.values()) == 2  # the batch whose outcome was lost came twice
    twice = {mid for mid, n in deliveries.items() if n == 2}
    assert twice == set(sent_first)  # only what had left before the refusal, same ids
    assert twice <= {e.message_id for e in emails if e.id in batch}
    assert CronRun.get().outcome == "crashed"


# ------------------------------------------------------------------ the cron lock


def test_the_cron_lock_follows_the_database_whatever_path_reaches_it(
    db: str, tmp_path: Path
) -> None:
    """A cron runs through one path (a symbolic link to the file, or another spelling of
    the server's URL); a second one through another path exits 75 and does nothing."""
    _everything()
    for _ in range(6):
        invoice(client(), DAY - dt.timedelta(days=1))  # notices to deliver, slowly
    if is_postgres():
        first_url = db
        parts = urlsplit(db)
        second_url = parts._replace(query="application_name=second").geturl()
    else:
        real = Path(database.obj.database)
        elsewhere = tmp_path / "elsewhere"
        elsewhere.mkdir()
        (elsewhere / "link.sqlite3").symlink_to(real)
        first_url, second_url = f"sqlite:///{elsewhere / 'link.sqlite3'}", db
    handler = SmtpRecorder()
    handler.delay = 0.5
    with smtp_sink(handler) as url:
        env = {**os.environ, "GOBILLER_SMTP_URL": url}
        running = subprocess.Popen(
            [*GOBILLER, "--database", first_url, "cron", "--date", DAY.isoformat(), "--json"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        deadline = time.monotonic() + 60
        while not handler.messages and time.monotonic() < deadline:
            time.sleep(0.05)  # until the first run is delivering, its lock held
        assert running.poll() is None
        second = gobiller("--database", second_url, "cron", "--date", DAY.isoformat(), env=env)
        out, err = running.communicate(timeout=120)
    assert second.returncode == 75, second.stderr
    assert "another gobiller cron is running" in _one_line_error(second, as_json=False)
    assert running.returncode == 0, err
    assert json.loads(out)["rules"]["capture"]["acted"] == 1
    assert Transaction.select().count() == 1
    assert CronRun.select().count() == 1  # the second never started a run
    deliveries = collections.Counter(m["Message-ID"] for m in handler.parsed())
    assert set(deliveries.values()) == {1}, deliveries
    assert len(deliveries) == Email.select().where(Email.status == "sent").count()


# ------------------------------------------------------------------ damaged or foreign


def test_a_database_from_a_newer_gobiller_is_refused(db: str, mail_env: dict[str, str]) -> None:
    _everything()
    database.execute_sql(
        "INSERT INTO schema_migration (name, applied) VALUES ('0999_from_the_future', "
        f"{database.param})",
        (dt.datetime(2030, 1, 1),),
    )
    for args in (
        ["cron", "--date", DAY.isoformat()],
        ["cron", "status"],
        ["db", "upgrade"],
        ["explain", "1"],
    ):
        for as_json in (False, True):
            out = gobiller("--database", db, *args, *(["--json"] if as_json else []), env=mail_env)
            assert out.returncode == 78, (args, out.stderr)
            assert "0999_from_the_future" in _one_line_error(out, as_json)
    status = gobiller("--database", db, "db", "status", "--json")
    assert status.returncode == 78
    assert json.loads(status.stdout)["unknown"] == ["0999_from_the_future"]
    assert (Invoice.select().count(), CronRun.select().count()) == (2, 0)


def test_another_programs_database_is_refused(db: str) -> None:
    """A database with tables but no GoBiller history is not ours: nothing is created in
    it (the migrations are not applied to it)."""
    url = _foreign_database(db)
    for args in (["cron"], ["db", "upgrade"], ["explain", "1"]):
        out = gobiller("--database", url, *args, "--json")
        assert out.returncode == 78, out.stderr
        assert "not a GoBiller database" in _one_line_error(out, as_json=True)
    assert _tables_of(url) == {"moz_places"}


def _foreign_database(gobiller_url: str) -> str:
    """A new database beside ``gobiller_url`` holding another program's table."""
    if gobiller_url.startswith("sqlite"):
        path = Path(urlsplit(gobiller_url).path[1:]).with_name("places.sqlite")
        with sqlite3.connect(path) as conn:
            conn.execute("CREATE TABLE moz_places (id INTEGER PRIMARY KEY, url TEXT)")
        return f"sqlite:///{path}"
    import psycopg2

    base = os.environ["GOBILLER_TEST_POSTGRES"]
    name = urlsplit(gobiller_url).path[1:] + "_places"
    admin = psycopg2.connect(base)
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    admin.close()
    url = urlsplit(base)._replace(path=f"/{name}").geturl()
    conn = psycopg2.connect(url)
    with conn, conn.cursor() as cur:
        cur.execute("CREATE TABLE moz_places (id SERIAL PRIMARY KEY, url TEXT)")
    conn.close()
    _FOREIGN.append(name)
    return url


_FOREIGN: list[str] = []


@pytest.fixture(autouse=True)
def _drop_foreign_databases() -> Iterator[None]:
    yield
    if _FOREIGN:
        import psycopg2

        admin = psycopg2.connect(os.environ["GOBILLER_TEST_POSTGRES"])
        admin.autocommit = True
        with admin.cursor() as cur:
            for name in _FOREIGN:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
        _FOREIGN.clear()


def _tables_of(url: str) -> set[str]:
    if url.startswith("sqlite"):
        with sqlite3.connect(urlsplit(url).path[1:]) as conn:
            rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            return {name for (name,) in rows if not name.startswith("sqlite_")}
    import psycopg2

    conn = psycopg2.connect(url)
    with conn.cursor() as cur:
        cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        tables = {name for (name,) in cur.fetchall()}
    conn.close()
    return tables


def _demo_file(tmp_path: Path, name: str = "demo.sqlite3") -> Path:
    """A 300-client demo database built around 2026-03-01, closed (no WAL left)."""
    path = tmp_path / name
    out = gobiller(
        "--database", f"sqlite:///{path}", "demo", "--clients", "300", "--date", "2026-03-01"
    )
    assert out.returncode == 0, out.stderr
    assert not Path(f"{path}-wal").exists()
    return path


def test_a_damaged_sqlite_file_is_refused_before_anything_is_written(
    tmp_path: Path, mail_env: dict[str, str]
) -> None:
    path = _demo_file(tmp_path)
    data = bytearray(path.read_bytes())
    page = 4096
    middle = (len(data) // page // 2) * page
    data[middle : middle + 8 * page] = os.urandom(8 * page)  # eight pages of noise
    path.write_bytes(bytes(data))
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    out = gobiller(
        "--database", f"sqlite:///{path}", "cron", "--date", "2026-03-01", "--json", env=mail_env
    )
    assert out.returncode == 65, out.stderr
    assert "damaged" in _one_line_error(out, as_json=True)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before
    wal = Path(f"{path}-wal")
    assert not wal.exists() or wal.stat().st_size == 0  # not one frame written


def test_the_first_daily_run_of_each_business_date_checks_the_file(
    db: str, mail_env: dict[str, str]
) -> None:
    _everything()

    def cron(*args: str) -> dict[str, Any]:
        out = gobiller("--database", db, "cron", *args, "--json", env=mail_env)
        assert out.returncode == 0, out.stderr
        return dict(json.loads(out.stdout))

    checked = not is_postgres()  # quick_check is SQLite's
    first = cron("--date", DAY.isoformat())
    assert first["quick_check"] is checked
    assert (first["quick_check_seconds"] > 0) is checked  # how long it took, reported
    again = cron("--date", DAY.isoformat())
    assert again["quick_check"] is False
    assert again["quick_check_seconds"] == 0
    assert cron("--date", (DAY + dt.timedelta(days=1)).isoformat())["quick_check"] is checked
    flags = [r.quick_check for r in CronRun.select().order_by(CronRun.id)]
    assert flags == [checked, False, checked]


# ------------------------------------------------------------------ disk full


def _totals(path: Path) -> dict[str, Any]:
    """What a run leaves behind, cron bookkeeping aside."""
    queries = {
        "invoices": "SELECT count(*), sum(total) FROM invoice",
        "items": "SELECT count(*), sum(amount) FROM invoice_item",
        "ledger": "SELECT rule, outcome, count(*) FROM action_ledger GROUP BY 1, 2 ORDER BY 1, 2",
        "emails": "SELECT template, count(*) FROM email GROUP BY 1 ORDER BY 1",
        "transactions": 'SELECT count(*), sum(amount_in) FROM "transaction"',
        "clients": "SELECT status, count(*) FROM client GROUP BY 1 ORDER BY 1",
    }
    with sqlite3.connect(path) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
        return {name: conn.execute(sql).fetchall() for name, sql in queries.items()}


@pytest.mark.slow
def test_a_full_disk_is_reported_as_such_and_a_rerun_completes(tmp_path: Path) -> None:
    """The cron runs out of room mid-run (a file-size limit, as a full disk would): it
    says so in one line and exits 74 (EX_IOERR), nothing is half-written, and a rerun
    with room reaches exactly the totals of a run that was never interrupted."""
    path = _demo_file(tmp_path)
    untouched = tmp_path / "untouched.sqlite3"
    untouched.write_bytes(path.read_bytes())
    # A month after the demo's date (it is billed up to that date): a month of invoices,
    # notices, fees and captures, more than the file-size limit below lets it write.
    day = ("--date", "2026-04-01")
    env = {"XDG_DATA_HOME": str(tmp_path / "one")}
    whole = gobiller("--database", f"sqlite:///{untouched}", "cron", *day, env=env)
    assert whole.returncode == 0, whole.stderr
    before = _totals(path)

    def no_room() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails (EFBIG), not the process
        resource.setrlimit(resource.RLIMIT_FSIZE, (600_000, 600_000))

    env = {"XDG_DATA_HOME": str(tmp_path / "two")}
    full = gobiller("--database", f"sqlite:///{path}", "cron", *day, env=env, preexec_fn=no_room)
    assert full.returncode == 74, full.stderr
    assert "disk full" in _one_line_error(full, as_json=False)
    assert "cannot rollback" not in full.stderr
    interrupted = _totals(path)  # whole transactions only: the integrity check passes
    assert interrupted != before and interrupted != _totals(untouched)  # it stopped mid-way
    rerun = gobiller("--database", f"sqlite:///{path}", "cron", *day, env=env)
    assert rerun.returncode == 0, rerun.stderr
    assert _totals(path) == _totals(untouched)


# ------------------------------------------------------------------ no traceback


def _situations(tmp_path: Path) -> dict[str, tuple[str, set[int]]]:
    """Database URLs that cannot be used, and the exit codes each may give."""
    garbage = tmp_path / "garbage.sqlite3"
    garbage.write_bytes(b"not a database " * 1000)
    folder = tmp_path / "folder"
    folder.mkdir()
    return {
        "dev-null": ("sqlite:////dev/null", {74}),
        "a folder": (f"sqlite:///{folder}", {74}),
        "no such folder": ("sqlite:////proc/no/such/folder/gb.sqlite3", {74}),
        "not a database": (f"sqlite:///{garbage}", {65}),
        "unsupported URL": ("mysql://localhost/gobiller", {78}),
        "no server": ("postgresql://gobiller:secret-pw@127.0.0.1:9/gobiller", {69}),
    }


@pytest.mark.parametrize(
    "situation",
    ["dev-null", "a folder", "no such folder", "not a database", "unsupported URL", "no server"],
)
def test_no_traceback_reaches_a_user(situation: str, tmp_path: Path) -> None:
    """Every failure of cron, cron status, db upgrade|status and explain is one line (a
    JSON object with --json) and a sysexits code."""
    url, codes = _situations(tmp_path)[situation]
    commands = [
        ["cron", "--date", "2026-03-01"],
        ["cron", "status"],
        ["db", "upgrade"],
        ["db", "status"],
        ["explain", "1", "--date", "2026-03-01"],
    ]
    for args in commands:
        for as_json in (False, True):
            out = gobiller(
                "--database",
                url,
                *args,
                *(["--json"] if as_json else []),
                env={"XDG_DATA_HOME": str(tmp_path)},
            )
            assert out.returncode in codes, (args, as_json, out.returncode, out.stderr)
            assert _one_line_error(out, as_json)
            assert "secret-pw" not in out.stdout + out.stderr  # the URL's password is not shown


def test_bad_command_lines_exit_64_in_one_line(db: str) -> None:
    for args in (
        ["cron", "--date", "yesterday"],
        ["cron", "--only", "everything"],
        ["explain", "someone"],
    ):
        for as_json in (False, True):
            out = gobiller("--database", db, *args, *(["--json"] if as_json else []))
            assert out.returncode == 64, (args, out.stderr)
            assert _one_line_error(out, as_json)
    missing = gobiller("--database", db, "explain", "424242", "--json")
    assert missing.returncode == 1 and "424242" in _one_line_error(missing, as_json=True)


def test_a_privilege_the_database_role_lacks_is_named_in_one_line(db: str) -> None:
    """PostgreSQL refusing a privilege (here a catalogue only superusers read; in use, a
    database whose public schema the role may not create in, as PostgreSQL 15 makes the
    ``postgres`` database) is the operator's to grant: a fault with its reason and the
    way out, not an internal error."""
    from store.faults import StorageError, fault_of

    if not is_postgres():
        pytest.skip("PostgreSQL's privileges")
    if database.execute_sql(
        "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"
    ).fetchone()[0]:
        pytest.skip("the test role is a superuser: nothing is refused to it")
    with pytest.raises(Exception) as caught, database.atomic():
        database.execute_sql("SELECT * FROM pg_authid")
    fault = fault_of(caught.value)
    assert isinstance(fault, StorageError)
    assert "permission denied" in str(fault) and "grant it to the role" in str(fault)
    assert "\n" not in str(fault).strip()
