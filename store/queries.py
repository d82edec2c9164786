"""Small shared queries."""

from __future__ import annotations

from typing import Any

from peewee import ColumnBase, Model, fn

from store.db import is_postgres
from store.models import Invoice, Transaction


def lookup(model: type[Model], key: ColumnBase, value: ColumnBase) -> dict[Any, Any]:
    """``{key: value}`` over a whole (small, reference) table in one query."""
    rows: Any = model.select(key, value).tuples()
    return dict(rows)


def column(model: type[Model], field: ColumnBase) -> set[Any]:
    """Every value of one column, as a set (one query)."""
    rows: Any = model.select(field).tuples()
    return {value for (value,) in rows}


def amount_paid(invoice_id: Any) -> Any:
    """SQL: the money received on an invoice, in its minor units (transactions in minus
    refunds out; 0 when none). ``invoice_id`` is a column or value to correlate with."""
    return Transaction.select(
        fn.COALESCE(fn.SUM(Transaction.amount_in - Transaction.amount_out), 0)
    ).where(Transaction.invoice == invoice_id)


def balance_due() -> Any:
    """SQL: an invoice's balance (total less money received), in minor units. Reminders,
    notices, late fees and captures act only while it is above zero (PRODUCT.md §3)."""
    return Invoice.total - amount_paid(Invoice.id)


def overdue_from() -> Any:
    """SQL: the date an invoice's overdue clock starts, the later of its due date and its
    date (an invoice is never overdue to a client before it was issued, PRODUCT.md §3)."""
    return (fn.GREATEST if is_postgres() else fn.MAX)(Invoice.due_date, Invoice.date)
