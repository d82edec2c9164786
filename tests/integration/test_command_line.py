"""The command line's promises to scripts, for every command at once: ``--json`` is
accepted everywhere and every error under it is one JSON object; a configuration error
exits 78 (EX_CONFIG) wherever it arises; ``--version``; headless commands never load
Textual. Commands are found by walking the click group, so a new command is covered
(and must keep the promises) without touching this file."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import click
import pytest

from tui.cli import main
from tui.exits import Exit

GOBILLER = [sys.executable, "-m", "tui.cli"]


def _commands(group: click.Group, path: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Every command a user can run: leaf commands and groups that run on their own
    (``cron``); not the root (it opens the staff app) nor groups that only hold others."""
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            if command.invoke_without_command:
                yield (*path, name)
            yield from _commands(command, (*path, name))
        else:
            yield (*path, name)


def _command(path: tuple[str, ...]) -> click.Command:
    command: click.Command = main
    for name in path:
        assert isinstance(command, click.Group)
        command = command.commands[name]
    return command


COMMANDS = list(_commands(main))


def _arguments(command: click.Command, tmp_path: Path) -> list[str]:
    """A value for each positional argument and required option, of the kind it takes."""
    values = []
    for param in command.params:
        if isinstance(param, click.Option):
            if param.required:
                choices = getattr(param.type, "choices", None)
                values += [param.opts[0], str(choices[0]) if choices else "1"]
            continue
        if isinstance(param.type, click.IntRange | click.types.IntParamType):
            values.append("1")
        elif isinstance(param.type, click.Path):
            existing = tmp_path / "input.json"
            existing.write_text("{}")
            values.append(str(existing))
        else:
            values.append("Invoice Created")
    return values


def test_the_walk_finds_the_commands_of_the_readme() -> None:
    """The walk is not vacuous: it reaches nested commands and runnable groups."""
    for expected in [("config",), ("mail", "show"), ("mail", "template"), ("cron",)]:
        assert expected in COMMANDS
    assert ("cron", "status") in COMMANDS and ("db", "upgrade") in COMMANDS
    assert ("mail",) not in COMMANDS  # a group of commands only: nothing to run


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_every_command_takes_json(path: tuple[str, ...]) -> None:
    command = _command(path)
    assert any("--json" in p.opts for p in command.params), f"gobiller {' '.join(path)}"


