"""The ``gobiller`` command as a user runs it: a real process, a real database."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

from rules.mail.marketing import OPTED_OUT
from store.migrate import MIGRATIONS_DIR
from tests.conftest import Databases

GOBILLER = [sys.executable, "-m", "tui.cli"]


def run(
    *args: str, input: str | None = None, cwd: Path | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*GOBILLER, *args],
        capture_output=True,
        text=True,
        input=input,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


def test_help_lists_every_command() -> None:
    out = run("--help")
    assert out.returncode == 0
    for command in ("db", "demo", "export", "import", "staff", "config"):
        assert command in out.stdout
    for sub in (["db", "--help"], ["demo", "--help"], ["import", "--help"], ["staff", "add", "-h"]):
        result = run(*sub)
        assert result.returncode == 0 and "Usage:" in result.stdout, sub


def test_demo_export_import_export(databases: Databases, tmp_path: Path) -> None:
    source, target = databases.new_url(), databases.new_url()
    demo = run("--database", source, "demo", "--clients", "120", "--date", "2026-11-25", "--json")
    assert demo.returncode == 0, demo.stderr
    result = json.loads(demo.stdout)
    assert result["clients"] == 120 and len(result["admin_password"]) >= 12
    first, second = tmp_path / "a.json", tmp_path / "b.json"
    assert run("--database", source, "export", str(first)).returncode == 0
    imported = run("--database", target, "import", str(first), "--json")
    assert json.loads(imported.stdout) == {"file": str(first), "imported": 120, "errors": []}
    assert run("--database", target, "export", str(second)).returncode == 0
    assert first.read_bytes() == second.read_bytes()
    again = run("--database", target, "demo", "--clients", "5")
    assert again.returncode == 1 and "not empty" in again.stderr


def test_import_reports_errors_with_paths(databases: Databases, tmp_path: Path) -> None:
    url = databases.new_url()
    bad = tmp_path / "bad.json"
    bad.write_text(
        json.dumps(
            {
                "format": "gobiller/1",
                "clients": [
                    {
                        "id": 1,
                        "first_name": "A",
                        "last_name": "B",
                        "email": "nope",
                        "currency": "USD",
                    }
                ],
            }
        )
    )
    out = run("--database", url, "import", str(bad))
    assert out.returncode == 1
    assert "nothing imported" in out.stderr
    assert "clients[0].email: not a valid email" in out.stderr
    assert "clients[0].currency: unknown currency 'USD'" in out.stderr


def test_db_upgrade_and_status(databases: Databases) -> None:
    url = databases.new_url()
    before = run("--database", url, "db", "status")
    assert before.returncode == 1 and "[ ] 0001_initial" in before.stdout
    up = run("--database", url, "db", "upgrade", "--json")
    shipped = sorted(p.stem for p in MIGRATIONS_DIR.glob("0*.py"))
    assert shipped[:4] == [
        "0001_initial",
        "0002_email_templates",
        "0003_client_search",
        "0004_client_first_name_index",
    ]
    assert json.loads(up.stdout)["applied"] == shipped
    after = run("--database", url, "db", "status", "--json")
    assert after.returncode == 0 and json.loads(after.stdout)["pending"] == []


def test_staff_add(databases: Databases) -> None:
    url = databases.new_url()
    out = run(
        "--database",
        url,
        "staff",
        "add",
        "maria",
        "--role",
        "billing",
        "--password-stdin",
        input="correct horse battery\n",
    )
    assert out.returncode == 0, out.stderr
    assert "correct horse" not in out.stdout
    dup = run("--database", url, "staff", "add", "maria", "--role", "support")
    assert dup.returncode == 1 and "already exists" in dup.stderr
    weak = run(
        "--database",
        url,
        "staff",
        "add",
        "bob",
        "--role",
        "support",
        "--password-stdin",
        input="short\n",
    )
    assert weak.returncode == 1 and "at least 10 characters" in weak.stderr


def test_environment_and_config_file(tmp_path: Path) -> None:
    env_db = tmp_path / "env.sqlite3"
    file_db = tmp_path / "file.sqlite3"
    (tmp_path / "gobiller.toml").write_text(f'[database]\nurl = "sqlite:///{file_db}"\n')
    out = run("config", "--json", cwd=tmp_path, env={"GOBILLER_DATABASE": f"sqlite:///{env_db}"})
    assert json.loads(out.stdout)["database_source"] == "environment"
    out = run("config", "--json", cwd=tmp_path, env={"GOBILLER_DATABASE": ""})
    assert json.loads(out.stdout)["database_url"] == f"sqlite:///{file_db}"


def test_headless_commands_never_load_textual(databases: Databases, tmp_path: Path) -> None:
    """Import hygiene: store, rules and the sub-commands run without Textual or Rich."""
    url = databases.new_url()
    script = f"""
import sys
import store, store.models, rules, rules.interchange.importer, rules.demo, tui, tui.cli
from click.testing import CliRunner
runner = CliRunner()
for args in (["--help"], ["--database", {url!r}, "export", {str(tmp_path / "x.json")!r}]):
    result = runner.invoke(tui.cli.main, args)
    assert result.exit_code == 0, result.output
loaded = sorted(m for m in sys.modules if m.split(".")[0] in ("textual", "rich"))
print(",".join(loaded) or "clean")
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "clean"


