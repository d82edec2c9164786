"""Email templates and the transactional outbox.

Templates are Jinja2 in a sandbox with strict undefined variables, so a
template that names an unknown field or reaches for Python internals is
refused when staff save it, never discovered by cron. Emails are queued in the
caller's transaction: an email exists if and only if the change that caused it
committed; a ``unique_key`` makes queuing the same notice twice a no-op.
"""

from __future__ import annotations

import datetime as dt
from collections import namedtuple
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from jinja2 import StrictUndefined, TemplateError

from rules import mail_sql
from rules.audit import Actor, record
from rules.errors import RuleError, busy_is_refusal
from rules.mail_sql import NOT_RENDERED
from rules.sandbox import BudgetedSandbox, BudgetExceeded, render_budget, render_within
from store.bulk import bulk_insert
from store.db import database, writer
from store.models import (
    Client,
    Contact,
    Currency,
    Email,
    EmailTemplate,
    Invoice,
    InvoiceItem,
    utcnow,
)
from store.models.enums import EmailStatus
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
    "Password Reset Validation": ("reset_url",),
    "Two-Factor Disabled": ("reason",),
}
#: Raw bulk insert: every NOT NULL column is given (peewee's defaults do not apply).
OUTBOX_COLUMNS = (
    "client_id",
    "template",
    "to",
    "subject",
    "body_text",
    "body_html",
    "masked_body",
    "unique_key",
    "marketing",
    "created_at",
    "next_attempt_at",
    "status",
    "message_id",
    "attempts",
    "lease_owner",
    "last_error",
)
SUBJECT_MAX = 255
NAME_MAX = 100
MASK = "********"
BODY_MAX = 100_000


class TemplateRefused(RuleError):
    """A template that cannot render safely; the message says where and why."""


class TemplateOverBudget(TemplateRefused):
    """A render that went over its time or size budget (``rules.sandbox``)."""


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
def _env() -> BudgetedSandbox:
    return MergeFieldEnvironment(undefined=StrictUndefined, autoescape=False)


@lru_cache(maxsize=1)
def _html_env() -> BudgetedSandbox:
    return MergeFieldEnvironment(undefined=StrictUndefined, autoescape=True)


@lru_cache(maxsize=512)
def _compile(source: str, html: bool) -> Any:
    template = (_html_env() if html else _env()).from_string(source)
    # A plain copy of the (fixed) globals: Jinja copies them into every render's
    # context, and copying its layered mapping costs more than the render.
    template.globals = dict(template.globals)
    return template


def render(subject: str, body_text: str, body_html: str, context: dict[str, Any]) -> Rendered:
    """Render the three parts under one budget (``rules.sandbox``: 100 ms, 256 KiB).

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
    are stripped, at most ``SUBJECT_MAX`` characters (``rules.mail_sql`` does the same)."""
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
    invoice: Invoice, items: Sequence[InvoiceItem], currency: Currency, paid: int = 0
) -> dict[str, Any]:
    """The ``invoice`` merge fields; amounts as ``store.money.format_money`` writes them."""
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
        "balance": format_money(invoice.total - paid, currency),
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
            "reset_url": f"{settings.system_url}reset?token=sample",
            "reason": "lost device",
        }[extra]
    return context


# --------------------------------------------------------------------------- templates


