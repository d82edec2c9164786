"""Client Notes: dated staff notes on a client (the Notes tab; WHMCS "Notes"), each
with its author; sticky ones are shown on the client's Summary (issue 13 §6).

Admin Notes of the profile stays the single private field; these are many, dated.
Staff who may edit a client's contact details (every role: support included) may add,
edit, delete and stick notes; every change is audited with its old and new text.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from rules.audit import Actor, record
from rules.clients.validation import clean_text
from rules.errors import FieldError, RuleError, ValidationError, transaction
from rules.permissions import require
from store.models import Client, ClientNote, utcnow
from store.models.enums import ActorType
from store.models.notes import NOTE_MAX

__all__ = [
    "NOTE_MAX",
    "NoteRow",
    "add_note",
    "delete_note",
    "notes_of",
    "set_sticky",
    "sticky_notes_of",
    "update_note",
]


@dataclass(frozen=True)
class NoteRow:
    id: int
    author: str
    note: str
    sticky: bool
    created_at: dt.datetime
    updated_at: dt.datetime


def _row(n: Any) -> NoteRow:
    return NoteRow(n.id, n.author, n.note, bool(n.sticky), n.created_at, n.updated_at)


def _clean_note(value: Any) -> str:
    try:
        return clean_text(value, NOTE_MAX, required=True, multiline=True)
    except FieldError as exc:
        raise ValidationError({"note": str(exc)}) from exc


def notes_of(client_id: int, actor: Actor, limit: int = 500) -> list[NoteRow]:
    """A client's notes, sticky first, then newest first (1 query)."""
    require(actor, "client.view")
    return [
        _row(n)
        for n in ClientNote.select()
        .where(ClientNote.client == client_id)
        .order_by(ClientNote.sticky.desc(), ClientNote.created_at.desc(), ClientNote.id.desc())
        .limit(limit)
    ]


def sticky_notes_of(client_id: int, actor: Actor, limit: int = 20) -> list[NoteRow]:
    """The client's sticky notes, newest first, for the Summary (1 query)."""
    require(actor, "client.view")
    return [
        _row(n)
        for n in ClientNote.select()
        .where((ClientNote.client == client_id) & ClientNote.sticky)
        .order_by(ClientNote.created_at.desc(), ClientNote.id.desc())
        .limit(limit)
    ]


def add_note(client_id: int, note: str, actor: Actor, *, sticky: bool = False) -> NoteRow:
    """A new note by ``actor`` (its name is the author; its id kept for staff).
    Raises ``ValidationError`` on ``note`` (blank, longer than ``NOTE_MAX``, control
    characters), ``RuleError`` (no client), ``PermissionDenied``. Audited."""
    require(actor, "client.edit_contact")
    text = _clean_note(note)
    with transaction():
        if not Client.select().where(Client.id == client_id).exists():
            raise RuleError(f"no client {client_id}")
        row = ClientNote.create(
            client=client_id,
            author=actor.name[:150],
            staff_id=actor.id if actor.type == ActorType.STAFF else None,
            note=text,
            sticky=bool(sticky),
        )
        record(
            actor,
            "client_note",
            row.id,
            "create",
            client_id=client_id,
            new_value=("[sticky] " if sticky else "") + text,
        )
    return _row(row)


def _get(note_id: int) -> ClientNote:
    row = ClientNote.get_or_none(ClientNote.id == note_id)
    if row is None:
        raise RuleError(f"no note {note_id}: someone may have deleted it")
    return row


def update_note(
    note_id: int, actor: Actor, *, note: str | None = None, sticky: bool | None = None
) -> NoteRow:
    """Change a note's text and/or sticky flag (what is None stays); audited per field.
    Errors as :func:`add_note`; ``RuleError`` when the note is gone."""
    require(actor, "client.edit_contact")
    text = None if note is None else _clean_note(note)
    with transaction():
        row = _get(note_id)
        changes: dict[str, Any] = {}
        if text is not None and text != row.note:
            changes["note"] = text
        if sticky is not None and bool(sticky) != bool(row.sticky):
            changes["sticky"] = bool(sticky)
        for name, value in changes.items():
            record(
                actor,
                "client_note",
                note_id,
                "update",
                client_id=row.client_id,
                field=name,
                old_value=str(getattr(row, name)),
                new_value=str(value),
            )
        if changes:
            ClientNote.update(**changes, updated_at=utcnow()).where(
                ClientNote.id == note_id
            ).execute()
    return _row(_get(note_id))


def set_sticky(note_id: int, sticky: bool, actor: Actor) -> NoteRow:
    """Stick or unstick a note (shown on the Summary while sticky). Audited."""
    return update_note(note_id, actor, sticky=sticky)


def delete_note(note_id: int, actor: Actor) -> None:
    """Delete a note; the audit row keeps its text. ``RuleError`` when already gone."""
    require(actor, "client.edit_contact")
    with transaction():
        row = _get(note_id)
        record(
            actor,
            "client_note",
            note_id,
            "delete",
            client_id=row.client_id,
            old_value=row.note,
        )
        row.delete_instance()
