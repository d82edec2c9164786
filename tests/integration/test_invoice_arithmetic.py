"""Invoice arithmetic is the cron's, property-tested (issue 13, deliverable 9).

Items, two tax levels, compound, inclusive, group discount and credit: an invoice the
cron creates, a manual invoice with the same items and the cron's invoice recomputed
after an edit have the same totals; the balance is total - credit - payments wherever
it is read. On SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rules.billing import invoices as inv_rules
from rules.billing import payments
from rules.billing.tax import TaxRates, compute, recompute_invoices
from store.models import ClientGroup, Invoice, InvoiceItem, TaxRule
from store.queries import balance_due, balances
from store.settings import Settings, load_settings, save_settings
from tests.integration.test_cron import DAY, client, run, service
from tests.integration.test_payments import BILLING

RATE = st.integers(0, 300_000)  # 0 to 30% in ten-thousandths
AMOUNT = st.integers(0, 5_000_000)
CASES = settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)


def _dec(minor: int) -> Decimal:
    return Decimal(minor).scaleb(-2)


@given(
    amounts=st.lists(AMOUNT, min_size=1, max_size=4),
    rate1=RATE,
    rate2=RATE,
    inclusive=st.booleans(),
    compound=st.booleans(),
    discount_bp=st.sampled_from([0, 500, 1250, 3333, 10_000]),
)
@CASES
def test_cron_manual_and_recomputed_invoices_have_the_same_totals(
    db: str,
    amounts: list[int],
    rate1: int,
    rate2: int,
    inclusive: bool,
    compound: bool,
    discount_bp: int,
) -> None:
    TaxRule.delete().execute()
    TaxRule.create(level=1, name="L1", rate_e4=rate1)
    TaxRule.create(level=2, name="L2", rate_e4=rate2)
    save_settings({"tax_inclusive": inclusive, "tax_compound": compound})
    group = ClientGroup.create(name=f"G{ClientGroup.select().count()}", discount_bp=discount_bp)
    owner = client(group=group)
    for amount in amounts:
        service(owner, DAY + dt.timedelta(days=14), amount=amount)
    run(only=("invoice",))
    made = Invoice.get(Invoice.client == owner.id)
    lines = [
        (i.description, _dec(i.amount), bool(i.taxed))
        for i in InvoiceItem.select().where(InvoiceItem.invoice == made.id).order_by(InvoiceItem.id)
    ]
    assert len(lines) >= len(amounts)  # the group discount, when any, is one more line
    manual = Invoice.get_by_id(
        inv_rules.create_manual_invoice(owner.id, DAY, DAY, lines, BILLING).invoice_id
    )
    cron_totals = (made.subtotal, made.tax, made.tax2, made.total)
    assert (manual.subtotal, manual.tax, manual.tax2, manual.total) == cron_totals
    assert (manual.tax_rate1_e4, manual.tax_rate2_e4) == (made.tax_rate1_e4, made.tax_rate2_e4)
    again = recompute_invoices([made.id], load_settings())[made.id]
    assert (again.subtotal, again.tax, again.tax2, again.total) == cron_totals
    # The pieces add up: exclusive tax is added, inclusive tax is inside the price.
    gross = sum(i.amount for i in InvoiceItem.select().where(InvoiceItem.invoice == made.id))
    if inclusive:
        assert made.total == gross and made.subtotal + made.tax + made.tax2 == gross
    else:
        assert made.subtotal == gross and made.total == gross + made.tax + made.tax2


@given(
    amount=st.integers(1, 10_000_000),
    rate1=RATE,
    rate2=RATE,
    compound=st.booleans(),
)
@settings(max_examples=300, deadline=None)
def test_compound_tax_is_charged_on_the_amount_plus_level_one(
    amount: int, rate1: int, rate2: int, compound: bool
) -> None:
    """Level 2 compound is charged on the amount plus level-1 tax (PRODUCT.md §3: 100 at
    10% then 20% compound is 22.00), simple on the amount alone; half-up rounding."""
    lines = compute([(amount, True)], TaxRates(rate1, rate2), Settings(tax_compound=compound))
    r1, r2 = Decimal(rate1) / 1_000_000, Decimal(rate2) / 1_000_000
    tax = (Decimal(amount) * r1).quantize(Decimal(1), rounding="ROUND_HALF_UP")
    base2 = Decimal(amount) + tax if compound else Decimal(amount)
    assert lines.tax == tax
    assert lines.tax2 == (base2 * r2).quantize(Decimal(1), rounding="ROUND_HALF_UP")
    assert lines.total == amount + lines.tax + lines.tax2


@given(
    amount=st.integers(1, 1_000_000),
    credit_part=st.floats(0, 1),
    paid_part=st.floats(0, 1),
    refund_part=st.floats(0, 1),
)
@CASES
def test_the_balance_is_total_less_credit_less_payments_everywhere(
    db: str, amount: int, credit_part: float, paid_part: float, refund_part: float
) -> None:
    owner = client()
    service(owner, DAY + dt.timedelta(days=14), amount=amount)
    run(only=("invoice",))
    bill = Invoice.get(Invoice.client == owner.id)
    credit = int(bill.total * credit_part)
    if credit:
        payments.add_credit(owner.id, _dec(credit), "credit", BILLING, DAY)
        payments.apply_credit(bill.id, _dec(credit), BILLING, date=DAY)
    paid = int((bill.total - credit) * paid_part)
    if paid:
        payments.record_payment(bill.id, _dec(paid), "mailin", DAY, "P", BILLING)
    refunded = int(paid * refund_part)
    if refunded:
        payments.refund(bill.id, _dec(refunded), BILLING, date=DAY)
    expected = bill.total - credit - paid + refunded
    assert Invoice.select(balance_due()).where(Invoice.id == bill.id).scalar() == expected
    assert balances([bill.id]) == {bill.id: expected}
    detail: Any = inv_rules.invoice_detail(bill.id, BILLING)
    assert detail.balance_minor == expected
    settled = credit + paid == bill.total
    status = Invoice.get_by_id(bill.id).status
    if not settled:
        assert status == "Unpaid"
    else:
        assert status == ("Refunded" if paid and refunded == paid else "Paid")
