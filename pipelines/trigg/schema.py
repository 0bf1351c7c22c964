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

ROOT_TABLE: Final = "customers"
PRIMARY_KEY: Final = "id"
REJECTED_TABLE: Final = "customers_rejected"
UPDATED_AT: Final = "updated_at"
"""The column that orders versions of one customer: the newest wins."""


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
    standalone_name: str | None = None
    """The name of a table outside the customers tree (the quarantine)."""

    @property
    def name(self) -> str:
        return self.standalone_name or "__".join((ROOT_TABLE, *self.path))


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
            Column("birth_date", "date", "Date of birth."),
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

QUARANTINE = Table(
    (),
    "Records the API sent that could not be loaded (quarantine): one row per record and run.",
    (
        _text("customer_id", "The record's customer id, if it had one."),
        _text("reason", "Why the record could not be loaded."),
        Column("record", "json", "The record as the API sent it: {data, metaData}."),
        _text("load_id", "The dlt load id of the run that received it."),
        Column("rejected_at", "timestamp", "When the run received it."),
    ),
    standalone_name=REJECTED_TABLE,
)


def _column_hints(table: Table) -> dict[str, TColumnSchema]:
    return {
        column.name: {
            "name": column.name,
            "data_type": column.data_type,
            "description": column.description,
        }
        for column in table.columns
    }


ROW_KEY: Final = "_dlt_id"
LOAD_ID: Final = "_dlt_load_id"
PARENT_KEY: Final = "_dlt_parent_id"
ROOT_KEY: Final = "_dlt_root_id"
LIST_INDEX: Final = "_dlt_list_idx"
DLT_ROOT_COLUMNS: Final[dict[str, TColumnSchema]] = {
    LOAD_ID: {"name": LOAD_ID, "data_type": "text", "nullable": False},
    ROW_KEY: {
        "name": ROW_KEY,
        "data_type": "text",
        "nullable": False,
        "unique": True,
        "row_key": True,
    },
}
DLT_NESTED_COLUMNS: Final[dict[str, TColumnSchema]] = {
    ROOT_KEY: {"name": ROOT_KEY, "data_type": "text", "nullable": False, "root_key": True},
    PARENT_KEY: {"name": PARENT_KEY, "data_type": "text", "nullable": False, "parent_key": True},
    LIST_INDEX: {"name": LIST_INDEX, "data_type": "bigint", "nullable": False},
    ROW_KEY: {
        "name": ROW_KEY,
        "data_type": "text",
        "nullable": False,
        "unique": True,
        "row_key": True,
    },
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
    """Hints for `customers_rejected`."""
    return _column_hints(QUARANTINE)


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
