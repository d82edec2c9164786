"""Someone else saved the client: show their values beside ours, let staff choose."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Static


class ConflictDialog(ModalScreen[str]):
    """Returns "reload" (take the stored values), "reapply" (save mine over them) or "cancel"."""

    BINDINGS = [
        Binding("r", "choose('reload')", "Reload", id="conflict.reload"),
        Binding("a", "choose('reapply')", "Re-apply mine", id="conflict.reapply"),
        Binding("escape", "choose('cancel')", "Keep editing", id="conflict.cancel"),
    ]

    def __init__(self, rows: list[tuple[str, Any, Any]]) -> None:
        """``rows``: (field label, my value, stored value) for each field that differs."""
        super().__init__()
        self.rows = rows

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog wide"):
            yield Static("This client was changed by someone else", classes="dialog-title")
            yield Static(
                "Nothing was saved. Compare your values with the stored ones:",
                classes="dialog-body",
            )
            table: DataTable[Text] = DataTable(id="conflict-table", cursor_type="row")
            table.add_columns("Field", "Your value", "Stored value")
            for label, mine, stored in self.rows:
                table.add_row(Text(label), Text(str(mine)), Text(str(stored)))
            yield table
            with Horizontal(classes="dialog-buttons"):
                yield Button("Reload stored (r)", id="reload")
                yield Button("Re-apply mine (a)", id="reapply", variant="warning")
                yield Button("Keep editing (esc)", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(str(event.button.id))

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice)
