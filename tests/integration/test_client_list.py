"""The list's queries: fixed cost per page, search through the index, literal text."""

from __future__ import annotations

import pytest
from playhouse.test_utils import count_queries

from rules.audit import SYSTEM_CLI
from rules.clients.profile import create_client, update_client
from rules.clients.validation import format_phone
from store.client_list import READ_AHEAD, ListQuery, ListReader, count, fetch_page, warm_steps
from store.db import is_postgres, writer
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
            values = dict(zip(cols, row, strict=True))
            Client.insert(**values, **Client.derived_values(values)).execute()


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
    # A one-character search's first page also asks SQLite whether the database changed
    # (``PRAGMA data_version``), to use the page it kept (``store.client_list``).
    checks = 1 if len(query.search) == 1 and not is_postgres() else 0
    assert costs == [2 + checks, 2 + checks]


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


def test_a_search_that_is_a_client_id_lists_that_client_first(db: str) -> None:
    """Typing an id then Enter opens that client: it is first whatever the sort, before
    clients whose phone, email or name merely contain the digits."""
    _bulk_clients(300)
    update_client(5, 1, {"phone": "+44 20 7281 8750"}, SYSTEM_CLI)  # sorts before #281
    update_client(12, 1, {"email": "x281@example.com"}, SYSTEM_CLI)
    for sort in ("name", "id", "created"):
        for descending in (False, True):
            for term in ("281", "#281", " 281 "):
                rows = fetch_page(ListQuery(search=term, sort=sort, descending=descending), 0, 10)
                assert rows[0].id == 281, (term, sort, descending)
            rows = fetch_page(ListQuery(search="281", sort=sort, descending=descending), 0, 10)
            assert {5, 12} <= {r.id for r in rows[1:]}  # still found, after it
    assert fetch_page(ListQuery(search="28"), 0, 1)[0].id == 28  # shorter ids too
    # Digits int() cannot read ("²" is a digit to str.isdigit) are text, not an id:
    # searching for them finds nothing and fails nothing; other scripts' decimals are ids.
    for term in ("²", "#²", "1²", "⑴"):
        assert fetch_page(ListQuery(search=term), 0, 5) == []
        assert count(ListQuery(search=term)) == 0
    assert fetch_page(ListQuery(search="٢٨١"), 0, 1)[0].id == 281


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


def _client(first: str, last: str, email: str, **extra: str) -> Client:
    usd = Currency.get_or_create(code="USD", defaults={"is_default": True})[0]
    return create_client(
        {"first_name": first, "last_name": last, "email": email, "currency_id": usd.id, **extra},
        SYSTEM_CLI,
    )


def _found(term: str) -> list[str]:
    return [f"{r.first_name} {r.last_name}" for r in fetch_page(ListQuery(search=term), 0, 50)]


def test_search_finds_what_staff_see_and_type(db: str) -> None:
    """Any case of any script, several words, the phone as the profile shows it, the id."""
    emile = _client("Émile", "Zola", "ezola@example.org", phone="+33 6 12 34 56 78")
    _client("Jürgen", "Weiß", "jw@example.org", company="Übersee Hosting GmbH", country="DE")
    _client("Siobhán", "O'Brien", "sob@example.org", country="GB", phone="020 7183 8750")
    _client("Ólafur", "Arnalds", "oa@example.org")
    _client("Σωκράτης", "Παπαδόπουλος", "sp@example.org")
    _client("Дмитрий", "Иванов", "di@example.org", company="ООО Ромашка")
    _client("Ана", "Ng", "ng@example.org")
    emile_row = Client.get_by_id(emile.id)
    for term, who in [
        ("Émile Zola", "Émile Zola"),
        ("émile zola", "Émile Zola"),
        ("ÉMILE ZOLA", "Émile Zola"),
        ("émile", "Émile Zola"),
        ("übersee hosting", "Jürgen Weiß"),
        ("ÜBERSEE HOSTING GMBH", "Jürgen Weiß"),
        ("jürgen weiß", "Jürgen Weiß"),
        ("JÜRGEN WEISS", "Jürgen Weiß"),  # full case folding: ß is ss
        ("weiss", "Jürgen Weiß"),
        ("siobhán o'brien", "Siobhán O'Brien"),
        ("SIOBHÁN", "Siobhán O'Brien"),
        ("ól", "Ólafur Arnalds"),
        ("ÓL", "Ólafur Arnalds"),
        ("σωκράτης παπαδόπουλος", "Σωκράτης Παπαδόπουλος"),
        ("ΣΩΚΡΆΤΗΣ", "Σωκράτης Παπαδόπουλος"),
        ("дмитрий иванов", "Дмитрий Иванов"),
        ("ооо ромашка", "Дмитрий Иванов"),
        ("ан", "Ана Ng"),
        ("EZOLA@EXAMPLE.ORG", "Émile Zola"),
        ("EZ", "Émile Zola"),
        # the phone as the profile shows it (format_phone), as dialled, as stored
        (format_phone(emile_row.phone), "Émile Zola"),
        ("06 12 34 56 78", "Émile Zola"),
        ("+33612345678", "Émile Zola"),
        ("+44 20 7183 8750", "Siobhán O'Brien"),
        ("020 7183 8750", "Siobhán O'Brien"),
        ("(020) 7183-8750", "Siobhán O'Brien"),
        ("02071838750", "Siobhán O'Brien"),
        ("7183 8750", "Siobhán O'Brien"),
        # the id as the list and the profile show it
        (str(emile.id), "Émile Zola"),
        (f"#{emile.id}", "Émile Zola"),
    ]:
        assert who in _found(term), term
    assert _found("émile weiß") == []
    assert _found("zola jürgen") == []
    assert count(ListQuery(search="Ú")) == 0


