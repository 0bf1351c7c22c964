"""The fast path's plan: how a response's structure maps onto the tables, as SQL.

DuckDB reports the structure of a whole body: every key at every level and one merged type per leaf
(`JSON` where values of several types meet). Each key is named the way dlt's normalizer names it
and looked up among the pinned columns (`schema.TABLES`) and the columns dlt's schema already holds
from earlier loads; any other key becomes a new column (a new list, a new child table) typed the way
dlt's normalizer would type it. The plan says how DuckDB reads the body (an explicit STRUCT, so
DuckDB's guesses never change a value), how each table's rows and dlt's join columns are selected,
and which values SQL cannot load exactly as dlt would: a record holding one (a value to quarantine,
or one dlt coerces its own way) is flagged, and takes the Python way (`records`, `validation`,
dlt's normalizer) on its own. What the plan cannot handle for a whole body (a shape nobody has
seen) raises `Unusual`, and the reference path takes the response. No I/O here: `fast_path` runs
the SQL.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

from dlt.common.schema.detections import is_iso_timestamp
from dlt.common.schema.typing import TDataType

from pipelines.trigg.privacy import (
    BIRTH_DATE,
    FREE_FORM,
    IDENTIFYING,
    REMOVED,
    Privacy,
    SqlPrivacy,
)
from pipelines.trigg.schema import (
    DLT_NESTED_COLUMNS,
    DLT_ROOT_COLUMNS,
    DUCKDB_TYPES,
    LIST_INDEX,
    LOAD_ID,
    PARENT_KEY,
    PRIMARY_KEY,
    ROOT_KEY,
    ROOT_TABLE,
    ROW_KEY,
    TABLES,
    UPDATED_AT,
    Column,
    Table,
    root_column_hints,
)
from pipelines.trigg.timestamps import SQL_DATE_PATTERN, SQL_TIMESTAMP_PATTERN, Fold
from pipelines.trigg.validation import column_name

if TYPE_CHECKING:
    import pyarrow as pa
    from dlt.common.schema.typing import TColumnSchema

DATA, META = "data", "metaData"
"""The envelope's keys (`records.envelope` reads the same two)."""
META_COLUMNS = {"CreatedAt": "created_at", "UpdatedAt": UPDATED_AT}
"""`metaData` keys and the root columns they fill (`records.to_customer` does the same)."""
API_ZONE_KEYS = {
    "CreatedAt",
    "UpdatedAt",
    "validFrom",
    "validTo",
    "redeemDateTime",
    "consentDate",
}
"""The keys `records.to_customer` reads in the API's time zone; dlt reads other naive
timestamps (of columns it detected itself) as UTC."""
MAX_NAME_LENGTH = 63
"""Longer names of new columns and tables dlt may shorten (PostgreSQL's limit): left to it."""

STRINGS = {"varchar", "uuid", "date", "time", "timestamp", "timestamp with time zone"}
"""Type ids DuckDB gives to JSON strings (it recognises dates and UUIDs; values stay as sent)."""
INTEGERS = {"bigint", "ubigint", "hugeint"}
SQL_TYPES: Final[dict[TDataType, str]] = {**DUCKDB_TYPES, "json": "VARCHAR"}
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
JSON_TYPES = {
    "text": ("'VARCHAR'", "'BIGINT'", "'UBIGINT'"),
    "bigint": ("'BIGINT'", "'UBIGINT'", "'VARCHAR'"),
    "double": ("'BIGINT'", "'UBIGINT'", "'DOUBLE'"),
    "bool": ("'BOOLEAN'",),
    "date": ("'VARCHAR'",),
    "timestamp": ("'VARCHAR'",),
    "json": ("'OBJECT'",),
}
"""The JSON value types a mixed-typed leaf may hold for each dlt type; others are flagged."""
Converter = Callable[[str], str]
"""SQL of a timestamp text -> SQL of its instant, in the API's zone (`timestamp_sql`)."""


class Unusual(Exception):
    """Why the fast path leaves a response to dlt's normalizer (one line, for the summary)."""


