"""Exact money: integer minor units in the database, ``Decimal`` in code.

Floats never appear: every amount enters through :func:`parse_amount` (strict,
for user and import input) or :meth:`Money.from_minor` (from the database), and
every computed amount is rounded half-up to the currency's decimals.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from functools import lru_cache
from typing import Protocol

__all__ = [
    "CurrencyFormat",
    "Money",
    "MoneyError",
    "format_decimal",
    "format_money",
    "from_default_currency",
    "parse_amount",
    "round_half_up",
]


class MoneyError(ValueError):
    """An amount that cannot be represented exactly in its currency."""


def _quantum(decimals: int) -> Decimal:
    return Decimal(1).scaleb(-decimals)


def round_half_up(value: Decimal, decimals: int) -> Decimal:
    """Round to ``decimals`` places, halves away from zero (billing convention)."""
    return value.quantize(_quantum(decimals), rounding=ROUND_HALF_UP)


def parse_amount(text: str, decimals: int, *, allow_negative: bool = False) -> Decimal:
    """Parse a decimal string such as ``"9.99"`` strictly.

    Refuses floats, exponents, NaN/Infinity and more decimals than the currency
    has (``"9.999"`` in USD is an error, never silently rounded).
    """
    if not isinstance(text, str):
        raise MoneyError('must be a decimal string such as "9.99"')
    stripped = text.strip()
    if not stripped or any(c not in "0123456789.-" for c in stripped):
        raise MoneyError(f"{text!r} is not a decimal amount")
    try:
        value = Decimal(stripped)
    except InvalidOperation as exc:
        raise MoneyError(f"{text!r} is not a decimal amount") from exc
    if not value.is_finite():
        raise MoneyError(f"{text!r} is not a decimal amount")
    if value < 0 and not allow_negative:
        raise MoneyError(f"{text!r} must not be negative")
    exponent = value.as_tuple().exponent
    assert isinstance(exponent, int)
    if -exponent > decimals:
        raise MoneyError(f"{text!r} has more than {decimals} decimal places")
    return value


def format_decimal(value: Decimal, decimals: int) -> str:
    """The canonical string of an amount: exactly ``decimals`` places."""
    return f"{round_half_up(value, decimals):.{decimals}f}"


class CurrencyFormat(Protocol):
    """What ``format_money`` reads of a currency: a ``Currency`` row, or any row with these."""

    code: str
    prefix: str
    suffix: str
    decimals: int


def format_money(minor: int, currency: CurrencyFormat) -> str:
    """An amount as the operator set its currency up in Setup: ``"$1,234.50 USD"``.

    ``minor`` is integer minor units (cents); the text is the sign, the currency's
    ``prefix``, the amount with ``decimals`` places and ``,`` between thousands, then
    its ``suffix`` (WHMCS's currency prefix/suffix; PRODUCT.md §4: "amounts in emails,
    screens and PDFs use the currency's own prefix, suffix and decimals"). A currency
    with neither prefix nor suffix is followed by its code (``"12.345 BHD"``), so an
    amount never goes out without saying its currency.

    This is the one formatter of the product: the Jinja merge fields, the screens and
    ``rules.mail.sql.money`` (its SQL twin, tested to write the same bytes) all use it.
    """
    return _format(int(minor), currency.prefix, currency.suffix, currency.decimals, currency.code)


@lru_cache(maxsize=4096)
def _format(minor: int, prefix: str, suffix: str, decimals: int, code: str) -> str:
    """Amounts repeat (plans have prices): each is formatted once (cron renders thousands)."""
    value = Decimal(minor).scaleb(-decimals)
    sign = "-" if minor < 0 else ""
    if not prefix and not suffix:
        suffix = f" {code}"
    return f"{sign}{prefix}{abs(value):,.{decimals}f}{suffix}"


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in a currency, always held at the currency's precision."""

    amount: Decimal
    currency: str
    decimals: int = 2

    def __post_init__(self) -> None:
        if not isinstance(self.amount, Decimal):
            raise TypeError("Money amount must be a Decimal")
        object.__setattr__(self, "amount", round_half_up(self.amount, self.decimals))

    @classmethod
    def from_minor(cls, minor: int, currency: str, decimals: int = 2) -> Money:
        return cls(Decimal(int(minor)).scaleb(-decimals), currency, decimals)

    @classmethod
    def zero(cls, currency: str, decimals: int = 2) -> Money:
        return cls(Decimal(0), currency, decimals)

    @property
    def minor(self) -> int:
        """Integer minor units, as stored in the database."""
        return int(self.amount.scaleb(self.decimals))

    def _check(self, other: Money) -> None:
        if other.currency != self.currency:
            raise MoneyError(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._check(other)
        return Money(self.amount + other.amount, self.currency, self.decimals)

    def __sub__(self, other: Money) -> Money:
        self._check(other)
        return Money(self.amount - other.amount, self.currency, self.decimals)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency, self.decimals)

    def times(self, factor: Decimal) -> Money:
        """Multiply by an exact factor (a rate, a quantity), rounding half-up once."""
        return Money(self.amount * factor, self.currency, self.decimals)

    def percent(self, rate: Decimal) -> Money:
        """``rate`` percent of this amount, rounded half-up."""
        return self.times(rate / Decimal(100))

    def __lt__(self, other: Money) -> bool:
        self._check(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._check(other)
        return self.amount <= other.amount

    def __str__(self) -> str:
        return f"{self.amount:.{self.decimals}f} {self.currency}"

    def text(self) -> str:
        """The interchange form: a plain decimal string such as ``"9.99"``."""
        return f"{self.amount:.{self.decimals}f}"


def from_default_currency(amount: Decimal, rate: str | Decimal, decimals: int) -> int:
    """An amount set in the default currency (``Decimal``), in another currency's minor
    units: multiplied by that currency's rate against the default and rounded half-up to
    its decimals (PRODUCT.md §3: a fixed 5.00 USD is 750 JPY at 150, 1.880 BHD at 0.376).

    Raises ``MoneyError`` for a rate that is not a positive finite decimal.
    """
    try:
        factor = Decimal(str(rate).strip())
    except InvalidOperation as exc:
        raise MoneyError(f"{rate!r} is not an exchange rate") from exc
    if not factor.is_finite() or factor <= 0:
        raise MoneyError(f"{rate!r} is not an exchange rate")
    return int(round_half_up(amount * factor, decimals).scaleb(decimals))
