"""The email log as a table: Enter opens a message, r resends it."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable
from textual.worker import Worker, WorkerState

from rules.mail.log import LogEntry

#: Status early: subjects are long, and a status past the screen's edge was never seen
#: (at 80 columns, and at 120).
COLUMNS = ("ID", "Date", "Status", "Template", "To", "Subject", "Last error / reason")
STATUS_STYLE = {
    "sent": "green",
    "failed": "bold red",
    "queued": "yellow",
    "sending": "cyan",
    "skipped": "dim",
}


class EmailTable(DataTable[Text]):
    BINDINGS = [
        Binding("enter", "open_message", "Open", id="emails.open"),
        Binding("r", "resend", "Resend", id="emails.resend"),
    ]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, cursor_type="row")
        self.add_columns(*COLUMNS)

    def show(self, entries: list[LogEntry]) -> None:
        self.clear()
        for e in entries:
            self.add_row(
                Text(str(e.id)),
                Text(f"{e.created_at:%Y-%m-%d %H:%M}"),
                Text(e.status, style=STATUS_STYLE.get(e.status, "")),
                Text(e.template),
                Text(e.to),
                Text(e.subject),
                Text(e.last_error, style="dim" if e.status == "skipped" else "red"),
                key=str(e.id),
            )

    def selected_id(self) -> int | None:
        if self.row_count == 0:
            return None
        return int(self.get_row_at(self.cursor_row)[0].plain)

    def action_open_message(self) -> None:
        email_id = self.selected_id()
        if email_id is not None:
            from tui.dialogs.message import MessageDialog

            self.app.push_screen(MessageDialog(email_id))

    def action_resend(self) -> None:
        email_id = self.selected_id()
        actor = getattr(self.app, "actor", None)
        if email_id is not None and actor is not None:
            self._resend(email_id, actor)

    @work(thread=True, group="resend", exit_on_error=False)
    def _resend(self, email_id: int, actor: Any) -> None:
        """The rule runs in a thread (no query on the event loop); a refusal or a
        database failure is named, the app stays."""
        from rules.mail.delivery import resend
        from tui.background import thread_connection

        with thread_connection():
            copy = resend(email_id, actor)
        self.app.call_from_thread(self.notify, f"Queued a copy (email {copy.id}) to {copy.to}")
        self.post_message(self.Resent())

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            from tui.background import failure_text

            self.notify(failure_text(event.worker.error), severity="error")
        event.stop()  # shown here; the screen's own handler is for its own workers

    class Resent(Message):
        """A copy was queued: the owner reloads the log."""
