"""Two staff hosts against one database: separate processes, separate connections
(issue 14, "several hosts, one database"). Both open the same client; the first save
lands, the second is refused as a concurrent edit and shown the stored values, and
nothing the first wrote is lost. The cron half (one cron runs, another exits 75,
whatever URL reaches the server) is tests/integration/test_faults.py's
``test_the_cron_lock_follows_the_database_whatever_path_reaches_it``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

from rules.audit import SYSTEM_CLI
from rules.clients.profile import create_client
from store.models import AuditLog, Client, Currency
from tests.conftest import ROOT

#: One staff host: open the client (its version), say so, wait for the word to save,
#: save one field through the rule the staff app calls, print the outcome as JSON.
HOST = textwrap.dedent(
    """
    import json, sys
    from rules.audit import Actor
    from rules.clients.profile import StaleEdit, update_client
    from store.db import open_database
    from store.models import Client
    from store.models.enums import ActorType, Source

    open_database(sys.argv[1])
    client_id, name, value = int(sys.argv[2]), sys.argv[3], sys.argv[4]
    version = Client.get_by_id(client_id).version
    print("opened", flush=True)
    sys.stdin.readline()
    actor = Actor(ActorType.STAFF, name, Source.TUI, None, "admin")
    try:
        update_client(client_id, version, {"admin_notes": value}, actor)
        print(json.dumps({"saved": True}), flush=True)
    except StaleEdit as exc:
        print(json.dumps({"saved": False, "error": str(exc),
                          "current": exc.current.get("admin_notes")}), flush=True)
    """
)


def _host(db: str, client_id: int, name: str, value: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen(
        [sys.executable, "-c", HOST, db, str(client_id), name, value],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def test_two_staff_hosts_saving_one_client_conflict_and_lose_nothing(db: str) -> None:
    Currency.create(code="USD", is_default=True)
    client = create_client(
        {"first_name": "Ada", "last_name": "Host", "email": "ada@example.org"}, SYSTEM_CLI
    )
    hosts = [
        _host(db, client.id, "alice", "from host A"),
        _host(db, client.id, "bob", "from host B"),
    ]
    for host in hosts:  # both have the client open, at the same version
        assert host.stdout is not None
        assert host.stdout.readline().strip() == "opened", host.stderr
    outcomes = []
    for host in hosts:  # A saves, then B
        out, err = host.communicate("save\n", timeout=60)
        assert host.returncode == 0, err
        outcomes.append(json.loads(out.strip().splitlines()[-1]))
    first, second = outcomes
    assert first == {"saved": True}
    assert second["saved"] is False
    assert "changed by someone else" in second["error"]
    assert second["current"] == "from host A"  # B is shown what A saved
    stored = Client.get_by_id(client.id)
    assert stored.admin_notes == "from host A" and stored.version == client.version + 1
    notes = AuditLog.select().where(AuditLog.field == "admin_notes")
    assert [(row.actor_name, row.new_value) for row in notes] == [("alice", "from host A")]
