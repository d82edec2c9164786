"""The Invoices tab and the invoice screen, driven from the keyboard (issue 13): record a
payment (validation, Paid, renewal), refund, add/remove an item, a manual invoice, add
and apply credit, all at 80x24; support staff may look but not change."""

from __future__ import annotations

import datetime as dt
from typing import Any

from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Static

from rules.audit import SYSTEM_CLI
from store.models import AuditLog, Client, Email, Invoice, Product, Service, Transaction
from tests.conftest import STAFF_PASSWORD
from tests.tui.test_staff_app import login, make_clients, open_first_client, settle
from tui.app import StaffApp
from tui.dialogs.form import FormDialog, widget_id
from tui.screens.client_tabs.invoices import InvoiceScreen, InvoicesTab

SMALL = (80, 24)
DUE = dt.date(2026, 3, 24)


def _client_with_invoice() -> tuple[Client, Invoice, Service]:
    (owner,) = make_clients(1)
    hosting = Service.create(
        client=owner,
        product=Product.create(name="VPS"),
        status="Active",
        billing_cycle="Monthly",
        amount=2_500,
        next_due_date=DUE,
        anchor_day=24,
        payment_method="banktransfer",
    )
    bill = Invoice.create(
        client=owner,
        number="INV-1",
        date=DUE - dt.timedelta(days=14),
        due_date=DUE,
        payment_method="banktransfer",
        subtotal=2_500,
        total=2_500,
    )
    from store.models import InvoiceItem

    InvoiceItem.create(
        invoice=bill,
        type="Hosting",
        description="Hosting: VPS",
        amount=2_500,
        related_type="service",
        related_id=hosting.id,
        related_due_date=DUE,
    )
    return owner, bill, hosting


async def _invoices_tab(pilot: Pilot[None]) -> InvoicesTab:
    editor = await open_first_client(pilot)
    await settle(pilot)
    editor.query_one("#tabs").active = "invoices"  # type: ignore[attr-defined]
    await settle(pilot)
    tab = editor.query_one(InvoicesTab)
    tab.query_one("#invoices-table", DataTable).focus()
    await settle(pilot)
    return tab


async def _open_invoice(pilot: Pilot[None], tab: InvoicesTab) -> InvoiceScreen:
    tab.query_one("#invoices-table", DataTable).focus()
    await pilot.press("enter")
    await settle(pilot)
    screen = pilot.app.screen
    assert isinstance(screen, InvoiceScreen)
    return screen


async def _fill(pilot: Pilot[None], values: dict[str, str]) -> FormDialog:
    dialog = pilot.app.screen
    assert isinstance(dialog, FormDialog)
    for name, value in values.items():
        dialog.query_one(f"#{widget_id(name)}", Input).value = value
    await pilot.press("ctrl+s")
    await settle(pilot)
    return dialog


def _text(screen: Any, selector: str) -> str:
    return str(screen.query_one(selector, Static).render())


async def test_recording_a_payment_checks_the_amount_then_pays_and_renews(admin: str) -> None:
    owner, bill, hosting = _client_with_invoice()
    app = StaffApp()
    async with app.run_test(size=SMALL) as pilot:
        await login(pilot)
        tab = await _invoices_tab(pilot)
        assert "25.00 USD" in [str(c) for c in tab.query_one(DataTable).get_row_at(0)]
        screen = await _open_invoice(pilot, tab)
        await pilot.press("p")
        await settle(pilot)
        dialog = await _fill(pilot, {"amount": "25.001"})
        assert app.screen is dialog  # refused: the dialog stays, nothing recorded
        assert "decimal place" in _text(dialog, "#ff-amount-error")
        await _fill(pilot, {"amount": "30"})
        assert "add the rest" in _text(dialog, "#form-error")
        await _fill(pilot, {"amount": "25.00", "transaction_id": "BT-1"})
        assert app.screen is screen
        await settle(pilot)
        assert "Paid" in _text(screen, "#invoice-head")
        assert "Balance 0.00 USD" in _text(screen, "#invoice-totals")
    assert Transaction.select().count() == 1
    assert Service.get_by_id(hosting.id).next_due_date == dt.date(2026, 4, 24)
    assert Email.select().where(Email.template == "Invoice Payment Confirmation").count() == 1
    assert AuditLog.select().where(AuditLog.action == "payment").get().actor_name == "admin"


async def test_a_stale_invoice_screen_cannot_pay_twice(admin: str) -> None:
    """Someone else paid while the screen was open: the second payment is refused."""
    from decimal import Decimal

    from rules.billing.payments import record_payment

    owner, bill, _ = _client_with_invoice()
    app = StaffApp()
    async with app.run_test(size=SMALL) as pilot:
        await login(pilot)
        tab = await _invoices_tab(pilot)
        screen = await _open_invoice(pilot, tab)
        record_payment(bill.id, Decimal("25"), "mailin", DUE, "", SYSTEM_CLI)
        await pilot.press("p")
        await settle(pilot)
        dialog = await _fill(pilot, {"amount": "25.00"})
        assert "changed since it was read" in _text(dialog, "#form-error")
        assert app.screen is dialog
        assert screen.detail is not None
    assert Transaction.select().count() == 1


