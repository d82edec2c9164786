"""The staff side of client accounts in the profile (issue 12 item 5; PRODUCT.md §1
"Two-Factor Authentication", §2 "Reset & Send Password", portal invitations).

Driven as staff drive it: keys through Pilot at 80x24 (bursts sent as one terminal read),
the real rules on a real SQLite file and on PostgreSQL, the outbox and audit read back.
"""

from __future__ import annotations

import time
from typing import Any

from textual import events
from textual.app import App
from textual.pilot import Pilot
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Static

from rules.accounts.passwords import hash_password, verify_password
from store.models import AuditLog, Client, Currency, Email, PasswordResetToken, TotpBackupCode
from store.models.enums import ClientStatus
from tests.tui.test_staff_app import login
from tui.app import StaffApp
from tui.dialogs.confirm import ConfirmDialog
from tui.dialogs.two_factor import DisableTwoFactorDialog
from tui.screens.client_editor import ClientEditor, TwoFactorTick

SIZE = (80, 24)
PASSWORD = "plum orchard sunrise"
SECRET = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"
CONTROL = {"enter": "\r", "escape": "\x1b", "space": " "}


def make_client(
    n: int = 1, *, password: bool = True, two_factor: bool = False, **extra: Any
) -> Client:
    usd = Currency.get_or_create(code="USD", defaults={"is_default": True})[0]
    client = Client.create(
        first_name=f"Ana{n}",
        last_name="Núñez",
        email=f"ana{n}@example.com",
        currency=usd,
        password_hash=hash_password(PASSWORD) if password else "",
        totp_secret=SECRET if two_factor else "",
        **extra,
    )
    if two_factor:
        TotpBackupCode.create(client=client, code_hash=hash_password("backup-code-1"))
    return client


def busy(app: App[Any]) -> bool:
    """Keys still pending, or a worker still running; while a dialog is open, the
    worker waiting for its answer does not count, the dialog's own workers do."""
    if getattr(app, "keys_pending", 0):
        return True
    dialog = app.screen if isinstance(app.screen, ModalScreen) else None
    return any(w.is_running and (dialog is None or w.node is dialog) for w in app.workers)


async def quiet(pilot: Pilot[None], timeout: float = 60) -> None:
    """Until every key is handled and every worker (rules, reads) is done."""
    deadline = time.monotonic() + timeout
    await pilot.pause(0.05)
    while busy(pilot.app):
        assert time.monotonic() < deadline, "keys or workers still pending"
        await pilot.pause(0.02)
    await pilot.pause()


async def burst(pilot: Pilot[None], *parts: str) -> None:
    """Every key at once, as one terminal read delivers them (named keys as they are,
    other parts one key per character)."""
    driver = pilot.app._driver
    assert driver is not None
    for part in parts:
        if part.startswith("ctrl+"):
            driver.send_message(events.Key(part, chr(ord(part[-1]) - 96)))
        elif part in CONTROL:
            driver.send_message(events.Key(part, CONTROL[part]))
        else:
            for char in part:
                driver.send_message(events.Key(char, char))
    await quiet(pilot)


async def open_client(pilot: Pilot[None], client: Client, username: str = "admin") -> ClientEditor:
    await login(pilot, username=username)
    app = pilot.app
    assert isinstance(app, StaffApp)
    app.open_client(client.id)
    await quiet(pilot)
    editor = app.screen
    assert isinstance(editor, ClientEditor) and editor.account is not None
    return editor


def notes(pilot: Pilot[None]) -> list[str]:
    return [str(n.message) for n in pilot.app._notifications]


def emails(template: str) -> list[Email]:
    return list(Email.select().where(Email.template == template).order_by(Email.id))


def actions(client: Client) -> list[str]:
    return [a.action for a in AuditLog.select().where(AuditLog.client == client.id)]


