"""dlt with its defaults, the way its docs start: the response parsed whole, customers yielded to
a merge resource, dlt's row normalizer, `insert_values` files, DuckDB.

    python benchmarks/dlt_defaults.py BASE_URL API_KEY WAREHOUSE.duckdb
"""

from __future__ import annotations

import sys

import dlt
import requests


def main(base_url: str, api_key: str, warehouse: str) -> None:
    @dlt.resource(name="customers", write_disposition="merge", primary_key="id")
    def customers():  # type: ignore[no-untyped-def]
        response = requests.get(
            f"{base_url}/customers/changed/20000101T0000", headers={"x-api-key": api_key}
        )
        response.raise_for_status()
        yield [{**item["data"], **item["metaData"]} for item in response.json()]

    pipeline = dlt.pipeline(
        "dlt_defaults", destination=dlt.destinations.duckdb(warehouse), dataset_name="trigg"
    )
    pipeline.run(customers())


if __name__ == "__main__":
    main(*sys.argv[1:4])
