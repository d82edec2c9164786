from __future__ import annotations

import pytest

from rules.clients.validation import (
    clean_country,
    clean_email,
    clean_phone,
    clean_text,
)
from rules.errors import FieldError


def test_email_normalised() -> None:
    assert clean_email("  Ana.Núñez@EXAMPLE.com ") == "Ana.Núñez@example.com"


@pytest.mark.parametrize(
    "bad",
    [
        "",
        "no-at-sign",
        "a@b",
        "a@@example.com",
        "a b@example.com",
        "x@mail.test",
        "a@" + "x" * 250 + ".com",
    ],
)
def test_email_refused(bad: str) -> None:
    with pytest.raises(FieldError, match="not a valid email|is required|at most"):
        clean_email(bad)


def test_phone_to_e164() -> None:
    assert clean_phone("020 7183 8750", "GB") == "+442071838750"
    assert clean_phone("+1 201-555-0123") == "+12015550123"
    assert clean_phone("") == ""


@pytest.mark.parametrize("bad", ["12", "+999 1234", "phone", "+44 20 7183 875099999"])
def test_phone_refused(bad: str) -> None:
    with pytest.raises(FieldError, match="not a valid phone number"):
        clean_phone(bad, "GB")


def test_country() -> None:
    assert clean_country("de") == "DE"
    assert clean_country("") == ""
    with pytest.raises(FieldError):
        clean_country("XX")
    with pytest.raises(FieldError):
        clean_country("", required=True)


@pytest.mark.parametrize("name", ["محمد", "王伟", "O'Brien", "Zoë D'Angelo", "[bold]x", "a[0]]"])
def test_unicode_names_kept(name: str) -> None:
    assert clean_text(name, 100, required=True) == name


@pytest.mark.parametrize("bad", ["a\x00b", "a\x1bb", "a\nb", "evil\u202egnp.exe", "x\u2066y"])
def test_control_and_bidi_refused(bad: str) -> None:
    with pytest.raises(FieldError, match="control|bidirectional"):
        clean_text(bad, 100)


def test_length_and_multiline() -> None:
    with pytest.raises(FieldError, match="at most 5"):
        clean_text("abcdef", 5)
    assert clean_text("line 1\nline 2", 50, multiline=True) == "line 1\nline 2"
