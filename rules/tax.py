"""Tax: up to two levels of rules by country/state, the most specific winning.

Exclusive by default (tax is added); inclusive optional (prices include it);
level 2 optionally compound (charged on the amount plus level-1 tax):
100.00 at 10% then 20% compound gives tax 10.00 and tax2 22.00.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from store.bulk import bulk_update_column
from store.models import Invoice, InvoiceItem, TaxRule
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
    """All tax rules, loaded once per run (one query), looked up per client in memory."""

    def __init__(self) -> None:
        self.rules: dict[tuple[int, str, str], int] = {
            (r.level, r.country, r.state): r.rate_e4 for r in TaxRule.select()
        }

    def _rate(self, level: int, country: str, state: str) -> int:
        for key in ((level, country, state), (level, country, ""), (level, "", "")):
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


def recompute_invoices(invoice_ids: Sequence[int], settings: Settings) -> dict[int, TaxLines]:
    """Recompute the subtotal, tax, tax2 and total of invoices from their items and the
    tax rates each was issued with (``tax_rate1_e4``/``tax_rate2_e4``), and store them.

    The one place an existing invoice's totals change (a late fee added, an import, a
    manual edit): adding a line never loses tax already owed (PRODUCT.md §3). Returns
    the new totals by invoice id, in minor units. A fixed number of queries: one for
    the items, one for the rates and one update per column and 500 invoices.
    """
    if not invoice_ids:
        return {}
    ids = list(invoice_ids)
    items: dict[int, list[tuple[int, bool]]] = defaultdict(list)
    rows: Any = (
        InvoiceItem.select(InvoiceItem.invoice, InvoiceItem.amount, InvoiceItem.taxed)
        .where(InvoiceItem.invoice.in_(ids))
        .tuples()
    )
    for invoice_id, amount, taxed in rows:
        items[invoice_id].append((amount, bool(taxed)))
    rates: Any = (
        Invoice.select(Invoice.id, Invoice.tax_rate1_e4, Invoice.tax_rate2_e4)
        .where(Invoice.id.in_(ids))
        .tuples()
    )
    totals = {
        invoice_id: compute(items[invoice_id], TaxRates(rate1, rate2), settings)
        for invoice_id, rate1, rate2 in rates
    }
    for name in ("subtotal", "tax", "tax2", "total"):
        bulk_update_column(
            Invoice, name, [(invoice_id, getattr(t, name)) for invoice_id, t in totals.items()]
        )
    return totals
