"""Staff accounts and password-reset tokens."""

from __future__ import annotations

from peewee import BooleanField, CharField, DateTimeField, ForeignKeyField

from store.models.base import BaseModel, utcnow
from store.models.clients import Client
from store.models.enums import StaffRole


class Staff(BaseModel):
    username = CharField(max_length=64, unique=True)
    #: argon2id hash; the password itself is never stored or logged.
    password_hash = CharField(max_length=255)
    role = CharField(max_length=16, default=StaffRole.SUPPORT)
    disabled = BooleanField(default=False)
    created_at = DateTimeField(default=utcnow)
    last_login_at = DateTimeField(null=True)


class PasswordResetToken(BaseModel):
    client = ForeignKeyField(Client, on_delete="CASCADE")
    #: SHA-256 of the token: the token itself only ever exists in the email.
    token_hash = CharField(max_length=64, unique=True)
    created_at = DateTimeField(default=utcnow)
    expires_at = DateTimeField()
    used_at = DateTimeField(null=True)

    class Meta:
        indexes = ((("client", "created_at"), False),)
