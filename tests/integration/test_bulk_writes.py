"""Bulk writes (COPY and UPDATE ... FROM VALUES on PostgreSQL, executemany and CASE on
SQLite) keep every value exactly, and the set-based email statements are planned as
index lookups on PostgreSQL, however many batches went before."""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from peewee import IntegrityError

from rules.billing.invoicing import INVOICE_COLUMNS
from rules.mail.outbox import OUTBOX_COLUMNS, Notice, queue
from store.bulk import bulk_insert, bulk_update, indexes_built_after, row_maker
from store.db import database, is_postgres, writer
from store.models import ActionLedger, Client, Currency, Email, Invoice
from store.models.enums import EmailStatus
from store.queries import among
from tests.conftest import bulk_clients

#: What COPY's text format must escape (tab, newline, carriage return, backslash), its
#: NULL and end-of-data markers as plain text, quotes, Unicode, and empty text.
AWKWARD = [
    "tab\there",
    "line\nbreak",
    "cr\r\nlf\r",
    "\\\\ two backslashes, \\\t backslash-tab",
    "back\\slash",
    "\\N",
    "\\.",
    "\\.\n",
    "ends with a backslash\\",
    "\\t is not a tab, \\n not a newline",
    "\\x41 is not bytes",
    "quote ' and \" and `",
    "Ünïcödé ✓ 🧾 עברית 中文 e\u0301",
    "",
    "  spaces kept  ",
    "comma, semicolon; pipe| and %s %(name)s {}",
]


def _client() -> int:
    with writer():
        currency = Currency.create(code="USD", prefix="$", suffix=" USD", is_default=True)
        columns, make = row_maker(Client)
        bulk_insert(
            Client,
            columns,
            [
                make(
                    id=1,
                    first_name="Ann",
                    last_name="Lee",
                    email="ann@example.com",
                    currency=currency.id,
                    created_at="2026-01-01 00:00:00",
                    updated_at="2026-01-01 00:00:00",
                )
            ],
        )
    return 1


def test_bulk_insert_keeps_every_text_value_exactly(db: str) -> None:
    client_id = _client()
    stamp = "2026-03-10 09:00:00"
    rows: list[tuple[Any, ...]] = []
    for n, text in enumerate(AWKWARD):
        rows.append(
            (
                client_id if n % 2 else None,  # NULL beside values
                "Invoice Created",
                text,
                text,
                text + "\n" + text,
                text,
                "",
                None if n % 3 else f"key:{text}",  # NULL and text in one column
                n % 2 == 0,
                stamp,
                stamp,
                EmailStatus.QUEUED if n % 2 else "queued",  # a str enum is its value
                "",
                n,
                "",
                text,
            )
        )
    with writer():
        assert bulk_insert(Email, OUTBOX_COLUMNS, rows) == len(rows)
    fields = [getattr(Email, "client" if c == "client_id" else c) for c in OUTBOX_COLUMNS]
    stored = list(Email.select(*fields).order_by(Email.id).tuples())
    expected = [
        tuple(dt.datetime.fromisoformat(v) if v == stamp else v for v in row) for row in rows
    ]
    assert stored == expected


def test_bulk_insert_keeps_dates_nulls_and_big_amounts(db: str) -> None:
    client_id = _client()
    due = dt.date(2026, 2, 28)
    rows = [
        (
            n + 1,
            client_id,
            f"INV-{n}",
            dt.date(2026, 1, 31),
            due.isoformat() if n else due,  # a date, or its ISO text
            None if n else dt.date(2026, 3, 1),
            "Unpaid",
            "banktransfer",
            9_007_199_254_740_993 if n else 0,  # beyond a double's exact integers
            0,
            0,
            1,
            0,
            0,
            AWKWARD[n],
            "2026-01-31 12:00:00",
            1,
        )
        for n in range(3)
    ]
    with writer():
        bulk_insert(Invoice, INVOICE_COLUMNS, rows)
    stored = list(
        Invoice.select(Invoice.due_date, Invoice.date_paid, Invoice.subtotal, Invoice.notes)
        .order_by(Invoice.id)
        .tuples()
    )
    assert stored == [
        (due, dt.date(2026, 3, 1), 0, AWKWARD[0]),
        (due, None, 9_007_199_254_740_993, AWKWARD[1]),
        (due, None, 9_007_199_254_740_993, AWKWARD[2]),
    ]


