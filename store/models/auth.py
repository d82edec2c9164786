"""Staff accounts, password-reset and invitation tokens, login throttles."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from peewee import BooleanField, CharField, DateTimeField, ForeignKeyField, IntegerField

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
    #: Indexed by the (client, ...) index below: its leading column (migration 0024).
    client = ForeignKeyField(Client, on_delete="CASCADE", index=False)
    #: SHA-256 of the token: the token itself only ever exists in the email.
    token_hash = CharField(max_length=64, unique=True)
    #: "reset" (forgotten password, 2 hours) or "invite" (portal invitation, 7 days).
    purpose = CharField(max_length=16, default="reset")
    created_at = DateTimeField(default=utcnow)
    expires_at = DateTimeField()
    used_at = DateTimeField(null=True)

    if TYPE_CHECKING:
        client_id: Any

    class Meta:
        indexes = ((("client", "created_at"), False),)


class LoginThrottle(BaseModel):
    """Failed logins of one account (staff username, later a client email), so that each
    failure after the third makes the next attempt wait longer (``rules.accounts.throttle``).

    Keyed by the name typed, whether or not such an account exists, so the delays do not
    reveal who has an account. The row goes on a successful login; nothing locks an
    account for good.
    """

    #: "staff" or "client".
    realm = CharField(max_length=16)
    #: The login name as typed, trimmed and case-folded.
    login = CharField(max_length=254)
    failures = IntegerField(default=0)
    #: No attempt is checked before this time (naive UTC).
    refuse_until = DateTimeField(null=True)
    last_failure_at = DateTimeField(null=True)

    class Meta:
        indexes = ((("realm", "login"), True),)