def fits(pilot: Pilot[None], *selectors: str) -> None:
    """Each widget is drawn wholly inside the 80x24 screen."""
    for selector in selectors:
        region = pilot.app.screen.query_one(selector).region
        assert region.width and region.right <= SIZE[0] and region.bottom <= SIZE[1], selector


async def test_reset_and_send_password_emails_a_password_the_client_must_change(
    admin: str,
) -> None:
    client = make_client()
    old_hash = client.password_hash
    app = StaffApp()
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_client(pilot, client)
        editor.query_one("#f-city", Input).value = "Lisbon"  # an edit the action keeps
        await burst(pilot, "ctrl+r")
        assert isinstance(app.screen, ConfirmDialog)
        fits(pilot, "#yes", "#no")
        await burst(pilot, "n")  # declined: nothing happens
        assert app.screen is editor and emails("Automated Password Reset") == []
        await burst(pilot, "ctrl+r", "y")
        assert app.screen is editor
        assert any(n.startswith("New password queued for ana1@example.com") for n in notes(pilot))
        assert editor.query_one("#f-city", Input).value == "Lisbon" and editor.dirty
    [email] = emails("Automated Password Reset")
    assert email.client_id == client.id and email.to == "ana1@example.com"
    saved = Client.get_by_id(client.id)
    assert saved.password_must_change is True
    assert saved.password_hash != old_hash and not verify_password(saved.password_hash, PASSWORD)
    assert saved.city == ""  # the unsaved edit was not saved by the action
    assert "password_reset" in actions(client)


async def test_unticking_two_factor_with_a_reason_switches_it_off_emails_and_audits(
    admin: str,
) -> None:
    client = make_client(two_factor=True)
    reason = "lost phone, identity checked by call"
    app = StaffApp()
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_client(pilot, client)
        tick = editor.query_one("#f-two_factor", TwoFactorTick)
        assert tick.value and not tick.disabled
        # The dialog, the reason and the confirmation typed in one burst: the reason lands
        # in the dialog's field, focused from the start.
        await burst(pilot, "ctrl+t", reason, "enter")
        assert app.screen is editor
        assert tick.value is False and tick.disabled  # off, and staff cannot tick it on
        assert not editor.check_action("untick_two_factor", ())
        await burst(pilot, "ctrl+t")
        assert app.screen is editor  # no dialog any more
    saved = Client.get_by_id(client.id)
    assert saved.totp_secret == "" and not saved.two_factor_enabled
    assert TotpBackupCode.select().where(TotpBackupCode.client == client.id).count() == 0
    [email] = emails("Two-Factor Disabled")
    assert email.client_id == client.id and reason in email.body_text
    [row] = AuditLog.select().where(
        (AuditLog.client == client.id) & (AuditLog.action == "2fa_disabled")
    )
    assert row.new_value == reason and row.actor_name == "admin"


async def test_space_on_the_two_factor_tick_asks_and_cancel_keeps_it_on(admin: str) -> None:
    client = make_client(two_factor=True)
    app = StaffApp()
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_client(pilot, client)
        tick = editor.query_one("#f-two_factor", TwoFactorTick)
        tick.focus()
        await burst(pilot, "space")
        assert isinstance(app.screen, DisableTwoFactorDialog)
        fits(pilot, "#two-factor-reason", "#confirm", "#cancel", "#two-factor-error")
        await burst(pilot, "lost device", "escape")
        assert app.screen is editor
        assert tick.value is True and not tick.disabled
    assert Client.get_by_id(client.id).totp_secret == SECRET
    assert emails("Two-Factor Disabled") == [] and "2fa_disabled" not in actions(client)


async def test_an_empty_reason_is_refused_in_the_dialog_and_nothing_changes(admin: str) -> None:
    client = make_client(two_factor=True)
    app = StaffApp()
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_client(pilot, client)
        await burst(pilot, "ctrl+t", "   ", "enter")
        dialog = app.screen
        assert isinstance(dialog, DisableTwoFactorDialog)
        error = str(dialog.query_one("#two-factor-error", Static).render())
        assert error.startswith("Give a reason")
        assert Client.get_by_id(client.id).totp_secret == SECRET
        assert emails("Two-Factor Disabled") == []
        await burst(pilot, "escape")
        assert app.screen is editor
        assert editor.query_one("#f-two_factor", TwoFactorTick).value is True
    assert "2fa_disabled" not in actions(client)


