"""Ask for a password (the idle lock)."""

from __future__ import annotations

from collections.abc import Callable

from textual.app import ComposeResult
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from tui.widgets.error_line import ErrorLine


class LockScreen(ModalScreen[None]):
    """Covers everything until the same staff member types their password."""

    def __init__(self, username: str, check: Callable[[str], bool]) -> None:
        super().__init__()
        self.username = username
        self.check = check

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog"):
            yield Static("Locked after inactivity", classes="dialog-title")
            yield Static(f"Password for {self.username}:", markup=False)
            yield Input(password=True, id="unlock-password")
            yield ErrorLine(id="unlock-error")

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if self.check(event.value):
            self.dismiss(None)
        else:
            event.input.value = ""
            self.query_one("#unlock-error", Static).update("Wrong password")
