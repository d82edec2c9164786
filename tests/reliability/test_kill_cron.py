"""Fault injection: a running `gobiller cron` killed with SIGKILL at random moments.

Seeded, so a failure can be replayed. The kills are spread over the whole run: the
run's time (start-up to the last flush) is cut into as many equal slices as there are
kills, and each kill falls at a random moment of its own slice, so every part of the run
is hit whatever the count (``GOBILLER_KILLS``, 12 by default). After each kill the
database passes SQLite's integrity check and holds no invoice item, late fee, notice or
capture twice; a rerun then reaches exactly the totals of an uninterrupted run
(PRODUCT.md §3: each rule acts at most once per subject, whatever the runs).
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

GOBILLER = [sys.executable, "-m", "tui.cli"]
#: Runs killed while still going (each run that finished first is checked all the same),
#: one per slice of the run's time.
KILLS = int(os.environ.get("GOBILLER_KILLS", "12"))
ATTEMPTS = 3 * KILLS
DAY = "2026-11-20"

#: What an uninterrupted run leaves, as numbers that must come out the same.
TOTALS = {
    "invoices": "SELECT COUNT(*) FROM invoice",
    "invoice_total": "SELECT COALESCE(SUM(total), 0) FROM invoice",
    "paid": "SELECT COUNT(*) FROM invoice WHERE status = 'Paid'",
    "items": "SELECT COUNT(*) FROM invoice_item",
    "late_fees": "SELECT COUNT(*) FROM invoice_item WHERE type = 'LateFee'",
    "transactions": 'SELECT COUNT(*), COALESCE(SUM(amount_in), 0) FROM "transaction"',
    "emails": "SELECT template, COUNT(*) FROM email GROUP BY template ORDER BY template",
    "ledger": "SELECT rule, outcome, COUNT(*) FROM action_ledger GROUP BY 1, 2 ORDER BY 1, 2",
    "statuses": "SELECT status, COUNT(*) FROM client GROUP BY status ORDER BY status",
    "due_dates": "SELECT COUNT(*), MAX(next_due_date) FROM service",
}
#: Each must be empty: something done twice.
TWICE = {
    "late fee twice": "SELECT invoice_id FROM invoice_item WHERE type = 'LateFee' "
    "GROUP BY invoice_id HAVING COUNT(*) > 1",
    "item billed twice": "SELECT related_type, related_id, related_due_date FROM invoice_item "
    "WHERE related_type IS NOT NULL GROUP BY 1, 2, 3 HAVING COUNT(*) > 1",
    "charged twice": "SELECT invoice_id FROM \"transaction\" WHERE gateway = 'sandboxcard' "
    "GROUP BY invoice_id HAVING COUNT(*) > 1",
    "notice twice": "SELECT subject, stage FROM action_ledger WHERE rule = 'notice' "
    "GROUP BY subject, stage HAVING COUNT(*) > 1",
    "email twice": "SELECT unique_key FROM email WHERE unique_key IS NOT NULL "
    "GROUP BY unique_key HAVING COUNT(*) > 1",
}


def _env(tmp: Path) -> dict[str, str]:
    return {**os.environ, "XDG_DATA_HOME": str(tmp / "data"), "XDG_CONFIG_HOME": str(tmp)}


def _cron(path: Path, tmp: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [*GOBILLER, "--database", f"sqlite:///{path}", "cron", "--date", DAY, "--json"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=_env(tmp),
    )


def _read(path: Path, queries: dict[str, str]) -> dict[str, list[tuple[object, ...]]]:
    with sqlite3.connect(path) as db:
        return {name: db.execute(sql).fetchall() for name, sql in queries.items()}


@pytest.fixture(scope="module")
def original(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object], float]:
    """A demo database, and what one uninterrupted cron leaves in a copy of it."""
    tmp = tmp_path_factory.mktemp("kill")
    path = tmp / "original.sqlite3"
    built = subprocess.run(
        [*GOBILLER, "--database", f"sqlite:///{path}", "demo", "--clients", "250"]
        + ["--seed", "11", "--date", "2026-11-10"],
        capture_output=True,
        env=_env(tmp),
        check=False,
    )
    assert built.returncode == 0, built.stderr
    whole = tmp / "whole.sqlite3"
    shutil.copy(path, whole)
    started = time.monotonic()
    run = _cron(whole, tmp)
    assert run.wait(timeout=300) == 0, run.stderr.read() if run.stderr else ""
    return path, _read(whole, TOTALS), time.monotonic() - started


def test_a_cron_killed_at_any_moment_never_acts_twice_and_a_rerun_completes_it(
    original: tuple[Path, dict[str, object], float], tmp_path: Path
) -> None:
    path, expected, seconds = original
    rng = random.Random(20261129)
    killed = attempts = 0
    for n in range(ATTEMPTS):
        if killed >= KILLS:
            break
        attempts += 1
        copy = tmp_path / f"run{n}.sqlite3"
        for suffix in ("", "-wal", "-shm"):
            if Path(f"{path}{suffix}").exists():
                shutil.copy(f"{path}{suffix}", f"{copy}{suffix}")
        run = _cron(copy, tmp_path)
        # A moment in this kill's slice of the run, from start-up to the last flush.
        start, end = 0.05, 0.8 * seconds
        width = (end - start) / KILLS
        time.sleep(start + width * (killed + rng.random()))
        if run.poll() is None:
            run.send_signal(signal.SIGKILL)
            killed += 1
        run.wait()
        with sqlite3.connect(copy) as db:
            assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",), n
        twice = {k: v for k, v in _read(copy, TWICE).items() if v}
        assert not twice, (n, twice)
        rerun = _cron(copy, tmp_path)
        assert rerun.wait(timeout=300) in (0, 1), rerun.stderr.read() if rerun.stderr else ""
        assert _read(copy, TOTALS) == expected, n
        assert not {k: v for k, v in _read(copy, TWICE).items() if v}
        for suffix in ("", "-wal", "-shm"):
            Path(f"{copy}{suffix}").unlink(missing_ok=True)
    assert killed >= KILLS, f"only {killed} of {attempts} runs were still going when killed"
    print(f"\nkilled {killed} of {attempts} cron runs; duplicates found 0; totals equal")
