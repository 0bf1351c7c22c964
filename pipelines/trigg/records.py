"""From the API's response body to customer records ready for dlt.

The response's outer shape is not documented, so every plausible one is accepted: a JSON array of
`{data, metaData}` envelopes, an object whose `data` is an array of envelopes or of bare customers,
and a single `{data: {...}, metaData: {...}}`. Anything else is an error, never an empty load.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import IO, Any, Literal
from zoneinfo import ZoneInfo

import ijson

from pipelines.trigg.errors import ResponseShapeError
from pipelines.trigg.timestamps import parse_api_timestamp

Customer = dict[str, Any]


Shape = Literal["array", "object", "single"]
"""Where the customers are: the body is their array, the body's `data` is, or it is one."""
_ITEMS_PREFIX: dict[Shape, str] = {"array": "item", "object": "data.item", "single": ""}
_JSON_TYPES = {"string": "string", "number": "number", "boolean": "boolean", "null": "null"}


def iter_envelopes(body: Any) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Yield `(data, metaData)` for every customer in a parsed body of any accepted shape."""
    if isinstance(body, list):
        items: Iterable[Any] = body
    elif isinstance(body, dict) and isinstance(body.get("data"), list):
        items = body["data"]
    elif isinstance(body, dict) and isinstance(body.get("data"), dict):
        items = [body]
    else:
        raise _not_a_feed(_describe(body))
    for position, item in enumerate(items):
        yield envelope(position, item)


def stream_envelopes(body: IO[bytes]) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """Like `iter_envelopes`, reading the body file incrementally: a body of gigabytes costs one
    customer's worth of memory. A body that is not JSON (or is cut short) fails when it is met,
    and the run with it: nothing is loaded."""
    try:
        shape = sniff_shape(body)
        body.seek(0)
        items = ijson.items(body, _ITEMS_PREFIX[shape], use_float=True)
        for position, item in enumerate(items):
            if shape == "single":
                yield from iter_envelopes(item)
            else:
                yield envelope(position, item)
    except ijson.JSONError:
        raise _not_json() from None


def sniff_shape(body: IO[bytes]) -> Shape:
    """The body's shape, from its first tokens (and the top-level keys before `data`)."""
    events = ijson.parse(body)
    _, first, value = next(events, ("", "end", None))
    if first == "start_array":
        return "array"
    if first != "start_map":
        raise _not_a_feed(f"a JSON {_JSON_TYPES.get(first, 'value')}")
    keys: list[str] = []
    for prefix, event, value in events:
        if prefix == "" and event == "map_key":
            keys.append(value)
        elif prefix == "data" and keys[-1:] == ["data"] and event in ("start_array", "start_map"):
            return "object" if event == "start_array" else "single"
        elif prefix == "data" and keys[-1:] == ["data"] and event in _JSON_TYPES:
            break
    names = ", ".join(sorted(keys)[:5]) or "no keys"
    raise _not_a_feed(f"an object with {names}")


def envelope(position: int, item: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """`(data, metaData)` of one item of the customers array: an envelope or a bare customer."""
    if not isinstance(item, dict):
        raise ResponseShapeError(
            f"item {position} of the API's response is {_describe(item)}, not a customer;"
            " nothing was loaded"
        )
    if isinstance(item.get("data"), dict):
        return item["data"], item.get("metaData") or {}
    return item, item.get("metaData") or {}


def _not_a_feed(what: str) -> ResponseShapeError:
    return ResponseShapeError(
        f"the API answered with a body that is not a customers feed ({what}); nothing was loaded"
    )


def _not_json() -> ResponseShapeError:
    return ResponseShapeError(
        "the API answered 200 with a body that is not JSON (or not all of it); nothing was loaded"
    )


class InvalidRecord(ValueError):
    """One customer that cannot be loaded; the reason is one line for `customers_rejected`."""


def to_customer(data: dict[str, Any], meta: dict[str, Any], zone: ZoneInfo) -> Customer:
    """Shape one customer for loading: `metaData` becomes timezone-aware `created_at`/`updated_at`,
    and naive nested timestamps are read in the API's zone (dlt would read them as UTC)."""
    customer = {key: value for key, value in data.items() if key != "metaData"}
    for field, column in (("CreatedAt", "created_at"), ("UpdatedAt", "updated_at")):
        try:
            customer[column] = parse_api_timestamp(meta.get(field), zone)
        except ValueError:
            raise InvalidRecord(
                f"metaData.{field} = {meta.get(field)!r} is not a timestamp"
            ) from None
    promotions = customer.get("promotions")
    if isinstance(promotions, list):
        customer["promotions"] = [_localized_promotion(item, zone) for item in promotions]
    consents = customer.get("consents")
    if isinstance(consents, dict) and isinstance(consents.get("extendedConsents"), list):
        customer["consents"] = {
            **consents,
            "extendedConsents": [
                _localized(item, ("consentDate",), zone) for item in consents["extendedConsents"]
            ],
        }
    return customer


def _localized_promotion(promotion: Any, zone: ZoneInfo) -> Any:
    promotion = _localized(promotion, ("validFrom", "validTo"), zone)
    if isinstance(promotion, dict) and isinstance(promotion.get("redemptionHistory"), list):
        history = [
            _localized(item, ("redeemDateTime",), zone) for item in promotion["redemptionHistory"]
        ]
        promotion = {**promotion, "redemptionHistory": history}
    return promotion


def _localized(item: Any, fields: tuple[str, ...], zone: ZoneInfo) -> Any:
    """A copy of `item` with its timestamps parsed (naive ones in the API's zone); the raw record
    stays untouched for the quarantine."""
    if not isinstance(item, dict):
        return item
    parsed: dict[str, Any] = {}
    for field in fields:
        value = item.get(field)
        if isinstance(value, str) and value:
            try:
                parsed[field] = parse_api_timestamp(value, zone)
            except ValueError:
                raise InvalidRecord(f"{field} = {value!r} is not a timestamp") from None
    return {**item, **parsed} if parsed else item


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
