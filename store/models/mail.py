"""Email templates and the outbox, which is also the email log."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from peewee import (
    SQL,
    BooleanField,
    CharField,
    DateTimeField,
    ForeignKeyField,
    IntegerField,
    TextField,
)

from store.models.base import BaseModel, utcnow
from store.models.clients import Client
from store.models.enums import EmailStatus


class EmailTemplate(BaseModel):
    name = CharField(max_length=100, unique=True)
    subject = CharField(max_length=255)
    body_text = TextField()
    body_html = TextField(default="")
    #: Bodies of sensitive templates (passwords) are masked once delivered.
    sensitive = BooleanField(default=False)
    disabled = BooleanField(default=False)
    updated_at = DateTimeField(default=utcnow)


#: The rows still to deliver (the partial index ``email_due``). Queries that lease or count
#: them say it in these words: SQLite uses a partial index only for a query whose WHERE
#: repeats the index's terms, with literal values (no bound parameters).
DUE_ROWS = "\"status\" IN ('queued', 'sending')"
#: Marketing emails (the partial index ``email_marketing_sent`` on ``sent_at``, which only
#: a delivery sets): the rate limit counts those sent in its window.
MARKETING = '"marketing"'


class Email(BaseModel):
    """An outgoing email, written in the transaction of the event that caused it."""

    #: Indexed by the (client, ...) index below: its leading column (migration 0024).
    client = ForeignKeyField(Client, null=True, backref="emails", on_delete="SET NULL", index=False)
    template = CharField(max_length=100)
    to = CharField(max_length=254)
    subject = CharField(max_length=255)
    body_text = TextField()
    body_html = TextField(default="")
    #: For sensitive templates: the body with its secret masked, swapped in once delivered.
    masked_body = TextField(default="")
    status = CharField(max_length=16, default=EmailStatus.QUEUED)
    #: Set for notices that must never be queued twice (e.g. rule+invoice+stage).
    unique_key = CharField(max_length=200, null=True, unique=True)
    marketing = BooleanField(default=False)
    #: Restored from an interchange document as history (PRODUCT.md §5): never
    #: delivered by this database, whatever its status says.
    imported = BooleanField(default=False)
    message_id = CharField(max_length=255, default="")
    attempts = IntegerField(default=0)
    #: When it is next due: queued, the time of the (next) attempt; sending, when the
    #: flusher's lease runs out (another flusher may take it over from then on).
    next_attempt_at = DateTimeField(default=utcnow)
    lease_owner = CharField(max_length=64, default="")
    #: Why it failed, or why it was skipped.
    last_error = TextField(default="")
    created_at = DateTimeField(default=utcnow)
    sent_at = DateTimeField(null=True)

    if TYPE_CHECKING:
        client_id: Any

    class Meta:
        indexes = (
            (("status", "created_at"), False),
            (("client", "created_at"), False),
            (("created_at",), False),
        )


Email.add_index(
    Email.index(
        Email.marketing, Email.next_attempt_at, Email.id, name="email_due", where=SQL(DUE_ROWS)
    )
)
Email.add_index(Email.index(Email.sent_at, name="email_marketing_sent", where=SQL(MARKETING)))
