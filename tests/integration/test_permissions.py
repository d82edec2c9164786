"""Secrets are private: what GoBiller creates is 0600 (files) / 0700 (folders) whatever
the umask, and ``gobiller doctor`` warns (exit 1) when an existing file is readable by
others."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from store.db import close_database, open_database
from store.migrate import upgrade
from store.models import Setting
from tests.conftest import ROOT, Databases


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def open_umask() -> Iterator[None]:
    """The usual umask of a login shell, which lets others read new files."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def _gobiller(*args: str, cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tui.cli", *args],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=cwd,
        env={
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "HOME": str(home),
            "XDG_DATA_HOME": str(home / "data"),
            "XDG_CONFIG_HOME": str(home / "config"),
            "GOBILLER_DATABASE": "",
            "GOBILLER_SMTP_URL": "",
        },
        preexec_fn=lambda: os.umask(0o022),
    )


def _permissions(work: Path, home: Path) -> dict[str, str]:
    """The permissions check of ``gobiller doctor --json`` (the other checks need a cron
    run and real settings: ``test_doctor``)."""
    out = _gobiller("doctor", "--json", cwd=work, home=home)
    assert "Traceback" not in out.stderr
    checks = json.loads(out.stdout)["checks"]
    return next(c for c in checks if c["name"] == "permissions")


def test_secrets_are_private_sqlite_database_wal_and_folders(
    tmp_path: Path, open_umask: None
) -> None:
    path = tmp_path / "new" / "deeper" / "gobiller.sqlite3"
    close_database()
    open_database(f"sqlite:///{path}")
    try:
        upgrade()
        Setting.create(key="company_name", value='"ACME"')
        wal, shm = Path(f"{path}-wal"), Path(f"{path}-shm")
        assert wal.exists() and shm.exists()  # WAL mode, connection open
        assert (mode(path), mode(wal), mode(shm)) == (0o600, 0o600, 0o600)
        assert mode(path.parent) == 0o700 and mode(path.parent.parent) == 0o700
    finally:
        close_database()


def test_secrets_are_private_maildir_messages(tmp_path: Path, open_umask: None) -> None:
    from rules.mail.delivery import MaildirTransport

    box = tmp_path / "mail" / "Maildir"
    transport = MaildirTransport(box)
    transport.open()
    message = EmailMessage()
    message["To"] = "a@example.com"
    message["Subject"] = "Your new password"
    message.set_content("Password: s3cret-s3cret")
    transport.send(message, "a@example.com")
    [written] = list((box / "tmp").iterdir())
    assert mode(written) == 0o600
    transport.end_batch()
    [delivered] = list((box / "new").iterdir())
    assert mode(delivered) == 0o600
    assert {mode(p) for p in (box, box / "tmp", box / "new", box / "cur", box.parent)} == {0o700}


def test_secrets_are_private_export_login_file_and_cron_lock(
    databases: Databases, tmp_path: Path
) -> None:
    url = databases.new_url()
    home = tmp_path / "home"
    home.mkdir()
    export, login = tmp_path / "export.json", tmp_path / "demo.login"
    export.write_text("old")
    export.chmod(0o644)  # an older export: replaced by a private one
    demo = ["demo", "--clients", "20", "--date", "2026-03-10", "--login-file", str(login)]
    out = _gobiller("--database", url, *demo, cwd=tmp_path, home=home)
    assert out.returncode == 0, out.stderr
    assert login.read_text().startswith("Staff login: admin / ") and mode(login) == 0o600
    out = _gobiller("--database", url, "export", str(export), cwd=tmp_path, home=home)
    assert out.returncode == 0, out.stderr
    assert mode(export) == 0o600
    out = _gobiller("--database", url, "cron", "--date", "2026-03-10", cwd=tmp_path, home=home)
    assert out.returncode in (0, 1), out.stderr
    if url.startswith("sqlite"):
        db_file = Path(url.split("sqlite:///", 1)[1])
        assert mode(db_file) == 0o600
        assert mode(Path(f"{db_file}.cron.lock")) == 0o600
    maildir = home / "data" / "gobiller" / "Maildir"
    messages = list((maildir / "new").iterdir())
    assert messages and {mode(m) for m in messages} == {0o600}
    assert mode(maildir) == 0o700


def test_secrets_readable_by_others_make_doctor_warn(tmp_path: Path) -> None:
    home = tmp_path / "home"
    (home / "data" / "gobiller" / "Maildir" / "new").mkdir(parents=True)
    work = tmp_path / "work"
    work.mkdir()
    db_file = work / "gobiller.sqlite3"
    config = work / "gobiller.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{db_file}"\n\n'
        '[smtp]\nhost = "mail.example.com"\nusername = "billing"\npassword = "secret"\n'
    )
    # A clean installation first: nothing to report.
    config.chmod(0o600)
    out = _gobiller("db", "upgrade", cwd=work, home=home)
    assert out.returncode == 0, out.stderr
    maildir = home / "data" / "gobiller" / "Maildir"
    for folder in (maildir.parent.parent, maildir.parent, maildir, maildir / "new"):
        folder.chmod(0o700)
    assert _permissions(work, home) == {
        "name": "permissions",
        "status": "OK",
        "detail": "no GoBiller file or folder is readable by others",
    }
    # Then what an older version (or a copy by hand) left: readable by others.
    message = maildir / "new" / "1700000000.M1P1Q1.host"
    message.write_text("Subject: Your password\n\nPassword: s3cret")
    for path, bits in (
        (db_file, 0o644),
        (config, 0o644),
        (maildir, 0o755),
        (maildir / "new", 0o755),
        (message, 0o644),
    ):
        path.chmod(bits)
    out = _gobiller("doctor", cwd=work, home=home)
    assert out.returncode == 1, out.stdout + out.stderr
    assert "Traceback" not in out.stderr
    line = next(x for x in out.stdout.splitlines() if x.startswith("WARN permissions: "))
    for path in (db_file, config, maildir, maildir / "new", message):
        assert f"{path}: " in line, line
    assert "a config file holding a password" in line
    check = _permissions(work, home)
    assert check["status"] == "WARN" and check["detail"] == line.split(": ", 1)[1]
    assert "(mode 0644)" in check["detail"] and "(mode 0755)" in check["detail"]
    # A config file without a password may be readable (e.g. /etc/gobiller/config.toml).
    config.write_text(f'[database]\nurl = "sqlite:///{db_file}"\n')
    for path, bits in ((db_file, 0o600), (maildir, 0o700), (maildir / "new", 0o700)):
        path.chmod(bits)
    message.chmod(0o600)
    assert _permissions(work, home)["status"] == "OK"
