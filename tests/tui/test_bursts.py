"""Keys typed in a burst land where they were meant to, in every screen.

A fast typist, a password manager or a slow SSH link delivers many keys in one read.
Textual routes each key to the widget focused when the app reads it and runs bindings
(Tab, Backspace, Enter) only when the key has bubbled back: without ``KeysInOrder`` a
burst went to the first widget (``admin`` Tab password Enter all into Username), and
Backspaces ran after the letters typed behind them. Each test sends its burst at once
and asserts the final field values:

- through Pilot: ``pilot.press(*keys)`` in one call, and straight into the app's queue as
  the terminal driver delivers a read (no pause between keys);
- through a real pseudo-terminal: ``gobiller``'s app in a child process at 80x24, the
  burst written with one ``write``, the fields read back by a probe key (F12).
"""

from __future__ import annotations

import json
import os
import pty
import struct
import subprocess
import sys
import termios
import threading
import time
from fcntl import ioctl
from pathlib import Path
from typing import Any

import pytest
from textual import events
from textual.app import App
from textual.pilot import Pilot
from textual.widgets import Input

from rules.audit import SYSTEM_CLI
from rules.clients.profile import update_client
from store.db import writer
from store.models import Client, Currency
from tests.conftest import STAFF_PASSWORD
from tui.app import StaffApp
from tui.screens.client_editor import ClientEditor
from tui.screens.client_list import ClientListScreen

ROOT = Path(__file__).resolve().parents[2]
SIZE = (80, 24)
NAMED = {
    "tab": "\t",
    "enter": "\r",
    "ctrl+j": "\n",
    "backspace": "\x7f",
    "slash": "/",
    "ctrl+l": "\x0c",
}


def add_clients(n: int) -> None:
    """``n`` clients, #1..#n, named Last000001.. (one insert); #5's phone holds "281"."""
    usd = Currency.get_or_create(code="USD", defaults={"is_default": True})[0]
    rows = []
    for i in range(1, n + 1):
        values: dict[str, Any] = {
            "id": i,
            "first_name": f"First{i}",
            "last_name": f"Last{i:06d}",
            "email": f"c{i}@example.com",
            "currency_id": usd.id,
        }
        rows.append(values | Client.derived_values(values))
    with writer():
        Client.insert_many(rows).execute()
    if n >= 281:
        update_client(5, 1, {"phone": "+44 20 7281 8750"}, SYSTEM_CLI)  # sorts before #281


def keys_of(*parts: str) -> list[str]:
    """Textual key names: named keys as they are, other parts one key per character."""
    keys: list[str] = []
    for part in parts:
        keys.extend([part] if part in NAMED else list(part))
    return keys


async def burst(pilot: Pilot[None], how: str, *parts: str) -> None:
    """Send every key at once: with one ``pilot.press`` call, or as a terminal read
    delivers them (all in the app's queue before the first is handled)."""
    keys = keys_of(*parts)
    if how == "pilot":
        await pilot.press(*keys)
    else:
        app = pilot.app
        assert app._driver is not None
        for key in keys:
            char = NAMED.get(key, key)
            app._driver.send_message(events.Key(key, char))
    await until_quiet(pilot)


async def until_quiet(pilot: Pilot[None], timeout: float = 60) -> None:
    """Until every key is handled and every worker (login check, search) is done."""
    app = pilot.app
    deadline = time.monotonic() + timeout
    await pilot.pause(0.05)
    while getattr(app, "keys_pending", 0) or any(w.is_running for w in app.workers):
        assert time.monotonic() < deadline, "keys or workers still pending"
        await pilot.pause(0.02)
    await pilot.pause()


def value(app: App[Any], selector: str) -> str:
    return app.screen.query_one(selector, Input).value


HOW = pytest.mark.parametrize("how", ["pilot", "driver"])


@HOW
async def test_a_login_typed_in_one_burst_logs_in_and_the_next_keys_reach_the_list(
    admin: str, how: str
) -> None:
    add_clients(3)
    app = StaffApp(lock_minutes=15)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await burst(pilot, how, "admin", "tab", STAFF_PASSWORD, "enter", "slash", "last000002")
        assert app.actor is not None and app.actor.name == "admin"
        assert isinstance(app.screen, ClientListScreen)
        assert value(app, "#search") == "last000002"


