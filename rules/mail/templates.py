"""Email templates: the sandboxed Jinja2 environment, merge fields and rendering.

Templates are Jinja2 in a sandbox with strict undefined variables, so a
template that names an unknown field or reaches for Python internals is
refused when staff save it, never discovered by cron (PRODUCT.md §4).
"""

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError

from rules.audit import Actor, record
from rules.errors import RuleError, transaction
from rules.mail.sandbox import BudgetedSandbox, BudgetExceeded, render_budget, render_within
from store.models import (
    Client,
    Currency,
    EmailTemplate,
    Invoice,
    InvoiceItem,
    utcnow,
)
from store.money import format_money
from store.settings import Settings, load_settings
from store.text import surrogate_refusal, text_refusal

INVOICE_TEMPLATES = frozenset(
    {
        "Invoice Created",
        "Invoice Payment Reminder",
        "First Invoice Overdue Notice",
        "Second Invoice Overdue Notice",
        "Third Invoice Overdue Notice",
        "Invoice Payment Confirmation",
        "Credit Card Payment Failed",
        "Credit Card Expired",
    }
)
#: Extra merge fields a template may use beyond client and company.
TEMPLATE_EXTRAS: dict[str, tuple[str, ...]] = {
    "Automated Password Reset": ("new_password",),
    "Password Reset Validation": ("reset_url", "reset_token"),
    "Portal Invitation": ("invite_url", "invite_token"),
    "Two-Factor Disabled": ("reason",),
}
SUBJECT_MAX = 255
NAME_MAX = 100
MASK = "********"
BODY_MAX = 100_000


class TemplateRefused(RuleError):
    """A template that cannot render safely; the message says where and why."""


class TemplateOverBudget(TemplateRefused):
    """A render that went over its time or size budget (``rules.mail.sandbox``)."""


@dataclass(frozen=True)
class Rendered:
    subject: str
    body_text: str
    body_html: str


class MergeFieldEnvironment(BudgetedSandbox):
    """The budgeted sandbox, with merge fields as plain dicts read straight by key.

    ``invoice.items`` is the field, never ``dict.items``, and a field that does
    not exist is undefined (so refused at save time); no other object takes the
    short path, so the sandbox still guards everything else. Reading by key
    skips the sandbox's attribute checks, which otherwise cost more than the rest
    of rendering an email.
    """

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict:
            try:
                return obj[attribute]
            except KeyError:
                return self.undefined(obj=obj, name=attribute)
        return super().getattr(obj, attribute)

    def getitem(self, obj: Any, argument: Any) -> Any:
        """``company['name']`` is the field; ``company['update']`` is not a dict method."""
        if type(obj) is dict:
            try:
                return obj[argument]
            except (KeyError, TypeError):
                return self.undefined(obj=obj, name=str(argument))
        return super().getitem(obj, argument)


@lru_cache(maxsize=1)
def merge_field_env() -> BudgetedSandbox:
    return MergeFieldEnvironment(undefined=StrictUndefined, autoescape=False)


@lru_cache(maxsize=1)
def _html_env() -> BudgetedSandbox:
    return MergeFieldEnvironment(undefined=StrictUndefined, autoescape=True)


@lru_cache(maxsize=512)
def _compile(source: str, html: bool) -> Any:
    template = (_html_env() if html else merge_field_env()).from_string(source)
    # A plain copy of the (fixed) globals: Jinja copies them into every render's
    # context, and copying its layered mapping costs more than the render.
    template.globals = dict(template.globals)
    return template


def render(subject: str, body_text: str, body_html: str, context: dict[str, Any]) -> Rendered:
    """Render the three parts under one budget (``rules.mail.sandbox``: 100 ms, 256 KiB).

    Raises ``TemplateOverBudget`` for a render over its budget and ``TemplateRefused``
    for any other failure (a syntax error, an unknown field, a division by zero on
    these values), each with a readable reason naming the part.
    """
    compiled = []
    for label, source, html in (
        ("subject", subject, False),
        ("body", body_text, False),
        ("HTML part", body_html, True),
    ):
        try:
            compiled.append((label, _compile(source, html) if source else None))
        except TemplateError as exc:
            raise TemplateRefused(f"{label}: {exc.message or exc}") from exc
        except Exception as exc:  # noqa: BLE001  (e.g. nesting too deep to compile)
            raise TemplateRefused(f"{label}: {type(exc).__name__}: {exc}") from exc
    parts = []
    with render_budget():  # one budget for the email, from here: compiling is not rendering
        for label, template in compiled:
            try:
                parts.append(render_within(template, context) if template else "")
            except BudgetExceeded as exc:
                raise TemplateOverBudget(f"{label}: {exc.message or exc}") from exc
            except TemplateError as exc:
                raise TemplateRefused(f"{label}: {exc.message or exc}") from exc
            except Exception as exc:  # noqa: BLE001  (template code is staff code)
                raise TemplateRefused(f"{label}: {type(exc).__name__}: {exc}") from exc
    return Rendered(subject_line(parts[0]), parts[1], parts[2])


#: What ``str.splitlines`` breaks a line at: in a header each would start a new one.
LINE_BREAKS = "\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029"
_ONE_LINE = str.maketrans(dict.fromkeys(LINE_BREAKS, " "))


def subject_line(text: str) -> str:
    """A rendered subject as one header line: every line break becomes a space, the ends
    are stripped, at most ``SUBJECT_MAX`` characters (``rules.mail.sql`` does the same)."""
    return text.translate(_ONE_LINE).strip()[:SUBJECT_MAX]


# --------------------------------------------------------------------------- context


def company_context(settings: Settings) -> dict[str, Any]:
    return {
        "name": settings.company_name,
        "system_url": settings.system_url,
        "signature": settings.signature,
        "email": settings.company_email,
    }


