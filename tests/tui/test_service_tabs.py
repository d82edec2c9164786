"""The client editor's working tabs driven from the keyboard (issue 13): Products/Services
(add a service from the catalogue, edit it, add an addon), Domains, Notes (sticky ones
on the Summary), the Products catalogue screen; each dialog's validation beside its
fields with nothing saved; a support role refused; everything fits 80x24; and a service
sold through the app makes the cron turn an Inactive client Active and invoice it."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from textual.containers import VerticalScroll
from textual.pilot import Pilot
from textual.widgets import DataTable, Input, Select, Static, TextArea

from rules.audit import SYSTEM_CLI
from rules.billing.catalogue import save_product, save_product_addon
from rules.billing.cron import run_cron
from store.models import (
    Addon,
    AuditLog,
    Client,
    ClientNote,
    Currency,
    Domain,
    Invoice,
    InvoiceItem,
    Pricing,
    Product,
    Service,
)
from store.settings import load_settings
from tests.tui.test_staff_app import SIZE, login, open_first_client, settle
from tui.app import StaffApp
from tui.dialogs.form import FormDialog, widget_id
from tui.screens.client_editor import ClientEditor

DAY = dt.date(2026, 3, 10)
SMALL = (80, 24)


def _client(status: str = "Active") -> Client:
    usd = Currency.get_or_create(code="USD", defaults={"is_default": True, "prefix": "$"})[0]
    return Client.create(
        first_name="Ann", last_name="Lee", email="ann@example.com", currency=usd, status=status
    )


def _catalogue() -> Product:
    usd = Currency.get(Currency.code == "USD")
    save_product_addon({"name": "Backups", "prices": {(usd.id, "Monthly"): "2.00"}}, SYSTEM_CLI)
    return save_product({"name": "Starter", "prices": {(usd.id, "Monthly"): "9.99"}}, SYSTEM_CLI)


async def _tab(pilot: Pilot[None], tab: str) -> ClientEditor:
    """Log in, open the first client, show ``tab`` and focus its table."""
    await login(pilot)
    editor = await open_first_client(pilot)
    await settle(pilot)
    editor.query_one("#tabs").active = tab  # type: ignore[attr-defined]
    await pilot.pause()
    editor.query_one(f"#{tab}-table", DataTable).focus()
    await pilot.pause()
    return editor


async def _dialog(pilot: Pilot[None], key: str) -> FormDialog:
    """Press ``key`` and wait for its dialog (its action's worker waits on the dialog:
    ``settle`` would wait for ever)."""
    await pilot.press(key)
    for _ in range(500):
        await pilot.pause(0.01)
        if isinstance(pilot.app.screen, FormDialog):
            break
    await pilot.pause()
    dialog = pilot.app.screen
    assert isinstance(dialog, FormDialog), dialog
    return dialog


def _set(dialog: FormDialog, **values: Any) -> None:
    for name, value in values.items():
        widget = dialog.query_one(f"#{widget_id(name)}")
        if isinstance(widget, Select):
            widget.value = value
        elif isinstance(widget, TextArea):
            widget.text = value
        else:
            assert isinstance(widget, Input)
            widget.value = value


def _error(dialog: FormDialog, name: str) -> str:
    return str(dialog.query_one(f"#{widget_id(name)}-error", Static).render())


async def _save(pilot: Pilot[None], dialog: FormDialog) -> None:
    """ctrl+s; then, when the dialog closed, until the tab has read its rows again."""
    await pilot.press("ctrl+s")
    await pilot.pause()
    while dialog.saving:
        await pilot.pause(0.01)
    await pilot.pause()
    if pilot.app.screen is not dialog:
        await settle(pilot)


def _fits(pilot: Pilot[None]) -> None:
    """The dialog's box lies inside the 80x24 screen (it scrolls within)."""
    box = pilot.app.screen.query_one(VerticalScroll).region
    assert box.x >= 0 and box.y >= 0 and box.right <= SMALL[0] and box.bottom <= SMALL[1], box