@HOW
async def test_a_login_typed_before_the_terminal_is_raw_logs_in(admin: str, how: str) -> None:
    """Typed ahead of the app, Enter goes through the terminal's line mode and arrives
    as a newline (ctrl+j): it still submits."""
    app = StaffApp(lock_minutes=15)
    async with app.run_test(size=SIZE) as pilot:
        await burst(pilot, how, "admin", "tab", STAFF_PASSWORD, "ctrl+j")
        assert app.actor is not None and isinstance(app.screen, ClientListScreen)


@HOW
async def test_a_wrong_password_then_the_right_one_typed_ahead_logs_in(
    admin: str, how: str
) -> None:
    """Keys typed while a login is checked wait for the answer: the failure empties the
    password field, then the retyped password goes into it."""
    app = StaffApp(lock_minutes=15)
    async with app.run_test(size=SIZE) as pilot:
        await pilot.pause()
        await burst(pilot, how, "admin", "tab", "wrong password", "enter", STAFF_PASSWORD, "enter")
        assert app.actor is not None and isinstance(app.screen, ClientListScreen)


@HOW
async def test_a_search_retyped_in_one_burst_is_the_search(admin: str, how: str) -> None:
    add_clients(3)
    app = StaffApp(lock_minutes=15)
    async with app.run_test(size=SIZE) as pilot:
        await burst(pilot, how, "admin", "tab", STAFF_PASSWORD, "enter")
        await burst(pilot, how, "slash", "abcdefgh", *["backspace"] * 8, "dvorak1")
        assert value(app, "#search") == "dvorak1"
        await burst(pilot, how, *["backspace"] * 7, "last00000", "backspace", "03")
        assert value(app, "#search") == "last000003"
        screen = app.screen
        assert isinstance(screen, ClientListScreen)
        assert screen.table.query_spec.search == "last000003"
        assert screen.table.total == 1


@HOW
async def test_an_id_typed_then_enter_opens_that_client(admin: str, how: str) -> None:
    add_clients(300)
    app = StaffApp(lock_minutes=15)
    async with app.run_test(size=SIZE) as pilot:
        await burst(pilot, how, "admin", "tab", STAFF_PASSWORD, "enter")
        await burst(pilot, how, "slash", "281", "enter", "enter")
        assert isinstance(app.screen, ClientEditor)
        assert app.screen.client_id == 281


@HOW
async def test_fields_typed_in_one_burst_land_in_their_own_fields(admin: str, how: str) -> None:
    add_clients(1)
    app = StaffApp(lock_minutes=15)
    async with app.run_test(size=SIZE) as pilot:
        await burst(pilot, how, "admin", "tab", STAFF_PASSWORD, "enter")
        await burst(pilot, how, "n", "Fast", "tab", "Typist", "tab", "Keys Ltd")
        assert isinstance(app.screen, ClientEditor)
        assert value(app, "#f-first_name") == "Fast"
        assert value(app, "#f-last_name") == "Typist"
        assert value(app, "#f-company") == "Keys Ltd"


@HOW
async def test_an_unlock_typed_ahead_then_a_search_reaches_the_list(admin: str, how: str) -> None:
    app = StaffApp(lock_minutes=15)
    async with app.run_test(size=SIZE) as pilot:
        await burst(pilot, how, "admin", "tab", STAFF_PASSWORD, "enter")
        await burst(pilot, how, "ctrl+l", STAFF_PASSWORD, "enter", "slash", "abc")
        assert not app.locked
        assert isinstance(app.screen, ClientListScreen)
        assert value(app, "#search") == "abc"


# -- a real terminal ---------------------------------------------------------------------

PROBE = """
import json, os, sys
sys.path.insert(0, {root!r})
from textual.binding import Binding
from textual.widgets import Input
from store.db import open_database
open_database({url!r})
from tui.app import StaffApp


class Probe(StaffApp):
    CSS_PATH = {css!r}
    BINDINGS = [Binding("f12", "probe", "Probe", priority=True, id="test.probe")]

    def action_probe(self):
        screen = self.screen
        state = {{
            "screen": type(screen).__name__,
            "client_id": getattr(screen, "client_id", None),
            "fields": {{w.id: w.value for w in screen.query(Input) if w.id}},
        }}
        with open({out!r} + ".tmp", "w") as f:
            json.dump(state, f)
        os.replace({out!r} + ".tmp", {out!r})


Probe(lock_minutes=15).run()
"""
F12 = b"\x1b[24~"


