"""One bad value stops all mail (issue 10, kind 1), the validation half: a single-line
value refuses every line and paragraph separator, control character and bidi control
wherever it is entered (client and contact fields, custom field values, settings)."""

from __future__ import annotations

import pytest

from rules.clients.validation import (
    check_custom_value,
    clean_text,
)
from rules.errors import FieldError
from store.settings import SettingsError, validate_setting

#: Characters no single-line value may hold: Zl, Zp, C0, DEL, C1 (NEL, CSI), bidi controls.
REFUSED = [
    "\u2028",
    "\u2029",
    "\n",
    "\r",
    "\x0b",
    "\x1b",
    "\x00",
    "\x7f",
    "\x85",
    "\x9b",
    "\u061c",
    "\u200f",
    "\u202e",
    "\u2066",
]


@pytest.mark.parametrize("char", REFUSED, ids=[f"U+{ord(c):04X}" for c in REFUSED])
def test_bad_characters_are_refused_in_single_line_fields(char: str) -> None:
    value = f"Ana{char}Evil"
    with pytest.raises(FieldError):
        clean_text(value, 100)
    with pytest.raises(FieldError):
        check_custom_value("text", [], "", False, value)
    for setting in (
        "company_name",
        "system_url",
        "signature",
        "company_address",
        "bank_transfer_instructions",
    ):
        with pytest.raises(SettingsError):
            validate_setting(setting, value)


def test_multiline_fields_keep_newlines_and_tabs_only() -> None:
    assert clean_text("line one\n\tline two", 100, multiline=True) == "line one\n\tline two"
    assert check_custom_value("textarea", [], "", False, "a\nb") == "a\nb"
    for char in ("\x1b", "\x00", "\x9b", "\u202e", "\u061c"):
        with pytest.raises(FieldError):
            clean_text(f"a{char}b", 100, multiline=True)


def test_names_in_every_script_are_still_welcome() -> None:
    for name in ("Núñez", "O'Brien", "محمد", "李小龙", "Zoë-Ann", "[bold]"):
        assert clean_text(name, 100) == name
    assert validate_setting("company_name", "Ünïcode Hosting · Ltd") == "Ünïcode Hosting · Ltd"
