"""0019_token_purpose: reset tokens also serve portal invitations (issue 12).

``purpose`` is "reset" (forgotten password, valid 2 hours) or "invite" (a staff
invitation to set a first password, valid 7 days); existing tokens are resets.
"""

from __future__ import annotations

from typing import Any


def up(migrator: Any, db: Any) -> None:
    db.execute_sql(
        'ALTER TABLE "password_reset_token" ADD COLUMN "purpose" VARCHAR(16) NOT NULL '
        "DEFAULT 'reset'"
    )
