"""Terminal escapes from the database never reach the terminal (issue 10, kind 12).

Values written around the validators carry escape sequences (an OSC title change,
a clear screen, a C1 CSI); the staff app draws them in the client list, the editor's
fields and title, the email log, the message view and a notification. What the app
writes to the terminal (the compositor's output, byte for byte as the driver writes
it) holds Textual's own control sequences and nothing from the data: the data's
control characters are there as visible symbols.
"""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path

from textual.app import App

from store.db import database, is_postgres, writer
from store.models import Email
from tests.conftest import Databases
from tests.tui.test_staff_app import SIZE, login, make_clients, settle
from tui.app import StaffApp
from tui.dialogs.message import MessageDialog
from tui.screens.client_editor import ClientEditor
from tui.screens.email_log import EmailLogScreen

TITLE = "\x1b]2;pwned\x07"
HOSTILE = f"Eve{TITLE}\x1b[2J\x9b31m\x00\x7fX"
#: Textual's own output: CSI sequences (cursor moves, colours, modes).
OWN_SEQUENCES = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]")
CONTROL = re.compile(r"[\x00-\x09\x0b-\x1f\x7f-\x9f]")


def _sql(statement: str, *params: object) -> None:
    with writer():
        database.execute_sql(statement.replace("?", database.param), params)


def terminal_output(app: App[None]) -> str:
    """Everything the driver would write to draw the current screen in full."""
    update = app.screen._compositor.render_update(full=True)
    return str(update.render_segments(app.console))


def assert_no_control_from_data(app: App[None], where: str) -> str:
    output = terminal_output(app)
    stray = CONTROL.findall(OWN_SEQUENCES.sub("", output))
    assert not stray, (where, stray)
    return output


async def test_terminal_escapes_from_the_database_never_reach_the_terminal(admin: str) -> None:
    hostile = HOSTILE.replace("\x00", "") if is_postgres() else HOSTILE  # no NUL in PG text
    [client] = make_clients(1)
    _sql(
        "UPDATE client SET first_name = ?, company = ?, city = ? WHERE id = ?",
        hostile,
        hostile,
        hostile,
        client.id,
    )
    with writer():
        email = Email.create(
            client=client,
            template="Mass Mail",
            to=f"eve{TITLE}@example.com",
            subject=hostile,
            body_text=f"Body {hostile}\nline two",
        )
    app = StaffApp()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await login(pilot)
        shown = assert_no_control_from_data(app, "client list")
        assert "Eve␛]2;pwned" in shown and "␛[2J" in shown

        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, ClientEditor)
        shown = assert_no_control_from_data(app, "client editor")
        assert "␛]2;pwned" in shown

        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("l")
        await settle(pilot)
        assert isinstance(app.screen, EmailLogScreen)
        assert_no_control_from_data(app, "email log")

        await pilot.press("enter")
        await settle(pilot)
        assert isinstance(app.screen, MessageDialog)
        shown = assert_no_control_from_data(app, "message view")
        assert "Body Eve␛]2;pwned" in shown

        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("r")  # resend: the notification names the address
        await settle(pilot)
        await pilot.pause(0.3)  # the toast is mounted after the message that shows it
        assert Email.select().count() == 2
        shown = assert_no_control_from_data(app, "notification")
        assert "Queued a copy" in shown and "to eve␛]2;pwned" in shown
    assert Email.get_by_id(email.id).subject == hostile  # shown safely, stored as it was


def _run_in_terminal(*args: str) -> tuple[int, str]:
    """Run ``gobiller`` with a terminal (a pty) as its stdout and stderr, as staff would."""
    main, child = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tui.cli", *args],
        stdin=subprocess.DEVNULL,
        stdout=child,
        stderr=child,
        env={**os.environ, "TERM": "xterm", "COLUMNS": "200"},
    )
    os.close(child)
    chunks = []
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    os.close(main)
    return proc.wait(timeout=120), b"".join(chunks).decode("utf-8", "replace")


def test_terminal_escapes_from_the_database_never_reach_the_terminal_from_a_command(
    databases: Databases, tmp_path: Path
) -> None:
    url = databases.open(databases.new_url())
    hostile = HOSTILE.replace("\x00", "") if is_postgres() else HOSTILE
    [client] = make_clients(1)
    _sql("UPDATE client SET first_name = ? WHERE id = ?", hostile, client.id)
    with writer():
        email = Email.create(
            client=client,
            template="Mass Mail",
            to="eve@example.com",
            subject=hostile,
            body_text=f"Body {hostile}",
        )
    bad_import = tmp_path / "bad.json"
    bad_import.write_text(json.dumps({"format": "gobiller/1", f"x{TITLE}": 1}))
    for args in (
        ["mail", "show", str(email.id)],
        ["mail", "list"],
        ["mail", "list", "--json"],
        ["import", str(bad_import)],
    ):
        code, shown = _run_in_terminal("--database", url, *args)
        stray = CONTROL.findall(shown.replace("\r\n", "\n"))
        assert not stray, (args, code, stray, shown)
        assert "␛]2;pwned" in shown or "\\u001b]2;pwned" in shown, (args, shown)  # JSON escapes
