"""Client Notes: dated staff notes on a client (WHMCS "Notes" tab)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from peewee import BooleanField, CharField, DateTimeField, ForeignKeyField, IntegerField, TextField

from store.models.base import BaseModel, utcnow
from store.models.clients import Client

#: The longest note kept, in characters (checked by ``rules.clients.notes``).
NOTE_MAX = 10_000


class ClientNote(BaseModel):
    client = ForeignKeyField(Client, backref="notes", on_delete="CASCADE")
    #: The staff member's display name when written (kept if the account goes).
    author = CharField(max_length=150)
    #: The staff account's id, when a staff member wrote it.
    staff_id = IntegerField(null=True)
    note = TextField()
    #: Sticky notes are shown on the client's Summary.
    sticky = BooleanField(default=False)
    created_at = DateTimeField(default=utcnow)
    updated_at = DateTimeField(default=utcnow)

    if TYPE_CHECKING:
        client_id: Any
