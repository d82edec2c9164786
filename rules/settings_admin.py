"""Changing settings from the staff app: admins only, all or nothing, audited."""

from __future__ import annotations

import json
from typing import Any

from rules.audit import Actor, record
from rules.errors import ValidationError, transaction
from rules.permissions import require
from store.settings import Settings, SettingsError, load_settings, save_settings, validate_setting


def update_settings(changes: dict[str, Any], actor: Actor) -> Settings:
    """Validate every change (errors per setting, nothing saved), then save and audit."""
    require(actor, "settings")
    errors: dict[str, str] = {}
    clean: dict[str, Any] = {}
    for name, value in changes.items():
        try:
            clean[name] = validate_setting(name, value)
        except SettingsError as exc:
            errors[name] = exc.message
    if errors:
        raise ValidationError(errors)
    before = load_settings()
    with transaction():
        saved = save_settings(clean)
        for name, value in clean.items():
            old = getattr(before, name)
            if old != value:
                record(
                    actor,
                    "setting",
                    None,
                    "update",
                    field=name,
                    old_value=json.dumps(old),
                    new_value=json.dumps(value),
                )
    return saved
