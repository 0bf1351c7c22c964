"""The DuckDB-native ceiling: ceiling.sql over one array-of-envelopes body.

    python ceiling.py BODY.json WAREHOUSE.duckdb [ZONE]   # prints {table: rows} as JSON

Time it as a whole process (`/usr/bin/time -v`), start-up included, beside `trigg run` on the
same body. A copy of the project's shared `perf/ceiling.py` and `ceiling.sql` (CI's clone has no
shared folder); it replaced the earlier `read_json` + fast-path SQL ceiling, which took about
1.5x its CPU time on the same 20,000 customers.
"""

import json
import os
import sys
from pathlib import Path

import duckdb

path, db = sys.argv[1], sys.argv[2]
zone = sys.argv[3] if len(sys.argv) > 3 else "Europe/Oslo"
for stale in (db, db + ".wal"):
    if os.path.exists(stale):
        os.remove(stale)
sql = (
    Path(__file__)
    .with_name("ceiling.sql")
    .read_text()
    .replace("${FILE}", path.replace("'", "''"))
    .replace("${ZONE}", zone)
)
con = duckdb.connect(db)
con.execute(sql)
con.execute("CHECKPOINT")
names = [
    r[0]
    for r in con.execute(
        "select table_name from information_schema.tables where table_schema = 'trigg' order by 1"
    ).fetchall()
]
print(json.dumps({t: con.execute(f"select count(*) from trigg.{t}").fetchone()[0] for t in names}))