async def test_the_invitation_is_offered_only_without_a_password_and_queues_it(
    admin: str,
) -> None:
    with_password = make_client(1)
    without = make_client(2, password=False)
    app = StaffApp()
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_client(pilot, with_password)
        assert not editor.query_one("#portal-invitation", Button).display
        assert not editor.check_action("portal_invitation", ())
        await burst(pilot, "ctrl+o")
        assert app.screen is editor and emails("Portal Invitation") == []
        # Two-factor off: the tick cannot be ticked on, by key or by Space.
        tick = editor.query_one("#f-two_factor", TwoFactorTick)
        assert tick.value is False and tick.disabled
        tick.toggle()
        await quiet(pilot)
        assert app.screen is editor and tick.value is False
        await burst(pilot, "escape")

        assert isinstance(app, StaffApp)
        app.open_client(without.id)
        await quiet(pilot)
        editor = app.screen
        assert isinstance(editor, ClientEditor)
        assert editor.query_one("#portal-invitation", Button).display
        await burst(pilot, "ctrl+o")
        assert isinstance(app.screen, ConfirmDialog)
        await burst(pilot, "y")
        assert app.screen is editor
        assert any(
            n.startswith("Portal invitation queued for ana2@example.com") for n in notes(pilot)
        )
    [email] = emails("Portal Invitation")
    assert email.client_id == without.id
    [token] = PasswordResetToken.select().where(PasswordResetToken.client == without.id)
    assert token.purpose == "invite"
    assert "invitation_sent" in actions(without)
    assert Client.get_by_id(without.id).password_hash == ""


async def test_support_is_refused_with_a_message_and_nothing_changes(admin: str) -> None:
    client = make_client(1, two_factor=True)
    no_password = make_client(2, password=False)
    before = Client.get_by_id(client.id).password_hash
    app = StaffApp()
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_client(pilot, client, username="helpdesk")
        line = editor.query_one("#editor-error", Static)
        for key in ("ctrl+r", "ctrl+t"):
            line.update("")
            await burst(pilot, key)
            assert app.screen is editor  # refused before any dialog
            assert "helpdesk (support) may not do this" in str(line.render()), key
        await burst(pilot, "escape")
        assert isinstance(app, StaffApp)
        app.open_client(no_password.id)
        await quiet(pilot)
        second = app.screen
        assert isinstance(second, ClientEditor) and second.client_id == no_password.id
        await burst(pilot, "ctrl+o")
        assert app.screen is second
        assert "may not do this" in str(second.query_one("#editor-error", Static).render())
    saved = Client.get_by_id(client.id)
    assert saved.password_hash == before and not saved.password_must_change
    assert saved.totp_secret == SECRET
    assert Email.select().count() == 0
    assert PasswordResetToken.select().count() == 0
    assert AuditLog.select().where(AuditLog.client.in_([client.id, no_password.id])).count() == 0


async def test_a_refused_reset_is_shown_beside_the_form_and_keeps_the_edits(admin: str) -> None:
    client = make_client(status=ClientStatus.CLOSED.value)
    app = StaffApp()
    async with app.run_test(size=SIZE) as pilot:
        editor = await open_client(pilot, client)
        editor.query_one("#f-city", Input).value = "Porto"
        await burst(pilot, "ctrl+r", "y")
        assert app.screen is editor
        assert "is Closed" in str(editor.query_one("#editor-error", Static).render())
        assert editor.query_one("#f-city", Input).value == "Porto"
    assert emails("Automated Password Reset") == []
    assert not Client.get_by_id(client.id).password_must_change
