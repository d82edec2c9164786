"""Snapshots of the client list and the profile (SVGs in tests/tui/__snapshots__).

A fixed data set on a real SQLite file, fixed timestamps, no login screen, so
the pictures change only when the screens do. Update with ``--snapshot-update``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from textual.pilot import Pilot

from rules.audit import Actor
from store.db import close_database, open_database
from store.migrate import upgrade
from store.models import Client, ClientGroup, Contact, Currency
from store.models.enums import ActorType, Source
from tui.app import StaffApp

ADMIN = Actor(ActorType.STAFF, "admin", Source.TUI, 1, "admin")
NAMES = [
    ("Ana", "Núñez", "Active"),
    ("[bold]x", "[/", "Inactive"),
    ("王", "伟", "Closed"),
    ("محمد", "العلي", "Active"),
    ("Siobhán", "O'Brien", "Active"),
    ("a[0]]", "[TODO]", "Inactive"),
]


@pytest.fixture
def snapshot_db(tmp_path: Path) -> Iterator[None]:
    open_database(f"sqlite:///{tmp_path / 'snap.sqlite3'}")
    upgrade()
    usd = Currency.create(code="USD", prefix="$", is_default=True)
    vip = ClientGroup.create(name="VIP", colour="#8a2be2")
    stamp = dt.datetime(2026, 1, 2, 3, 4, 5)
    for i, (first, last, status) in enumerate(NAMES, start=1):
        client = Client.create(
            id=i,
            first_name=first,
            last_name=last,
            status=status,
            email=f"client{i}@example.com",
            company="Example Ltd",
            currency=usd,
            group=vip if i % 2 else None,
            country="GB",
            phone="+442071838750",
            created_at=stamp,
            updated_at=stamp,
        )
        if i == 1:
            Contact.create(
                client=client, first_name="Bill", last_name="Ing", email="bill@example.com"
            )
    yield
    close_database()


def _app() -> StaffApp:
    app = StaffApp(actor=ADMIN)
    return app


def test_client_list_snapshot(snapshot_db: None, snap_compare: Any) -> None:
    async def ready(pilot: Pilot[None]) -> None:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()

    assert snap_compare(_app(), terminal_size=(120, 20), run_before=ready)


def test_client_profile_snapshot(snapshot_db: None, snap_compare: Any) -> None:
    async def open_profile(pilot: Pilot[None]) -> None:
        await pilot.app.workers.wait_for_complete()
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        await pilot.app.workers.wait_for_complete()  # the client is read in a thread
        await pilot.pause()
        pilot.app.screen.set_focus(None)
        await pilot.pause()

    assert snap_compare(_app(), terminal_size=(120, 40), run_before=open_profile)
