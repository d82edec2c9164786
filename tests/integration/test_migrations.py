from __future__ import annotations

from typing import Any

import pytest
from playhouse.migrations import Runner
from playhouse.schema_diff import diff_models

from store.db import database, is_postgres, is_sqlite, open_database
from store.migrate import MIGRATIONS_DIR, status, upgrade
from store.models import ALL_MODELS, Client, Contact, Currency, TaxRule
from tests.conftest import Databases


def test_migrations_match_the_models(db: str) -> None:
    diff = diff_models(database.obj, ALL_MODELS)
    assert not diff, str(diff)


def test_upgrade_is_idempotent_and_recorded(db: str) -> None:
    assert upgrade() == []
    rows = status()
    assert rows and all(m.applied for m in rows)
    assert rows[0].name == "0001_initial"


def _legacy_row(model: Any, **values: Any) -> None:
    """A row as a database before 0006 held it (no key columns), written with raw SQL."""
    fields = [
        f
        for f in model._meta.sorted_fields
        if f.name not in ("email_key", "search_text", "credit") and (f.name in values or not f.null)
    ]
    row = [
        values[f.name] if f.name in values else (f.default() if callable(f.default) else f.default)
        for f in fields
    ]
    mark = "%s" if is_postgres() else "?"
    database.execute_sql(
        f'INSERT INTO "{model._meta.table_name}" '
        f"({', '.join(f.column_name for f in fields)}) VALUES ({', '.join(mark for _ in row)})",
        row,
    )


def test_migration_0006_keys_the_rows_it_finds(databases: Databases) -> None:
    """Existing clients, contacts and tax rules get their email keys, search text and
    normalised states; emails that only full case folding finds equal stay usable."""
    from rules.audit import SYSTEM_CLI
    from rules.clients.profile import EMAIL_TAKEN, create_client
    from rules.errors import ValidationError
    from store.client_list import ListQuery, fetch_page

    open_database(databases.new_url())
    Runner(database.obj, directory=str(MIGRATIONS_DIR), table_name="schema_migration").up(
        "0004_client_first_name_index"
    )
    _legacy_row(Currency, id=1, code="USD", is_default=True)
    common = {"currency": 1, "created_at": "2026-01-01 00:00:00"}
    _legacy_row(
        Client,
        id=1,
        first_name="Émile",
        last_name="Zola",
        email="Émile@example.org",
        country="US",
        state="ca",
        phone="+442071838750",
        **common,
    )
    _legacy_row(
        Client, id=2, first_name="A", last_name="B", email="straße@example.org", **common
    )  # LOWER() never made these two equal
    _legacy_row(Client, id=3, first_name="C", last_name="D", email="STRASSE@example.org", **common)
    _legacy_row(
        Contact,
        id=1,
        client=1,
        first_name="E",
        last_name="F",
        email="Weiß@example.org",
        country="CA",
        state="qc",
    )
    _legacy_row(Contact, id=2, client=1, first_name="G", last_name="H", email="weiss@example.org")
    _legacy_row(TaxRule, id=1, level=1, name="CA", country="US", state="ca", rate_e4=72_500)
    _legacy_row(
        TaxRule, id=2, level=2, name="County", country="US", state="California", rate_e4=10_000
    )

    upgrade()

    assert not diff_models(database.obj, ALL_MODELS)
    keys = {c.id: (c.email_key, c.state) for c in Client.select()}
    assert keys == {
        1: ("émile@example.org", "CA"),
        2: ("strasse@example.org", ""),
        3: ("strasse@example.org #3", ""),  # kept, and refused as a new address
    }
    assert {c.id: (c.email_key, c.state) for c in Contact.select()} == {
        1: ("weiss@example.org", "QC"),
        2: ("weiss@example.org #2", ""),
    }
    assert sorted((r.level, r.state) for r in TaxRule.select()) == [(1, "CA"), (2, "California")]
    for term in ("émile zola", "ÉMILE", "+44 20 7183 8750"):
        assert [r.id for r in fetch_page(ListQuery(search=term), 0, 10)] == [1], term
    with pytest.raises(ValidationError) as refused:
        create_client(
            {"first_name": "X", "last_name": "Y", "email": "Strasse@Example.org"}, SYSTEM_CLI
        )
    assert refused.value.errors == {"email": EMAIL_TAKEN}
    if is_sqlite():
        database.execute_sql(
            "INSERT INTO client_search (client_search, rank) VALUES ('integrity-check', 1)"
        )


def test_no_index_is_the_leading_columns_of_another(db: str) -> None:
    """The kind: an index whose columns begin another index of its table costs every
    insert and every non-HOT update of the table a second entry and serves nothing the
    longer one does not (lookups, joins and foreign-key checks on those columns). Unique
    and partial indexes say more than their columns and are left out as the shorter one."""
    redundant = []
    for table in database.get_tables():
        indexes = database.get_indexes(table)
        for short in indexes:
            if short.unique or " WHERE " in (short.sql or "").upper():
                continue
            for long in indexes:
                if long.name != short.name and long.columns[: len(short.columns)] == short.columns:
                    redundant.append(f"{short.name} {short.columns} begins {long.name}")
    assert not redundant, redundant


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
@pytest.mark.parametrize("analyzed", [True, False], ids=["kept-statistics", "none"])
def test_migration_0025_gives_kept_statistics_to_its_indexes(
    databases: Databases, analyzed: bool
) -> None:
    """A SQLite file whose planner statistics were kept (ANALYZE before the upgrade) has
    them for the two new indexes as well, counted in full; a file without any gets none
    (SQLite then plans every index alike, as before)."""
    open_database(databases.new_url())
    Runner(database.obj, directory=str(MIGRATIONS_DIR), table_name="schema_migration").up(
        "0024_redundant_indexes_and_fillfactor"
    )
    _legacy_row(Currency, id=1, code="USD", is_default=True)
    _legacy_row(Client, id=1, first_name="A", last_name="B", email="a@example.org", currency=1,
                created_at="2026-01-01 00:00:00")  # fmt: skip
    for n in range(1, 301):
        database.execute_sql(
            "INSERT INTO invoice (id, client_id, number, date, due_date, status, payment_method,"
            " subtotal, tax, tax2, total, tax_rate1_e4, tax_rate2_e4, notes, created_at, version,"
            " credit) VALUES (?, 1, ?, '2026-01-01', '2026-01-15', ?, 'banktransfer', 0, 0, 0,"
            " 0, 0, 0, '', '2026-01-01 00:00:00', 1, 0)",
            (n, str(n), "Unpaid" if n % 3 == 0 else "Paid"),
        )
    database.execute_sql(
        "INSERT INTO invoice_item (invoice_id, type, description, amount, taxed, sort_order)"
        " VALUES (3, 'LateFee', 'Late fee', 100, 0, 1)"
    )
    if analyzed:
        database.execute_sql("ANALYZE")
    upgrade()
    assert not diff_models(database.obj, ALL_MODELS)
    has_stats = database.execute_sql(
        "SELECT 1 FROM sqlite_master WHERE name = 'sqlite_stat1'"
    ).fetchone()
    if not analyzed:
        assert has_stats is None
        return
    stats = dict(database.execute_sql("SELECT idx, stat FROM sqlite_stat1").fetchall())
    # 300 invoices, 2 statuses: 150 a status on average, counted, not sampled.
    assert stats["invoice_status_due_date_date_client_id_payment_method"].startswith("300 150")
    assert stats["invoice_item_invoice_id_type"].startswith("1 1")
