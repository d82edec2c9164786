"""Shared fixtures: every integration test runs on a real SQLite file and on PostgreSQL.

PostgreSQL runs when ``GOBILLER_TEST_POSTGRES`` names a server URL (the test
creates and drops its own database there). Without it the PostgreSQL half is
skipped, unless ``GOBILLER_REQUIRE_POSTGRES=1`` (CI), where skipping is a failure.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import threading
import time
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from email import message_from_bytes
from email.message import EmailMessage
from email.policy import default as default_policy
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from argon2 import Parameters, Type

from rules.accounts.passwords import use_hash_parameters
from store.config import SmtpConfig
from store.db import close_database, open_database
from store.migrate import upgrade

PG_ENV = "GOBILLER_TEST_POSTGRES"

#: Cheap argon2id for the tests: production keeps argon2-cffi's defaults
#: (``rules.accounts.passwords.PRODUCTION_PARAMETERS``).
TEST_HASH_PARAMETERS = Parameters(
    type=Type.ID,
    version=19,
    salt_len=16,
    hash_len=32,
    time_cost=1,
    memory_cost=1024,
    parallelism=1,
)
use_hash_parameters(TEST_HASH_PARAMETERS)

#: The project folder: what subprocesses put on PYTHONPATH.
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True, scope="session")
def _outside_the_project_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Run every test from an empty folder: a ``gobiller.toml`` that ``make run`` wrote in
    the project folder (first in the configuration precedence) must never point the
    tests' commands at the demo database or its mail settings."""
    before = Path.cwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    try:
        yield
    finally:
        os.chdir(before)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (``make test``), the tests marked ``slow`` go first: a worker
    that starts one late would keep the whole run waiting for it alone, while the others
    share the short tests that are left. Without xdist the order is the files' order."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable


def on_sqlite_and_first_on_postgres(
    argnames: str, cases: list[Any], ids: list[str] | None = None
) -> pytest.MarkDecorator:
    """``pytest.mark.parametrize`` for cases that differ only in what the Python code
    checks before it reaches the database (one bad field of a document, say), and run the
    same queries whatever the case: every case on SQLite, the first one on PostgreSQL too
    (the ``databases`` fixture, parametrized here). A case per database pair would run
    the same SQL on PostgreSQL once per field."""
    names = [name.strip() for name in argnames.split(",")]
    case_ids = ids or [str(n) for n in range(len(cases))]

    def values(case: Any) -> tuple[Any, ...]:
        return tuple(case) if len(names) > 1 else (case,)

    params = [
        pytest.param("sqlite", *values(case), id=f"sqlite-{case_id}")
        for case, case_id in zip(cases, case_ids, strict=True)
    ]
    params.append(pytest.param("postgres", *values(cases[0]), id=f"postgres-{case_ids[0]}"))
    return pytest.mark.parametrize(["databases", *names], params, indirect=["databases"])


def _pg_admin(base: str):  # type: ignore[no-untyped-def]
    import psycopg2

    conn = psycopg2.connect(base)
    conn.autocommit = True
    return conn


def _pg_url(base: str, name: str) -> str:
    parts = urlsplit(base)
    return urlunsplit(parts._replace(path=f"/{name}"))


def _drop_pg_database(cur: Any, name: str) -> None:
    import psycopg2

    for _attempt in range(40):
        try:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            return
        except (psycopg2.errors.InsufficientPrivilege, psycopg2.errors.ObjectInUse):
            # FORCE cannot signal an autovacuum worker busy on a freshly filled
            # database (not ours to end): wait for it to finish.
            time.sleep(0.25)
    # A throw-away test database left behind is no failure of the test.
    warnings.warn(f"could not drop test database {name}", stacklevel=1)


