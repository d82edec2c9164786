"""0010_cron_run_daily: each run records whether it ran the daily rules.

``cron status`` is healthy only when the daily rules ran in the last 24 hours, not
merely when some run finished (a crontab that always fires before the daily hour
runs every day and bills nothing). Existing runs are filled in from their summary.
"""

from __future__ import annotations

from typing import Any


def up(migrator: Any, db: Any) -> None:
    from peewee import SqliteDatabase

    if isinstance(db, SqliteDatabase):
        db.execute_sql('ALTER TABLE "cron_run" ADD COLUMN "daily_rules" INTEGER NOT NULL DEFAULT 0')
        db.execute_sql(
            'UPDATE "cron_run" SET "daily_rules" = 1 WHERE json_valid("counts") '
            "AND json_extract(\"counts\", '$.daily_rules_due') = 1"
        )
    else:
        db.execute_sql(
            'ALTER TABLE "cron_run" ADD COLUMN "daily_rules" BOOLEAN NOT NULL DEFAULT false'
        )
        db.execute_sql(
            'UPDATE "cron_run" SET "daily_rules" = true '
            "WHERE (\"counts\"::json ->> 'daily_rules_due') = 'true'"
        )
