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
- ``normalise_state`` / ``region_key``: a state/region as saved, and as tax rules match it
  (PRODUCT.md §3: "by code or by name", case-insensitively).
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache, lru_cache

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
    import phonenumbers  # here: 35 ms of import that opening the staff app does not need

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


# --------------------------------------------------------------------------- regions


def _loose(text: str) -> str:
    """A name as people spell it loosely: no case, accents, spaces or punctuation."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(ch for ch in decomposed if unicodedata.category(ch) != "Mn")
    return "".join(ch for ch in bare.casefold() if ch.isalnum())


@cache
def _subdivisions(country: str) -> tuple[dict[str, str], dict[str, str]]:
    """``country``'s ISO 3166-2 subdivisions: code suffix by upper-cased code, and by
    loose name (a name shared by two takes the top-level one, then the shorter code)."""
    import pycountry  # here: 19 ms of import that opening the staff app does not need

    codes: dict[str, str] = {}
    names: dict[str, str] = {}
    found = pycountry.subdivisions.get(country_code=country) if country else None
    ranked = sorted(found or (), key=lambda s: (s.parent_code is not None, len(s.code), s.code))
    for sub in ranked:
        suffix = sub.code.split("-", 1)[1]
        codes[suffix.upper()] = suffix
        # "Catalunya [Cataluña]": each spelling is a name.
        for name in re.split(r"\s*[\[\]]\s*", sub.name):
            if _loose(name):
                names.setdefault(_loose(name), suffix)
    return codes, names


def _as_code(country: str, state: str) -> str | None:
    """The subdivision code suffix ``state`` is written as ("ca", "US-CA"), if any."""
    country = country.strip().upper()
    codes, _ = _subdivisions(country)
    if not codes:
        return None
    text = state.strip().upper()
    if text.startswith(country + "-"):
        text = text[len(country) + 1 :]
    return codes.get(text)


@lru_cache(maxsize=65_536)
def subdivision_code(country: str, state: str) -> str | None:
    """The ISO 3166-2 code suffix ("CA") that ``state`` names in ``country``, by code or by
    name, ignoring case, accents, spaces and punctuation; None when it names none."""
    code = _as_code(country, state)
    if code is not None:
        return code
    _, names = _subdivisions(country.strip().upper())
    return names.get(_loose(state)) if names else None


def normalise_state(country: str, state: str) -> str:
    """A state/region as it is saved: a subdivision code of ``country`` in upper case
    ("ca" and "us-ca" are "CA" in the US), anything else trimmed and kept as written.

    A name ("California", "Kent", "Tokyo") stays a name: on a client or contact it is
    part of the postal address, where the ISO code ("KEN", "13") would be wrong, and on a
    tax rule staff read it in the list. ``region_key`` matches either way.
    """
    text = state.strip()
    code = _as_code(country, text)
    return code if code is not None else text


@lru_cache(maxsize=65_536)
def region_key(country: str, state: str) -> str:
    """How a state/region is matched: "US-CA" for "CA", "ca", "us-ca" and "California";
    otherwise the loose form of the text ("Kowloon" and "KOWLOON" meet in Hong Kong, which
    has no ISO subdivisions); "" for no state (the whole country)."""
    country = country.strip().upper()
    code = subdivision_code(country, state)
    if code is not None:
        return f"{country}-{code}"
    return _loose(state)
