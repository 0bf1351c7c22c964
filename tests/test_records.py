"""Every plausible response shape is read; anything else is refused, never loaded as empty."""

import io
import json
from zoneinfo import ZoneInfo

import pytest

from pipelines.trigg.errors import ResponseShapeError
from pipelines.trigg.records import iter_envelopes, stream_envelopes, to_customer

OSLO = ZoneInfo("Europe/Oslo")
CUSTOMER = {"id": "A", "firstName": "Kari"}
META = {"CreatedAt": "2023-01-01 15:15:00", "UpdatedAt": "2023-01-05 15:15:00"}


@pytest.mark.parametrize(
    "body",
    [
        [{"data": CUSTOMER, "metaData": META}],
        {"data": [{"data": CUSTOMER, "metaData": META}]},
        {"data": [{**CUSTOMER, "metaData": META}]},
        {"data": CUSTOMER, "metaData": META},
    ],
    ids=["array-of-envelopes", "object-of-envelopes", "object-of-customers", "single"],
)
def test_each_accepted_shape_yields_the_customer_and_its_metadata(body: object) -> None:
    [(data, meta)] = list(iter_envelopes(body))
    customer = to_customer(data, meta, OSLO)
    assert customer["id"] == "A" and customer["firstName"] == "Kari"
    assert customer["updated_at"].isoformat() == "2023-01-05T14:15:00+00:00"
    assert "metaData" not in customer


def test_an_empty_array_is_an_empty_feed() -> None:
    assert list(iter_envelopes([])) == []
    assert list(iter_envelopes({"data": []})) == []


@pytest.mark.parametrize("body", [None, "text", 3, {"items": []}, {"data": 5}, [1], [[]]])
def test_anything_else_is_a_clear_error(body: object) -> None:
    with pytest.raises(ResponseShapeError, match="nothing was loaded"):
        list(iter_envelopes(body))


@pytest.mark.parametrize(
    "body",
    [
        [{"data": CUSTOMER, "metaData": META}],
        {"data": [{"data": CUSTOMER, "metaData": META}]},
        {"data": [{**CUSTOMER, "metaData": META}]},
        {"data": CUSTOMER, "metaData": META},
        {"note": {"data": [1]}, "data": [{"data": CUSTOMER, "metaData": META}]},
    ],
    ids=["array", "object-of-envelopes", "object-of-customers", "single", "key-before-data"],
)
def test_the_streamed_body_yields_what_the_parsed_body_yields(body: object) -> None:
    streamed = list(stream_envelopes(io.BytesIO(json.dumps(body).encode())))
    assert streamed == list(iter_envelopes(body))


@pytest.mark.parametrize(
    "raw",
    [b"", b"<html>", b'[{"data": {"id": "A"}}, {"da', b"[1] trailing", b'{"data": 5}', b"[[]]"],
)
def test_a_streamed_body_that_is_not_a_feed_is_a_clear_error(raw: bytes) -> None:
    with pytest.raises(ResponseShapeError, match="nothing was loaded"):
        list(stream_envelopes(io.BytesIO(raw)))
