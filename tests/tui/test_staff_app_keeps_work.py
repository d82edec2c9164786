"""The staff app never loses work: a database that is busy or refuses a row leaves the
app and the edits on screen, the event loop keeps answering keys while the database
waits, and every way out asks first (issue 11)."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Input, Static

import store.db
from rules.audit import Actor
from rules.clients.profile import update_client
from rules.errors import StoredDataConflict
from store.db import database, is_sqlite
from store.models import AuditLog, Client, Contact, CustomField
from store.models.enums import ActorType, Source
from tests.tui.test_staff_app import login, make_clients, open_first_client, settle
from tui.app import StaffApp
from tui.background import BUSY
from tui.dialogs.confirm import ConfirmDialog
from tui.dialogs.conflict import ConflictDialog
from tui.dialogs.contact import ContactDialog
from tui.dialogs.password import LockScreen
from tui.screens.client_editor import ClientEditor

SMALL = (80, 24)  # the smallest terminal everything must work in
WAIT_MS = 1500


@contextmanager
def write_lock_held(client_id: int) -> Iterator[None]:
    """Another program holds the write lock on the client (SQLite: the database's;
    PostgreSQL: the client's row) until the block ends."""
    if is_sqlite():
        other = sqlite3.connect(database.obj.database, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            yield
        finally:
            other.execute("ROLLBACK")
            other.close()
        return
    import psycopg2

    params = dict(database.obj.connect_params)
    params.pop("options", None)
    conn = psycopg2.connect(dbname=database.obj.database, **params)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT id FROM client WHERE id = %s FOR UPDATE", (client_id,))
            yield
    finally:
        conn.rollback()
        conn.close()


@pytest.fixture
def short_wait(admin: str, reopen: Callable[[str], str], monkeypatch: Any) -> str:
    """The admin database, reopened with writers waiting 1.5 s for a lock, not 10 s."""
    monkeypatch.setattr(store.db, "LOCK_WAIT_MS", WAIT_MS)
    monkeypatch.setattr(
        store.db,
        "SQLITE_PRAGMAS",
        tuple((k, WAIT_MS if k == "busy_timeout" else v) for k, v in store.db.SQLITE_PRAGMAS),
    )
    return reopen(admin)


def shown_failure(editor: ClientEditor) -> str:
    return str(editor.query_one("#editor-error", Static).render())


async def test_a_held_write_lock_never_blocks_the_event_loop_and_keeps_the_edits(
    short_wait: str,
) -> None:
    [client] = make_clients(1)
    app = StaffApp()
    async with app.run_test(size=SMALL) as pilot:
        await login(pilot)
        editor = await open_first_client(pilot)
        await settle(pilot)
        editor.query_one("#f-city", Input).value = "Lockport"
        with write_lock_held(client.id):
            started = time.monotonic()
            await pilot.press("ctrl+s")
            editor.query_one("#f-state", Input).focus()
            await pilot.press(*"NY")  # typed while the save waits for the lock
            answered = time.monotonic() - started
            assert editor.query_one("#f-state", Input).value == "NY"
            assert answered < WAIT_MS / 1000 / 2, answered  # keys answered, not queued
            assert editor.saving and "saving" in str(editor.query_one("#editor-title").render())
            await settle(pilot)
            assert shown_failure(editor) == BUSY
            assert app.is_running and app.screen is editor
            assert editor.query_one("#f-city", Input).value == "Lockport"
            assert editor.query_one("#f-state", Input).value == "NY"
            assert editor.dirty
            assert Client.get_by_id(client.id).city == ""
        await pilot.press("ctrl+s")  # the lock is gone: the same edits land
        await settle(pilot)
        assert not editor.dirty and shown_failure(editor) == ""
    saved = Client.get_by_id(client.id)
    assert (saved.city, saved.state) == ("Lockport", "NY")


def _refuse_city(city: str) -> None:
    """A constraint in the database itself (another program's trigger): an update that
    sets ``city`` fails with the driver's IntegrityError."""
    if is_sqlite():
        database.execute_sql(
            f"CREATE TRIGGER refuse_city BEFORE UPDATE ON client WHEN NEW.city = '{city}' "
            "BEGIN SELECT RAISE(ABORT, 'city refused by a constraint'); END"
        )
        return
    database.execute_sql(
        "CREATE FUNCTION refuse_city() RETURNS trigger AS $$ BEGIN "
        f"IF NEW.city = '{city}' THEN RAISE EXCEPTION 'city refused by a constraint' "
        "USING ERRCODE = 'check_violation'; END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
    )
    database.execute_sql(
        "CREATE TRIGGER refuse_city BEFORE UPDATE ON client "
        "FOR EACH ROW EXECUTE FUNCTION refuse_city()"
    )


async def test_a_row_the_database_refuses_keeps_the_app_and_the_edits(admin: str) -> None:
    [client] = make_clients(1)
    _refuse_city("Forbidden")
    staff = Actor(ActorType.STAFF, "admin", Source.TUI, 1, "admin")
    with pytest.raises(StoredDataConflict, match="city refused"):  # a RuleError at the rules
        update_client(client.id, 1, {"city": "Forbidden"}, staff)
    app = StaffApp()
    async with app.run_test(size=SMALL) as pilot:
        await login(pilot)
        editor = await open_first_client(pilot)
        await settle(pilot)
        editor.query_one("#f-city", Input).value = "Forbidden"
        editor.query_one("#f-company", Input).value = "Acme"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "city refused by a constraint" in shown_failure(editor)
        assert app.is_running and app.screen is editor
        assert editor.query_one("#f-city", Input).value == "Forbidden"
        assert editor.query_one("#f-company", Input).value == "Acme"
        assert Client.get_by_id(client.id).company == ""
        editor.query_one("#f-city", Input).value = "Allowed"
        await pilot.press("ctrl+s")
        await settle(pilot)
    saved = Client.get_by_id(client.id)
    assert (saved.city, saved.company) == ("Allowed", "Acme")


async def _edit_city(pilot: Pilot[None]) -> ClientEditor:
    await login(pilot)
    editor = await open_first_client(pilot)
    await settle(pilot)
    editor.query_one("#f-city", Input).value = "Oslo"
    await pilot.pause()
    return editor


@pytest.mark.parametrize("way_out", ["ctrl+q", "palette"])
async def test_every_way_out_asks_before_discarding_edits(admin: str, way_out: str) -> None:
    make_clients(1)
    app = StaffApp()
    async with app.run_test(size=SMALL) as pilot:
        editor = await _edit_city(pilot)

        async def leave() -> None:
            if way_out == "ctrl+q":
                await pilot.press("ctrl+q")
            else:  # the command palette's "Quit the application" runs the same action
                await app.run_action("quit")
            await pilot.pause()

        await leave()
        assert isinstance(app.screen, ConfirmDialog) and "unsaved" in app.screen.message
        await pilot.press("n")
        await pilot.pause()
        assert app.is_running and app.screen is editor
        assert editor.query_one("#f-city", Input).value == "Oslo"
        await leave()
        await pilot.press("y")
        await pilot.pause()
        assert not app.is_running
    assert Client.get().city == ""


async def test_quitting_without_edits_does_not_ask(admin: str) -> None:
    make_clients(1)
    app = StaffApp()
    async with app.run_test(size=SMALL) as pilot:
        await login(pilot)
        await open_first_client(pilot)
        await settle(pilot)
        await pilot.press("ctrl+q")
        await pilot.pause()
        assert not app.is_running


async def test_locking_keeps_the_edits_and_says_locked(admin: str) -> None:
    from tests.conftest import STAFF_PASSWORD

    make_clients(1)
    app = StaffApp()
    async with app.run_test(size=SMALL) as pilot:
        editor = await _edit_city(pilot)
        await pilot.press("ctrl+l")
        await pilot.pause()
        lock = app.screen
        assert isinstance(lock, LockScreen)
        title = str(lock.query_one("#lock-reason", Static).render())
        assert title == "Locked" and "inactivity" not in title
        lock.query_one("#unlock-password", Input).value = STAFF_PASSWORD
        await pilot.press("enter")
        await settle(pilot)
        assert app.screen is editor and editor.query_one("#f-city", Input).value == "Oslo"
        assert editor.dirty


async def test_idle_lock_says_inactivity(admin: str) -> None:
    make_clients(1)
    app = StaffApp(lock_minutes=0)
    async with app.run_test(size=SMALL) as pilot:
        await login(pilot)
        app.check_lock()
        await pilot.pause()
        assert "inactivity" in str(app.screen.query_one("#lock-reason", Static).render())


def fits(widget: Any, size: tuple[int, int] = SMALL) -> bool:
    region = widget.region
    return region.x >= 0 and region.y >= 0 and region.right <= size[0] and region.bottom <= size[1]


async def test_the_contact_dialog_fits_80x24_takes_the_first_key_and_shows_the_new_row(
    admin: str,
) -> None:
    [client] = make_clients(1)
    app = StaffApp()
    async with app.run_test(size=SMALL) as pilot:
        await login(pilot)
        editor = await open_first_client(pilot)
        await settle(pilot)
        editor.query_one("#tabs").active = "contacts"  # type: ignore[attr-defined]
        await pilot.pause()
        editor.query_one("#contacts-table").focus()
        await pilot.press("a")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ContactDialog)
        await pilot.press(*"Wilhelmina")  # no click first: the first field has the focus
        await pilot.press("tab", *"Longbottom-Featherstonehaugh", "tab", "tab")
        await pilot.press(*"wilhelmina.longbottom@example.com")
        for widget in (
            dialog.query_one("#contact-dialog"),
            dialog.query_one("#contact-phone"),
            dialog.query_one("#save"),
        ):
            assert fits(widget), (widget, widget.region)
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is editor
        contact = Contact.get(Contact.client == client.id)
        assert (contact.first_name, contact.email) == (
            "Wilhelmina",
            "wilhelmina.longbottom@example.com",
        )
        await pilot.pause()
        table = editor.query_one("#contacts-table")
        row = [str(c) for c in table.get_row_at(0)]  # type: ignore[attr-defined]
        assert "Wilhelmina Longbottom-Featherstonehaugh" in row
        rendered = "\n".join(table.render_line(y).text for y in range(table.size.height))  # type: ignore[attr-defined]
        assert "Wilhelmina Longbottom-Featherstonehaugh" in rendered, rendered  # not cut off
        assert "wilhelmina.longbottom@example" in rendered, rendered


async def test_the_conflict_dialog_shows_both_sides_at_80x24(admin: str) -> None:
    [client] = make_clients(1)
    app = StaffApp()
    async with app.run_test(size=SMALL) as pilot:
        await login(pilot)
        editor = await open_first_client(pilot)
        await settle(pilot)
        other = Actor(ActorType.STAFF, "maria", Source.TUI, 99, "billing")
        update_client(client.id, 1, {"city": "Lisbon", "company": "Theirs Ltd"}, other)
        editor.query_one("#f-city", Input).value = "Porto"
        await pilot.press("ctrl+s")
        for _ in range(200):  # the save waits on the dialog: no settle here
            if isinstance(app.screen, ConflictDialog):
                break
            await pilot.pause(0.01)
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ConflictDialog)
        assert ("City", "Porto", "Lisbon") in dialog.rows
        assert ("Company", "", "Theirs Ltd") in dialog.rows  # their change, not only mine
        table = dialog.query_one("#conflict-table")
        assert fits(table)
        text = "\n".join(table.render_line(y).text for y in range(table.size.height))  # type: ignore[attr-defined]
        assert "Porto" in text and "Lisbon" in text, text
        await pilot.press("escape")
        await pilot.pause()