@dataclass(frozen=True)
class Rule:
    """How one leaf is read (`read_type`), turned into its column (`value`) and checked (`bad`:
    true where SQL cannot load the value as dlt would, so its record takes the Python way).

    `value` and `bad` take the SQL of the raw value; `value` also takes the converter of
    API-zone timestamps."""

    read_type: str | None
    value: Callable[[str, Converter], str]
    bad: Callable[[str], str] | None = None


def quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def utc_timestamp_sql(text: str) -> str:
    """A timestamp text (checked against `SQL_TIMESTAMP_PATTERN`) as dlt reads one of a column it
    detected itself: naive texts are UTC (the scratch session's zone)."""
    return f"TRY_CAST({text} AS TIMESTAMPTZ)"


def _date_bad(v: str) -> str:
    return (
        f"NOT regexp_full_match({v}, {literal(SQL_DATE_PATTERN)})"
        f" OR TRY_CAST(left({v}, 10) AS DATE) IS NULL"
    )


def _timestamp_bad(v: str, api_zone: bool) -> str:
    unreadable = (
        f"NOT regexp_full_match({v}, {literal(SQL_TIMESTAMP_PATTERN)})"
        f" OR TRY_CAST({v} AS TIMESTAMPTZ) IS NULL"
    )
    # `parse_api_timestamp` reads '' as no time; dlt coerces '' into no timestamp at all
    return f"{v} <> '' AND ({unreadable})" if api_zone else unreadable


def _timestamp_value(api_zone: bool) -> Callable[[str, Converter], str]:
    return (lambda v, ts: ts(v)) if api_zone else (lambda v, ts: utc_timestamp_sql(v))


def _json_rule(data_type: str, api_zone: bool) -> Rule:
    """A leaf DuckDB saw values of several JSON types in, read as JSON: the types that load as
    `data_type` are converted the way dlt coerces them, the others flagged."""
    allowed = ", ".join(JSON_TYPES[data_type])

    def bad(v: str) -> str:
        wrong = f"json_type({v}) NOT IN ({allowed})"
        if data_type == "bigint":
            return (
                f"{wrong} OR (json_type({v}) = 'VARCHAR' AND NOT regexp_full_match({v}->>'$',"
                f" '[+-]?[0-9]{{1,18}}')) OR (json_type({v}) <> 'VARCHAR'"
                f" AND TRY_CAST({v} AS BIGINT) IS NULL)"
            )
        text = f"({v}->>'$')"
        if data_type == "date":
            return f"{wrong} OR {_date_bad(text)}"
        if data_type == "timestamp":
            return f"{wrong} OR {_timestamp_bad(text, api_zone)}"
        return wrong

    def value(v: str, ts: Converter) -> str:
        text = f"({v}->>'$')"
        if data_type == "text":
            return f"CASE WHEN json_type({v}) = 'VARCHAR' THEN {text} ELSE CAST({v} AS VARCHAR) END"
        if data_type == "bigint":
            return (
                f"CASE WHEN json_type({v}) = 'VARCHAR' THEN TRY_CAST({text} AS BIGINT)"
                f" ELSE TRY_CAST({v} AS BIGINT) END"
            )
        if data_type == "date":
            return f"TRY_CAST(left({text}, 10) AS DATE)"
        if data_type == "timestamp":
            return _timestamp_value(api_zone)(text, ts)
        if data_type == "json":
            return f"CAST({v} AS VARCHAR)"
        return f"TRY_CAST({v} AS {SQL_TYPES[data_type]})"

    return Rule("JSON", value, bad)


