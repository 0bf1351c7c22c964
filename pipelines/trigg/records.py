"""From the API's response body to customer records ready for dlt.

The response's outer shape is not documented, so every plausible one is accepted: a JSON array of
`{data, metaData}` envelopes, an object whose `data` is an array of envelopes or of bare customers,
and a single `{data: {...}, metaData: {...}}`. Anything else is an error, never an empty load.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from pipelines.trigg.errors import ResponseShapeError
from pipelines.trigg.timestamps import parse_api_timestamp

Customer = dict[str, Any]


def iter_envelopes(body: Any) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Yield `(data, metaData)` for every customer in a response body of any accepted shape."""
    if isinstance(body, list):
        items = body
    elif isinstance(body, dict) and isinstance(body.get("data"), list):
        items = body["data"]
    elif isinstance(body, dict) and isinstance(body.get("data"), dict):
        items = [body]
    else:
        raise ResponseShapeError(
            "the API answered with a body that is not a customers feed"
            f" ({_describe(body)}); nothing was loaded"
        )
    for position, item in enumerate(items):
        if not isinstance(item, dict):
            raise ResponseShapeError(
                f"item {position} of the API's response is {_describe(item)}, not a customer;"
                " nothing was loaded"
            )
        if isinstance(item.get("data"), dict):
            yield item["data"], item.get("metaData") or {}
        else:
            yield item, item.get("metaData") or {}


def to_customer(data: dict[str, Any], meta: dict[str, Any], zone: ZoneInfo) -> Customer:
    """Shape one customer for loading: `metaData` becomes timezone-aware `created_at`/`updated_at`,
    and naive nested timestamps are read in the API's zone (dlt would read them as UTC)."""
    customer = {key: value for key, value in data.items() if key != "metaData"}
    customer["created_at"] = parse_api_timestamp(meta.get("CreatedAt"), zone)
    customer["updated_at"] = parse_api_timestamp(meta.get("UpdatedAt"), zone)
    for promotion in _dicts(customer.get("promotions")):
        _localize_fields(promotion, ("validFrom", "validTo"), zone)
        for redemption in _dicts(promotion.get("redemptionHistory")):
            _localize_fields(redemption, ("redeemDateTime",), zone)
    consents = customer.get("consents")
    if isinstance(consents, dict):
        for consent in _dicts(consents.get("extendedConsents")):
            _localize_fields(consent, ("consentDate",), zone)
    return customer


def _localize_fields(item: dict[str, Any], fields: tuple[str, ...], zone: ZoneInfo) -> None:
    for field in fields:
        value = item.get(field)
        if isinstance(value, str) and value:
            item[field] = parse_api_timestamp(value, zone)


def _dicts(value: Any) -> list[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def newest(first: datetime | None, second: datetime | None) -> datetime | None:
    """The later of two optional instants."""
    if first is None or second is None:
        return first or second
    return max(first, second)


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        keys = ", ".join(sorted(map(str, value))[:5]) or "no keys"
        return f"an object with {keys}"
    if isinstance(value, list):
        return "an array"
    return f"a JSON {type(value).__name__}"
