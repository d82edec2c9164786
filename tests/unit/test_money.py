from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from store.models import Currency
from store.money import (
    Money,
    MoneyError,
    format_decimal,
    format_money,
    parse_amount,
    round_half_up,
)

minor_units = st.integers(min_value=-(10**15), max_value=10**15)
decimals = st.integers(min_value=0, max_value=4)


@given(minor_units, decimals)
def test_minor_units_round_trip(minor: int, places: int) -> None:
    money = Money.from_minor(minor, "USD", places)
    assert money.minor == minor
    assert parse_amount(money.text(), places, allow_negative=True) == money.amount


@given(st.lists(minor_units, max_size=50))
def test_sums_are_exact(values: list[int]) -> None:
    total = Money.zero("USD")
    for v in values:
        total = total + Money.from_minor(v, "USD")
    assert total.minor == sum(values)


@given(st.decimals(min_value=-(10**9), max_value=10**9, allow_nan=False, places=6), decimals)
def test_rounding_is_half_up_and_at_most_half_a_unit(value: Decimal, places: int) -> None:
    rounded = round_half_up(value, places)
    unit = Decimal(1).scaleb(-places)
    assert abs(rounded - value) <= unit / 2
    if abs(rounded - value) == unit / 2:
        assert abs(rounded) > abs(value)  # halves go away from zero


def test_half_up_examples() -> None:
    assert Money(Decimal("0.005"), "USD").text() == "0.01"
    assert Money(Decimal("-0.005"), "USD").text() == "-0.01"
    assert Money(Decimal("2.675"), "USD").text() == "2.68"  # a float would give 2.67
    assert Money.from_minor(10000, "USD").percent(Decimal("10")).text() == "10.00"
    assert format_decimal(Decimal("1.5"), 0) == "2"


@pytest.mark.parametrize(
    "text", ["9.999", "1e3", "NaN", "Infinity", "", " ", "1,00", "0x10", "--1", "-1"]
)
def test_parse_refuses(text: str) -> None:
    with pytest.raises(MoneyError):
        parse_amount(text, 2)


def test_parse_refuses_float() -> None:
    with pytest.raises(MoneyError):
        parse_amount(9.99, 2)  # type: ignore[arg-type]


def test_currencies_do_not_mix() -> None:
    with pytest.raises(MoneyError):
        Money.from_minor(1, "USD") + Money.from_minor(1, "EUR")


def test_amount_must_be_decimal() -> None:
    with pytest.raises(TypeError):
        Money(1.5, "USD")  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "code,prefix,suffix,decimals,minor,text",
    [
        ("USD", "$", " USD", 2, 1000, "$10.00 USD"),
        ("USD", "$", " USD", 2, 123456789, "$1,234,567.89 USD"),
        ("USD", "$", " USD", 2, -5, "-$0.05 USD"),
        ("BHD", "BHD ", "", 3, 12345, "BHD 12.345"),
        ("JPY", "¥", "", 0, 1500000, "¥1,500,000"),
        ("EUR", "", " €", 2, 0, "0.00 €"),
        ("GBP", "", "", 2, 250, "2.50 GBP"),  # neither: the code says which currency
        ("XTS", "%s'", "%", 4, 12345, "%s'1.2345%"),
    ],
)
def test_amounts_use_the_currencys_own_prefix_suffix_and_decimals(
    code: str, prefix: str, suffix: str, decimals: int, minor: int, text: str
) -> None:
    currency = Currency(code=code, prefix=prefix, suffix=suffix, decimals=decimals)
    assert format_money(minor, currency) == text