class MigratedTemplates:
    """One migrated, empty database of each kind per test process (each pytest-xdist
    worker has its own), made on first use: the ``db`` fixture copies it (a file copy; a
    PostgreSQL ``CREATE DATABASE ... TEMPLATE``) instead of running every migration
    again for each test. Dropped at the end of the session."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.sqlite: Path | None = None
        self.postgres: str | None = None

    def sqlite_file(self) -> Path:
        if self.sqlite is None:
            path = self.root / "migrated.sqlite3"
            close_database()
            open_database(f"sqlite:///{path}")
            upgrade()
            close_database()  # checkpointed: the whole database is in the one file
            assert not Path(f"{path}-wal").exists()
            self.sqlite = path
        return self.sqlite

    def postgres_name(self) -> str:
        if self.postgres is None:
            base = os.environ[PG_ENV]
            name = f"gb_template_{uuid.uuid4().hex[:12]}"
            conn = _pg_admin(base)
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
            close_database()
            open_database(_pg_url(base, name))
            upgrade()
            close_database()
            with conn.cursor() as cur:  # nobody connects to it again, autovacuum neither
                cur.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS false')
            conn.close()
            self.postgres = name
        return self.postgres

    def drop(self) -> None:
        if self.postgres is None:
            return
        conn = _pg_admin(os.environ[PG_ENV])
        with conn.cursor() as cur:
            _drop_pg_database(cur, self.postgres)
        conn.close()


@pytest.fixture(scope="session")
def migrated_templates(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MigratedTemplates]:
    templates = MigratedTemplates(tmp_path_factory.mktemp("templates"))
    try:
        yield templates
    finally:
        templates.drop()


class Databases:
    """Creates databases of one kind; drops them at the end of the test."""

    def __init__(
        self, kind: str, tmp_path: Path, templates: MigratedTemplates | None = None
    ) -> None:
        self.kind = kind
        self.tmp_path = tmp_path
        self.templates = templates
        self.created: list[str] = []

    def new_url(self, migrated: bool = False) -> str:
        """An empty database (not migrated, as a new installation finds it), or with
        ``migrated`` a copy of the process's migrated template."""
        name = f"gb_test_{uuid.uuid4().hex[:12]}"
        if self.kind == "sqlite":
            path = self.tmp_path / (name + ".sqlite3")
            if migrated and self.templates is not None:
                shutil.copy2(self.templates.sqlite_file(), path)  # its owner-only mode too
            return f"sqlite:///{path}"
        base = os.environ[PG_ENV]
        template = ""
        if migrated and self.templates is not None:
            template = f' TEMPLATE "{self.templates.postgres_name()}"'
        conn = _pg_admin(base)
        with conn.cursor() as cur:
            cur.execute(f'CREATE DATABASE "{name}"{template}')
        conn.close()
        self.created.append(name)
        return _pg_url(base, name)

    def open(self, url: str) -> str:
        close_database()
        open_database(url)
        upgrade()
        return url

    def drop_all(self) -> None:
        close_database()
        if not self.created:
            return
        conn = _pg_admin(os.environ[PG_ENV])
        with conn.cursor() as cur:
            for name in self.created:
                _drop_pg_database(cur, name)
        conn.close()


@pytest.fixture(params=["sqlite", "postgres"])
def databases(
    request: pytest.FixtureRequest, tmp_path: Path, migrated_templates: MigratedTemplates
) -> Iterator[Databases]:
    kind = request.param
    if kind == "postgres" and not os.environ.get(PG_ENV):
        if os.environ.get("GOBILLER_REQUIRE_POSTGRES") == "1":
            pytest.fail(f"{PG_ENV} is not set but PostgreSQL tests are required")
        pytest.skip(f"{PG_ENV} not set")
    dbs = Databases(kind, tmp_path, migrated_templates)
    try:
        yield dbs
    finally:
        dbs.drop_all()


@pytest.fixture
def db(databases: Databases) -> str:
    """An open, migrated, empty database (a copy of the migrated template: the
    migrations themselves are tested on empty databases in test_migrations.py); returns
    its URL."""
    return databases.open(databases.new_url(migrated=True))


@pytest.fixture
def reopen(databases: Databases) -> Callable[[str], str]:
    return databases.open


