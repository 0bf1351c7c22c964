"""The fast path's plan: how a response's structure maps onto the pinned tables, as SQL.

DuckDB reports the structure of a whole body: every key at every level and one merged type per leaf
(`JSON` where values of several types meet). Each key is named the way dlt's normalizer names it
and looked up in `schema.TABLES`. The plan says how DuckDB reads the body (an explicit STRUCT, so
DuckDB's guesses never change a value), which values must be checked, and how each table's rows and
dlt's join columns are selected. What the plan cannot load exactly as dlt's own normalizer would (a
key the spec does not list, a type dlt would coerce differently, a record to quarantine) raises
`Unusual`, and the reference path takes the run. No I/O here: `fast_path` runs the SQL.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pipelines.trigg.schema import (
    LIST_INDEX,
    LOAD_ID,
    PARENT_KEY,
    PRIMARY_KEY,
    ROOT_KEY,
    ROW_KEY,
    TABLES,
    UPDATED_AT,
    Column,
    Table,
    child_column_hints,
    root_column_hints,
)
from pipelines.trigg.timestamps import SQL_DATE_PATTERN, SQL_TIMESTAMP_PATTERN, Fold
from pipelines.trigg.validation import column_name

if TYPE_CHECKING:
    import pyarrow as pa

DATA, META = "data", "metaData"
"""The envelope's keys (`records.envelope` reads the same two)."""
META_COLUMNS = {"CreatedAt": "created_at", "UpdatedAt": UPDATED_AT}
"""`metaData` keys and the root columns they fill (`records.to_customer` does the same)."""

STRINGS = {"varchar", "uuid", "date", "time", "timestamp", "timestamp with time zone"}
"""Type ids DuckDB gives to JSON strings (it recognises dates and UUIDs; values stay as sent)."""
INTEGERS = {"bigint", "ubigint", "hugeint"}
SQL_TYPES = {
    "text": "VARCHAR",
    "bigint": "BIGINT",
    "double": "DOUBLE",
    "bool": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMPTZ",
    "json": "VARCHAR",
}
"""The DuckDB type each dlt data type is selected as (JSON as its text, as dlt writes it)."""
ARROW_TYPES = {
    "text": "string",
    "bigint": "int64",
    "double": "float64",
    "bool": "bool_",
    "date": "date32",
    "timestamp": "timestamp",
    "json": "string",
}
"""The Arrow type DuckDB hands over for each (dlt reads JSON columns from text), as the name of
its `pyarrow` factory: pyarrow is imported only by the Arrow hand-over (about 45 MB)."""
TEXT_OR_INTEGER = "('VARCHAR', 'BIGINT', 'UBIGINT')"


class Unusual(Exception):
    """Why the fast path leaves a response to dlt's normalizer (one line, for the summary)."""


@dataclass(frozen=True)
class Rule:
    """How one leaf is read (`read_type`), turned into its column (`value`) and checked (`bad`).

    `value` and `bad` take the SQL of the raw value and, for timestamps, the converter."""

    read_type: str | None
    value: Callable[[str, Callable[[str], str]], str]
    bad: Callable[[str], str] | None = None


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _null(column: Column) -> Rule:
    """A leaf DuckDB saw only nulls in (or nothing it could type, which must then be null)."""
    return Rule(
        "JSON", lambda v, ts: f"NULL::{SQL_TYPES[column.data_type]}", lambda v: f"{v} IS NOT NULL"
    )


