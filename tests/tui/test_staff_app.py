"""The staff app driven as staff drive it: keys through Pilot, a real database underneath."""

from __future__ import annotations

from typing import Any

import pytest
from textual.pilot import Pilot
from textual.widgets import Checkbox, Input, Select, Static

from rules.audit import SYSTEM_CLI, Actor
from rules.clients.profile import update_client
from rules.errors import RuleError
from rules.permissions import PermissionDenied
from store.models import (
    Addon,
    AuditLog,
    Client,
    ClientGroup,
    Contact,
    Currency,
    Domain,
    Invoice,
    Product,
)
from store.models import Service as ServiceModel
from store.models.enums import ActorType, Source
from tests.conftest import STAFF_PASSWORD
from tui.app import StaffApp
from tui.dialogs.confirm import ConfirmDialog
from tui.dialogs.conflict import ConflictDialog
from tui.screens.client_editor import PREFERENCES, ClientEditor
from tui.screens.client_list import ClientListScreen
from tui.widgets.client_table import ClientTable

PASSWORD = STAFF_PASSWORD
SIZE = (120, 40)


def make_clients(n: int, **extra: Any) -> list[Client]:
    usd = Currency.get_or_create(code="USD", defaults={"is_default": True})[0]
    return [
        Client.create(
            first_name=f"First{i:04d}",
            last_name=f"Last{i:04d}",
            email=f"c{i}@example.com",
            currency=usd,
            **extra,
        )
        for i in range(n)
    ]


async def login(pilot: Pilot[None], username: str = "admin", password: str = PASSWORD) -> None:
    await pilot.pause()
    pilot.app.screen.query_one("#username", Input).value = username
    pilot.app.screen.query_one("#username", Input).focus()
    await pilot.press("enter")  # to the password field
    pilot.app.screen.query_one("#password", Input).value = password
    await pilot.press("enter")  # submits
    await settle(pilot)
    await settle(pilot)


async def open_first_client(pilot: Pilot[None]) -> ClientEditor:
    await pilot.press("enter")
    await pilot.pause()
    screen = pilot.app.screen
    assert isinstance(screen, ClientEditor)
    return screen


async def settle(pilot: Pilot[None]) -> None:
    """Until every worker has finished (a search made stale by a newer one counts)."""
    await pilot.pause()
    while any(w.is_running for w in pilot.app.workers):
        await pilot.pause(0.01)
    await pilot.pause()


async def test_login_fails_then_succeeds(admin: str) -> None:
    make_clients(3)
    app = StaffApp()
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot, password="wrong password")
        assert "Invalid username or password" in str(
            app.screen.query_one("#login-error", Static).render()
        )
        assert app.actor is None
        await login(pilot)
        assert isinstance(app.screen, ClientListScreen)
        assert app.actor is not None and app.actor.role == "admin"
        assert AuditLog.select().where(AuditLog.action == "login").count() == 1


async def test_search_and_paging(admin: str) -> None:
    make_clients(450)
    app = StaffApp()
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot)
        table = app.screen.query_one(ClientTable)
        assert table.total == 450
        await pilot.press("pagedown")
        assert table.cursor == table.size.height - 1
        await pilot.press("end")
        assert table.cursor == 449 and table.current is not None
        assert table.current.last_name == "Last0449"
        await pilot.press("home")
        assert table.cursor == 0
        await pilot.press("slash")
        await pilot.press(*"Last0123")
        await settle(pilot)
        assert table.total == 1 and table.current is not None
        assert table.current.email == "c123@example.com"
        await pilot.press("enter")  # from the search box back to the list
        editor = await open_first_client(pilot)
        assert editor.query_one("#f-last_name", Input).value == "Last0123"


async def test_page_reads_are_bounded(admin: str) -> None:
    """Scrolling to the end of the list reads a couple of pages, not every row."""
    make_clients(1200)
    app = StaffApp()
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot)
        table = app.screen.query_one(ClientTable)
        await pilot.press("end")
        await pilot.pause()
        assert table.pages_read <= 3


