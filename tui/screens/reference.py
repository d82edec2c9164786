"""Currencies, Client Groups, Tax Rules and Custom Client Fields: list, add, edit, delete.

Records are read, saved and deleted in worker threads (no query on the event loop); a
failure, a busy database included, is named and the screen stays."""

from __future__ import annotations

from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen, Screen
from textual.widgets import (
    Button,
    Checkbox,
    DataTable,
    Footer,
    Input,
    Label,
    Static,
    TabbedContent,
    TabPane,
)
from textual.worker import Worker, WorkerState

from rules.audit import Actor
from rules.errors import ValidationError
from rules.interchange.reference import KINDS, delete, records, save
from tui.background import failure_text, off_loop
from tui.dialogs.confirm import ConfirmDialog
from tui.widgets.text_input import TextInput

BOOLEAN_KEYS = {"default", "separate_invoices", "required", "admin_only"}
NUMBER_KEYS = {"decimals", "level"}


class RecordDialog(ModalScreen[dict[str, Any] | None]):
    """Edit one record's values; returns them typed, or None when cancelled."""

    BINDINGS = [
        Binding("ctrl+s", "save", "Save", id="record.save"),
        Binding("escape", "cancel", "Cancel", id="record.cancel"),
    ]

    def __init__(
        self,
        title: str,
        keys: tuple[str, ...],
        values: dict[str, Any],
        errors: dict[str, str] | None = None,
    ) -> None:
        super().__init__()
        self.title_text = title
        self.keys = keys
        self.values = values
        self.errors = errors or {}

    def compose(self) -> ComposeResult:
        with VerticalScroll(classes="dialog wide"):
            yield Static(self.title_text, classes="dialog-title", markup=False)
            for key in self.keys:
                value = self.values.get(key)
                if key in BOOLEAN_KEYS:
                    yield Checkbox(key.replace("_", " "), bool(value), id=f"r-{key}")
                else:
                    text = (
                        ", ".join(value)
                        if isinstance(value, list)
                        else ("" if value is None else str(value))
                    )
                    with Horizontal(classes="field"):
                        yield Label(key.replace("_", " "), classes="field-label")
                        yield TextInput(text, id=f"r-{key}", compact=True)
                yield Static(self.errors.get(key, ""), classes="dialog error", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save (ctrl+s)", id="save", variant="primary")
                yield Button("Cancel (esc)", id="cancel")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.action_save() if event.button.id == "save" else self.action_cancel()

    def action_save(self) -> None:
        values: dict[str, Any] = {}
        for key in self.keys:
            widget = self.query_one(f"#r-{key}")
            if isinstance(widget, Checkbox):
                values[key] = widget.value
            elif isinstance(widget, Input):
                text = widget.value.strip()
                if key == "options":
                    values[key] = [o.strip() for o in text.split(",") if o.strip()]
                elif key in NUMBER_KEYS and text.lstrip("-").isdecimal():
                    values[key] = int(text)
                else:
                    values[key] = text
        self.dismiss(values)

    def action_cancel(self) -> None:
        self.dismiss(None)


class RecordTable(DataTable[Text]):
    BINDINGS = [
        Binding("a", "screen.add", "Add", id="reference.add"),
        Binding("e", "screen.edit", "Edit", id="reference.edit"),
        Binding("d", "screen.remove", "Delete", id="reference.delete"),
    ]


class ReferenceScreen(Screen[None]):
    BINDINGS = [Binding("escape", "app.pop_screen", "Back", id="reference.back")]

    def __init__(self, actor: Actor) -> None:
        super().__init__()
        self.actor = actor
        self.rows: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS}

    def compose(self) -> ComposeResult:
        yield Static(
            "Currencies, client groups, tax rules, custom fields · a add · e edit · d delete",
            id="editor-title",
        )
        with TabbedContent(id="tabs"):
            for kind, spec in KINDS.items():
                with TabPane(spec.name, id=kind):
                    yield RecordTable(id=f"t-{kind}", cursor_type="row")
        yield Footer()

    def on_mount(self) -> None:
        self.reload_all()

    @work(group="reference-read", exit_on_error=False)
    async def reload_all(self) -> None:
        for kind in KINDS:
            await self.reload(kind)

    async def reload(self, kind: str) -> None:
        """Read one kind's records in a thread, then show them."""
        rows = await off_loop(records, kind)
        self.rows[kind] = rows
        table = self.query_one(f"#t-{kind}", RecordTable)
        table.clear()
        if not table.columns:
            table.add_columns(*KINDS[kind].keys)
        for row in rows:
            table.add_row(
                *[
                    Text(", ".join(v) if isinstance(v, list) else str(v))
                    for v in (row[k] for k in KINDS[kind].keys)
                ]
            )

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place a failed read, save or delete is shown; the screen stays."""
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.notify(failure_text(event.worker.error), severity="error")

    def _current(self) -> tuple[str, dict[str, Any] | None]:
        kind = str(self.query_one("#tabs", TabbedContent).active)
        table = self.query_one(f"#t-{kind}", RecordTable)
        rows = self.rows[kind]
        if not rows or table.row_count == 0 or table.cursor_row >= len(rows):
            return kind, None
        return kind, rows[table.cursor_row]

    @work(exclusive=True, group="reference", exit_on_error=False)
    async def action_add(self) -> None:
        kind, _ = self._current()
        await self._edit(kind, {}, f"New: {KINDS[kind].name}")

    @work(exclusive=True, group="reference", exit_on_error=False)
    async def action_edit(self) -> None:
        kind, row = self._current()
        if row is not None:
            await self._edit(kind, row, f"Edit: {KINDS[kind].name}")

    async def _edit(self, kind: str, values: dict[str, Any], title: str) -> None:
        errors: dict[str, str] = {}
        while True:
            result = await self.app.push_screen_wait(
                RecordDialog(title, KINDS[kind].keys, values, errors)
            )
            if result is None:
                return
            try:
                await off_loop(save, kind, result, self.actor)
            except ValidationError as exc:
                values, errors = result, exc.errors
                self.notify(
                    "; ".join(f"{k}: {v}" for k, v in exc.errors.items()),
                    severity="error",
                    markup=False,
                )
                continue
            break
        await self.reload(kind)
        self.notify("Saved")

    @work(exclusive=True, group="reference", exit_on_error=False)
    async def action_remove(self) -> None:
        kind, row = self._current()
        if row is None:
            return
        key = {k: row[k] for k in KINDS[kind].natural_key}
        if not await self.app.push_screen_wait(
            ConfirmDialog("Delete", f"Delete {key}?", yes="Delete")
        ):
            return
        await off_loop(delete, kind, key, self.actor)
        await self.reload(kind)
