"""The global email log: every email, newest first, filtered by status."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import Screen
from textual.widgets import Footer, Select, Static

from rules.mail.log import email_log
from store.models.enums import EmailStatus
from tui.widgets.email_table import EmailTable

LIMIT = 1000


class EmailLogScreen(Screen[None]):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back", id="emaillog.back")]

    def compose(self) -> ComposeResult:
        yield Static("Email log (newest first) · Enter opens · r resends", id="editor-title")
        yield Select(
            [(s.value, s.value) for s in EmailStatus],
            prompt="Any status",
            id="email-status",
            compact=True,
        )
        yield EmailTable(id="email-log")
        yield Footer()

    def on_mount(self) -> None:
        self.reload()
        self.query_one(EmailTable).focus()

    def reload(self) -> None:
        value = self.query_one("#email-status", Select).value
        status = None if value is Select.NULL else str(value)
        self.query_one(EmailTable).show(email_log(status=status, limit=LIMIT))

    @on(Select.Changed, "#email-status")
    def status_changed(self) -> None:
        self.reload()

    def on_email_table_resent(self) -> None:
        self.reload()