def test_bulk_update_keeps_every_value_exactly(db: str) -> None:
    """Several columns at once, text, dates, NULLs and amounts, one row per key."""
    client_id = _client()
    with writer():
        for n in range(len(AWKWARD)):
            Invoice.create(
                client=client_id,
                number=f"INV-{n}",
                date=dt.date(2026, 1, 1),
                due_date=dt.date(2026, 1, 15),
                date_paid=dt.date(2026, 1, 2),
                payment_method="banktransfer",
                notes="before",
            )
    keys: Any = Invoice.select(Invoice.id).order_by(Invoice.id).tuples()
    ids = [invoice_id for (invoice_id,) in keys]
    changes = [
        (invoice_id, AWKWARD[n], None if n % 2 else dt.date(2026, 2, n + 1), 10**15 + n)
        for n, invoice_id in enumerate(ids)
    ]
    with writer():
        bulk_update(Invoice, ("notes", "date_paid", "total"), changes)
    stored = list(
        Invoice.select(Invoice.id, Invoice.notes, Invoice.date_paid, Invoice.total)
        .order_by(Invoice.id)
        .tuples()
    )
    assert stored == changes


def _recorded(run: Any) -> list[str]:
    """The text of every statement ``run()`` sent, on either database."""
    statements: list[str] = []
    connection = database.connection()
    if is_postgres():
        from psycopg2.extensions import cursor as plain_cursor

        base = connection.cursor_factory

        class Recording(base or plain_cursor):  # type: ignore[misc]
            def execute(self, sql: Any, args: Any = None) -> Any:
                statements.append(sql if isinstance(sql, str) else sql.decode())
                return super().execute(sql, args)

        connection.cursor_factory = Recording
        try:
            run()
        finally:
            connection.cursor_factory = base
    else:
        connection.set_trace_callback(statements.append)
        try:
            run()
        finally:
            connection.set_trace_callback(None)
    return statements


def test_new_rows_go_as_data_whatever_their_count(db: str) -> None:
    """The kind: an insert that skips rows already there (the action ledger's claims,
    the outbox's rendered emails, capture's transactions) sends its rows as COPY data on
    PostgreSQL, not as statement text to build, parse and plan: the same statements for
    3,000 rows as for 3. It returns the rows it inserted, skips the others, and keeps
    every text value exactly."""
    from rules.billing.automation import RunContext, claim
    from store.models import ActionLedger
    from store.settings import load_settings

    ctx = RunContext(dt.date(2026, 3, 10), load_settings())
    day = ctx.business_date

    def keys(numbers: range) -> list[tuple[str, str, dt.date]]:
        return [(f"invoice:{n}:{AWKWARD[n % len(AWKWARD)][:40]}", "first", day) for n in numbers]

    small: list[str] = []
    with writer():
        first = keys(range(3))
        small = _recorded(lambda: claim(ctx, "notice", first))
        assert claim(ctx, "notice", first) == set()  # already claimed: nothing won
    many = keys(range(3000))  # the first three are taken
    won: set[tuple[str, str, dt.date]] = set()

    def claim_many() -> None:
        won.update(claim(ctx, "notice", many))

    with writer():
        large = _recorded(claim_many)
    assert won == set(many[3:])
    stored: Any = ActionLedger.select(ActionLedger.subject, ActionLedger.stage).tuples()
    assert sorted(stored) == sorted((subject, stage) for subject, stage, _ in many)
    if is_postgres():
        assert len(large) == len(small)
        assert max(map(len, large)) == max(map(len, small))  # no row in the text
    _client()
    row = ("Invoice Created", "a@example.com", "s", "b", "", "", "k1", False, "2026-03-10 09:00:00",
           "2026-03-10 09:00:00", "queued", "", 0, "", "")  # fmt: skip
    with writer():
        assert bulk_insert(Email, OUTBOX_COLUMNS, [(1, *row)], skip_conflicts=True) == 1
        again = [(1, *row), (1, *row[:6], "k2", *row[7:])]
        assert bulk_insert(Email, OUTBOX_COLUMNS, again, skip_conflicts=True) == 1
    assert sorted(k for (k,) in Email.select(Email.unique_key).tuples()) == ["k1", "k2"]


