"""The invoice PDF's settings (company address, bank transfer instructions) are edited on
the Settings screen like every setting, refused in one line when they break a line."""

from __future__ import annotations

from textual.widgets import Input, Static

from store.settings import load_settings
from tests.tui.test_staff_app import SIZE, login, make_clients, settle
from tui.app import StaffApp


async def test_settings_screen_edits_the_invoice_pdf_settings(admin: str) -> None:
    from tui.screens.settings import SettingsScreen

    make_clients(1)
    app = StaffApp()
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot)
        await pilot.press("f9")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, SettingsScreen)
        screen.query_one("#s-company_address", Input).value = "1 Main St\u2028Springfield"
        await pilot.press("ctrl+s")
        await settle(pilot)
        error = str(screen.query_one("#err-company_address", Static).render())
        assert "must be one line" in error
        assert load_settings().company_address == ""  # nothing saved
        screen.query_one("#s-company_address", Input).value = "1 Main St, Springfield"
        screen.query_one("#s-bank_transfer_instructions", Input).value = "IBAN GB33 BUKB 2020"
        await pilot.press("ctrl+s")
        await settle(pilot)
    saved = load_settings()
    assert (saved.company_address, saved.bank_transfer_instructions) == (
        "1 Main St, Springfield",
        "IBAN GB33 BUKB 2020",
    )