def rule_for(column: Column, detected: Any, api_zone: bool = True) -> Rule:
    """How a leaf of DuckDB type `detected` loads into `column`, exactly as dlt would coerce it."""
    kind, json_typed = detected.id, str(detected) == "JSON"
    pinned = column.data_type
    if pinned == "json" and kind in ("struct", "map"):
        return Rule("JSON", lambda v, ts: f"CAST({v} AS VARCHAR)")
    if json_typed or (pinned == "bigint" and (kind in STRINGS or kind in ("ubigint", "hugeint"))):
        return _json_rule(pinned, api_zone)  # numbers in text, or beyond int64: value by value
    if pinned == "text" and (kind in STRINGS or kind in INTEGERS):
        return Rule("VARCHAR", lambda v, ts: v)
    if pinned == "bigint" and kind == "bigint":
        return Rule("BIGINT", lambda v, ts: v)
    if pinned == "double" and (kind in INTEGERS or kind == "double"):
        return Rule("DOUBLE", lambda v, ts: v)
    if pinned == "bool" and kind == "boolean":
        return Rule("BOOLEAN", lambda v, ts: v)
    if pinned == "date" and kind in STRINGS:
        return Rule("VARCHAR", lambda v, ts: f"TRY_CAST(left({v}, 10) AS DATE)", _date_bad)
    if pinned == "timestamp" and kind in STRINGS:
        return Rule("VARCHAR", _timestamp_value(api_zone), lambda v: _timestamp_bad(v, api_zone))
    raise Unusual(f"{column.name} arrives as {detected}, which dlt would coerce differently")


@dataclass
class Pending:
    """A leaf the spec and dlt's schema do not know: its dlt type is the type dlt's normalizer
    infers from the first value it meets, known once the body is read (`Plan.decide`)."""

    kind: str
    """How DuckDB saw it: `string`, `bigint`, `bool` (final), or `json` (several types, or
    numbers with and without a fraction, told apart value by value)."""


@dataclass
class Leaf:
    column: Column
    keys: tuple[str, ...]
    """API keys from the row to the value; () when the row is the value (a list of scalars)."""
    rule: Rule
    pending: Pending | None = None
    new: bool = False
    """A column dlt's schema does not have yet (named in the run's summary by the runner)."""
    dropped: bool = False
    """No record on the fast path has a value for it: dlt's normalizer may type it, if the
    Python way brings one."""


@dataclass
class TablePlan:
    table: Table
    parent: TablePlan | None
    list_keys: tuple[str, ...]
    """API keys from the parent's row to the list of this table's rows; () for `customers`."""
    known: dict[str, Column] = field(default_factory=dict)
    """Columns of known type, by name: the pinned ones and those dlt's schema already holds."""
    leaves: list[Leaf] = field(default_factory=list)
    only_empty: bool = False
    """DuckDB could not type the list's items (it only saw empty lists): they must stay empty."""
    nulls: list[tuple[str, ...]] = field(default_factory=list)
    """Keys of objects DuckDB only saw as null (no columns come from them while they are)."""
    declared: bool = False
    """A child table the spec does not list: no hints at the source's start make it a child
    table of `customers`, so it is declared with its rows in every load (`hints`)."""

    @property
    def depth(self) -> int:
        return 0 if self.parent is None else self.parent.depth + 1

    def leaf(self, column: str) -> Leaf | None:
        return next((leaf for leaf in self.leaves if leaf.column.name == column), None)

    @property
    def selected(self) -> list[Leaf]:
        """The leaves that become columns of the fast path's rows."""
        return [leaf for leaf in self.leaves if leaf.pending is None and not leaf.dropped]

    def new_hints(self) -> dict[str, TColumnSchema]:
        """The columns dlt's schema does not have yet, as its normalizer would make them."""
        return {
            leaf.column.name: {"name": leaf.column.name, "data_type": leaf.column.data_type}
            for leaf in self.selected
            if leaf.new
        }

    def hints(self) -> dict[str, TColumnSchema]:
        """The columns of a new child table, dlt's join columns included."""
        return {**self.new_hints(), **DLT_NESTED_COLUMNS}


