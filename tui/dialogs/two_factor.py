"""Untick Two-Factor Authentication (staff, PRODUCT.md §1 Misc): a reason, then confirm.

The dialog asks for the reason (one line, up to the rules' ``REASON_MAX`` characters)
and switches two-factor off through the given rule (``disable_two_factor``) in a worker
thread: a refusal (no reason, a bad one, a role that may not, a busy database) is shown
in the dialog, which stays open with what was typed. Returns True when two-factor was
switched off, False when cancelled. The reason field has the focus from the start, so
keys typed in a burst land in it; it fits 80x24.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from rules.accounts.two_factor import REASON_MAX
from tui.background import failure_text, off_loop
from tui.widgets.error_line import ErrorLine
from tui.widgets.text_input import TextInput


class DisableTwoFactorDialog(ModalScreen[bool]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", id="two_factor.cancel")]

    def __init__(self, client_label: str, disable: Callable[[str], Any]) -> None:
        """``client_label``: who, as the title names them; ``disable(reason)``: the rule,
        run in a worker thread."""
        super().__init__()
        self.client_label = client_label
        self.disable = disable
        #: While the rule runs, keys wait (``KeysInOrder``): Esc or a retyped reason
        #: typed meanwhile apply to the dialog as it is after the answer.
        self.holds_keys = False

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog", id="two-factor-dialog"):
            yield Static("Switch off two-factor authentication", classes="dialog-title")
            yield Static(
                f"{self.client_label} will log in with the password alone and is emailed "
                "the reason. Staff cannot switch it back on.",
                classes="dialog-body",
                markup=False,
            )
            yield Static("Reason (required):")
            yield TextInput(
                id="two-factor-reason",
                max_length=REASON_MAX,
                placeholder="e.g. lost device, identity checked by phone",
            )
            yield ErrorLine(id="two-factor-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Switch off (enter)", id="confirm", variant="error", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#two-factor-reason", Input).focus()  # the first key counts

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_confirm()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_confirm() if event.button.id == "confirm" else self.action_cancel()

    def action_confirm(self) -> None:
        if not self.holds_keys:
            self.holds_keys = True
            self.query_one("#two-factor-error", Static).update("Switching off…")
            self._disable(self.query_one("#two-factor-reason", Input).value)

    @work(group="two-factor")
    async def _disable(self, reason: str) -> None:
        try:
            await off_loop(self.disable, reason)
        except Exception as exc:  # refused, busy, or a bug: shown, the dialog stays
            text = failure_text(exc)
            self.query_one("#two-factor-error", Static).update(text[:1].upper() + text[1:])
            self.query_one("#two-factor-reason", Input).focus()
            return
        finally:
            self.holds_keys = False
        self.dismiss(True)

    def action_cancel(self) -> None:
        if not self.holds_keys:
            self.dismiss(False)
