"""Which characters stored text may hold (PRODUCT.md §1: control and bidi-override
characters are refused), in one place for the field validators of ``rules`` and the
settings of ``store.settings``.

A single-line value (a name, a company, a subject, a setting) ends up in email
headers and on terminals: a line or paragraph separator (U+2028, U+2029) breaks a
header as a newline does (Python's email package refuses it, and with it the whole
message), a control character can drive a terminal, and a bidi control can make a
name display as something else.
"""

from __future__ import annotations

import unicodedata

#: Bidi embeddings, overrides, isolates and marks (Unicode's Bidi_Control property):
#: they can make a name display as something else.
BIDI_CONTROLS = frozenset(
    "\u061c\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069"
)
#: What a multi-line value (notes, a textarea field) may hold besides printable text.
MULTILINE_ALLOWED = frozenset("\n\t")


def surrogate_refusal(text: str) -> str | None:
    """Why ``text`` is not Unicode text (it holds a lone surrogate, category Cs, as a
    broken paste or a mis-decoded file leaves), or None; for values such as template
    bodies that may hold any other character."""
    if any("\ud800" <= ch <= "\udfff" for ch in text):
        return "must be valid Unicode text (a lone surrogate is not)"
    return None


def text_refusal(text: str, *, multiline: bool = False) -> str | None:
    """Why ``text`` may not be stored, or None when it may.

    Refused everywhere: bidi controls and control characters (Unicode category Cc:
    C0, DEL and C1), except newline and tab in a multi-line value, and lone surrogates
    (category Cs: not Unicode text, no encoder can write them to a mail, a file or a
    terminal). Refused in a single-line value also: line and paragraph separators
    (categories Zl and Zp).
    """
    for ch in text:
        if ch in BIDI_CONTROLS:
            return "must not contain bidirectional override characters"
        category = unicodedata.category(ch)
        if category == "Cs":
            return "must be valid Unicode text (a lone surrogate is not)"
        if category == "Cc" and not (multiline and ch in MULTILINE_ALLOWED):
            return "must not contain control characters"
        if category in ("Zl", "Zp") and not multiline:
            return "must be one line (no line or paragraph separators)"
    return None
