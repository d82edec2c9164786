from __future__ import annotations

from playhouse.schema_diff import diff_models

from store.db import database
from store.migrate import status, upgrade
from store.models import ALL_MODELS


def test_migrations_match_the_models(db: str) -> None:
    diff = diff_models(database.obj, ALL_MODELS)
    assert not diff, str(diff)


def test_upgrade_is_idempotent_and_recorded(db: str) -> None:
    assert upgrade() == []
    rows = status()
    assert rows and all(m.applied for m in rows)
    assert rows[0].name == "0001_initial"
