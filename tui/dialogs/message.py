"""One email as it was (or will be) sent: headers and body, shown literally."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from store.models import Email
from store.models.enums import EmailStatus


class MessageDialog(ModalScreen[None]):
    BINDINGS = [Binding("escape,q", "close", "Close", id="message.close")]

    def __init__(self, email_id: int) -> None:
        super().__init__()
        self.email_id = email_id

    def compose(self) -> ComposeResult:
        email = Email.get_by_id(self.email_id)
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
        with VerticalScroll(classes="dialog wide"):
            yield Static("\n".join(headers), classes="dialog-title", markup=False)
            yield Static(email.body_text, id="message-body", markup=False)

    def action_close(self) -> None:
        self.dismiss(None)