async def test_creating_a_client_logs_no_empty_fields(admin: str) -> None:
    make_clients(1)
    CustomField.create(name="Customer Number", type="text")
    CustomField.create(name="Newsletter", type="tickbox", sort_order=1)
    app = StaffApp()
    async with app.run_test(size=SMALL) as pilot:
        await login(pilot)
        await pilot.press("n")
        await settle(pilot)
        editor = app.screen
        assert isinstance(editor, ClientEditor)
        for name, value in (("first_name", "Ann"), ("last_name", "Lee"), ("email", "a@x.org")):
            editor.query_one(f"#f-{name}", Input).value = value
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert editor.client_id is not None and not editor.dirty
    rows = list(AuditLog.select().where(AuditLog.client == editor.client_id))
    assert [r.action for r in rows] == ["create"], [(r.field, r.new_value) for r in rows]


async def test_the_profile_shows_the_phone_as_the_list_does(admin: str) -> None:
    [client] = make_clients(1, phone="+442071838750")
    app = StaffApp()
    async with app.run_test(size=SMALL) as pilot:
        await login(pilot)
        editor = await open_first_client(pilot)
        await settle(pilot)
        assert editor.query_one("#f-phone", Input).value == "+44 20 7183 8750"
        assert not editor.dirty  # shown formatted, still the stored number
        editor.query_one("#f-city", Input).value = "London"
        await pilot.press("ctrl+s")
        await settle(pilot)
    assert Client.get_by_id(client.id).phone == "+442071838750"
    assert not AuditLog.select().where(AuditLog.field == "phone").exists()


