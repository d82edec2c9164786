"""The email log as a table: Enter opens a message, r resends it."""

from __future__ import annotations

from rich.text import Text
from textual.binding import Binding
from textual.message import Message
from textual.widgets import DataTable

from rules.mail.log import LogEntry

COLUMNS = ("ID", "Date", "Template", "To", "Subject", "Status", "Last error / reason")
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
                Text(e.template),
                Text(e.to),
                Text(e.subject),
                Text(e.status, style=STATUS_STYLE.get(e.status, "")),
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
        if email_id is None:
            return
        from rules.errors import RuleError
        from rules.mail.delivery import resend

        actor = getattr(self.app, "actor", None)
        if actor is None:
            return
        try:
            copy = resend(email_id, actor)
        except RuleError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        self.notify(f"Queued a copy (email {copy.id}) to {copy.to}", markup=False)
        self.post_message(self.Resent())

    class Resent(Message):
        """A copy was queued: the owner reloads the log."""