@dataclass
class Check:
    """One query over part of the body: counts of values SQL cannot load as dlt would, and the
    first and last date its timestamps mention. `flags` holds, for each count, the same test
    as a condition on one body row `b` (its record takes the Python way)."""

    source: str
    counts: list[tuple[str, str]] = field(default_factory=list)
    flags: list[str] = field(default_factory=list)
    dates: list[tuple[str, str]] = field(default_factory=list)

    def count(self, what: str, aggregate: str, flag: str) -> None:
        self.counts.append((what, aggregate))
        self.flags.append(flag)

    def sql(self) -> str:
        aggregates = [aggregate for _, aggregate in self.counts]
        aggregates += [bound for bounds in self.dates for bound in bounds]
        return f"SELECT {', '.join(aggregates or ['NULL'])} FROM {self.source}"


def _row_flag(table: TablePlan, keys: tuple[str, ...], bad: Callable[[str], str]) -> str:
    """Whether a body row `b` holds a value at `keys` of `table` that is `bad`."""
    if table.parent is None:
        value = _access("b", keys)
        return f"({value} IS NOT NULL AND ({bad(value)}))"
    values = _values(table, keys, row="b")
    return f"len(list_filter({values}, v -> v IS NOT NULL AND ({bad('v')}))) > 0"


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

    def add(what: str, keys: tuple[str, ...], bad: Callable[[str], str]) -> None:
        check.count(what, bad_count(keys, bad), _row_flag(table, keys, bad))

    name = table.table.name
    if table.only_empty:
        add(f"{name} items of unknown shape", (), lambda v: "true")
    for keys in table.nulls:
        add(f"{name}: {'.'.join(keys)}", keys, lambda v: "true")
    for leaf in table.leaves:
        if leaf.rule.bad is not None and leaf.pending is None:
            add(f"{name}.{leaf.column.name}", leaf.keys, leaf.rule.bad)
        if leaf.column.data_type == "timestamp" and leaf.rule.read_type == "VARCHAR":
            if nested:
                values = _values(table, leaf.keys, start=top, row=row)
                days = f"list_transform({values}, v -> TRY_CAST(left(NULLIF(v, ''), 10) AS DATE))"
                check.dates.append((f"min(list_min({days}))", f"max(list_max({days}))"))
            else:
                day = f"TRY_CAST(left(NULLIF({_access(row, leaf.keys)}, ''), 10) AS DATE)"
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
    """`read_json`'s `columns`: the items' keys and their explicit DuckDB types."""
    tables: list[TablePlan]
    envelopes: bool = True
    """Items are `{data, metaData}` envelopes; otherwise bare customers with `metaData` inside."""

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

    def updated_at_sql(self, ts: Converter, row: str = "b") -> str:
        leaf = self.root.leaf(UPDATED_AT)
        return "NULL::TIMESTAMPTZ" if leaf is None else leaf.rule.value(_access(row, leaf.keys), ts)

    def checks(self) -> Iterator[Check]:
        """One query for the customers and one per top-level list (promotions and everything in
        them): how many values SQL cannot load as dlt would, and the first and last date the
        timestamps mention. Each reads its part of the body once."""
        root = Check("body b")
        id_sql = self.id_sql()
        missing = f"(({id_sql}) IS NULL OR ({id_sql}) = '')"
        root.count("a customer without an id", f"count(*) FILTER (WHERE {missing})", missing)
        _add_checks(root, self.root, "b", nested=False)
        yield root
        for top in (table for table in self.tables if table.depth == 1):
            check = Check(f"(SELECT unnest({_values(top)}) AS r FROM body b)")
            for table in self.tables:
                if table is top or _descends_from(table, top):
                    _add_checks(check, table, "r", nested=table is not top, top=top)
            if check.counts or check.dates:
                yield check

    def pending(self) -> Iterator[tuple[TablePlan, Leaf]]:
        for table in self.tables:
            for leaf in table.leaves:
                if leaf.pending is not None:
                    yield table, leaf

    def first_value_sql(self, table: TablePlan, leaf: Leaf) -> str:
        """The first value of a pending leaf in a body row `b` (in dlt's order: the record, then
        its lists in order), as JSON text, or NULL; empty objects and lists count as none."""
        json_typed = leaf.pending is not None and leaf.pending.kind == "json"
        present = f"x IS NOT NULL AND NOT {_empty('x')}" if json_typed else "x IS NOT NULL"
        first = f"list_filter({_values(table, leaf.keys, row='b')}, x -> {present})[1]"
        return f"CAST({first} AS VARCHAR)" if json_typed else f"CAST(to_json({first}) AS VARCHAR)"

    def leaf_flag(self, table: TablePlan, leaf: Leaf) -> str | None:
        """Whether a body row `b` holds a value of `leaf` SQL cannot load as dlt would."""
        return None if leaf.rule.bad is None else _row_flag(table, leaf.keys, leaf.rule.bad)

    def decide(self, leaf: Leaf, first: Any) -> None:
        """Settle a pending leaf on the first value dlt meets (None: no record on the fast path
        has one, and the leaf is left out)."""
        assert leaf.pending is not None
        kind, leaf.pending = leaf.pending.kind, None
        if first is None:
            leaf.dropped = True
            return
        data_type = infer_type(first)
        leaf.column = Column(leaf.column.name, data_type, leaf.column.description)
        if kind == "json":
            rule = _json_rule(data_type, api_zone=False)
            empty_safe = rule.bad
            assert empty_safe is not None
            leaf.rule = Rule(
                "JSON",
                lambda v, ts: f"CASE WHEN {_empty(v)} THEN NULL ELSE {rule.value(v, ts)} END",
                lambda v: f"NOT {_empty(v)} AND ({empty_safe(v)})",
            )
        elif data_type == "timestamp":
            leaf.rule = Rule("VARCHAR", _timestamp_value(False), lambda v: _timestamp_bad(v, False))
        else:
            leaf.rule = Rule(leaf.rule.read_type, lambda v, ts: v)

    def arrow_schema(self, table: TablePlan) -> pa.Schema:
        """The Arrow schema of `select_sql`'s rows: the columns' types, dlt's nullability."""
        import pyarrow as pa

        def arrow_type(data_type: str) -> pa.DataType:
            factory = getattr(pa, ARROW_TYPES[data_type])
            return factory("us", tz="UTC") if data_type == "timestamp" else factory()

        pinned = root_column_hints() if table.parent is None else {}
        dlt_columns = DLT_ROOT_COLUMNS if table.parent is None else DLT_NESTED_COLUMNS
        fields = [
            pa.field(
                leaf.column.name,
                arrow_type(leaf.column.data_type),
                pinned.get(leaf.column.name, {}).get("nullable", True),
            )
            for leaf in table.selected
        ]
        fields += [  # in `select_sql`'s order
            pa.field(name, arrow_type(hints["data_type"]), False)
            for name, hints in dlt_columns.items()
        ]
        return pa.schema(fields)

    def select_sql(self, table: TablePlan, ts: Converter, load_id: str, body: str) -> str:
        """The rows of `table`, typed like its columns, with dlt's join columns."""
        columns = [
            f"{leaf.rule.value(_access('r.item' if table.parent else 'b', leaf.keys), ts)}"
            f" AS {quote(leaf.column.name)}"
            for leaf in table.selected
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


def infer_type(first: Any) -> str:
    """The dlt type dlt's normalizer gives a new column from its first value (a parsed JSON value):
    with its default `iso_timestamp` detection."""
    if isinstance(first, bool):
        return "bool"
    if isinstance(first, int):
        if not -(2**63) <= first < 2**63:
            raise Unusual(f"a new field holds {first}, which dlt stores its own way")
        return "bigint"
    if isinstance(first, float):
        return "double"
    if isinstance(first, str):
        return "timestamp" if is_iso_timestamp(str, first) else "text"
    raise Unusual("a new field holds objects and other values, which dlt splits its own way")


def parse_first(text: str | None) -> Any:
    """A first value as `first_value_sql` hands it over."""
    return None if text is None else json.loads(text)


def _empty(v: str) -> str:
    return f"CAST({v} AS VARCHAR) IN ('{{}}', '[]')"


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
    row, or a row of the table `start` above `table`), in order."""
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


@dataclass
class _Context:
    """What planning needs besides the structure: dlt's schema, the privacy mode, the tables."""

    stored: Mapping[str, Mapping[str, str]]
    privacy: SqlPrivacy | None
    tables: list[TablePlan]


