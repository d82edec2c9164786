"""Staff payments, refunds, credit and manual invoices (issue 13), on SQLite and
PostgreSQL: one test per kind of fault."""

from __future__ import annotations

import datetime as dt
import threading
from decimal import Decimal
from typing import Any

import pytest
from playhouse.test_utils import count_queries

from rules.audit import Actor
from rules.billing import invoices as inv_rules
from rules.billing import payments
from rules.errors import RuleError, ValidationError
from rules.permissions import PermissionDenied
from store.db import database
from store.models import (
    AuditLog,
    Client,
    Credit,
    Email,
    Invoice,
    InvoiceItem,
    Service,
    StoredCard,
    Transaction,
)
from store.models.enums import ActorType, Source
from store.queries import balance_due
from tests.integration.test_cron import DAY, client, run, service

BILLING = Actor(ActorType.STAFF, "bea", Source.TUI, id=7, role="billing")
SUPPORT = Actor(ActorType.STAFF, "sam", Source.TUI, id=8, role="support")
PAID_ON = DAY + dt.timedelta(days=2)


def _cron_invoice(amount: int = 10_000, method: str = "banktransfer") -> tuple[Invoice, Service]:
    """A service due in 14 days, invoiced by the real cron."""
    owner = client(payment_method=method)
    hosting = service(owner, DAY + dt.timedelta(days=14), amount=amount, method=method)
    run(only=("invoice",))
    return Invoice.get(Invoice.client == owner.id), hosting


def _balance(invoice_id: int) -> int:
    return int(Invoice.select(balance_due()).where(Invoice.id == invoice_id).scalar())


def _confirmations(invoice_id: int) -> int:
    return (
        Email.select()
        .where(
            (Email.template == "Invoice Payment Confirmation")
            & (Email.unique_key == f"paid:{invoice_id}")
        )
        .count()
    )


# ------------------------------------------------------------- payments renew what they pay for


def test_a_payment_that_clears_the_balance_marks_paid_renews_once_and_confirms(db: str) -> None:
    bill, hosting = _cron_invoice()
    due = hosting.next_due_date
    first = payments.record_payment(
        bill.id, Decimal("40.00"), "banktransfer", PAID_ON, "TR-1", BILLING, bill.version
    )
    assert (first.paid, first.state.status, first.state.balance) == (False, "Unpaid", 6_000)
    assert Service.get_by_id(hosting.id).next_due_date == due  # not paid yet: no renewal
    second = payments.record_payment(
        bill.id, Decimal("60.00"), "banktransfer", PAID_ON, "TR-2", BILLING, first.state.version
    )
    assert second.paid and second.state.status == "Paid" and second.state.balance == 0
    paid = Invoice.get_by_id(bill.id)
    assert paid.date_paid == PAID_ON
    assert Service.get_by_id(hosting.id).next_due_date == dt.date(2026, 4, 24)
    assert _confirmations(bill.id) == 1
    # Marked unpaid, part refunded and paid again: the service does not move twice.
    payments.mark_unpaid(bill.id, BILLING, second.state.version)
    payments.refund(bill.id, Decimal("10.00"), BILLING, date=PAID_ON)
    third = payments.record_payment(bill.id, Decimal("10.00"), "mailin", PAID_ON, "M", BILLING)
    assert third.paid
    assert Service.get_by_id(hosting.id).next_due_date == dt.date(2026, 4, 24)
    assert _confirmations(bill.id) == 1  # its unique key: one confirmation per invoice


def test_a_payment_recorded_twice_with_the_same_reference_pays_once(db: str) -> None:
    bill, hosting = _cron_invoice()
    args = (bill.id, Decimal("100.00"), "banktransfer", PAID_ON, "BANK-42", BILLING)
    first = payments.record_payment(*args)
    retry = payments.record_payment(*args)  # a retry of the command, no version carried
    assert first.paid and not first.already_recorded
    assert retry.already_recorded and not retry.paid and retry.transaction == first.transaction
    assert Transaction.select().where(Transaction.invoice == bill.id).count() == 1
    assert _confirmations(bill.id) == 1
    assert Service.get_by_id(hosting.id).next_due_date == dt.date(2026, 4, 24)


def test_the_same_form_submitted_twice_pays_once(db: str) -> None:
    bill, _ = _cron_invoice()
    args = (bill.id, Decimal("30.00"), "mailin", PAID_ON, "", BILLING, bill.version)
    first = payments.record_payment(*args)
    again = payments.record_payment(*args)  # double Enter: same version read
    assert again.already_recorded and again.transaction == first.transaction
    assert _balance(bill.id) == 7_000


