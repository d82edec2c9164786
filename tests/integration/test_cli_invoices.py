"""``gobiller invoice list|show|pay`` as a user runs them: a real process, a real
database (SQLite and PostgreSQL)."""

from __future__ import annotations

import datetime as dt
import json

from store.models import Email, Invoice, Service, Transaction
from store.models.enums import GATEWAYS, InvoiceStatus
from tests.conftest import Databases
from tests.integration.test_cli import run
from tests.integration.test_cron import DAY, client, service
from tests.integration.test_cron import run as run_rules
from tui.cli_invoices import GATEWAY_NAMES, INVOICE_STATUSES


def test_the_command_line_lists_match_the_enums() -> None:
    assert INVOICE_STATUSES == tuple(s.value for s in InvoiceStatus)
    assert GATEWAY_NAMES == GATEWAYS


def _invoiced(databases: Databases) -> tuple[str, Invoice, Service]:
    url = databases.open(databases.new_url())
    owner = client()
    hosting = service(owner, DAY + dt.timedelta(days=14), amount=2_500)
    run_rules(only=("invoice",))
    return url, Invoice.get(Invoice.client == owner.id), hosting


def test_invoice_pay_twice_with_one_reference_pays_once(databases: Databases) -> None:
    url, bill, hosting = _invoiced(databases)
    args = ["--database", url, "invoice", "pay", bill.number, "--amount", "25.00"]
    args += ["--gateway", "banktransfer", "--date", "2026-03-12", "--transaction-id", "BT-9"]
    first = run(*args, "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout)["paid"] is True
    again = run(*args, "--json")
    assert again.returncode == 0
    assert json.loads(again.stdout)["already_recorded"] is True
    text = run(*args)
    assert "Already recorded" in text.stdout
    assert Transaction.select().count() == 1
    assert Email.select().where(Email.template == "Invoice Payment Confirmation").count() == 1
    assert Service.get_by_id(hosting.id).next_due_date == dt.date(2026, 4, 24)
    shown = json.loads(run("--database", url, "invoice", "show", bill.number, "--json").stdout)
    assert shown["status"] == "Paid" and shown["balance"] == "0.00 USD"
    assert shown["transactions"][0]["transaction_id"] == "BT-9"
    listed = json.loads(
        run("--database", url, "invoice", "list", "--status", "Paid", "--json").stdout
    )
    assert [r["number"] for r in listed] == [bill.number]


def test_invoice_commands_refuse_bad_input_in_one_line(databases: Databases) -> None:
    url, bill, _ = _invoiced(databases)
    base = ["--database", url, "invoice"]
    cases = [
        (["pay", bill.number, "--amount", "1.001", "--gateway", "mailin"], "decimal place"),
        (["pay", bill.number, "--amount", "30", "--gateway", "mailin"], "add the rest"),
        (["pay", bill.number, "--amount", "0", "--gateway", "mailin"], "more than zero"),
        (["pay", bill.number, "--amount", "1e2", "--gateway", "mailin"], "not an amount"),
        (["pay", "NOPE", "--amount", "1", "--gateway", "mailin"], "no invoice numbered"),
        (["show", "NOPE"], "no invoice numbered"),
    ]
    for args, reason in cases:
        out = run(*base, *args, "--json")
        assert out.returncode != 0, args
        error = json.loads(out.stdout)["error"]
        assert reason in error, (args, error)
        plain = run(*base, *args)
        assert plain.returncode != 0 and reason in plain.stderr and "Traceback" not in plain.stderr
    assert Transaction.select().count() == 0


def test_invoice_list_and_show_print_the_invoice(databases: Databases) -> None:
    url, bill, _ = _invoiced(databases)
    listed = run("--database", url, "invoice", "list", "--client", str(bill.client_id))
    assert listed.returncode == 0 and bill.number in listed.stdout and "25.00 USD" in listed.stdout
    shown = run("--database", url, "invoice", "show", bill.number)
    assert "Hosting" in shown.stdout and "Balance" in shown.stdout