def make_plan(
    envelope: list[tuple[str, Any]],
    stored: Mapping[str, Mapping[str, str]] | None = None,
    privacy: Privacy | None = None,
) -> Plan:
    """The plan for a body whose items DuckDB read as the columns `envelope`; raises `Unusual`.

    `stored` holds the columns dlt's schema knows (table -> column -> dlt type) beyond the
    spec; with `privacy` other than keep, personal data is handled as `Privacy.apply` does."""
    keys = dict(envelope)
    root = TablePlan(TABLES[0], None, (), known=_known(TABLES[0].name, TABLES[0], stored or {}))
    context = _Context(
        stored or {}, SqlPrivacy(privacy) if privacy and privacy.mode != "keep" else None, [root]
    )
    data = keys.get(DATA)
    if data is not None:
        if data.id != "struct" or set(keys) - {DATA, META}:
            raise Unusual("the response's items are not all {data, metaData} envelopes")
        read_columns = {DATA: _object(root, data, (DATA,), (), context)}
    else:  # bare customers, each with its `metaData` inside
        fields = _fields(root, [(k, t) for k, t in envelope if k != META], (), (), context)
        if not fields:
            raise Unusual("the response's items are not customers")
        read_columns = dict(fields)
    meta = keys.get(META)
    if meta is not None and meta.id == "struct":
        meta_fields: list[str] = []
        for key, detected in meta.children:
            if key in META_COLUMNS:
                column = root.known[META_COLUMNS[key]]
                rule = rule_for(column, detected)
                root.leaves.append(Leaf(column, (META, key), rule))
                if rule.read_type:
                    meta_fields.append(f"{quote(key)} {rule.read_type}")
        read_columns[META] = f"STRUCT({', '.join(meta_fields)})" if meta_fields else "JSON"
    elif meta is not None and str(meta) != "JSON":
        raise Unusual("metaData is not an object")
    _check_names(context.tables)
    return Plan(read_columns, context.tables, envelopes=data is not None)


