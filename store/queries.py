"""Small shared queries."""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from peewee import SQL, ColumnBase, Model, NodeList, fn

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
    """SQL: an invoice's balance, in minor units: its total less the credit applied to it
    and the money received (payments in less refunds out). The one definition of what a
    client still owes on an invoice: what capture charges, what a payment may pay at
    most, what screens and emails call the balance; reminders, notices, late fees and
    captures act only while it is above zero (PRODUCT.md §3)."""
    return Invoice.total - Invoice.credit - amount_paid(Invoice.id)


def balance_due_sql(invoice: str) -> str:
    """:func:`balance_due` as plain SQL over the invoice table aliased ``invoice`` (for
    statements written by hand, such as ``rules.mail.sql``'s ``INSERT … SELECT``); a test
    checks the two agree."""
    return (
        f'({invoice}."total" - {invoice}."credit" - (SELECT CAST(COALESCE(SUM(t."amount_in" - '
        f't."amount_out"), 0) AS BIGINT) FROM "transaction" t WHERE t."invoice_id" = '
        f'{invoice}."id"))'
    )


def balances(invoice_ids: list[int]) -> dict[int, int]:
    """``{invoice id: balance}`` (:func:`balance_due`, minor units) of invoices, one query."""
    rows: Any = (
        Invoice.select(Invoice.id, balance_due()).where(among(Invoice.id, invoice_ids)).tuples()
    )
    return {invoice_id: int(balance) for invoice_id, balance in rows}


def overdue_from() -> Any:
    """SQL: the date an invoice's overdue clock starts, the later of its due date and its
    date (an invoice is never overdue to a client before it was issued, PRODUCT.md §3)."""
    return (fn.GREATEST if is_postgres() else fn.MAX)(Invoice.due_date, Invoice.date)


def filter_only(column: ColumnBase) -> Any:
    """SQL: ``column``'s value, in a form the planner never uses to pick an index.

    For guards that hold for (nearly) every row, such as a date inside the plausible
    window: SQLite, which has no histogram of the values, takes any range for a narrow
    one, and would walk the guard's index range (all of it) instead of the index of the
    narrow condition beside it. SQLite's unary ``+`` turns the column into an
    expression (SQLite's documented way to disqualify a term from an index);
    PostgreSQL plans from its histograms and gets the column as it is."""
    if is_postgres():
        return column
    return NodeList((SQL("+"), column), glue="")


def rarely(condition: Any) -> Any:
    """SQL: ``condition``, told to the planner as rarely true, so that it seeks the
    condition's index range rather than walking the rows around it (SQLite's
    ``unlikely()``, a no-op when run: SQLite, with no histogram, takes a range at the
    end of a column for a wide one; PostgreSQL estimates it from its histograms and
    gets the condition as it is)."""
    if is_postgres():
        return condition
    return fn.unlikely(condition)


def among(column: ColumnBase, values: Iterable[Any]) -> Any:
    """SQL: ``column`` is one of ``values`` (ints or strings, in the column's database
    form), sent as one parameter: a JSON array read by ``json_each`` on SQLite, an
    array (``= ANY``) on PostgreSQL.

    For the rules' batches of thousands of keys: nothing is built per value in Python
    (peewee spent 7 µs a value on ``IN (?, ?, ...)``) and SQLite's bound of 32,766
    parameters never applies; on SQLite the statement's text is the same whatever the
    count (psycopg2 writes the list into PostgreSQL's text as one ``ARRAY[...]``). Both
    databases look each value up in ``column``'s index (checked by test)."""
    listed = list(values)
    if is_postgres():
        return column == SQL("ANY(%s)", [listed])
    return column.in_(SQL("(SELECT value FROM json_each(?))", [json.dumps(listed)]))
