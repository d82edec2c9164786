"""One email as it was (or will be) sent: headers and body, shown literally.

The email is read in a worker thread (no query on the event loop)."""

from __future__ import annotations

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static
from textual.worker import Worker, WorkerState

from store.models import Email
from store.models.enums import EmailStatus
from tui.background import failure_text, thread_connection


def headers_of(email: Email) -> str:
    """The header lines the dialog shows; times in UTC, YYYY-MM-DD HH:MM:SS."""
    headers = [
        f"To: {email.to}",
        f"Subject: {email.subject}",
        f"Template: {email.template}",
        f"Status: {email.status} after {email.attempts} attempt(s)",
        f"Queued: {email.created_at:%Y-%m-%d %H:%M:%S} UTC",
    ]
    if email.sent_at:
        headers.append(f"Sent: {email.sent_at:%Y-%m-%d %H:%M:%S} UTC")
    if email.message_id:
        headers.append(f"Message-ID: {email.message_id}")
    if email.last_error:
        label = "Not sent because" if email.status == EmailStatus.SKIPPED else "Last error"
        headers.append(f"{label}: {email.last_error}")
    return "\n".join(headers)


class MessageDialog(ModalScreen[None]):
    BINDINGS = [Binding("escape,q", "close", "Close", id="message.close")]

    def __init__(self, email_id: int) -> None:
        super().__init__()
        self.email_id = email_id

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog wide"):
            yield Static(
                f"Email {self.email_id}…",
                id="message-headers",
                classes="dialog-title",
                markup=False,
            )
            yield Static("", id="message-body", markup=False)

    def on_mount(self) -> None:
        self.read_message()

    @work(thread=True, group="message", exit_on_error=False)
    def read_message(self) -> None:
        with thread_connection():
            email = Email.get_by_id(self.email_id)
        self.app.call_from_thread(self._show, headers_of(email), email.body_text)

    def _show(self, headers: str, body: str) -> None:
        self.query_one("#message-headers", Static).update(headers)
        self.query_one("#message-body", Static).update(body)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.query_one("#message-body", Static).update(failure_text(event.worker.error))

    def action_close(self) -> None:
        self.dismiss(None)
