"""Which records cannot be loaded, and why: checked before dlt sees them.

One bad record (no `id`, an unparsable `UpdatedAt`, a value that cannot be coerced to its pinned
type) must not sink the other ten thousand; it is quarantined with the reason instead. What dlt can
coerce (`"4"` for an integer id, `1010` for a text zip) is not a problem.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from functools import lru_cache
from typing import Any

from dlt.common.normalizers.naming.snake_case import NamingConvention

from pipelines.trigg.schema import PRIMARY_KEY, TABLES, Table

_INTEGER = re.compile(r"^\s*[-+]?\d+\s*$")
_naming = NamingConvention()


@lru_cache(maxsize=4096)
def column_name(field: str) -> str:
    """dlt's snake_case name of an API field (`pointsActive` -> `points_active`)."""
    return _naming.normalize_identifier(field)


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    if isinstance(value, str):
        try:
            float(value)
        except ValueError:
            return False
        return True
    return False


def _is_integer(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return True
    if isinstance(value, float):
        return value.is_integer()
    return isinstance(value, str) and bool(_INTEGER.match(value))


def _is_instant(value: Any) -> bool:
    if isinstance(value, datetime):
        return True
    if not isinstance(value, str):
        return False
    try:
        datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _is_date(value: Any) -> bool:
    return isinstance(value, date) or _is_instant(value)


CHECKS = {
    "text": lambda value: isinstance(value, str | int | float | bool),
    "bigint": _is_integer,
    "double": _is_number,
    "bool": lambda value: isinstance(value, bool),
    "date": _is_date,
    "timestamp": _is_instant,
    "json": lambda value: True,
}


def problem(customer: dict[str, Any]) -> str | None:
    """Why `customer` (shaped by `records.to_customer`) cannot be loaded, or None."""
    if not isinstance(customer.get(PRIMARY_KEY), str | int) or customer.get(PRIMARY_KEY) == "":
        return "the customer has no id"
    for table in TABLES:
        for position, item in _items(customer, table.path):
            found = _first_bad_value(table, item)
            if found is not None:
                column, value = found
                where = table.name if not table.path else f"{table.name}[{position}]"
                pinned = next(c.data_type for c in table.columns if c.name == column)
                return f"{where}.{column} = {_short(value)} is not a {pinned}"
    return None


def _items(customer: dict[str, Any], path: tuple[str, ...]) -> list[tuple[int, Any]]:
    """The rows of the table at `path`: walking nested objects and lists by dlt's names."""
    if not path:
        return [(0, customer)]
    level: list[Any] = [customer]
    for depth, step in enumerate(path):
        following: list[Any] = []
        for node in level:
            if not isinstance(node, dict):
                continue
            for key, value in node.items():
                if column_name(key) != step:
                    continue
                if isinstance(value, list):
                    following.extend(value)
                elif isinstance(value, dict) and depth < len(path) - 1:
                    following.append(value)
        level = following
    return list(enumerate(level))


def _first_bad_value(table: Table, item: Any) -> tuple[str, Any] | None:
    pinned = {column.name: column.data_type for column in table.columns}
    if not isinstance(item, dict):  # a list of scalars: dlt stores each as `value`
        data_type = pinned.get("value")
        if data_type and item is not None and not CHECKS[data_type](item):
            return "value", item
        return None
    for column, value in _flatten(item, pinned):
        data_type = pinned.get(column)
        if data_type is None or value is None:
            continue
        if data_type != "json" and isinstance(value, dict | list):
            return column, value
        if not CHECKS[data_type](value):
            return column, value
    return None


def _flatten(
    item: dict[str, Any], pinned: dict[str, str], prefix: str = ""
) -> list[tuple[str, Any]]:
    """Columns of one row as dlt would name them; lists belong to child tables."""
    columns: list[tuple[str, Any]] = []
    for key, value in item.items():
        name = prefix + column_name(key)
        if isinstance(value, dict) and pinned.get(name) != "json" and name not in pinned:
            columns.extend(_flatten(value, pinned, name + "__"))
        elif not isinstance(value, list) or name in pinned:
            columns.append((name, value))
    return columns


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."