def test_invoice_changes_no_index_holds_are_made_in_place(db: str) -> None:
    """The kind: an update of invoice columns no index holds (a late fee's or a tax
    recompute's totals, ``bulk_update``) is a HOT update on PostgreSQL, the new row
    version on the same page and no new entry in the table's indexes: invoice pages keep
    room for it (fillfactor 90, migration 0024), even when loaded by COPY."""
    if not is_postgres():
        pytest.skip("PostgreSQL's heap-only tuples (SQLite updates rows in place)")
    _client()
    with writer():
        rows = [
            (n, 1, str(n), "2026-01-01", "2026-01-15", None, "Unpaid", "banktransfer", 1000, 0,
             0, 1000, 0, 0, "", "2026-01-01 00:00:00", 1)
            for n in range(1, 5001)
        ]  # fmt: skip
        bulk_insert(Invoice, INVOICE_COLUMNS, rows)
    with writer():  # one invoice in 25 gets a fee: a few rows on each page
        bulk_update(Invoice, ("subtotal", "total"), [(n, 1100, 1100) for n in range(1, 5001, 25)])
        updated, hot = database.execute_sql(
            "SELECT n_tup_upd, n_tup_hot_upd FROM pg_stat_xact_user_tables "
            "WHERE relid = 'invoice'::regclass"
        ).fetchone()
    assert updated == 200
    assert hot == updated


def _scans(plan: Any) -> list[tuple[str, str]]:
    """(node type, relation) of every node of a PostgreSQL JSON plan."""
    found = [(plan["Node Type"], plan.get("Relation Name", ""))]
    for child in plan.get("Plans", []):
        found.extend(_scans(child))
    return found


@contextmanager
def _statements_sent(statements: list[tuple[str, Any]]) -> Iterator[None]:
    """Append to ``statements`` the (SQL, parameters) of every statement this connection
    sends meanwhile (PostgreSQL: its cursors; SQLite: its trace, without parameters)."""
    connection = database.connection()
    if not is_postgres():
        connection.set_trace_callback(lambda sql: statements.append((sql, None)))
        try:
            yield
        finally:
            connection.set_trace_callback(None)
        return
    from psycopg2.extensions import cursor as plain_cursor

    base = connection.cursor_factory

    class Recording(base or plain_cursor):  # type: ignore[misc]
        def execute(self, sql: Any, args: Any = None) -> Any:
            statements.append((sql, args))
            return super().execute(sql, args)

    connection.cursor_factory = Recording
    try:
        yield
    finally:
        connection.cursor_factory = base


def _clients_and_invoices(clients: int, invoices: int) -> None:
    """``clients`` clients (ids 2 on, after ``_client``'s) and ``invoices`` Unpaid
    invoices spread over them in turn, loaded in bulk, then ANALYZE as autovacuum would
    after a load."""
    _client()
    with writer():
        bulk_clients(range(2, clients + 2), Currency.get().id)
        rows = [
            (n, 2 + n % clients, str(n), "2026-01-01", "2026-01-15", None, "Unpaid",
             "banktransfer", 1000, 0, 0, 1000, 0, 0, "", "2026-01-01 00:00:00", 1)
            for n in range(1, invoices + 1)
        ]  # fmt: skip
        bulk_insert(Invoice, INVOICE_COLUMNS, rows)
    database.execute_sql("ANALYZE")


def test_queued_notices_join_by_index_after_many_batches(db: str) -> None:
    """The email INSERT ... SELECT and its check read invoices and clients by key, on the
    planner's real count of the batch, not a guess from the earlier batches' leftovers."""
    if not is_postgres():
        pytest.skip("PostgreSQL's planner")
    clients = 2000
    _clients_and_invoices(clients, 40_000)

    statements: list[tuple[str, Any]] = []
    with _statements_sent(statements):
        with writer():
            for start in range(1, 30_001, 10_000):  # big batches, then a small one
                queue(
                    "Invoice Created",
                    [Notice(2 + n % clients, n, f"a:{n}") for n in range(start, start + 10_000)],
                )
            statements.clear()
            queue("Invoice Created", [Notice(2 + n % clients, n, f"b:{n}") for n in range(1, 21)])
            reads = [
                (sql, args)
                for sql, args in statements
                if "FROM queued_notice" in sql and not sql.startswith("EXPLAIN")
            ]
            assert len(reads) == 2  # the check for missing rows and the INSERT ... SELECT
            for sql, args in reads:
                cursor = database.cursor()
                cursor.execute("EXPLAIN (FORMAT JSON) " + sql, args)
                plan = cursor.fetchone()[0]
                plan = plan if isinstance(plan, list) else json.loads(plan)
                scans = _scans(plan[0]["Plan"])
                assert ("Seq Scan", "invoice") not in scans, (sql, scans)
                assert ("Seq Scan", "client") not in scans, (sql, scans)
                assert any(node.startswith("Index") and rel == "invoice" for node, rel in scans)
    assert Email.select().count() == 30_020


