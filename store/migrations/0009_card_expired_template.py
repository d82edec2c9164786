"""0009_card_expired_template: the "Credit Card Expired" email.

Sent once per client and expired card when an invoice is due for capture and every
card on file has expired: the cron never charges an expired card (PRODUCT.md §3), so
it asks for a new one instead. Frozen text; staff edits live in the database.
"""

from __future__ import annotations

from typing import Any

NAME = "Credit Card Expired"
SUBJECT = "Your card on file has expired: invoice #{{ invoice.number }}"
BODY = (
    "Dear {{ client.first_name }},\n\nThe card we hold for you has expired, so we could not"
    " collect invoice #{{ invoice.number }} automatically and will not try that card again."
    " Please log in and add a new card, or pay the invoice another way.\n"
    "\nInvoice #{{ invoice.number }}\nDue date: {{ invoice.due_date }}\n"
    "Balance due: {{ invoice.balance }}\n"
    '\n{{ company.signature or ("The " + company.name + " team") }}\n{{ company.system_url }}\n'
)


def up(migrator: Any, db: Any) -> None:
    import datetime as dt

    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    marks = ", ".join([db.param] * 7)
    db.execute_sql(
        'INSERT INTO "email_template" ("name", "subject", "body_text", "body_html",'
        f' "sensitive", "disabled", "updated_at") VALUES ({marks})',
        (NAME, SUBJECT, BODY, "", False, False, now),
    )
