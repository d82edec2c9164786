"""Reading an invoice's tax rates back from its stored amounts (rules.billing.tax)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules.billing.tax import TaxRates, compute, rates_from_amounts
from store.settings import Settings

EXCLUSIVE = Settings()
COMPOUND = Settings(tax_compound=True)
INCLUSIVE = Settings(tax_inclusive=True)
NONE = TaxRates()


@pytest.mark.parametrize(
    "taxable,tax,tax2,in_force,settings,expected",
    [
        # Case 05: 100.00 taxed, 10.00 tax, no rule needed to see 10%.
        (10_000, 1_000, 0, NONE, EXCLUSIVE, TaxRates(100_000, 0)),
        (10_000, 725, 0, NONE, EXCLUSIVE, TaxRates(72_500, 0)),
        # 33.33 at 20% is 6.666 -> 6.67: 20%, not the ratio 20.012%.
        (3_333, 667, 0, NONE, EXCLUSIVE, TaxRates(200_000, 0)),
        # Level 2 compound: 100 at 10% then 20% on 110 = 22.00.
        (10_000, 1_000, 2_200, NONE, COMPOUND, TaxRates(100_000, 200_000)),
        # The same amounts read without compounding: 22% on 100.
        (10_000, 1_000, 2_200, NONE, EXCLUSIVE, TaxRates(100_000, 220_000)),
        # Inclusive: 121.00 gross holding 10% + 11% on a 100.00 base.
        (12_100, 1_000, 1_100, NONE, INCLUSIVE, TaxRates(100_000, 110_000)),
        # Inclusive compound: 132.00 gross = 100 + 10.00 + 22.00.
        (
            13_200,
            1_000,
            2_200,
            NONE,
            Settings(tax_inclusive=True, tax_compound=True),
            TaxRates(100_000, 200_000),
        ),
        # Three-decimal rates survive when the amounts are precise enough.
        (1_000_000, 71_250, 0, NONE, EXCLUSIVE, TaxRates(71_250, 0)),
        # Taxed items and no tax: issued untaxed, whatever the rules say now.
        (10_000, 0, 0, TaxRates(100_000, 50_000), EXCLUSIVE, NONE),
        # Nothing taxed: the amounts say nothing, the rules in force decide.
        (0, 0, 0, TaxRates(72_500, 10_000), EXCLUSIVE, TaxRates(72_500, 10_000)),
        # Ambiguous small amounts: the rule in force fits, so it wins (1.00 at 7.25% = 0.07).
        (100, 7, 0, TaxRates(72_500, 0), EXCLUSIVE, TaxRates(72_500, 0)),
        # ... and without a fitting rule the simplest rate that fits: 7%.
        (100, 7, 0, TaxRates(100_000, 0), EXCLUSIVE, TaxRates(70_000, 0)),
        # A credit (negative amounts) reads like its positive twin.
        (-10_000, -1_000, 0, NONE, EXCLUSIVE, TaxRates(100_000, 0)),
        # Tax of the opposite sign to its base cannot come from any rate.
        (10_000, -1_000, 0, TaxRates(50_000, 0), EXCLUSIVE, TaxRates(50_000, 0)),
    ],
)
def test_rates_read_back_from_amounts(
    taxable: int, tax: int, tax2: int, in_force: TaxRates, settings: Settings, expected: TaxRates
) -> None:
    assert rates_from_amounts(taxable, tax, tax2, in_force, settings) == expected


@given(
    st.sampled_from(
        [EXCLUSIVE, COMPOUND, INCLUSIVE, Settings(tax_inclusive=True, tax_compound=True)]
    ),
    st.integers(min_value=-(10**11), max_value=10**11),
    st.integers(min_value=0, max_value=1_000_000),
    st.integers(min_value=0, max_value=1_000_000),
    st.tuples(st.integers(0, 300_000), st.integers(0, 300_000)),
)
def test_read_back_rates_give_back_the_stored_tax(
    settings: Settings, amount: int, rate1: int, rate2: int, in_force: tuple[int, int]
) -> None:
    """Whatever the rules in force, recomputing with the rates read back gives the tax the
    invoice was issued with (in minor units, every tax mode)."""
    items = [(amount, True), (500, False)]
    issued = compute(items, TaxRates(rate1, rate2), settings)
    rates = rates_from_amounts(amount, issued.tax, issued.tax2, TaxRates(*in_force), settings)
    again = compute(items, rates, settings)
    assert (again.tax, again.tax2) == (issued.tax, issued.tax2)
