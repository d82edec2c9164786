"""Passwords, shared by staff and clients: hashing with argon2id (argon2-cffi defaults)
and the one policy every new password meets.

The hashing parameters are argon2-cffi's defaults (RFC 9106's low-memory profile:
argon2id, 3 passes over 64 MiB, 4 lanes; about 50-100 ms a hash). A stored hash made
with other parameters verifies as before and is replaced on the next successful login
(``needs_rehash``). Only a test configuration swaps in cheaper parameters
(``use_hash_parameters``); production never calls it.

The policy follows NIST SP 800-63B §5.1.1.2 and OWASP ASVS V2.1: length is what
counts (at least 10 characters, and up to 256 allowed, well beyond the 64 NIST asks
for), no composition rules (no "one digit, one symbol"), any printable character
including spaces and non-Latin letters, and a refusal of passwords attackers try
first: the 20,000 most common ones (``rules/accounts/data/common-passwords.txt.gz``), one
made of one or two characters repeated, and one containing the account's own name.
"""

from __future__ import annotations

import gzip
import secrets
import string
import unicodedata
from collections.abc import Iterable
from functools import cache, lru_cache
from pathlib import Path

from argon2 import Parameters, PasswordHasher, profiles
from argon2.exceptions import InvalidHashError, VerificationError

from rules.errors import FieldError

#: The parameters new hashes are made with (PRODUCT.md §2: argon2-cffi defaults or stronger).
PRODUCTION_PARAMETERS: Parameters = profiles.RFC_9106_LOW_MEMORY
_hasher = PasswordHasher.from_parameters(PRODUCTION_PARAMETERS)

#: The policy's bounds, in characters (Unicode code points).
MIN_PASSWORD = 10
MAX_PASSWORD = 256
#: Context words (username, email name) shorter than this are not searched for.
MIN_CONTEXT_WORD = 4
COMMON_PASSWORDS = Path(__file__).with_name("data") / "common-passwords.txt.gz"


def use_hash_parameters(parameters: Parameters) -> None:
    """Make new hashes with ``parameters`` from now on (process-wide). For a test
    configuration only, which wants cheap hashes; production keeps
    ``PRODUCTION_PARAMETERS``."""
    global _hasher
    _hasher = PasswordHasher.from_parameters(parameters)


def hash_parameters() -> Parameters:
    """The argon2 parameters new hashes are made with."""
    return Parameters(
        type=_hasher.type,
        version=19,
        salt_len=_hasher.salt_len,
        hash_len=_hasher.hash_len,
        time_cost=_hasher.time_cost,
        memory_cost=_hasher.memory_cost,
        parallelism=_hasher.parallelism,
    )


def hash_password(password: str) -> str:
    """The argon2id hash (PHC string, about 100 characters) of ``password``."""
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    """True when ``password`` matches; never raises for a wrong or malformed hash."""
    if not stored_hash:
        return False
    try:
        return _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def verify_or_pretend(stored_hash: str | None, password: str) -> bool:
    """``verify_password``, doing the same argon2 work when there is no hash to check
    (an unknown login, a client without a password or security answer): a check against
    a decoy hash made with the current parameters, then False. So a known and an unknown
    name cost the same time (OWASP Authentication Cheat Sheet, "login throttling" and
    user enumeration). Never raises."""
    if stored_hash:
        return verify_password(stored_hash, password)
    verify_password(_decoy_hash(_hasher), password)
    return False


@lru_cache(maxsize=2)
def _decoy_hash(hasher: PasswordHasher) -> str:
    """A hash of a password nobody has, made once per hasher (so after
    ``use_hash_parameters`` it costs what a real hash costs)."""
    return hasher.hash(secrets.token_urlsafe(16))


def needs_rehash(stored_hash: str) -> bool:
    """True when ``stored_hash`` was made with other parameters than new hashes are (or
    is not an argon2 hash at all): the caller, holding the right password, replaces it."""
    try:
        return _hasher.check_needs_rehash(stored_hash)
    except (InvalidHashError, ValueError):
        return True


def generate_password(length: int = 16) -> str:
    """A strong random password without look-alike characters (it meets the policy)."""
    alphabet = "".join(c for c in string.ascii_letters + string.digits if c not in "Il1O0o")
    return "".join(secrets.choice(alphabet) for _ in range(length))


@cache
def common_passwords() -> frozenset[str]:
    """The shipped list of common passwords, lower case (about 20,000; read once)."""
    with gzip.open(COMMON_PASSWORDS, "rt", encoding="utf-8") as lines:
        return frozenset(line.strip() for line in lines if line.strip())


def check_new_password(password: object, *, context: Iterable[str] = ()) -> str:
    """``password`` itself when it meets the policy above; raises ``FieldError`` with the
    reason otherwise. ``context``: the account's own words (username, email), which the
    password must not contain. The password is never part of the message.
    """
    if not isinstance(password, str):
        raise FieldError("must be text")
    length = len(password)
    if length < MIN_PASSWORD:
        raise FieldError(f"must be at least {MIN_PASSWORD} characters")
    if length > MAX_PASSWORD:
        raise FieldError(f"must be at most {MAX_PASSWORD} characters")
    if any(unicodedata.category(ch) in ("Cc", "Zl", "Zp") for ch in password):
        raise FieldError("must not contain control characters or line breaks")
    folded = password.strip().casefold()
    if folded in common_passwords():
        raise FieldError("is one of the most common passwords: choose another")
    if len(set(folded)) <= 2:
        raise FieldError("must not be one or two characters repeated")
    for word in _context_words(context):
        if word in folded:
            raise FieldError("must not contain your username or email name")
    return password


def _context_words(context: Iterable[str]) -> set[str]:
    words = set()
    for item in context:
        folded = item.strip().casefold()
        for word in (folded, folded.split("@", 1)[0]):
            if len(word) >= MIN_CONTEXT_WORD:
                words.add(word)
    return words
