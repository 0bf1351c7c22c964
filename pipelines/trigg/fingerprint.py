"""Content fingerprints: one hash per customer over everything of it the warehouse holds.

`trigg verify` compares the API with the warehouse customer by customer. The id and `updated_at`
say whether the warehouse holds the right version; the fingerprint says whether it holds that
version's content (every loaded column of the customer and every child row, in list order)
without reading any child row back: it is computed when a customer is loaded (a column of
`customer_versions`) and again over the API's fresh answer, by the same SQL, so equal content
gives equal fingerprints.

The SQL runs in the fast path's scratch DuckDB over the rows of each table as they are loaded:
typed like the pinned columns, with dlt's join columns. A row's hash covers its table, its place
under the customer and every value; a customer's fingerprint is the XOR of its rows' hashes (rows
are unique by table and place, so none cancels another, and the order tables are added in does
not matter). A column the response did not have hashes like NULL, as it reads in the warehouse,
so bodies of different shapes agree on the same customer.

DuckDB's `hash` is 64 bits and not promised stable across DuckDB versions; duckdb is pinned, and a
test holds a known fingerprint, so an upgrade that changes it is noticed and `SCHEME` bumped.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

import duckdb

from pipelines.trigg.fast_plan import SQL_TYPES, literal, quote
from pipelines.trigg.schema import FINGERPRINT, ROOT_KEY, ROW_KEY, Table

SCHEME: Final = "h1"
"""Written before every fingerprint: fingerprints of another scheme never compare equal."""
PARTS: Final = "fingerprint_parts"
"""The scratch table collecting (customer row key, XOR of its rows' hashes) table by table."""


def row_hashes_sql(table: Table, source: str, columns: Sequence[str]) -> str:
    """(root, h): the customer's row key and the hash of each row of `table` in `source` (a
    relation with `columns`, dlt's join columns among them: a select or a parquet file).

    A child row's place is its `_dlt_id` after the customer's: the fast path numbers a child row
    as its parent's `_dlt_id`, a dot and its list index, so the place holds the list order and
    which promotion a redemption belongs to."""
    present = set(columns)
    values = [
        f"CAST({quote(c.name)} AS {SQL_TYPES[c.data_type]})"
        if c.name in present
        else f"NULL::{SQL_TYPES[c.data_type]}"
        for c in table.columns
    ]
    pinned = {c.name for c in table.columns}
    extra = sorted(c for c in present - pinned if not c.startswith("_dlt"))
    if table.path:
        root, place = ROOT_KEY, f"substr({ROW_KEY}, length({ROOT_KEY}) + 2)"
    else:
        root, place = ROW_KEY, "''"
    row_hash = f"hash({', '.join([literal(table.name), place, *values])})"
    for name in extra:  # fields the spec does not list: a NULL hashes like an absent column
        row_hash = (
            f"xor({row_hash}, CASE WHEN {quote(name)} IS NULL THEN 0::UBIGINT"
            f" ELSE hash({literal(name)}, {quote(name)}) END)"
        )
    return f"SELECT {root} AS root, {row_hash} AS h FROM {source}"


class Fingerprints:
    """Collects the rows' hashes of one body table by table, in its scratch database."""

    def __init__(self, connection: duckdb.DuckDBPyConnection) -> None:
        self.connection = connection
        connection.execute(f"CREATE OR REPLACE TEMP TABLE {PARTS} (root VARCHAR, h UBIGINT)")

    def add(self, table: Table, source: str) -> None:
        """Add the rows of `table` in `source` (`(SELECT ...)` or `read_parquet('...')`)."""
        columns = self.connection.sql(f"SELECT * FROM {source} LIMIT 0").columns
        self.connection.execute(
            f"INSERT INTO {PARTS} SELECT root, bit_xor(h)"
            f" FROM ({row_hashes_sql(table, source, columns)}) GROUP BY root"
        )

    def sql(self) -> str:
        """(`_dlt_id` of the customer row, fingerprint) of every customer added so far."""
        return (
            f"SELECT root AS {ROW_KEY},"
            f" {literal(SCHEME + ':')} || format('{{:016x}}', bit_xor(h)) AS {FINGERPRINT}"
            f" FROM {PARTS} GROUP BY root"
        )


__all__ = ["SCHEME", "Fingerprints", "row_hashes_sql"]