def rule_for(column: Column, detected: Any) -> Rule:
    """How a leaf of DuckDB type `detected` loads into `column`, exactly as dlt would coerce it."""
    kind, json_typed = detected.id, str(detected) == "JSON"
    pinned = column.data_type
    if pinned == "json":
        if kind in ("struct", "map"):
            return Rule("JSON", lambda v, ts: f"CAST({v} AS VARCHAR)")
        if json_typed:
            return Rule(
                "JSON",
                lambda v, ts: f"CAST({v} AS VARCHAR)",
                lambda v: f"json_type({v}) <> 'OBJECT'",
            )
    elif json_typed and pinned == "text":
        return Rule(
            "JSON",
            lambda v, ts: (
                f"CASE WHEN json_type({v}) = 'VARCHAR' THEN {v}->>'$' ELSE CAST({v} AS VARCHAR) END"
            ),
            lambda v: f"json_type({v}) NOT IN {TEXT_OR_INTEGER}",
        )
    elif (json_typed or kind in STRINGS) and pinned == "bigint":
        return Rule(
            "JSON",
            lambda v, ts: (
                f"CASE WHEN json_type({v}) = 'VARCHAR' THEN CAST({v}->>'$' AS BIGINT)"
                f" ELSE CAST({v} AS BIGINT) END"
            ),
            lambda v: (
                f"NOT (json_type({v}) IN ('BIGINT', 'UBIGINT') OR (json_type({v}) = 'VARCHAR'"
                f" AND regexp_full_match({v}->>'$', '[+-]?[0-9]{{1,18}}')))"
            ),
        )
    elif json_typed:
        return _null(column)
    elif pinned == "text" and (kind in STRINGS or kind in INTEGERS):
        return Rule("VARCHAR", lambda v, ts: v)
    elif pinned == "bigint" and kind == "bigint":
        return Rule("BIGINT", lambda v, ts: v)
    elif pinned == "double" and (kind in INTEGERS or kind == "double"):
        return Rule("DOUBLE", lambda v, ts: v)
    elif pinned == "bool" and kind == "boolean":
        return Rule("BOOLEAN", lambda v, ts: v)
    elif pinned == "date" and kind in STRINGS:
        return Rule(
            "VARCHAR",
            lambda v, ts: f"CAST(left({v}, 10) AS DATE)",
            lambda v: (
                f"NOT regexp_full_match({v}, {literal(SQL_DATE_PATTERN)})"
                f" OR TRY_CAST(left({v}, 10) AS DATE) IS NULL"
            ),
        )
    elif pinned == "timestamp" and kind in STRINGS:
        return Rule(
            "VARCHAR",
            lambda v, ts: ts(v),
            lambda v: (
                f"{v} <> '' AND (NOT regexp_full_match({v}, {literal(SQL_TIMESTAMP_PATTERN)})"
                f" OR TRY_CAST({v} AS TIMESTAMPTZ) IS NULL)"
            ),
        )
    raise Unusual(f"{column.name} arrives as {detected}, which dlt would coerce differently")


@dataclass
class Leaf:
    column: Column
    keys: tuple[str, ...]
    """API keys from the row to the value; () when the row is the value (a list of scalars)."""
    rule: Rule


@dataclass
class TablePlan:
    table: Table
    parent: TablePlan | None
    list_keys: tuple[str, ...]
    """API keys from the parent's row to the list of this table's rows; () for `customers`."""
    leaves: list[Leaf] = field(default_factory=list)
    only_empty: bool = False
    """DuckDB could not type the list's items (it only saw empty lists): they must stay empty."""
    nulls: list[tuple[str, ...]] = field(default_factory=list)
    """Keys of objects DuckDB only saw as null (no columns come from them while they are)."""

    @property
    def depth(self) -> int:
        return 0 if self.parent is None else self.parent.depth + 1

    def leaf(self, column: str) -> Leaf | None:
        return next((leaf for leaf in self.leaves if leaf.column.name == column), None)


@dataclass
class Check:
    """One query over part of the body: counts of values that need dlt's own handling, and the
    first and last date its timestamps mention."""

    source: str
    counts: list[tuple[str, str]] = field(default_factory=list)
    dates: list[tuple[str, str]] = field(default_factory=list)

    def count(self, what: str, aggregate: str) -> None:
        self.counts.append((what, aggregate))

    def sql(self) -> str:
        aggregates = [aggregate for _, aggregate in self.counts]
        aggregates += [bound for bounds in self.dates for bound in bounds]
        return f"SELECT {', '.join(aggregates)} FROM {self.source}"


