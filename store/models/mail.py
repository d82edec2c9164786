"""Email templates and the outbox, which is also the email log."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from peewee import BooleanField, CharField, DateTimeField, ForeignKeyField, IntegerField, TextField

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


class Email(BaseModel):
    """An outgoing email, written in the transaction of the event that caused it."""

    client = ForeignKeyField(Client, null=True, backref="emails", on_delete="SET NULL")
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
    next_attempt_at = DateTimeField(default=utcnow)
    lease_owner = CharField(max_length=64, default="")
    lease_until = DateTimeField(null=True)
    last_error = TextField(default="")
    created_at = DateTimeField(default=utcnow)
    sent_at = DateTimeField(null=True)

    if TYPE_CHECKING:
        client_id: Any

    class Meta:
        indexes = (
            (("status", "next_attempt_at"), False),
            (("client", "created_at"), False),
            (("created_at",), False),
        )