async def test_edit_and_save_every_field(admin: str) -> None:
    [client] = make_clients(1)
    group = ClientGroup.create(name="VIP")
    app = StaffApp()
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot)
        editor = await open_first_client(pilot)
        values = {
            "first_name": "Zoë",
            "last_name": "D'Angelo",
            "company": "[bold]x",
            "email": "Zoe@Example.org",
            "address1": "1 Rue",
            "address2": "Apt 2",
            "city": "Paris",
            "state": "IDF",
            "postcode": "75001",
            "country": "fr",
            "phone": "06 12 34 56 78",
            "tax_id": "FR123",
            "language": "fr",
        }
        for name, value in values.items():
            editor.query_one(f"#f-{name}", Input).value = value
        for _, _, key in PREFERENCES:
            await pilot.press(key)
        editor.query_one("#f-group_id", Select).value = group.id
        editor.query_one("#f-status", Select).value = "Inactive"
        editor.query_one("#f-admin_notes").text = "VIP since 2019"  # type: ignore[attr-defined]
        await pilot.pause()
        assert "unsaved" in str(editor.query_one("#editor-title", Static).render())
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "unsaved" not in str(editor.query_one("#editor-title", Static).render())
    saved = Client.get_by_id(client.id)
    assert (saved.first_name, saved.company, saved.email) == ("Zoë", "[bold]x", "Zoe@example.org")
    assert (saved.country, saved.phone, saved.status) == ("FR", "+33612345678", "Inactive")
    assert saved.group_id == group.id and saved.admin_notes == "VIP since 2019"
    for name, _, _ in PREFERENCES:
        assert getattr(saved, name) is True, name
    assert saved.version == 2
    logged = {a.field for a in AuditLog.select().where(AuditLog.client == client.id)}
    assert {"first_name", "late_fees_exempt", "status_locked", "group_id"} <= logged


async def test_invalid_fields_are_marked_and_nothing_saved(admin: str) -> None:
    [client] = make_clients(1)
    app = StaffApp()
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot)
        editor = await open_first_client(pilot)
        editor.query_one("#f-email", Input).value = "not an email"
        editor.query_one("#f-phone", Input).value = "12"
        editor.query_one("#f-city", Input).value = "Valid City"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "not a valid email" in str(editor.query_one("#err-email", Static).render())
        assert "phone" in str(editor.query_one("#err-phone", Static).render())
        assert editor.query_one("#f-email").has_class("-invalid")
    saved = Client.get_by_id(client.id)
    assert (saved.email, saved.city, saved.version) == ("c0@example.com", "", 1)


async def test_concurrent_edit_opens_the_conflict_dialog(admin: str) -> None:
    [client] = make_clients(1)
    app = StaffApp()
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot)
        editor = await open_first_client(pilot)
        # Another member of staff saves the same client meanwhile.
        other = Actor(ActorType.STAFF, "maria", Source.TUI, 99, "billing")
        update_client(client.id, 1, {"city": "Lisbon"}, other)
        editor.query_one("#f-city", Input).value = "Porto"
        await pilot.press("ctrl+s")
        await pilot.pause()
        await pilot.pause()
        assert isinstance(app.screen, ConflictDialog)
        assert ("City", "Porto", "Lisbon") in app.screen.rows
        await pilot.press("a")  # re-apply mine over theirs, knowingly
        await settle(pilot)
    saved = Client.get_by_id(client.id)
    assert (saved.city, saved.version) == ("Porto", 3)


async def test_conflict_reload_discards_mine(admin: str) -> None:
    [client] = make_clients(1)
    app = StaffApp()
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot)
        editor = await open_first_client(pilot)
        update_client(client.id, 1, {"city": "Lisbon"}, SYSTEM_CLI)
        editor.query_one("#f-city", Input).value = "Porto"
        await pilot.press("ctrl+s")
        await pilot.pause()
        await pilot.pause()
        await pilot.press("r")
        await settle(pilot)
        assert editor.query_one("#f-city", Input).value == "Lisbon"
        assert editor.version == 2
    assert Client.get_by_id(client.id).city == "Lisbon"