def check_template(name: str, subject: str, body_text: str, body_html: str = "") -> Rendered:
    """Render against every merge field the template may use; refuse what fails, and what
    goes over the render budget (``rules.sandbox``): the check a send would make, at save.

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
    with busy_is_refusal(), writer():
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


# --------------------------------------------------------------------------- queueing


@dataclass(frozen=True)
class Notice:
    """One email to queue: for a client, optionally about an invoice."""

    client_id: int
    invoice_id: int | None = None
    unique_key: str | None = None
    extras: tuple[tuple[str, str], ...] = ()


def queue(
    template_name: str,
    notices: Sequence[Notice],
    *,
    marketing: bool = False,
    set_based: bool = True,
) -> int:
    """Render and queue ``notices`` in the caller's transaction; return how many were new.

    A fixed number of queries whatever the count, and a notice whose ``unique_key``
    is already queued is skipped. Templates ``rules.mail_sql`` can compile are
    written by one ``INSERT … SELECT`` (``set_based=False`` forces the other path,
    for tests); the rest are rendered here, reading clients, currencies, billing
    contacts, invoices and items once each.
    """
    if not notices:
        return 0
    template = get_template(template_name)
    if template.disabled:
        return 0
    settings = load_settings()
    company = company_context(settings)
    is_invoice_mail = template_name in INVOICE_TEMPLATES
    stamp = utcnow().isoformat(" ")
    if set_based and not template.sensitive and not template.body_html:
        if not any(n.extras for n in notices):
            frozen = tuple(sorted(company.items()))
            sql = mail_sql.dialect()
            subject = mail_sql.compile_template(template.subject, frozen, sql)
            body = mail_sql.compile_template(template.body_text, frozen, sql)
            if subject is not None and body is not None:
                with writer():  # a savepoint inside the caller's transaction
                    return mail_sql.insert(
                        template_name,
                        subject,
                        body,
                        [(n.client_id, n.invoice_id, n.unique_key) for n in notices],
                        invoice_mail=is_invoice_mail,
                        marketing=marketing,
                        stamp=stamp,
                        subject_max=SUBJECT_MAX,
                    )
    client_ids = sorted({n.client_id for n in notices})
    clients = {c.id: c for c in _chunked(Client, Client.id, client_ids, CLIENT_FIELDS)}
    currencies = {c.id: c for c in Currency.select()}
    billing_ids = [c.billing_contact_id for c in clients.values() if c.billing_contact_id]
    contacts = {
        c.id: c for c in _chunked(Contact, Contact.id, billing_ids, (Contact.id, Contact.email))
    }
    invoice_ids = sorted({n.invoice_id for n in notices if n.invoice_id})
    invoices = {i.id: i for i in _chunked(Invoice, Invoice.id, invoice_ids, INVOICE_FIELDS)}
    items: dict[int, list[InvoiceItem]] = {}
    for item in _chunked(InvoiceItem, InvoiceItem.invoice, invoice_ids, ITEM_FIELDS):
        items.setdefault(item.invoice_id, []).append(item)
    rows: list[tuple[Any, ...]] = []
    over_budget: TemplateOverBudget | None = None
    for notice in notices:
        client = clients.get(notice.client_id)
        if client is None:
            raise RuleError(f"no client {notice.client_id}")
        if notice.invoice_id is not None and notice.invoice_id not in invoices:
            raise RuleError(f"no invoice {notice.invoice_id}")
        to = client.email
        contact = contacts.get(client.billing_contact_id) if is_invoice_mail else None
        if contact is not None:
            to = contact.email
        # One email that cannot be rendered fails alone, with the reason (PRODUCT.md §4);
        # a template over its budget once is not run again for the rest of the batch.
        if over_budget is not None:
            rows.append(
                _not_rendered(client.id, template_name, to, notice, marketing, stamp, over_budget)
            )
            continue
        try:
            rendered = render(
                template.subject,
                template.body_text,
                template.body_html,
                _notice_context(notice, client, company, invoices, items, currencies),
            )
        except TemplateOverBudget as exc:
            over_budget = exc
            rows.append(_not_rendered(client.id, template_name, to, notice, marketing, stamp, exc))
            continue
        except Exception as exc:  # noqa: BLE001  (any value that breaks this one email)
            rows.append(_not_rendered(client.id, template_name, to, notice, marketing, stamp, exc))
            continue
        masked = ""
        if template.sensitive:
            masked = rendered.body_text
            for _, secret in notice.extras:
                masked = masked.replace(secret, MASK) if secret else masked
        rows.append(
            (
                client.id,
                template_name,
                to,
                rendered.subject,
                rendered.body_text,
                rendered.body_html,
                masked,
                notice.unique_key,
                marketing,
                stamp,
                stamp,
                EmailStatus.QUEUED.value,
                "",
                0,
                "",
                "",
            )
        )
    with writer():  # a savepoint inside the caller's transaction
        return bulk_insert(Email, OUTBOX_COLUMNS, rows, skip_conflicts=True)


def _notice_context(
    notice: Notice,
    client: Any,
    company: dict[str, Any],
    invoices: dict[int, Any],
    items: dict[int, list[InvoiceItem]],
    currencies: dict[int, Currency],
) -> dict[str, Any]:
    context: dict[str, Any] = {"client": client_context(client), "company": company}
    if notice.invoice_id is not None:
        invoice = invoices[notice.invoice_id]
        context["invoice"] = invoice_context(
            invoice,
            sorted(items.get(invoice.id, []), key=lambda i: (i.sort_order, i.id)),
            currencies[client.currency_id],
        )
    context.update(notice.extras)
    return context


def _not_rendered(
    client_id: int,
    template_name: str,
    to: str,
    notice: Notice,
    marketing: bool,
    stamp: str,
    error: Exception,
) -> tuple[Any, ...]:
    """The outbox row of an email that could not be rendered: failed, with the reason,
    no body; its unique key is taken, so the rule does not try it again every run."""
    reason = (
        str(error) if isinstance(error, TemplateRefused) else f"{type(error).__name__}: {error}"
    )
    return (
        client_id,
        template_name,
        to,
        "",
        "",
        "",
        "",
        notice.unique_key,
        marketing,
        stamp,
        stamp,
        EmailStatus.FAILED.value,
        "",
        0,
        "",
        (NOT_RENDERED + reason)[:1000],
    )


def _chunked(model: Any, field: Any, ids: Iterable[int], columns: Sequence[Any]) -> list[Any]:
    """Rows (named tuples of ``columns``) whose ``field`` is in ``ids``, 10,000 ids a query.

    Plain SQL and named tuples, not peewee rows: building a model (or even a peewee
    parameter per id) costs more than rendering the email the row feeds. Dates come
    back as the driver gives them (ISO text on SQLite); the context renders them as text.
    """
    ids = list(ids)
    names = [getattr(c, "_alias", None) or c.name for c in columns]
    shape = _row_shape(tuple(names))
    table = model._meta.table_name
    selected = ", ".join(f'"{c.column_name}"' for c in (_unaliased(c) for c in columns))
    mark = database.param
    rows: list[Any] = []
    for start in range(0, len(ids), 10_000):
        batch = ids[start : start + 10_000]
        cursor = database.execute_sql(
            f'SELECT {selected} FROM "{table}" WHERE "{field.column_name}" IN '
            f"({', '.join([mark] * len(batch))})",
            batch,
        )
        rows.extend(map(shape._make, cursor.fetchall()))
    return rows


def _unaliased(column: Any) -> Any:
    return getattr(column, "node", column)


@lru_cache(maxsize=16)
def _row_shape(names: tuple[str, ...]) -> Any:
    return namedtuple("Row", names)


CLIENT_FIELDS = (
    Client.id,
    Client.first_name,
    Client.last_name,
    Client.company,
    Client.email,
    Client.address1,
    Client.address2,
    Client.city,
    Client.state,
    Client.postcode,
    Client.country,
    Client.currency.alias("currency_id"),
    Client.billing_contact.alias("billing_contact_id"),
)
INVOICE_FIELDS = (
    Invoice.id,
    Invoice.number,
    Invoice.date,
    Invoice.due_date,
    Invoice.date_paid,
    Invoice.status,
    Invoice.payment_method,
    Invoice.subtotal,
    Invoice.tax,
    Invoice.tax2,
    Invoice.total,
)
ITEM_FIELDS = (
    InvoiceItem.id,
    InvoiceItem.invoice.alias("invoice_id"),
    InvoiceItem.description,
    InvoiceItem.amount,
    InvoiceItem.sort_order,
)
