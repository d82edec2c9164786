"""Email log, message view, resend and mass mail in the staff app."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from textual.widgets import Input, Select, Static

from rules.audit import SYSTEM_CLI
from rules.mail.delivery import MaildirTransport, flush
from rules.mail.marketing import OPTED_OUT
from rules.mail.massmail import MassMailFilter, send_mass_mail
from rules.mail.outbox import Notice, queue
from store.db import writer
from store.models import Client, Email, EmailTemplate, utcnow
from tests.tui.test_staff_app import SIZE, login, make_clients, settle
from tui.app import StaffApp
from tui.dialogs.confirm import ConfirmDialog
from tui.dialogs.message import MessageDialog
from tui.screens.client_editor import ClientEditor
from tui.screens.email_log import EmailLogScreen
from tui.screens.mass_mail import MassMailScreen
from tui.widgets.email_table import EmailTable


async def test_email_log_open_and_resend(admin: str) -> None:
    [client] = make_clients(1)
    with writer():
        queue("Password Reset Confirmation", [Notice(client.id)])
    app = StaffApp()
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot)
        await pilot.press("l")
        await pilot.pause()
        assert isinstance(app.screen, EmailLogScreen)
        table = app.screen.query_one(EmailTable)
        assert table.row_count == 1
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, MessageDialog)
        body = str(app.screen.query_one("#message-body", Static).render())
        assert "password of your client account was changed" in body
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("r")
        await settle(pilot)
        assert table.row_count == 2
    assert Email.select().count() == 2


async def test_email_log_shows_each_status_on_an_80_column_screen(admin: str) -> None:
    """A long subject does not push the status (queued, sent, failed) past the screen's
    edge: at 80 x 24 every row's status is on screen."""
    [client] = make_clients(1)
    with writer():
        queue("Password Reset Confirmation", [Notice(client.id)])
    Email.update(subject="A subject as long as a billing notice's subject ever gets " * 2).execute()
    app = StaffApp()
    async with app.run_test(size=(80, 24)) as pilot:
        await login(pilot)
        await pilot.press("l")
        await settle(pilot)
        assert isinstance(app.screen, EmailLogScreen)
        assert app.screen.query_one(EmailTable).row_count == 1
        screen = app.export_screenshot()
    assert "queued" in screen


async def test_client_emails_tab(admin: str) -> None:
    [client] = make_clients(1)
    with writer():
        queue("Password Reset Confirmation", [Notice(client.id)])
    app = StaffApp()
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot)
        await pilot.press("enter")
        await pilot.pause()
        editor = app.screen
        assert isinstance(editor, ClientEditor)
        assert editor.query_one("#emails-table", EmailTable).row_count == 1


async def test_mass_mail_preview_and_send(admin: str) -> None:
    make_clients(3, country="GB")
    make_clients_extra = Client.get(Client.email == "c0@example.com")
    make_clients_extra.marketing_opt_out = True
    make_clients_extra.save()
    app = StaffApp()
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot)
        await pilot.press("m")
        await pilot.pause()
        screen = app.screen
        assert isinstance(screen, MassMailScreen)
        screen.query_one("#mm-country", Input).value = "gb"
        screen.query_one("#mm-subject", Input).value = "Maintenance for {{ client.first_name }}"
        await pilot.press("f5")
        await pilot.pause()
        preview = str(screen.query_one("#mm-preview", Static).render())
        assert "2 recipient(s); 1 skipped (opted out)" in preview
        assert "Subject: Maintenance for First" in preview
        await pilot.press("ctrl+s")
        await pilot.pause()
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("y")
        await settle(pilot)
    assert Email.select().where(Email.marketing).count() == 2
    assert EmailTemplate.get(name="Mass Mail").subject == "Maintenance for {{ client.first_name }}"


async def test_mass_mail_refuses_an_unsafe_template(admin: str) -> None:
    make_clients(1)
    app = StaffApp()
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot)
        await pilot.press("m")
        await pilot.pause()
        screen = app.screen
        screen.query_one("#mm-subject", Input).value = "{{ ''.__class__ }}"
        await pilot.press("f5")
        await pilot.pause()
        assert "unsafe" in str(screen.query_one("#mm-error", Static).render())
    assert "__class__" not in EmailTemplate.get(name="Mass Mail").subject
    assert Email.select().count() == 0


async def test_support_cannot_open_mass_mail(admin: str) -> None:
    make_clients(1)
    app = StaffApp()
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot, username="helpdesk")
        await pilot.press("m")
        await pilot.pause()
        assert not isinstance(app.screen, MassMailScreen)


async def test_command_palette_finds_a_client(admin: str) -> None:
    make_clients(30)
    app = StaffApp()
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot)
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"Last0017")
        await pilot.pause(0.5)
        await pilot.press("enter")
        await pilot.pause()
        editor = app.screen
        assert isinstance(editor, ClientEditor)
        assert editor.query_one("#f-last_name", Input).value == "Last0017"


async def test_email_log_refuses_to_resend_marketing_no_longer_wanted_and_shows_skipped(
    admin: str, tmp_path: Path
) -> None:
    """The staff app's resend calls the same rule as ``gobiller mail resend``; skipped
    emails have their own status in the log's filter, with the reason."""
    [client] = make_clients(1)
    send_mass_mail(MassMailFilter(), "Mass Mail", SYSTEM_CLI)
    client.marketing_opt_out = True
    client.save()
    app = StaffApp()
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot)
        await pilot.press("l")
        await pilot.pause()
        table = app.screen.query_one(EmailTable)
        await pilot.press("r")
        await settle(pilot)
        assert table.row_count == 1
        assert any("not resent" in str(n.message) for n in app._notifications)
        flush(MaildirTransport(tmp_path / "Maildir"), now=lambda: utcnow() + dt.timedelta(1))
        app.screen.query_one("#email-status", Select).value = "skipped"
        await settle(pilot)
        assert table.row_count == 1
        row = [str(cell) for cell in table.get_row_at(0)]
        assert "skipped" in row and OPTED_OUT in row
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, MessageDialog)
        headers = str(app.screen.query_one(".dialog-title", Static).render())
        assert f"Not sent because: {OPTED_OUT}" in headers
    assert Email.select().count() == 1