def _add_checks(
    check: Check, table: TablePlan, row: str, nested: bool, top: TablePlan | None = None
) -> None:
    """Add `table`'s checks, its values read from `row` (its own row, or a `top` row above)."""

    def bad_count(keys: tuple[str, ...], bad: Callable[[str], str]) -> str:
        if not nested:
            value = _access(row, keys)
            return f"count(*) FILTER (WHERE {value} IS NOT NULL AND ({bad(value)}))"
        values = _values(table, keys, start=top, row=row)
        return f"sum(len(list_filter({values}, v -> v IS NOT NULL AND ({bad('v')}))))"

    name = table.table.name
    if table.only_empty:
        check.count(f"{name} items of unknown shape", bad_count((), lambda v: "true"))
    for keys in table.nulls:
        check.count(f"{name}: {'.'.join(keys)}", bad_count(keys, lambda v: "true"))
    for leaf in table.leaves:
        if leaf.rule.bad is not None:
            check.count(f"{name}.{leaf.column.name}", bad_count(leaf.keys, leaf.rule.bad))
        if leaf.column.data_type == "timestamp" and leaf.rule.read_type == "VARCHAR":
            if nested:
                values = _values(table, leaf.keys, start=top, row=row)
                days = f"list_transform({values}, v -> left(NULLIF(v, ''), 10))"
                check.dates.append((f"min(list_min({days}))", f"max(list_max({days}))"))
            else:
                day = f"left(NULLIF({_access(row, leaf.keys)}, ''), 10)"
                check.dates.append((f"min({day})", f"max({day})"))


def _descends_from(table: TablePlan, ancestor: TablePlan) -> bool:
    node = table.parent
    while node is not None:
        if node is ancestor:
            return True
        node = node.parent
    return False


@dataclass
class Plan:
    """What to read and how to select every table, for one response body."""

    read_columns: dict[str, str]
    """`read_json`'s `columns`: the envelope's keys and their explicit DuckDB types."""
    tables: list[TablePlan]

    @property
    def root(self) -> TablePlan:
        return self.tables[0]

    def id_sql(self, row: str = "b") -> str:
        """The customer id as text (dlt's merge key), from a body row."""
        leaf = self.root.leaf(PRIMARY_KEY)
        if leaf is None:
            raise Unusual("no customer has an id")
        return leaf.rule.value(_access(row, leaf.keys), _no_timestamps)

    def root_id_sql(self, row: str = "b") -> str:
        """`_dlt_id` of a customer row: the same customer version gets the same id in every run."""
        updated = self.root.leaf(UPDATED_AT)
        version = _access(row, updated.keys) if updated else "''"
        return f"left(md5(({self.id_sql(row)}) || '|' || coalesce({version}, '')), 24)"

    def updated_at_sql(self, ts: Callable[[str], str], row: str = "b") -> str:
        leaf = self.root.leaf(UPDATED_AT)
        return "NULL::TIMESTAMPTZ" if leaf is None else leaf.rule.value(_access(row, leaf.keys), ts)

    def checks(self) -> Iterator[Check]:
        """One query for the customers and one per top-level list (promotions and everything in
        them): how many values dlt would coerce differently or quarantine, and the first and
        last date the timestamps mention. Each reads its part of the body once."""
        root = Check("body b")
        id_sql = self.id_sql()
        root.count(
            "a customer without an id",
            f"count(*) FILTER (WHERE ({id_sql}) IS NULL OR ({id_sql}) = '')",
        )
        _add_checks(root, self.root, "b", nested=False)
        yield root
        for top in (table for table in self.tables if table.depth == 1):
            check = Check(f"(SELECT unnest({_values(top)}) AS r FROM body b)")
            for table in self.tables:
                if table is top or _descends_from(table, top):
                    _add_checks(check, table, "r", nested=table is not top, top=top)
            if check.counts or check.dates:
                yield check

    def arrow_schema(self, table: TablePlan) -> pa.Schema:
        """The Arrow schema of `select_sql`'s rows: the pinned types, dlt's nullability."""
        import pyarrow as pa

        def arrow_type(data_type: str) -> pa.DataType:
            factory = getattr(pa, ARROW_TYPES[data_type])
            return factory("us", tz="UTC") if data_type == "timestamp" else factory()

        if table.parent is None:
            hints, dlt_columns = root_column_hints(), [LOAD_ID, ROW_KEY]
        else:
            hints = child_column_hints(table.table)
            dlt_columns = [ROOT_KEY, PARENT_KEY, LIST_INDEX, ROW_KEY]
        names = [leaf.column.name for leaf in table.leaves] + dlt_columns
        return pa.schema(
            pa.field(name, arrow_type(hints[name]["data_type"]), hints[name].get("nullable", True))
            for name in names
        )

    def select_sql(
        self, table: TablePlan, ts: Callable[[str], str], load_id: str, body: str
    ) -> str:
        """The rows of `table`, typed like the pinned columns, with dlt's join columns."""
        columns = [
            f"{leaf.rule.value(_access('r.item' if table.parent else 'b', leaf.keys), ts)}"
            f" AS {quote(leaf.column.name)}"
            for leaf in table.leaves
        ]
        if table.parent is None:
            columns += [f"{literal(load_id)} AS {LOAD_ID}", f"b.root_id AS {ROW_KEY}"]
            return f"SELECT {', '.join(columns)} FROM {body} b"
        columns += [  # in the order dlt's normalizer adds them
            f"r.root AS {ROOT_KEY}",
            f"r.parent AS {PARENT_KEY}",
            f"r.idx AS {LIST_INDEX}",
            f"r.id AS {ROW_KEY}",
        ]
        return f"SELECT {', '.join(columns)} FROM ({_rows(table, body)}) r"


