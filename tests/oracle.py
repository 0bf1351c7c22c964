"""The test oracle: what the warehouse must hold, computed from the simulator independently of the
pipeline's code, and what it does hold, read from DuckDB in the same canonical form.

Every table becomes a sorted list of tuples that carry the owning customer's id (and promotion id)
instead of dlt's join columns, so comparing two warehouses compares business content only.

No pytest here: the soak benchmark (`benchmarks/soak.py`) judges its warehouse with it too.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Callable, Iterable
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from pipelines.simulator import SimulatedCustomer, TriggSimulator
from tests.targets import Target, as_target

OSLO = ZoneInfo("Europe/Oslo")
Rows = dict[str, list[tuple[Any, ...]]]


def as_text(value: Any) -> str | None:
    return None if value is None else str(value)


def as_float(value: Any) -> float | None:
    return None if value is None else float(value)


def as_int(value: Any) -> int | None:
    return None if value is None else int(value)


def as_json(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = json.loads(value)
    return json.dumps(value, sort_keys=True)


def instant(zone: ZoneInfo) -> Callable[[Any], datetime | None]:
    """API timestamps: naive ones are wall-clock time in `zone`; all compared in UTC."""

    def convert(value: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        if value.tzinfo is None:
            value = value.replace(tzinfo=zone)
        return value.astimezone(UTC)

    return convert


def as_date(value: Any) -> date | None:
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    return datetime.fromisoformat(str(value)).date()


# table -> (api list path, api fields, column names, converters)
CHILD_TABLES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "customers__favorite_stores": (("favoriteStores",), ("",), ("value",)),
    "customers__interests": (("interests",), ("",), ("value",)),
    "customers__loyalty__loyalty_cards": (
        ("loyalty", "loyaltyCards"),
        ("id", "namn", "total", "count", "imageUrl", "sortOrder", "extendedProperties"),
        ("id", "namn", "total", "count", "image_url", "sort_order", "extended_properties"),
    ),
    "customers__promotions": (
        ("promotions",),
        (
            "id",
            "type",
            "name",
            "available",
            "validFrom",
            "validTo",
            "redemptionLimit",
            "redemptionCount",
            "affiliate.id",
            "affiliate.name",
        ),
        (
            "id",
            "type",
            "name",
            "available",
            "valid_from",
            "valid_to",
            "redemption_limit",
            "redemption_count",
            "affiliate__id",
            "affiliate__name",
        ),
    ),
    "customers__consents__extended_consents": (
        ("consents", "extendedConsents"),
        ("id", "value", "name", "consentDate"),
        ("id", "value", "name", "consent_date"),
    ),
}
PROMOTION_TABLES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "customers__promotions__redemption_channels": (
        "redemptionChannels",
        ("type", "valueType", "value", "message"),
        ("type", "value_type", "value", "message"),
    ),
    "customers__promotions__redemption_history": (
        "redemptionHistory",
        ("storeId", "receiptId", "redeemDateTime"),
        ("store_id", "receipt_id", "redeem_date_time"),
    ),
    "customers__promotions__products_included": (
        "productsIncluded",
        ("id", "type"),
        ("id", "type"),
    ),
    "customers__promotions__products_excluded": (
        "productsExcluded",
        ("id", "type"),
        ("id", "type"),
    ),
    "customers__promotions__stores_included": ("storesIncluded", ("",), ("value",)),
}
CUSTOMER_FIELDS = (
    ("id", "id", as_text),
    ("externalId", "external_id", as_text),
    ("mobilePhone", "mobile_phone", as_text),
    ("email", "email", as_text),
    ("firstName", "first_name", as_text),
    ("lastName", "last_name", as_text),
    ("address", "address", as_text),
    ("zip", "zip", as_text),
    ("city", "city", as_text),
    ("country", "country", as_text),
    ("birthDate", "birth_date", as_date),
    ("gender", "gender", as_text),
    ("loyalty.points", "loyalty__points", as_float),
    ("loyalty.pointsActive", "loyalty__points_active", as_float),
    ("loyalty.pointsPending", "loyalty__points_pending", as_float),
    ("loyalty.pointsExpired", "loyalty__points_expired", as_float),
    ("loyalty.pointsTotal", "loyalty__points_total", as_float),
    ("consents.acceptsTerms", "consents__accepts_terms", bool),
    ("consents.acceptsEmail", "consents__accepts_email", bool),
    ("consents.acceptsSms", "consents__accepts_sms", bool),
    ("extendedProperties", "extended_properties", as_json),
)
TYPED = {
    "id": as_text,
    "total": as_float,
    "count": as_float,
    "sort_order": as_int,
    "extended_properties": as_json,
    "redemption_limit": as_int,
    "redemption_count": as_int,
    "value": as_text,
    "available": bool,
}
TIMESTAMP_COLUMNS = {"valid_from", "valid_to", "redeem_date_time", "consent_date"}
ALL_TABLES = ("customers", *CHILD_TABLES, *PROMOTION_TABLES)


def _get(item: Any, dotted: str) -> Any:
    if dotted == "":
        return item
    for part in dotted.split("."):
        item = item.get(part) if isinstance(item, dict) else None
    return item


def _convert(column: str, value: Any, zone: ZoneInfo, table: str) -> Any:
    if column in TIMESTAMP_COLUMNS:
        return instant(zone)(value)
    if column == "id" and table == "customers__loyalty__loyalty_cards":
        return as_int(value)
    if column == "value" and table == "customers__consents__extended_consents":
        return None if value is None else bool(value)
    return TYPED.get(column, as_text)(value)


def expected_tables(customers: Iterable[SimulatedCustomer], zone: ZoneInfo = OSLO) -> Rows:
    """What the warehouse must hold for these customers (the newest version of each)."""
    newest: dict[str, SimulatedCustomer] = {}
    for customer in customers:
        known = newest.get(customer.data["id"])
        if known is None or customer.updated_at >= known.updated_at:
            newest[customer.data["id"]] = customer
    tables: Rows = {table: [] for table in ALL_TABLES}
    for customer in newest.values():
        data = customer.data
        tables["customers"].append(
            (
                *(convert(_get(data, field)) for field, _, convert in CUSTOMER_FIELDS),
                instant(zone)(customer.created_at),
                instant(zone)(customer.updated_at),
            )
        )
        for table, (path, fields, columns) in CHILD_TABLES.items():
            items = _get(data, ".".join(path)) or []
            for index, item in enumerate(items):
                values = (
                    _convert(column, _get(item, field), zone, table)
                    for field, column in zip(fields, columns, strict=True)
                )
                tables[table].append((data["id"], index, *values))
        for promotion in data.get("promotions") or []:
            for table, (field_list, fields, columns) in PROMOTION_TABLES.items():
                for index, item in enumerate(promotion.get(field_list) or []):
                    values = (
                        _convert(column, _get(item, field), zone, table)
                        for field, column in zip(fields, columns, strict=True)
                    )
                    tables[table].append((data["id"], promotion["id"], index, *values))
    return {table: sorted(rows, key=repr) for table, rows in tables.items()}


def warehouse_tables(target: Target | str) -> Rows:
    """What the warehouse holds, in the oracle's canonical form."""
    target = as_target(target)
    existing = target.tables()
    tables: Rows = {table: [] for table in ALL_TABLES}
    customer_columns = ", ".join(column for _, column, _ in CUSTOMER_FIELDS)
    for row in target.query(f"select {customer_columns}, created_at, updated_at from customers"):
        converted = [
            convert(value) for (_, _, convert), value in zip(CUSTOMER_FIELDS, row, strict=False)
        ]
        tables["customers"].append((*converted, instant(UTC)(row[-2]), instant(UTC)(row[-1])))
    for table, (_, _, columns) in CHILD_TABLES.items():
        if table not in existing:
            continue
        selected = ", ".join(f"t.{column}" for column in columns)
        for row in target.query(
            f"""select c.id, t._dlt_list_idx, {selected} from {table} t
                join customers c on t._dlt_root_id = c._dlt_id"""
        ):
            values = (_convert(c, v, UTC, table) for c, v in zip(columns, row[2:], strict=True))
            tables[table].append((row[0], row[1], *values))
    for table, (_, _, columns) in PROMOTION_TABLES.items():
        if table not in existing:
            continue
        selected = ", ".join(f"t.{column}" for column in columns)
        for row in target.query(
            f"""select c.id, p.id, t._dlt_list_idx, {selected} from {table} t
                join customers__promotions p on t._dlt_parent_id = p._dlt_id
                join customers c on t._dlt_root_id = c._dlt_id"""
        ):
            values = (_convert(c, v, UTC, table) for c, v in zip(columns, row[3:], strict=True))
            tables[table].append((row[0], row[1], row[2], *values))
    return {table: sorted(rows, key=repr) for table, rows in tables.items()}


