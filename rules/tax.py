"""Tax: up to two levels of rules by country/state, the most specific winning.

Exclusive by default (tax is added); inclusive optional (prices include it);
level 2 optionally compound (charged on the amount plus level-1 tax):
100.00 at 10% then 20% compound gives tax 10.00 and tax2 22.00.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from store.keys import region_key
from store.models import TaxRule
from store.money import round_half_up
from store.settings import Settings

E4 = Decimal(10) ** 4


@dataclass(frozen=True)
class TaxRates:
    """The rates that apply to one client, in ten-thousandths of a percent."""

    level1_e4: int = 0
    level2_e4: int = 0


@dataclass(frozen=True)
class TaxLines:
    subtotal: int
    tax: int
    tax2: int
    total: int


class TaxTable:
    """All tax rules, loaded once per run (one query), looked up per client in memory.

    Rules and clients meet on ``store.keys.region_key``: a state written as a code or a
    name, in any case ("CA", "ca", "California"), is one region (PRODUCT.md §3: "Tax rules
    match a client's state/region case-insensitively, by code or by name"). Both sides
    are keyed the same way, so a value saved before it was normalised still matches.
    """

    def __init__(self, rules: Iterable[tuple[int, str, str, int]] | None = None) -> None:
        """``rules`` as (level, country, state, rate_e4); the ``tax_rule`` table by default."""
        rows: Any = rules
        if rows is None:
            rows = (
                TaxRule.select(TaxRule.level, TaxRule.country, TaxRule.state, TaxRule.rate_e4)
                .order_by(TaxRule.id)
                .tuples()
            )
        self.rules: dict[tuple[int, str, str], int] = {}
        for level, country, state, rate_e4 in rows:  # two spellings of one region: the first
            key = (level, country.strip().upper(), region_key(country, state))
            self.rules.setdefault(key, rate_e4)

    def _rate(self, level: int, country: str, state: str) -> int:
        country = country.strip().upper()
        region = region_key(country, state)
        for key in ((level, country, region), (level, country, ""), (level, "", "")):
            if key in self.rules:
                return self.rules[key]
        return 0

    def rates_for(self, country: str, state: str, *, exempt: bool, settings: Settings) -> TaxRates:
        if exempt or not settings.tax_enabled:
            return TaxRates()
        return TaxRates(self._rate(1, country, state), self._rate(2, country, state))


def compute(items: list[tuple[int, bool]], rates: TaxRates, settings: Settings) -> TaxLines:
    """Totals for items of (amount in minor units, taxed)."""
    gross = sum(amount for amount, _ in items)
    taxable = Decimal(sum(amount for amount, taxed in items if taxed))
    r1 = Decimal(rates.level1_e4) / E4 / 100
    r2 = Decimal(rates.level2_e4) / E4 / 100
    if not (r1 or r2) or not taxable:
        return TaxLines(gross, 0, 0, gross)
    if settings.tax_inclusive:
        factor = (1 + r1) * (1 + r2) if settings.tax_compound else 1 + r1 + r2
        base = taxable / factor
        level1 = round_half_up(base * r1, 0)
        level2 = round_half_up((base + level1 if settings.tax_compound else base) * r2, 0)
        return TaxLines(gross - int(level1) - int(level2), int(level1), int(level2), gross)
    level1 = round_half_up(taxable * r1, 0)
    level2 = round_half_up((taxable + level1 if settings.tax_compound else taxable) * r2, 0)
    return TaxLines(gross, int(level1), int(level2), gross + int(level1) + int(level2))