#: Configuration faults, each as (environment, gobiller.toml text or None, options).
CONFIG_FAULTS: dict[str, tuple[dict[str, str], str | None, list[str]]] = {
    "unknown URL scheme in --database": ({}, None, ["--database", "mysql://db/gobiller"]),
    "SQLite URL without a file": ({}, None, ["--database", "sqlite://"]),
    "bad GOBILLER_DATABASE": ({"GOBILLER_DATABASE": "oracle://x"}, None, []),
    "bad GOBILLER_SMTP_URL port": ({"GOBILLER_SMTP_URL": "smtp://mail.test:99999"}, None, []),
    "gobiller.toml not TOML": ({}, "[database\nurl =", []),
    "gobiller.toml unknown table": ({}, '[databse]\nurl = "sqlite:///x.db"\n', []),
    "gobiller.toml unknown key": ({}, '[database]\nuri = "sqlite:///x.db"\n', []),
    "gobiller.toml table not a table": ({}, "mail = 5\n", []),
    "gobiller.toml maildir not text": ({}, "[mail]\nmaildir = 5\n", []),
    "gobiller.toml smtp port out of range": ({}, '[smtp]\nhost = "m"\nport = 0\n', []),
    "gobiller.toml smtp password not text": ({}, '[smtp]\nhost = "m"\npassword = 1\n', []),
    "gobiller.toml database URL scheme": ({}, '[database]\nurl = "db2://x"\n', []),
}


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working folder and user folders of our own (no gobiller.toml of the machine's)."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    for name in ("GOBILLER_DATABASE", "GOBILLER_SMTP_URL"):
        monkeypatch.delenv(name, raising=False)
    return work


@pytest.mark.parametrize("fault", list(CONFIG_FAULTS))
def test_a_configuration_error_exits_78_as_one_json_error_from_every_command(
    fault: str,
    isolated: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Whichever command meets a configuration fault (a bad URL from the option, the
    environment or gobiller.toml; a mistyped or unknown setting; a bad SMTP URL), it
    exits 78 with ``{"error": ...}`` as its only output under ``--json``, and writes
    nothing (no database file is created)."""
    env, toml, options = CONFIG_FAULTS[fault]
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    if toml is not None:
        (isolated / "gobiller.toml").write_text(toml)
    for path in COMMANDS:
        args = [*options, *path, *_arguments(_command(path), isolated), "--json"]
        with pytest.raises(SystemExit) as exited:
            main.main(args, prog_name="gobiller")
        out, err = capsys.readouterr()
        shown = f"gobiller {' '.join(args)}: {out!r} {err!r}"
        assert exited.value.code == Exit.CONFIG, shown
        assert list(json.loads(out)) == ["error"] and err == "", shown
    assert not list((isolated.parent / "data").glob("**/*.sqlite3"))


def test_the_error_names_where_the_bad_setting_came_from(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (isolated / "gobiller.toml").write_text('[database]\nurl = "mongodb://u:secret@h/db"\n')
    with pytest.raises(SystemExit):
        main.main(["config", "--json"])
    error = json.loads(capsys.readouterr().out)["error"]
    assert "gobiller.toml: [database] url" in error and "unsupported database URL" in error
    assert "secret" not in error  # a password in the URL is never shown
    monkeypatch.setenv("GOBILLER_DATABASE", "sqlite://")
    with pytest.raises(SystemExit):
        main.main(["config"])
    assert capsys.readouterr().err.startswith("Error: GOBILLER_DATABASE: SQLite URL")


def test_an_unknown_postgresql_connection_option_is_a_configuration_error(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """The PostgreSQL driver refusing the URL itself (``invalid dsn``) is the URL's
    fault (78), not a bug in GoBiller (70) nor an unreachable server (69)."""
    base = os.environ.get("GOBILLER_TEST_POSTGRES")
    if not base:
        pytest.skip("needs GOBILLER_TEST_POSTGRES")
    with pytest.raises(SystemExit) as exited:
        main.main(["--database", f"{base}?sslmod=require", "db", "status", "--json"])
    assert exited.value.code == Exit.CONFIG
    assert "invalid connection option" in json.loads(capsys.readouterr().out)["error"]


def test_a_missing_postgresql_driver_is_a_configuration_error(tmp_path: Path) -> None:
    """A PostgreSQL URL where the driver is not installed (GoBiller without its
    ``postgres`` extra) says what to install and exits 78, not as an internal error."""
    script = """
import sys
sys.modules["psycopg2"] = None  # as if not installed
from tui.cli import main
main.main(["--database", "postgresql://gobiller@127.0.0.1/gobiller", "db", "status", "--json"])
"""
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path, timeout=60
    )
    assert out.returncode == Exit.CONFIG, out.stdout + out.stderr
    assert "gobiller[postgres]" in json.loads(out.stdout)["error"]


def test_version_is_the_installed_package_version() -> None:
    installed = version("gobiller")
    out = subprocess.run([*GOBILLER, "--version"], capture_output=True, text=True, timeout=60)
    assert (out.returncode, out.stdout) == (0, f"gobiller {installed}\n")
    out = subprocess.run(
        [*GOBILLER, "--version", "--json"], capture_output=True, text=True, timeout=60
    )
    assert (out.returncode, json.loads(out.stdout)) == (0, {"version": installed})


def test_headless_commands_never_import_textual(tmp_path: Path) -> None:
    """``--version``, ``config`` and commands that open the database run without
    Textual in ``sys.modules`` (cron on a server has no terminal to draw on)."""
    url = f"sqlite:///{tmp_path / 'x.sqlite3'}"
    script = f"""
import sys
from tui.cli import main
for args in (["--version"], ["config", "--json"], ["--database", {url!r}, "db", "status"],
             ["--database", {url!r}, "mail", "list", "--json"],
             ["--database", {url!r}, "cron", "status", "--json"]):
    try:
        main.main(args)
    except SystemExit:
        pass
print("loaded:", sorted(m for m in sys.modules if m.split(".")[0] in ("textual", "rich")))
"""
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path), "XDG_CONFIG_HOME": str(tmp_path)}
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.splitlines()[-1] == "loaded: []", out.stdout
