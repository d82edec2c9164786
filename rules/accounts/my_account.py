"""What the client portal's home screen shows a logged-in client (issue 12, PRODUCT.md
§2 "client portal"): their profile in brief, how their account is protected, and their
unpaid invoices with the balance left on each. Read-only; three queries whatever the
number of invoices.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from peewee import JOIN

from rules.accounts.client_login import LOGIN_FAILED, ClientSession, LoginFailed
from rules.accounts.totp import backup_codes_left
from store.models import Client, Currency, Invoice, SecurityQuestion
from store.models.enums import ClientStatus, InvoiceStatus
from store.money import format_money
from store.queries import balance_due

__all__ = ["MyAccount", "UnpaidInvoice", "my_account"]

#: The home screen lists at most this many unpaid invoices (oldest due first).
UNPAID_SHOWN = 50


@dataclass(frozen=True)
class UnpaidInvoice:
    """One unpaid invoice: amounts already formatted in the client's currency
    (``store.money.format_money``)."""

    number: str
    date: dt.date
    due_date: dt.date
    total: str
    balance: str


@dataclass(frozen=True)
class MyAccount:
    """The logged-in client's summary. ``balance_due``: the sum of the unpaid invoices'
    balances, formatted; ``security_question``: the question's text or None;
    ``backup_codes_left``: unused backup codes (0 when two-factor is off)."""

    name: str
    company: str
    email: str
    status: str
    two_factor: bool
    backup_codes_left: int
    security_question: str | None
    unpaid: list[UnpaidInvoice]
    unpaid_count: int
    balance_due: str


def my_account(session: ClientSession) -> MyAccount:
    """The summary of ``session``'s client for the portal's home screen.

    Unpaid invoices are those in status Unpaid with a balance above zero (total less
    credit applied and money received, ``store.queries.balance_due``), oldest due first, at most
    ``UNPAID_SHOWN``. Raises ``LoginFailed`` when the client is gone or was Closed since
    the login (PRODUCT.md §1: "Closed: cannot log in to the client area")."""
    row = (
        Client.select(Client, Currency, SecurityQuestion)
        .join(Currency)
        .switch(Client)
        .join(SecurityQuestion, JOIN.LEFT_OUTER)
        .where(Client.id == session.client_id)
        .first()
    )
    if row is None or row.status == ClientStatus.CLOSED:
        raise LoginFailed(LOGIN_FAILED)
    currency = row.currency
    balance = balance_due()
    rows: Any = (
        Invoice.select(Invoice.number, Invoice.date, Invoice.due_date, Invoice.total, balance)
        .where(
            (Invoice.client == row.id) & (Invoice.status == InvoiceStatus.UNPAID) & (balance > 0)
        )
        .order_by(Invoice.due_date, Invoice.id)
        .tuples()
    )
    invoices: list[tuple[str, dt.date, dt.date, int, int]] = list(rows)
    unpaid = [
        UnpaidInvoice(
            number,
            date,
            due_date,
            format_money(int(total), currency),
            format_money(int(left), currency),
        )
        for number, date, due_date, total, left in invoices[:UNPAID_SHOWN]
    ]
    question = row.security_question if row.security_question_id is not None else None
    return MyAccount(
        name=f"{row.first_name} {row.last_name}".strip(),
        company=row.company,
        email=row.email,
        status=str(row.status),
        two_factor=bool(row.totp_secret),
        backup_codes_left=backup_codes_left(row.id) if row.totp_secret else 0,
        security_question=question.question if question and row.security_answer_hash else None,
        unpaid=unpaid,
        unpaid_count=len(invoices),
        balance_due=format_money(sum(int(i[4]) for i in invoices), currency),
    )