async def test_payment_method_cascade_is_counted_and_confirmed(admin: str) -> None:
    [client] = make_clients(1, payment_method="banktransfer")
    product = Product.create(name="VPS")
    for _ in range(2):
        service = ServiceModel.create(client=client, product=product, payment_method="banktransfer")
    Addon.create(service=service, client=client, name="Backups", payment_method="banktransfer")
    Domain.create(client=client, name="a.com", payment_method="mailin")  # another method
    import datetime as dt

    for n, status in enumerate(("Unpaid", "Paid")):
        Invoice.create(
            client=client,
            number=f"{n}",
            date=dt.date(2026, 1, 1),
            due_date=dt.date(2026, 1, 1),
            status=status,
            payment_method="banktransfer",
        )
    app = StaffApp()
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot)
        editor = await open_first_client(pilot)
        editor.query_one("#f-payment_method", Select).value = "sandboxcard"
        await pilot.press("ctrl+s")
        await pilot.pause()
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, ConfirmDialog)
        assert "2 services, 1 addons, 0 domains and 1 unpaid invoices" in dialog.message
        await pilot.press("y")
        await settle(pilot)
    assert ServiceModel.select().where(ServiceModel.payment_method == "sandboxcard").count() == 2
    assert Addon.get().payment_method == "sandboxcard"
    assert Domain.get().payment_method == "mailin"
    assert {i.status: i.payment_method for i in Invoice.select()} == {
        "Unpaid": "sandboxcard",
        "Paid": "banktransfer",
    }


async def test_declining_the_cascade_saves_nothing(admin: str) -> None:
    [client] = make_clients(1)
    ServiceModel.create(
        client=client, product=Product.create(name="VPS"), payment_method="banktransfer"
    )
    app = StaffApp()
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot)
        editor = await open_first_client(pilot)
        editor.query_one("#f-payment_method", Select).value = "mailin"
        await pilot.press("ctrl+s")
        await pilot.pause()
        await pilot.press("n")
        await settle(pilot)
    assert Client.get_by_id(client.id).payment_method == "banktransfer"


async def test_leaving_with_unsaved_edits_asks(admin: str) -> None:
    make_clients(1)
    app = StaffApp()
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot)
        editor = await open_first_client(pilot)
        editor.query_one("#f-city", Input).value = "Oslo"
        await pilot.press("escape")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("n")  # stay
        await pilot.pause()
        assert app.screen is editor
        await pilot.press("escape")
        await pilot.pause()
        await pilot.press("y")  # discard
        await settle(pilot)
        assert isinstance(app.screen, ClientListScreen)
    assert Client.get().city == ""


async def test_support_role_cannot_touch_billing(admin: str) -> None:
    [client] = make_clients(1)
    app = StaffApp()
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot, username="helpdesk")
        editor = await open_first_client(pilot)
        assert editor.query_one("#f-tax_exempt", Checkbox).disabled
        assert editor.query_one("#f-status", Select).disabled
        await pilot.press("f4")  # the tax-exempt key does nothing for support
        editor.query_one("#f-admin_notes").text = "Called about DNS"  # type: ignore[attr-defined]
        await pilot.press("ctrl+s")
        await settle(pilot)
    saved = Client.get_by_id(client.id)
    assert saved.tax_exempt is False and saved.admin_notes == "Called about DNS"
    support = Actor(ActorType.STAFF, "helpdesk", Source.TUI, 2, "support")
    with pytest.raises(PermissionDenied):
        update_client(client.id, saved.version, {"tax_exempt": True}, support)


async def test_new_client_from_the_list(admin: str) -> None:
    make_clients(1)
    app = StaffApp()
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot)
        await pilot.press("n")
        await pilot.pause()
        editor = app.screen
        assert isinstance(editor, ClientEditor) and editor.client_id is None
        for name, value in (
            ("first_name", "محمد"),
            ("last_name", "العلي"),
            ("email", "m@example.com"),
        ):
            editor.query_one(f"#f-{name}", Input).value = value
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert editor.client_id is not None
    created = Client.get(Client.email == "m@example.com")
    assert created.first_name == "محمد"