class SmtpRecorder:
    """An aiosmtpd handler that records messages and answers DATA from a script."""

    def __init__(self) -> None:
        self.messages: list[Any] = []
        #: Replies for the next DATA commands, e.g. ["451 try later", "550 no such user"].
        self.replies: list[str] = []
        self.delay = 0.0
        self._lock = threading.Lock()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay:
            await asyncio.sleep(self.delay)
        with self._lock:
            reply = self.replies.pop(0) if self.replies else "250 OK"
            if reply.startswith("250"):
                self.messages.append(envelope)
        return reply

    def parsed(self) -> list[EmailMessage]:
        return [
            message_from_bytes(e.original_content, policy=default_policy)  # type: ignore[misc]
            for e in self.messages
        ]


def smtp_controller(handler: Any, server_class: Any = None, **options: Any) -> Any:
    """A started aiosmtpd server on 127.0.0.1 whose port (``.port``) the kernel chose free
    as the server bound it: never a port found free first and bound later, which another
    test worker may take in between. ``server_class``: an ``aiosmtpd.smtp.SMTP`` subclass
    to serve each connection with."""
    from aiosmtpd.controller import Controller

    class FreePortController(Controller):
        def _trigger_server(self) -> None:
            assert isinstance(self.server, asyncio.Server)  # bound, before the first client
            self.port = self.server.sockets[0].getsockname()[1]
            super()._trigger_server()

        def factory(self) -> Any:
            if server_class is None:
                return super().factory()
            return server_class(self.handler, **self.SMTP_kwargs)

    controller = FreePortController(handler, hostname="127.0.0.1", port=0, **options)
    controller.start()
    return controller


@contextmanager
def _smtp_server(**options: Any) -> Iterator[tuple[SmtpRecorder, SmtpConfig]]:
    recorder = SmtpRecorder()
    controller = smtp_controller(recorder, **options)
    try:
        config = SmtpConfig(host="127.0.0.1", port=controller.port, security="none", timeout=10)
        yield recorder, config
    finally:
        controller.stop()


@pytest.fixture
def smtp_server() -> Iterator[tuple[SmtpRecorder, SmtpConfig]]:
    """A real SMTP server on 127.0.0.1 (no TLS, offers SMTPUTF8), and the config that
    reaches it."""
    with _smtp_server(enable_SMTPUTF8=True) as server:
        yield server


@pytest.fixture
def smtp_server_without_smtputf8() -> Iterator[tuple[SmtpRecorder, SmtpConfig]]:
    """A real SMTP server that, like most submission servers, does not offer SMTPUTF8."""
    with _smtp_server(enable_SMTPUTF8=False) as server:
        yield server


@pytest.fixture
def smtp_refusing_login() -> Iterator[SmtpConfig]:
    """A real SMTP server that answers every AUTH with 535 (wrong credentials)."""
    from aiosmtpd.smtp import AuthResult

    controller = smtp_controller(
        SmtpRecorder(),
        authenticator=lambda *args: AuthResult(success=False, handled=False),
        auth_require_tls=False,
    )
    try:
        yield SmtpConfig(
            host="127.0.0.1",
            port=controller.port,
            security="none",
            timeout=10,
            username="billing",
            password="wrong",
        )
    finally:
        controller.stop()


@pytest.fixture
def admin(db: str) -> str:
    """A migrated database with staff 'admin' (admin) and 'helpdesk' (support)."""
    from rules.accounts.staff import add_staff
    from rules.audit import SYSTEM_CLI

    add_staff("admin", STAFF_PASSWORD, "admin", SYSTEM_CLI)
    add_staff("helpdesk", STAFF_PASSWORD, "support", SYSTEM_CLI)
    return db


STAFF_PASSWORD = "correct horse battery"


def bulk_clients(ids: Iterable[int], currency_id: int, **values: Any) -> None:
    """Clients ``ids`` ("F<id> L", c<id>@example.com, created 2026-01-01, ``values`` for
    the rest) loaded in bulk in the caller's transaction (``store.db.writer``)."""
    from store.bulk import bulk_insert, row_maker
    from store.models import Client

    stamp = "2026-01-01 00:00:00"
    columns, make = row_maker(Client)
    rows = [
        make(**{"id": c, "first_name": f"F{c}", "last_name": "L", "email": f"c{c}@example.com",
                "currency": currency_id, "created_at": stamp, "updated_at": stamp, **values})
        for c in ids
    ]  # fmt: skip
    bulk_insert(Client, columns, rows)