def _known(name: str, table: Table | None, stored: Mapping[str, Mapping[str, str]]) -> dict:
    known = {
        column: Column(column, data_type, "")  # type: ignore[arg-type]
        for column, data_type in stored.get(name, {}).items()
        if not column.startswith("_dlt")
    }
    return {**known, **{column.name: column for column in (table.columns if table else ())}}


def _check_names(tables: list[TablePlan]) -> None:
    """Two keys named alike at different levels (`a__b` and `a: {b}`) would share a column."""
    for table in tables:
        names = [leaf.column.name for leaf in table.leaves]
        twice = {name for name in names if names.count(name) > 1}
        if twice:
            raise Unusual(f"two fields are both named {table.table.name}.{sorted(twice)[0]}")


def _object(
    table: TablePlan,
    detected: Any,
    keys: tuple[str, ...],
    prefix: tuple[str, ...],
    context: _Context,
) -> str:
    """Plan the keys of an object that belongs to `table` (flattened into `a__b` columns, lists
    into child tables) and return its DuckDB read type."""
    fields = _fields(table, detected.children, keys, prefix, context)
    return f"STRUCT({', '.join(f'{quote(k)} {t}' for k, t in fields)})" if fields else "JSON"


def _fields(
    table: TablePlan,
    children: list[tuple[str, Any]],
    keys: tuple[str, ...],
    prefix: tuple[str, ...],
    context: _Context,
) -> list[tuple[str, str]]:
    fields: list[tuple[str, str]] = []
    names: set[tuple[str, ...]] = set()
    customer = table.parent is None and prefix == ()
    for key, child in children:
        if customer and keys == (DATA,) and key == META:
            raise Unusual("a customer carries its own metaData")
        if customer and context.privacy is not None and key in REMOVED:
            continue  # `Privacy.apply` drops it before anything else sees it
        name = (*prefix, column_name(key))
        if name in names:
            raise Unusual(f"two fields are both named {'__'.join(name)}")
        names.add(name)
        if customer and context.privacy is not None and key == BIRTH_DATE:
            read: str | None = _birth_year(table, child, (*keys, key), context.privacy)
        else:
            read = _member(table, child, (*keys, key), name, context)
        if read is not None:
            fields.append((key, read))
    return fields