async def test_staff_sell_a_product_to_an_inactive_client_and_the_cron_activates_and_invoices(
    admin: str,
) -> None:
    """Deliverable 7: a service added in the app, then the cron: Active, and invoiced."""
    client = _client(status="Inactive")
    _catalogue()
    app = StaffApp()
    async with app.run_test(size=SMALL) as pilot:
        await _tab(pilot, "services")
        dialog = await _dialog(pilot, "a")
        _fits(pilot)
        assert app.focused is dialog.query_one(f"#{widget_id('product_id')}")
        amount = dialog.query_one(f"#{widget_id('amount')}", Input)
        assert "9.99" in amount.placeholder  # the catalogue's price in the client's currency
        _set(dialog, next_due_date=DAY.isoformat())
        await _save(pilot, dialog)
        assert isinstance(app.screen, ClientEditor)
        table = app.screen.query_one("#services-table", DataTable)
        assert "Starter" in [str(c) for c in table.get_row_at(0)]
    service = Service.get()
    assert (service.status, service.amount, service.next_due_date) == ("Active", 999, DAY)
    assert Client.get_by_id(client.id).status == "Inactive"
    run_cron(settings=load_settings(), day=DAY, deliver=False)
    assert Client.get_by_id(client.id).status == "Active"
    [item] = InvoiceItem.select()
    assert (item.related_type, item.related_id, item.amount) == ("service", service.id, 999)
    assert Invoice.get().client_id == client.id


async def test_add_service_errors_show_beside_the_fields_and_nothing_is_saved(admin: str) -> None:
    _client()
    _catalogue()
    app = StaffApp()
    async with app.run_test(size=SIZE) as pilot:
        await _tab(pilot, "services")
        dialog = await _dialog(pilot, "a")
        _set(dialog, billing_cycle="Quarterly", next_due_date="2026-02-30", domain="bad_name")
        await pilot.pause()
        placeholder = dialog.query_one(f"#{widget_id('amount')}", Input).placeholder
        assert "no catalogue price" in placeholder
        await _save(pilot, dialog)
        assert app.screen is dialog
        assert "no catalogue price" in _error(dialog, "amount")
        assert _error(dialog, "next_due_date") and _error(dialog, "domain")
        assert _error(dialog, "status") == ""
        assert Service.select().count() == 0
        _set(dialog, amount="30.00", next_due_date="2026-03-31", domain="Ann.Example.")
        await _save(pilot, dialog)
        assert isinstance(app.screen, ClientEditor)
    service = Service.get()
    assert (service.amount, service.billing_cycle, service.domain) == (
        3000,
        "Quarterly",
        "ann.example",
    )
    assert service.anchor_day == 31


@pytest.mark.slow
async def test_edit_a_service_and_add_an_addon(admin: str) -> None:
    client = _client()
    product = _catalogue()
    Service.create(
        client=client,
        product=product,
        status="Active",
        billing_cycle="Monthly",
        amount=999,
        next_due_date=DAY,
        anchor_day=DAY.day,
        payment_method="banktransfer",
    )
    app = StaffApp()
    async with app.run_test(size=SMALL) as pilot:
        editor = await _tab(pilot, "services")
        dialog = await _dialog(pilot, "e")
        _fits(pilot)
        assert dialog.query_one(f"#{widget_id('amount')}", Input).value == "9.99"
        _set(dialog, amount="12.50", next_due_date="2026-04-30", notes="moved to node 7")
        await _save(pilot, dialog)
        assert app.screen is editor
        dialog = await _dialog(pilot, "plus")
        _fits(pilot)
        assert "2.00" in dialog.query_one(f"#{widget_id('amount')}", Input).placeholder
        await _save(pilot, dialog)
        assert app.screen is editor
        table = editor.query_one("#services-table", DataTable)
        assert table.row_count == 2
        assert "+ Backups" in str(table.get_row_at(1)[1])
        table.move_cursor(row=1)  # on the addon: e edits the addon, A adds to its service
        dialog = await _dialog(pilot, "e")
        assert dialog.query_one(f"#{widget_id('name')}", Input).value == "Backups"
        await pilot.press("escape")
        await settle(pilot)
        dialog = await _dialog(pilot, "A")
        assert "service " + str(Service.get().id) in dialog.title_text
        await pilot.press("escape")
        await settle(pilot)
    service = Service.get()
    assert (service.amount, service.anchor_day, service.notes) == (1250, 30, "moved to node 7")
    addon = Addon.get()
    assert (addon.name, addon.amount, addon.service_id) == ("Backups", 200, service.id)
    fields = {a.field for a in AuditLog.select().where(AuditLog.entity == "service")}
    assert {"amount", "next_due_date", "notes"} <= fields