def _no_timestamps(value: str) -> str:
    raise AssertionError("the customer id is never a timestamp")


def _access(row: str, keys: tuple[str, ...]) -> str:
    return ".".join([row, *map(quote, keys)])


def _rows(table: TablePlan, body: str) -> str:
    """(id, parent, root, idx, item) of every row of a child table, from the body table."""
    parent = table.parent
    assert parent is not None
    if parent.parent is None:
        source, parent_id, root = f"{body} b", "b.root_id", "b.root_id"
        items = _access("b", table.list_keys)
    else:
        source, parent_id, root = f"({_rows(parent, body)}) p", "p.id", "p.root"
        items = _access("p.item", table.list_keys)
    unnested = (
        f"SELECT {parent_id} AS parent, {root} AS root, unnest({items}) AS item,"
        f" generate_subscripts({items}, 1) - 1 AS idx FROM {source}"
    )
    return f"SELECT parent || '.' || idx AS id, parent, root, idx, item FROM ({unnested})"


def _values(
    table: TablePlan, keys: tuple[str, ...] = (), start: TablePlan | None = None, row: str = "b"
) -> str:
    """A SQL list of the values at `keys` in every row of `table` under one row `row` (a body
    row, or a row of the table `start` above `table`)."""
    chain: list[TablePlan] = []
    node: TablePlan | None = table
    while node is not None and node.parent is not None and node is not start:
        chain.insert(0, node)
        node = node.parent
    if not chain:
        return f"[{_access(row, keys)}]"

    def descend(level: int, item: str) -> str:
        items = _access(item, chain[level].list_keys)
        var = f"x{level}"
        if level == len(chain) - 1:
            return f"list_transform({items}, {var} -> {_access(var, keys)})" if keys else items
        return f"flatten(list_transform({items}, {var} -> {descend(level + 1, var)}))"

    return f"coalesce({descend(0, row)}, [])"


def make_plan(envelope: list[tuple[str, Any]]) -> Plan:
    """The plan for a body whose items DuckDB read as the columns `envelope`; raises `Unusual`."""
    keys = dict(envelope)
    data = keys.get(DATA)
    if data is None or data.id != "struct":
        raise Unusual("the response's items are not all {data, metaData} envelopes")
    root = TablePlan(TABLES[0], None, ())
    tables = [root]
    read_data = _object(root, data, (DATA,), (), tables)
    read_columns = {DATA: read_data}
    meta = keys.get(META)
    if meta is not None and meta.id == "struct":
        fields: list[str] = []
        for key, detected in meta.children:
            if key in META_COLUMNS:
                column = _column(TABLES[0], META_COLUMNS[key])
                rule = rule_for(column, detected)
                root.leaves.append(Leaf(column, (META, key), rule))
                if rule.read_type:
                    fields.append(f"{quote(key)} {rule.read_type}")
        read_columns[META] = f"STRUCT({', '.join(fields)})" if fields else "JSON"
    elif meta is not None and str(meta) != "JSON":
        raise Unusual("metaData is not an object")
    return Plan(read_columns, tables)


def _column(table: Table, name: str) -> Column:
    found = next((column for column in table.columns if column.name == name), None)
    if found is None:
        raise Unusual(f"{table.name}.{name} is not in the spec")
    return found