async def test_refund_add_and_remove_items_cancel_and_mark_unpaid(admin: str) -> None:
    owner, bill, hosting = _client_with_invoice()
    app = StaffApp()
    async with app.run_test(size=SMALL) as pilot:
        await login(pilot)
        tab = await _invoices_tab(pilot)
        screen = await _open_invoice(pilot, tab)
        await pilot.press("a")
        await settle(pilot)
        dialog = await _fill(pilot, {"description": "", "amount": "5"})
        assert "is required" in _text(dialog, "#ff-description-error")
        await _fill(pilot, {"description": "Extra IP", "amount": "5.00"})
        assert Invoice.get_by_id(bill.id).total == 3_000
        screen.query_one("#invoice-items", DataTable).move_cursor(row=1)
        await pilot.press("d")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        assert Invoice.get_by_id(bill.id).total == 2_500
        await pilot.press("p")
        await settle(pilot)
        await _fill(pilot, {"amount": "25.00"})
        await pilot.press("f")
        await settle(pilot)
        await _fill(pilot, {"amount": "25.00"})
        assert "Refunded" in _text(screen, "#invoice-head")
        await pilot.press("u")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        assert "Unpaid" in _text(screen, "#invoice-head")
        await pilot.press("x")
        await settle(pilot)
        await pilot.press("y")
        await settle(pilot)
        assert "Cancelled" in _text(screen, "#invoice-head")  # all money went back
        await pilot.press("escape")
        await settle(pilot)
        listed = app.screen.query_one(InvoicesTab).query_one(DataTable).get_row_at(0)
        assert "Cancelled" in [str(cell) for cell in listed]  # the tab shows it on return
    assert Service.get_by_id(hosting.id).next_due_date == dt.date(2026, 4, 24)  # not back
    actions = [a.action for a in AuditLog.select().where(AuditLog.entity == "invoice")]
    assert actions == [
        "add_item",
        "remove_item",
        "payment",
        "paid",
        "refund",
        "mark_unpaid",
        "cancel",
    ]


async def test_new_invoice_and_credit_from_the_tab(admin: str) -> None:
    owner, bill, _ = _client_with_invoice()
    app = StaffApp()
    async with app.run_test(size=SMALL) as pilot:
        await login(pilot)
        tab = await _invoices_tab(pilot)
        await pilot.press("n")
        await settle(pilot)
        dialog = await _fill(pilot, {"description": "", "amount": "x", "due_date": "2026-13-01"})
        assert "is required" in _text(dialog, "#ff-description-error")
        assert "not a decimal" in _text(dialog, "#ff-amount-error")
        assert "YYYY-MM-DD" in _text(dialog, "#ff-due_date-error")
        await _fill(
            pilot,
            {
                "description": "Setup",
                "amount": "40.00",
                "date": "2026-03-10",
                "due_date": "2026-03-17",
            },
        )
        assert Invoice.select().count() == 2
        await pilot.press("c")
        await settle(pilot)
        await _fill(pilot, {"amount": "15", "description": "goodwill"})
        assert "15.00 USD" in _text(tab, "#invoices-credit")
        screen = await _open_invoice(pilot, tab)  # newest first: the manual invoice
        await pilot.press("c")
        await settle(pilot)
        await _fill(pilot, {})  # the default: all the credit the balance can take
        assert "Credit 15.00 USD" in _text(screen, "#invoice-totals")
    assert Client.get_by_id(owner.id).credit == 0


async def test_support_staff_see_invoices_but_cannot_change_them(admin: str) -> None:
    _client_with_invoice()
    app = StaffApp()
    async with app.run_test(size=SMALL) as pilot:
        await login(pilot, "helpdesk", STAFF_PASSWORD)
        tab = await _invoices_tab(pilot)
        screen = await _open_invoice(pilot, tab)
        await pilot.press("p")
        await settle(pilot)
        assert app.screen is screen  # no form opened
        await pilot.press("escape")
        await settle(pilot)
        await pilot.press("n")
        await settle(pilot)
        assert not isinstance(app.screen, FormDialog)
    assert Transaction.select().count() == 0 and Invoice.select().count() == 1


async def test_o_saves_the_invoice_pdf_without_a_display_and_says_where(
    admin: str, tmp_path: Any, monkeypatch: Any
) -> None:
    """Over SSH there is no viewer: `o` on the tab and on the invoice screen saves the PDF
    privately in the data folder's invoices/ and the message says where."""
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    _client_with_invoice()
    app = StaffApp()
    notes: list[str] = []
    async with app.run_test(size=SMALL) as pilot:
        app.notify = lambda message, **_: notes.append(str(message))  # type: ignore[method-assign]
        await login(pilot)
        tab = await _invoices_tab(pilot)
        await pilot.press("o")
        await settle(pilot)
        screen = await _open_invoice(pilot, tab)
        await pilot.press("o")
        await settle(pilot)
        assert app.screen is screen
    saved = list((tmp_path / "data").rglob("Invoice-INV-1.pdf"))
    assert len(saved) == 1 and saved[0].read_bytes().startswith(b"%PDF")
    said = [n for n in notes if "saved to" in n]
    assert len(said) == 2 and all(str(saved[0]) in n for n in said), notes


async def test_a_payment_moves_the_services_tab_to_the_next_due_date(admin: str) -> None:
    """Paying renews what the invoice bills; the Products/Services tab shows it on return."""
    _owner, _bill, hosting = _client_with_invoice()
    app = StaffApp()
    async with app.run_test(size=SMALL) as pilot:
        await login(pilot)
        tab = await _invoices_tab(pilot)
        await _open_invoice(pilot, tab)
        await pilot.press("p")
        await settle(pilot)
        await _fill(pilot, {"amount": "25.00"})
        await pilot.press("escape")
        await settle(pilot)
        from tui.screens.client_tabs.services import ServicesTab

        services = app.screen.query_one(ServicesTab)
        cells = [str(c) for c in services.query_one(DataTable).get_row_at(0)]
        assert "2026-04-24" in cells, cells
    assert Service.get_by_id(hosting.id).next_due_date == dt.date(2026, 4, 24)
