"""Ask for a password (the idle lock)."""

from __future__ import annotations

from collections.abc import Callable

from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from tui.background import failure_text, thread_connection
from tui.widgets.error_line import ErrorLine
from tui.widgets.text_input import TextInput


class LockScreen(ModalScreen[None]):
    """Covers everything until the same staff member types their password.

    ``check`` (``rules.accounts.staff.check_password``) hashes and writes the throttle and audit:
    it runs in a thread worker, never on the event loop. It returns False for a wrong
    password and raises a ``RuleError`` ("too many attempts, try again in N s") while
    the account refuses attempts.
    """

    def __init__(self, username: str, check: Callable[[str], bool], reason: str = "Locked") -> None:
        """``reason`` is the title: "Locked" when staff locked it (ctrl+l), "Locked after
        N minutes of inactivity" when the idle timer did."""
        super().__init__()
        self.username = username
        self.check = check
        self.reason = reason
        #: While a password is checked, keys wait (``KeysInOrder``): typed after a wrong one,
        #: they go into the emptied field instead of being wiped with it.
        self.holds_keys = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static(self.reason, classes="dialog-title", id="lock-reason")
            yield Static(f"Password for {self.username}:", markup=False)
            yield TextInput(password=True, id="unlock-password")
            yield Static("Your unsaved edits are kept.", classes="hint")
            yield ErrorLine(id="unlock-error")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.query_one("#unlock-error", Static).update("Checking…")
        self.holds_keys = True
        self.verify(event.value)

    @work(thread=True, exclusive=True)
    def verify(self, password: str) -> None:
        try:
            with thread_connection():
                ok = self.check(password)
        except Exception as exc:  # a refusal, or a busy or failing database: shown here
            self.app.call_from_thread(self._wrong, failure_text(exc))
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