def _object(
    table: TablePlan,
    detected: Any,
    keys: tuple[str, ...],
    prefix: tuple[str, ...],
    tables: list[TablePlan],
) -> str:
    """Plan the keys of an object that belongs to `table` (flattened into `a__b` columns, lists
    into child tables) and return its DuckDB read type."""
    fields: list[str] = []
    names: set[tuple[str, ...]] = set()
    for key, child in detected.children:
        if prefix == () and keys == (DATA,) and key == META:
            raise Unusual("a customer carries its own metaData")
        name = (*prefix, column_name(key))
        if name in names:
            raise Unusual(f"two fields are both named {'__'.join(name)}")
        names.add(name)
        read = _member(table, child, (*keys, key), name, tables)
        if read is not None:
            fields.append(f"{quote(key)} {read}")
    return f"STRUCT({', '.join(fields)})" if fields else "JSON"


def _member(
    table: TablePlan, detected: Any, keys: tuple[str, ...], name: tuple[str, ...], tables: list
) -> str | None:
    column = _column_or_none(table.table, "__".join(name))
    if column is not None and (column.data_type == "json" or detected.id not in ("struct", "list")):
        rule = rule_for(column, detected)
        table.leaves.append(Leaf(column, keys, rule))
        return rule.read_type
    if detected.id == "struct":
        return _object(table, detected, keys, name, tables)
    if detected.id == "list":
        return _list(table, detected, keys, name, tables)
    if str(detected) == "JSON" and _leads_to_known(table.table, name):
        table.nulls.append(keys)  # e.g. `loyalty: null` everywhere: allowed while it stays null
        return "JSON"
    raise Unusual(f"{table.table.name}.{'__'.join(name)} is not in the spec")


def _leads_to_known(table: Table, name: tuple[str, ...]) -> bool:
    """Whether an object at `name` in `table` would hold pinned columns or child tables."""
    flat = "__".join(name) + "__"
    path = (*table.path, *name)
    return any(column.name.startswith(flat) for column in table.columns) or any(
        other.path[: len(path)] == path for other in TABLES
    )


def _list(
    parent: TablePlan, detected: Any, keys: tuple[str, ...], name: tuple[str, ...], tables: list
) -> str:
    path = (*parent.table.path, *name)
    table = next((t for t in TABLES if t.path == path), None)
    if table is None:
        raise Unusual(f"the list {'__'.join(path)} is not in the spec")
    child = TablePlan(table, parent, keys)
    tables.append(child)
    (_, item), *_ = detected.children
    if item.id == "struct":
        return _object(child, item, (), (), tables) + "[]"
    if item.id == "list":
        raise Unusual(f"{table.name} holds lists of lists")
    value = _column_or_none(table, "value")
    if value is None:
        if str(item) != "JSON":
            raise Unusual(f"{table.name} holds {item} values, not objects")
        child.only_empty = True
        return "JSON[]"
    rule = rule_for(value, item)
    child.leaves.append(Leaf(value, (), rule))
    return f"{rule.read_type}[]"


def _column_or_none(table: Table, name: str) -> Column | None:
    return next((column for column in table.columns if column.name == name), None)


def timestamp_sql(zone: str, folds: list[Fold]) -> Callable[[str], str]:
    """The SQL converting a timestamp text (checked against `SQL_TIMESTAMP_PATTERN`) to an
    instant the way `parse_api_timestamp` does: naive texts are wall time in `zone`, read by
    DuckDB's ICU, then moved to the earlier instant inside `folds`, where ICU takes the later."""

    def convert(text: str) -> str:
        wall = f"CAST({text} AS TIMESTAMP)"
        local = f"timezone({literal(zone)}, {wall})"
        if folds:
            cases = " ".join(
                f"WHEN {wall} >= TIMESTAMP '{fold.start}' AND {wall} < TIMESTAMP '{fold.end}'"
                f" THEN INTERVAL {int(fold.earlier_by.total_seconds())} SECOND"
                for fold in folds
            )
            local = f"({local} - CASE {cases} ELSE INTERVAL 0 SECOND END)"
        return (
            f"CASE WHEN {text} IS NULL OR {text} = '' THEN NULL::TIMESTAMPTZ"
            f" WHEN ends_with({text}, 'Z') OR substr({text}, -6, 1) IN ('+', '-')"
            f" THEN CAST({text} AS TIMESTAMPTZ) ELSE {local} END"
        )

    return convert