def _rows_read(plan: Any) -> dict[str, int]:
    """Rows each table gave a PostgreSQL ``EXPLAIN (ANALYZE, FORMAT JSON)`` plan, over
    every loop of each node that read it."""
    read: dict[str, int] = {}
    relation = plan.get("Relation Name")
    if relation:
        read[relation] = plan["Actual Rows"] * plan["Actual Loops"]
    for child in plan.get("Plans", []):
        for name, rows in _rows_read(child).items():
            read[name] = read.get(name, 0) + rows
    return read


def test_a_batch_reads_by_key_only_the_rows_it_names(db: str) -> None:
    """The kind: a batch of notices joined to big tables by key reads each client and
    invoice it names once, never a stretch of the table's index. PostgreSQL's planner
    (random_page_cost 4, the server default) joined 5,000 notices to invoices by walking
    ``invoice_pkey`` from its first entry to the batch's highest id (a merge join).
    Checked on the email INSERT ... SELECT and the check before it: rows each table
    gave, over every loop (PostgreSQL), every read of them an index search (SQLite)."""
    clients, invoices, batch = 2000, 200_000, 5000
    _clients_and_invoices(clients, invoices)
    spread = invoices // batch  # the batch's invoices lie across the whole table
    notices = [Notice(2 + n % clients, n, f"k:{n}") for n in range(spread, invoices + 1, spread)]
    assert len(notices) == batch
    statements: list[tuple[str, Any]] = []
    with writer():
        with _statements_sent(statements):
            assert queue("Invoice Created", notices) == batch
        reads = [sql for sql, _ in statements if "FROM queued_notice n" in sql]
        assert len(reads) == 2  # the check for missing rows and the INSERT ... SELECT
        for sql, args in statements:
            if "FROM queued_notice n" not in sql:
                continue
            cursor = database.cursor()
            if is_postgres():
                cursor.execute("SAVEPOINT plan")  # ANALYZE runs the INSERT: undone
                cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql, args)
                plan = cursor.fetchone()[0]
                cursor.execute("ROLLBACK TO SAVEPOINT plan")
                plan = plan if isinstance(plan, list) else json.loads(plan)
                read = _rows_read(plan[0]["Plan"])
                assert read.get("invoice", 0) <= batch, (sql, read)
                assert read.get("client", 0) <= batch, (sql, read)
                assert read.get("invoice", 0) > 0, (sql, read)
            else:  # the trace has the values inlined; the plan names tables by alias
                steps = [row[3] for row in cursor.execute("EXPLAIN QUERY PLAN " + sql)]
                for alias in ("c", "i"):  # client, invoice
                    on_table = [s for s in steps if re.match(rf"(SCAN|SEARCH) {alias}\b", s)]
                    assert on_table, (sql, steps)
                    assert all(s.startswith("SEARCH") for s in on_table), (sql, steps)
    assert Email.select().count() == batch


def _schema() -> list[tuple[str, str]]:
    """Every index and constraint of the schema, by its definition (casts and brackets
    left out: a partial index's predicate comes back from ``pg_get_indexdef`` with its
    casts spelled another way, the same condition)."""
    rows: Any = database.execute_sql(
        "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = current_schema() "
        "UNION ALL SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint "
        "WHERE connamespace = current_schema()::regnamespace ORDER BY 1, 2"
    ).fetchall()
    return [(name, re.sub(r"::[a-z ]+(\[\])?|[()\s]", "", text)) for name, text in rows]


