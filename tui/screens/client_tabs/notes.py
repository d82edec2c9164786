"""The Notes tab: dated staff notes on the client, sticky first; add (a), edit (e),
delete (d, asks first), stick or unstick (s). Sticky notes show on the Summary.
Rules: ``rules.clients.notes``."""

from __future__ import annotations

from typing import Any

from textual import work
from textual.binding import Binding

from rules.clients.notes import NoteRow, add_note, delete_note, notes_of, set_sticky, update_note
from tui.background import failure_text, off_loop
from tui.dialogs.confirm import ConfirmDialog
from tui.dialogs.form import FormDialog, FormField
from tui.screens.client_tabs.working_tab import WorkingTab

#: Characters of a note shown in the table (the whole note is in the edit dialog).
PREVIEW = 60


def preview(text: str) -> str:
    line = " ".join(text.split())
    return line if len(line) <= PREVIEW else line[: PREVIEW - 1] + "…"


class NotesTab(WorkingTab):
    COLUMNS = ("Date (UTC)", "Author", "Sticky", "Note")
    HINT = "a add · e edit · d delete · s stick/unstick (sticky notes show on the Summary)"
    RIGHT = "client.edit_contact"
    BINDINGS = [
        Binding("a", "add", "Add note", id="notes.add"),
        Binding("e", "edit", "Edit note", id="notes.edit"),
        Binding("d", "remove", "Delete note", id="notes.delete"),
        Binding("s", "toggle_sticky", "Sticky", id="notes.sticky"),
    ]

    def __init__(self, actor: Any, client_id: int | None, *, id: str | None = None) -> None:
        super().__init__(actor, client_id, id=id)
        self.rows: dict[int, NoteRow] = {}

    def load(self) -> list[tuple[Any, tuple[Any, ...]]]:
        assert self.client_id is not None
        notes = notes_of(self.client_id, self.actor)
        self.rows = {n.id: n for n in notes}
        return [
            (
                n.id,
                (
                    f"{n.created_at:%Y-%m-%d %H:%M}",
                    n.author,
                    "yes" if n.sticky else "",
                    preview(n.note),
                ),
            )
            for n in notes
        ]

    @work(group="notes-action", exclusive=True, exit_on_error=False)
    async def action_add(self) -> None:
        if not self.may_change():
            return
        client_id = self.client_id
        assert client_id is not None
        saved = await self.app.push_screen_wait(
            FormDialog(
                "Add note",
                [FormField("note", "Note", "area"), FormField("sticky", "Sticky", "tick", False)],
                lambda v: add_note(client_id, v["note"], self.actor, sticky=v["sticky"]),
            )
        )
        if saved:
            self.changed()
            self.app.notify("Note added")

    @work(group="notes-action", exclusive=True, exit_on_error=False)
    async def action_edit(self) -> None:
        key = self.current_key()
        if key is None or not self.may_change():
            return
        row = self.rows[key]
        saved = await self.app.push_screen_wait(
            FormDialog(
                f"Edit note by {row.author} of {row.created_at:%Y-%m-%d %H:%M}",
                [
                    FormField("note", "Note", "area", row.note),
                    FormField("sticky", "Sticky", "tick", row.sticky),
                ],
                lambda v: update_note(row.id, self.actor, note=v["note"], sticky=v["sticky"]),
            )
        )
        if saved:
            self.changed()
            self.app.notify("Saved")

    @work(group="notes-action", exclusive=True, exit_on_error=False)
    async def action_remove(self) -> None:
        key = self.current_key()
        if key is None or not self.may_change():
            return
        row = self.rows[key]
        if not await self.app.push_screen_wait(
            ConfirmDialog(
                "Delete note",
                f"Delete this note by {row.author}?\n\n{preview(row.note)}",
                yes="Delete",
            )
        ):
            return
        await self._run(delete_note, row.id, self.actor)

    @work(group="notes-action", exclusive=True, exit_on_error=False)
    async def action_toggle_sticky(self) -> None:
        key = self.current_key()
        if key is None or not self.may_change():
            return
        row = self.rows[key]
        await self._run(set_sticky, row.id, not row.sticky, self.actor)

    async def _run(self, rule: Any, *args: Any) -> None:
        try:
            await off_loop(rule, *args)
        except Exception as exc:  # gone, busy, refused: said above the table
            self.show_failure(failure_text(exc))
            return
        self.changed()
