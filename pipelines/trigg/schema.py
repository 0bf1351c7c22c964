"""The tables the source produces, their pinned column types and their descriptions.

Types come from the spec, not from the first value seen: the spec's own examples disagree with its
types (`zip` shown as a number, stamp-card `id` as a string), and the API may send either. dlt
coerces a drifting value to the pinned type instead of creating a `__v_<type>` variant column.
Column names are dlt's snake_case names of the API's fields.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

from dlt.common.schema.typing import TColumnSchema, TDataType

DUCKDB_TYPES: Final[dict[TDataType, str]] = {
    "text": "VARCHAR",
    "bigint": "BIGINT",
    "double": "DOUBLE",
    "bool": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP WITH TIME ZONE",
    "json": "JSON",
}
"""How DuckDB spells each dlt data type pinned below (the warehouse's views and dictionary, the
fast path's selects)."""

ROOT_TABLE: Final = "customers"
PRIMARY_KEY: Final = "id"
REJECTED_TABLE: Final = "customers_rejected"
QUARANTINE_KEY: Final = "record_hash"
"""What names a quarantined record: its content, so a record delivered again is not added again."""
UPDATED_AT: Final = "updated_at"
"""The column that orders versions of one customer: the newest wins."""
FINGERPRINT: Final = "fingerprint"
"""The column of `customer_versions` holding a hash of the version's content (`fingerprint.py`)."""


@dataclass(frozen=True)
class Column:
    name: str
    data_type: TDataType
    description: str


@dataclass(frozen=True)
class Table:
    path: tuple[str, ...]
    """Where the list sits inside a customer, as normalized names; () for the customer itself."""
    description: str
    columns: tuple[Column, ...]

    @property
    def name(self) -> str:
        return "__".join((ROOT_TABLE, *self.path))


@dataclass(frozen=True)
class Relation:
    """A table or view named directly: the history tables, dlt's own tables, the analyst views."""

    name: str
    description: str
    columns: tuple[Column, ...]


def _text(name: str, description: str) -> Column:
    return Column(name, "text", description)


TABLES: Final[tuple[Table, ...]] = (
    Table(
        (),
        "One row per customer: the newest version the API returned.",
        (
            _text("id", "Generated unique customer id."),
            _text("external_id", "Secondary/external customer id."),
            _text("mobile_phone", "Mobile phone number, e.g. +4712345678."),
            _text("email", "E-mail address."),
            _text("first_name", "First name."),
            _text("last_name", "Last name."),
            _text("address", "Street address."),
            _text("zip", "Postal code, kept as text (leading zeros matter)."),
            _text("city", "City."),
            _text("country", "Country code, 2 letters ISO 3166."),
            Column("birth_date", "date", "Date of birth (only with pii = keep)."),
            Column(
                "birth_year",
                "bigint",
                "Year of birth: what is kept of the birth date with pii = pseudonymize or drop.",
            ),
            _text("gender", "Female, Male or Unknown by default; can be customized."),
            Column(
                "loyalty__points",
                "double",
                "Current point balance, including points that may be pending.",
            ),
            Column("loyalty__points_active", "double", "Points available for use now."),
            Column(
                "loyalty__points_pending",
                "double",
                "Points earned but not yet available (pending validation or processing).",
            ),
            Column("loyalty__points_expired", "double", "Points the customer had that expired."),
            Column("loyalty__points_total", "double", "Total points earned through history."),
            Column("consents__accepts_terms", "bool", "The customer accepts the terms."),
            Column("consents__accepts_email", "bool", "The customer accepts e-mail."),
            Column("consents__accepts_sms", "bool", "The customer accepts SMS."),
            Column("extended_properties", "json", "Free-form customer properties, as JSON."),
            Column("created_at", "timestamp", "metaData.CreatedAt, read in the API's time zone."),
            Column(UPDATED_AT, "timestamp", "metaData.UpdatedAt, read in the API's time zone."),
        ),
    ),
    Table(
        ("favorite_stores",),
        "The customer's favourite stores, one row per store id.",
        (_text("value", "Store id."),),
    ),
    Table(
        ("interests",),
        "The customer's interests, one row per interest.",
        (_text("value", "Interest."),),
    ),
    Table(
        ("loyalty", "loyalty_cards"),
        "The customer's stamp cards.",
        (
            Column("id", "bigint", "Id of the stamp card."),
            _text("namn", "Name of the stamp card (namn is Norwegian for name)."),
            Column("total", "double", "Number of clips/stamps needed."),
            Column("count", "double", "Current clip/stamp count."),
            _text("image_url", "Image for the stamp card."),
            Column("sort_order", "bigint", "Sort order, as defined in the Trigg application."),
            Column("extended_properties", "json", "Additional properties, as JSON."),
        ),
    ),
    Table(
        ("promotions",),
        "The customer's promotions (coupons and offers).",
        (
            _text("id", "Generated unique promotion id."),
            _text("type", "Type of promotion."),
            _text("name", "Name of the promotion."),
            Column("available", "bool", "Whether the promotion is available."),
            _text("description", "Description of the promotion."),
            _text("terms", "Terms and conditions of the promotion."),
            _text("url_link", "Link to the promotion."),
            _text("url_image", "Link to the promotion image."),
            Column("valid_from", "timestamp", "Start of validity."),
            Column("valid_to", "timestamp", "End of validity."),
            _text("valid_time_from", "Time of day the promotion becomes valid (display only)."),
            _text("valid_time_to", "Time of day the promotion becomes invalid (display only)."),
            Column("unlimited_redemption", "bool", "Whether it can be redeemed unlimited times."),
            Column("redemption_limit", "bigint", "How many times it can be redeemed."),
            Column("redemption_count", "bigint", "How many times it has been redeemed so far."),
            _text("affiliate__id", "Id of the affiliate."),
            _text("affiliate__name", "Name of the affiliate."),
        ),
    ),
    Table(
        ("promotions", "redemption_channels"),
        "Where and how a promotion can be redeemed.",
        (
            _text("type", "Channel: ECOM, POS or ALL."),
            _text("value_type", "PERCENT, AMOUNT or CODE."),
            _text("value", "The value of the promotion, as text."),
            _text("message", "A short message or instruction for using the coupon."),
        ),
    ),
    Table(
        ("promotions", "redemption_history"),
        "Each redemption of a promotion.",
        (
            _text("store_id", "Id of the store where it was redeemed."),
            _text("receipt_id", "Unique receipt id."),
            Column("redeem_date_time", "timestamp", "When it was redeemed."),
        ),
    ),
    Table(
        ("promotions", "products_included"),
        "Products a promotion applies to.",
        (_text("id", "Id of the product, as text."), _text("type", "Kind of product id.")),
    ),
    Table(
        ("promotions", "products_excluded"),
        "Products a promotion does not apply to.",
        (_text("id", "Id of the product, as text."), _text("type", "Kind of product id.")),
    ),
    Table(
        ("promotions", "stores_included"),
        "Stores where a promotion applies, one row per store id.",
        (_text("value", "Store id."),),
    ),
    Table(
        ("consents", "extended_consents"),
        "Consents beyond terms, e-mail and SMS.",
        (
            _text("id", "Id of the consent."),
            Column("value", "bool", "Whether the customer consents."),
            _text("name", "Name of the consent."),
            Column("consent_date", "timestamp", "When the consent was given or changed."),
        ),
    ),
)

TABLE_NAMES: Final[tuple[str, ...]] = tuple(table.name for table in TABLES)


def _column_hints(table: Table | Relation) -> dict[str, TColumnSchema]:
    return {
        column.name: {
            "name": column.name,
            "data_type": column.data_type,
            "description": column.description,
        }
        for column in table.columns
        if not column.name.startswith("_dlt")
    }


ROW_KEY: Final = "_dlt_id"
LOAD_ID: Final = "_dlt_load_id"
PARENT_KEY: Final = "_dlt_parent_id"
ROOT_KEY: Final = "_dlt_root_id"
LIST_INDEX: Final = "_dlt_list_idx"
_ROW_KEY_COLUMN: Final[TColumnSchema] = {
    "name": ROW_KEY,
    "data_type": "text",
    "nullable": False,
    "unique": True,
    "row_key": True,
}
DLT_ROOT_COLUMNS: Final[dict[str, TColumnSchema]] = {
    LOAD_ID: {"name": LOAD_ID, "data_type": "text", "nullable": False},
    ROW_KEY: _ROW_KEY_COLUMN,
}
DLT_NESTED_COLUMNS: Final[dict[str, TColumnSchema]] = {
    ROOT_KEY: {"name": ROOT_KEY, "data_type": "text", "nullable": False, "root_key": True},
    PARENT_KEY: {"name": PARENT_KEY, "data_type": "text", "nullable": False, "parent_key": True},
    LIST_INDEX: {"name": LIST_INDEX, "data_type": "bigint", "nullable": False},
    ROW_KEY: _ROW_KEY_COLUMN,
}
"""dlt's join columns, with the hints its normalizer gives them. Declared, not left to the
normalizer, because Arrow tables skip it: merge finds a changed customer's old child rows through
`row_key` (`customers._dlt_id`) and `root_key` (`_dlt_root_id`)."""


def root_column_hints() -> dict[str, TColumnSchema]:
    """Hints for `customers`; the newest `updated_at` wins when one load holds an id twice."""
    hints = _column_hints(TABLES[0])
    hints[PRIMARY_KEY] = {**hints[PRIMARY_KEY], "nullable": False}
    hints[UPDATED_AT] = {**hints[UPDATED_AT], "dedup_sort": "desc"}
    return {**hints, **DLT_ROOT_COLUMNS}


def quarantine_column_hints() -> dict[str, TColumnSchema]:
    """Hints for `customers_rejected`. Its key may be null: rows quarantined before it existed
    have none (and a warehouse cannot add a NOT NULL column to a table holding rows)."""
    hints = _column_hints(QUARANTINE)
    hints[QUARANTINE_KEY] = {**hints[QUARANTINE_KEY], "nullable": True}
    return hints


def relation_hints(relation: Relation) -> dict[str, TColumnSchema]:
    """Pinned columns of a table loaded by dlt outside the customers tree (dlt adds its own)."""
    return _column_hints(relation)


def versions_column_hints() -> dict[str, TColumnSchema]:
    """Hints for `customer_versions`, dlt's columns included: the fast path's files skip the
    normalizer that would add them."""
    return {**_column_hints(VERSIONS), **DLT_ROOT_COLUMNS}


def parent_table(table: Table) -> Table:
    """The nearest table above `table`: objects in between (`loyalty`) are flattened into it."""
    above = [other for other in TABLES if table.path[: len(other.path)] == other.path]
    return max((other for other in above if other is not table), key=lambda t: len(t.path))


def nested_hints() -> dict[tuple[str, ...], dict[str, Any]]:
    """Pinned columns of every child table, keyed by its path under `customers`."""
    return {
        table.path: {
            "columns": child_column_hints(table),
            "parent_table_name": parent_table(table).name,
        }
        for table in TABLES[1:]
    }


def child_column_hints(table: Table) -> dict[str, TColumnSchema]:
    """Hints for a child table: its pinned columns and dlt's join columns."""
    return {**_column_hints(table), **DLT_NESTED_COLUMNS}


# -- Columns dlt adds to the tables it loads -------------------------------------------------------

LOAD_ID_COLUMN = Column(LOAD_ID, "text", "dlt's id of the load that wrote this row (_dlt_loads).")
ROW_ID_COLUMN = Column(ROW_KEY, "text", "dlt's unique id of this row.")
CHILD_COLUMNS: Final[tuple[Column, ...]] = (
    Column("_dlt_root_id", "text", "The customer's row: customers._dlt_id."),
    Column("_dlt_parent_id", "text", "The parent row: the _dlt_id of the table one level up."),
    Column("_dlt_list_idx", "bigint", "Position in the API's list, from 0."),
    ROW_ID_COLUMN,
)


def stored_columns(table: Table) -> tuple[Column, ...]:
    """Every column of a customers table in the warehouse: the pinned ones, then dlt's."""
    return table.columns + ((LOAD_ID_COLUMN, ROW_ID_COLUMN) if table.path == () else CHILD_COLUMNS)


# -- History: loaded by dlt next to the customers ------------------------------------------------


def _customer_column(name: str) -> Column:
    """A column of `customers` shown under its short name elsewhere (`loyalty__points` as
    `points`): the description stays the one written above."""
    column = next(column for column in TABLES[0].columns if column.name == name)
    return Column(name.split("__", 1)[-1], column.data_type, column.description)


def _promotion_columns(*names: str) -> tuple[Column, ...]:
    """Columns of `customers__promotions` shown as they are in a view: one description each."""
    promotions = next(table for table in TABLES if table.path == ("promotions",))
    return tuple(next(c for c in promotions.columns if c.name == name) for name in names)


POINT_COLUMNS: Final = tuple(
    f"loyalty__{name}"
    for name in ("points", "points_active", "points_pending", "points_expired", "points_total")
)
CONSENT_COLUMNS: Final = tuple(
    f"consents__{name}" for name in ("accepts_terms", "accepts_email", "accepts_sms")
)
POINTS: Final = tuple(_customer_column(name) for name in POINT_COLUMNS)
CONSENTS: Final = tuple(_customer_column(name) for name in CONSENT_COLUMNS)
VERSION_SOURCES: Final = {
    column.name: source
    for column, source in zip((*POINTS, *CONSENTS), (*POINT_COLUMNS, *CONSENT_COLUMNS), strict=True)
}
"""`customer_versions` columns taken from a `customers` column: short name -> customers name."""

VERSIONS_KEY: Final = ("customer_id", UPDATED_AT)
VERSIONS: Final = Relation(
    "customer_versions",
    "One row per customer version ever received (customer id, updated_at): the points and consents"
    " over time. A version the API delivers again is merged, never doubled.",
    (
        _text("customer_id", "The customer: customers.id."),
        Column(UPDATED_AT, "timestamp", "metaData.UpdatedAt of this version."),
        *POINTS,
        *CONSENTS,
        Column("promotions", "bigint", "Number of promotions the customer had."),
        _text(
            FINGERPRINT,
            "A hash of this version's content as loaded (every column and child row), which"
            " `trigg verify` compares with the API's; empty for a version dlt's normalizer loaded.",
        ),
        LOAD_ID_COLUMN,
        ROW_ID_COLUMN,
    ),
)

RUN_HISTORY: Final = Relation(
    "run_history",
    "One row per `trigg run`, successful or failed: to chart freshness and volume.",
    (
        Column("started_at", "timestamp", "When the run started."),
        Column("finished_at", "timestamp", "When the run ended."),
        Column("duration_seconds", "double", "How long the run took, in seconds."),
        _text(
            "outcome",
            "succeeded (its data and cursor were committed; see warnings) or failed (nothing of it"
            " is visible).",
        ),
        _text("error", "Why the run failed, in one sentence; empty for a successful run."),
        _text("since", "The since segment sent to the API (YYYYMMDDTHHmm, the API's zone)."),
        Column("cursor_before", "timestamp", "The cursor (newest updated_at loaded) before."),
        Column("cursor_after", "timestamp", "The cursor after; unchanged by a failed run."),
        Column("customers_received", "bigint", "Customers the API returned and were loaded."),
        Column("rows_written", "bigint", "Rows written, all tables together."),
        Column("rows_per_table", "json", "Rows written per table, as a JSON object."),
        Column(
            "quality_checks",
            "json",
            "Data-quality findings after the load, as a JSON object: check name to count.",
        ),
        Column("load_ids", "json", "The dlt loads of this run (_dlt_loads.load_id), as JSON."),
        _text("pii", "How members' personal data was handled: keep, pseudonymize or drop."),
        Column(
            "full_backfill",
            "bool",
            "The run asked for every customer: a first run (or --full-refresh) without"
            " initial_since.",
        ),
        Column(
            "warnings",
            "json",
            "What went wrong without failing the run (its data and cursor were committed), as a"
            " JSON list of sentences: views or checks not refreshed, records from the future.",
        ),
        Column(
            "late_arrivals",
            "bigint",
            "Records stamped before the cursor the run started from that the warehouse did not"
            " hold (a change published late); empty for a first or failed run.",
        ),
        Column(
            "max_lateness_minutes",
            "double",
            "How much older than that cursor the latest late record was, in minutes: near"
            " lookback_minutes, a later one would be missed.",
        ),
        LOAD_ID_COLUMN,
        ROW_ID_COLUMN,
    ),
)

QUARANTINE: Final = Relation(
    REJECTED_TABLE,
    "Records the API sent that could not be loaded (quarantine): one row per distinct record, from"
    " the run that first received it.",
    (
        _text("customer_id", "The record's customer id, if it had one."),
        _text("reason", "Why the record could not be loaded."),
        Column("record", "json", "The record as the API sent it: {data, metaData}."),
        _text(
            QUARANTINE_KEY,
            "SHA-256 of the record (keys sorted): the same record delivered again is not added.",
        ),
        _text("load_id", "The dlt load id of the run that first received it."),
        Column("rejected_at", "timestamp", "When that run received it."),
        LOAD_ID_COLUMN,
        ROW_ID_COLUMN,
    ),
)

# -- dlt's own bookkeeping tables ----------------------------------------------------------------

DLT_TABLES: Final[tuple[Relation, ...]] = (
    Relation(
        "_dlt_loads",
        "dlt: one row per completed load.",
        (
            _text("load_id", "Id of the load, a sortable timestamp."),
            _text("schema_name", "The dlt schema the load belongs to."),
            Column("status", "bigint", "0 when the load completed."),
            Column("inserted_at", "timestamp", "When the load completed."),
            _text("schema_version_hash", "The version of the dlt schema the load used."),
        ),
    ),
    Relation(
        "_dlt_version",
        "dlt: every version of each dlt schema stored here.",
        (
            Column("version", "bigint", "Version number of the schema."),
            Column("engine_version", "bigint", "Version of dlt's schema engine."),
            Column("inserted_at", "timestamp", "When this version was stored."),
            _text("schema_name", "Name of the dlt schema."),
            _text("version_hash", "Hash of the schema's content."),
            _text("schema", "The schema itself, as JSON."),
        ),
    ),
    Relation(
        "_dlt_pipeline_state",
        "dlt: the pipeline's state (including the cursor), committed with each load's data.",
        (
            Column("version", "bigint", "Version number of the state."),
            Column("engine_version", "bigint", "Version of dlt's state engine."),
            _text("pipeline_name", "Name of the pipeline: trigg_customers."),
            _text("state", "The state, compressed and base64-encoded."),
            Column("created_at", "timestamp", "When the state was saved."),
            _text("version_hash", "Hash of the state's content."),
            LOAD_ID_COLUMN,
            ROW_ID_COLUMN,
        ),
    ),
)

# -- The analyst layer: views that carry customer_id (and promotion_id) --------------------------

_CUSTOMER_ID = _text("customer_id", "The customer: customers.id.")
_PROMOTION_ID = _text("promotion_id", "The promotion: customer_promotions.promotion_id.")
_PROMOTION_NAME = _text("promotion_name", "Name of the promotion.")
AGE_BANDS: Final = ("under 18", "18-24", "25-34", "35-44", "45-54", "55-64", "65+", "unknown")

VIEWS: Final[tuple[Relation, ...]] = (
    Relation(
        "customer_promotions",
        "One row per promotion of a customer (customers__promotions), with its customer's id.",
        (
            _CUSTOMER_ID,
            _text("promotion_id", "Generated unique promotion id."),
            _text("name", "Name of the promotion."),
            *_promotion_columns("type", "description", "available"),
            Column(
                "is_active",
                "bool",
                "Available, and now is within valid_from and valid_to: the promotion can be used.",
            ),
            *_promotion_columns(
                "valid_from",
                "valid_to",
                "unlimited_redemption",
                "redemption_limit",
                "redemption_count",
            ),
            Column(
                "redemptions_left",
                "bigint",
                "redemption_limit minus redemption_count; empty when unlimited.",
            ),
            _text("affiliate_id", "Id of the affiliate."),
            _text("affiliate_name", "Name of the affiliate."),
            _text("url_link", "Link to the promotion."),
        ),
    ),
    Relation(
        "promotion_channels",
        "One row per channel where a promotion can be redeemed.",
        (
            _CUSTOMER_ID,
            _PROMOTION_ID,
            _PROMOTION_NAME,
            _text("channel", "Channel: ECOM, POS or ALL."),
            _text("value_type", "PERCENT, AMOUNT or CODE."),
            _text("value", "The value of the promotion, as text."),
            _text("message", "A short message or instruction for using the coupon."),
        ),
    ),
    Relation(
        "promotion_redemptions",
        "One row per redemption of a promotion.",
        (
            _CUSTOMER_ID,
            _PROMOTION_ID,
            _PROMOTION_NAME,
            _text("store_id", "Id of the store where it was redeemed."),
            _text("receipt_id", "Unique receipt id."),
            Column("redeemed_at", "timestamp", "When it was redeemed."),
        ),
    ),
    Relation(
        "promotion_products_included",
        "One row per product a promotion applies to.",
        (
            _CUSTOMER_ID,
            _PROMOTION_ID,
            _text("product_id", "Id of the product, as text."),
            _text("product_id_type", "Kind of product id."),
        ),
    ),
    Relation(
        "promotion_products_excluded",
        "One row per product a promotion does not apply to.",
        (
            _CUSTOMER_ID,
            _PROMOTION_ID,
            _text("product_id", "Id of the product, as text."),
            _text("product_id_type", "Kind of product id."),
        ),
    ),
    Relation(
        "promotion_stores_included",
        "One row per store where a promotion applies.",
        (_CUSTOMER_ID, _PROMOTION_ID, _text("store_id", "Store id.")),
    ),
    Relation(
        "stamp_cards",
        "One row per stamp card of a customer, with how far it is filled.",
        (
            _CUSTOMER_ID,
            Column("stamp_card_id", "bigint", "Id of the stamp card."),
            _text("name", "Name of the stamp card."),
            Column("count", "double", "Current clip/stamp count."),
            Column("total", "double", "Number of clips/stamps needed."),
            Column(
                "completion",
                "double",
                "count / total: 0 when empty, 1 when full; empty when total is 0 or unknown.",
            ),
            Column("is_completed", "bool", "count has reached total."),
            _text("image_url", "Image for the stamp card."),
            Column("sort_order", "bigint", "Sort order, as defined in the Trigg application."),
        ),
    ),
    Relation(
        "customer_consents",
        "One row per extended consent of a customer (beyond terms, e-mail and SMS).",
        (
            _CUSTOMER_ID,
            _text("consent_id", "Id of the consent."),
            _text("name", "Name of the consent."),
            Column("accepted", "bool", "Whether the customer consents."),
            Column("consent_date", "timestamp", "When the consent was given or changed."),
        ),
    ),
    Relation(
        "customer_favorite_stores",
        "One row per favourite store of a customer.",
        (_CUSTOMER_ID, _text("store_id", "Store id.")),
    ),
    Relation(
        "customer_interests",
        "One row per interest of a customer.",
        (_CUSTOMER_ID, _text("interest", "Interest.")),
    ),
    Relation(
        "customer_overview",
        "One row per customer: who, where, age band, points, promotions, stamp cards, consents.",
        (
            _CUSTOMER_ID,
            _text("external_id", "Secondary/external customer id."),
            _text("first_name", "First name."),
            _text("last_name", "Last name."),
            _text("email", "E-mail address."),
            _text("mobile_phone", "Mobile phone number."),
            _text("zip", "Postal code."),
            _text("city", "City."),
            _text("country", "Country code, 2 letters ISO 3166."),
            _text("gender", "Female, Male or Unknown by default; can be customized."),
            Column("birth_date", "date", "Date of birth."),
            Column("age", "bigint", "Age in whole years today; empty without a birth date."),
            _text("age_band", "Age group: " + ", ".join(AGE_BANDS) + "."),
            *POINTS,
            Column("promotions", "bigint", "Number of promotions the customer has."),
            Column("active_promotions", "bigint", "Promotions that can be used now (is_active)."),
            Column("redemptions", "bigint", "Redemptions of the customer's promotions."),
            Column("stamp_cards", "bigint", "Number of stamp cards."),
            Column("stamp_cards_completed", "bigint", "Stamp cards whose count has reached total."),
            *CONSENTS,
            Column(
                "created_at", "timestamp", "When the customer was created (metaData.CreatedAt)."
            ),
            Column(
                "updated_at", "timestamp", "When the customer last changed (metaData.UpdatedAt)."
            ),
        ),
    ),
)


def as_relation(table: Table) -> Relation:
    """A customers table with every column it has in the warehouse."""
    return Relation(table.name, table.description, stored_columns(table))


def described_tables() -> tuple[Relation, ...]:
    """Every table the dataset may hold, with all its columns, dlt's own included."""
    return (
        *(as_relation(table) for table in TABLES),
        QUARANTINE,
        VERSIONS,
        RUN_HISTORY,
        *DLT_TABLES,
    )
