"""Ten processes making 500 short staff writes each while a cron runs: no "database is
locked" reaches anyone and every write is there (issue 10, fault-injection suite)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.conftest import ROOT

GOBILLER = [sys.executable, "-m", "tui.cli"]
WRITERS = 10
WRITES = 500

#: One staff member's session: 500 saves of a client's admin notes through the rule the
#: staff app calls (validation, optimistic version, audit row, one transaction each); a
#: save refused as a concurrent edit (the cron changed the client) is made again.
WRITER = textwrap.dedent(
    """
    import sys
    from rules.audit import SYSTEM_CLI
    from rules.clients.profile import StaleEdit, update_client
    from store.db import open_database
    from store.models import Client

    open_database(sys.argv[1])
    client_id, writes = int(sys.argv[2]), int(sys.argv[3])
    for n in range(writes):
        while True:  # the cron's status update may change the client meanwhile: reload
            version = Client.get_by_id(client_id).version
            try:
                update_client(client_id, version, {"admin_notes": f"note {n}"}, SYSTEM_CLI)
                break
            except StaleEdit:
                continue
    """
)


@pytest.mark.slow
def test_short_writes_during_a_cron_all_land(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data"), "XDG_CONFIG_HOME": str(tmp_path)}
    path = tmp_path / "busy.sqlite3"
    url = f"sqlite:///{path}"
    built = subprocess.run(
        [*GOBILLER, "--database", url, "demo", "--clients", "2000", "--date", "2026-11-10"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert built.returncode == 0, built.stderr
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    cron = subprocess.Popen(
        [*GOBILLER, "--database", url, "cron", "--date", "2026-11-20", "--json"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    writers = [
        subprocess.Popen(
            [sys.executable, str(script), url, str(client_id), str(WRITES)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**env, "PYTHONPATH": str(ROOT)},
        )
        for client_id in range(1, WRITERS + 1)
    ]
    outcomes = [(w.wait(timeout=600), w.stderr.read() if w.stderr else "") for w in writers]
    cron_code = cron.wait(timeout=600)
    cron_err = cron.stderr.read() if cron.stderr else ""
    assert all(code == 0 for code, _ in outcomes), [(code, err[-300:]) for code, err in outcomes]
    assert not any("locked" in err for _, err in outcomes) and "locked" not in cron_err
    assert cron_code in (0, 1), cron_err
    with sqlite3.connect(path) as db:
        saved = db.execute(
            "SELECT COUNT(*) FROM audit_log WHERE field = 'admin_notes' AND entity = 'client'"
        ).fetchone()[0]
        last = db.execute(
            f"SELECT COUNT(*) FROM client WHERE id <= {WRITERS} AND admin_notes = ?",
            (f"note {WRITES - 1}",),
        ).fetchone()[0]
        finished = db.execute("SELECT COUNT(*) FROM cron_run WHERE outcome = 'ok'").fetchone()[0]
    assert (saved, last, finished) == (WRITERS * WRITES, WRITERS, 1)
