"""Add or edit a contact: saves through the given rule, errors shown beside each field.

Returns True when saved, None when cancelled. The rule runs in a worker thread (no
query on the event loop); a failure, a busy database included, is shown in the dialog,
which stays open with what was typed. One line per field, so it fits 80x24.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from rules.errors import ValidationError
from tui.background import failure_text, off_loop
from tui.widgets.error_line import ErrorLine
from tui.widgets.text_input import TextInput

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
        self.saving = False

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog wide", id="contact-dialog"):
            yield Static(self.title_text, classes="dialog-title", markup=False)
            for name, label in FIELDS:
                with Horizontal(classes="field"):
                    yield Label(label, classes="field-label")
                    yield TextInput(
                        str(self.values.get(name, "")), id=f"contact-{name}", compact=True
                    )
                yield ErrorLine(id=f"contact-{name}-error")
            yield ErrorLine(id="contact-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save (ctrl+s)", id="save", variant="primary", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one(f"#contact-{FIELDS[0][0]}", Input).focus()  # the first key counts

    def show_errors(self, errors: dict[str, str]) -> None:
        for name, _ in FIELDS:
            line = self.query_one(f"#contact-{name}-error", Static)
            line.update(errors.get(name, ""))
            line.set_class(name in errors, "-shown")
        other = "; ".join(f"{k}: {v}" for k, v in errors.items() if k not in dict(FIELDS))
        self.show_failure(other)

    def show_failure(self, text: str) -> None:
        self.query_one("#contact-error", ErrorLine).say(text)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_save() if event.button.id == "save" else self.action_cancel()

    def action_save(self) -> None:
        if not self.saving:
            self.saving = True
            self._save(
                {name: self.query_one(f"#contact-{name}", Input).value for name, _ in FIELDS}
            )

    @work(group="contact-save")
    async def _save(self, values: dict[str, Any]) -> None:
        """Invalid fields are marked beside themselves and the dialog stays open; so does
        any other failure, named on the last line."""
        try:
            await off_loop(self.save, values)
        except ValidationError as exc:
            self.show_errors(exc.errors)
            first = next((n for n, _ in FIELDS if n in exc.errors), None)
            if first:
                self.query_one(f"#contact-{first}", Input).focus()
            return
        except Exception as exc:  # busy, refused, or a bug: shown, the dialog stays
            self.show_errors({})
            self.show_failure(failure_text(exc))
            return
        finally:
            self.saving = False
        self.dismiss(True)

    def action_cancel(self) -> None:
        self.dismiss(None)