def test_a_stale_version_is_refused_with_the_current_balance(db: str) -> None:
    bill, _ = _cron_invoice()
    payments.record_payment(bill.id, Decimal("30.00"), "mailin", PAID_ON, "A", BILLING, 1)
    with pytest.raises(payments.InvoiceChanged, match=r"balance 70\.00 USD"):
        payments.record_payment(bill.id, Decimal("30.00"), "mailin", PAID_ON, "B", BILLING, 1)
    assert _balance(bill.id) == 7_000


@pytest.mark.parametrize(
    ("amount", "error"),
    [
        ("0", ValidationError),
        ("-5", ValidationError),
        ("1.001", ValidationError),
        ("100.01", payments.InvoiceRefused),
    ],
)
def test_bad_payment_amounts_change_nothing(db: str, amount: str, error: type) -> None:
    bill, _ = _cron_invoice()
    with pytest.raises(error) as raised:
        payments.record_payment(bill.id, Decimal(amount), "banktransfer", PAID_ON, "", BILLING)
    if error is payments.InvoiceRefused:
        assert "add the rest to the client's credit" in str(raised.value)
    assert Transaction.select().count() == 0 and _balance(bill.id) == 10_000
    assert not AuditLog.select().where(AuditLog.entity == "invoice").exists()


def test_payments_need_the_billing_right_and_a_payable_invoice(db: str) -> None:
    bill, _ = _cron_invoice()
    with pytest.raises(PermissionDenied):
        payments.record_payment(bill.id, Decimal("1"), "banktransfer", PAID_ON, "", SUPPORT)
    payments.cancel(bill.id, BILLING)
    with pytest.raises(payments.InvoiceRefused, match="Cancelled"):
        payments.record_payment(bill.id, Decimal("1"), "banktransfer", PAID_ON, "", BILLING)
    with pytest.raises(ValidationError, match="gateway"):
        payments.record_payment(bill.id, Decimal("1"), "cash", PAID_ON, "", BILLING)


