"""Every file GoBiller writes is written whole or not at all: a full disk, a file size
limit, a missing or read-only folder leave the previous file as it was, and the user
reads why in one line, never a traceback."""

from __future__ import annotations

import datetime as dt
import os
import pwd
import resource
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from rules.demo import generate_demo
from tests.conftest import Databases

DAY = dt.date(2026, 3, 10)
OLD = b'{"format": "gobiller/1", "the": "previous export"}\n'


def _gobiller(
    url: str, *args: str, limit: int | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    def cap() -> None:
        if limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run(
        [sys.executable, "-m", "tui.cli", "--database", url, *args],
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=cap,
        cwd=cwd,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A real 64 KiB file system (tmpfs); needs root, as CI and this machine are."""
    mount = tmp_path / "small"
    mount.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root (the file size limit test still runs)")
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k,mode=0755", "tmpfs", str(mount)],
        capture_output=True,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr!r}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def _with_data(databases: Databases) -> str:
    url = databases.new_url()
    databases.open(url)
    generate_demo(80, seed=2, today=DAY)  # an export of about 230 KB
    return url


def _refused(out: subprocess.CompletedProcess[str], reason: str) -> None:
    assert out.returncode != 0, out.stdout
    said = out.stdout + out.stderr
    assert "Traceback" not in said, said
    assert reason in said, said
    assert len(out.stderr.strip().splitlines()) == 1, out.stderr


def test_file_write_on_a_full_disk_keeps_the_previous_file(
    databases: Databases, small_disk: Path
) -> None:
    url = _with_data(databases)
    target = small_disk / "export.json"
    target.write_bytes(OLD)
    _refused(_gobiller(url, "export", str(target)), "disk full")
    assert target.read_bytes() == OLD
    assert sorted(p.name for p in small_disk.iterdir()) == ["export.json"]  # no leftovers
    # With room again, the same command replaces the file whole.
    roomy = small_disk.parent / "export.json"
    roomy.write_bytes(OLD)
    assert _gobiller(url, "export", str(roomy)).returncode == 0
    assert roomy.read_bytes().startswith(b'{\n "format": "gobiller/1"')


def test_file_write_beyond_the_file_size_limit_keeps_the_previous_file(
    databases: Databases, tmp_path: Path
) -> None:
    url = _with_data(databases)
    target = tmp_path / "out" / "export.json"
    target.parent.mkdir()
    target.write_bytes(OLD)
    _refused(
        _gobiller(url, "export", str(target), limit=48 * 1024),
        "file too large for this system's file size limit",
    )
    assert target.read_bytes() == OLD
    assert sorted(p.name for p in target.parent.iterdir()) == ["export.json"]


def test_file_write_into_a_missing_folder_is_refused(databases: Databases, tmp_path: Path) -> None:
    url = _with_data(databases)
    target = tmp_path / "no" / "such" / "export.json"
    _refused(_gobiller(url, "export", str(target)), f"no such folder {target.parent}")
    out = _gobiller(url, "export", str(target), "--json")
    assert out.returncode == 1 and '"error": "cannot write' in out.stdout
    assert not (tmp_path / "no").exists()
    login = tmp_path / "none" / "demo.login"
    fresh = databases.new_url()
    out = _gobiller(fresh, "demo", "--clients", "1", "--login-file", str(login))
    assert out.returncode == 1 and "no such folder" in out.stderr
    assert "Traceback" not in out.stderr and "Staff login: admin /" in out.stdout


def test_file_write_into_a_read_only_folder_keeps_the_previous_file(
    databases: Databases, small_disk: Path
) -> None:
    url = _with_data(databases)
    target = small_disk / "export.json"
    target.write_bytes(OLD)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    _refused(_gobiller(url, "export", str(target)), "read-only file system")
    assert target.read_bytes() == OLD


def test_file_write_without_permission_keeps_the_previous_file() -> None:
    """As a user who may not write the folder: root may write anywhere, so a forked child
    becomes nobody first."""
    from store.files import FileWriteError, write_atomically

    top = Path(tempfile.mkdtemp(prefix="gobiller-perm-"))  # under /tmp: nobody may enter
    try:
        top.chmod(0o755)
        folder = top / "locked"
        folder.mkdir(mode=0o755)
        target = folder / "export.json"
        target.write_bytes(OLD)
        folder.chmod(0o555)
        read, write = os.pipe()
        child = os.fork()
        if child == 0:  # pragma: no cover - the child reports through the pipe
            try:
                os.close(read)
                if os.geteuid() == 0:
                    nobody = pwd.getpwnam("nobody")
                    os.setgid(nobody.pw_gid)
                    os.setuid(nobody.pw_uid)
                try:
                    write_atomically(target, "new")
                    said = "written"
                except FileWriteError as exc:
                    said = str(exc)
                os.write(write, said.encode())
            finally:
                os._exit(0)
        os.close(write)
        with os.fdopen(read, "rb") as pipe:
            said = pipe.read().decode()
        os.waitpid(child, 0)
        assert said == f"cannot write {target}: permission denied"
        assert target.read_bytes() == OLD
        assert sorted(p.name for p in folder.iterdir()) == ["export.json"]
    finally:
        folder.chmod(0o755)
        shutil.rmtree(top)


def test_file_write_of_a_maildir_message_on_a_full_disk_is_retried_not_torn(
    small_disk: Path,
) -> None:
    """The Maildir's own protocol: a message is in new/ whole or not at all; on a full
    disk it stays queued for a retry."""
    from rules.mail.delivery import MaildirTransport, TransientError

    box = small_disk / "Maildir"
    transport = MaildirTransport(box)
    transport.open()
    big = EmailMessage()
    big["To"] = "a@example.com"
    big["Subject"] = "big"
    big.set_content("x" * 200_000)
    with pytest.raises(TransientError, match="disk full"):
        transport.send(big, "a@example.com")
    assert list((box / "new").iterdir()) == list((box / "tmp").iterdir()) == []
    small = EmailMessage()
    small["To"] = "a@example.com"
    small["Subject"] = "small"
    small.set_content("hello")
    transport.send(small, "a@example.com")
    assert list((box / "new").iterdir()) == []  # written into tmp/, delivered at the batch's end
    assert transport.end_batch() == {}
    [delivered] = list((box / "new").iterdir())
    assert b"hello" in delivered.read_bytes()