def row_counts(target: Target | str) -> dict[str, int]:
    """Rows per table (views aside), counting orphans too (a child row whose customer is gone is a
    defect)."""
    target = as_target(target)
    return {
        name: target.query(f'select count(*) from "{name}"')[0][0]
        for name in sorted(target.base_tables())
        if not name.startswith("_dlt")
    }


def differences(warehouse: Target | str, simulator: TriggSimulator) -> tuple[int, int]:
    """(rows lost, rows doubled or stale) between the warehouse and the simulator's state now:
    a row the source has and the warehouse lacks is lost; one the warehouse has too often, or
    that the source no longer has (an old version, a changed customer's old child row, an orphan
    the oracle's joins do not reach), is doubled."""
    expected = expected_tables(simulator.store.snapshot())
    actual = warehouse_tables(warehouse)
    counts = row_counts(warehouse)
    lost = doubled = 0
    for table, rows in expected.items():
        want, have = Counter(rows), Counter(actual[table])
        lost += sum((want - have).values())
        doubled += sum((have - want).values()) + max(0, counts.get(table, 0) - len(actual[table]))
    return lost, doubled


VERSION_POINTS = ("points", "pointsActive", "pointsPending", "pointsExpired", "pointsTotal")
VERSION_FLAGS = ("acceptsTerms", "acceptsEmail", "acceptsSms")
VERSION_COLUMNS = (
    "customer_id, updated_at, points, points_active, points_pending, points_expired,"
    " points_total, accepts_terms, accepts_email, accepts_sms, promotions"
)


def expected_versions(
    snapshots: Iterable[Iterable[SimulatedCustomer]], zone: ZoneInfo = OSLO
) -> list[tuple[Any, ...]]:
    """Rows `customer_versions` must hold after runs that each saw one snapshot of the service:
    one per (customer id, updated_at), whichever run delivered it."""
    versions: dict[tuple[str, datetime | None], tuple[Any, ...]] = {}
    for snapshot in snapshots:
        for customer in snapshot:
            data = customer.data
            updated_at = instant(zone)(customer.updated_at)
            versions[(data["id"], updated_at)] = (
                data["id"],
                updated_at,
                *(as_float(_get(data, f"loyalty.{field}")) for field in VERSION_POINTS),
                *(bool(_get(data, f"consents.{flag}")) for flag in VERSION_FLAGS),
                len(data.get("promotions") or []),
            )
    return sorted(versions.values(), key=repr)


def warehouse_versions(target: Target | str) -> list[tuple[Any, ...]]:
    """`customer_versions` as the warehouse holds it, in the oracle's canonical form."""
    rows = as_target(target).query(f"select {VERSION_COLUMNS} from customer_versions")
    return sorted(
        ((row[0], instant(UTC)(row[1]), *row[2:]) for row in rows),
        key=repr,
    )
