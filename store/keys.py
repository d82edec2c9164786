"""Normalised keys: the forms in which typed values are compared, kept unique and searched.

One place for each, used by the rules, the models, the bulk paths and migration 0006,
so a value is never compared one way on save and another way on lookup:

- ``fold``: Unicode caseless form (``str.casefold`` between canonical decompositions),
  the same for every script; "Weiß" and "WEISS" fold alike, as Unicode's full case
  folding defines. Never the database's LOWER(), which folds ASCII only on SQLite and
  follows the collation on PostgreSQL.
- ``email_key``: what makes two client emails "the same" (PRODUCT.md §1: unique,
  case-insensitive).
- ``client_search_text``: what the client list search looks in (README "The staff app").
"""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

import phonenumbers

#: A folded email can be longer than the email ("ß" folds to "ss"): at most three times.
EMAIL_KEY_MAX = 3 * 254


def fold(text: str) -> str:
    """The caseless form of ``text`` (NFC): Unicode canonical caseless matching."""
    return unicodedata.normalize("NFC", unicodedata.normalize("NFD", text).casefold())


def email_key(email: str) -> str:
    """The uniqueness key of a normalised email: two emails clash when their keys are equal.

    ``john.doe@x`` and ``JOHN.DOE@x`` share a key; ``john_doe@x`` has its own (no
    pattern: every character is itself).
    """
    return fold(email.strip())


def search_fold(text: str) -> str:
    """``fold`` with runs of white space made one space: how search text and terms compare."""
    return " ".join(fold(text).split())


# --------------------------------------------------------------------------- phones


#: Characters people put between the digits of a phone number.
PHONE_SEPARATORS = re.compile(r"[\s().\-/]")
_PHONE_LIKE = re.compile(r"^\+?[\d\s().\-/]*\d[\d\s().\-/]*$")


def phone_digits(term: str) -> str | None:
    """A term typed like a phone number ("+44 20 7183 8750", "(202) 555-0143") without its
    separators, as the search text holds numbers; None when it is not typed like one."""
    if not _PHONE_LIKE.match(term):
        return None
    return PHONE_SEPARATORS.sub("", term)


@lru_cache(maxsize=65_536)
def _phone_search_forms(e164: str) -> tuple[str, ...]:
    """E.164 and, when it is not already inside it, the national number with its trunk
    prefix (UK "02071838750"), both without separators."""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return (e164,)
    national = PHONE_SEPARATORS.sub(
        "", phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.NATIONAL)
    )
    return (e164,) if national in e164 else (e164, national)


def client_search_text(
    first_name: str, last_name: str, company: str, email: str, phone: str
) -> str:
    """What the client list search looks in, one line per field, folded.

    The name as the list shows it ("Émile Zola"), company, email, and the phone as digits
    (E.164 and the national form); ``store.client_list`` folds a term the same way and
    strips the separators of a term typed like a phone number, so the formatted number
    the profile shows finds its client.
    """
    parts = [f"{first_name} {last_name}", company, email]
    if phone:
        parts.extend(_phone_search_forms(phone))
    return "\n".join(search_fold(p) for p in parts if p and p.strip())