def _member(
    table: TablePlan,
    detected: Any,
    keys: tuple[str, ...],
    name: tuple[str, ...],
    context: _Context,
) -> str | None:
    flat = "__".join(name)
    column = table.known.get(flat)
    if column is not None:
        if column.data_type != "json" and detected.id in ("struct", "list"):
            raise Unusual(f"{table.table.name}.{flat} arrives as {detected}, not as a value")
        rule = rule_for(column, detected, _api_zone(table, column, keys))
        rule = _with_privacy(table, keys, rule, context)
        table.leaves.append(Leaf(column, keys, rule))
        return rule.read_type
    if detected.id == "struct":
        return _object(table, detected, keys, name, context)
    if detected.id == "list":
        return _list(table, detected, keys, name, context)
    if str(detected) == "JSON" and _leads_to_known(table, name, context):
        table.nulls.append(keys)  # e.g. `loyalty: null` everywhere: allowed while it stays null
        return "JSON"
    return _new_leaf(table, detected, keys, flat)


def _api_zone(table: TablePlan, column: Column, keys: tuple[str, ...]) -> bool:
    """Whether `records.to_customer` reads this leaf's naive timestamps in the API's zone (the
    pinned timestamps, under the keys it reads them by), not dlt as UTC (the others)."""
    pinned = column in table.table.columns
    if pinned and column.data_type == "timestamp" and keys[-1:][0] not in API_ZONE_KEYS:
        raise Unusual(f"{table.table.name}.{column.name} arrives under the key {keys[-1]}")
    return pinned


def _with_privacy(table: TablePlan, keys: tuple[str, ...], rule: Rule, context: _Context) -> Rule:
    """`rule`, with personal data handled the way `Privacy.apply` does: identifying texts
    pseudonymized or dropped, free-form properties that may hold an e-mail address or phone
    number flagged (`Privacy._scrub` takes them)."""
    privacy = context.privacy
    if privacy is None:
        return rule
    customer_key = keys[-1] if table.parent is None and len(keys) == len(_root_keys(keys)) else None
    card = table.table.path == ("loyalty", "loyalty_cards") and table.list_keys[-2:] == (
        "loyalty",
        "loyaltyCards",
    )
    bad = rule.bad
    if customer_key in IDENTIFYING:
        text = customer_key

        def value(v: str, ts: Converter) -> str:
            return privacy.value(text, f"({rule.value(v, ts)})")

        def flagged(v: str) -> str:
            own = f"({bad(v)})" if bad else "false"
            return f"{own} OR {privacy.needs_python(text, f'({rule.value(v, _no_timestamps)})')}"

        return Rule(rule.read_type, value, flagged)
    if customer_key == FREE_FORM or (card and keys == (FREE_FORM,)):

        def scrubbed(v: str) -> str:
            own = f"({bad(v)}) OR " if bad else ""
            return f"{own}{privacy.may_need_scrubbing(f'CAST({v} AS VARCHAR)')}"

        return Rule(rule.read_type, rule.value, scrubbed)
    return rule


def _root_keys(keys: tuple[str, ...]) -> tuple[str, ...]:
    """The keys of a customer's own field: `(data, field)` in an envelope, `(field,)` bare."""
    return keys[:2] if keys[:1] == (DATA,) else keys[:1]


