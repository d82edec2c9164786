"""0017_login_throttle: failed logins per account, for growing delays (issue 10).

One row per realm ("staff", later "client") and login name as typed: the failure
count and the time before which no further attempt is checked (``rules.accounts.throttle``).
"""

from __future__ import annotations

from typing import Any

SQLITE = (
    'CREATE TABLE "login_throttle" ("id" INTEGER NOT NULL PRIMARY KEY, "realm" VARCHAR(16) '
    'NOT NULL, "login" VARCHAR(254) NOT NULL, "failures" INTEGER NOT NULL, "refuse_until" '
    'DATETIME, "last_failure_at" DATETIME)'
)
POSTGRES = (
    'CREATE TABLE "login_throttle" ("id" SERIAL NOT NULL PRIMARY KEY, "realm" VARCHAR(16) '
    'NOT NULL, "login" VARCHAR(254) NOT NULL, "failures" INTEGER NOT NULL, "refuse_until" '
    'TIMESTAMP, "last_failure_at" TIMESTAMP)'
)
INDEX = 'CREATE UNIQUE INDEX "login_throttle_realm_login" ON "login_throttle" ("realm", "login")'


def up(migrator: Any, db: Any) -> None:
    from peewee import SqliteDatabase

    db.execute_sql(SQLITE if isinstance(db, SqliteDatabase) else POSTGRES)
    db.execute_sql(INDEX)
