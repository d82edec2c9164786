"""Two-factor authentication for clients: TOTP (RFC 6238: 6 digits, 30 s steps, ±1 step,
each step accepted once) with pyotp, enrolment with a QR code drawn in the terminal by
segno, and ten one-time backup codes (PRODUCT.md §1 "Two-Factor Authentication", §2).

The client enrols from the portal (``begin_two_factor`` then ``confirm_two_factor``
with a first code and the current password) and may switch it off with the current
password. Staff can only switch it off (``disable_two_factor``, with a reason: the client
is emailed "Two-Factor Disabled" and the change is audited); nothing here lets staff
switch it on. A password reset never touches it.
"""

from __future__ import annotations

import datetime as dt
import io
from dataclasses import dataclass

import pyotp
import segno

from rules.accounts.client_login import ClientSession, check_current_password
from rules.accounts.totp import matching_step, new_codes, store_codes, totp_for
from rules.audit import Actor, record
from rules.errors import RuleError, transaction
from rules.mail.outbox import Notice, queue
from rules.permissions import require
from store.models import Client, TotpBackupCode, utcnow
from store.settings import load_settings
from store.text import text_refusal

__all__ = [
    "TwoFactorEnrolment",
    "begin_two_factor",
    "confirm_two_factor",
    "disable_own_two_factor",
    "disable_two_factor",
    "new_backup_codes",
]


REASON_MAX = 200


@dataclass(frozen=True)
class TwoFactorEnrolment:
    """What the Security screen shows to enrol: the secret (base32, 32 characters, to
    type by hand), the ``otpauth://`` URI, and that URI as a QR code in terminal text
    (lines of block characters, about 45 columns by 23 lines)."""

    secret: str
    uri: str
    qr_text: str


def begin_two_factor(session: ClientSession) -> TwoFactorEnrolment:
    """A new secret for the client to add to an authenticator app: nothing is stored
    until ``confirm_two_factor``. The account name in the URI is the client's email, the
    issuer the company name (settings). Raises ``RuleError`` when two-factor is already
    on (switch it off first)."""
    client = Client.get_or_none(Client.id == session.client_id)
    if client is None:
        raise RuleError("no such client")
    if client.totp_secret:
        raise RuleError("two-factor authentication is already on")
    secret = pyotp.random_base32()
    uri = totp_for(secret).provisioning_uri(
        name=client.email, issuer_name=load_settings().company_name
    )
    out = io.StringIO()
    segno.make(uri, error="l", micro=False).terminal(out=out, compact=True, border=2)
    return TwoFactorEnrolment(secret, uri, out.getvalue())


def confirm_two_factor(
    session: ClientSession,
    secret: str,
    code: str,
    current_password: str,
    *,
    now: dt.datetime | None = None,
) -> list[str]:
    """Switch two-factor on with the ``secret`` of ``begin_two_factor``, once ``code`` is
    its current TOTP (that step counts as used) and ``current_password`` is right.
    Returns the ten backup codes, in clear this once (stored hashed). Audited
    ("2fa_enabled"). Raises ``WrongPassword``, ``LoginRefused``, and ``RuleError`` for a
    wrong code or when two-factor is already on."""
    now = now or utcnow()
    client = check_current_password(session, current_password, now=now)
    if client.totp_secret:
        raise RuleError("two-factor authentication is already on")
    step = matching_step(secret, code, now)
    if step is None:
        raise RuleError("that code is not right: check the time on your device and try again")
    codes = new_codes()
    with transaction():
        switched = (
            Client.update(totp_secret=secret, totp_last_step=step)
            .where((Client.id == client.id) & (Client.totp_secret == ""))
            .execute()
        )
        if switched != 1:
            raise RuleError("two-factor authentication is already on")
        store_codes(client.id, codes)
        record(session.actor, "client", client.id, "2fa_enabled", client_id=client.id)
    return codes


def new_backup_codes(
    session: ClientSession, current_password: str, *, now: dt.datetime | None = None
) -> list[str]:
    """Ten fresh backup codes in place of the old ones (all void), shown this once.
    Audited. Raises ``WrongPassword``, ``LoginRefused``, ``RuleError`` when two-factor
    is off."""
    client = check_current_password(session, current_password, now=now)
    if not client.totp_secret:
        raise RuleError("two-factor authentication is off")
    codes = new_codes()
    with transaction():
        store_codes(client.id, codes)
        record(session.actor, "client", client.id, "2fa_backup_codes", client_id=client.id)
    return codes


def _switch_off(client_id: int) -> int:
    TotpBackupCode.delete().where(TotpBackupCode.client == client_id).execute()
    return int(
        Client.update(totp_secret="", totp_last_step=0)
        .where((Client.id == client_id) & (Client.totp_secret != ""))
        .execute()
    )


def disable_own_two_factor(
    session: ClientSession, current_password: str, *, now: dt.datetime | None = None
) -> None:
    """The client switches two-factor off (portal Security), with the current password:
    secret and backup codes removed, audited ("2fa_disabled"). Raises ``WrongPassword``,
    ``LoginRefused``, ``RuleError`` when it is already off."""
    client = check_current_password(session, current_password, now=now)
    with transaction():
        if not _switch_off(client.id):
            raise RuleError("two-factor authentication is already off")
        record(
            session.actor,
            "client",
            client.id,
            "2fa_disabled",
            client_id=client.id,
            new_value="by the client",
        )


def disable_two_factor(client_id: int, reason: str, actor: Actor) -> None:
    """Staff untick Two-Factor Authentication for a client who lost the device (PRODUCT.md
    §1): secret and backup codes removed, "Two-Factor Disabled" emailed to the client with
    the reason, audited ("2fa_disabled", the reason as the new value). One transaction.

    ``reason``: one line, 1-200 characters. Needs permission "client.2fa". Raises
    ``PermissionDenied``, ``RuleError`` for an unknown client, a missing or bad reason, or
    two-factor already off; ``DatabaseBusy`` under another writer's lock.
    """
    require(actor, "client.2fa")
    reason = reason.strip()
    if not reason:
        raise RuleError("give a reason (for example: lost device, identity checked by phone)")
    if len(reason) > REASON_MAX:
        raise RuleError(f"the reason is at most {REASON_MAX} characters")
    refusal = text_refusal(reason)
    if refusal:
        raise RuleError(f"reason: {refusal}")
    with transaction():
        if not Client.select().where(Client.id == client_id).exists():
            raise RuleError(f"no client {client_id}")
        if not _switch_off(client_id):
            raise RuleError(f"two-factor authentication is not on for client {client_id}")
        record(actor, "client", client_id, "2fa_disabled", client_id=client_id, new_value=reason)
        queue("Two-Factor Disabled", [Notice(client_id, extras=(("reason", reason),))])
