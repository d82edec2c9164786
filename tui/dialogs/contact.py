"""Add or edit a contact: saves through the given rule, errors shown beside each field.

Returns True when saved, None when cancelled.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from rules.errors import RuleError, ValidationError
from tui.widgets.error_line import ErrorLine

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


class ContactDialog(ModalScreen[bool | None]):
    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="contact.save"),
        Binding("escape", "cancel", "Cancel", id="contact.cancel"),
    ]

    def __init__(
        self,
        title: str,
        values: dict[str, Any] | None,
        save: Callable[[dict[str, Any]], Any],
    ) -> None:
        super().__init__()
        self.title_text = title
        self.values = values or {}
        self.save = save

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog wide"):
            yield Static(self.title_text, classes="dialog-title", markup=False)
            for name, label in FIELDS:
                yield Label(label)
                yield Input(str(self.values.get(name, "")), id=f"contact-{name}")
                yield ErrorLine(id=f"contact-{name}-error")
            yield ErrorLine(id="contact-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save (ctrl+s)", id="save", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def show_errors(self, errors: dict[str, str]) -> None:
        for name, _ in FIELDS:
            self.query_one(f"#contact-{name}-error", Static).update(errors.get(name, ""))
        other = "; ".join(f"{k}: {v}" for k, v in errors.items() if k not in dict(FIELDS))
        self.query_one("#contact-error", Static).update(other)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_save() if event.button.id == "save" else self.action_cancel()

    def action_save(self) -> None:
        """Invalid fields are marked beside themselves and the dialog stays open."""
        values = {name: self.query_one(f"#contact-{name}", Input).value for name, _ in FIELDS}
        try:
            self.save(values)
        except ValidationError as exc:
            self.show_errors(exc.errors)
            first = next((n for n, _ in FIELDS if n in exc.errors), None)
            if first:
                self.query_one(f"#contact-{first}", Input).focus()
            return
        except RuleError as exc:
            self.show_errors({})
            self.query_one("#contact-error", Static).update(str(exc))
            return
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(None)
