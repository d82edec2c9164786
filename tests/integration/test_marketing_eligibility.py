"""Marketing eligibility (opt-out, Closed) is checked when a message leaves, not only when
it is queued; a resend is refused by the same rule."""

from __future__ import annotations

import datetime as dt

import pytest
from playhouse.test_utils import count_queries

from rules.audit import SYSTEM_CLI, Actor
from rules.clients.profile import update_client
from rules.errors import RuleError
from rules.mail.delivery import SmtpTransport, flush, resend
from rules.mail.marketing import CLOSED, OPTED_OUT
from rules.mail.massmail import MassMailFilter, preview, send_mass_mail
from rules.mail.outbox import Notice, queue
from store.config import SmtpConfig
from store.db import writer
from store.models import Client, Currency, Email, utcnow
from store.models.enums import ActorType, Source
from store.settings import save_settings
from tests.conftest import SmtpRecorder

STAFF = Actor(ActorType.STAFF, "support1", Source.TUI, 1, "billing")


def _clients(n: int) -> list[Client]:
    usd = Currency.get_or_create(code="USD", defaults={"is_default": True})[0]
    return [
        Client.create(first_name=f"C{i}", last_name="X", email=f"c{i}@example.com", currency=usd)
        for i in range(n)
    ]


def _staff_sets(client: Client, **changes: object) -> None:
    """What the profile's Save Changes does (F8 opt-out, Status)."""
    update_client(client.id, Client.get_by_id(client.id).version, changes, STAFF)


def _later() -> dt.datetime:
    return utcnow() + dt.timedelta(seconds=1)


def test_marketing_no_longer_wanted_when_it_leaves_is_skipped_not_sent(
    db: str, smtp_server: tuple[SmtpRecorder, SmtpConfig]
) -> None:
    recorder, config = smtp_server
    keen, opts_out, closes, both = _clients(4)
    assert send_mass_mail(MassMailFilter(), "Mass Mail", SYSTEM_CLI) == 4
    with writer():  # transactional mail ignores the marketing rule
        queue("Password Reset Confirmation", [Notice(opts_out.id), Notice(closes.id)])
    _staff_sets(opts_out, marketing_opt_out=True)
    _staff_sets(closes, status="Closed")
    _staff_sets(both, marketing_opt_out=True, status="Closed")

    result = flush(SmtpTransport(config, "billing@example.com"), now=_later)

    assert (result.sent, result.skipped, result.failed) == (3, 3, 0)
    assert sorted(m.rcpt_tos[0] for m in recorder.messages) == sorted(
        [keen.email, opts_out.email, closes.email]
    )
    marketing = {
        e.client_id: (e.status, e.last_error, e.sent_at)
        for e in Email.select().where(Email.marketing)
    }
    assert marketing == {
        keen.id: ("sent", "", marketing[keen.id][2]),
        opts_out.id: ("skipped", OPTED_OUT, None),
        closes.id: ("skipped", CLOSED, None),
        both.id: ("skipped", OPTED_OUT, None),
    }
    # Skipped is final: a later flush neither sends nor counts them again.
    again = flush(SmtpTransport(config, "billing@example.com"), now=_later)
    assert (again.sent, again.skipped) == (0, 0)


def test_marketing_eligibility_at_delivery_is_one_query_per_batch(
    db: str, smtp_server: tuple[SmtpRecorder, SmtpConfig]
) -> None:
    """The check reads clients once per leased batch, however many emails it holds; a
    batch that is skipped whole does not stop the flush."""
    recorder, config = smtp_server
    save_settings({"mail_rate_limit": 1000})
    reads = {}
    for opted_out in (3, 28, 30):  # of opted_out + 2 in the outbox; 30 a batch
        Email.delete().execute()
        Client.delete().execute()
        clients = _clients(opted_out + 2)
        send_mass_mail(MassMailFilter(), "Mass Mail", SYSTEM_CLI)
        for c in clients[:opted_out]:  # the first in the outbox
            Client.update(marketing_opt_out=True).where(Client.id == c.id).execute()
        with count_queries() as counter:
            result = flush(SmtpTransport(config, "billing@example.com"), now=_later, batch=30)
        assert (result.sent, result.skipped) == (2, opted_out)
        queries = [q.msg[0] for q in counter.get_queries()]
        reads[opted_out] = sum('FROM "client"' in q for q in queries)
    assert reads == {3: 1, 28: 1, 30: 2}, reads  # one batch, one batch, two batches
    assert len(recorder.messages) == 6


def test_mass_mail_never_queues_marketing_for_closed_clients(db: str) -> None:
    keen, closed = _clients(2)
    Client.update(status="Closed").where(Client.id == closed.id).execute()
    flt = MassMailFilter.parse(["status=Active,Closed"])
    plan = preview(flt, "Mass Mail")
    assert (plan.recipient_ids, plan.skipped_closed, plan.skipped_opt_out) == ([keen.id], 1, 0)
    assert preview(flt, "Mass Mail", marketing=False).recipient_ids == [keen.id, closed.id]


@pytest.mark.parametrize("change", [{"marketing_opt_out": True}, {"status": "Closed"}])
def test_marketing_resend_to_a_client_no_longer_wanted_is_refused(
    db: str, change: dict[str, object]
) -> None:
    [client] = _clients(1)
    send_mass_mail(MassMailFilter(), "Mass Mail", SYSTEM_CLI)
    with writer():
        queue("Password Reset Confirmation", [Notice(client.id)])
    _staff_sets(client, **change)
    marketing = Email.get(Email.marketing)
    transactional = Email.get(~Email.marketing)
    reason = OPTED_OUT if "marketing_opt_out" in change else CLOSED
    with pytest.raises(RuleError, match=f"is marketing and {reason}: not resent"):
        resend(marketing.id, SYSTEM_CLI)
    assert resend(transactional.id, SYSTEM_CLI).to == client.email
    assert Email.select().count() == 3
