"""The analyst layer: views over the raw tables that carry `customer_id` (and `promotion_id`).

Nobody querying them needs dlt's join columns. They are written in DuckDB SQL and, for other
destinations, translated to the destination's dialect with sqlglot (PostgreSQL is tested);
recreated after a load that changes what they read (see `after_load`), and defensive: a child
table dlt has not created yet (it creates one with its first row) is read as an empty relation
with the pinned columns, so every view exists on a fresh warehouse and fills in once data
arrives. Table and column names inside the views are unqualified: DuckDB binds them in the
view's own schema, so the views keep working when the file is renamed or attached under another
name.

The views' names, columns and descriptions live in `pipelines/trigg/schema.py` (`VIEWS`).
"""

from __future__ import annotations

from typing import Final

import sqlglot
from dlt.destinations.sql_client import SqlClientBase

from pipelines.trigg.schema import AGE_BANDS, DUCKDB_TYPES, TABLES, VIEWS, Column, stored_columns

AGE_LIMITS: Final = (18, 25, 35, 45, 55, 65)
"""Upper bounds (exclusive) of the first age bands; older is the last but one band."""

_CUSTOMER_JOIN = "join {customers} c on c._dlt_id = t._dlt_root_id"
_AGE = """cast(coalesce(
        extract(year from current_date) - extract(year from birth_date)
        - case when extract(month from current_date) * 100 + extract(day from current_date)
                    < extract(month from birth_date) * 100 + extract(day from birth_date)
               then 1 else 0 end,
        extract(year from current_date) - birth_year) as bigint)"""
"""Whole years since the birth date; from the birth year alone where personal data is reduced
(pii = pseudonymize or drop). Plain SQL: DuckDB and PostgreSQL read it alike."""
_PROMOTION_JOIN = "join {customers__promotions} p on p._dlt_id = t._dlt_parent_id"


def _age_band(age: str) -> str:
    bands = dict(zip(AGE_LIMITS, AGE_BANDS, strict=False))
    steps = " ".join(f"when {age} < {limit} then '{band}'" for limit, band in bands.items())
    return f"case when {age} is null then '{AGE_BANDS[-1]}' {steps} else '{AGE_BANDS[-2]}' end"


