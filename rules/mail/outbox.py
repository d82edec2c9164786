"""The transactional outbox: queuing rendered emails.

Emails are queued in the caller's transaction: an email exists if and only if
the change that caused it committed; a ``unique_key`` makes queuing the same
notice twice a no-op.
"""

from __future__ import annotations

from collections import namedtuple
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from rules.errors import RuleError
from rules.mail import sql as mail_sql
from rules.mail.attachments import INVOICE_PDF_TEMPLATES, invoice_key, invoice_of
from rules.mail.sql import NOT_RENDERED
from rules.mail.templates import (
    INVOICE_TEMPLATES,
    MASK,
    SUBJECT_MAX,
    TemplateOverBudget,
    TemplateRefused,
    client_context,
    company_context,
    get_template,
    invoice_context,
    render,
)
from store.bulk import bulk_insert
from store.db import database, writer
from store.models import (
    Client,
    Contact,
    Currency,
    Email,
    Invoice,
    InvoiceItem,
    utcnow,
)
from store.models.enums import EmailStatus
from store.queries import among, balances
from store.settings import Settings, load_settings

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
    settings: Settings | None = None,
) -> int:
    """Render and queue ``notices`` in the caller's transaction; return how many were new.

    A fixed number of queries whatever the count, and a notice whose ``unique_key``
    is already queued is skipped. Templates ``rules.mail.sql`` can compile are
    written by one ``INSERT … SELECT`` (``set_based=False`` forces the other path,
    for tests); the rest are rendered here, reading clients, currencies, billing
    contacts, invoices and items once each. ``settings``: those in force (read here
    when not given; a cron run passes the ones it read once).
    """
    if not notices:
        return 0
    if template_name in INVOICE_PDF_TEMPLATES:
        notices = [_naming_its_invoice(template_name, n) for n in notices]
    template = get_template(template_name)
    if template.disabled:
        return 0
    settings = settings or load_settings()
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
    clients = {c.id: c for c in _by_keys(Client, Client.id, client_ids, CLIENT_FIELDS)}
    currencies = {c.id: c for c in Currency.select()}
    billing_ids = [c.billing_contact_id for c in clients.values() if c.billing_contact_id]
    contacts = {
        c.id: c for c in _by_keys(Contact, Contact.id, billing_ids, (Contact.id, Contact.email))
    }
    invoice_ids = sorted({n.invoice_id for n in notices if n.invoice_id})
    invoices = {i.id: i for i in _by_keys(Invoice, Invoice.id, invoice_ids, INVOICE_FIELDS)}
    owed = balances(invoice_ids)
    items: dict[int, list[InvoiceItem]] = {}
    for item in _by_keys(InvoiceItem, InvoiceItem.invoice, invoice_ids, ITEM_FIELDS):
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
                _notice_context(notice, client, company, invoices, items, currencies, owed),
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


def _naming_its_invoice(template_name: str, notice: Notice) -> Notice:
    """``notice`` with a unique key that names its invoice (``rules.mail.attachments``),
    so the email carries the invoice's PDF whoever queued it: a notice without a key gets
    a fresh one; a key of the caller's is kept inside the new one, so queuing it twice
    is still a no-op."""
    if notice.invoice_id is None or invoice_of(template_name, notice.unique_key) is not None:
        return notice
    if notice.unique_key is None:
        return replace(notice, unique_key=invoice_key("invoice", notice.invoice_id))
    return replace(notice, unique_key=f"invoice:{notice.invoice_id}:{notice.unique_key}"[:200])


def _notice_context(
    notice: Notice,
    client: Any,
    company: dict[str, Any],
    invoices: dict[int, Any],
    items: dict[int, list[InvoiceItem]],
    currencies: dict[int, Currency],
    owed: dict[int, int],
) -> dict[str, Any]:
    context: dict[str, Any] = {"client": client_context(client), "company": company}
    if notice.invoice_id is not None:
        invoice = invoices[notice.invoice_id]
        context["invoice"] = invoice_context(
            invoice,
            sorted(items.get(invoice.id, []), key=lambda i: (i.sort_order, i.id)),
            currencies[client.currency_id],
            owed.get(invoice.id),
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


def _by_keys(model: Any, field: Any, ids: Iterable[int], columns: Sequence[Any]) -> list[Any]:
    """Rows (named tuples of ``columns``) whose ``field`` is one of ``ids``: one query,
    the ids as one parameter (``store.queries.among``).

    Plain rows and named tuples, not peewee rows: building a model costs more than
    rendering the email the row feeds. Dates come back as the driver gives them (ISO
    text on SQLite); the context renders them as text.
    """
    names = [getattr(c, "_alias", None) or c.name for c in columns]
    shape = _row_shape(tuple(names))
    query = model.select(*(_unaliased(c) for c in columns)).where(among(field, ids))
    return list(map(shape._make, database.execute(query).fetchall()))


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