def _birth_year(table: TablePlan, detected: Any, keys: tuple[str, ...], privacy: SqlPrivacy) -> str:
    """`birthDate` as `Privacy.apply` keeps it: the year, in `birth_year`."""
    column = table.known["birth_year"]
    if detected.id in STRINGS:
        text: Callable[[str], str] = lambda v: v  # noqa: E731
        read = "VARCHAR"
    else:  # anything but a text has no year
        text = lambda v: f"(CASE WHEN json_type({v}) = 'VARCHAR' THEN {v}->>'$' END)"  # noqa: E731
        read = "JSON"
    rule = Rule(
        read,
        lambda v, ts: privacy.birth_year(text(v)),
        lambda v: f"coalesce({privacy.birth_year_needs_python(text(v))}, false)",
    )
    table.leaves.append(Leaf(column, keys, rule))
    return read


def _new_leaf(table: TablePlan, detected: Any, keys: tuple[str, ...], flat: str) -> str:
    """A value the spec and dlt's schema do not know: a new column, typed once the body is read."""
    if len(flat) > MAX_NAME_LENGTH or flat.startswith("_dlt"):
        raise Unusual(f"a new field is named {flat}, which dlt may name its own way")
    kind, read = {
        "varchar": ("string", "VARCHAR"),
        "bigint": ("bigint", "BIGINT"),
        "boolean": ("bool", "BOOLEAN"),
        "double": ("json", "JSON"),
    }.get(detected.id, ("string", "VARCHAR") if detected.id in STRINGS else (None, None))
    if str(detected) == "JSON":
        kind, read = "json", "JSON"
    if kind is None or read is None:
        raise Unusual(
            f"{table.table.name}.{flat} arrives as {detected}, which dlt stores its own way"
        )
    column = Column(flat, "text", "A field the spec does not list.")
    table.leaves.append(
        Leaf(column, keys, Rule(read, lambda v, ts: v), pending=Pending(kind), new=True)
    )
    return read


def _leads_to_known(table: TablePlan, name: tuple[str, ...], context: _Context) -> bool:
    """Whether an object at `name` in `table` would hold known columns or child tables."""
    flat = "__".join(name) + "__"
    path = (*table.table.path, *name)
    child_tables = [other.path for other in TABLES] + [
        tuple(stored.split("__")[1:]) for stored in context.stored if stored.startswith(ROOT_TABLE)
    ]
    return any(column.startswith(flat) for column in table.known) or any(
        other[: len(path)] == path for other in child_tables
    )


def _list(
    parent: TablePlan,
    detected: Any,
    keys: tuple[str, ...],
    name: tuple[str, ...],
    context: _Context,
) -> str:
    path = (*parent.table.path, *name)
    pinned = next((t for t in TABLES if t.path == path), None)
    table = pinned or Table(path, "A list the spec does not list.", ())
    if len(table.name) > MAX_NAME_LENGTH:
        raise Unusual(f"a new list is named {table.name}, which dlt may name its own way")
    child = TablePlan(
        table,
        parent,
        keys,
        known=_known(table.name, pinned, context.stored),
        declared=pinned is None,
    )
    context.tables.append(child)
    (_, item), *_ = detected.children
    if item.id == "struct":
        return _object(child, item, (), (), context) + "[]"
    if item.id == "list":
        raise Unusual(f"{table.name} holds lists of lists")
    value = child.known.get("value")
    if value is None and (pinned is not None or str(item) == "JSON"):
        if str(item) != "JSON":
            raise Unusual(f"{table.name} holds {item} values, not objects")
        child.only_empty = True
        return "JSON[]"
    if value is None:
        return f"{_new_leaf(child, item, (), 'value')}[]"
    rule = rule_for(value, item, api_zone=False)
    child.leaves.append(Leaf(value, (), rule))
    return f"{rule.read_type}[]"


def timestamp_sql(zone: str, folds: list[Fold]) -> Converter:
    """The SQL converting a timestamp text (checked against `SQL_TIMESTAMP_PATTERN`) to an
    instant the way `parse_api_timestamp` does: naive texts are wall time in `zone`, read by
    DuckDB's ICU, then moved to the earlier instant inside `folds`, where ICU takes the later."""

    def convert(text: str) -> str:
        wall = f"TRY_CAST({text} AS TIMESTAMP)"
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
            f" THEN TRY_CAST({text} AS TIMESTAMPTZ) ELSE {local} END"
        )

    return convert
