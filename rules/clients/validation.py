"""Field validation for PRODUCT.md §1, shared by the editor, the portal and import.

Each ``clean_*`` returns the normalised value or raises ``FieldError`` with a
reason a user can act on.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache, lru_cache

import phonenumbers
import pycountry
import re2
from email_validator import EmailNotValidError, validate_email

from rules.errors import FieldError, ValidationError
from store.keys import normalise_state
from store.models.clients import EMAIL_MAX, STATE_MAX
from store.text import text_refusal


def clean_text(
    value: object,
    max_length: int,
    *,
    required: bool = False,
    multiline: bool = False,
    strip: bool = True,
) -> str:
    """Trimmed, NFC-normalised text without control or bidi-override characters, and
    without line or paragraph separators unless ``multiline`` (``store.text``)."""
    if not isinstance(value, str):
        raise FieldError("must be text")
    text = unicodedata.normalize("NFC", value.strip() if strip else value)
    refusal = text_refusal(text, multiline=multiline)
    if refusal:
        raise FieldError(refusal)
    if required and not text:
        raise FieldError("is required")
    if len(text) > max_length:
        raise FieldError(f"must be at most {max_length} characters")
    return text


def clean_line(name: str, value: object, max_length: int, *, required: bool = False) -> str:
    """``clean_text`` for the form field ``name`` that is one line of text (a reference, a
    description): runs of white space, line breaks included, become one space; control
    and bidi-override characters are refused. Raises ``ValidationError({name: reason})``."""
    try:
        text = clean_text(value, max_length, required=required, multiline=True)
    except FieldError as exc:
        raise ValidationError({name: str(exc)}) from exc
    return " ".join(text.split())


def clean_email(value: object) -> str:
    """A syntactically valid address, domain lower-cased (no DNS lookup)."""
    text = clean_text(value, EMAIL_MAX, required=True)
    try:
        result = validate_email(text, check_deliverability=False)
    except EmailNotValidError as exc:
        raise FieldError(f"not a valid email ({exc})") from exc
    return result.normalized


@cache
def _countries() -> frozenset[str]:
    return frozenset(c.alpha_2 for c in pycountry.countries)


def clean_country(value: object, *, required: bool = False) -> str:
    """ISO 3166-1 alpha-2, upper case."""
    if not isinstance(value, str):
        raise FieldError("must be text")
    code = value.strip().upper()
    if not code and not required:
        return ""
    if code not in _countries():
        raise FieldError("not an ISO 3166-1 country code")
    return code


def clean_state(value: object, country: str) -> str:
    """A state/region as saved (clients, contacts, tax rules): trimmed text, a subdivision
    code of ``country`` upper-cased ("ca" is "CA" in the US), a name kept as written.

    Tax rules match it by code or by name, in any case, through ``store.keys.region_key``
    (PRODUCT.md §3). Raises ``FieldError`` like ``clean_text``.
    """
    return normalise_state(country, clean_text(value, STATE_MAX))


def clean_phone(value: object, country: str = "") -> str:
    """E.164; a national number is read in the client's country."""
    if not isinstance(value, str):
        raise FieldError("must be text")
    text = value.strip()
    if not text:
        return ""
    try:
        number = phonenumbers.parse(text, country or None)
    except phonenumbers.NumberParseException as exc:
        raise FieldError("not a valid phone number") from exc
    if not phonenumbers.is_valid_number(number):
        raise FieldError("not a valid phone number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def format_phone(e164: str) -> str:
    """The international display form of a stored E.164 number."""
    if not e164:
        return ""
    try:
        number = phonenumbers.parse(e164, None)
    except phonenumbers.NumberParseException:
        return e164
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)


def check_custom_value(
    kind: str, options: list[str], regex: str, required: bool, value: object
) -> str:
    """A custom client field value by its type: dropdown choices, tickbox, link, regex."""
    multiline = kind == "textarea"
    text = clean_text(value, 5000 if multiline else 500, multiline=multiline)
    if required and not text:
        raise FieldError("is required")
    if not text:
        return text
    if kind == "dropdown" and text not in options:
        raise FieldError(f"must be one of {', '.join(options)}")
    if kind == "tickbox" and text != "on":
        raise FieldError('a tickbox value is "on" or empty')
    if kind == "link" and not re.match(r"^https?://\S+$", text):
        raise FieldError("must be a http(s) link")
    if regex:
        try:
            pattern = _pattern(regex)
        except FieldError as exc:  # stored before this check, or written around it
            raise FieldError(
                f"cannot be checked: the field's format rule is {exc}; an admin must correct it"
            ) from exc
        if not pattern.fullmatch(text):
            raise FieldError("does not match the required format")
    return text


#: Pattern limits: RE2's own program-size budget (bytes of compiled program).
PATTERN_MEMORY = 8 << 20


@cache
def _re2_options() -> re2.Options:
    options = re2.Options()
    options.log_errors = False  # the reason is raised, not printed on stderr
    options.max_mem = PATTERN_MEMORY
    return options


@lru_cache(maxsize=256)
def _pattern(regex: str) -> re2._Regexp:
    try:
        return re2.compile(regex, _re2_options())
    except re2.error as exc:
        reason = exc.args[0] if exc.args else exc
        text = reason.decode("utf-8", "replace") if isinstance(reason, bytes) else str(reason)
        raise FieldError(f"not a valid pattern ({text})") from exc


def check_pattern(value: object) -> str:
    """A custom field's format rule (PRODUCT.md §1 "regex validation"), checked at save.

    Patterns are matched by RE2 (google-re2), whose time is linear in the text, so no
    pattern can hang an import or a save, as ``(a+)+$`` does with Python's ``re``. RE2
    refuses what it cannot match in linear time (back-references, look-around) and
    patterns whose program passes ``PATTERN_MEMORY``; ``\\d``, ``\\w`` and ``\\b`` are ASCII
    (``\\pL`` is any letter). Raises ``FieldError`` with RE2's reason.
    """
    text = clean_text(value, 500)
    if text:
        _pattern(text)
    return text
