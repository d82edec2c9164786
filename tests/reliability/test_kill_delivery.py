"""Fault injection: a flusher (`gobiller mail flush`) killed with SIGKILL while it delivers.

To a real aiosmtpd server on 127.0.0.1 and into a Maildir, on SQLite and PostgreSQL.
Each run is killed a random moment after its first message arrived; time then passes
(the killed run's leases run out) and the next run goes on; a last run finishes. The
guarantee of ``rules.mail.delivery``: every email arrives at least once, with the
Message-ID its row records; an email arrives twice only if it was in the batch a killed
run held (at most one batch of duplicates per kill); a message is in the Maildir's new/
whole or not at all. Seeded, so a failure can be replayed.
"""

from __future__ import annotations

import collections
import datetime as dt
import os
import random
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from email import message_from_bytes
from email.policy import default as default_policy
from pathlib import Path
from typing import Any

import pytest

from rules.mail.outbox import OUTBOX_COLUMNS
from store.bulk import bulk_insert
from store.db import database, is_sqlite, writer
from store.models import Email, utcnow
from tests.conftest import ROOT

KILLS = int(os.environ.get("GOBILLER_DELIVERY_KILLS", "4"))
EMAILS = 3000
BATCH = 100  # what `gobiller mail flush` leases at a time
MESSAGE_ID = re.compile(rb"^Message-ID: (<[^>\r\n]+>)", re.MULTILINE | re.IGNORECASE)
ID_OF = re.compile(r"<gobiller\.(\d+)\.")


class Receiver:
    """Counts each Message-ID the server accepted."""

    def __init__(self) -> None:
        self.ids: list[str] = []
        self.lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        found = MESSAGE_ID.search(envelope.original_content)
        with self.lock:
            self.ids.append(found.group(1).decode() if found else "")
        return "250 OK"


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    from aiosmtpd.controller import Controller

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    handler = Receiver()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield handler, f"smtp://127.0.0.1:{port}?security=none"
    finally:
        controller.stop()


def _queue(n: int) -> None:
    stamp = utcnow() - dt.timedelta(seconds=1)
    rows = [
        (
            None,
            "First Invoice Overdue Notice",
            f"client{i}@example.com",
            f"First Overdue Notice: invoice {i}",
            f"Dear client {i},\n\nYour invoice {i} is overdue.\n",
            "",
            "",
            None,
            False,
            stamp,
            stamp,
            "queued",
            "",
            0,
            "",
            "",
        )
        for i in range(n)
    ]
    with writer():
        bulk_insert(Email, OUTBOX_COLUMNS, rows)


def _maildir_ids(box: Path) -> list[str]:
    """The Message-ID of every message in new/, each of which must be whole."""
    ids = []
    for path in (box / "new").iterdir():
        message = message_from_bytes(path.read_bytes(), policy=default_policy)
        assert message.get_content_type() == "text/plain", path
        assert "is overdue" in message.get_content(), path  # whole, not torn
        ids.append(str(message["Message-ID"]))
    return ids


def _flusher(url: str, env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "tui.cli", "--database", url, "mail", "flush", "--json"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env=env,
        cwd=cwd,
    )


@pytest.mark.parametrize("transport", ["smtp", "maildir"])
def test_a_flusher_killed_while_delivering_loses_nothing_and_duplicates_one_batch_at_most(
    db: str, receiver: tuple[Receiver, str], tmp_path: Path, transport: str
) -> None:
    handler, smtp_url = receiver
    box = tmp_path / "Maildir"
    cwd = tmp_path / "cwd"
    cwd.mkdir()
    (cwd / "gobiller.toml").write_text(f'[mail]\nmaildir = "{box}"\n')
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    env.pop("GOBILLER_SMTP_URL", None)
    if transport == "smtp":
        env["GOBILLER_SMTP_URL"] = smtp_url

    def delivered() -> list[str]:
        if transport == "smtp":
            with handler.lock:
                return list(handler.ids)
        return _maildir_ids(box) if (box / "new").is_dir() else []

    def arrived() -> int:
        if transport == "smtp":
            return len(handler.ids)
        return len(os.listdir(box / "new")) if (box / "new").is_dir() else 0

    _queue(EMAILS)
    rng = random.Random(20261130)
    #: For each email, how many killed runs held it (leased, outcome not recorded).
    held = collections.Counter[int]()
    kills = 0
    for _ in range(3 * KILLS):
        if kills >= KILLS:
            break
        before = arrived()
        run = _flusher(db, env, cwd)
        deadline = time.monotonic() + 60
        while arrived() == before and run.poll() is None and time.monotonic() < deadline:
            time.sleep(0.002)
        time.sleep(rng.uniform(0, 0.3))
        if run.poll() is not None:  # it finished first: nothing was left to kill
            assert run.returncode == 0, run.stderr.read() if run.stderr else ""
            break
        run.send_signal(signal.SIGKILL)
        run.wait()
        kills += 1
        database.close()  # read what the killed run committed, on a fresh connection
        if is_sqlite():
            assert database.execute_sql("PRAGMA integrity_check").fetchone() == ("ok",)
        leased = [e.id for e in Email.select(Email.id).where(Email.status == "sending")]
        assert len(leased) <= BATCH, len(leased)  # one batch at a time
        held.update(leased)
        # Time passes: the killed run's leases run out.
        Email.update(next_attempt_at=dt.datetime(2000, 1, 1)).where(
            Email.status == "sending"
        ).execute()
    assert kills >= 2, f"only {kills} runs were still delivering when killed"
    last = _flusher(db, env, cwd)
    assert last.wait(timeout=300) == 0, last.stderr.read() if last.stderr else ""

    database.close()
    emails = {e.id: e for e in Email.select()}
    assert len(emails) == EMAILS
    assert {e.status for e in emails.values()} == {"sent"}
    arrivals = collections.Counter(delivered())
    # Stable Message-IDs: every message that arrived is the one its row records.
    for message_id in arrivals:
        found = ID_OF.match(message_id)
        assert found, message_id
        assert emails[int(found.group(1))].message_id == message_id
    # At least once: nothing lost.
    assert set(arrivals) == {e.message_id for e in emails.values()}
    # Duplicates only of what a killed run held, once per kill that held it.
    twice = {mid: n for mid, n in arrivals.items() if n > 1}
    for message_id, n in twice.items():
        email_id = int(ID_OF.match(message_id).group(1))  # type: ignore[union-attr]
        assert n <= 1 + held[email_id], (message_id, n, held[email_id])
    extra = sum(n - 1 for n in arrivals.values())
    assert extra <= BATCH * kills, (extra, kills)
    print(f"\n{transport}: killed {kills} runs; {extra} duplicate deliveries; none lost")
