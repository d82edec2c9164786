"""0023_email_handover_gone: delivery is at least once, so ``email.handed_at`` goes.

``handed_at`` (0016) marked an email handed to the mail server, so that one whose lease
ran out while it was set was failed as "delivery uncertain" instead of being sent again:
after a crash that lost mail. Delivery now records each batch's outcomes in one
transaction and sends a crashed batch again (``rules.mail.delivery``): every email
arrives at least once, with a stable Message-ID, and nothing reads the column any more.
"""

from __future__ import annotations

from typing import Any

SQLITE = ['ALTER TABLE "email" DROP COLUMN "handed_at"']
POSTGRES = ['ALTER TABLE "email" DROP COLUMN "handed_at"']


def up(migrator: Any, db: Any) -> None:
    from peewee import SqliteDatabase

    for statement in SQLITE if isinstance(db, SqliteDatabase) else POSTGRES:
        db.execute_sql(statement)
