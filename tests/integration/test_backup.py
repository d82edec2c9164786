"""`gobiller backup` and `gobiller restore` as a user runs them: real processes, real
databases (SQLite and PostgreSQL), a backup taken while another process writes."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

from tests.conftest import Databases

GOBILLER = [sys.executable, "-m", "tui.cli"]


def gobiller(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GOBILLER, "--database", url, *args], capture_output=True, text=True, check=False
    )


def test_backup_then_restore_gives_the_same_database(databases: Databases, tmp_path: Path) -> None:
    original = databases.new_url()
    assert gobiller(original, "demo", "--clients", "60", "--seed", "3").returncode == 0
    archive = tmp_path / "gobiller.backup"
    done = gobiller(original, "backup", str(archive), "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["bytes"] == archive.stat().st_size > 0

    restored = databases.new_url()
    back = gobiller(restored, "restore", str(archive), "--json")
    assert back.returncode == 0, back.stdout + back.stderr
    first = gobiller(original, "export", "-").stdout
    assert first and first == gobiller(restored, "export", "-").stdout

    again = gobiller(restored, "restore", str(archive))
    assert again.returncode == 65 and "not empty" in again.stderr
    assert "Traceback" not in again.stderr
    assert gobiller(restored, "restore", str(archive), "--force").returncode == 0
    assert gobiller(restored, "export", "-").stdout == first


def test_a_failed_backup_keeps_the_previous_one(databases: Databases, tmp_path: Path) -> None:
    url = databases.new_url()
    assert gobiller(url, "demo", "--clients", "5").returncode == 0
    missing = gobiller(url, "backup", str(tmp_path / "no" / "such" / "folder.backup"))
    assert missing.returncode == 74 and "no such folder" in missing.stderr
    assert "Traceback" not in missing.stderr
    previous = tmp_path / "kept.backup"
    previous.write_bytes(b"yesterday's backup")
    os.chmod(tmp_path, 0o500)  # the folder is read-only: no temporary file can be made
    try:
        refused = gobiller(url, "backup", str(previous), "--json")
    finally:
        os.chmod(tmp_path, 0o700)
    if os.geteuid() != 0:  # root ignores folder permissions
        assert refused.returncode == 74 and "error" in json.loads(refused.stdout)
    assert previous.read_bytes() == b"yesterday's backup" or refused.returncode == 0


def test_a_backup_taken_during_writes_restores_to_a_sound_database(
    databases: Databases, tmp_path: Path
) -> None:
    """Another process keeps writing (a cron run, then imports) while the backup is
    taken; the backup passes the integrity check and restores to a consistent whole."""
    if databases.kind != "sqlite":
        return  # pg_dump's snapshot consistency is PostgreSQL's own promise
    url = databases.new_url()
    assert gobiller(url, "demo", "--clients", "400", "--date", "2026-11-01").returncode == 0
    stop = threading.Event()
    errors: list[str] = []

    def keep_writing() -> None:
        day = 2
        while not stop.is_set() and day < 28:
            run = gobiller(url, "cron", "--date", f"2026-11-{day:02d}", "--json")
            if run.returncode not in (0, 1):
                errors.append(run.stderr)
            day += 1

    writer = threading.Thread(target=keep_writing)
    writer.start()
    archives = []
    try:
        for n in range(5):
            archive = tmp_path / f"during-{n}.backup"
            made = gobiller(url, "backup", str(archive))
            assert made.returncode == 0, made.stderr
            archives.append(archive)
    finally:
        stop.set()
        writer.join()
    assert not errors, errors
    for archive in archives:
        with sqlite3.connect(archive) as check:
            assert check.execute("PRAGMA integrity_check").fetchone() == ("ok",)
            orphans: Any = check.execute(
                "SELECT COUNT(*) FROM invoice_item WHERE invoice_id NOT IN (SELECT id FROM invoice)"
            ).fetchone()
            assert orphans == (0,)
        restored = databases.new_url()
        assert gobiller(restored, "restore", str(archive)).returncode == 0
        assert gobiller(restored, "cron", "status", "--json").returncode in (0, 1)
