"""Frozen migration scripts, applied in order by ``store.migrate``."""
