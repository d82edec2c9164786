"""Staff login: username and password (argon2), nothing else on screen."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Button, Input, Label, Static

from rules.accounts.staff import LoginFailed, authenticate
from rules.audit import Actor, client_address
from tui.widgets.error_line import ErrorLine
from tui.widgets.text_input import TextInput


class LoginScreen(Screen[None]):
    """``holds_keys`` while a login is checked: keys typed meanwhile (a password manager's
    burst, or the first keys meant for the client list) are handled after the answer, by
    the client list or by the password field the failure focuses (``KeysInOrder``)."""

    class LoggedIn(Message):
        def __init__(self, actor: Actor) -> None:
            super().__init__()
            self.actor = actor

    def __init__(self) -> None:
        super().__init__()
        self.holds_keys = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="login"):
            yield Static("GoBiller staff login", classes="dialog-title")
            yield Label("Username")
            yield TextInput(id="username")
            yield Label("Password")
            yield TextInput(password=True, id="password")
            yield ErrorLine(id="login-error")
            yield Button("Log in", id="login-button", variant="primary")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if event.input.id == "username":
            self.query_one("#password", Input).focus()
        else:
            self._try_login()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self._try_login()

    def _try_login(self) -> None:
        self.query_one("#login-error", Static).update("Checking…")
        self.holds_keys = True
        self.check(
            self.query_one("#username", Input).value, self.query_one("#password", Input).value
        )

    @work(thread=True, exclusive=True)
    def check(self, username: str, password: str) -> None:
        """argon2 is slow on purpose: verify off the UI thread. After repeated failures the
        rule refuses at once ("too many attempts, try again in N s"): nothing waits here."""
        try:
            actor = authenticate(username, password, address=client_address())
        except LoginFailed as exc:
            self.app.call_from_thread(self._failed, str(exc))
            return
        self.app.call_from_thread(self.post_message, self.LoggedIn(actor))

    def _failed(self, message: str) -> None:
        self.query_one("#login-error", Static).update(message.capitalize())
        password = self.query_one("#password", Input)
        password.value = ""
        password.focus()
        self.holds_keys = False
