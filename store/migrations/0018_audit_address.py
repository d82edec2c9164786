"""0018_audit_address: every audit row says where the actor was (issue 10).

The SSH client address (``SSH_CONNECTION``) or "local"; failed and refused logins
are audited with it. Older rows keep "" (not known).
"""

from __future__ import annotations

from typing import Any


def up(migrator: Any, db: Any) -> None:
    db.execute_sql('ALTER TABLE "audit_log" ADD COLUMN "address" VARCHAR(64) NOT NULL DEFAULT \'\'')
