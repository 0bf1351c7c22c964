"""The simulator's members look like a real retail club (the demo's charts are what analysts judge
the product by), while every field keeps the shape, and the type drift, of the API's spec."""

from __future__ import annotations

import statistics
from collections import Counter
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from pipelines.simulator.data import CustomerGenerator, SimulatedCustomer
from pipelines.simulator.places import TOWNS

OSLO = ZoneInfo("Europe/Oslo")
NOW = datetime(2026, 12, 1, 9, 30)
POSTCODES = {town.name: set(town.postcodes) for town in TOWNS}


@pytest.fixture(scope="module")
def members() -> list[SimulatedCustomer]:
    generator = CustomerGenerator(seed=2024, zone=OSLO)
    return [generator.customer(NOW) for _ in range(2000)]


def redemption_times(members: list[SimulatedCustomer]) -> list[datetime]:
    """Every redemption as the member's local time."""
    return [
        datetime.fromisoformat(redemption["redeemDateTime"]).astimezone(OSLO)
        for member in members
        for promotion in member.data["promotions"]
        for redemption in promotion["redemptionHistory"]
    ]


def test_members_live_in_real_towns_with_their_real_postcodes_oslo_first(
    members: list[SimulatedCustomer],
) -> None:
    cities = Counter(member.data["city"] for member in members)
    assert set(cities) <= set(POSTCODES)
    assert len(cities) >= 30  # a long tail of towns, not a handful
    assert [city for city, _ in cities.most_common(3)] == ["Oslo", "Bergen", "Trondheim"]
    assert cities["Oslo"] > 2 * cities["Bergen"]
    demo_sized = Counter(member.data["city"] for member in members[:300])
    assert [city for city, _ in demo_sized.most_common(4)] == [
        "Oslo",
        "Bergen",
        "Trondheim",
        "Stavanger",
    ]  # even a small club ranks its towns like Norway, not by luck
    for member in members:
        postcode = member.data["zip"]
        as_text = postcode if isinstance(postcode, str) else f"{postcode:04d}"
        assert as_text in POSTCODES[member.data["city"]]


def test_the_zip_keeps_the_specs_type_drift_but_never_loses_a_leading_zero(
    members: list[SimulatedCustomer],
) -> None:
    zips = [member.data["zip"] for member in members]
    numbers = [postcode for postcode in zips if isinstance(postcode, int)]
    texts = [postcode for postcode in zips if isinstance(postcode, str)]
    assert numbers and all(number >= 1000 for number in numbers)  # 0150 is never sent as 150
    assert any(text.startswith("0") for text in texts)
    assert all(len(text) == 4 and text.isdigit() for text in texts)


def test_the_other_type_drift_of_the_spec_stays(members: list[SimulatedCustomer]) -> None:
    cards = [card for m in members for card in m.data["loyalty"]["loyaltyCards"]]
    promotions = [promotion for m in members for promotion in m.data["promotions"]]
    products = [product for p in promotions for product in p["productsIncluded"]]
    channels = [channel for p in promotions for channel in p["redemptionChannels"]]
    for values in ([c["id"] for c in cards], [p["id"] for p in products]):
        assert {type(value) for value in values} == {int, str}  # typed one way, sent both ways
    assert int in {type(channel["value"]) for channel in channels}  # typed string


def test_most_members_are_of_working_age_with_few_teenagers_and_a_tail_of_pensioners(
    members: list[SimulatedCustomer],
) -> None:
    def age(member: SimulatedCustomer) -> int:
        born = date.fromisoformat(member.data["birthDate"][:10])
        return NOW.year - born.year - ((NOW.month, NOW.day) < (born.month, born.day))

    ages = [age(member) for member in members]
    share = lambda low, high: sum(low <= a < high for a in ages) / len(ages)  # noqa: E731
    assert share(25, 55) > 0.55
    assert 0.08 < share(65, 200) < 0.16
    assert share(0, 18) < 0.05
    assert min(ages) >= 13 and max(ages) < 95
    assert all(member.data["birthDate"].endswith("T00:00:00") for member in members)


def test_points_are_long_tailed_and_keep_the_specs_identities(
    members: list[SimulatedCustomer],
) -> None:
    loyalties = [member.data["loyalty"] for member in members]
    points = sorted(loyalty["points"] for loyalty in loyalties)
    median, top_percent = statistics.median(points), points[int(len(points) * 0.99)]
    assert 100 <= median <= 600  # most members hold a few hundred
    assert top_percent > 5 * median and points[-1] > 5000  # a few hold many thousands
    assert statistics.mean(points) > median
    for loyalty in loyalties:
        assert loyalty["points"] == loyalty["pointsActive"] + loyalty["pointsPending"]
        assert loyalty["pointsTotal"] == loyalty["points"] + loyalty["pointsExpired"]
        assert min(loyalty["pointsActive"], loyalty["pointsPending"]) >= 0


def test_redemptions_follow_the_shopping_week_and_the_seasons(
    members: list[SimulatedCustomer],
) -> None:
    times = redemption_times(members)
    by_weekday = Counter(moment.weekday() for moment in times)
    weekday_average = sum(by_weekday[day] for day in range(4)) / 4  # Monday to Thursday
    assert min(by_weekday[4], by_weekday[5]) > 1.2 * weekday_average  # Friday, Saturday
    assert by_weekday[6] < 0.8 * min(by_weekday[day] for day in range(6))  # Sunday
    by_month = Counter((moment.year, moment.month) for moment in times)
    assert max(by_month, key=by_month.__getitem__) == (2025, 12)  # Christmas
    assert 1.2 * by_month[2026, 7] < min(by_month[2026, 6], by_month[2026, 8])  # the holidays
    assert all(7 <= moment.hour <= 22 for moment in times)  # in opening hours, local time


def test_redemptions_happen_while_a_promotion_is_valid_and_before_the_last_update(
    members: list[SimulatedCustomer],
) -> None:
    def instant(text: str) -> datetime:
        assert text.endswith(".000Z"), text
        return datetime.fromisoformat(text)

    for member in members:
        updated = member.updated_at.replace(tzinfo=OSLO).astimezone(UTC)
        for promotion in member.data["promotions"]:
            history = promotion["redemptionHistory"]
            assert promotion["redemptionCount"] == len(history) <= promotion["redemptionLimit"]
            moments = [instant(redemption["redeemDateTime"]) for redemption in history]
            assert moments == sorted(moments)
            for moment in moments:
                assert instant(promotion["validFrom"]) <= moment <= instant(promotion["validTo"])
                assert moment <= updated


def test_the_same_seed_makes_the_same_club() -> None:
    first, second, other = (CustomerGenerator(seed, OSLO) for seed in (7, 7, 8))
    same = [first.customer(NOW).envelope() for _ in range(50)]
    assert same == [second.customer(NOW).envelope() for _ in range(50)]
    assert same != [other.customer(NOW).envelope() for _ in range(50)]
