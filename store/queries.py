"""Small shared queries."""

from __future__ import annotations

from typing import Any

from peewee import ColumnBase, Model


def lookup(model: type[Model], key: ColumnBase, value: ColumnBase) -> dict[Any, Any]:
    """``{key: value}`` over a whole (small, reference) table in one query."""
    rows: Any = model.select(key, value).tuples()
    return dict(rows)


def column(model: type[Model], field: ColumnBase) -> set[Any]:
    """Every value of one column, as a set (one query)."""
    rows: Any = model.select(field).tuples()
    return {value for (value,) in rows}
