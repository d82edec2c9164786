"""The global email log: every email, newest first, filtered by status.

The log is read in a worker thread (no query on the event loop); a failure is named
and the screen stays."""

from __future__ import annotations

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.message import Message
from textual.screen import Screen
from textual.widgets import Footer, Select, Static
from textual.worker import Worker, WorkerState

from rules.mail.log import LogEntry, email_log
from store.models.enums import EmailStatus
from tui.background import failure_text, thread_connection
from tui.widgets.email_table import EmailTable

LIMIT = 1000


class EmailLogScreen(Screen[None]):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back", id="emaillog.back")]

    class LogRead(Message):
        def __init__(self, entries: list[LogEntry]) -> None:
            super().__init__()
            self.entries = entries

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
        self.read_log(None if value is Select.NULL else str(value))

    @work(thread=True, exclusive=True, group="email-log", exit_on_error=False)
    def read_log(self, status: str | None) -> None:
        with thread_connection():
            entries = email_log(status=status, limit=LIMIT)
        self.post_message(self.LogRead(entries))

    def on_email_log_screen_log_read(self, message: LogRead) -> None:
        self.query_one(EmailTable).show(message.entries)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.notify(failure_text(event.worker.error), severity="error")

    @on(Select.Changed, "#email-status")
    def status_changed(self) -> None:
        self.reload()

    def on_email_table_resent(self) -> None:
        self.reload()
