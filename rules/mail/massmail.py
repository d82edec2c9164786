"""Mass mail: choose recipients by filters, preview, then queue them all in one transaction."""

from __future__ import annotations

import datetime as dt
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from rules.audit import Actor, record
from rules.dates import parse_date
from rules.errors import RuleError, ValidationError, transaction
from rules.mail.marketing import CLOSED, OPTED_OUT, marketing_refusal
from rules.mail.outbox import Notice, queue
from rules.mail.templates import Rendered, client_context, company_context, get_template, render
from rules.permissions import require
from store.models import Addon, Client, ClientGroup, Currency, Domain, Service
from store.models.enums import ACTIVE_DOMAIN_STATUSES, ACTIVE_SERVICE_STATUSES, ClientStatus
from store.settings import load_settings

FILTER_KEYS = (
    "status",
    "group",
    "country",
    "currency",
    "has_active_product",
    "created_from",
    "created_to",
)


@dataclass(frozen=True)
class MassMailFilter:
    """Who receives a mass mail. Empty lists mean "any"; Closed clients only when asked for,
    and never marketing mail (``rules.mail.marketing``)."""

    statuses: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    countries: tuple[str, ...] = ()
    currencies: tuple[str, ...] = ()
    has_active_product: bool | None = None
    created_from: dt.date | None = None
    created_to: dt.date | None = None

    @classmethod
    def parse(cls, pairs: list[str]) -> MassMailFilter:
        """From ``key=value`` strings (values comma-separated), as the command line gives them."""
        values: dict[str, list[str]] = {}
        errors: dict[str, str] = {}
        for pair in pairs:
            key, sep, value = pair.partition("=")
            if not sep or key not in FILTER_KEYS:
                errors[pair] = f"use key=value with key one of {', '.join(FILTER_KEYS)}"
                continue
            values.setdefault(key, []).extend(v.strip() for v in value.split(",") if v.strip())
        kwargs: dict[str, Any] = {}
        for key, items in values.items():
            try:
                kwargs.update(_parse_one(key, items))
            except ValueError as exc:
                errors[key] = str(exc)
        if errors:
            raise ValidationError(errors)
        return cls(**kwargs)


#: The list filters: the command line's key and the ``MassMailFilter`` field it fills.
_LIST_FIELDS = {"group": "groups", "country": "countries", "currency": "currencies"}


def _parse_one(key: str, items: list[str]) -> dict[str, Any]:
    if key == "status":
        allowed = {s.value for s in ClientStatus}
        bad = [s for s in items if s not in allowed]
        if bad:
            raise ValueError(f"unknown status {', '.join(bad)}")
        return {"statuses": tuple(items)}
    if key in _LIST_FIELDS:
        upper = key != "group"
        return {_LIST_FIELDS[key]: tuple(i.upper() if upper else i for i in items)}
    if key == "has_active_product":
        if items not in (["yes"], ["no"], ["true"], ["false"]):
            raise ValueError("yes or no")
        return {"has_active_product": items[0] in ("yes", "true")}
    if len(items) != 1:
        raise ValueError("must be one date YYYY-MM-DD")
    return {key: parse_date(items[0])}  # inside the plausible window (rules.dates)


@dataclass
class Preview:
    count: int
    sample: Rendered | None
    sample_to: str = ""
    #: Matches left out of marketing mail (``rules.mail.marketing``): opted out, Closed.
    skipped_opt_out: int = 0
    skipped_closed: int = 0
    recipient_ids: list[int] = field(default_factory=list, repr=False)


def _base_query(flt: MassMailFilter) -> Any:
    query = Client.select(Client.id, marketing_refusal().alias("refusal"))
    statuses = flt.statuses or (ClientStatus.ACTIVE, ClientStatus.INACTIVE)
    query = query.where(Client.status.in_(statuses))
    if flt.groups:
        query = query.join(ClientGroup).where(ClientGroup.name.in_(flt.groups))
    if flt.countries:
        query = query.where(Client.country.in_(flt.countries))
    if flt.currencies:
        query = query.switch(Client).join(Currency).where(Currency.code.in_(flt.currencies))
    if flt.created_from:
        query = query.where(Client.created_at >= dt.datetime.combine(flt.created_from, dt.time()))
    if flt.created_to:
        end = dt.datetime.combine(flt.created_to + dt.timedelta(days=1), dt.time())
        query = query.where(Client.created_at < end)
    if flt.has_active_product is not None:
        active = (
            Service.select(Service.client).where(Service.status.in_(ACTIVE_SERVICE_STATUSES))
            | Addon.select(Addon.client).where(Addon.status.in_(ACTIVE_SERVICE_STATUSES))
            | Domain.select(Domain.client).where(Domain.status.in_(ACTIVE_DOMAIN_STATUSES))
        )
        condition = Client.id.in_(active) if flt.has_active_product else Client.id.not_in(active)
        query = query.where(condition)
    return query


def preview(flt: MassMailFilter, template_name: str, *, marketing: bool = True) -> Preview:
    """How many would receive it, and the message rendered for the first of them.

    Marketing mail leaves out the clients ``rules.mail.marketing`` refuses (opted out, Closed),
    counted by reason; delivery applies the same rule again when each message leaves.
    """
    template = get_template(template_name)
    matches = list(_base_query(flt).order_by(Client.id))
    refused = Counter(c.refusal for c in matches if marketing and c.refusal)
    ids = [c.id for c in matches if not (marketing and c.refusal)]
    sample = None
    sample_to = ""
    if ids:
        client = Client.get_by_id(ids[0])
        context = {"client": client_context(client), "company": company_context(load_settings())}
        sample = render(template.subject, template.body_text, template.body_html, context)
        sample_to = client.email
    return Preview(len(ids), sample, sample_to, refused[OPTED_OUT], refused[CLOSED], ids)


def send_mass_mail(
    flt: MassMailFilter, template_name: str, actor: Actor, *, marketing: bool = True
) -> int:
    """Queue the mass mail for every recipient in one transaction; return how many."""
    require(actor, "mail.send")
    plan = preview(flt, template_name, marketing=marketing)
    if plan.count == 0:
        raise RuleError("no client matches these filters")
    batch = uuid.uuid4().hex[:12]
    notices = [Notice(client_id=i, unique_key=f"mass:{batch}:{i}") for i in plan.recipient_ids]
    with transaction():
        queued = queue(template_name, notices, marketing=marketing)
        record(
            actor,
            "mass_mail",
            None,
            "send",
            field=template_name,
            new_value=f"{queued} recipients, batch {batch}, filters {flt}",
        )
    return queued
