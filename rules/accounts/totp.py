"""Checking a client's second factor: TOTP codes (RFC 6238: 6 digits, 30 s steps, ±1
step, each step accepted once) with pyotp, and one-time backup codes stored as digests
(PRODUCT.md §2). Enrolment and switching off are in ``rules.accounts.two_factor``.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets

import pyotp

from store.db import writer
from store.models import Client, TotpBackupCode

__all__ = [
    "BACKUP_CODES",
    "TOTP_DIGITS",
    "TOTP_STEP_SECONDS",
    "TOTP_WINDOW",
    "accept_code",
    "accept_totp",
    "backup_codes_left",
    "matching_step",
    "new_codes",
    "store_codes",
    "totp_for",
    "use_backup_code",
]

TOTP_DIGITS = 6
TOTP_STEP_SECONDS = 30
#: Steps either side of now that are accepted (clock drift, a code typed as it changed).
TOTP_WINDOW = 1
BACKUP_CODES = 10
#: A backup code: 16 characters of a 32-letter alphabet (80 bits), shown in groups of 4.
BACKUP_CODE_LENGTH = 16
_BACKUP_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no i, l, o, 0, 1: read aloud safely


def _step(now: dt.datetime) -> int:
    """The TOTP time step of ``now`` (naive UTC)."""
    return int(now.replace(tzinfo=dt.UTC).timestamp()) // TOTP_STEP_SECONDS


def totp_for(secret: str) -> pyotp.TOTP:
    return pyotp.TOTP(secret, digits=TOTP_DIGITS, interval=TOTP_STEP_SECONDS)


def matching_step(secret: str, code: str, now: dt.datetime) -> int | None:
    code = "".join(code.split())
    if len(code) != TOTP_DIGITS or not code.isascii() or not code.isdigit():
        return None
    totp = totp_for(secret)
    current = _step(now)
    for step in range(current - TOTP_WINDOW, current + TOTP_WINDOW + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            return step
    return None


def accept_totp(client_id: int, secret: str, code: str, now: dt.datetime) -> bool:
    """True when ``code`` is the TOTP of ``secret`` for a step within ±1 of ``now``'s that
    is later than the last one this client used; that step is then stored as used. The
    check and the store are one conditional UPDATE, so two logins racing one code: one
    wins. One query (none for a wrong code)."""
    step = matching_step(secret, code, now)
    if step is None:
        return False
    with writer():
        won = (
            Client.update(totp_last_step=step)
            .where(
                (Client.id == client_id)
                & (Client.totp_secret == secret)
                & (Client.totp_last_step < step)
            )
            .execute()
        )
    return won == 1


def _normal_backup_code(code: str) -> str:
    return "".join(ch for ch in code.casefold() if ch.isalnum())


def _backup_hash(client_id: int, code: str) -> str:
    """SHA-256 of the client and the normalised code: the codes are 80 random bits, so a
    fast hash is enough (no dictionary to try), and every check is one indexed lookup."""
    return hashlib.sha256(f"{client_id}:{_normal_backup_code(code)}".encode()).hexdigest()


def use_backup_code(client_id: int, code: str, now: dt.datetime) -> bool:
    """True when ``code`` is one of the client's unused backup codes (case, spaces and
    dashes ignored); it is then used up. One conditional UPDATE: a code is accepted once,
    even by two logins at the same instant."""
    if len(_normal_backup_code(code)) != BACKUP_CODE_LENGTH:
        return False
    with writer():
        used = (
            TotpBackupCode.update(used_at=now)
            .where(
                (TotpBackupCode.client == client_id)
                & (TotpBackupCode.code_hash == _backup_hash(client_id, code))
                & TotpBackupCode.used_at.is_null()
            )
            .execute()
        )
    return used == 1


def accept_code(client_id: int, secret: str, code: str, now: dt.datetime) -> str:
    """The second factor of a login: "totp" or "backup code" for what was accepted, ""
    when neither was (``accept_totp``, ``use_backup_code``)."""
    if accept_totp(client_id, secret, code, now):
        return "totp"
    if use_backup_code(client_id, code, now):
        return "backup code"
    return ""


def backup_codes_left(client_id: int) -> int:
    """How many unused backup codes the client has."""
    return int(
        TotpBackupCode.select()
        .where((TotpBackupCode.client == client_id) & TotpBackupCode.used_at.is_null())
        .count()
    )


def new_codes() -> list[str]:
    codes = []
    for _ in range(BACKUP_CODES):
        raw = "".join(secrets.choice(_BACKUP_ALPHABET) for _ in range(BACKUP_CODE_LENGTH))
        codes.append("-".join(raw[i : i + 4] for i in range(0, BACKUP_CODE_LENGTH, 4)))
    return codes


def store_codes(client_id: int, codes: list[str]) -> None:
    """Replace the client's backup codes by ``codes`` (hashed); inside a transaction."""
    TotpBackupCode.delete().where(TotpBackupCode.client == client_id).execute()
    TotpBackupCode.insert_many(
        [{"client": client_id, "code_hash": _backup_hash(client_id, c)} for c in codes]
    ).execute()
