"""Everything a warehouse holds, every column of every table, in a form two warehouses can be
compared in: dlt's random join columns replaced by the business keys that own the row.

The oracle (`tests/oracle.py`) checks chosen columns against the simulator; this reads whole rows
(`select *`), so a column either path adds, drops or types differently shows up. dlt's own columns
are rewritten, never dropped:

- `_dlt_id` of a customer becomes its id; of a child row, its owner's key plus its list position
  (`("C-1", "promotions", 0, "redemption_channels", 1)`); `_dlt_parent_id` and `_dlt_root_id`
  become the keys they point at;
- `customer_versions` rows are keyed by (customer id, updated_at), `customers_rejected` rows by
  (customer id, reason, record);
- `_dlt_load_id` (and `customers_rejected.load_id`) becomes the load's position among all loads;
- `customers_rejected.rejected_at` must be a time inside its run, then is masked;
- `run_history` keeps its deterministic columns (not times, durations or load ids).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from tests.targets import Target, as_target

ROW_KEY, PARENT_KEY, ROOT_KEY, LOAD_ID = "_dlt_id", "_dlt_parent_id", "_dlt_root_id", "_dlt_load_id"
RUN_HISTORY_KEPT = (
    "outcome",
    "error",
    "since",
    "cursor_before",
    "cursor_after",
    "customers_received",
    "rows_written",
    "rows_per_table",
    "quality_checks",
    "pii",
)
Contents = dict[str, list[tuple[Any, ...]]]


def columns_of(target: Target) -> dict[str, list[tuple[str, str, str]]]:
    """Every base table's columns (dlt's bookkeeping aside): name, type, nullable."""
    rows = target.query(
        """select c.table_name, c.column_name, c.data_type, c.is_nullable
           from information_schema.columns c join information_schema.tables t
             on t.table_schema = c.table_schema and t.table_name = c.table_name
           where c.table_schema = 'trigg' and t.table_type = 'BASE TABLE'
             and c.table_name not like '\\_dlt%' escape '\\'"""
    )
    tables: dict[str, list[tuple[str, str, str]]] = {}
    for table, column, data_type, nullable in rows:
        tables.setdefault(table, []).append((column, data_type, nullable))
    return {table: sorted(columns) for table, columns in sorted(tables.items())}


def _rows(target: Target, table: str) -> list[dict[str, Any]]:
    with target.connect() as connection:
        # a DuckDB cursor is a new session, without the connection's `set schema`
        cursor = connection if target.kind == "duckdb" else connection.cursor()
        cursor.execute(f'select * from "{table}"')
        names = [column[0] for column in cursor.description]
        return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _canonical(value: Any) -> Any:
    """JSON columns arrive as text from DuckDB and parsed from PostgreSQL: compare DuckDB's text
    as it is (byte for byte) and PostgreSQL's as its sorted dump."""
    if isinstance(value, dict | list):
        return json.dumps(value, sort_keys=True)
    return value


def _parsed(value: Any) -> Any:
    """A JSON column of run_history as data: its keys' order is the order a path counted in."""
    return json.loads(value) if isinstance(value, str) and value[:1] in "{[" else value


def warehouse_contents(target: Target | str) -> Contents:
    """Every row of every table of the dataset, join columns replaced by business keys."""
    target = as_target(target)
    columns = columns_of(target)
    loads = [row[0] for row in target.query("select load_id from _dlt_loads order by load_id")]

    def load_number(load_id: Any) -> Any:
        return loads.index(load_id) if load_id in loads else load_id

    rows_of = {table: _rows(target, table) for table in columns}
    keys: dict[str, dict[str, tuple[Any, ...]]] = {}
    """Per table, `_dlt_id` -> the row's business key (ids are unique within a table only)."""
    contents: Contents = {}
    for table in sorted(rows_of, key=lambda name: name.count("__")):  # parents first
        rows, parent = rows_of[table], _parent_table(table, rows_of)
        own = keys.setdefault(table, {})
        for row in rows:
            if table == "customers":
                own[row[ROW_KEY]] = (row["id"],)
            elif parent is not None:
                owner = keys[parent][row[PARENT_KEY]]  # an orphan fails here
                own[row[ROW_KEY]] = (*owner, table[len(parent) + 2 :], row["_dlt_list_idx"])
        contents[table] = sorted(
            (_keyed(table, row, keys, parent, load_number) for row in rows), key=repr
        )
    return contents


def _parent_table(table: str, tables: dict[str, Any]) -> str | None:
    """The nearest table above a child table: `customers__loyalty__loyalty_cards` -> customers."""
    if not table.startswith("customers__"):
        return None
    parts = table.split("__")
    return next(
        name
        for name in ("__".join(parts[:end]) for end in range(len(parts) - 1, 0, -1))
        if name in tables
    )


def _keyed(
    table: str,
    row: dict[str, Any],
    keys: dict[str, dict[str, tuple[Any, ...]]],
    parent: str | None,
    load_number: Callable[[Any], Any],
) -> tuple[Any, ...]:
    row = dict(row)
    if table == "run_history":
        return tuple((name, _canonical(_parsed(row[name]))) for name in RUN_HISTORY_KEPT)
    if table == "customer_versions":
        row[ROW_KEY] = ("version", row["customer_id"], row["updated_at"])
    elif table == "customers_rejected":
        row[ROW_KEY] = ("rejected", row["customer_id"], row["reason"], _canonical(row["record"]))
    elif ROW_KEY in row:
        row[ROW_KEY] = keys[table][row[ROW_KEY]]
    if parent is not None:
        row[PARENT_KEY] = keys[parent][row[PARENT_KEY]]
        row[ROOT_KEY] = keys["customers"][row[ROOT_KEY]]
    for column in (LOAD_ID, "load_id"):
        if column in row:
            row[column] = ("load", load_number(row[column]))
    if table == "customers_rejected" and "rejected_at" in row:
        assert row["rejected_at"] is not None and row["rejected_at"].tzinfo is not None
        row["rejected_at"] = "a time"
    return tuple(sorted((name, _canonical(value)) for name, value in row.items()))


def difference(first: Contents, second: Contents) -> dict[str, Any]:
    """Per table, the rows only one side has (empty when the warehouses hold the same)."""
    found: dict[str, Any] = {}
    for table in sorted(set(first) | set(second)):
        if table not in first or table not in second:
            found[table] = "only in " + ("the first" if table in first else "the second")
            continue
        mine, theirs = set(first[table]), set(second[table])
        if mine != theirs or len(first[table]) != len(second[table]):
            found[table] = {
                "only in the first": sorted(mine - theirs, key=repr)[:3],
                "only in the second": sorted(theirs - mine, key=repr)[:3],
                "rows": (len(first[table]), len(second[table])),
            }
    return found


def setting(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    """A change of an envelope: the field at the dotted `path` (list positions as numbers) set to
    `value`, or removed when `value` is `KeyError`."""

    def change(envelope: dict[str, Any]) -> None:
        node: Any = envelope
        *parents, last = path.split(".")
        for part in parents:
            node = node[int(part)] if part.isdigit() else node[part]
        if value is KeyError:
            del node[last]
        else:
            node[last] = value

    return change
