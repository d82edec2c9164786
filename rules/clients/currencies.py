"""Stored amounts keep their value when the shape of a currency changes.

Amounts are integer minor units whose meaning depends on the currency's decimals
(PRODUCT.md §1, §3). So:

- changing a client's currency "only changes the symbol, converting nothing": the
  numbers stay (JPY 5,000 becomes USD 5,000.00), each of the client's stored amounts
  rescaled to the new currency's decimals in the same transaction, and refused when
  an amount cannot be written with fewer decimals (USD 250.50 in JPY);
- a currency's decimals cannot change while any stored amount is in it.
"""

from __future__ import annotations

from typing import Any

from rules.errors import ValidationError
from store.models import (
    Addon,
    Client,
    Credit,
    Currency,
    Domain,
    Invoice,
    InvoiceItem,
    Pricing,
    Service,
    Transaction,
)


def _money_columns() -> list[tuple[Any, tuple[str, ...]]]:
    """(model, money columns) of every stored amount a client has."""
    return [
        (Service, ("amount",)),
        (Addon, ("amount",)),
        (Domain, ("amount",)),
        (Invoice, ("subtotal", "tax", "tax2", "total", "credit")),
        (InvoiceItem, ("amount",)),
        (Transaction, ("amount_in", "amount_out", "fees")),
        (Credit, ("amount",)),
        (Client, ("credit",)),
    ]


def _owner(model: Any, clients: Any) -> Any:
    """A condition: rows of ``model`` belonging to the clients in ``clients`` (a query)."""
    if model is Client:  # a client's own credit balance: a stored amount once not zero
        return Client.id.in_(clients) & (Client.credit != 0)
    if model is InvoiceItem:
        return InvoiceItem.invoice.in_(
            Invoice.select(Invoice.id).where(Invoice.client.in_(clients))
        )
    return model.client.in_(clients)


def rescale_client_amounts(client_id: int, old_decimals: int, new_decimals: int) -> int:
    """Rescale every amount stored for one client from ``old_decimals`` to
    ``new_decimals`` minor units, keeping each value; return the rows changed.

    Call inside the transaction that changes the client's currency. Raises
    ``ValidationError`` on ``currency_id`` (nothing changed) when an amount has more
    decimals than the new currency allows. A fixed number of statements.
    """
    if old_decimals == new_decimals:
        return 0
    clients = Client.select(Client.id).where(Client.id == client_id)
    factor = 10 ** abs(new_decimals - old_decimals)
    if new_decimals < old_decimals:
        for model, columns in _money_columns():
            field = [getattr(model, c) for c in columns]
            uneven = model.select().where(
                _owner(model, clients)
                & _any(f - (f / factor) * factor != 0 for f in field)  # f mod factor
            )
            if uneven.exists():
                raise ValidationError(
                    {
                        "currency_id": f"this client has amounts with more than {new_decimals} "
                        "decimal place(s), which the new currency cannot hold; "
                        "nothing was changed"
                    }
                )
    changed = 0
    for model, columns in _money_columns():
        values = {
            getattr(model, c): (getattr(model, c) * factor)
            if new_decimals > old_decimals
            else (getattr(model, c) / factor)
            for c in columns
        }
        changed += model.update(values).where(_owner(model, clients)).execute()
    return changed


def amounts_in_currency(currency_id: int) -> int:
    """How many stored rows (services, addons, domains, invoices, items, transactions
    through their clients, and the catalogue's prices in it) hold amounts in a currency
    (a fixed number of queries)."""
    clients = Client.select(Client.id).where(Client.currency == currency_id)
    return Pricing.select().where(Pricing.currency == currency_id).count() + sum(
        model.select().where(_owner(model, clients)).count() for model, _ in _money_columns()
    )


def _any(conditions: Any) -> Any:
    result = None
    for condition in conditions:
        result = condition if result is None else result | condition
    return result


def check_decimals_change(code: str, decimals: int) -> None:
    """Refuse (``ValidationError`` on ``decimals``) to give currency ``code`` other
    decimals while amounts are stored in it: they are minor units, and would silently
    be read 10 or 100 times larger or smaller. A new currency, or the same decimals,
    passes."""
    existing = Currency.get_or_none(Currency.code == code)
    if existing is None or existing.decimals == decimals:
        return
    used = amounts_in_currency(existing.id)
    if used:
        raise ValidationError(
            {
                "decimals": f"{code} has {used} stored amount(s) with {existing.decimals} "
                "decimals; changing its decimals would change their value: move those "
                "clients to another currency first"
            }
        )