async def add_contact_dialog(pilot: Pilot[None]) -> tuple[Any, Any]:
    """Log in, open the first client's Contacts tab and press ``a``: (editor, dialog)."""
    await login(pilot)
    editor = await open_first_client(pilot)
    editor.query_one("#tabs").active = "contacts"
    await pilot.pause()
    editor.query_one("#contacts-table").focus()
    await pilot.press("a")
    await pilot.pause()
    return editor, pilot.app.screen


async def test_contacts_can_be_added_and_removed(admin: str) -> None:
    [client] = make_clients(1)
    app = StaffApp()
    async with app.run_test(size=SIZE) as pilot:
        editor, dialog = await add_contact_dialog(pilot)
        for name, value in (
            ("first_name", "Bill"),
            ("last_name", "Ing"),
            ("email", "bill@example.com"),
        ):
            dialog.query_one(f"#contact-{name}", Input).value = value
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert Contact.select().where(Contact.client == client.id).count() == 1
        editor.query_one("#contacts-table").focus()
        await pilot.press("d")
        await pilot.pause()
        await pilot.press("y")
        await settle(pilot)
    assert Contact.select().count() == 0


async def test_contact_errors_show_beside_the_fields_and_nothing_is_saved(admin: str) -> None:
    from tui.dialogs.contact import ContactDialog

    [client] = make_clients(1)
    app = StaffApp()
    async with app.run_test(size=SIZE) as pilot:
        editor, dialog = await add_contact_dialog(pilot)
        assert isinstance(dialog, ContactDialog)
        for name, value in (
            ("first_name", "Bill"),
            ("last_name", "Ing"),
            ("email", "not-an-email"),
            ("phone", "12"),
        ):
            dialog.query_one(f"#contact-{name}", Input).value = value
        await pilot.press("ctrl+s")
        await pilot.pause()  # (the editor's worker runs until it closes: no settle here)
        while dialog.saving:  # the rule runs in a thread
            await pilot.pause(0.01)
        assert app.screen is dialog  # still open, with the reasons beside the fields
        email_error = str(dialog.query_one("#contact-email-error", Static).render())
        phone_error = str(dialog.query_one("#contact-phone-error", Static).render())
        assert email_error and phone_error
        assert str(dialog.query_one("#contact-first_name-error", Static).render()) == ""
        assert app.focused is dialog.query_one("#contact-email", Input)
        assert Contact.select().where(Contact.client == client.id).count() == 0
        dialog.query_one("#contact-email", Input).value = "bill@example.com"
        dialog.query_one("#contact-phone", Input).value = ""
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert app.screen is editor
    assert Contact.get(Contact.client == client.id).email == "bill@example.com"


async def test_markup_like_names_show_literally(admin: str) -> None:
    from store.models import CustomField

    usd = Currency.create(code="USD", is_default=True)
    group = ClientGroup.create(name="[/")
    CustomField.create(name="[bold]tick", type="tickbox")
    CustomField.create(name="Pick", type="dropdown", options='["[/", "a[0]]"]', sort_order=1)
    for i, name in enumerate(("[bold]x", "[/", "[TODO]", "a[0]]")):
        c = Client.create(
            first_name=name,
            last_name="Zed",
            email=f"m{i}@example.com",
            currency=usd,
            company=name,
            group=group,
        )
        Contact.create(client=c, first_name=name, last_name="[/", email=f"k{i}@example.com")
    app = StaffApp()
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot)
        table = app.screen.query_one(ClientTable)
        lines = [table.render_line(y).text for y in range(4)]
        for name in ("[bold]x", "[/", "[TODO]", "a[0]]"):
            assert any(f"{name} Zed" in line for line in lines), (name, lines)
        editor = await open_first_client(pilot)
        assert editor.query_one("#f-company", Input).value in {"[bold]x", "[/", "[TODO]", "a[0]]"}
        title = str(editor.query_one("#editor-title", Static).render())
        assert "Zed" in title and "[" in title