def client_context(client: Client) -> dict[str, Any]:
    return {
        "id": client.id,
        "first_name": client.first_name,
        "last_name": client.last_name,
        "full_name": f"{client.first_name} {client.last_name}",
        "company": client.company,
        "email": client.email,
        "address1": client.address1,
        "address2": client.address2,
        "city": client.city,
        "state": client.state,
        "postcode": client.postcode,
        "country": client.country,
    }


def invoice_context(
    invoice: Invoice,
    items: Sequence[InvoiceItem],
    currency: Currency,
    balance: int | None = None,
) -> dict[str, Any]:
    """The ``invoice`` merge fields; amounts as ``store.money.format_money`` writes them.
    ``balance``: the invoice's balance in minor units (``store.queries.balance_due``: total
    less credit and money received); the total when not given (a sample)."""
    return {
        "number": invoice.number,
        "date": str(invoice.date),  # a date, or its ISO text as SQLite returns it
        "due_date": str(invoice.due_date),
        "date_paid": str(invoice.date_paid) if invoice.date_paid else "",
        "status": invoice.status,
        "payment_method": invoice.payment_method,
        "subtotal": format_money(invoice.subtotal, currency),
        "tax": format_money(invoice.tax, currency),
        "tax2": format_money(invoice.tax2, currency),
        "tax_raw": invoice.tax,
        "tax2_raw": invoice.tax2,
        "total": format_money(invoice.total, currency),
        "balance": format_money(invoice.total if balance is None else balance, currency),
        "items": [
            {"description": i.description, "amount": format_money(i.amount, currency)}
            for i in items
        ],
    }


def sample_context(template_name: str, settings: Settings | None = None) -> dict[str, Any]:
    """Every merge field the template may use, with sample values, for checks and previews."""
    settings = settings or Settings()
    usd = Currency(code="USD", prefix="$", suffix=" USD", decimals=2)
    client = Client(
        id=1,
        first_name="Ana",
        last_name="Núñez",
        company="Example Ltd",
        email="ana@example.com",
        address1="1 Main Street",
        address2="",
        city="Springfield",
        state="",
        postcode="12345",
        country="GB",
    )
    context: dict[str, Any] = {
        "client": client_context(client),
        "company": company_context(settings),
    }
    if template_name in INVOICE_TEMPLATES:
        invoice = Invoice(
            number="1001",
            date=dt.date(2026, 1, 1),
            due_date=dt.date(2026, 1, 15),
            date_paid=None,
            status="Unpaid",
            payment_method="banktransfer",
            subtotal=1000,
            tax=200,
            tax2=0,
            total=1200,
        )
        item = InvoiceItem(description="Shared Hosting (01/01/2026 - 31/01/2026)", amount=1000)
        context["invoice"] = invoice_context(invoice, [item], usd)
    for extra in TEMPLATE_EXTRAS.get(template_name, ()):
        context[extra] = {
            "new_password": "Xy7-sample-Pw",
            "reset_url": f"{settings.system_url.rstrip('/')}/reset?token=sample-token",
            "reset_token": "sample-token",
            "invite_url": f"{settings.system_url.rstrip('/')}/reset?token=sample-token",
            "invite_token": "sample-token",
            "reason": "lost device",
        }[extra]
    return context


# --------------------------------------------------------------------------- templates


def check_template(name: str, subject: str, body_text: str, body_html: str = "") -> Rendered:
    """Render against every merge field the template may use; refuse what fails, and what
    goes over the render budget (``rules.mail.sandbox``): the check a send would make, at save.

    The name and subject are single lines (``store.text``): both become email headers.
    The bodies may hold any character but a lone surrogate (not Unicode text: no mail,
    file or database can store it).
    """
    if not subject.strip() or not body_text.strip():
        raise TemplateRefused("subject and body are required")
    if len(subject) > SUBJECT_MAX or len(body_text) > BODY_MAX or len(body_html) > BODY_MAX:
        raise TemplateRefused("template is too long")
    if not name.strip() or len(name) > NAME_MAX:
        raise TemplateRefused(f"a template name is 1 to {NAME_MAX} characters")
    for label, text in (("name", name), ("subject", subject)):
        refusal = text_refusal(text)
        if refusal:
            raise TemplateRefused(f"{label}: {refusal}")
    for label, text in (("body", body_text), ("HTML body", body_html)):
        refusal = surrogate_refusal(text)
        if refusal:
            raise TemplateRefused(f"{label}: {refusal}")
    return render(subject, body_text, body_html, sample_context(name, load_settings()))


def save_template(
    name: str, subject: str, body_text: str, body_html: str, actor: Actor
) -> EmailTemplate:
    """Create or update a template after ``check_template``; audited."""
    check_template(name, subject, body_text, body_html)
    with transaction():
        template = EmailTemplate.get_or_none(EmailTemplate.name == name)
        if template is None:
            template = EmailTemplate.create(
                name=name, subject=subject, body_text=body_text, body_html=body_html
            )
            record(actor, "email_template", template.id, "create", new_value=name)
        else:
            for field, value in (
                ("subject", subject),
                ("body_text", body_text),
                ("body_html", body_html),
            ):
                if getattr(template, field) != value:
                    record(
                        actor,
                        "email_template",
                        template.id,
                        "update",
                        field=field,
                        old_value=getattr(template, field),
                        new_value=value,
                    )
                    setattr(template, field, value)
            template.updated_at = utcnow()
            template.save()
    return template


def get_template(name: str) -> EmailTemplate:
    template = EmailTemplate.get_or_none(EmailTemplate.name == name)
    if template is None:
        raise RuleError(f"no email template named {name!r}")
    return template
