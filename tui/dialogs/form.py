"""A form dialog for the working tabs and the catalogue: one line per field, the rule's
errors beside each field, saved through the given rule off the event loop.

The house dialog style (``tui.dialogs.contact``): TextInput for text, compact Selects,
ticks, a short TextArea for notes; the first field focused on open; Esc cancels; ctrl+s
saves. The dialog returns the rule's result when saved, None when cancelled; a refusal
that is no field's (busy, gone, a bug) is shown on its last line and it stays open
with what was typed. It scrolls, so any number of fields fits 80x24.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Input, Label, Select, Static, TextArea

from rules.errors import ValidationError
from tui.background import failure_text, off_loop
from tui.widgets.error_line import ErrorLine
from tui.widgets.text_input import TextInput


@dataclass(frozen=True)
class FormField:
    """One field: ``kind`` "text", "select" (``options`` as (label, value)), "tick" or
    "area" (several lines); ``value`` its starting value; ``placeholder`` for text."""

    name: str
    label: str
    kind: str = "text"
    value: Any = ""
    options: Sequence[tuple[str, Any]] = field(default_factory=tuple)
    placeholder: str = ""


def widget_id(name: str) -> str:
    """A field's widget id (names like ``price.USD.Semi-Annually`` are not ids)."""
    return "ff-" + re.sub(r"[^A-Za-z0-9_-]", "_", name)


class FormDialog(ModalScreen[Any]):
    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="form.save"),
        Binding("escape", "cancel", "Cancel", id="form.cancel"),
    ]

    def __init__(
        self,
        title: str,
        fields: Sequence[FormField],
        save: Callable[[dict[str, Any]], Any],
        *,
        hint: Callable[[dict[str, Any]], dict[str, str]] | None = None,
        note: str = "",
    ) -> None:
        """``save`` takes the values by field name (text as typed, a select's value, a
        tick's bool) and runs in a thread; ``hint`` (on the event loop, no queries)
        gives text fields new placeholders when a select changes (the catalogue price);
        ``note`` is a line under the title (what the form will do)."""
        super().__init__()
        self.note = note
        self.title_text = title
        self.fields = list(fields)
        self.save = save
        self.hint = hint
        self.saving = False

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog wide form-dialog"):
            yield Static(self.title_text, classes="dialog-title", markup=False)
            if self.note:
                yield Static(self.note, id="form-note", markup=False)
            for spec in self.fields:
                yield from self._compose_field(spec)
                yield ErrorLine(id=f"{widget_id(spec.name)}-error")
            yield ErrorLine(id="form-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save (ctrl+s)", id="save", variant="primary", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def _compose_field(self, spec: FormField) -> ComposeResult:
        wid = widget_id(spec.name)
        if spec.kind == "tick":
            yield Checkbox(Text(spec.label), bool(spec.value), id=wid, compact=True)
            return
        if spec.kind == "area":
            yield Label(spec.label, classes="field-label", markup=False)
            yield TextArea(str(spec.value or ""), id=wid, classes="form-area")
            return
        widget: Any
        if spec.kind == "select":
            options = [(Text(label), value) for label, value in spec.options]
            known = {value for _, value in spec.options}
            widget = Select(
                options,
                id=wid,
                allow_blank=False,
                value=spec.value if spec.value in known else options[0][1],
                compact=True,
            )
        else:
            widget = TextInput(
                str(spec.value or ""), id=wid, placeholder=spec.placeholder, compact=True
            )
        with Horizontal(classes="field"):
            yield Label(spec.label, classes="field-label", markup=False)
            yield widget

    def on_mount(self) -> None:
        if self.fields:
            self.query_one(f"#{widget_id(self.fields[0].name)}").focus()
        self._hint()

    def values(self) -> dict[str, Any]:
        """What the form holds, by field name."""
        out: dict[str, Any] = {}
        for spec in self.fields:
            widget = self.query_one(f"#{widget_id(spec.name)}")
            if isinstance(widget, Checkbox):
                out[spec.name] = widget.value
            elif isinstance(widget, Select):
                out[spec.name] = widget.value
            elif isinstance(widget, TextArea):
                out[spec.name] = widget.text
            elif isinstance(widget, Input):
                out[spec.name] = widget.value
        return out

    @on(Select.Changed)
    def _select_changed(self, event: Select.Changed) -> None:
        self._hint()

    def _hint(self) -> None:
        if self.hint is None:
            return
        for name, text in self.hint(self.values()).items():
            box = self.query_one(f"#{widget_id(name)}", Input)
            box.placeholder = text

    def show_errors(self, errors: dict[str, str]) -> None:
        names = {spec.name for spec in self.fields}
        for name in names:
            line = self.query_one(f"#{widget_id(name)}-error", Static)
            line.update(errors.get(name, ""))
            line.set_class(name in errors, "-shown")
        self.show_failure("; ".join(f"{k}: {v}" for k, v in errors.items() if k not in names))

    def show_failure(self, text: str) -> None:
        self.query_one("#form-error", ErrorLine).say(text)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_save() if event.button.id == "save" else self.action_cancel()

    def action_save(self) -> None:
        if not self.saving:
            self.saving = True
            self._save(self.values())

    @work(group="form-save")
    async def _save(self, values: dict[str, Any]) -> None:
        try:
            result = await off_loop(self.save, values)
        except ValidationError as exc:
            self.show_errors(exc.errors)
            first = next((s.name for s in self.fields if s.name in exc.errors), None)
            if first:
                self.query_one(f"#{widget_id(first)}").focus()
            return
        except Exception as exc:  # busy, refused, gone, or a bug: shown, the dialog stays
            self.show_errors({})
            self.show_failure(failure_text(exc))
            return
        finally:
            self.saving = False
        self.dismiss(True if result is None else result)

    def action_cancel(self) -> None:
        self.dismiss(None)