class Terminal:
    """The staff app in a child process on an 80x24 pseudo-terminal."""

    def __init__(self, url: str, tmp_path: Path) -> None:
        self.out = tmp_path / "probe.json"
        master, slave = pty.openpty()
        ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
        self.master = master
        self.child = subprocess.Popen(
            [
                sys.executable,
                "-c",
                PROBE.format(
                    root=str(ROOT), url=url, out=str(self.out), css=str(ROOT / "tui" / "app.tcss")
                ),
            ],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**os.environ, "TERM": "xterm-256color", "TEXTUAL_ANIMATIONS": "none"},
            start_new_session=True,
        )
        os.close(slave)
        self.screen = b""
        self.lock = threading.Lock()
        # Drain the terminal all the time: a child whose output is not read blocks.
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        while True:
            try:
                data = os.read(self.master, 1 << 16)
            except OSError:
                return
            if not data:
                return
            with self.lock:
                self.screen += data

    def wait_for(self, text: bytes, timeout: float = 90) -> None:
        """Until ``text`` has been painted (keys sent earlier could reach a half-built app)."""
        deadline = time.monotonic() + timeout
        while True:
            with self.lock:
                if text in self.screen:
                    return
            if self.child.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{text!r} never painted:\n{self.screen[-3000:]!r}")
            time.sleep(0.05)

    def type(self, data: bytes) -> None:
        """The whole burst in one write, as a password manager or a fast typist sends it."""
        os.write(self.master, data)

    def state_becomes(self, expected: dict[str, Any], timeout: float = 90) -> dict[str, Any]:
        """Probe (F12) until the screen and fields match ``expected``; the last state seen.
        The final state is asserted, not how soon it is reached."""
        deadline = time.monotonic() + timeout
        state: dict[str, Any] = {}
        while time.monotonic() < deadline and self.child.poll() is None:
            self.out.unlink(missing_ok=True)
            self.type(F12)
            answered = time.monotonic() + 10
            while not self.out.exists() and time.monotonic() < answered:
                time.sleep(0.05)
            if self.out.exists():
                state = json.loads(self.out.read_text())
                fields = state.get("fields", {})
                if all(
                    (state.get(k) if k in ("screen", "client_id") else fields.get(k)) == v
                    for k, v in expected.items()
                ):
                    return state
            time.sleep(0.5)
        raise AssertionError(f"expected {expected}, last state {state}")

    def close(self) -> None:
        self.child.kill()
        self.child.wait()
        os.close(self.master)
        self.reader.join(timeout=5)


@pytest.fixture
def terminal(admin: str, tmp_path: Path) -> Any:
    opened: list[Terminal] = []

    def start() -> Terminal:
        term = Terminal(admin, tmp_path)
        opened.append(term)
        return term

    yield start
    for term in opened:
        term.close()


def test_bursts_in_a_real_terminal_land_in_their_fields(terminal: Any) -> None:
    """Login, search, an id and Enter, then a new client's fields: each phase one write."""
    add_clients(300)
    term = terminal()
    term.wait_for(b"staff login")
    password = STAFF_PASSWORD.encode()
    term.type(b"admin\t" + password + b"\r" + b"/dvo")
    term.state_becomes({"screen": "ClientListScreen", "search": "dvo"})

    term.type(b"abcdefgh" + b"\x7f" * 11 + b"dvorak1")
    term.state_becomes({"screen": "ClientListScreen", "search": "dvorak1"})

    term.type(b"\x7f" * 7 + b"281\r\r")
    term.state_becomes({"screen": "ClientEditor", "client_id": 281})

    term.type(b"\x1b")  # back to the list (no edits: nothing to confirm)
    term.state_becomes({"screen": "ClientListScreen"})
    # The table has the focus again: n is New client. (Esc is written apart: ESC then n
    # in one read is alt+n.)
    term.type(b"nFast\tTypist\tKeys Ltd")
    term.state_becomes(
        {
            "screen": "ClientEditor",
            "f-first_name": "Fast",
            "f-last_name": "Typist",
            "f-company": "Keys Ltd",
        }
    )


def test_a_login_typed_before_the_app_is_up_logs_in(terminal: Any) -> None:
    """As `tmux send-keys` right after starting `gobiller`: the burst is in the terminal
    before the app reads it, Enter turned into a newline by the line mode."""
    term = terminal()
    term.type(b"admin\t" + STAFF_PASSWORD.encode() + b"\r")
    term.state_becomes({"screen": "ClientListScreen"})
