"""What the working tabs share: a table read in a worker thread, its failure on the line
above it, its own keys in the footer, and a message to the editor after a change.

A subclass names its columns and hint, reads its rows in ``load`` (a worker thread:
rules only) as (key, cells), and runs its actions as ``@work`` coroutines that open
dialogs with ``push_screen_wait`` and call ``changed`` after a save.
"""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Static

from rules.audit import Actor
from rules.permissions import allowed
from tui.background import failure_text, off_loop
from tui.widgets.error_line import ErrorLine

NEW_CLIENT = "Save the client first"


class WorkingTab(Vertical):
    """A client editor tab that staff work in (not only read)."""

    COLUMNS: tuple[str, ...] = ()
    HINT = ""
    #: The right its changes need (``rules.permissions``); checked before a dialog opens.
    RIGHT = "client.edit_billing"

    class Changed(Message):
        """Something of the client changed: the editor re-reads ``parts`` (its summary
        and activity log). ``renewals``: money moved (a payment, credit, a refund), so
        what the invoices bill may have moved to its next due date: the other working
        tabs read their rows again too."""

        def __init__(self, parts: frozenset[str], *, renewals: bool = False) -> None:
            super().__init__()
            self.parts = parts
            self.renewals = renewals

    def __init__(self, actor: Actor, client_id: int | None, *, id: str | None = None) -> None:
        super().__init__(id=id, classes="working-tab")
        self.actor = actor
        self.client_id = client_id
        #: The key of each table row, in order.
        self.keys: list[Any] = []

    def compose(self) -> ComposeResult:
        name = (self.id or "tab").removesuffix("-tab")  # "services-tab": "#services-table"
        yield ErrorLine(id=f"{name}-error")
        yield Static(self.HINT, classes="hint", markup=False)
        yield DataTable(id=f"{name}-table", cursor_type="row")

    @property
    def table(self) -> DataTable[Any]:
        return self.query_one(DataTable)

    def on_mount(self) -> None:
        self.table.add_columns(*self.COLUMNS)
        if self.client_id is not None:
            self.reload()

    def load(self) -> list[tuple[Any, tuple[Any, ...]]]:
        """The rows as (key, cells); in a worker thread."""
        raise NotImplementedError

    @work(group="tab-read", exclusive=True, exit_on_error=False)
    async def reload(self) -> None:
        """Read the rows off the event loop and show them (the cursor stays on its key)."""
        try:
            rows = await off_loop(self.load)
        except Exception as exc:  # busy, gone, refused: said above the table
            self.show_failure(failure_text(exc))
            return
        self.show_failure("")
        table = self.table
        current = self.current_key()
        table.clear()
        self.keys = [key for key, _ in rows]
        for _, cells in rows:
            table.add_row(*[Text("" if v is None else str(v)) for v in cells])
        if current in self.keys:
            table.move_cursor(row=self.keys.index(current))

    def show_failure(self, text: str) -> None:
        self.query_one(ErrorLine).say(text)

    def current_key(self) -> Any | None:
        table = self.table
        if not self.keys or table.row_count == 0 or table.cursor_row >= len(self.keys):
            return None
        return self.keys[table.cursor_row]

    def may_change(self) -> bool:
        """Whether staff may change this tab; says why not (above the table) when not."""
        if self.client_id is None:
            self.show_failure(NEW_CLIENT)
            return False
        if not allowed(self.actor, self.RIGHT):
            self.show_failure(f"Your role ({self.actor.role}) may not change this")
            return False
        return True

    def changed(self, parts: frozenset[str] = frozenset({"summary", "log"})) -> None:
        """After a save: read the rows again and tell the editor."""
        self.reload()
        self.post_message(self.Changed(parts))
