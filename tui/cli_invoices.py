"""``gobiller invoice``: invoices headless (PRODUCT.md §5): list, show, pay.

Thin callers of ``rules.billing.invoices`` and ``rules.billing.payments``; more
commands join the group with ``invoice_group.add_command`` (the PDF command does). A
refusal is one line (with ``--json``, ``{"error": ...}``) and the exit codes of
``tui.exits``, through the command group of ``tui.cli``. Never imports Textual.
"""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal, InvalidOperation
from typing import Any

import click

from tui.cli_common import DATE
from tui.cli_common import RECORD_ID as CLIENT_ID
from tui.cli_common import emit as _emit
from tui.cli_pdf import invoice_pdf

#: ``store.models.enums.InvoiceStatus`` spelled out: importing it would load peewee (a
#: test checks the two agree).
INVOICE_STATUSES = (
    "Draft",
    "Unpaid",
    "Paid",
    "Cancelled",
    "Refunded",
    "Collections",
    "Payment Pending",
)
#: ``store.models.enums.GATEWAYS`` spelled out, likewise.
GATEWAY_NAMES = ("banktransfer", "mailin", "sandboxcard")


class AmountParam(click.ParamType):
    """A decimal amount such as ``9.99`` (never a float); the currency's decimals are
    checked by the rule."""

    name = "AMOUNT"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, Decimal):
            return value
        text = str(value).strip()
        try:
            amount = Decimal(text)
        except InvalidOperation:
            self.fail(f"{value!r} is not an amount such as 9.99", param, ctx)
        if not amount.is_finite() or any(c not in "0123456789.-" for c in text):
            self.fail(f"{value!r} is not an amount such as 9.99", param, ctx)
        return amount


@click.group("invoice")
def invoice_group() -> None:
    """Invoices: list, show, record a payment."""


@invoice_group.command("list")
@click.option("--client", "client_id", type=CLIENT_ID, help="Only this client's invoices.")
@click.option("--status", type=click.Choice(INVOICE_STATUSES), help="Only invoices in this status.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def invoice_list(obj: Any, client_id: int | None, status: str | None, as_json: bool) -> None:
    """Invoices newest first: number, client, date, due date, date paid, status, total,
    balance (total less credit and money received), payment method."""
    from rules.audit import SYSTEM_CLI
    from rules.billing.invoices import list_invoices

    obj.open()
    rows = list_invoices(SYSTEM_CLI, client_id=client_id, status=status)
    if as_json:
        click.echo(json.dumps([r.as_dict() for r in rows], ensure_ascii=False))
        return
    for r in rows:
        paid = r.date_paid.isoformat() if r.date_paid else "-"
        click.echo(
            f"{r.number:<16} {r.client_id:>7} {r.date} {r.due_date} {paid:<10} {r.status:<15} "
            f"{r.total:>16} {r.balance:>16} {r.payment_method}"
        )


@invoice_group.command("show")
@click.argument("number")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def invoice_show(obj: Any, number: str, as_json: bool) -> None:
    """One invoice: items, tax lines with their rates, credit, transactions, balance."""
    from rules.audit import SYSTEM_CLI
    from rules.billing.invoices import invoice_detail
    from rules.billing.payments import find_invoice

    obj.open()
    detail = invoice_detail(find_invoice(number), SYSTEM_CLI)
    if as_json:
        click.echo(json.dumps(detail.as_dict(), ensure_ascii=False))
        return
    r = detail.row
    lines = [
        f"Invoice {r.number}  {r.status}  client {r.client_id} ({detail.client_name})",
        f"Date {r.date}  due {r.due_date}  paid {r.date_paid or '-'}  by {r.payment_method}",
        "",
    ]
    lines += [
        f"  {i.description[:56]:<56} {i.amount:>16}{'  taxed' if i.taxed else ''}"
        for i in detail.items
    ]
    lines += ["", f"  {'Subtotal':<56} {detail.subtotal:>16}"]
    lines += [f"  {name:<56} {amount:>16}" for name, amount in detail.tax_lines]
    lines += [f"  {'Credit':<56} {detail.credit:>16}", f"  {'Total':<56} {detail.total:>16}"]
    for t in detail.transactions:
        amount = f"-{t.amount_out}" if t.refund else t.amount_in
        lines.append(
            f"  {t.date} {t.gateway:<12} {t.transaction_id[:20]:<20} {amount:>16}  {t.description}"
        )
    lines.append(f"  {'Balance':<56} {r.balance:>16}")
    click.echo("\n".join(lines))


@invoice_group.command("pay")
@click.argument("number")
@click.option("--amount", type=AmountParam(), required=True, help="Amount received, e.g. 9.99.")
@click.option("--gateway", type=click.Choice(GATEWAY_NAMES), required=True)
@click.option("--date", "date_", type=DATE, help="Date received (default: today).")
@click.option(
    "--transaction-id",
    default="",
    help="The gateway's reference: a retry with the same one is recognised, not paid twice.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def invoice_pay(
    obj: Any,
    number: str,
    amount: Decimal,
    gateway: str,
    date_: dt.date | None,
    transaction_id: str,
    as_json: bool,
) -> None:
    """Record a payment. When the balance reaches zero the invoice is Paid, what it bills
    moves to its next due date and "Invoice Payment Confirmation" is queued."""
    from rules.audit import SYSTEM_CLI
    from rules.billing.payments import business_today, find_invoice, record_payment

    obj.open()
    result = record_payment(
        find_invoice(number),
        amount,
        gateway,
        date_ or business_today(),
        transaction_id,
        SYSTEM_CLI,
    )
    state = result.state
    data = {
        "number": state.number,
        "status": state.status,
        "balance": state.balance_text,
        "transaction": result.transaction,
        "already_recorded": result.already_recorded,
        "paid": result.paid,
    }
    if result.already_recorded:
        text = (
            f"Already recorded: payment {transaction_id} on invoice {state.number} "
            f"(transaction {result.transaction}); nothing changed. Balance {state.balance_text}."
        )
    elif result.paid:
        text = (
            f"Invoice {state.number} is Paid; its items moved to their next due date and the "
            "payment confirmation is queued."
        )
    else:
        text = f"Payment recorded on invoice {state.number}; balance {state.balance_text}."
    _emit(as_json, data, text)


invoice_group.add_command(invoice_pdf)
