"""Add or edit a contact: returns the entered values, or None when cancelled."""

from __future__ import annotations

from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

FIELDS = (
    ("first_name", "First name"),
    ("last_name", "Last name"),
    ("company", "Company"),
    ("email", "Email"),
    ("address1", "Address 1"),
    ("address2", "Address 2"),
    ("city", "City"),
    ("state", "State/Region"),
    ("postcode", "Postcode"),
    ("country", "Country (ISO code)"),
    ("phone", "Phone"),
)


class ContactDialog(ModalScreen[dict[str, Any] | None]):
    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="contact.save"),
        Binding("escape", "cancel", "Cancel", id="contact.cancel"),
    ]

    def __init__(self, title: str, values: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.title_text = title
        self.values = values or {}

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog wide"):
            yield Static(self.title_text, classes="dialog-title", markup=False)
            for name, label in FIELDS:
                yield Label(label)
                yield Input(str(self.values.get(name, "")), id=f"contact-{name}")
                yield Static("", id=f"contact-{name}-error", classes="error", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save (ctrl+s)", id="save", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def show_errors(self, errors: dict[str, str]) -> None:
        for name, _ in FIELDS:
            self.query_one(f"#contact-{name}-error", Static).update(errors.get(name, ""))

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_save() if event.button.id == "save" else self.action_cancel()

    def action_save(self) -> None:
        self.dismiss({name: self.query_one(f"#contact-{name}", Input).value for name, _ in FIELDS})

    def action_cancel(self) -> None:
        self.dismiss(None)
