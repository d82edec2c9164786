"""The client profile editor: every field and setting of PRODUCT.md §1, keyboard first.

Save Changes (ctrl+s) sends all edited fields to ``rules.clients`` at once:
invalid fields are marked beside the field and nothing is saved; a payment
method change shows how many records follow it and asks; a currency change on
a client with history warns; a concurrent edit opens the conflict dialog.

No query runs on the event loop (issue 11): opening reads the client in a thread
worker that posts :class:`ClientLoaded`; saving runs the rule in a thread and posts
:class:`ClientSaved`; one handler (``on_worker_state_changed``) shows any failure
(a busy or failing database, a refused row, a bug) on the line under the title and
leaves the form open with its edits. A save reloads only what it changed (the profile,
the summary and the log; the services, domains and invoices too when the payment method
cascaded), and never overwrites a field typed into while it ran.

The client's account (PRODUCT.md §1 Misc, §2), in Misc and the footer: Reset & Send
Password (ctrl+r, asks first), Send portal invitation (ctrl+o, only while the client has
no password), and the Two-Factor Authentication tick, which staff can only untick (Space
on it, or ctrl+t: a reason and confirmation in ``DisableTwoFactorDialog``), never tick.
Each runs its rule in a worker and re-reads the account part; the rules check the
staff's role, and a refusal is shown on the same line as a failed save, the form's
edits untouched.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any, Self

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import Screen
from textual.widgets import (
    Button,
    Checkbox,
    DataTable,
    Footer,
    Input,
    Label,
    Select,
    Static,
    TabbedContent,
    TabPane,
    TextArea,
)
from textual.worker import Worker, WorkerState

from rules.accounts.resets import INVITE_LIFETIME, reset_and_send_password, send_portal_invitation
from rules.accounts.two_factor import disable_two_factor
from rules.audit import Actor
from rules.clients.fields import (
    ADMIN_NOTES,
    BILLING_FIELDS,
    CONTACT,
    LABELS,
    LINE_KINDS,
    MISC,
    PROFILE_FIELDS,
    SECTIONS,
    ProfileField,
    in_section,
)
from rules.clients.notes import sticky_notes_of
from rules.clients.profile import (
    CUSTOM,
    SaveResult,
    StaleEdit,
    add_contact,
    audit_of,
    contacts_of,
    create_client,
    currency_usage,
    get_client,
    payment_method_cascade,
    profile_values,
    remove_contact,
    update_client,
    update_contact,
)
from rules.clients.validation import format_phone
from rules.errors import RuleError, ValidationError
from rules.mail.log import LogEntry, email_log
from rules.permissions import allowed, require
from store.models import ClientGroup, Contact, Currency, CustomField, Email
from store.models.clients import ADDRESS_FIELDS
from store.models.enums import GATEWAYS, ClientStatus
from tui.background import failure_text, off_loop, thread_connection
from tui.dialogs.confirm import ConfirmDialog
from tui.dialogs.conflict import ConflictDialog
from tui.dialogs.contact import ContactDialog
from tui.dialogs.two_factor import DisableTwoFactorDialog
from tui.screens.client_tabs.domains import DomainsTab
from tui.screens.client_tabs.invoices import InvoicesTab
from tui.screens.client_tabs.notes import NotesTab
from tui.screens.client_tabs.services import ServicesTab
from tui.screens.client_tabs.working_tab import WorkingTab
from tui.widgets.email_table import EmailTable
from tui.widgets.error_line import ErrorLine
from tui.widgets.text_input import TextInput

#: The one-line fields of the profile (``rules.clients.fields``), in order: (name, label).
TEXT_FIELDS = tuple((f.name, f.label) for f in PROFILE_FIELDS if f.kind in LINE_KINDS)
#: The ticks with the function key that toggles each (shown in the footer).
PREFERENCES = tuple((f.name, f.label, f.key or "") for f in PROFILE_FIELDS if f.kind == "tick")


#: Every part of the editor a read can fill; a save or a contact change re-reads a few.
TAB_PARTS = ("summary", "contacts", "emails", "log")
EVERYTHING = frozenset({"form", "profile", "account", *TAB_PARTS})
TWO_FACTOR = "Two-Factor Authentication"
#: What an account action (reset, invitation, 2FA off) changes, read back after it.
ACCOUNT_PARTS = frozenset({"account", "summary", "emails", "log"})
SELECTS = ("payment_method", "billing_contact_id", "currency_id", "group_id", "status")
TABLE_COLUMNS = {
    "contacts": ("ID", "Name", "Email", "Phone"),
    "log": ("When", "Who", "Source", "Action", "Field", "Old → New"),
}


def iso(value: Any) -> str:
    """Dates as YYYY-MM-DD and times as YYYY-MM-DD HH:MM (UTC), the one format of every
    date on the editor (SQLite may hand back a date as its text: kept as is)."""
    if value is None or value == "":
        return ""
    if hasattr(value, "hour"):
        return f"{value:%Y-%m-%d %H:%M}"
    if hasattr(value, "year"):
        return f"{value:%Y-%m-%d}"
    return str(value)[:16] if len(str(value)) > 10 else str(value)


@dataclass(frozen=True)
class FormChoices:
    """What the form offers: custom fields, currencies, client groups."""

    custom_fields: list[CustomField]
    currencies: list[tuple[str, int]]
    groups: list[tuple[str, int]]
    default_currency_id: int | None


@dataclass(frozen=True)
class AccountState:
    """The client's portal account as the editor shows it: two-factor on (the tick), and
    whether a password is set (Send portal invitation is offered only without one)."""

    two_factor: bool
    has_password: bool


@dataclass
class ClientSnapshot:
    """One read of a client for the editor; a part not asked for is None/absent."""

    client_id: int | None
    form: FormChoices | None = None
    values: dict[str, Any] | None = None  # the stored profile values (rules' shapes)
    version: int = 0
    account: AccountState | None = None
    contact_options: list[tuple[str, int]] | None = None
    summary: str | None = None
    tables: dict[str, list[tuple[Any, ...]]] = field(default_factory=dict)
    emails: list[LogEntry] | None = None


def new_client_values(default_currency_id: int | None) -> dict[str, Any]:
    values: dict[str, Any] = {name: "" for name, _ in TEXT_FIELDS}
    values |= {name: False for name, _, _ in PREFERENCES}
    return values | {
        "payment_method": "banktransfer",
        "billing_contact_id": None,
        "currency_id": default_currency_id,
        "group_id": None,
        "status": ClientStatus.ACTIVE.value,
        "admin_notes": "",
        CUSTOM: {},
    }


def read_client(actor: Actor, client_id: int | None, parts: Iterable[str]) -> ClientSnapshot:
    """Read the ``parts`` of the editor (``EVERYTHING`` or some of it) through the rules.
    Runs in a worker thread: never call it on the event loop."""
    parts = frozenset(parts)
    snap = ClientSnapshot(client_id)
    if "form" in parts:
        default = Currency.get_or_none(Currency.is_default) or Currency.select().first()
        snap.form = FormChoices(
            list(CustomField.select().order_by(CustomField.sort_order)),
            [(c.code, c.id) for c in Currency.select().order_by(Currency.code)],
            [(g.name, g.id) for g in ClientGroup.select().order_by(ClientGroup.name)],
            default.id if default else None,
        )
    if client_id is None:
        if "profile" in parts:
            default_id = snap.form.default_currency_id if snap.form else None
            snap.values = new_client_values(default_id)
        return snap
    client = get_client(client_id, actor)
    contacts: list[Contact] | None = None
    if parts & {"profile", "contacts"}:
        contacts = contacts_of(client_id)
    if "profile" in parts:
        snap.values = profile_values(client)
        snap.version = client.version
        snap.contact_options = [
            (f"{c.first_name} {c.last_name} <{c.email}>", c.id) for c in contacts or []
        ]
    if "account" in parts:  # from the row just read: no query of its own
        snap.account = AccountState(bool(client.two_factor_enabled), bool(client.password_hash))
    if "summary" in parts:
        lines = [
            f"#{client_id}  {client.first_name} {client.last_name}",
            client.company,
            client.email,
            format_phone(client.phone),
            f"Status: {client.status}" + ("  (locked)" if client.status_locked else ""),
            f"Created: {iso(client.created_at)[:10]}",
            "Last login: "
            + (
                f"{iso(client.last_login_at)} UTC from {client.last_login_ip}"
                if client.last_login_at
                else "never"
            ),
            "",
            f"Admin notes:\n{client.admin_notes}" if client.admin_notes else "",
            *(
                f"Sticky note ({n.author}, {n.created_at:%Y-%m-%d}): {n.note}"
                for n in sticky_notes_of(client_id, actor)
            ),
        ]
        snap.summary = "\n".join(s for s in lines if s != "")
    if contacts is not None and "contacts" in parts:
        snap.tables["contacts"] = [
            (c.id, f"{c.first_name} {c.last_name}", c.email, format_phone(c.phone))
            for c in contacts
        ]
    if "emails" in parts:
        snap.emails = email_log(client_id=client_id, limit=500)
    if "log" in parts:
        snap.tables["log"] = [
            (
                f"{a.at:%Y-%m-%d %H:%M:%S}",
                a.actor_name,
                a.source,
                a.action,
                a.field,
                f"{a.old_value} → {a.new_value}" if a.field else a.new_value,
            )
            for a in audit_of(client_id)
        ]
    return snap


def reset_password_to(client_id: int, actor: Actor) -> str:
    """Reset & Send Password, then the address the email goes to. In a worker thread."""
    return str(Email.get_by_id(reset_and_send_password(client_id, actor)).to)


def portal_invitation_to(client_id: int, actor: Actor) -> str:
    """Send portal invitation, then the address the email goes to. In a worker thread."""
    return str(Email.get_by_id(send_portal_invitation(client_id, actor)).to)


def _display(values: dict[str, Any]) -> dict[str, Any]:
    """Stored values as the form shows them (the phone as the list shows it)."""
    return {**values, "phone": format_phone(values.get("phone") or "")}


class ContactsTable(DataTable[Text]):
    BINDINGS = [
        Binding("a", "add", "Add contact", id="contacts.add"),
        Binding("e", "edit", "Edit contact", id="contacts.edit"),
        Binding("d", "remove", "Remove contact", id="contacts.remove"),
    ]

    def action_add(self) -> None:
        self.screen.add_contact()  # type: ignore[attr-defined]

    def action_edit(self) -> None:
        self.screen.edit_contact()  # type: ignore[attr-defined]

    def action_remove(self) -> None:
        self.screen.remove_contact()  # type: ignore[attr-defined]


class TwoFactorTick(Checkbox):
    """The Two-Factor Authentication tick: staff can only untick it. Space (or a click)
    on a ticked box asks the screen (``UntickAsked``); the value changes only once the
    rule has switched two-factor off. On an unticked box it does nothing."""

    class UntickAsked(Message):
        """Staff asked to switch the client's two-factor off."""

    def toggle(self) -> Self:
        if self.value:
            self.post_message(self.UntickAsked())
        return self


