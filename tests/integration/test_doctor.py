"""``gobiller doctor`` as an operator runs it: a real process on a real database, one
OK/WARN/FAIL line per check, exit 1 when anything needs attention, never a traceback."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from store.db import close_database
from store.locks import cron_lock
from store.models import CronRun, Email, Setting, utcnow
from store.settings import save_settings
from tests.conftest import ROOT, Databases

CHECKS = ["integrity", "migrations", "cron runs", "cron lock", "outbox", "permissions", "settings"]


def gobiller(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=home,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "HOME": str(home),
            "XDG_DATA_HOME": str(home / "data"),
            "XDG_CONFIG_HOME": str(home / "config"),
            "GOBILLER_DATABASE": "",
            "GOBILLER_SMTP_URL": "",
        },
    )


def doctor(url: str, home: Path) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """The text run and the ``--json`` report, by check name."""
    text = gobiller("--database", url, "doctor", home=home)
    assert "Traceback" not in text.stdout + text.stderr
    report = json.loads(gobiller("--database", url, "doctor", "--json", home=home).stdout)
    assert [c["name"] for c in report["checks"]] == CHECKS
    report["by_name"] = {c["name"]: c for c in report["checks"]}
    return text, report


@pytest.fixture
def home(tmp_path: Path) -> Path:
    folder = tmp_path / "home"
    folder.mkdir(mode=0o700)
    return folder


def healthy_install(databases: Databases, home: Path) -> str:
    """A demo database with its company email set, after a daily cron run."""
    url = databases.new_url()
    demo = gobiller("--database", url, "demo", "--clients", "3", "--date", "2026-11-25", home=home)
    assert demo.returncode == 0, demo.stderr
    databases.open(url)
    save_settings({"company_email": "accounts@demohosting.co.uk"})
    close_database()
    cron = gobiller("--database", url, "cron", "--date", "2026-11-25", home=home)
    assert cron.returncode == 0, cron.stdout + cron.stderr
    return url


def test_doctor_healthy_install_after_a_cron_run_is_all_ok(
    databases: Databases, home: Path
) -> None:
    url = healthy_install(databases, home)
    text, report = doctor(url, home)
    assert text.returncode == 0, text.stdout
    assert report["ok"] is True
    assert {c["status"] for c in report["checks"]} == {"OK"}
    lines = text.stdout.splitlines()
    assert [line.split(":")[0] for line in lines] == [f"OK   {name}" for name in CHECKS]
    expected = "SQLite quick_check: ok" if databases.kind == "sqlite" else "connected"
    assert expected in report["by_name"]["integrity"]["detail"]
    assert "accounts@demohosting.co.uk" in report["by_name"]["settings"]["detail"]


def test_doctor_names_each_thing_needing_attention(databases: Databases, home: Path) -> None:
    url = healthy_install(databases, home)
    databases.open(url)
    now = utcnow()
    Email.create(
        template="Invoice Created", to="a@example.com", subject="s", body_text="b",
        status="failed", last_error="550 mailbox unavailable",
    )  # fmt: skip
    Email.create(
        template="Invoice Created", to="b@example.com", subject="s", body_text="b",
        next_attempt_at=now - dt.timedelta(hours=3),
    )  # fmt: skip
    CronRun.update(finished_at=now - dt.timedelta(days=3)).execute()
    Setting.delete().where(Setting.key == "company_email").execute()
    with cron_lock():  # a cron running now is not a problem, and doctor says so
        text, report = doctor(url, home)
    close_database()
    assert text.returncode == 1 and report["ok"] is False
    checks = report["by_name"]
    assert checks["outbox"]["status"] == "WARN"
    assert "1 failed email(s)" in checks["outbox"]["detail"]
    assert "1 queued email(s) past their attempt time" in checks["outbox"]["detail"]
    assert checks["cron runs"]["status"] == "WARN"
    assert "have not run for more than 24 hours" in checks["cron runs"]["detail"]
    assert checks["settings"]["status"] == "WARN"
    assert "company_email is still the default billing@example.com" in checks["settings"]["detail"]
    assert checks["cron lock"] == {
        "name": "cron lock",
        "status": "OK",
        "detail": checks["cron lock"]["detail"],
    }
    assert checks["cron lock"]["detail"].startswith("a cron is running now")
    for name in ("integrity", "migrations", "permissions"):
        assert checks[name]["status"] == "OK", checks[name]
    for line in ("WARN outbox: ", "WARN cron runs: ", "WARN settings: "):
        assert line in text.stdout, text.stdout


def test_doctor_reports_a_killed_cron_run(databases: Databases, home: Path) -> None:
    url = healthy_install(databases, home)
    databases.open(url)
    CronRun.create(business_date=dt.date(2026, 11, 26), pid=99999)  # outcome "running"
    close_database()
    text, report = doctor(url, home)
    assert text.returncode == 1
    lock = report["by_name"]["cron lock"]
    assert lock["status"] == "WARN" and "never finished and holds no lock" in lock["detail"]


@pytest.mark.parametrize("damage", ["one page", "every page", "header"])
def test_doctor_corrupt_sqlite_file_fails_integrity_without_traceback(
    tmp_path: Path, home: Path, damage: str
) -> None:
    databases = Databases("sqlite", tmp_path)
    url = healthy_install(databases, home)
    file = Path(url.removeprefix("sqlite:///"))
    assert not Path(f"{file}-wal").exists() or Path(f"{file}-wal").stat().st_size == 0
    with file.open("r+b") as f:
        page = int.from_bytes(file.read_bytes()[16:18], "big")
        if damage == "header":  # not a database at all
            f.write(b"\x5a" * 100)
        elif damage == "one page":  # a table page whose cells point outside it
            f.seek(page * 3)
            f.write(b"\x0d\x00\x00\x00\x05\x0f\xf0\x00" + b"\xff" * 40)
        else:  # every page after the first two: the schema cannot be read
            size = file.stat().st_size
            f.seek(page * 2)
            f.write(bytes((i * 7 + 13) % 256 for i in range(size - page * 2)))
    text, report = doctor(url, home)
    assert text.returncode == 1 and report["ok"] is False
    integrity = report["by_name"]["integrity"]
    assert integrity["status"] == "FAIL", integrity
    if damage == "one page":
        assert "SQLite quick_check found" in integrity["detail"]
        # The first problem, on one line: not SQLite's "*** in database main ***" heading.
        assert "first: On tree page 4 " in integrity["detail"], integrity
        assert "\n" not in integrity["detail"] and "***" not in integrity["detail"]
    else:
        assert "damaged or not a database" in integrity["detail"]
    assert report["by_name"]["outbox"]["detail"].startswith("not checked")
    assert "FAIL integrity: " in text.stdout
    assert report["by_name"]["permissions"]["status"] == "OK"


def test_doctor_unreachable_database_server_fails_without_traceback(home: Path) -> None:
    url = "postgresql://gobiller:wrong@127.0.0.1:1/gobiller"
    text, report = doctor(url, home)
    assert text.returncode == 1
    integrity = report["by_name"]["integrity"]
    assert (
        integrity["status"] == "FAIL" and "cannot reach the database server" in integrity["detail"]
    )
    assert report["by_name"]["outbox"]["detail"].startswith("not checked")


def test_doctor_fails_settings_stored_out_of_range(databases: Databases, home: Path) -> None:
    url = healthy_install(databases, home)
    databases.open(url)
    Setting.delete().where(Setting.key == "daily_hour").execute()
    Setting.insert(key="daily_hour", value="99").execute()  # by hand, past validation
    Setting.insert(key="retired_setting", value='"x"').execute()  # ignored, as on load
    close_database()
    text, report = doctor(url, home)
    assert text.returncode == 1
    settings = report["by_name"]["settings"]
    assert settings["status"] == "FAIL", settings
    assert "daily_hour: must be between 0 and 23" in settings["detail"]
    assert "retired_setting" not in settings["detail"]