async def test_every_dialog_and_the_editor_fit_80x24(admin: str) -> None:
    """80x24 is the smallest terminal: each dialog's box and its last line are on screen,
    and so are the editor's first field, its title and its error line."""
    from store.models import Email
    from tui.dialogs.message import MessageDialog
    from tui.screens.reference import RecordDialog

    [client] = make_clients(1)
    email = Email.create(
        client=client,
        template="Invoice Created",
        to="c0@example.com",
        subject="S " * 60,
        body_text="line\n" * 80,
    )
    app = StaffApp()
    async with app.run_test(size=SMALL) as pilot:
        editor = await _edit_city(pilot)
        for selector in ("#editor-title", "#f-first_name", "#tabs"):
            assert fits(editor.query_one(selector)), selector
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        assert fits(app.screen.query_one(".dialog")) and fits(app.screen.query_one("#no"))
        await pilot.press("n")
        await pilot.pause()
        app.push_screen(MessageDialog(email.id))
        await settle(pilot)
        assert fits(app.screen.query_one(".dialog"))
        assert "S S" in str(app.screen.query_one("#message-headers", Static).render())
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("ctrl+l")
        await pilot.pause()
        assert isinstance(app.screen, LockScreen)
        assert fits(app.screen.query_one(".dialog"))
        assert fits(app.screen.query_one("#unlock-password"))
        app.pop_screen()
        app.locked = False
        await pilot.pause()
        app.push_screen(
            RecordDialog(
                "New: Custom Client Fields",
                ("name", "type", "options", "regex", "required", "admin_only", "show_on_invoice"),
                {},
            )
        )
        await pilot.pause()
        assert fits(app.screen.query_one(".dialog"))
        assert fits(app.screen.query_one("#r-name"))