class ClientEditor(Screen[None]):
    BINDINGS = [
        Binding("ctrl+s", "save", "Save Changes", id="editor.save"),
        Binding("escape", "leave", "Back", id="editor.back"),
        Binding("ctrl+r", "reset_password", "Reset password", id="editor.reset_password"),
        Binding("ctrl+t", "untick_two_factor", "2FA off", id="editor.two_factor_off"),
        Binding("ctrl+o", "portal_invitation", "Invite", id="editor.portal_invitation"),
        Binding("alt+right", "switch_tab(1)", "Next tab", show=False, id="editor.next_tab"),
        Binding("alt+left", "switch_tab(-1)", "Previous tab", show=False, id="editor.previous_tab"),
        *[
            Binding(key, f"toggle_preference('{name}')", label.split(":")[0], id=f"editor.{name}")
            for name, label, key in PREFERENCES
        ],
    ]

    class ClientLoaded(Message):
        """A read finished: ``base`` is the form as it was when the read began (fields
        still equal to it take the stored value; fields typed into meanwhile stay), or
        None to show the stored values as they are."""

        def __init__(self, snapshot: ClientSnapshot, base: dict[str, Any] | None) -> None:
            super().__init__()
            self.snapshot = snapshot
            self.base = base

    class ClientSaved(Message):
        """The rule saved: ``sent`` is the form as it was sent, ``snapshot`` the parts the
        save changed, read back (None when reading them back failed)."""

        def __init__(
            self, result: SaveResult, sent: dict[str, Any], snapshot: ClientSnapshot | None
        ) -> None:
            super().__init__()
            self.result = result
            self.sent = sent
            self.snapshot = snapshot

    def __init__(self, actor: Actor, client_id: int | None) -> None:
        super().__init__()
        self.actor = actor
        self.client_id = client_id
        self.version = 0
        self.loaded: dict[str, Any] | None = None  # None until the first read lands
        self.custom_fields: list[CustomField] = []
        self.can_bill = allowed(actor, "client.edit_billing")
        self.can_edit = allowed(actor, "client.edit_contact")
        self.saving = False
        #: The account part as last read (None until read, and for a new client).
        self.account: AccountState | None = None
        #: An account action is under way (a second one waits for it).
        self.account_busy = False
        #: Until the first read has filled the form, typed keys wait (``KeysInOrder``) and
        #: are then typed into it: a fast typist's first letters are neither lost nor
        #: overwritten by the read.
        self.holds_keys = True

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Static("", id="editor-title", markup=False)
        yield ErrorLine(id="editor-error")
        with TabbedContent(initial="profile", id="tabs", disabled=True):
            with TabPane("Summary", id="summary"):
                yield Static("", id="summary-body", markup=False)
            with TabPane("Profile", id="profile"), VerticalScroll(id="profile-form"):
                yield from self._compose_profile()
            with TabPane("Contacts", id="contacts"):
                yield Static("a add · e edit · d remove", classes="hint")
                yield ContactsTable(id="contacts-table", cursor_type="row")
            with TabPane("Products/Services", id="services"):
                yield ServicesTab(self.actor, self.client_id, id="services-tab")
            with TabPane("Domains", id="domains"):
                yield DomainsTab(self.actor, self.client_id, id="domains-tab")
            with TabPane("Notes", id="notes"):
                yield NotesTab(self.actor, self.client_id, id="notes-tab")
            with TabPane("Invoices", id="invoices"):
                yield InvoicesTab(self.actor, self.client_id, id="invoices-tab")
            with TabPane("Emails", id="emails"):
                yield EmailTable(id="emails-table")
            with TabPane("Log", id="log"):
                yield DataTable(id="log-table", cursor_type="row")
        yield Footer()

    def _compose_profile(self) -> ComposeResult:
        """The profile's sections and fields as ``rules.clients.fields`` declares them; the
        two-factor tick and the account actions end Misc, custom fields come before Admin
        notes."""
        for section in SECTIONS:
            if section == ADMIN_NOTES:
                yield Vertical(id="custom-fields")  # filled when the form's choices are read
            yield Static(section, classes="section")
            for spec in in_section(section):
                yield from self._compose_field(spec)
            if section == MISC:
                yield from self._compose_account()
        with Horizontal(classes="dialog-buttons"):
            yield Button("Save Changes (ctrl+s)", id="save", variant="primary")

    def _compose_account(self) -> ComposeResult:
        """The two-factor tick (enabled only while on: staff may untick it) and the account
        buttons, hidden until the account is read (a new client has none yet)."""
        yield TwoFactorTick(TWO_FACTOR, id="f-two_factor", disabled=True)
        with Horizontal(classes="dialog-buttons", id="account-actions") as row:
            row.display = False
            yield Button("Reset & Send Password (^R)", id="reset-password", compact=True)
            yield Button("Send portal invitation (^O)", id="portal-invitation", compact=True)

    def _compose_field(self, spec: ProfileField) -> ComposeResult:
        locked = not (self.can_edit if spec.right == CONTACT else self.can_bill)
        if spec.kind == "tick":
            label = Text(f"{spec.label}  ({(spec.key or '').upper()})")
            yield Checkbox(label, id=f"f-{spec.name}", disabled=locked)
        elif spec.kind == "notes":
            yield TextArea(id=f"f-{spec.name}", disabled=locked)
            yield ErrorLine(id=f"err-{spec.name}")
        elif spec.kind == "choice":
            options, blank = self._choices(spec.name)
            select: Select[Any] = Select(
                options,
                id=f"f-{spec.name}",
                allow_blank=blank,
                disabled=locked,
                prompt="None",
                compact=True,
            )
            yield from self._field(spec.label, select, spec.name)
        else:
            box = TextInput(id=f"f-{spec.name}", disabled=locked, compact=True)
            yield from self._field(spec.label, box, spec.name)

    @staticmethod
    def _choices(name: str) -> tuple[list[tuple[Any, Any]], bool]:
        """A choice field's options before the first read, and whether it may be blank
        (the currencies, groups and contacts come with the read)."""
        if name == "payment_method":
            return [(g, g) for g in GATEWAYS], False
        if name == "status":
            return [(s.value, s.value) for s in ClientStatus], False
        if name == "currency_id":
            return [("…", -1)], False
        return [], True

    def _field(self, label: str, widget: Any, name: str) -> ComposeResult:
        with Horizontal(classes="field"):
            yield Label(label, classes="field-label", markup=False)
            yield widget
        yield ErrorLine(id=f"err-{name.replace('.', '-')}")

    def _custom_widgets(self, specs: list[CustomField]) -> list[Any]:
        widgets: list[Any] = []
        if specs:
            widgets.append(Static("Custom client fields", classes="section"))
        for spec in specs:
            widget: Any
            if spec.type == "dropdown":
                widget = Select(
                    [(Text(o), o) for o in json.loads(spec.options)],
                    prompt="(none)",
                    id=f"c-{spec.id}",
                    compact=True,
                )
            elif spec.type == "tickbox":
                widget = Checkbox(Text(spec.name), id=f"c-{spec.id}")
            else:
                widget = TextInput(
                    id=f"c-{spec.id}", password=spec.type == "password", compact=True
                )
            widget.disabled = not self.can_edit
            row = Horizontal(
                Label(
                    spec.name + (" *" if spec.required else ""), classes="field-label", markup=False
                ),
                widget,
                classes="field",
            )
            widgets += [row, ErrorLine(id=f"err-{CUSTOM}-{spec.id}")]
        return widgets

    # ------------------------------------------------------------------ loading

    def on_mount(self) -> None:
        self.update_title()
        self.read(EVERYTHING)

    @work(thread=True, group="read", exit_on_error=False)
    def read(self, parts: Iterable[str], base: dict[str, Any] | None = None) -> None:
        """Read ``parts`` off the event loop; posts :class:`ClientLoaded`."""
        with thread_connection():
            snapshot = read_client(self.actor, self.client_id, parts)
        self.post_message(self.ClientLoaded(snapshot, base))

    async def on_client_editor_client_loaded(self, message: ClientLoaded) -> None:
        await self._apply(message.snapshot, message.base)

    async def _apply(self, snap: ClientSnapshot, base: dict[str, Any] | None) -> None:
        first = self.loaded is None
        if snap.form is not None:
            with self.prevent(Select.Changed):
                if snap.form.currencies:  # none configured: creating says so
                    self.query_one("#f-currency_id", Select).set_options(snap.form.currencies)
                self.query_one("#f-group_id", Select).set_options(
                    [(Text(name), gid) for name, gid in snap.form.groups]
                )
            if first:
                self.custom_fields = snap.form.custom_fields
                await self.query_one("#custom-fields").mount_all(
                    self._custom_widgets(self.custom_fields)
                )
        if snap.values is not None:
            if snap.contact_options is not None:
                with self.prevent(Select.Changed):
                    self.query_one("#f-billing_contact_id", Select).set_options(
                        [(Text(label), cid) for label, cid in snap.contact_options]
                    )
            self.version = snap.version
            self._show_values(_display(snap.values), base)
        if snap.account is not None:
            self._show_account(snap.account)
        if snap.summary is not None:
            self.query_one("#summary-body", Static).update(snap.summary)
        for name, rows in snap.tables.items():
            self._table(f"#{name}-table", TABLE_COLUMNS[name], rows)
        if snap.emails is not None:
            self.query_one(EmailTable).show(snap.emails)
        if first and self.loaded is not None:
            self.query_one("#tabs", TabbedContent).disabled = False
            first_name = self.query_one("#f-first_name", Input)
            self.set_focus(first_name)  # now, not later: the held keys follow its Focus
            self.holds_keys = False
        self.update_title()

    def _show_account(self, account: AccountState) -> None:
        """The tick shows two-factor and may be unticked only while it is on; the
        invitation is offered only while the client has no password."""
        self.account = account
        tick = self.query_one("#f-two_factor", TwoFactorTick)
        with self.prevent(Checkbox.Changed):
            tick.value = account.two_factor
        tick.disabled = not account.two_factor
        tick.label = f"{TWO_FACTOR}  (^T off)" if account.two_factor else TWO_FACTOR
        self.query_one("#account-actions").display = True
        self.query_one("#portal-invitation").display = not account.has_password
        self.refresh_bindings()

    def _show_values(self, stored: dict[str, Any], base: dict[str, Any] | None) -> None:
        """Show ``stored``; with ``base``, a field the user changed since ``base`` keeps
        what they typed (a read that lands late never overwrites newer typing)."""
        if base is None or self.loaded is None:
            self._fill(stored)
        else:
            form = self.read_form()
            merged = {
                k: (stored.get(k) if form.get(k) == base.get(k) else form.get(k))
                for k in form
                if k != CUSTOM
            }
            base_custom = base.get(CUSTOM, {})
            stored_custom = stored.get(CUSTOM, {})
            merged[CUSTOM] = {
                k: (stored_custom.get(k, "") if v == base_custom.get(k, "") else v)
                for k, v in form[CUSTOM].items()
            }
            self._fill(merged)
        self.loaded = stored

    def _fill(self, values: dict[str, Any]) -> None:
        """Set each widget whose value differs (an unchanged field keeps its cursor)."""
        with self.prevent(Input.Changed, Checkbox.Changed, Select.Changed, TextArea.Changed):
            for name, _ in TEXT_FIELDS:
                box = self.query_one(f"#f-{name}", Input)
                text = str(values.get(name) or "")
                if box.value != text:
                    box.value = text
            for name, _, _ in PREFERENCES:
                tick = self.query_one(f"#f-{name}", Checkbox)
                if tick.value != bool(values.get(name)):
                    tick.value = bool(values.get(name))
            for name in SELECTS:
                value = values.get(name)
                select = self.query_one(f"#f-{name}", Select)
                wanted = Select.NULL if value is None else value
                if select.value != wanted:
                    select.value = wanted
            notes = self.query_one("#f-admin_notes", TextArea)
            if notes.text != (values.get("admin_notes") or ""):
                notes.text = values.get("admin_notes") or ""
            custom = values.get(CUSTOM, {})
            for spec in self.custom_fields:
                widget = self.query_one(f"#c-{spec.id}")
                value = custom.get(spec.id, "")
                if isinstance(widget, Checkbox):
                    widget.value = value == "on"
                elif isinstance(widget, Select):
                    widget.value = value if value else Select.NULL
                elif isinstance(widget, Input) and widget.value != value:
                    widget.value = value

    def _table(self, selector: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        table = self.query_one(selector, DataTable)
        table.clear()  # the rows only: columns made again kept stale, cut-off cells
        if not table.columns:
            table.add_columns(*columns)
        for row in rows:
            table.add_row(*[Text("" if v is None else str(v)) for v in row])

    # ------------------------------------------------------------------ state

    def read_form(self) -> dict[str, Any]:
        values: dict[str, Any] = {
            name: self.query_one(f"#f-{name}", Input).value for name, _ in TEXT_FIELDS
        }
        for name, _, _ in PREFERENCES:
            values[name] = self.query_one(f"#f-{name}", Checkbox).value
        for name in SELECTS:
            value = self.query_one(f"#f-{name}", Select).value
            values[name] = None if value is Select.NULL else value
        values["admin_notes"] = self.query_one("#f-admin_notes", TextArea).text
        custom: dict[int, str] = {}
        for spec in self.custom_fields:
            widget = self.query_one(f"#c-{spec.id}")
            if isinstance(widget, Checkbox):
                custom[spec.id] = "on" if widget.value else ""
            elif isinstance(widget, Select):
                custom[spec.id] = "" if widget.value is Select.NULL else str(widget.value)
            elif isinstance(widget, Input):
                custom[spec.id] = widget.value
        values[CUSTOM] = custom
        return values

    def changes(self) -> dict[str, Any]:
        """Only what the user edited, so support staff never send billing fields."""
        if self.loaded is None:
            return {}
        form = self.read_form()
        changed = {k: v for k, v in form.items() if k != CUSTOM and v != self.loaded.get(k)}
        old_custom = self.loaded.get(CUSTOM, {})
        custom = {k: v for k, v in form[CUSTOM].items() if v != old_custom.get(k, "")}
        if custom:
            changed[CUSTOM] = custom
        return changed

    @property
    def dirty(self) -> bool:
        return bool(self.changes())

    @property
    def unsaved_label(self) -> str:
        """What the app's quit question names."""
        return f"client #{self.client_id}" if self.client_id else "a new client"

    def update_title(self) -> None:
        loaded = self.loaded or {}
        name = f"{loaded.get('first_name', '')} {loaded.get('last_name', '')}".strip()
        title = f"Client #{self.client_id}: {name}" if self.client_id else "New client"
        title += "  (alt+←/→ tabs)"
        if self.loaded is None:
            marker = "  (opening…)"
        elif self.saving:
            marker = "  (saving…)"
        else:
            marker = "  ● unsaved changes" if self.dirty else ""
        self.query_one("#editor-title", Static).update(title + marker)

    def action_switch_tab(self, step: int) -> None:
        """The next (``step`` 1) or previous (-1) tab, wrapping round, with the focus in it
        so its own keys work at once (a working tab's table, the profile's first field)."""
        tabs = self.query_one("#tabs", TabbedContent)
        if tabs.disabled:
            return
        panes = [pane for pane in tabs.query(TabPane) if pane.id]
        names = [pane.id for pane in panes]
        index = (names.index(tabs.active) + step) % len(panes) if tabs.active in names else 0
        tabs.active = str(names[index])
        target = next(
            (
                w
                for w in panes[index].query("*")
                if w.focusable and not isinstance(w, VerticalScroll)
            ),
            None,
        )
        self.set_focus(target)

    @on(Input.Changed)
    @on(Checkbox.Changed)
    @on(Select.Changed)
    @on(TextArea.Changed)
    def edited(self) -> None:
        self.update_title()

    def clear_errors(self) -> None:
        for error in self.query(".error").results(Static):
            error.update("")
            error.remove_class("-shown")
        for widget in self.query(".-invalid"):
            widget.remove_class("-invalid")

    def show_errors(self, errors: dict[str, str]) -> None:
        self.clear_errors()
        for name, reason in errors.items():
            key = name.replace(".", "-")
            try:
                error = self.query_one(f"#err-{key}", Static)
                error.update(reason)
                error.add_class("-shown")
            except Exception:  # a field without its own error line
                self.notify(f"{LABELS.get(name, name)}: {reason}", severity="error")
                continue
            target = f"#c-{name.split('.')[1]}" if name.startswith(CUSTOM) else f"#f-{name}"
            self.query_one(target).add_class("-invalid")

    def show_failure(self, text: str) -> None:
        """The line under the title says why the last action failed ("" clears it)."""
        self.query_one("#editor-error", ErrorLine).say(text)
        if text:
            self.notify(text, severity="error")

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        """The one place a failed read or save is shown: the editor and its edits stay."""
        if event.state == WorkerState.ERROR and event.worker.error is not None:
            self.holds_keys = False  # a failed first read: keys reach the screen (Esc leaves)
            self.show_failure(failure_text(event.worker.error))

    # ------------------------------------------------------------------ actions

    def action_toggle_preference(self, name: str) -> None:
        box = self.query_one(f"#f-{name}", Checkbox)
        if not box.disabled and self.loaded is not None:
            box.toggle()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_save()
        elif event.button.id == "reset-password":
            self.action_reset_password()
        elif event.button.id == "portal-invitation":
            self.action_portal_invitation()

    # ------------------------------------------------------------------ account

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """The account keys apply (and show in the footer) only when they can: reset once
        the client is read, untick while two-factor is on, invite while no password."""
        account = self.account
        if action == "reset_password":
            return account is not None
        if action == "untick_two_factor":
            return account is not None and account.two_factor
        if action == "portal_invitation":
            return account is not None and not account.has_password
        return True

    def _client_label(self) -> str:
        loaded = self.loaded or {}
        name = f"{loaded.get('first_name', '')} {loaded.get('last_name', '')}".strip()
        return f"Client #{self.client_id} ({name})" if name else f"Client #{self.client_id}"

    def _account_action(self, action: str) -> bool:
        """Whether ``action`` may start now (one account action at a time)."""
        if not self.check_action(action, ()) or self.client_id is None:
            return False
        if self.account_busy:
            self.notify("Still working on the last account action…")
            return False
        self.account_busy = True
        return True

    def action_reset_password(self) -> None:
        if self._account_action("reset_password"):
            self._reset_password()

    def action_untick_two_factor(self) -> None:
        if self._account_action("untick_two_factor"):
            self._untick_two_factor()

    def on_two_factor_tick_untick_asked(self) -> None:
        self.action_untick_two_factor()

    def action_portal_invitation(self) -> None:
        if self._account_action("portal_invitation"):
            self._portal_invitation()

    @work(group="account", exit_on_error=False)
    async def _reset_password(self) -> None:
        """Reset & Send Password (PRODUCT.md §2): asks, then the rule in a thread. A
        refusal (the role, a Closed client, a disabled template) raises: the one failure
        handler shows it."""
        assert self.client_id is not None
        client_id = self.client_id
        try:
            require(self.actor, "client.password")  # the rules' own check, before asking
            email = (self.loaded or {}).get("email", "")
            if not await self.app.push_screen_wait(
                ConfirmDialog(
                    "Reset & Send Password",
                    f"Email {self._client_label()} a new generated password at {email}? "
                    "The current password stops working now, and the client must change "
                    "the new one at the next login.",
                    yes="Reset and send",
                )
            ):
                return
            self.show_failure("")
            to = await off_loop(reset_password_to, client_id, self.actor)
        finally:
            self.account_busy = False
        self.notify(f"New password queued for {to} (sent at the next mail delivery)")
        self.read(ACCOUNT_PARTS)

    @work(group="account", exit_on_error=False)
    async def _portal_invitation(self) -> None:
        """Send portal invitation (PRODUCT.md §2): a set-password link, valid 7 days, for a
        client with no password; asks first. Refusals as for the reset."""
        assert self.client_id is not None
        client_id = self.client_id
        days = INVITE_LIFETIME.days
        try:
            require(self.actor, "client.password")
            email = (self.loaded or {}).get("email", "")
            if not await self.app.push_screen_wait(
                ConfirmDialog(
                    "Send portal invitation",
                    f"Email {self._client_label()} a link to set a portal password at "
                    f"{email}? The link is valid {days} days.",
                    yes="Send",
                )
            ):
                return
            self.show_failure("")
            to = await off_loop(portal_invitation_to, client_id, self.actor)
        finally:
            self.account_busy = False
        self.notify(f"Portal invitation queued for {to} (link valid {days} days)")
        self.read(ACCOUNT_PARTS)

    @work(group="account", exit_on_error=False)
    async def _untick_two_factor(self) -> None:
        """Untick Two-Factor Authentication (PRODUCT.md §1): the dialog asks the reason and
        runs the rule; cancelled, the tick stays on. Staff can never tick it on."""
        assert self.client_id is not None
        label = self._client_label()
        disable = partial(disable_two_factor, self.client_id, actor=self.actor)
        try:
            require(self.actor, "client.2fa")  # the rules' own check, before asking
            done = await self.app.push_screen_wait(DisableTwoFactorDialog(label, disable))
        finally:
            self.account_busy = False
        if not done:
            return
        self.show_failure("")
        if self.account is not None:
            self._show_account(replace(self.account, two_factor=False))
        self.notify(
            f"Two-factor authentication is off for {label}; the client email is queued",
            markup=False,
        )
        self.read(ACCOUNT_PARTS)

    def action_save(self) -> None:
        if self.loaded is None:
            return
        if self.saving:
            self.notify("Still saving…")
            return
        self.saving = True
        self.update_title()
        self._save()

    @work(group="save", exit_on_error=False)
    async def _save(self) -> None:
        try:
            await self._save_steps()
        finally:
            self.saving = False
            self.update_title()

    async def _save_steps(self) -> None:
        changes = self.changes()
        if not changes:
            self.notify("Nothing to save")
            return
        self.show_failure("")
        sent = self.read_form()
        if self.client_id is None:
            await self._create(sent)
            return
        assert self.loaded is not None
        if "payment_method" in changes:
            count = await off_loop(
                payment_method_cascade, self.client_id, self.loaded["payment_method"]
            )
            if count.total and not await self.app.push_screen_wait(
                ConfirmDialog(
                    "Change payment method",
                    f"Changing the payment method to {changes['payment_method']} also updates "
                    f"{count.services} services, {count.addons} addons, {count.domains} domains "
                    f"and {count.unpaid_invoices} unpaid invoices that use "
                    f"{self.loaded['payment_method']}.",
                    yes="Update all",
                )
            ):
                return
        if "currency_id" in changes:
            usage = await off_loop(currency_usage, self.client_id)
            if usage.in_use and not await self.app.push_screen_wait(
                ConfirmDialog(
                    "Change currency",
                    f"This client has {usage.invoices} invoices, {usage.services} services and "
                    f"{usage.transactions} transactions. Changing the currency only changes the "
                    "symbol: no price, invoice or transaction is converted.",
                    yes="Change symbol",
                )
            ):
                return
        await self._update(changes, sent)

    def _save_and_read(
        self, client_id: int, version: int, changes: dict[str, Any]
    ) -> tuple[SaveResult, ClientSnapshot | None]:
        """In a worker thread: the rule, then a read of only what it changed."""
        result = update_client(client_id, version, changes, self.actor)
        parts = {"profile", "summary", "log"}
        try:
            return result, read_client(self.actor, client_id, parts)
        except Exception:  # saved; the screen says the read back failed
            return result, None

    async def _update(self, changes: dict[str, Any], sent: dict[str, Any]) -> None:
        assert self.client_id is not None
        try:
            result, snapshot = await off_loop(
                self._save_and_read, self.client_id, self.version, changes
            )
        except ValidationError as exc:
            self.show_errors(exc.errors)
            self.notify(
                f"Nothing saved: {len(exc.errors)} field(s) need attention", severity="error"
            )
            return
        except StaleEdit as exc:
            await self._conflict(changes, sent, exc)
            return
        self.post_message(self.ClientSaved(result, sent, snapshot))

    async def on_client_editor_client_saved(self, message: ClientSaved) -> None:
        self.clear_errors()
        result = message.result
        if message.snapshot is None:  # saved, but the read back failed: keep the form
            self.version = result.version
            self.loaded = message.sent
            self.show_failure("Saved; the stored values could not be read back: reopen the client")
        else:
            await self._apply(message.snapshot, message.sent)
        if result.cascaded or "currency_id" in result.changed:
            self.reload_working_tabs()  # their methods or the currency they show changed
        extra = (
            f"; {result.cascaded} records follow the new payment method" if result.cascaded else ""
        )
        self.notify(f"Saved {len(result.changed)} change(s){extra}")

    def reload_working_tabs(self) -> None:
        """Each working tab reads its rows again (for this client: a new one has an id now)."""
        for tab in self.query(WorkingTab):
            tab.client_id = self.client_id
            tab.reload()
        invoices = self.query_one(InvoicesTab)
        invoices.client_id = self.client_id
        invoices.reload()

    def on_working_tab_changed(self, message: WorkingTab.Changed) -> None:
        """A tab saved something: the summary and the activity log follow; after money
        moved, the services, addons and domains it renewed too."""
        self.read(message.parts)
        if message.renewals:
            for tab in self.query(WorkingTab):
                tab.reload()

    async def _conflict(
        self, changes: dict[str, Any], sent: dict[str, Any], stale: StaleEdit
    ) -> None:
        """Someone saved meanwhile: each field either side changed, mine beside theirs."""
        assert self.loaded is not None
        theirs = _display(stale.current)
        rows: list[tuple[str, Any, Any]] = []
        for name in dict.fromkeys([*changes, *(k for k in theirs if k != CUSTOM)]):
            if name == CUSTOM:
                continue
            if name in changes or theirs.get(name) != self.loaded.get(name):
                rows.append((LABELS.get(name, name), sent.get(name), theirs.get(name)))
        names = {spec.id: spec.name for spec in self.custom_fields}
        stored_custom = theirs.get(CUSTOM, {})
        old_custom = self.loaded.get(CUSTOM, {})
        for field_id in dict.fromkeys([*changes.get(CUSTOM, {}), *stored_custom]):
            mine = sent[CUSTOM].get(field_id, "")
            stored = stored_custom.get(field_id, "")
            if field_id in changes.get(CUSTOM, {}) or stored != old_custom.get(field_id, ""):
                rows.append((names.get(field_id, f"custom field {field_id}"), mine, stored))
        choice = await self.app.push_screen_wait(ConflictDialog(rows))
        if choice == "reload":
            self.version = stale.version
            self._show_values(theirs, None)
            self.update_title()
            self.read({"summary", "log"})
            self.notify("Reloaded the stored values; your edits were discarded")
        elif choice == "reapply":
            self.version = stale.version
            await self._update(changes, sent)

    async def _create(self, sent: dict[str, Any]) -> None:
        values = {k: v for k, v in sent.items() if v not in ("", None) or k in BILLING_FIELDS}
        values.pop("billing_contact_id", None)
        if not self.can_bill:
            values = {k: v for k, v in values.items() if k not in BILLING_FIELDS}
        try:
            client = await off_loop(create_client, values, self.actor)
        except ValidationError as exc:
            self.show_errors(exc.errors)
            self.notify(
                f"Nothing saved: {len(exc.errors)} field(s) need attention", severity="error"
            )
            return
        self.clear_errors()
        self.client_id = client.id
        self.reload_working_tabs()
        self.read(EVERYTHING - {"form"}, base=sent)
        self.notify(f"Client #{client.id} created")

    @work(exclusive=True, group="leave")
    async def action_leave(self) -> None:
        if await self.confirm_discard():
            self.dismiss(None)

    async def confirm_discard(self) -> bool:
        """True when there is nothing unsaved, or staff chose to discard it."""
        if not self.dirty:
            return True
        answer: bool = await self.app.push_screen_wait(
            ConfirmDialog(
                "Unsaved changes",
                "Leave this client and discard your unsaved changes?",
                yes="Discard",
                no="Stay",
            )
        )
        return answer

    # ------------------------------------------------------------------ contacts

    def _selected_contact_id(self) -> int | None:
        table = self.query_one("#contacts-table", DataTable)
        if table.row_count == 0:
            return None
        return int(str(table.get_row_at(table.cursor_row)[0]))

    @work(exclusive=True, group="contact", exit_on_error=False)
    async def add_contact(self) -> None:
        if self.client_id is None:
            self.notify("Save the new client before adding contacts", severity="warning")
            return
        client_id = self.client_id
        await self._contact_dialog(
            "Add contact", {}, lambda values: add_contact(client_id, values, self.actor)
        )

    @work(exclusive=True, group="contact", exit_on_error=False)
    async def edit_contact(self) -> None:
        contact_id = self._selected_contact_id()
        if contact_id is None:
            return
        contact = await off_loop(Contact.get_by_id, contact_id)
        await self._contact_dialog(
            "Edit contact",
            {k: getattr(contact, k) for k in ADDRESS_FIELDS},
            lambda values: update_contact(contact_id, values, self.actor),
        )

    async def _contact_dialog(
        self, title: str, values: dict[str, Any] | None, save: Callable[[dict[str, Any]], Any]
    ) -> None:
        """The dialog saves (errors beside its fields); then re-read what a contact
        changes: the table, the billing contact choices, the log."""
        if await self.app.push_screen_wait(ContactDialog(title, values, save)):
            self._reread_contacts()

    @work(exclusive=True, group="contact", exit_on_error=False)
    async def remove_contact(self) -> None:
        contact_id = self._selected_contact_id()
        if contact_id is None:
            return
        if await self.app.push_screen_wait(
            ConfirmDialog("Remove contact", f"Remove contact #{contact_id}?", yes="Remove")
        ):
            try:
                await off_loop(remove_contact, contact_id, self.actor)
            except RuleError as exc:
                self.notify(str(exc), severity="error")
                return
            self._reread_contacts()

    def _reread_contacts(self) -> None:
        self.read({"profile", "contacts", "summary", "log"}, base=self.loaded)

    def on_email_table_resent(self) -> None:
        if self.client_id is not None:
            self.read({"emails", "log"})