async def test_domains_add_and_edit_with_validation(admin: str) -> None:
    _client()
    app = StaffApp()
    async with app.run_test(size=SMALL) as pilot:
        editor = await _tab(pilot, "domains")
        dialog = await _dialog(pilot, "a")
        _fits(pilot)
        _set(dialog, name="not a domain", amount="abc")
        await _save(pilot, dialog)
        assert app.screen is dialog
        assert _error(dialog, "name") and _error(dialog, "amount")
        assert Domain.select().count() == 0
        _set(dialog, name="Bücher.DE", amount="12.99")
        await _save(pilot, dialog)
        assert app.screen is editor
        dialog = await _dialog(pilot, "e")
        _set(dialog, status="Expired")
        await _save(pilot, dialog)
    domain = Domain.get()
    assert (domain.name, domain.amount, domain.status) == ("bücher.de", 1299, "Expired")


async def test_notes_add_stick_edit_delete_and_the_summary_shows_sticky_ones(admin: str) -> None:
    client = _client()
    app = StaffApp()
    async with app.run_test(size=SMALL) as pilot:
        editor = await _tab(pilot, "notes")
        dialog = await _dialog(pilot, "a")
        _fits(pilot)
        await _save(pilot, dialog)  # blank: refused beside the field
        assert app.screen is dialog and _error(dialog, "note")
        _set(dialog, note="Prefers calls after 5pm")
        await _save(pilot, dialog)
        assert app.screen is editor
        await settle(pilot)
        summary = str(editor.query_one("#summary-body", Static).render())
        assert "Prefers calls" not in summary
        await pilot.press("s")  # stick it
        await settle(pilot)
        assert ClientNote.get().sticky
        summary = str(editor.query_one("#summary-body", Static).render())
        assert "Prefers calls after 5pm" in summary and "admin" in summary
        dialog = await _dialog(pilot, "e")
        _set(dialog, note="Prefers calls after 6pm")
        await _save(pilot, dialog)
        assert ClientNote.get().note == "Prefers calls after 6pm"
        await pilot.press("d")
        await pilot.pause(0.2)
        await pilot.press("n")  # asked first: no
        await settle(pilot)
        assert ClientNote.select().count() == 1
        await pilot.press("d")
        await pilot.pause(0.2)
        await pilot.press("y")
        await settle(pilot)
    assert ClientNote.select().where(ClientNote.client == client.id).count() == 0
    actions = [a.action for a in AuditLog.select().where(AuditLog.entity == "client_note")]
    assert actions == ["create", "update", "update", "delete"]


async def test_support_may_write_notes_but_not_sell(admin: str) -> None:
    _client()
    _catalogue()
    app = StaffApp()
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot, "helpdesk")
        editor = await open_first_client(pilot)
        await settle(pilot)
        editor.query_one("#tabs").active = "services"  # type: ignore[attr-defined]
        await pilot.pause()
        editor.query_one("#services-table", DataTable).focus()
        await pilot.press("a")
        await settle(pilot)
        assert app.screen is editor  # no dialog: the reason is above the table
        assert "may not" in str(editor.query_one("#services-error", Static).render())
    assert Service.select().count() == 0


