"""Automation and General Settings: every setting of PRODUCT.md §3 and the app's own.

The stored settings are read, and saved, in a worker thread (no query on the event
loop); a failure (a busy database included) is shown and the typed values stay."""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import Screen
from textual.widgets import Checkbox, Footer, Input, Label, Select, Static
from textual.worker import Worker, WorkerState

from rules.audit import Actor
from rules.errors import ValidationError
from rules.settings_admin import update_settings
from store.settings import LATE_FEE_TYPES, STATUS_UPDATE_MODES, Settings, load_settings
from tui.background import failure_text, off_loop, thread_connection
from tui.widgets.error_line import ErrorLine
from tui.widgets.text_input import TextInput

AUTOMATION = (
    "invoice_days_before_due",
    "payment_reminder_days",
    "overdue_notice_days",
    "late_fee_days",
    "late_fee_type",
    "late_fee_amount",
    "late_fee_minimum",
    "late_fee_taxed",
    "capture_days_before_due",
    "status_update",
    "tax_enabled",
    "tax_inclusive",
    "tax_compound",
)
LABELS = {
    "invoice_days_before_due": "Invoice days before due",
    "payment_reminder_days": "Payment reminder: days before due (0 off)",
    "overdue_notice_days": "Overdue notices: days after due (1st, 2nd, 3rd; 0 off)",
    "late_fee_days": "Late fee: days after due",
    "late_fee_type": "Late fee type",
    "late_fee_amount": "Late fee amount (percent or amount)",
    "late_fee_minimum": "Late fee minimum",
    "late_fee_taxed": "Late fees are taxed",
    "capture_days_before_due": "Card capture: days before due",
    "status_update": "Client status update",
    "tax_enabled": "Tax enabled",
    "tax_inclusive": "Prices include tax",
    "tax_compound": "Level 2 tax is compound",
    "timezone": "Timezone (IANA)",
    "daily_hour": "Daily rules from hour (0-23)",
    "company_name": "Company name",
    "system_url": "System URL",
    "allow_marketing_opt_out": "Clients may opt out of marketing email",
    "company_email": "Company email (From)",
    "company_address": "Company address (invoice PDFs)",
    "bank_transfer_instructions": "Bank transfer instructions (invoice PDFs)",
    "signature": "Email signature",
    "mail_rate_limit": "Mass mail: emails per window",
    "mail_rate_window_seconds": "Mass mail: window (seconds)",
    "staff_lock_minutes": "Lock the staff app after idle minutes",
}
CHOICES = {"late_fee_type": LATE_FEE_TYPES, "status_update": STATUS_UPDATE_MODES}


class SettingsScreen(Screen[None]):
    BINDINGS = [
        Binding("ctrl+s", "save", "Save settings", id="settings.save"),
        Binding("escape", "app.pop_screen", "Back", id="settings.back"),
    ]

    def __init__(self, actor: Actor) -> None:
        super().__init__()
        self.actor = actor
        self.loaded: Settings | None = None  # the stored settings, once read
        self.saving = False

    def compose(self) -> ComposeResult:
        yield Static("Settings · ctrl+s saves all or nothing", id="editor-title")
        yield ErrorLine(id="settings-error")
        general = [f.name for f in fields(Settings) if f.name not in AUTOMATION]
        shapes = Settings()  # the defaults give each setting its kind of widget
        with VerticalScroll(id="profile-form", disabled=True):
            for title, names in (
                ("Automation Settings", AUTOMATION),
                ("General Settings", general),
            ):
                yield Static(title, classes="section")
                for name in names:
                    yield from self._field(name, getattr(shapes, name))
        yield Footer()

    def _field(self, name: str, value: Any) -> ComposeResult:
        label = LABELS.get(name, name)
        widget: Any
        if isinstance(value, bool):
            yield Checkbox(label, value, id=f"s-{name}")
        else:
            if name in CHOICES:
                widget = Select(
                    [(c, c) for c in CHOICES[name]],
                    value=value,
                    allow_blank=False,
                    id=f"s-{name}",
                    compact=True,
                )
            elif isinstance(value, list):
                widget = TextInput(", ".join(map(str, value)), id=f"s-{name}", compact=True)
            else:
                widget = TextInput(str(value), id=f"s-{name}", compact=True)
            with Horizontal(classes="field"):
                yield Label(label, classes="field-label", markup=False)
                yield widget
        yield ErrorLine(id=f"err-{name}")

    def on_mount(self) -> None:
        self.read_stored()

    @work(thread=True, group="settings", exit_on_error=False)
    def read_stored(self) -> None:
        with thread_connection():
            stored = load_settings()
        self.app.call_from_thread(self._show, stored)

    def _show(self, stored: Settings) -> None:
        self.loaded = stored
        for f in fields(Settings):
            widget = self.query_one(f"#s-{f.name}")
            value = getattr(stored, f.name)
            if isinstance(widget, Checkbox | Select):
                widget.value = value
            elif isinstance(widget, Input):
                widget.value = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
        self.query_one("#profile-form").disabled = False

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """A failed read or save is shown under the title; the typed values stay."""
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.show_failure(failure_text(event.worker.error))

    def show_failure(self, text: str) -> None:
        self.query_one("#settings-error", ErrorLine).say(text)
        if text:
            self.notify(text, severity="error")

    def read(self) -> dict[str, Any]:
        assert self.loaded is not None
        values: dict[str, Any] = {}
        for f in fields(Settings):
            widget = self.query_one(f"#s-{f.name}")
            current = getattr(self.loaded, f.name)
            if isinstance(widget, Checkbox):
                values[f.name] = widget.value
            elif isinstance(widget, Select):
                values[f.name] = widget.value
            elif isinstance(widget, Input):
                values[f.name] = _parse(widget.value, current)
        return {k: v for k, v in values.items() if v != getattr(self.loaded, k)}

    def action_save(self) -> None:
        if self.loaded is None or self.saving:
            return
        self.show_failure("")
        for error in self.query(".error").results(Static):
            error.update("")
            error.remove_class("-shown")
        changes = self.read()
        if not changes:
            self.notify("Nothing to save")
            return
        self.saving = True
        self._save(changes)

    @work(group="settings-save", exit_on_error=False)
    async def _save(self, changes: dict[str, Any]) -> None:
        try:
            self.loaded = await off_loop(update_settings, changes, self.actor)
        except ValidationError as exc:
            for name, reason in exc.errors.items():
                error = self.query_one(f"#err-{name}", Static)
                error.update(reason)
                error.add_class("-shown")
            self.notify(
                f"Nothing saved: {len(exc.errors)} setting(s) need attention", severity="error"
            )
            return
        finally:
            self.saving = False
        self.notify(f"Saved {len(changes)} setting(s)")


def _parse(text: str, current: Any) -> Any:
    """Typed values from the text boxes; a bad value is left for validation to name."""
    text = text.strip()
    if isinstance(current, list):
        try:
            return [int(part) for part in text.split(",") if part.strip()]
        except ValueError:
            return text
    if isinstance(current, int):
        try:
            return int(text)
        except ValueError:
            return text
    return text
