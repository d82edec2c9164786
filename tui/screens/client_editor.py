"""The client profile editor: every field and setting of PRODUCT.md §1, keyboard first.

Save Changes (ctrl+s) sends all edited fields to ``rules.clients.profile`` at once:
invalid fields are marked beside the field and nothing is saved; a payment
method change shows how many records follow it and asks; a currency change on
a client with history warns; a concurrent edit opens the conflict dialog.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from rich.text import Text
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, VerticalScroll
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

from rules.audit import Actor
from rules.clients.profile import (
    BILLING_FIELDS,
    CUSTOM,
    StaleEdit,
    add_contact,
    addons_of,
    audit_of,
    contacts_of,
    create_client,
    currency_usage,
    domains_of,
    get_client,
    invoices_of,
    payment_method_cascade,
    profile_values,
    remove_contact,
    services_of,
    update_client,
)
from rules.clients.validation import format_phone
from rules.errors import RuleError, ValidationError
from rules.mail.log import email_log
from rules.permissions import allowed
from store.models import Client, ClientGroup, Currency, CustomField
from store.models.clients import ADDRESS_FIELDS
from store.models.enums import GATEWAYS, ClientStatus
from store.money import format_money
from tui.dialogs.confirm import ConfirmDialog
from tui.dialogs.conflict import ConflictDialog
from tui.dialogs.contact import ContactDialog
from tui.widgets.email_table import EmailTable
from tui.widgets.error_line import ErrorLine

TEXT_FIELDS = (
    ("first_name", "First name"),
    ("last_name", "Last name"),
    ("company", "Company"),
    ("email", "Email address"),
    ("address1", "Address 1"),
    ("address2", "Address 2"),
    ("city", "City"),
    ("state", "State/Region"),
    ("postcode", "Postcode"),
    ("country", "Country (ISO code)"),
    ("phone", "Phone number"),
    ("tax_id", "Tax ID"),
    ("language", "Language"),
)
#: Billing preferences with the function key that toggles each (shown in the footer).
PREFERENCES = (
    ("late_fees_exempt", "Late Fees: exempt", "f2"),
    ("overdue_notices_disabled", "Don't Send Overdue Emails", "f3"),
    ("tax_exempt", "Tax Exempt", "f4"),
    ("separate_invoices", "Separate Invoices", "f5"),
    ("cc_processing_disabled", "Disable CC Processing", "f6"),
    ("status_locked", "Status Update: locked", "f7"),
    ("marketing_opt_out", "Marketing Emails Opt-out", "f8"),
)
LABELS = (
    dict(TEXT_FIELDS)
    | {name: label for name, label, _ in PREFERENCES}
    | {
        "payment_method": "Payment Method",
        "billing_contact_id": "Billing Contact",
        "currency_id": "Currency",
        "group_id": "Client Group",
        "status": "Status",
        "admin_notes": "Admin Notes",
    }
)


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


class ClientEditor(Screen[None]):
    BINDINGS = [
        Binding("ctrl+s", "save", "Save Changes", id="editor.save"),
        Binding("escape", "leave", "Back", id="editor.back"),
        *[
            Binding(key, f"toggle_preference('{name}')", label.split(":")[0], id=f"editor.{name}")
            for name, label, key in PREFERENCES
        ],
    ]

    def __init__(self, actor: Actor, client_id: int | None) -> None:
        super().__init__()
        self.actor = actor
        self.client_id = client_id
        self.version = 0
        self.loaded: dict[str, Any] = {}
        self.custom_fields = list(CustomField.select().order_by(CustomField.sort_order))
        self.can_bill = allowed(actor, "client.edit_billing")
        self.can_edit = allowed(actor, "client.edit_contact")

    # ------------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Static("", id="editor-title", markup=False)
        with TabbedContent(initial="profile", id="tabs"):
            with TabPane("Summary", id="summary"):
                yield Static("", id="summary-body", markup=False)
            with TabPane("Profile", id="profile"), VerticalScroll(id="profile-form"):
                yield from self._compose_profile()
            with TabPane("Contacts", id="contacts"):
                yield Static("a add · e edit · d remove", classes="hint")
                yield ContactsTable(id="contacts-table", cursor_type="row")
            with TabPane("Products/Services", id="services"):
                yield DataTable(id="services-table", cursor_type="row")
            with TabPane("Domains", id="domains"):
                yield DataTable(id="domains-table", cursor_type="row")
            with TabPane("Invoices", id="invoices"):
                yield DataTable(id="invoices-table", cursor_type="row")
            with TabPane("Emails", id="emails"):
                yield EmailTable(id="emails-table")
            with TabPane("Log", id="log"):
                yield DataTable(id="log-table", cursor_type="row")
        yield Footer()

    def _compose_profile(self) -> ComposeResult:
        yield Static("Contact details", classes="section")
        for name, label in TEXT_FIELDS:
            yield from self._field(
                label, Input(id=f"f-{name}", disabled=not self.can_edit, compact=True), name
            )
        yield Static("Billing preferences", classes="section")
        for name, label, key in PREFERENCES[:5]:
            yield Checkbox(
                Text(f"{label}  ({key.upper()})"), id=f"f-{name}", disabled=not self.can_bill
            )
        currencies = [(c.code, c.id) for c in Currency.select().order_by(Currency.code)]
        groups = [(Text(g.name), g.id) for g in ClientGroup.select().order_by(ClientGroup.name)]
        for name, options, blank in (
            ("payment_method", [(g, g) for g in GATEWAYS], False),
            ("billing_contact_id", [], True),
            ("currency_id", currencies, False),
            ("group_id", groups, True),
        ):
            select: Select[Any] = Select(
                options,
                id=f"f-{name}",
                allow_blank=blank,
                disabled=not self.can_bill,
                prompt="None",
                compact=True,
            )
            yield from self._field(LABELS[name], select, name)
        yield Static("Status", classes="section")
        status: Select[str] = Select(
            [(s.value, s.value) for s in ClientStatus],
            id="f-status",
            allow_blank=False,
            disabled=not self.can_bill,
            compact=True,
        )
        yield from self._field("Status", status, "status")
        name, label, key = PREFERENCES[5]
        yield Checkbox(
            Text(f"{label}  ({key.upper()})"), id=f"f-{name}", disabled=not self.can_bill
        )
        yield Static("Misc", classes="section")
        name, label, key = PREFERENCES[6]
        yield Checkbox(
            Text(f"{label}  ({key.upper()})"), id=f"f-{name}", disabled=not self.can_bill
        )
        yield Checkbox("Two-Factor Authentication (read-only)", id="f-two_factor", disabled=True)
        if self.custom_fields:
            yield Static("Custom client fields", classes="section")
        for spec in self.custom_fields:
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
                widget = Input(id=f"c-{spec.id}", password=spec.type == "password", compact=True)
            widget.disabled = not self.can_edit
            yield from self._field(
                spec.name + (" *" if spec.required else ""), widget, f"{CUSTOM}.{spec.id}"
            )
        yield Static("Admin notes", classes="section")
        yield TextArea(id="f-admin_notes", disabled=not self.can_edit)
        yield ErrorLine(id="err-admin_notes")
        with Horizontal(classes="dialog-buttons"):
            yield Button("Save Changes (ctrl+s)", id="save", variant="primary")

    def _field(self, label: str, widget: Any, name: str) -> ComposeResult:
        with Horizontal(classes="field"):
            yield Label(label, classes="field-label", markup=False)
            yield widget
        yield ErrorLine(id=f"err-{name.replace('.', '-')}")

    # ------------------------------------------------------------------ loading

    def on_mount(self) -> None:
        self.load()
        self.query_one("#f-first_name", Input).focus()

    def load(self) -> None:
        """Fill the form from the database (or defaults for a new client)."""
        if self.client_id is None:
            currency = Currency.get_or_none(Currency.is_default) or Currency.select().first()
            values: dict[str, Any] = {name: "" for name, _ in TEXT_FIELDS}
            values |= {name: False for name, _, _ in PREFERENCES}
            values |= {
                "payment_method": "banktransfer",
                "billing_contact_id": None,
                "currency_id": currency.id if currency else None,
                "group_id": None,
                "status": ClientStatus.ACTIVE.value,
                "admin_notes": "",
                CUSTOM: {},
            }
            self.version = 0
            two_factor = False
        else:
            client = get_client(self.client_id, self.actor)
            values = profile_values(client)
            self.version = client.version
            two_factor = client.two_factor_enabled
            self._load_tabs(client)
        self.loaded = values
        self._fill(values)
        self.query_one("#f-two_factor", Checkbox).value = two_factor
        self.clear_errors()
        self.update_title()

    def _fill(self, values: dict[str, Any]) -> None:
        with self.prevent(Input.Changed, Checkbox.Changed, Select.Changed, TextArea.Changed):
            for name, _ in TEXT_FIELDS:
                self.query_one(f"#f-{name}", Input).value = str(values.get(name) or "")
            for name, _, _ in PREFERENCES:
                self.query_one(f"#f-{name}", Checkbox).value = bool(values.get(name))
            contacts = contacts_of(self.client_id) if self.client_id else []
            contact_select = self.query_one("#f-billing_contact_id", Select)
            contact_select.set_options(
                [(Text(f"{c.first_name} {c.last_name} <{c.email}>"), c.id) for c in contacts]
            )
            for name in (
                "payment_method",
                "billing_contact_id",
                "currency_id",
                "group_id",
                "status",
            ):
                value = values.get(name)
                self.query_one(f"#f-{name}", Select).value = Select.NULL if value is None else value
            self.query_one("#f-admin_notes", TextArea).text = values.get("admin_notes") or ""
            custom = values.get(CUSTOM, {})
            for spec in self.custom_fields:
                widget = self.query_one(f"#c-{spec.id}")
                value = custom.get(spec.id, "")
                if isinstance(widget, Checkbox):
                    widget.value = value == "on"
                elif isinstance(widget, Select):
                    widget.value = value if value else Select.NULL
                elif isinstance(widget, Input):
                    widget.value = value

    def _load_tabs(self, client: Client) -> None:
        cid = client.id
        summary = [
            f"#{cid}  {client.first_name} {client.last_name}",
            client.company,
            client.email,
            format_phone(client.phone),
            f"Status: {client.status}" + ("  (locked)" if client.status_locked else ""),
            f"Created: {client.created_at:%Y-%m-%d}",
            "Last login: "
            + (
                f"{client.last_login_at:%Y-%m-%d %H:%M} UTC from {client.last_login_ip}"
                if client.last_login_at
                else "never"
            ),
            "",
            f"Admin notes:\n{client.admin_notes}" if client.admin_notes else "",
        ]
        self.query_one("#summary-body", Static).update("\n".join(s for s in summary if s != ""))
        self._table(
            "#contacts-table",
            ("ID", "Name", "Email", "Phone"),
            [
                (c.id, f"{c.first_name} {c.last_name}", c.email, format_phone(c.phone))
                for c in contacts_of(cid)
            ],
        )
        currency = Currency.get_by_id(client.currency_id)

        def money(minor: int) -> str:
            return format_money(minor, currency)

        self._table(
            "#services-table",
            ("ID", "Product", "Domain", "Status", "Cycle", "Amount", "Next due", "Method"),
            [
                (
                    s.id,
                    getattr(s, "product_name", ""),
                    s.domain,
                    s.status,
                    s.billing_cycle,
                    money(s.amount),
                    s.next_due_date,
                    s.payment_method,
                )
                for s in services_of(cid)
            ]
            + [
                (
                    f"+{a.id}",
                    a.name,
                    "",
                    a.status,
                    a.billing_cycle,
                    money(a.amount),
                    a.next_due_date,
                    a.payment_method,
                )
                for a in addons_of(cid)
            ],
        )
        self._table(
            "#domains-table",
            ("ID", "Domain", "Status", "Amount", "Next due", "Method"),
            [
                (d.id, d.name, d.status, money(d.amount), d.next_due_date, d.payment_method)
                for d in domains_of(cid)
            ],
        )
        self._table(
            "#invoices-table",
            ("Number", "Date", "Due", "Paid", "Status", "Total", "Method"),
            [
                (
                    i.number,
                    i.date,
                    i.due_date,
                    i.date_paid or "",
                    i.status,
                    money(i.total),
                    i.payment_method,
                )
                for i in invoices_of(cid)
            ],
        )
        self.query_one(EmailTable).show(email_log(client_id=cid, limit=500))
        self._table(
            "#log-table",
            ("When", "Who", "Source", "Action", "Field", "Old → New"),
            [
                (
                    f"{a.at:%Y-%m-%d %H:%M:%S}",
                    a.actor_name,
                    a.source,
                    a.action,
                    a.field,
                    f"{a.old_value} → {a.new_value}" if a.field else a.new_value,
                )
                for a in audit_of(cid)
            ],
        )

    def _table(self, selector: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
        table = self.query_one(selector, DataTable)
        table.clear(columns=True)
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
        for name in ("payment_method", "billing_contact_id", "currency_id", "group_id", "status"):
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

    def update_title(self) -> None:
        name = f"{self.loaded.get('first_name', '')} {self.loaded.get('last_name', '')}".strip()
        title = f"Client #{self.client_id}: {name}" if self.client_id else "New client"
        marker = "  ● unsaved changes" if self.dirty else ""
        self.query_one("#editor-title", Static).update(title + marker)

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

    # ------------------------------------------------------------------ actions

    def action_toggle_preference(self, name: str) -> None:
        box = self.query_one(f"#f-{name}", Checkbox)
        if not box.disabled:
            box.toggle()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "save":
            self.action_save()

    @work(exclusive=True, group="save")
    async def action_save(self) -> None:
        changes = self.changes()
        if not changes:
            self.notify("Nothing to save")
            return
        if self.client_id is None:
            self._create(self.read_form())
            return
        if "payment_method" in changes:
            count = payment_method_cascade(self.client_id, self.loaded["payment_method"])
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
            usage = currency_usage(self.client_id)
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
        await self._update(changes)

    async def _update(self, changes: dict[str, Any]) -> None:
        assert self.client_id is not None
        try:
            result = update_client(self.client_id, self.version, changes, self.actor)
        except ValidationError as exc:
            self.show_errors(exc.errors)
            self.notify(
                f"Nothing saved: {len(exc.errors)} field(s) need attention", severity="error"
            )
            return
        except StaleEdit as exc:
            await self._conflict(changes, exc)
            return
        except RuleError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        self.load()
        extra = (
            f"; {result.cascaded} records follow the new payment method" if result.cascaded else ""
        )
        self.notify(f"Saved {len(result.changed)} change(s){extra}")

    async def _conflict(self, changes: dict[str, Any], stale: StaleEdit) -> None:
        rows = []
        for name, mine in changes.items():
            if name == CUSTOM:
                for field_id, value in mine.items():
                    rows.append(
                        (f"custom field {field_id}", value, stale.current[CUSTOM].get(field_id, ""))
                    )
            else:
                rows.append((LABELS.get(name, name), mine, stale.current.get(name)))
        choice = await self.app.push_screen_wait(ConflictDialog(rows))
        if choice == "reload":
            self.load()
            self.notify("Reloaded the stored values; your edits were discarded")
        elif choice == "reapply":
            self.version = stale.version
            await self._update(changes)

    def _create(self, values: dict[str, Any]) -> None:
        values = {k: v for k, v in values.items() if v not in ("", None) or k in BILLING_FIELDS}
        values.pop("billing_contact_id", None)
        if not self.can_bill:
            values = {k: v for k, v in values.items() if k not in BILLING_FIELDS}
        try:
            client = create_client(values, self.actor)
        except ValidationError as exc:
            self.show_errors(exc.errors)
            self.notify(
                f"Nothing saved: {len(exc.errors)} field(s) need attention", severity="error"
            )
            return
        except RuleError as exc:
            self.notify(str(exc), severity="error", markup=False)
            return
        self.client_id = client.id
        self.load()
        self.notify(f"Client #{client.id} created")

    @work(exclusive=True, group="leave")
    async def action_leave(self) -> None:
        if self.dirty and not await self.app.push_screen_wait(
            ConfirmDialog(
                "Unsaved changes",
                "Leave this client and discard your unsaved changes?",
                yes="Discard",
                no="Stay",
            )
        ):
            return
        self.dismiss(None)

    # ------------------------------------------------------------------ contacts

    def _selected_contact_id(self) -> int | None:
        table = self.query_one("#contacts-table", DataTable)
        if table.row_count == 0:
            return None
        return int(str(table.get_row_at(table.cursor_row)[0]))

    @work(exclusive=True, group="contact")
    async def add_contact(self) -> None:
        if self.client_id is None:
            self.notify("Save the new client before adding contacts", severity="warning")
            return
        client_id = self.client_id
        await self._contact_dialog(
            "Add contact", {}, lambda values: add_contact(client_id, values, self.actor)
        )

    @work(exclusive=True, group="contact")
    async def edit_contact(self) -> None:
        from rules.clients.profile import update_contact
        from store.models import Contact

        contact_id = self._selected_contact_id()
        if contact_id is None:
            return
        contact = Contact.get_by_id(contact_id)
        await self._contact_dialog(
            "Edit contact",
            {k: getattr(contact, k) for k in ADDRESS_FIELDS},
            lambda values: update_contact(contact_id, values, self.actor),
        )

    async def _contact_dialog(
        self, title: str, values: dict[str, Any] | None, save: Callable[[dict[str, Any]], Any]
    ) -> None:
        """The dialog saves (errors beside its fields); then reload the tabs."""
        if await self.app.push_screen_wait(ContactDialog(title, values, save)):
            self._reload_keeping_edits()

    @work(exclusive=True, group="contact")
    async def remove_contact(self) -> None:
        contact_id = self._selected_contact_id()
        if contact_id is None:
            return
        if await self.app.push_screen_wait(
            ConfirmDialog("Remove contact", f"Remove contact #{contact_id}?", yes="Remove")
        ):
            try:
                remove_contact(contact_id, self.actor)
            except RuleError as exc:
                self.notify(str(exc), severity="error", markup=False)
                return
            self._reload_keeping_edits()

    def on_email_table_resent(self) -> None:
        if self.client_id is not None:
            self.query_one(EmailTable).show(email_log(client_id=self.client_id, limit=500))

    def _reload_keeping_edits(self) -> None:
        """Contacts changed (and maybe the version): reload, then put unsaved edits back."""
        edits = self.changes()
        self.load()
        if edits:
            merged = dict(self.read_form()) | {k: v for k, v in edits.items() if k != CUSTOM}
            merged[CUSTOM] = self.read_form()[CUSTOM] | edits.get(CUSTOM, {})
            self._fill(merged)
            self.update_title()