async def test_the_products_catalogue_screen_adds_and_edits_prices(admin: str) -> None:
    from tui.screens.catalogue import CatalogueScreen

    Currency.create(code="USD", prefix="$", is_default=True)
    Currency.create(code="JPY", prefix="¥", decimals=0)
    app = StaffApp()
    async with app.run_test(size=SMALL) as pilot:
        await login(pilot)
        app.action_catalogue()
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, CatalogueScreen)
        dialog = await _dialog(pilot, "a")
        _fits(pilot)
        _set(
            dialog, **{"name": "Starter", "price.USD.Monthly": "9.999", "price.JPY.Annually": "1.5"}
        )
        await _save(pilot, dialog)
        assert app.screen is dialog
        assert _error(dialog, "price.USD.Monthly") and _error(dialog, "price.JPY.Annually")
        assert Product.select().count() == 0
        _set(dialog, **{"price.USD.Monthly": "9.99", "price.JPY.Annually": "12000"})
        await _save(pilot, dialog)
        assert app.screen is screen
        table = screen.query_one("#t-products", DataTable)
        cells = [str(c) for c in table.get_row_at(0)]
        assert "Starter" in cells and any("USD 9.99/mo" in c for c in cells)
        dialog = await _dialog(pilot, "e")
        _set(dialog, **{"price.USD.Monthly": ""})
        await _save(pilot, dialog)
    assert [(p.billing_cycle, p.amount) for p in Pricing.select()] == [("Annually", 12000)]


@pytest.mark.slow
async def test_the_editor_tabs_are_reached_from_the_keyboard(admin: str) -> None:
    """alt+→ / alt+← move between the editor's tabs,
    wrapping round, with the focus inside the new tab so its own keys work at once."""
    _client()
    _catalogue()
    app = StaffApp()
    async with app.run_test(size=SMALL) as pilot:
        await login(pilot)
        editor = await open_first_client(pilot)
        await settle(pilot)
        tabs: Any = editor.query_one("#tabs")
        assert tabs.active == "profile"
        seen = []
        for _ in range(3):
            await pilot.press("alt+right")
            await settle(pilot)
            seen.append(tabs.active)
        assert seen == ["contacts", "services", "domains"]
        assert app.focused is editor.query_one("#domains-table", DataTable)
        await pilot.press("alt+left")
        await settle(pilot)
        assert tabs.active == "services"
        await _dialog(pilot, "a")  # the tab's own key, with no focus step in between
        await pilot.press("escape")
        await settle(pilot)
        for _ in range(3):
            await pilot.press("alt+left")
            await settle(pilot)
        assert tabs.active == "summary"
        await pilot.press("alt+left")  # wraps round to the last tab
        await settle(pilot)
        assert tabs.active == "log"


async def test_the_first_service_sold_in_the_app_makes_a_currency_change_warn(admin: str) -> None:
    """PRODUCT.md §1: the first order fixes the currency; after it the select warns."""
    from tui.dialogs.confirm import ConfirmDialog

    client = _client()
    eur = Currency.create(code="EUR", prefix="€")
    _catalogue()
    app = StaffApp()
    async with app.run_test(size=SIZE) as pilot:
        editor = await _tab(pilot, "services")
        dialog = await _dialog(pilot, "a")
        await _save(pilot, dialog)
        assert Service.select().count() == 1
        editor.query_one("#tabs").active = "profile"  # type: ignore[attr-defined]
        await pilot.pause()
        editor.query_one("#f-currency_id", Select).value = eur.id
        await pilot.pause()
        await pilot.press("ctrl+s")
        for _ in range(300):
            await pilot.pause(0.01)
            if isinstance(app.screen, ConfirmDialog):
                break
        warning = app.screen
        assert isinstance(warning, ConfirmDialog) and "1 services" in warning.message
        await pilot.press("n")
        await settle(pilot)
    assert Client.get_by_id(client.id).currency_id != eur.id
