"""0004_client_first_name_index: short searches (one or two characters) by first name."""

from __future__ import annotations

from typing import Any


def up(migrator: Any, db: Any) -> None:
    db.execute_sql('CREATE INDEX "client_first_name" ON "client" ("first_name")')