def test_mail_commands_speak_json_and_flush_skips_marketing_no_longer_wanted(
    databases: Databases, tmp_path: Path
) -> None:
    """The reproducer (cases/18): a marketing campaign queued, a client opts out before the
    outbox is flushed, then a resend; and ``mail show|resend|template --json``, errors too."""
    from rules.audit import Actor
    from rules.clients.profile import update_client
    from store.models import Client, Currency
    from store.models.enums import ActorType, Source

    url = databases.open(databases.new_url())
    usd = Currency.create(code="USD", prefix="$", suffix=" USD", is_default=True)
    for n in range(3):
        Client.create(first_name=f"C{n}", last_name="X", email=f"c{n}@example.com", currency=usd)
    env = {"GOBILLER_DATABASE": url, "GOBILLER_SMTP_URL": ""}
    (tmp_path / "gobiller.toml").write_text(f'[mail]\nmaildir = "{tmp_path / "Maildir"}"\n')

    def gobiller(*args: str) -> subprocess.CompletedProcess[str]:
        return run(*args, cwd=tmp_path, env=env)

    mass = json.loads(gobiller("mail", "mass", "--json").stdout)
    assert (mass["queued"], mass["skipped_opt_out"], mass["skipped_closed"]) == (3, 0, 0)
    staff = Actor(ActorType.STAFF, "support1", Source.TUI, 1, "billing")
    late = Client.get(Client.email == "c2@example.com")
    update_client(late.id, late.version, {"marketing_opt_out": True}, staff)

    flushed = gobiller("mail", "flush", "--json")
    assert flushed.returncode == 0, flushed.stderr
    assert json.loads(flushed.stdout) | {"errors": []} == {
        "sent": 2,
        "retried": 0,
        "failed": 0,
        "skipped": 1,
        "deferred": 0,
        "session_error": "",
        "errors": [],
    }
    [skipped] = json.loads(gobiller("mail", "list", "--status", "skipped", "--json").stdout)
    assert (skipped["to"], skipped["last_error"]) == (late.email, OPTED_OUT)
    shown = json.loads(gobiller("mail", "show", str(skipped["id"]), "--json").stdout)
    assert (shown["status"], shown["marketing"], shown["to"]) == ("skipped", True, late.email)
    assert "Dear C2" in shown["body_text"]
    assert (
        "Status: skipped (the client opted out"
        in gobiller("mail", "show", str(skipped["id"])).stdout
    )

    refused = gobiller("mail", "resend", str(skipped["id"]), "--json")
    assert refused.returncode == 1
    assert json.loads(refused.stdout) == {
        "error": f"email {skipped['id']} is marketing and {OPTED_OUT}: not resent"
    }
    plain = gobiller("mail", "resend", str(skipped["id"]))
    assert (
        plain.returncode == 1 and "not resent" in plain.stderr and "Traceback" not in plain.stderr
    )
    sent = json.loads(gobiller("mail", "list", "--status", "sent", "--json").stdout)
    resent = json.loads(gobiller("mail", "resend", str(sent[0]["id"]), "--json").stdout)
    assert resent["resent"] == sent[0]["id"] and resent["to"] == sent[0]["to"]

    missing = gobiller("mail", "show", "999999", "--json")
    assert missing.returncode == 1 and json.loads(missing.stdout) == {"error": "no email 999999"}
    template = json.loads(gobiller("mail", "template", "Mass Mail", "--json").stdout)
    assert template["name"] == "Mass Mail" and "{{ client.first_name }}" in template["body_text"]
    unknown = gobiller("mail", "template", "Nope", "--json")
    assert json.loads(unknown.stdout) == {"error": "no email template named 'Nope'"}
    body = tmp_path / "body.txt"
    body.write_text("{{ client.nickname }}")
    unsafe = gobiller("mail", "template", "Mass Mail", "--body-file", str(body), "--json")
    assert unsafe.returncode == 1 and "nickname" in json.loads(unsafe.stdout)["error"]
    body.write_text("Hello {{ client.first_name }}")
    saved = gobiller("mail", "template", "Mass Mail", "--body-file", str(body), "--json")
    assert json.loads(saved.stdout) == {"name": "Mass Mail", "saved": True}


def test_mail_list_knows_every_email_status() -> None:
    from store.models.enums import EmailStatus
    from tui.cli import EMAIL_STATUSES

    assert EMAIL_STATUSES == tuple(s.value for s in EmailStatus)


def test_mail_flush_exits_1_when_the_mail_server_refuses_us(
    databases: Databases, tmp_path: Path
) -> None:
    """Nothing listening where the SMTP URL points: ``mail flush`` says why in one line and
    exits 1 (a crontab running it must see it), the email stays queued, no attempt used."""
    from store.models import Client, Currency, Email

    url = databases.open(databases.new_url())
    usd = Currency.create(code="USD", prefix="$", suffix=" USD", is_default=True)
    Client.create(first_name="C", last_name="X", email="c@example.com", currency=usd)
    with socket.socket() as unused:
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]  # bound, never listening: connections are refused
        env = {"GOBILLER_DATABASE": url, "GOBILLER_SMTP_URL": f"smtp://127.0.0.1:{port}"}
        assert run("mail", "mass", "--json", cwd=tmp_path, env=env).returncode == 0
        plain = run("mail", "flush", cwd=tmp_path, env=env)
        Email.update(next_attempt_at=Email.created_at).execute()
        as_json = run("mail", "flush", "--json", cwd=tmp_path, env=env)
    assert plain.returncode == 1 and "Traceback" not in plain.stderr
    assert "mail server: cannot connect to 127.0.0.1" in plain.stdout
    assert as_json.returncode == 1
    data = json.loads(as_json.stdout)
    assert "Connection refused" in data["session_error"] and data["sent"] == 0
    assert [(e.status, e.attempts) for e in Email.select()] == [("queued", 0)]
