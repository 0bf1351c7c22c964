"""The DuckDB-native ceiling: `read_json` + `UNNEST` straight into the same tables, nothing else.

    python benchmarks/ceiling.py BODY.json WAREHOUSE.duckdb

No full-body detection (DuckDB's default sample), no checks, no dlt (no Arrow, no parquet, no
merge, no state): what DuckDB alone needs to turn the body into the pipeline's eleven tables.
The flattening SQL is the fast path's own, so both produce the same columns.
"""

from __future__ import annotations

import sys

import duckdb

from pipelines.trigg.fast_plan import literal, make_plan


def main(body: str, warehouse: str) -> None:
    connection = duckdb.connect(warehouse)  # DuckDB's defaults: as much memory as it likes
    connection.execute("SET TimeZone = 'UTC'")
    sampled = connection.sql(f"SELECT * FROM read_json({literal(body)}, format = 'array')")
    plan = make_plan(list(zip(sampled.columns, sampled.types, strict=True)))
    columns = ", ".join(f"{literal(key)}: {literal(sql)}" for key, sql in plan.read_columns.items())
    connection.execute(
        f"""CREATE TABLE body AS SELECT *, {plan.root_id_sql()} AS root_id
            FROM read_json({literal(body)}, format = 'array', columns = {{{columns}}}) b"""
    )
    plain_timestamp = lambda text: f"TRY_CAST(NULLIF({text}, '') AS TIMESTAMPTZ)"  # noqa: E731
    for table in plan.tables:
        if not table.only_empty:
            select = plan.select_sql(table, plain_timestamp, "ceiling", "body")
            connection.execute(f'CREATE TABLE "{table.table.name}" AS {select}')
    connection.execute("DROP TABLE body")
    connection.close()


if __name__ == "__main__":
    main(*sys.argv[1:3])
