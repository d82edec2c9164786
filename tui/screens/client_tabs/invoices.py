"""The client editor's Invoices tab and the invoice screen it opens (issue 13).

The tab lists the client's invoices (number, date, due date, date paid, status, total,
balance, payment method) under the client's credit balance; Enter opens an invoice,
``n`` creates a manual invoice, ``c`` adds credit. The invoice screen shows the items,
the tax lines with their rates, the credit applied, the transactions and the balance,
with keys to add or remove an item (Unpaid), record a payment, refund, cancel, mark
unpaid and apply credit. Every change goes through ``rules.billing.payments`` /
``rules.billing.invoices`` in a thread, carrying the invoice version the screen read,
so a payment submitted twice or against a stale screen is recorded once or refused
with the current balance. ``o`` is left free on both (the PDF viewer).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import Screen
from textual.widgets import DataTable, Footer, Static

from rules.audit import Actor
from rules.billing import invoices as invoice_rules
from rules.billing import payments
from rules.billing.invoices import ClientCredit, InvoiceDetail, InvoiceRow
from rules.errors import ValidationError
from rules.permissions import allowed
from store.models.enums import GATEWAYS
from tui.background import failure_text, off_loop
from tui.dialogs.confirm import ConfirmDialog
from tui.dialogs.form import FormDialog, FormField
from tui.open_file import open_invoice_pdf
from tui.screens.client_tabs.working_tab import WorkingTab
from tui.widgets.error_line import ErrorLine

COLUMNS = ("Number", "Date", "Due", "Paid", "Status", "Total", "Balance", "Method")
NOT_MOVED_BACK = "Next due dates already moved by the payment are not moved back."


def _cells(row: InvoiceRow) -> tuple[Text, ...]:
    return tuple(
        Text(str(v))
        for v in (
            row.number,
            row.date,
            row.due_date,
            row.date_paid or "",
            row.status,
            row.total,
            row.balance,
            row.payment_method,
        )
    )


def _load_tab(actor: Actor, client_id: int) -> tuple[list[InvoiceRow], ClientCredit, dt.date]:
    return (
        invoice_rules.list_invoices(actor, client_id=client_id),
        invoice_rules.client_credit(client_id, actor),
        payments.business_today(),
    )


def _load_invoice(actor: Actor, invoice_id: int) -> tuple[InvoiceDetail, dt.date]:
    return invoice_rules.invoice_detail(invoice_id, actor), payments.business_today()


class InvoicesTab(Vertical):
    """The Invoices tab: its own rows, read in a thread; failures beside the table."""

    DEFAULT_CSS = """
    InvoicesTab { height: 1fr; }
    InvoicesTab #invoices-credit { height: 1; }
    InvoicesTab .hint { height: 1; }
    InvoicesTab .error { padding-left: 0; }
    InvoicesTab DataTable { height: 1fr; }
    """
    BINDINGS = [
        Binding("n", "new_invoice", "New invoice", id="invoices.new"),
        Binding("c", "add_credit", "Add credit", id="invoices.add_credit"),
        Binding("o", "open_pdf", "PDF", id="invoices.open_pdf"),
        Binding("f5", "reload", "Reload", id="invoices.reload"),
    ]

    def __init__(self, actor: Actor, client_id: int | None, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.actor = actor
        self.client_id = client_id
        self.rows: list[InvoiceRow] = []
        self.billing: ClientCredit | None = None
        self.today: dt.date | None = None
        self.can_bill = allowed(actor, "client.edit_billing")

    def compose(self) -> ComposeResult:
        yield Static("", id="invoices-credit", markup=False)
        yield Static(
            "Enter open · o PDF · n new invoice · c add credit · F5 reload",
            classes="hint",
            markup=False,
        )
        yield ErrorLine(id="invoices-error")
        table: DataTable[Text] = DataTable(id="invoices-table", cursor_type="row")
        table.add_columns(*COLUMNS)
        yield table

    def on_mount(self) -> None:
        self.reload()

    def show_failure(self, text: str) -> None:
        self.query_one("#invoices-error", ErrorLine).say(text)

    @work(group="invoices-read", exclusive=True)
    async def reload(self) -> None:
        """Read the client's invoices and credit off the event loop."""
        if self.client_id is None:
            self.query_one("#invoices-credit", Static).update("Save the new client first.")
            return
        try:
            rows, billing, self.today = await off_loop(_load_tab, self.actor, self.client_id)
        except Exception as exc:  # shown beside the table; the editor stays
            self.show_failure(failure_text(exc))
            return
        self.show_failure("")
        self.rows, self.billing = rows, billing
        self.query_one("#invoices-credit", Static).update(f"Credit balance: {billing.credit}")
        table = self.query_one("#invoices-table", DataTable)
        cursor = table.cursor_row
        table.clear()
        for row in rows:
            table.add_row(*_cells(row), key=str(row.id))
        if rows:
            table.move_cursor(row=min(cursor, len(rows) - 1))

    def action_reload(self) -> None:
        self.reload()

    def action_open_pdf(self) -> None:
        """The selected invoice's PDF, in the system viewer or saved (``tui.open_file``)."""
        table = self.query_one("#invoices-table", DataTable)
        if table.row_count:
            open_pdf_of(self, self.rows[table.cursor_row].id)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        if event.row_key.value is not None:
            self.open_invoice(int(event.row_key.value))

    def changed(self) -> None:
        """After a change: read the rows again and tell the editor (summary, log, and the
        tabs of what a payment renewed)."""
        self.reload()
        self.post_message(WorkingTab.Changed(frozenset({"summary", "log"}), renewals=True))

    def open_invoice(self, invoice_id: int) -> None:
        def closed(changed: bool | None) -> None:
            if changed:
                self.changed()
            else:
                self.reload()

        self.app.push_screen(InvoiceScreen(self.actor, invoice_id), closed)

    def _refuse_without_right(self) -> bool:
        if self.client_id is None:
            self.app.notify("Save the new client first", severity="warning")
            return True
        if not self.can_bill:
            self.app.notify("Your role may not change invoices or credit", severity="warning")
            return True
        return False

    def action_new_invoice(self) -> None:
        if self._refuse_without_right() or self.today is None:
            return
        client_id, actor, today = self.client_id, self.actor, self.today
        assert client_id is not None

        def save(values: dict[str, Any]) -> Any:
            errors: dict[str, str] = {}
            if not str(values["description"]).strip():
                errors["description"] = "is required"
            parsed: dict[str, Any] = {}
            for name, parse in (
                ("date", payments.date_from_text),
                ("due_date", payments.date_from_text),
                ("amount", _signed_amount),
            ):
                try:
                    parsed[name] = parse(values[name], name)
                except ValidationError as exc:
                    errors.update(exc.errors)
            if errors:
                raise ValidationError(errors)
            try:
                return invoice_rules.create_manual_invoice(
                    client_id,
                    parsed["date"],
                    parsed["due_date"],
                    [(values["description"], parsed["amount"], bool(values["taxed"]))],
                    actor,
                )
            except ValidationError as exc:
                raise ValidationError(
                    {k.removeprefix("items[0]."): v for k, v in exc.errors.items()}
                ) from exc

        fields = [
            FormField("description", "Item"),
            FormField("amount", "Amount"),
            FormField("taxed", "Taxed", "tick", True),
            FormField("date", "Invoice date", value=today.isoformat()),
            FormField("due_date", "Due date", value=today.isoformat()),
        ]

        def done(state: Any) -> None:
            if state:
                self.app.notify(f"Invoice {state.number} created ({state.balance_text})")
                self.changed()

        dialog = FormDialog(
            "New invoice", fields, save, note="One item now; add more on the invoice (a)."
        )
        self.app.push_screen(dialog, done)

    def action_add_credit(self) -> None:
        if self._refuse_without_right():
            return
        client_id, actor = self.client_id, self.actor
        assert client_id is not None

        def save(values: dict[str, Any]) -> Any:
            amount = payments.amount_from_text(values["amount"])
            return payments.add_credit(client_id, amount, values["description"], actor)

        def done(result: Any) -> None:
            if result is not None:
                self.app.notify("Credit added")
                self.changed()

        fields = [FormField("amount", "Amount"), FormField("description", "Description")]
        self.app.push_screen(FormDialog("Add credit", fields, save), done)