VIEW_SQL: Final[dict[str, str]] = {
    "customer_promotions": f"""
select c.id as customer_id, t.id as promotion_id, t.name, t.type, t.description, t.available,
       coalesce(t.available, false)
         and coalesce(t.valid_from <= now(), true)
         and coalesce(t.valid_to > now(), true) as is_active,
       t.valid_from, t.valid_to, t.unlimited_redemption, t.redemption_limit, t.redemption_count,
       case when not coalesce(t.unlimited_redemption, false)
            then t.redemption_limit - coalesce(t.redemption_count, 0) end as redemptions_left,
       t.affiliate__id as affiliate_id, t.affiliate__name as affiliate_name, t.url_link
from {{customers__promotions}} t
{_CUSTOMER_JOIN}""",
    "promotion_channels": f"""
select c.id as customer_id, p.id as promotion_id, p.name as promotion_name,
       t.type as channel, t.value_type, t.value, t.message
from {{customers__promotions__redemption_channels}} t
{_PROMOTION_JOIN}
{_CUSTOMER_JOIN}""",
    "promotion_redemptions": f"""
select c.id as customer_id, p.id as promotion_id, p.name as promotion_name,
       t.store_id, t.receipt_id, t.redeem_date_time as redeemed_at
from {{customers__promotions__redemption_history}} t
{_PROMOTION_JOIN}
{_CUSTOMER_JOIN}""",
    "promotion_products_included": f"""
select c.id as customer_id, p.id as promotion_id, t.id as product_id, t.type as product_id_type
from {{customers__promotions__products_included}} t
{_PROMOTION_JOIN}
{_CUSTOMER_JOIN}""",
    "promotion_products_excluded": f"""
select c.id as customer_id, p.id as promotion_id, t.id as product_id, t.type as product_id_type
from {{customers__promotions__products_excluded}} t
{_PROMOTION_JOIN}
{_CUSTOMER_JOIN}""",
    "promotion_stores_included": f"""
select c.id as customer_id, p.id as promotion_id, t.value as store_id
from {{customers__promotions__stores_included}} t
{_PROMOTION_JOIN}
{_CUSTOMER_JOIN}""",
    "stamp_cards": f"""
select c.id as customer_id, t.id as stamp_card_id, t.namn as name, t."count", t.total,
       t."count" / nullif(t.total, 0) as completion,
       t."count" >= t.total as is_completed,
       t.image_url, t.sort_order
from {{customers__loyalty__loyalty_cards}} t
{_CUSTOMER_JOIN}""",
    "customer_consents": f"""
select c.id as customer_id, t.id as consent_id, t.name, t.value as accepted, t.consent_date
from {{customers__consents__extended_consents}} t
{_CUSTOMER_JOIN}""",
    "customer_favorite_stores": f"""
select c.id as customer_id, t.value as store_id
from {{customers__favorite_stores}} t
{_CUSTOMER_JOIN}""",
    "customer_interests": f"""
select c.id as customer_id, t.value as interest
from {{customers__interests}} t
{_CUSTOMER_JOIN}""",
    "customer_overview": f"""
with promotions as (
    select customer_id, count(*) as promotions,
           count(*) filter (where is_active) as active_promotions
    from customer_promotions group by customer_id
), redemptions as (
    select customer_id, count(*) as redemptions from promotion_redemptions group by customer_id
), cards as (
    select customer_id, count(*) as stamp_cards,
           count(*) filter (where is_completed) as stamp_cards_completed
    from stamp_cards group by customer_id
), aged as (
    select *, {_AGE} as age from {{customers}}
)
select c.id as customer_id, c.external_id, c.first_name, c.last_name, c.email, c.mobile_phone,
       c.zip, c.city, c.country, c.gender, c.birth_date, c.age, {_age_band("c.age")} as age_band,
       c.loyalty__points as points, c.loyalty__points_active as points_active,
       c.loyalty__points_pending as points_pending, c.loyalty__points_expired as points_expired,
       c.loyalty__points_total as points_total,
       coalesce(p.promotions, 0) as promotions,
       coalesce(p.active_promotions, 0) as active_promotions,
       coalesce(r.redemptions, 0) as redemptions,
       coalesce(k.stamp_cards, 0) as stamp_cards,
       coalesce(k.stamp_cards_completed, 0) as stamp_cards_completed,
       c.consents__accepts_terms as accepts_terms, c.consents__accepts_email as accepts_email,
       c.consents__accepts_sms as accepts_sms, c.created_at, c.updated_at
from aged c
left join promotions p on p.customer_id = c.id
left join redemptions r on r.customer_id = c.id
left join cards k on k.customer_id = c.id""",
}
"""Each view's query. `{table}` stands for a raw table, or for an empty stand-in while dlt has not
created it. Views are created in the order of `VIEWS`: `customer_overview` reads the ones before."""


def source_relation(name: str, columns: tuple[Column, ...], stored: list[str] | None) -> str:
    """How a view reads the raw table `name`: by name when it has every column, otherwise a
    subquery that fills the missing columns (or, without the table, every column) with nulls."""
    if stored is not None and {column.name for column in columns} <= set(stored):
        return name
    values = ", ".join(
        f'"{column.name}"'
        if stored is not None and column.name in stored
        else f'cast(null as {DUCKDB_TYPES[column.data_type]}) as "{column.name}"'
        for column in columns
    )
    return f"(select {values} from {name})" if stored is not None else f"(select {values} limit 0)"


def view_statements(
    client: SqlClientBase, dataset_columns: dict[str, list[str]]
) -> list[tuple[str, str]]:
    """(view name, `create or replace view` statement) for every view, in creation order."""
    sources = {
        table.name: source_relation(
            table.name, stored_columns(table), dataset_columns.get(table.name)
        )
        for table in TABLES
    }
    dialect = client.capabilities.sqlglot_dialect or "duckdb"
    return [
        (
            view.name,
            f"create or replace view {client.make_qualified_table_name(view.name)} as "
            + in_dialect(VIEW_SQL[view.name].format(**sources), dialect),
        )
        for view in VIEWS
    ]


def in_dialect(query: str, dialect: str) -> str:
    """A DuckDB query in another SQL dialect (unchanged for DuckDB and MotherDuck)."""
    if dialect == "duckdb":
        return query
    return sqlglot.transpile(query, read="duckdb", write=dialect)[0]