async def test_amounts_on_the_profile_use_the_currencys_own_prefix_suffix_and_decimals(
    admin: str,
) -> None:
    import datetime as dt

    from textual.widgets import DataTable

    bhd = Currency.create(code="BHD", prefix="BHD ", decimals=3, is_default=True)
    client = Client.create(first_name="Sara", last_name="Ali", email="s@example.bh", currency=bhd)
    ServiceModel.create(
        client=client, product=Product.create(name="VPS"), amount=12345, payment_method="mailin"
    )
    Domain.create(client=client, name="a.bh", amount=1234567, payment_method="mailin")
    Invoice.create(
        client=client,
        number="7",
        date=dt.date(2026, 1, 1),
        due_date=dt.date(2026, 1, 1),
        payment_method="mailin",
        total=-5,
    )
    app = StaffApp()
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot)
        editor = await open_first_client(pilot)
        await settle(pilot)

        def cells(selector: str) -> list[str]:
            table = editor.query_one(selector, DataTable)
            return [str(cell) for cell in table.get_row_at(0)]

        assert "BHD 12.345" in cells("#services-table")
        assert "BHD 1,234.567" in cells("#domains-table")
        assert "-BHD 0.005" in cells("#invoices-table")


async def test_idle_lock_asks_for_the_password(admin: str) -> None:
    make_clients(1)
    app = StaffApp(lock_minutes=0)
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot)
        app.check_lock()
        await pilot.pause()
        assert app.locked
        lock = app.screen
        lock.query_one("#unlock-password", Input).value = "wrong"
        await pilot.press("enter")
        await settle(pilot)  # checked in a worker, off the event loop
        assert app.locked
        lock.query_one("#unlock-password", Input).value = PASSWORD
        await pilot.press("enter")
        await settle(pilot)
        assert not app.locked and isinstance(app.screen, ClientListScreen)


def test_rule_errors_are_domain_errors() -> None:
    assert issubclass(PermissionDenied, RuleError)


async def test_custom_fields_are_validated_and_saved(admin: str) -> None:
    from store.models import CustomField, CustomFieldValue

    [client] = make_clients(1)
    number = CustomField.create(name="Customer Number", type="text", regex=r"C-\d{6}")
    tick = CustomField.create(name="Newsletter", type="tickbox", sort_order=1)
    app = StaffApp()
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot)
        editor = await open_first_client(pilot)
        editor.query_one(f"#c-{number.id}", Input).value = "12345"
        editor.query_one(f"#c-{tick.id}", Checkbox).value = True
        await pilot.press("ctrl+s")
        await settle(pilot)
        error = str(editor.query_one(f"#err-custom_fields-{number.id}", Static).render())
        assert "does not match the required format" in error
        assert CustomFieldValue.select().count() == 0  # nothing saved, not even the tickbox
        editor.query_one(f"#c-{number.id}", Input).value = "C-000042"
        await pilot.press("ctrl+s")
        await settle(pilot)
    values = {v.field_id: v.value for v in CustomFieldValue.select()}
    assert values == {number.id: "C-000042", tick.id: "on"}
    assert Client.get_by_id(client.id).version == 2


async def test_keys_can_be_remapped(admin: str) -> None:
    make_clients(2)
    app = StaffApp(keymap={"list.new": "ctrl+n"})
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot)
        await pilot.press("n")
        await pilot.pause()
        assert isinstance(app.screen, ClientListScreen)
        await pilot.press("ctrl+n")
        await pilot.pause()
        assert isinstance(app.screen, ClientEditor) and app.screen.client_id is None


async def test_settings_screen_saves_all_or_nothing(admin: str) -> None:
    from store.settings import load_settings
    from tui.screens.settings import SettingsScreen

    make_clients(1)
    app = StaffApp()
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot)
        await pilot.press("f9")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, SettingsScreen)
        screen.query_one("#s-invoice_days_before_due", Input).value = "21"
        screen.query_one("#s-daily_hour", Input).value = "25"
        await pilot.press("ctrl+s")
        await settle(pilot)
        assert "between 0 and 23" in str(screen.query_one("#err-daily_hour", Static).render())
        assert load_settings().invoice_days_before_due == 14  # nothing saved
        screen.query_one("#s-daily_hour", Input).value = "6"
        screen.query_one("#s-overdue_notice_days", Input).value = "2, 5, 0"
        await pilot.press("ctrl+s")
        await settle(pilot)
    saved = load_settings()
    assert (saved.invoice_days_before_due, saved.daily_hour, saved.overdue_notice_days) == (
        21,
        6,
        [2, 5, 0],
    )
    assert AuditLog.select().where(AuditLog.entity == "setting").count() == 3