async def _open_pdf(owner: InvoicesTab | InvoiceScreen, invoice_id: int) -> None:
    """Render and open the PDF off the event loop; say where it went, or why not."""
    try:
        opened = await off_loop(open_invoice_pdf, invoice_id)
    except Exception as exc:  # shown beside the table; nothing else changed
        owner.show_failure(failure_text(exc, internal="no PDF was written"))
        return
    owner.show_failure("")
    owner.app.notify(opened.message)


def open_pdf_of(owner: InvoicesTab | InvoiceScreen, invoice_id: int) -> None:
    """Open invoice ``invoice_id``'s PDF in a worker of ``owner`` (the tab or the screen)."""
    owner.run_worker(_open_pdf(owner, invoice_id), group="invoice-pdf", exclusive=True)


def _signed_amount(text: str, field: str) -> Decimal:
    return payments.amount_from_text(text, field, allow_negative=True)


class InvoiceScreen(Screen[bool]):
    """One invoice: items, tax lines, credit, transactions, balance, and its actions."""

    DEFAULT_CSS = """
    InvoiceScreen #invoice-head { height: auto; padding: 0 1; background: $boost; }
    InvoiceScreen #invoice-items { height: 1fr; }
    InvoiceScreen #invoice-totals { height: auto; padding: 0 1; }
    InvoiceScreen #invoice-transactions { height: auto; max-height: 6; }
    InvoiceScreen .error { padding-left: 1; }
    """
    BINDINGS = [
        Binding("escape", "back", "Back", id="invoice.back"),
        Binding("p", "pay", "Pay", id="invoice.pay"),
        Binding("a", "add_item", "+Item", id="invoice.add_item"),
        Binding("d", "remove_item", "-Item", id="invoice.remove_item"),
        Binding("f", "refund", "Refund", id="invoice.refund"),
        Binding("x", "cancel_invoice", "Cancel", id="invoice.cancel"),
        Binding("u", "mark_unpaid", "Unpaid", id="invoice.mark_unpaid"),
        Binding("c", "apply_credit", "Credit", id="invoice.apply_credit"),
        Binding("o", "open_pdf", "PDF", id="invoice.open_pdf"),
    ]

    def __init__(self, actor: Actor, invoice_id: int) -> None:
        super().__init__()
        self.actor = actor
        self.invoice_id = invoice_id
        self.detail: InvoiceDetail | None = None
        self.today: dt.date | None = None
        self.changed = False

    def compose(self) -> ComposeResult:
        yield Static("Loading…", id="invoice-head", markup=False)
        yield ErrorLine(id="invoice-error")
        items: DataTable[Text] = DataTable(id="invoice-items", cursor_type="row")
        items.add_columns("Type", "Description", "Amount", "Taxed")
        yield items
        yield Static("", id="invoice-totals", markup=False)
        transactions: DataTable[Text] = DataTable(id="invoice-transactions", cursor_type="row")
        transactions.add_columns("Date", "Gateway", "Reference", "In", "Out", "Description")
        yield transactions
        yield Footer()

    def on_mount(self) -> None:
        self.reload()

    def show_failure(self, text: str) -> None:
        self.query_one("#invoice-error", ErrorLine).say(text)

    @work(group="invoice-read", exclusive=True)
    async def reload(self) -> None:
        try:
            detail, self.today = await off_loop(_load_invoice, self.actor, self.invoice_id)
        except Exception as exc:
            self.show_failure(failure_text(exc))
            return
        self.show_failure("")
        self.detail = detail
        r = detail.row
        self.query_one("#invoice-head", Static).update(
            f"Invoice {r.number}  {r.status}  {detail.client_name}\n"
            f"Date {r.date}  due {r.due_date}  paid {r.date_paid or '-'}  by {r.payment_method}"
            f"  · client credit {detail.client_credit}"
        )
        items = self.query_one("#invoice-items", DataTable)
        cursor = items.cursor_row
        items.clear()
        for i in detail.items:
            items.add_row(
                Text(i.type),
                Text(i.description),
                Text(i.amount, justify="right"),
                Text("yes" if i.taxed else ""),
                key=str(i.id),
            )
        if detail.items:
            items.move_cursor(row=min(cursor, len(detail.items) - 1))
        lines = [f"Subtotal {detail.subtotal}"]
        lines += [f"{name} {amount}" for name, amount in detail.tax_lines]
        lines += [f"Credit {detail.credit}", f"Total {detail.total}", f"Balance {r.balance}"]
        self.query_one("#invoice-totals", Static).update("  ·  ".join(lines))
        table = self.query_one("#invoice-transactions", DataTable)
        table.clear()
        for t in detail.transactions:
            table.add_row(
                Text(str(t.date)),
                Text(t.gateway),
                Text(t.transaction_id),
                Text("" if t.refund else t.amount_in, justify="right"),
                Text(t.amount_out if t.refund else "", justify="right"),
                Text(t.description),
            )

    def action_open_pdf(self) -> None:
        """This invoice's PDF, in the system viewer or saved (``tui.open_file``)."""
        open_pdf_of(self, self.invoice_id)

    def action_back(self) -> None:
        self.dismiss(self.changed)

    def _ready(self) -> InvoiceDetail | None:
        if self.detail is None:
            return None
        if not allowed(self.actor, "client.edit_billing"):
            self.app.notify("Your role may not change invoices", severity="warning")
            return None
        return self.detail

    def _form(
        self,
        title: str,
        fields: list[FormField],
        save: Any,
        note: str = "",
        then: Callable[[Any], None] | None = None,
    ) -> None:
        """Open the form; once saved, read the invoice again and call ``then(result)``."""

        def done(result: Any) -> None:
            if result is not None:
                self.changed = True
                self.reload()
                if then is not None:
                    then(result)

        self.app.push_screen(FormDialog(title, fields, save, note=note), done)

    def action_pay(self) -> None:
        detail = self._ready()
        if detail is None or self.today is None:
            return
        actor, invoice_id, version, today = self.actor, self.invoice_id, detail.version, self.today
        balance = Decimal(detail.balance_minor).scaleb(-detail.currency_decimals)

        def save(values: dict[str, Any]) -> Any:
            errors: dict[str, str] = {}
            parsed: dict[str, Any] = {}
            for name, parse in (
                ("amount", payments.amount_from_text),
                ("date", payments.date_from_text),
            ):
                try:
                    parsed[name] = parse(values[name], name)
                except ValidationError as exc:
                    errors.update(exc.errors)
            if errors:
                raise ValidationError(errors)
            return payments.record_payment(
                invoice_id,
                parsed["amount"],
                values["gateway"],
                parsed["date"],
                values["transaction_id"],
                actor,
                version,
            )

        gateway = (
            detail.row.payment_method if detail.row.payment_method in GATEWAYS else "banktransfer"
        )
        self._form(
            f"Record payment: invoice {detail.row.number}",
            [
                FormField("gateway", "Gateway", "select", gateway, [(g, g) for g in GATEWAYS]),
                FormField("amount", "Amount", value=f"{balance:f}"),
                FormField("date", "Date", value=today.isoformat()),
                FormField("transaction_id", "Transaction ID"),
            ],
            save,
            note=f"Balance {detail.row.balance}",
            then=self._paid,
        )

    def _paid(self, result: Any) -> None:
        if isinstance(result, payments.PaymentResult):
            if result.already_recorded:
                self.app.notify(
                    "Already recorded: this payment was saved before", severity="warning"
                )
            elif result.paid:
                self.app.notify(
                    f"Invoice {result.state.number} is Paid: its items renew and the "
                    "confirmation is queued"
                )
            else:
                self.app.notify(f"Payment recorded; balance {result.state.balance_text}")

    def action_refund(self) -> None:
        detail = self._ready()
        if detail is None:
            return
        actor, invoice_id, version = self.actor, self.invoice_id, detail.version

        def save(values: dict[str, Any]) -> Any:
            amount = payments.amount_from_text(values["amount"])
            return payments.refund(invoice_id, amount, actor, values["transaction_id"], version)

        def then(result: Any) -> None:
            self.app.notify(f"Refunded; invoice {result.status}. {NOT_MOVED_BACK}")

        self._form(
            f"Refund: invoice {detail.row.number}",
            [FormField("amount", "Amount"), FormField("transaction_id", "Transaction ID")],
            save,
            note=NOT_MOVED_BACK,
            then=then,
        )

    def action_add_item(self) -> None:
        detail = self._ready()
        if detail is None:
            return
        actor, invoice_id, version = self.actor, self.invoice_id, detail.version

        def save(values: dict[str, Any]) -> Any:
            amount = payments.amount_from_text(values["amount"], allow_negative=True)
            return invoice_rules.add_item(
                invoice_id, values["description"], amount, bool(values["taxed"]), actor, version
            )

        self._form(
            f"Add item: invoice {detail.row.number}",
            [
                FormField("description", "Description"),
                FormField("amount", "Amount"),
                FormField("taxed", "Taxed", "tick", True),
            ],
            save,
        )

    def action_remove_item(self) -> None:
        detail = self._ready()
        if detail is None or not detail.items:
            return
        table = self.query_one("#invoice-items", DataTable)
        item = detail.items[min(table.cursor_row, len(detail.items) - 1)]
        self._confirm(
            ConfirmDialog("Remove item", f"Remove {item.description} ({item.amount})?"),
            invoice_rules.remove_item,
            self.invoice_id,
            item.id,
            self.actor,
            detail.version,
        )

    def _confirm(self, dialog: ConfirmDialog, rule: Any, *args: Any) -> None:
        """Ask; on yes, run ``rule(*args)`` in a worker."""

        def answered(yes: bool | None) -> None:
            if yes:
                self._act(rule, *args)

        self.app.push_screen(dialog, answered)

    @work(group="invoice-action")
    async def _act(self, rule: Any, *args: Any) -> Any:
        try:
            state = await off_loop(rule, *args)
        except Exception as exc:
            self.show_failure(failure_text(exc))
            return None
        self.changed = True
        self.reload()
        return state

    def action_cancel_invoice(self) -> None:
        detail = self._ready()
        if detail is None:
            return
        asked = ConfirmDialog("Cancel invoice", f"Mark invoice {detail.row.number} Cancelled?")
        self._confirm(asked, payments.cancel, self.invoice_id, self.actor, detail.version)

    def action_mark_unpaid(self) -> None:
        detail = self._ready()
        if detail is None:
            return
        asked = ConfirmDialog(
            "Mark unpaid", f"Mark invoice {detail.row.number} Unpaid? {NOT_MOVED_BACK}"
        )
        self._confirm(asked, payments.mark_unpaid, self.invoice_id, self.actor, detail.version)

    def action_apply_credit(self) -> None:
        detail = self._ready()
        if detail is None:
            return
        actor, invoice_id, version = self.actor, self.invoice_id, detail.version
        most = min(detail.balance_minor, detail.client_credit_minor)
        default = Decimal(max(most, 0)).scaleb(-detail.currency_decimals)

        def save(values: dict[str, Any]) -> Any:
            amount = payments.amount_from_text(values["amount"])
            return payments.apply_credit(invoice_id, amount, actor, version)

        self._form(
            f"Apply credit: invoice {detail.row.number}",
            [FormField("amount", "Amount", value=f"{default:f}")],
            save,
            note=f"Client credit {detail.client_credit}; balance {detail.row.balance}",
        )