async def test_keys_typed_while_the_client_is_read_land_in_the_form(admin: str) -> None:
    """The first read is slow (another session holds the client table on PostgreSQL):
    what staff type meanwhile is typed into the form once it is filled, not lost and not
    overwritten by the read. (SQLite's WAL never blocks a reader: PostgreSQL only.)"""
    if is_sqlite():
        pytest.skip("a SQLite reader is never blocked by a writer (WAL)")
    import psycopg2

    [client] = make_clients(1)
    app = StaffApp()
    async with app.run_test(size=SMALL) as pilot:
        await login(pilot)
        params = dict(database.obj.connect_params)
        params.pop("options", None)
        conn = psycopg2.connect(dbname=database.obj.database, **params)
        try:
            with conn.cursor() as cur:
                cur.execute("LOCK TABLE client IN ACCESS EXCLUSIVE MODE")
                await pilot.press("enter")
                await pilot.pause(0.2)
                editor = app.screen
                assert isinstance(editor, ClientEditor) and editor.loaded is None
                await pilot.press("backspace", *"Zoë", "tab", *"Quinn")
        finally:
            conn.rollback()
            conn.close()
        await settle(pilot)
        # as if typed after the form was filled: a field's text is selected when it takes
        # the focus, so backspace clears the first name and "Quinn" replaces the last name
        assert editor.query_one("#f-first_name", Input).value == "Zoë"
        assert editor.query_one("#f-last_name", Input).value == "Quinn"
        assert editor.dirty
    assert Client.get_by_id(client.id).first_name == "First0000"