def _race(work: Any, count: int = 2) -> list[Any]:
    """Run ``work`` in ``count`` threads at once (each its own connection); results."""
    barrier = threading.Barrier(count)
    results: list[Any] = [None] * count

    def one(n: int) -> None:
        barrier.wait()
        try:
            results[n] = work(n)
        except Exception as exc:  # noqa: BLE001 (the refusal is the result)
            results[n] = exc
        finally:
            database.close()

    threads = [threading.Thread(target=one, args=(n,)) for n in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    return results


@pytest.mark.parametrize("same_reference", [True, False])
def test_two_staff_paying_one_invoice_at_once_pay_it_once(db: str, same_reference: bool) -> None:
    """Two threads on separate connections record the full balance at once: one pays;
    the other is "already recorded" (same reference) or refused (it read the invoice
    before the first paid it). One transaction, one renewal, one confirmation."""
    bill, hosting = _cron_invoice()
    version = bill.version

    def pay(n: int) -> Any:
        reference = "SAME" if same_reference else f"REF-{n}"
        return payments.record_payment(
            bill.id, Decimal("100.00"), "banktransfer", PAID_ON, reference, BILLING, version
        )

    results = _race(pay)
    won = [r for r in results if isinstance(r, payments.PaymentResult) and r.paid]
    assert len(won) == 1, results
    for other in results:
        if other is won[0]:
            continue
        if same_reference:
            assert isinstance(other, payments.PaymentResult) and other.already_recorded, other
        else:
            assert isinstance(other, RuleError), other
    assert Transaction.select().where(Transaction.invoice == bill.id).count() == 1
    assert Service.get_by_id(hosting.id).next_due_date == dt.date(2026, 4, 24)
    assert _confirmations(bill.id) == 1


def test_capture_and_a_staff_payment_at_once_pay_once(db: str) -> None:
    """The card capture and the staff payment share ``mark_paid``: whichever comes
    second finds the invoice paid (capture skips it, or the staff payment is refused)."""
    bill, hosting = _cron_invoice(method="sandboxcard")
    StoredCard.create(
        client=bill.client_id, gateway="sandboxcard", token="ok_1", last4="4242", expiry="2035-12"
    )
    payments.record_payment(
        bill.id, Decimal("100.00"), "banktransfer", PAID_ON, "BANK", BILLING, bill.version
    )
    run(day=DAY + dt.timedelta(days=14), only=("capture",))
    assert Transaction.select().where(Transaction.invoice == bill.id).count() == 1
    assert Service.get_by_id(hosting.id).next_due_date == dt.date(2026, 4, 24)
    assert _confirmations(bill.id) == 1


def test_capture_charges_the_balance_not_the_total(db: str) -> None:
    bill, hosting = _cron_invoice(method="sandboxcard")
    StoredCard.create(
        client=bill.client_id, gateway="sandboxcard", token="ok_1", last4="4242", expiry="2035-12"
    )
    payments.add_credit(bill.client_id, Decimal("25.00"), "goodwill", BILLING, DAY)
    payments.apply_credit(bill.id, Decimal("25.00"), BILLING, date=DAY)
    payments.record_payment(bill.id, Decimal("5.00"), "mailin", PAID_ON, "M", BILLING)
    run(day=DAY + dt.timedelta(days=14), only=("capture",))
    card = Transaction.get(
        (Transaction.invoice == bill.id) & (Transaction.gateway == "sandboxcard")
    )
    assert card.amount_in == 7_000
    assert Invoice.get_by_id(bill.id).status == "Paid"
    assert Service.get_by_id(hosting.id).next_due_date == dt.date(2026, 4, 24)


def test_a_zero_invoice_is_paid_at_once_through_mark_paid(db: str) -> None:
    bill, hosting = _cron_invoice(amount=0)
    assert (bill.status, bill.date_paid, bill.version) == ("Paid", DAY, 2)
    assert Service.get_by_id(hosting.id).next_due_date == dt.date(2026, 4, 24)


# ------------------------------------------------------------------------- refunds, cancel, unpaid


def test_a_full_refund_is_a_negative_transaction_and_does_not_move_due_dates_back(
    db: str,
) -> None:
    bill, hosting = _cron_invoice()
    payments.record_payment(bill.id, Decimal("100"), "banktransfer", PAID_ON, "T", BILLING)
    with pytest.raises(payments.InvoiceRefused):
        payments.refund(bill.id, Decimal("100.01"), BILLING)
    partial = payments.refund(bill.id, Decimal("10"), BILLING, date=PAID_ON)
    assert (partial.status, partial.balance) == ("Paid", 1_000)
    full = payments.refund(bill.id, Decimal("90"), BILLING, "R-2", date=PAID_ON)
    assert (full.status, full.balance) == ("Refunded", 10_000)
    outs = [t.amount_out for t in Transaction.select().where(Transaction.amount_out > 0)]
    assert outs == [1_000, 9_000]
    assert Service.get_by_id(hosting.id).next_due_date == dt.date(2026, 4, 24)
    audit = AuditLog.get((AuditLog.action == "refund") & (AuditLog.new_value.contains("Refunded")))
    assert "not moved back" in audit.new_value and audit.actor_name == "bea"


def test_cancel_and_mark_unpaid_follow_the_statuses(db: str) -> None:
    bill, _ = _cron_invoice()
    payments.record_payment(bill.id, Decimal("1"), "banktransfer", PAID_ON, "T", BILLING)
    with pytest.raises(payments.InvoiceRefused, match="refund"):
        payments.cancel(bill.id, BILLING)
    other, _ = _cron_invoice()
    state = payments.cancel(other.id, BILLING)
    assert state.status == "Cancelled"
    with pytest.raises(payments.InvoiceRefused):
        payments.cancel(other.id, BILLING)
    assert payments.mark_unpaid(other.id, BILLING, state.version).status == "Unpaid"
    with pytest.raises(payments.InvoiceRefused):
        payments.mark_unpaid(other.id, BILLING)


# ----------------------------------------------------------------------------------------- credit


def test_credit_is_added_then_applied_up_to_the_balance_and_can_pay_in_full(db: str) -> None:
    bill, hosting = _cron_invoice()
    owner = bill.client_id
    assert payments.add_credit(owner, Decimal("150.00"), "overpayment", BILLING, DAY) == 15_000
    with pytest.raises(payments.InvoiceRefused):
        payments.apply_credit(bill.id, Decimal("100.01"), BILLING)
    result = payments.apply_credit(bill.id, Decimal("100.00"), BILLING, bill.version, DAY)
    assert result.paid and result.state.status == "Paid" and result.state.balance == 0
    assert Client.get_by_id(owner).credit == 5_000
    assert Invoice.get_by_id(bill.id).credit == 10_000
    assert [c.amount for c in Credit.select().order_by(Credit.id)] == [15_000, -10_000]
    assert Service.get_by_id(hosting.id).next_due_date == dt.date(2026, 4, 24)
    assert _confirmations(bill.id) == 1
    other, _ = _cron_invoice()
    Invoice.update(client=owner).where(Invoice.id == other.id).execute()
    with pytest.raises(payments.InvoiceRefused, match="of credit"):
        payments.apply_credit(other.id, Decimal("60.00"), BILLING)
    assert Client.get_by_id(owner).credit == 5_000


def test_credit_lowers_the_balance_everywhere(db: str) -> None:
    """Reminders, notices, the client portal and the emails all read one balance."""
    from rules.mail.outbox import Notice, queue
    from store.db import writer

    bill, _ = _cron_invoice()
    payments.add_credit(bill.client_id, Decimal("30"), "goodwill", BILLING, DAY)
    payments.apply_credit(bill.id, Decimal("30"), BILLING, date=DAY)
    payments.record_payment(bill.id, Decimal("20"), "mailin", PAID_ON, "M", BILLING)
    for set_based in (True, False):
        Email.delete().execute()
        with writer():
            queue(
                "Invoice Payment Reminder", [Notice(bill.client_id, bill.id)], set_based=set_based
            )
        assert "50.00 USD" in Email.get().body_text, set_based


def test_add_credit_refuses_bad_input(db: str) -> None:
    owner = client()
    hostile = ("5", "good\u202ewill"), ("5", "a\x00b")  # bidi override, control character
    for amount, text in (("0", "x"), ("-1", "x"), ("1.234", "x"), ("5", "  "), *hostile):
        with pytest.raises(ValidationError):
            payments.add_credit(owner.id, Decimal(amount), text, BILLING)
    assert Client.get_by_id(owner.id).credit == 0 and not Credit.select().exists()


# ------------------------------------------------------------------------------ manual invoices


def test_a_manual_invoice_is_numbered_taxed_and_totalled_like_the_cron(db: str) -> None:
    from store.models import TaxRule

    TaxRule.create(level=1, name="VAT", rate_e4=100_000)
    TaxRule.create(level=2, name="Extra", rate_e4=50_000)
    owner = client()
    state = inv_rules.create_manual_invoice(
        owner.id,
        DAY,
        DAY + dt.timedelta(days=7),
        [("Setup", Decimal("50.00"), True), ("Cable", Decimal("5.55"), False)],
        BILLING,
    )
    made = Invoice.get_by_id(state.invoice_id)
    assert (made.subtotal, made.tax, made.tax2, made.total) == (5_555, 500, 250, 6_305)
    assert (made.tax_rate1_e4, made.tax_rate2_e4) == (100_000, 50_000)
    assert Email.get().template == "Invoice Created"
    detail = inv_rules.invoice_detail(made.id, BILLING)
    assert detail.tax_lines == [("Tax 10%", "5.00 USD"), ("Tax 2 5%", "2.50 USD")]
    after = inv_rules.add_item(made.id, "Extra disk", Decimal("10.00"), True, BILLING, 1)
    made = Invoice.get_by_id(made.id)
    assert (made.subtotal, made.tax, made.tax2, made.total, made.version) == (
        6_555,
        600,
        300,
        7_455,
        2,
    )
    cable = InvoiceItem.get(InvoiceItem.description == "Cable")
    inv_rules.remove_item(made.id, cable.id, BILLING, after.version)
    assert Invoice.get_by_id(made.id).total == 6_900
    with pytest.raises(payments.InvoiceChanged):
        inv_rules.add_item(made.id, "Late", Decimal("1"), False, BILLING, after.version)
    actions = [a.action for a in AuditLog.select().where(AuditLog.entity == "invoice")]
    assert actions == ["create", "add_item", "remove_item"]


def test_manual_invoice_input_is_checked_and_nothing_is_written(db: str) -> None:
    owner = client()
    bad = [
        ([], "items"),
        ([("", Decimal("1"), False)], "items[0].description"),
        ([("Ok", Decimal("1.001"), False)], "items[0].amount"),
        ([("Setup\u202efee", Decimal("1"), False)], "items[0].description"),
    ]
    for items, field in bad:
        with pytest.raises(ValidationError) as raised:
            inv_rules.create_manual_invoice(owner.id, DAY, DAY, items, BILLING)
        assert field in raised.value.errors
    with pytest.raises(ValidationError, match="due_date"):
        inv_rules.create_manual_invoice(
            owner.id, DAY, DAY - dt.timedelta(days=1), [("X", Decimal("1"), False)], BILLING
        )
    assert not Invoice.select().exists()


def test_only_unpaid_invoices_are_edited_and_never_below_what_was_paid(db: str) -> None:
    bill, _ = _cron_invoice()
    extra = inv_rules.add_item(bill.id, "Discount", Decimal("-20.00"), False, BILLING)
    payments.record_payment(bill.id, Decimal("70"), "mailin", PAID_ON, "M", BILLING)
    with pytest.raises(payments.InvoiceRefused, match="less than what was already paid"):
        inv_rules.add_item(bill.id, "More off", Decimal("-20.00"), False, BILLING)
    item = InvoiceItem.get(InvoiceItem.description == "Discount")
    done = inv_rules.add_item(bill.id, "More off", Decimal("-10.00"), False, BILLING)
    assert done.status == "Paid"  # the edit left nothing owing
    paid = AuditLog.get((AuditLog.entity == "invoice") & (AuditLog.action == "paid"))
    assert paid.field == "status" and paid.old_value == "Unpaid"  # audited like a payment
    with pytest.raises(payments.InvoiceRefused, match="Unpaid"):
        inv_rules.remove_item(bill.id, item.id, BILLING)
    assert extra.balance == 8_000


def test_the_invoice_list_is_one_query(db: str) -> None:
    for _ in range(3):
        _cron_invoice()
    with count_queries() as counter:
        rows = inv_rules.list_invoices(BILLING)
    assert len(rows) == 3 and counter.count == 1
    assert rows[0].balance == "100.00 USD"


def test_credit_keeps_its_value_when_the_currency_changes_decimals(db: str) -> None:
    """Credit amounts are money columns like the others (PRODUCT.md §1 currency rule)."""
    from rules.clients.currencies import rescale_client_amounts
    from store.db import writer

    bill, _ = _cron_invoice()
    payments.add_credit(bill.client_id, Decimal("40"), "goodwill", BILLING, DAY)
    payments.apply_credit(bill.id, Decimal("15"), BILLING, date=DAY)
    with writer():
        rescale_client_amounts(bill.client_id, 2, 3)
    assert Client.get_by_id(bill.client_id).credit == 25_000
    assert Invoice.get_by_id(bill.id).credit == 15_000
    assert sorted(c.amount for c in Credit.select()) == [-15_000, 40_000]


def test_mark_paid_costs_the_same_queries_for_one_invoice_or_many(db: str) -> None:
    """Set-based (ARCHITECTURE.md): marking five invoices paid costs what one costs."""
    from playhouse.test_utils import count_queries

    from rules.billing.invoicing import mark_paid
    from store.db import writer

    counts = []
    for size in (1, 5):
        bills = [_cron_invoice()[0] for _ in range(size)]
        for bill in bills:
            Transaction.create(
                client=bill.client_id, invoice=bill.id, gateway="mailin", amount_in=bill.total
            )
        with writer(), count_queries() as counter:
            assert len(mark_paid([b.id for b in bills], PAID_ON)) == size
        counts.append(counter.count)
    assert counts[0] == counts[1]


def test_two_staff_on_one_screen_version_with_different_amounts_are_not_one_payment(
    db: str,
) -> None:
    """Same version read, no reference, different amounts: the second is refused as
    changed (not reported "already recorded")."""
    bill, _ = _cron_invoice()
    payments.record_payment(bill.id, Decimal("10"), "mailin", PAID_ON, "", BILLING, bill.version)
    with pytest.raises(payments.InvoiceChanged):
        payments.record_payment(
            bill.id, Decimal("20"), "mailin", PAID_ON, "", BILLING, bill.version
        )
    assert _balance(bill.id) == 9_000


def test_a_reference_with_control_characters_is_refused_and_nothing_recorded(db: str) -> None:
    """The gateway reference is shown on screens, PDFs and emails: the same text checks
    as every other field (``rules.clients.validation.clean_line``)."""
    bill, _ = _cron_invoice()
    for reference in ("BT\x1b[31m-1", "BT\u202e-1"):
        with pytest.raises(ValidationError, match="transaction_id"):
            payments.record_payment(
                bill.id, Decimal("1.00"), "banktransfer", DAY, reference, BILLING
            )
    assert not Transaction.select().exists()
    payments.record_payment(bill.id, Decimal("1.00"), "banktransfer", DAY, " BT\n 1 ", BILLING)
    assert Transaction.get().transaction_id == "BT 1"
