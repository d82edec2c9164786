"""The list's queries: fixed cost per page, search through the index, literal text."""

from __future__ import annotations

import pytest
from playhouse.test_utils import count_queries

from rules.audit import SYSTEM_CLI
from rules.clients import update_client
from store.client_list import ListQuery, count, fetch_page
from store.db import writer
from store.models import Client, ClientGroup, Currency


def _bulk_clients(n: int, start: int = 1) -> None:
    usd = Currency.get_or_create(code="USD", defaults={"is_default": True})[0]
    group = ClientGroup.get_or_create(name="VIP")[0]
    rows = [
        (
            i,
            f"First{i}",
            f"Last{i:06d}",
            "Acme" if i % 3 else "[TODO] Labs",
            f"c{i}@example.com",
            "Active" if i % 4 else "Closed",
            usd.id,
            group.id if i % 5 == 0 else None,
            "2026-01-01 00:00:00",
            "2026-01-01 00:00:00",
        )
        for i in range(start, start + n)
    ]
    cols = (
        "id",
        "first_name",
        "last_name",
        "company",
        "email",
        "status",
        "currency_id",
        "group_id",
        "created_at",
        "updated_at",
    )
    # Columns left out take their NOT NULL defaults through a normal insert path.
    with writer():
        for row in rows:
            Client.insert(dict(zip(cols, row, strict=True))).execute()


@pytest.mark.parametrize(
    "query",
    [
        ListQuery(),
        ListQuery(search="Last0000"),
        ListQuery(search="TODO", status="Active"),
        ListQuery(search="5", sort="created", descending=True),
        ListQuery(status="Closed", group_id=1, sort="id"),
    ],
)
def test_a_page_costs_one_query_whatever_the_size(db: str, query: ListQuery) -> None:
    costs = []
    for total in (10, 1000):
        _bulk_clients(total - Client.select().count(), start=Client.select().count() + 1)
        with count_queries() as counter:
            fetch_page(query, 0, 200)
            fetch_page(query, 200, 200)
        costs.append(counter.count)
    assert costs == [2, 2]


def test_search_finds_substrings_and_ids(db: str) -> None:
    _bulk_clients(300)
    assert count(ListQuery(search="ast00012")) == 10  # Last000120 .. Last000129
    assert [r.id for r in fetch_page(ListQuery(search="c77@"), 0, 10)] == [77]
    assert 42 in [r.id for r in fetch_page(ListQuery(search="42"), 0, 50)]
    assert count(ListQuery(search="[todo]")) == 100
    assert count(ListQuery(search="TODO", status="Closed")) == count(
        ListQuery(search="[TODO] Labs", status="Closed")
    )
    assert count(ListQuery(search="nobody-has-this")) == 0


def test_search_index_follows_edits(db: str) -> None:
    _bulk_clients(5)
    update_client(3, 1, {"last_name": "Zwölfer"}, SYSTEM_CLI)
    assert [r.id for r in fetch_page(ListQuery(search="wölf"), 0, 10)] == [3]
    assert count(ListQuery(search="Last000003")) == 0
    # Clients are closed, never deleted; one without history can be removed by hand (one
    # with audit rows cannot: test_audit_log.py), and leaves the search too.
    assert count(ListQuery(search="Last000004")) == 1
    Client.delete().where(Client.id == 4).execute()
    assert count(ListQuery(search="Last000004")) == 0


def test_search_count_is_capped(db: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import store.client_list

    _bulk_clients(120)
    assert count(ListQuery(search="Last")) == 120
    monkeypatch.setattr(store.client_list, "SEARCH_CAP", 50)
    assert count(ListQuery(search="Last")) == 51  # shown as "50+: refine the search"
    assert count(ListQuery(search="La")) == 51
    assert count(ListQuery()) == 120  # the plain list is counted exactly
