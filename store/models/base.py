"""The shared model base and the column types every subject uses."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from peewee import BigIntegerField, Model

from store.db import database

__all__ = ["BaseModel", "MoneyField", "utcnow"]


def utcnow() -> dt.datetime:
    """Naive UTC now: every timestamp in the database is UTC."""
    return dt.datetime.now(dt.UTC).replace(tzinfo=None, microsecond=0)


class MoneyField(BigIntegerField):
    """An amount in integer minor units (cents). Never REAL, never float."""

    def db_value(self, value: Any) -> Any:
        if value is not None and not isinstance(value, int):
            raise TypeError(f"{self.name}: money columns take integer minor units")
        return super().db_value(value)


class BaseModel(Model):
    if TYPE_CHECKING:  # peewee adds these at run time; its stubs do not know them.
        id: Any
        _schema: Any

    class Meta:
        database = database
        legacy_table_names = False