async def test_support_cannot_open_settings(admin: str) -> None:
    from tui.screens.settings import SettingsScreen

    app = StaffApp()
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot, username="helpdesk")
        await pilot.press("f9")
        await pilot.pause()
        assert not isinstance(app.screen, SettingsScreen)


async def test_automation_screen_plans_and_runs(
    admin: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """p shows the run rolled back; r asks first (n changes nothing), then runs."""
    import datetime as dt

    from store.models import CronRun, Invoice, Product
    from store.models import Service as Svc
    from tui.screens.automation import AutomationScreen

    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))  # the Maildir goes here
    [c] = make_clients(1)
    Svc.create(
        client=c,
        product=Product.create(name="VPS"),
        status="Active",
        billing_cycle="Monthly",
        amount=1000,
        next_due_date=dt.date.today(),
        payment_method="banktransfer",
    )
    app = StaffApp()
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot)
        await pilot.press("f10")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, AutomationScreen)
        await pilot.press("p")
        await settle(pilot)
        status = str(screen.query_one("#automation-status", Static).render())
        assert "Dry run for" in status  # its actions depend on the hour: the daily hour
        assert Invoice.select().count() == 0 and CronRun.select().count() == 0
        await pilot.press("r")
        await pilot.pause()
        assert isinstance(app.screen, ConfirmDialog)
        await pilot.press("n")
        await settle(pilot)
        assert app.screen is screen and CronRun.select().count() == 0
        await pilot.press("r")
        await pilot.pause()
        await pilot.press("y")
        await settle(pilot)
        assert "Ran " in str(screen.query_one("#automation-status", Static).render())
        assert screen.query_one("#runs").row_count == 1  # type: ignore[attr-defined]
    assert CronRun.select().count() == 1


async def test_the_automation_screen_reads_off_the_event_loop(admin: str) -> None:
    """The health line and the run list are read in a thread worker: no query runs on
    the event loop's thread while the screen opens and shows them."""
    import logging
    import threading

    from tui.screens.automation import AutomationScreen

    make_clients(1)
    on_loop: list[str] = []

    class Watch(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if threading.current_thread() is threading.main_thread():
                on_loop.append(str(record.msg))

    app = StaffApp()
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot)
        watch = Watch()
        logger = logging.getLogger("peewee")
        logger.addHandler(watch)
        level = logger.level
        logger.setLevel(logging.DEBUG)
        try:
            await pilot.press("f10")
            await settle(pilot)
        finally:
            logger.removeHandler(watch)
            logger.setLevel(level)
        screen = app.screen
        assert isinstance(screen, AutomationScreen)
        health = str(screen.query_one("#automation-health", Static).render())
        assert health.startswith("WARNING: the daily rules have not run")
    assert on_loop == []


async def test_a_failing_run_is_reported_and_the_app_keeps_running(
    admin: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from store.models import CronRun
    from tui.screens.automation import AutomationScreen

    monkeypatch.chdir(tmp_path)  # the configuration the run reads is broken
    (tmp_path / "gobiller.toml").write_text("[smtp\nhost = 'relay [/refused]'\n")
    make_clients(1)
    app = StaffApp()
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot)
        await pilot.press("f10")
        await settle(pilot)
        await pilot.press("r")
        await pilot.pause()
        await pilot.press("y")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, AutomationScreen)
        status = str(screen.query_one("#automation-status", Static).render())
        assert status.startswith("The run failed: ") and "gobiller.toml" in status, status
        assert "Internal error" not in status, status  # a configuration error, worded so
        assert app.is_running
    assert CronRun.select().count() == 0


