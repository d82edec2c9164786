"""The site secret: 256 random bits made once per installation, kept in the settings
table under its own key (``SITE_SECRET_KEY``), outside the typed settings, so it is
never shown by ``gobiller config`` nor written to the interchange document (PRODUCT.md
§5 carries only ``store.settings.INTERCHANGE_SETTINGS``).

It keys the HMAC that picks the decoy security question of an email that is no
client's (``rules.accounts.resets``), so the decoy is the same on every request and
cannot be predicted from outside.
"""

from __future__ import annotations

import json
import secrets

from store.db import writer
from store.models import Setting

SITE_SECRET_KEY = "site_secret"


def site_secret() -> bytes:
    """The installation's secret (32 bytes), made on first use. Two processes making it
    at once agree: the first insert wins and both read it back. One or two queries."""
    row = Setting.get_or_none(Setting.key == SITE_SECRET_KEY)
    if row is None:
        with writer():
            Setting.insert(
                key=SITE_SECRET_KEY, value=json.dumps(secrets.token_hex(32))
            ).on_conflict_ignore().execute()
        row = Setting.get(Setting.key == SITE_SECRET_KEY)
    return bytes.fromhex(json.loads(row.value))
