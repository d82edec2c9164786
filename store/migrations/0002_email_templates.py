"""0002_email_templates: the default email templates of PRODUCT.md §4 (names exact).

Frozen text: later edits by staff live in the database; changing this file
never changes an existing install.
"""

from __future__ import annotations

from typing import Any

SIGN_OFF = """
{{ company.signature or ("The " + company.name + " team") }}
{{ company.system_url }}
"""

INVOICE_LINES = """
Invoice #{{ invoice.number }}
Invoice date: {{ invoice.date }}
Due date: {{ invoice.due_date }}
{% for item in invoice.items %}
  {{ item.description }}  {{ item.amount }}
{%- endfor %}

Subtotal: {{ invoice.subtotal }}
{%- if invoice.tax_raw %}
Tax: {{ invoice.tax }}{% endif %}
{%- if invoice.tax2_raw %}
Tax 2: {{ invoice.tax2 }}{% endif %}
Total: {{ invoice.total }}
Balance due: {{ invoice.balance }}
Payment method: {{ invoice.payment_method }}
"""

# name, subject, body, sensitive
TEMPLATES: list[tuple[str, str, str, bool]] = [
    (
        "Invoice Created",
        "Invoice #{{ invoice.number }} from {{ company.name }}",
        "Dear {{ client.first_name }},\n\nThis is a notice that an invoice has been generated"
        " on {{ invoice.date }}.\n" + INVOICE_LINES + SIGN_OFF,
        False,
    ),
    (
        "Invoice Payment Reminder",
        "Payment reminder: invoice #{{ invoice.number }} is due {{ invoice.due_date }}",
        "Dear {{ client.first_name }},\n\nThis is a billing reminder that invoice"
        " #{{ invoice.number }} is due on {{ invoice.due_date }}.\n" + INVOICE_LINES + SIGN_OFF,
        False,
    ),
    (
        "First Invoice Overdue Notice",
        "First overdue notice: invoice #{{ invoice.number }}",
        "Dear {{ client.first_name }},\n\nThis is a billing notice that invoice"
        " #{{ invoice.number }}, due on {{ invoice.due_date }}, is now overdue.\n"
        + INVOICE_LINES
        + "\nPlease pay at your earliest convenience.\n"
        + SIGN_OFF,
        False,
    ),
    (
        "Second Invoice Overdue Notice",
        "Second overdue notice: invoice #{{ invoice.number }}",
        "Dear {{ client.first_name }},\n\nThis is the second notice that invoice"
        " #{{ invoice.number }}, due on {{ invoice.due_date }}, remains unpaid.\n"
        + INVOICE_LINES
        + "\nPlease pay now to avoid interruption of service.\n"
        + SIGN_OFF,
        False,
    ),
    (
        "Third Invoice Overdue Notice",
        "Final overdue notice: invoice #{{ invoice.number }}",
        "Dear {{ client.first_name }},\n\nThis is the final notice that invoice"
        " #{{ invoice.number }}, due on {{ invoice.due_date }}, remains unpaid. Services on"
        " this invoice may be suspended.\n" + INVOICE_LINES + SIGN_OFF,
        False,
    ),
    (
        "Invoice Payment Confirmation",
        "Payment received for invoice #{{ invoice.number }}",
        "Dear {{ client.first_name }},\n\nThank you: we received your payment for invoice"
        " #{{ invoice.number }} on {{ invoice.date_paid }}.\n" + INVOICE_LINES + SIGN_OFF,
        False,
    ),
    (
        "Credit Card Payment Failed",
        "Card payment failed for invoice #{{ invoice.number }}",
        "Dear {{ client.first_name }},\n\nWe tried to charge your card on file for invoice"
        " #{{ invoice.number }} and the payment was declined. Please log in and pay the"
        " invoice, or update your card.\n" + INVOICE_LINES + SIGN_OFF,
        False,
    ),
    (
        "Automated Password Reset",
        "Your new password for {{ company.name }}",
        "Dear {{ client.first_name }},\n\nAs requested, your client area password has been"
        " reset. Your new login details are:\n\n  Email: {{ client.email }}\n"
        "  Password: {{ new_password }}\n\nYou will be asked to choose a new password when you"
        " next log in.\n" + SIGN_OFF,
        True,
    ),
    (
        "Password Reset Validation",
        "Reset your {{ company.name }} password",
        "Dear {{ client.first_name }},\n\nSomeone asked to reset the password of your client"
        " account. To choose a new password, open this link within 2 hours:\n\n"
        "  {{ reset_url }}\n\nIf you did not ask for this, ignore this email: your password"
        " stays as it is.\n" + SIGN_OFF,
        True,
    ),
    (
        "Password Reset Confirmation",
        "Your {{ company.name }} password was changed",
        "Dear {{ client.first_name }},\n\nThe password of your client account was changed."
        " If you did not do this, contact us at once.\n" + SIGN_OFF,
        False,
    ),
    (
        "Two-Factor Disabled",
        "Two-factor authentication was disabled on your account",
        "Dear {{ client.first_name }},\n\nTwo-factor authentication has been disabled on your"
        " client account by our staff ({{ reason }}). You can enable it again from the client"
        " area.\n" + SIGN_OFF,
        False,
    ),
    (
        "Mass Mail",
        "News from {{ company.name }}",
        "Dear {{ client.first_name }},\n\nWrite your message here.\n" + SIGN_OFF,
        False,
    ),
]


def up(migrator: Any, db: Any) -> None:
    import datetime as dt

    now = dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)
    marks = ", ".join([db.param] * 7)
    sql = (
        'INSERT INTO "email_template" ("name", "subject", "body_text", "body_html",'
        f' "sensitive", "disabled", "updated_at") VALUES ({marks})'
    )
    for name, subject, body, sensitive in TEMPLATES:
        db.execute_sql(sql, (name, subject, body, "", sensitive, False, now))