async def test_reference_data_screen(admin: str) -> None:
    from store.models import TaxRule
    from tui.screens.reference import RecordDialog, ReferenceScreen

    make_clients(1)
    app = StaffApp()
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot)
        await pilot.press("f11")
        await settle(pilot)
        screen = app.screen
        assert isinstance(screen, ReferenceScreen)
        screen.query_one("#tabs").active = "tax_rules"  # type: ignore[attr-defined]
        await pilot.pause()
        screen.query_one("#t-tax_rules").focus()
        await pilot.press("a")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, RecordDialog)
        for key, value in (("level", "1"), ("name", "VAT"), ("country", "gb"), ("rate", "20.5")):
            dialog.query_one(f"#r-{key}", Input).value = value
        await pilot.press("ctrl+s")
        await settle(pilot)
        rule = TaxRule.get()
        assert (rule.level, rule.name, rule.country, rule.rate_e4) == (1, "VAT", "GB", 205_000)
        screen.query_one("#t-tax_rules").focus()
        await pilot.press("a")
        await pilot.pause()
        dialog = app.screen
        for key, value in (("level", "3"), ("name", "Bad"), ("rate", "9.99999")):
            dialog.query_one(f"#r-{key}", Input).value = value
        await pilot.press("ctrl+s")
        for _ in range(100):  # saved in a thread, then the dialog opens again
            await pilot.pause(0.02)
            if isinstance(app.screen, RecordDialog):
                break
        assert isinstance(app.screen, RecordDialog)  # shown again with the errors
        await pilot.press("escape")
        await settle(pilot)
    assert TaxRule.select().count() == 1


async def test_currency_in_use_cannot_be_deleted(admin: str) -> None:
    from rules.interchange.reference import delete
    from store.models import Currency

    make_clients(1)
    admin_actor = Actor(ActorType.STAFF, "admin", Source.TUI, 1, "admin")
    with pytest.raises(RuleError, match="clients still use USD"):
        delete("currencies", {"code": "USD"}, admin_actor)
    assert Currency.select().count() == 1


async def test_a_held_write_lock_says_busy_and_keeps_the_edits(admin: str) -> None:
    """Another program holds the SQLite write lock past the wait: Save says "busy, try
    again", the app keeps running with the edits on screen, and a second Save once the
    lock is gone stores them (issue 10, item 4)."""
    import sqlite3

    from store.db import database, is_sqlite

    if not is_sqlite():
        return
    [client] = make_clients(1)
    app = StaffApp()
    async with app.run_test(size=SIZE) as pilot:
        await login(pilot)
        editor = await open_first_client(pilot)
        editor.query_one("#f-city", Input).value = "Lockport"
        database.execute_sql("PRAGMA busy_timeout = 200")  # not 10 s in a test
        other = sqlite3.connect(database.obj.database, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")
        try:
            await pilot.press("ctrl+s")
            await settle(pilot)
            shown = [n.message for n in app._notifications]
            assert any("busy" in m and "try again" in m for m in shown), shown
            assert app.is_running and app.screen is editor
            assert editor.query_one("#f-city", Input).value == "Lockport"
            assert Client.get_by_id(client.id).city == ""
        finally:
            other.execute("ROLLBACK")
            other.close()
        await pilot.press("ctrl+s")
        await settle(pilot)
    assert Client.get_by_id(client.id).city == "Lockport"


async def test_notifications_show_what_was_typed_literally(admin: str) -> None:
    """Every notification, the app's, a screen's or a widget's, is plain text: a name that
    looks like markup is neither styled nor refused (``tui.plain_notifications``)."""
    from textual.widgets._toast import Toast

    make_clients(1)
    app = StaffApp()
    async with app.run_test(size=SIZE, notifications=True) as pilot:
        await login(pilot)
        texts = ("Deleted [/x]", "Deleted [bold]VPS[/bold]", "Saved a[0]]")
        app.notify(texts[0])
        app.screen.notify(texts[1])
        app.screen.query_one(ClientTable).notify(texts[2], markup=True)
        await pilot.pause()
        await pilot.pause()
        shown = [str(toast.render()) for toast in app.screen.query(Toast)]
        assert app.is_running
    for text in texts:
        assert any(text in s for s in shown), (text, shown)
