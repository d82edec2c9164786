"""A small form for the invoice screens (record payment, refund, add item, credit...):
fields one a line, the reason beside each refused field, the first field focused.

Returns the save callable's result when saved, None when cancelled (Esc). ctrl+s saves;
the callable runs in a worker thread (no query on the event loop); a refusal, a busy
database included, is shown in the dialog, which stays open with what was typed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Checkbox, Label, Select, Static

from rules.errors import ValidationError
from tui.background import failure_text, off_loop
from tui.widgets.error_line import ErrorLine
from tui.widgets.text_input import TextInput


@dataclass(frozen=True)
class FormField:
    """``kind``: "text", "tick" (a Checkbox) or "choice" (a Select of ``options``)."""

    name: str
    label: str
    value: Any = ""
    kind: str = "text"
    options: tuple[str, ...] = ()


class MoneyFormDialog(ModalScreen[Any]):
    DEFAULT_CSS = """
    MoneyFormDialog .field-label { width: 18; }
    MoneyFormDialog .field { height: 1; }
    MoneyFormDialog .field Checkbox { border: none; padding: 0; height: 1; width: auto; }
    MoneyFormDialog .error { padding-left: 18; display: none; }
    MoneyFormDialog .error.-shown { display: block; }
    MoneyFormDialog #form-note { color: $text-muted; margin-bottom: 1; }
    """
    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="money_form.save"),
        Binding("escape", "cancel", "Cancel", id="money_form.cancel"),
    ]

    def __init__(
        self,
        title: str,
        fields: list[FormField],
        save: Callable[[dict[str, Any]], Any],
        note: str = "",
    ) -> None:
        super().__init__()
        self.title_text = title
        self.fields = fields
        self.save = save
        self.note = note
        self.saving = False

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog", id="money-form"):
            yield Static(self.title_text, classes="dialog-title", markup=False)
            if self.note:
                yield Static(self.note, id="form-note", markup=False)
            for f in self.fields:
                with Horizontal(classes="field"):
                    yield Label(f.label, classes="field-label", markup=False)
                    if f.kind == "tick":
                        yield Checkbox("(space)", bool(f.value), id=f"form-{f.name}", compact=True)
                    elif f.kind == "choice":
                        yield Select(
                            [(o, o) for o in f.options],
                            value=f.value,
                            allow_blank=False,
                            id=f"form-{f.name}",
                            compact=True,
                        )
                    else:
                        yield TextInput(str(f.value), id=f"form-{f.name}", compact=True)
                yield ErrorLine(id=f"form-{f.name}-error")
            yield ErrorLine(id="form-error")
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save (ctrl+s)", id="save", variant="primary", compact=True)
                yield Button("Cancel (esc)", id="cancel", compact=True)

    def on_mount(self) -> None:
        if self.fields:
            self.query_one(f"#form-{self.fields[0].name}").focus()

    def values(self) -> dict[str, Any]:
        found: dict[str, Any] = {}
        for f in self.fields:
            widget: Any = self.query_one(f"#form-{f.name}")
            found[f.name] = widget.value
        return found

    def show_errors(self, errors: dict[str, str]) -> None:
        names = {f.name for f in self.fields}
        for f in self.fields:
            line = self.query_one(f"#form-{f.name}-error", Static)
            line.update(errors.get(f.name, ""))
            line.set_class(f.name in errors, "-shown")
        self.show_failure("; ".join(f"{k}: {v}" for k, v in errors.items() if k not in names))

    def show_failure(self, text: str) -> None:
        line = self.query_one("#form-error", Static)
        line.update(text)
        line.set_class(bool(text), "-shown")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_save() if event.button.id == "save" else self.action_cancel()

    def action_save(self) -> None:
        if not self.saving:
            self.saving = True
            self._save(self.values())

    @work(group="money-form-save")
    async def _save(self, values: dict[str, Any]) -> None:
        try:
            result = await off_loop(self.save, values)
        except ValidationError as exc:
            self.show_errors(exc.errors)
            first = next((f.name for f in self.fields if f.name in exc.errors), None)
            if first:
                self.query_one(f"#form-{first}").focus()
            return
        except Exception as exc:  # refused, busy, or a bug: shown, the dialog stays
            self.show_errors({})
            self.show_failure(failure_text(exc))
            return
        finally:
            self.saving = False
        self.dismiss(result if result is not None else True)

    def action_cancel(self) -> None:
        self.dismiss(None)
