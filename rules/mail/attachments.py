"""Which outbox emails carry their invoice's PDF, and how an email names its invoice.

"Invoice Created" and "Invoice Payment Confirmation" carry the invoice as a PDF, drawn
when the email is delivered (issue 13), never stored in the outbox. The outbox has no
invoice column: an invoice email's ``unique_key`` names the invoice, as
``<kind>:<invoice id>[:<more>]`` (``invoice_created:12`` from invoicing, ``paid:12`` from
a capture, ``resend:12:<random>`` for a copy). ``rules.mail.outbox.queue`` gives every
such email a key of that shape, whoever queues it, so none leaves without its PDF.
"""

from __future__ import annotations

import re
import uuid

INVOICE_PDF_TEMPLATES = frozenset({"Invoice Created", "Invoice Payment Confirmation"})

_INVOICE_KEY = re.compile(r"[a-z_]+:([0-9]+)(?::|$)")


def invoice_of(template: str, unique_key: str | None) -> int | None:
    """The id of the invoice whose PDF an email of ``template`` with ``unique_key``
    carries; None for other templates, or a key that names no invoice."""
    if template not in INVOICE_PDF_TEMPLATES or not unique_key:
        return None
    found = _INVOICE_KEY.match(unique_key)
    return int(found.group(1)) if found else None


def invoice_key(kind: str, invoice_id: int) -> str:
    """A unique key that names invoice ``invoice_id`` and is never taken twice (a queued
    email without a key of its own, a resent copy): ``<kind>:<id>:<random>``."""
    return f"{kind}:{invoice_id}:{uuid.uuid4().hex}"
