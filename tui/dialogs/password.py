"""Ask for a password (the idle lock)."""

from __future__ import annotations

from collections.abc import Callable

from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from rules.errors import RuleError
from tui.widgets.error_line import ErrorLine


class LockScreen(ModalScreen[None]):
    """Covers everything until the same staff member types their password.

    ``check`` (``rules.accounts.staff.check_password``) hashes and writes the throttle and audit:
    it runs in a thread worker, never on the event loop. It returns False for a wrong
    password and raises a ``RuleError`` ("too many attempts, try again in N s") while
    the account refuses attempts.
    """

    def __init__(self, username: str, check: Callable[[str], bool]) -> None:
        super().__init__()
        self.username = username
        self.check = check
        #: While a password is checked, keys wait (``KeysInOrder``): typed after a wrong one,
        #: they go into the emptied field instead of being wiped with it.
        self.holds_keys = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("Locked after inactivity", classes="dialog-title")
            yield Static(f"Password for {self.username}:", markup=False)
            yield Input(password=True, id="unlock-password")
            yield ErrorLine(id="unlock-error")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one("#unlock-error", Static).update("Checking…")
        self.holds_keys = True
        self.verify(event.value)

    @work(thread=True, exclusive=True)
    def verify(self, password: str) -> None:
        try:
            ok = self.check(password)
        except RuleError as exc:
            self.app.call_from_thread(self._wrong, str(exc).capitalize())
            return
        if ok:
            self.app.call_from_thread(self.dismiss, None)
        else:
            self.app.call_from_thread(self._wrong, "Wrong password")

    def _wrong(self, message: str) -> None:
        password = self.query_one("#unlock-password", Input)
        password.value = ""
        password.focus()
        self.query_one("#unlock-error", Static).update(message)
        self.holds_keys = False
