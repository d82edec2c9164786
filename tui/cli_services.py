"""``gobiller service``: sell a client a product from the catalogue, headless (issue 13).

A thin caller of ``rules.billing.services.add_service``: the recurring amount is the
product's price in the client's currency for the cycle unless ``--amount`` is given,
the next due date today's business date unless ``--next-due``, the status Active, the
payment method the client's. A refusal is one line (with ``--json``,
``{"error": ...}``) naming the option, and the exit codes of ``tui.exits``, through the
command group of ``tui.cli``. Never imports Textual.
"""

from __future__ import annotations

from typing import Any

import click

from tui.cli_common import RECORD_ID as CLIENT_ID
from tui.cli_common import emit

#: PRODUCT.md §5 billing cycles, spelled as stored (``store.models.enums.BillingCycle``).
CYCLES = (
    "Free",
    "One Time",
    "Monthly",
    "Quarterly",
    "Semi-Annually",
    "Annually",
    "Biennially",
    "Triennially",
)
#: The rule's field names as this command's options.
OPTIONS = {
    "product_id": "--product",
    "billing_cycle": "--cycle",
    "amount": "--amount",
    "next_due_date": "--next-due",
}


@click.group("service")
def service_group() -> None:
    """Services: sell a client a product from the catalogue."""


@service_group.command("add")
@click.argument("client_id", metavar="CLIENT", type=CLIENT_ID)
@click.option("--product", "product", required=True, help="Product name or id.")
@click.option(
    "--cycle",
    type=click.Choice(CYCLES),
    default="Monthly",
    show_default=True,
    help="Billing cycle.",
)
@click.option("--amount", help="Recurring amount (default: the product's price).")
@click.option("--next-due", "next_due", help="Next due date YYYY-MM-DD (default: today).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def add(
    obj: Any,
    client_id: int,
    product: str,
    cycle: str,
    amount: str | None,
    next_due: str | None,
    as_json: bool,
) -> None:
    """Add an Active service of product P for CLIENT (a client id), priced from the
    catalogue in the client's currency."""
    from rules.audit import SYSTEM_CLI
    from rules.billing.catalogue import format_price
    from rules.billing.services import add_service
    from rules.errors import RuleError, ValidationError
    from store.models import Client, Currency, Product

    obj.open()
    found = Product.get_or_none(Product.name == product.strip())
    if found is None and product.strip().isdecimal() and len(product.strip()) < 19:
        found = Product.get_or_none(Product.id == int(product.strip()))
    if found is None:
        raise RuleError(f"--product: no product named or numbered {product!r}")
    values: dict[str, Any] = {"product_id": found.id, "billing_cycle": cycle}
    if amount is not None:
        values["amount"] = amount
    if next_due is not None:
        values["next_due_date"] = next_due
    try:
        service = add_service(client_id, values, SYSTEM_CLI)
    except ValidationError as exc:
        raise RuleError(
            "; ".join(f"{OPTIONS.get(k, k)}: {v}" for k, v in exc.errors.items())
        ) from exc
    currency = Currency.get_by_id(Client.get_by_id(client_id).currency_id)
    price = format_price(service.amount, currency.decimals)
    due = service.next_due_date.isoformat() if service.next_due_date else ""
    data = {
        "service": service.id,
        "client": client_id,
        "product": found.name,
        "billing_cycle": service.billing_cycle,
        "amount": price,
        "currency": currency.code,
        "next_due_date": due,
        "status": service.status,
        "payment_method": service.payment_method,
    }
    text = (
        f"Service {service.id}: {found.name} for client {client_id}, {service.billing_cycle} "
        f"{price} {currency.code}, {service.status}, next due "
        f"{due} by {service.payment_method}."
    )
    emit(as_json, data, text)