def test_search_finds_what_staff_see_and_type_from_every_writer(db: str) -> None:
    """Imported, demo and edited clients are searchable the same way; the SQLite index
    stays consistent with the table through inserts, updates and deletes."""
    from rules.demo import generate_demo
    from rules.interchange.importer import import_document
    from store.db import database, is_sqlite

    generate_demo(40, seed=3)
    demo = Client.get_by_id(17)
    assert 17 in [r.id for r in fetch_page(ListQuery(search=demo.first_name.upper()), 0, 50)]
    assert 17 in [
        r.id
        for r in fetch_page(ListQuery(search=f"{demo.first_name} {demo.last_name}".upper()), 0, 50)
    ]
    import_document(
        {
            "format": "gobiller/1",
            "clients": [
                {
                    "id": 900,
                    "first_name": "Ærøskøbing",
                    "last_name": "Ødegård",
                    "email": "ae@example.org",
                    "currency": "USD",
                },
                {
                    "id": 901,
                    "first_name": "Østerbro",
                    "last_name": "Ærø",
                    "email": "oe@example.org",
                    "currency": "USD",
                },
            ],
        }
    )
    assert _found("ÆRØSKØBING ØDEGÅRD") == ["Ærøskøbing Ødegård"]
    update_client(900, 1, {"last_name": "Åberg"}, SYSTEM_CLI)
    assert _found("ærøskøbing åberg") == ["Ærøskøbing Åberg"]
    assert _found("ødegård") == []
    assert _found("østerbro ærø") == ["Østerbro Ærø"]
    # A client with no history (clients with history are closed, never deleted).
    Client.delete().where(Client.id == 901).execute()
    assert _found("østerbro") == []
    if is_sqlite():
        database.execute_sql(
            "INSERT INTO client_search (client_search, rank) VALUES ('integrity-check', 1)"
        )


def test_the_list_reader_answers_as_the_queries_do_and_warms_without_changing_them(
    db: str,
) -> None:
    """The list's searches go through one reader thread (one warm connection): same
    answers, errors raised in the caller, the warming walk ends, the thread ends."""
    _bulk_clients(300)
    reader = ListReader()
    queries = [ListQuery(), ListQuery(search="Last00012"), ListQuery(search="c7", sort="id")]
    for q in queries:
        assert reader.call(fetch_page, q, 0, 50) == fetch_page(q, 0, 50)
        assert reader.call(count, q) == count(q)
    with pytest.raises(ZeroDivisionError):
        reader.call(lambda: 1 // 0)
    steps = warm_steps()
    assert len(steps) == (0 if is_postgres() else 5 + len(READ_AHEAD))
    for step in steps:
        for _ in range(1000):  # each walk ends
            if not step():
                break
        else:
            raise AssertionError("a warming walk never ended")
    reader.warm()
    for q in queries:
        assert reader.call(fetch_page, q, 0, 50) == fetch_page(q, 0, 50)
    reader.close()
    assert reader._thread is not None
    reader._thread.join(10)
    assert not reader._thread.is_alive()


async def test_a_list_read_given_up_before_it_started_is_not_run(db: str) -> None:
    """``ListReader.ask`` answers on the event loop as ``call`` does; a newer keystroke
    cancels the older search's task, and its read, still queued behind another, is dropped
    instead of run (a burst of keys reads once, not once per key)."""
    import asyncio
    import threading

    _bulk_clients(30)
    reader = ListReader()
    q = ListQuery(search="Last00001")
    assert await reader.ask(fetch_page, q, 0, 50) == fetch_page(q, 0, 50)
    with pytest.raises(ZeroDivisionError):
        await reader.ask(lambda: 1 // 0)
    busy, ran = threading.Event(), []
    blocker = asyncio.ensure_future(reader.ask(busy.wait, 10))
    stale = asyncio.ensure_future(reader.ask(ran.append, "stale"))
    await asyncio.sleep(0)  # both queued
    stale.cancel()
    with pytest.raises(asyncio.CancelledError):
        await stale
    busy.set()
    assert await blocker is True
    assert await reader.ask(ran.append, "fresh") is None
    assert ran == ["fresh"]
    reader.close()


def test_a_one_character_search_page_is_kept_only_while_nothing_changed(db: str) -> None:
    """A one-character search's first page (the costliest search, and the first key of
    every new one) is read once per thread and kept while the database is unchanged: a
    write on this connection or a commit on any other shows at the next read."""
    import threading

    from store.bulk import reset_sequences

    _bulk_clients(30)
    reset_sequences((Client,))  # the bulk rows took ids by hand
    q = ListQuery(search="l")
    first = fetch_page(q, 0, 200)
    assert [r.last_name for r in first][:2] == ["Last000001", "Last000002"]
    with count_queries() as counter:
        assert fetch_page(q, 0, 200) == first
    assert counter.count == 1  # SQLite: PRAGMA data_version only (PostgreSQL: the page)
    create_client(
        {"first_name": "Lin", "last_name": "Aardvark", "email": "l@a.example"}, SYSTEM_CLI
    )
    assert fetch_page(q, 0, 200)[0].last_name == "Aardvark"  # this connection's own write

    def elsewhere() -> None:  # another connection (peewee's per-thread one) commits
        create_client(
            {"first_name": "Lou", "last_name": "Aaberg", "email": "lou@a.example"}, SYSTEM_CLI
        )
        Client._meta.database.close()

    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join(30)
    assert [r.last_name for r in fetch_page(q, 0, 200)][:2] == ["Aaberg", "Aardvark"]