def test_a_load_with_indexes_built_after_ends_with_the_same_schema(db: str) -> None:
    if not is_postgres():
        pytest.skip("PostgreSQL's indexes and keys")
    before = _schema()
    assert any(
        name == "invoice_status_due_date_date_client_id_payment_method" for name, _ in before
    )
    client_id = _client()
    unique = {(name, text) for name, text in before if text.startswith("CREATEUNIQUEINDEX")}
    assert any(name == "currency_code" for name, _ in unique)
    with writer(), indexes_built_after():
        during = set(_schema())
        assert not any(
            name == "invoice_status_due_date_date_client_id_payment_method" for name, _ in during
        )
        # Unique keys stay through the load: ON CONFLICT and reads by key need them.
        assert unique <= during, sorted(unique - during)
        bulk_insert(
            Invoice,
            INVOICE_COLUMNS,
            [
                (
                    n,
                    client_id,
                    str(n),
                    "2026-01-01",
                    "2026-01-15",
                    None,
                    "Unpaid",
                    "banktransfer",
                    1000,
                    0,
                    0,
                    1000,
                    0,
                    0,
                    "",
                    "2026-01-01 00:00:00",
                    1,
                )
                for n in range(1, 1001)
            ],  # fmt: skip
        )
    assert _schema() == before
    assert Invoice.select().where(Invoice.status == "Unpaid").count() == 1000


def test_a_load_that_breaks_a_foreign_key_fails_and_changes_nothing(db: str) -> None:
    if not is_postgres():
        pytest.skip("PostgreSQL's indexes and keys")
    before = _schema()
    _client()
    row = (1, 999, "1", "2026-01-01", "2026-01-15", None, "Unpaid", "banktransfer",
           1000, 0, 0, 1000, 0, 0, "", "2026-01-01 00:00:00", 1)  # fmt: skip
    with pytest.raises(IntegrityError), writer(), indexes_built_after():
        bulk_insert(Invoice, INVOICE_COLUMNS, [row])  # client 999 does not exist
    assert _schema() == before
    assert Invoice.select().count() == 0


def test_postgres_connections_compile_no_jit(db: str) -> None:
    """JIT compiled the email INSERT ... SELECT for longer than it ran (store.db)."""
    if not is_postgres():
        pytest.skip("PostgreSQL's JIT")
    assert database.execute_sql("SHOW jit").fetchone()[0] == "off"


def test_a_batch_of_keys_is_one_parameter_looked_up_by_index(db: str) -> None:
    """``store.queries.among``: 40,000 keys (past SQLite's 32,766 parameters), texts with
    quotes, non-ASCII and JSON's own characters, and no keys at all, each find exactly
    their rows; the statement has one parameter whatever the count, and a batch of
    2,000 of 60,000 invoices is read through the index (a search per key, never a walk
    of the table)."""
    _clients_and_invoices(clients=50, invoices=60_000)
    wanted = list(range(7, 60_000, 30)) + [10**9]  # a batch spread over it, and no invoice
    odd = ["invoice:1", "it's", 'a"b', "back\\slash", "caf\u00e9 \u4e2d", "[1]", ""]
    keys = odd + [f"invoice:{n}" for n in range(40_000)]
    with writer():
        bulk_insert(
            ActionLedger,
            ("rule", "subject", "stage", "business_date", "outcome", "detail", "created_at"),
            [("t", s, "", "2026-03-10", "done", "", "2026-03-10 00:00:00") for s in odd + ["x"]],
        )
    found = Invoice.select(Invoice.id).where(
        among(Invoice.id, wanted) & (Invoice.status == "Unpaid")
    )
    assert sorted(i for (i,) in found.tuples()) == wanted[:-1]
    sql, params = found.sql()
    assert len(params) == 2
    subjects = ActionLedger.select(ActionLedger.subject).where(among(ActionLedger.subject, keys))
    assert sorted(s for (s,) in subjects.tuples()) == sorted(odd)
    assert not list(Invoice.select().where(among(Invoice.id, [])))
    if is_postgres():
        plan = database.execute_sql("EXPLAIN (FORMAT JSON) " + sql, params).fetchone()[0]
        plan = plan if isinstance(plan, list) else json.loads(plan)
        scans = _scans(plan[0]["Plan"])
        assert ("Seq Scan", "invoice") not in scans, scans
    else:
        steps = [r[3] for r in database.execute_sql("EXPLAIN QUERY PLAN " + sql, params)]
        tables = [s for s in steps if re.match(r"(SCAN|SEARCH) t1\b", s)]
        assert tables and all(s.startswith("SEARCH") for s in tables), steps
