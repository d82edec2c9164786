"""Tax: up to two levels of rules by country/state, the most specific winning.

Exclusive by default (tax is added); inclusive optional (prices include it);
level 2 optionally compound (charged on the amount plus level-1 tax):
100.00 at 10% then 20% compound gives tax 10.00 and tax2 22.00.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal
from typing import Any

from store.bulk import bulk_update
from store.keys import region_key
from store.models import Invoice, InvoiceItem, TaxRule
from store.money import round_half_up
from store.queries import among
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


#: Rate steps tried when reading a rate back from amounts, in ten-thousandths of a
#: percent: a whole percent first, then 0.1, 0.01, 0.001 and the rules' own 0.0001.
_RATE_STEPS = (10_000, 1_000, 100, 10, 1)


def rates_from_amounts(
    taxable: int, tax: int, tax2: int, in_force: TaxRates, settings: Settings
) -> TaxRates:
    """The rates an invoice was issued with, read back from its stored amounts.

    For invoices that arrive without their rates (an interchange document without
    ``tax_rate``/``tax_rate2``, PRODUCT.md §5, e.g. one written by another system).
    ``taxable`` is the sum of the invoice's taxed items and ``tax``/``tax2`` its stored
    level-1 and level-2 tax, all in minor units as stored (so ``taxable`` includes the
    tax when ``settings.tax_inclusive``); ``in_force`` are the rates the client's rules
    give today (``TaxTable.rates_for``). Returns rates in ten-thousandths of a percent.

    Each level gets a rate with which ``compute`` gives back its stored amount (the base
    is the level-1 amount added for a compound level 2, and the price less its tax when
    inclusive): the rate in force when it does, as it most likely is the rate used;
    otherwise the one with the fewest decimals that does (20 rather than 20.012 for 6.67
    on 33.33), nearest the exact ratio. Where the amounts say nothing (no taxed items, or
    a tax of the opposite sign to its base) the rate in force is kept. A level with taxed
    items and no tax gets 0: the invoice was issued untaxed (tax-exempt client, tax off).
    Never raises.
    """

    def read(base: Decimal) -> TaxRates:
        level2_base = base + tax if settings.tax_compound else base
        return TaxRates(
            _rate_for(base, tax, in_force.level1_e4),
            _rate_for(level2_base, tax2, in_force.level2_e4),
        )

    if not settings.tax_inclusive:
        return read(Decimal(taxable))
    # Inclusive: ``compute`` takes the tax out of the price with the rates themselves, so
    # start from the price less its rounded tax and settle on rates that explain their base.
    rates = read(Decimal(taxable - tax - tax2))
    for _ in range(3):
        again = read(Decimal(taxable) / _inclusive_factor(rates, settings))
        if again == rates:
            break
        rates = again

    def fits(r: TaxRates) -> bool:
        lines = compute([(taxable, True)], r, settings)
        return (lines.tax, lines.tax2) == (tax, tax2)

    if fits(rates):
        return rates
    # Rounding the tax out of the price can leave the last digit one or two off.
    steps = sorted(((d1, d2) for d1 in range(-2, 3) for d2 in range(-2, 3)), key=_distance)
    near = (TaxRates(rates.level1_e4 + d1, rates.level2_e4 + d2) for d1, d2 in steps)
    return next((r for r in near if r.level1_e4 >= 0 <= r.level2_e4 and fits(r)), rates)


def _distance(step: tuple[int, int]) -> int:
    return abs(step[0]) + abs(step[1])


def _inclusive_factor(rates: TaxRates, settings: Settings) -> Decimal:
    """What a price including tax is divided by to find its base (as in ``compute``)."""
    r1 = Decimal(rates.level1_e4) / E4 / 100
    r2 = Decimal(rates.level2_e4) / E4 / 100
    return (1 + r1) * (1 + r2) if settings.tax_compound else 1 + r1 + r2


def _rate_for(base: Decimal, amount: int, in_force_e4: int) -> int:
    """A rate (ten-thousandths of a percent) that turns ``base`` into ``amount`` (see above)."""
    if base == 0 or (amount and (amount < 0) != (base < 0)):
        return in_force_e4
    base_, amount_ = abs(base), Decimal(abs(amount))
    # round_half_up(base * rate) == amount exactly for rates in [low, high), in e4 units.
    scale = 100 * E4
    low = max(Decimal(0), (amount_ - Decimal("0.5")) / base_ * scale)
    high = (amount_ + Decimal("0.5")) / base_ * scale
    if low <= in_force_e4 < high:
        return in_force_e4
    exact = amount_ / base_ * scale
    for step in _RATE_STEPS:
        first = (low / step).to_integral_value(ROUND_CEILING) * step
        last = (high / step).to_integral_value(ROUND_CEILING) * step - step
        if first <= last:
            nearest = round_half_up(exact / step, 0) * step
            return int(min(max(nearest, first), last))
    return int(round_half_up(exact, 0))


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


def recompute_invoices(invoice_ids: Sequence[int], settings: Settings) -> dict[int, TaxLines]:
    """Recompute the subtotal, tax, tax2 and total of invoices from their items and the
    tax rates each was issued with (``tax_rate1_e4``/``tax_rate2_e4``), and store them.

    The one place an existing invoice's totals change (a late fee added, an import, a
    manual edit): adding a line never loses tax already owed (PRODUCT.md §3). Returns
    the new totals by invoice id, in minor units. A fixed number of queries: one for
    the items, one for the rates and one update per 500 invoices (SQLite) or 5,000 (PostgreSQL).
    """
    if not invoice_ids:
        return {}
    ids = list(invoice_ids)
    items: dict[int, list[tuple[int, bool]]] = defaultdict(list)
    rows: Any = (
        InvoiceItem.select(InvoiceItem.invoice, InvoiceItem.amount, InvoiceItem.taxed)
        .where(among(InvoiceItem.invoice, ids))
        .tuples()
    )
    for invoice_id, amount, taxed in rows:
        items[invoice_id].append((amount, bool(taxed)))
    rates: Any = (
        Invoice.select(Invoice.id, Invoice.tax_rate1_e4, Invoice.tax_rate2_e4)
        .where(among(Invoice.id, ids))
        .tuples()
    )
    totals = {
        invoice_id: compute(items[invoice_id], TaxRates(rate1, rate2), settings)
        for invoice_id, rate1, rate2 in rates
    }
    bulk_update(
        Invoice,
        ("subtotal", "tax", "tax2", "total"),
        [(i, t.subtotal, t.tax, t.tax2, t.total) for i, t in totals.items()],
    )
    return totals
