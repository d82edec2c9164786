"""The activity log is append-only at the database: plain SQL cannot rewrite history."""

from __future__ import annotations

import pytest
from peewee import DatabaseError

from rules.audit import SYSTEM_CLI, record
from store.db import database, is_postgres, writer
from store.migrate import MIGRATIONS_DIR, _runner, upgrade
from store.models import AuditLog, Client, Currency
from tests.conftest import Databases


def _client_with_history() -> Client:
    usd = Currency.get_or_create(code="USD", defaults={"is_default": True})[0]
    client = Client.create(first_name="Ada", last_name="L", email="ada@example.com", currency=usd)
    with writer():
        record(SYSTEM_CLI, "client", client.id, "create", client_id=client.id, new_value="Ada")
        record(SYSTEM_CLI, "client", client.id, "update", client_id=client.id, field="city")
    return client


def _refused(sql: str) -> str:
    with pytest.raises(DatabaseError) as refused, database.atomic():
        database.execute_sql(sql)
    return str(refused.value)


def _log() -> list[tuple[object, ...]]:
    return list(AuditLog.select().order_by(AuditLog.id).tuples())


def test_audit_log_rows_cannot_be_updated_or_deleted_by_plain_sql(db: str) -> None:
    client = _client_with_history()
    before = _log()
    assert len(before) == 2
    statements = [
        "UPDATE audit_log SET new_value = 'forged'",
        "UPDATE audit_log SET client_id = NULL",
        f"DELETE FROM audit_log WHERE id = {before[0][0]}",
        "DELETE FROM audit_log",
    ]
    if is_postgres():
        statements.append("TRUNCATE audit_log")
    for sql in statements:
        assert "append-only" in _refused(sql), sql
    assert _log() == before
    # Appending still works.
    with writer():
        record(SYSTEM_CLI, "client", client.id, "close", client_id=client.id)
    assert len(_log()) == 3


def test_deleting_a_client_never_rewrites_its_history(db: str) -> None:
    """The log's link to the client was ON DELETE SET NULL (an UPDATE of the log): now a
    client with history cannot be deleted at all (clients are closed: PRODUCT.md §1)."""
    client = _client_with_history()
    before = _log()
    with pytest.raises(DatabaseError), database.atomic():
        Client.delete().where(Client.id == client.id).execute()
    assert Client.get_by_id(client.id).email == "ada@example.com"
    assert _log() == before and {row[6] for row in before} == {client.id}


def test_existing_history_is_kept_when_the_log_becomes_append_only(
    databases: Databases,
) -> None:
    """Migration 0015 rebuilds the SQLite table: every row, with its id, survives it."""
    from store.db import close_database, open_database

    url = databases.new_url()
    close_database()
    open_database(url)
    names = sorted(p.stem for p in MIGRATIONS_DIR.glob("0*.py"))
    before_0015 = names[names.index("0015_audit_log_append_only") - 1]
    _runner().up(target=before_0015)
    columns = '"at", "actor_type", "actor_name", "source", "entity", "action", "field", '
    columns += '"old_value", "new_value"'
    with writer():  # the log as the older schema holds it, in its own columns
        for n in range(3):
            database.execute_sql(
                f'INSERT INTO "audit_log" ({columns}) VALUES '
                f"('2026-11-01 10:00:0{n}', 'system', 'System', 'cli', 'setting', 'update', "
                f"'f{n}', '', '{n}')"
            )
    rows = list(
        database.execute_sql(
            'SELECT "id", "at", "actor_name", "field", "new_value" FROM "audit_log" ORDER BY 1'
        ).fetchall()
    )
    assert upgrade()[0] == "0015_audit_log_append_only"
    kept = 'SELECT "id", "at", "actor_name", "field", "new_value" FROM "audit_log" ORDER BY 1'
    assert [tuple(r) for r in database.execute_sql(kept).fetchall()] == [tuple(r) for r in rows]
    assert "append-only" in _refused("DELETE FROM audit_log")
    with writer():
        record(SYSTEM_CLI, "setting", None, "update", field="f3")
    assert [r[0] for r in _log()][:3] == [r[0] for r in rows]
