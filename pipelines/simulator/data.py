"""Deterministic, realistic Trigg customers and a change model that moves them forward in time.

Data follows the endpoint's spec field by field, including the spec's own type drift (a `zip`
sent as a number, a stamp-card id as a string, a channel value or product id as a number), so the
pipeline meets what the real API may send. It also looks like a real retail club, because analysts
judge the product by the demo's charts: members live in real towns (`places`), most are 25 to 55,
balances are long-tailed, and redemptions follow the shopping week and the seasons. Everything
derives from one seed.
"""

from __future__ import annotations

import copy
import math
import random
import threading
from bisect import bisect
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from itertools import accumulate
from typing import Any, Final, TypeVar
from zoneinfo import ZoneInfo

from faker import Faker

from pipelines.simulator.places import TownDraws

META_FORMAT = "%Y-%m-%d %H:%M:%S"
"""How the API writes `metaData` timestamps: naive, in its own zone."""

STORES = tuple(f"S{number}" for number in range(100, 140))
INTERESTS = ("Sports", "Coffee", "Fashion", "Outdoor", "Books", "Kids", "Home", "Beauty", "Food")
STAMP_CARDS = (("Black coffee", 6), ("Cinnamon bun", 8), ("Smoothie", 10), ("Lunch", 5))
PROMOTIONS = (
    ("Welcome coupon", "PERCENT", 10),
    ("Birthday treat", "AMOUNT", 100),
    ("Weekend deal", "PERCENT", 20),
    ("Member price", "AMOUNT", 50),
    ("Free coffee", "CODE", "COFFEE"),
    ("Double points", "PERCENT", 15),
)
EXTENDED_CONSENTS = (("C-PROFILING", "Profiling"), ("C-PARTNERS", "Partner offers"))
LEVELS = ("Bronze", "Silver", "Gold")
T = TypeVar("T")

AGE_SPREAD: Final = (
    (13, 18, 2),
    (18, 25, 10),
    (25, 35, 21),
    (35, 45, 23),
    (45, 55, 20),
    (55, 65, 13),
    (65, 75, 8),
    (75, 90, 3),
)
"""`(from, to, percent)`: members' ages in years, uniform within each range. A retail club is
mostly working-age adults, has few teenagers and a tail of pensioners (11 % 65 or older)."""
_AGE_CUMULATIVE: Final = tuple(accumulate(share for _, _, share in AGE_SPREAD))

POINTS_MEDIAN: Final = 250
POINTS_SPREAD: Final = 1.2
"""Active points are log-normal: the median member holds a few hundred, about one in a hundred
several thousand (sigma of the log)."""

WEEKDAY_WEIGHT: Final = (0.85, 0.85, 0.9, 1.0, 1.35, 1.5, 0.55)
"""Redemptions per weekday, Monday first: Friday and Saturday are shopping days, Sunday most shops
are closed."""
MONTH_WEIGHT: Final = (0.8, 0.85, 0.95, 0.95, 1.0, 0.95, 0.6, 0.8, 1.0, 1.0, 1.15, 1.7)
"""Redemptions per month, January first: the Christmas peak, July's holiday dip."""
HOUR_WEIGHT: Final = (0, 0, 0, 0, 0, 0, 0, 1, 2, 4, 6, 7, 9, 8, 7, 8, 10, 11, 9, 6, 4, 2, 1, 0)
"""Redemptions per hour of the day (local time), 00 first: opening hours, peak after work."""
_HOUR_CUMULATIVE: Final = tuple(accumulate(HOUR_WEIGHT))
_BUSIEST_DAY: Final = max(WEEKDAY_WEIGHT) * max(MONTH_WEIGHT)
_UUID_CLEAR: Final = ~((0xC000 << 48) | (0xF000 << 64))
_UUID_SET: Final = (0x8000 << 48) | (4 << 76)
"""The variant and version bits of a version 4 UUID (RFC 4122)."""
PROMOTION_DAYS: Final = 90
PROMOTION_HISTORY_DAYS: Final = 480
"""How far back a member's promotions start: over a year, so that a year of seasons shows."""


@dataclass
class SimulatedCustomer:
    data: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    """Naive wall-clock times in the API's zone, as the API writes them."""

    def envelope(self) -> dict[str, Any]:
        return {
            "data": self.data,
            "metaData": {
                "CreatedAt": self.created_at.strftime(META_FORMAT),
                "UpdatedAt": self.updated_at.strftime(META_FORMAT),
            },
        }


class CustomerGenerator:
    """Builds customers from a seed: pools of Norwegian names and streets from Faker, real towns
    from `places`, then cheap random choices, so that a hundred thousand customers take seconds,
    not minutes."""

    def __init__(self, seed: int, zone: ZoneInfo) -> None:
        self.zone = zone
        self.rng = random.Random(seed)
        fake = Faker("no_NO")
        fake.seed_instance(seed)
        self.first_names = [fake.first_name() for _ in range(300)]
        self.last_names = [fake.last_name() for _ in range(300)]
        self.streets = [fake.street_address() for _ in range(300)]
        self.mail_domains = ("gmail.com", "hotmail.com", "online.no", "outlook.com", "icloud.com")
        self.towns = TownDraws(self.rng)

    def utc(self, wall: datetime) -> str:
        """A naive wall-clock time of the API's zone, written as the API writes UTC: with `Z`.
        (The zone's offset for a naive time is the one `replace(tzinfo=zone)` would give, and
        `isoformat` is three times faster than `strftime`.)"""
        wall = wall.replace(tzinfo=None) if wall.tzinfo else wall
        return (wall - self.zone.utcoffset(wall)).isoformat(timespec="seconds") + ".000Z"

    def uuid(self) -> str:
        """A random (version 4) UUID in capitals, as the API writes ids; formatted by hand, which
        is several times faster than `uuid.UUID`."""
        bits = self.rng.getrandbits(128) & _UUID_CLEAR | _UUID_SET
        text = f"{bits:032X}"
        return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"

    def customer(self, now: datetime) -> SimulatedCustomer:
        rng = self.rng
        first, last = rng.choice(self.first_names), rng.choice(self.last_names)
        postcode, city = self.towns.address(rng)
        created = now - timedelta(days=rng.randrange(30, 2000), seconds=rng.randrange(86400))
        updated = now - timedelta(seconds=rng.randrange(60, 20 * 3600))
        data: dict[str, Any] = {
            "id": self.uuid(),
            "externalId": f"EXT-{rng.randrange(10**7):07d}",
            "mobilePhone": f"+47{rng.choice('49')}{rng.randrange(10**7):07d}",
            "email": f"{first}.{last}{rng.randrange(100)}@{rng.choice(self.mail_domains)}".lower(),
            "firstName": first,
            "lastName": last,
            "address": rng.choice(self.streets),
            # the spec's example sends zip as a number; leading zeros only survive as text
            "zip": int(postcode) if rng.random() < 0.3 and postcode[0] != "0" else postcode,
            "city": city,
            "country": "NO",
            "birthDate": self.birth_date(now).strftime("%Y-%m-%dT00:00:00"),
            "gender": rng.choice(("Female", "Male", "Female", "Male", "Unknown")),
            "favoriteStores": rng.sample(STORES, rng.randint(1, 3)),
            "interests": rng.sample(INTERESTS, rng.randint(0, 3)),
            "loyalty": {"loyaltyCards": [self.stamp_card(i) for i in range(rng.randint(1, 3))]},
            "promotions": [
                self.promotion(updated, since=created)
                for _ in range(self.promotion_count((updated - created).days))
            ],
            "consents": {
                "acceptsTerms": True,
                "acceptsEmail": rng.random() < 0.6,
                "acceptsSms": rng.random() < 0.4,
                "extendedConsents": [
                    self.consent(consent_id, name, created)
                    for consent_id, name in EXTENDED_CONSENTS
                    if rng.random() < 0.7
                ],
            },
            "extendedProperties": {
                "memberLevel": rng.choice(LEVELS),
                "source": rng.choice(("app", "web", "store")),
            },
        }
        self.set_points(
            data,
            active=self.long_tailed(POINTS_MEDIAN, POINTS_SPREAD),
            pending=self.long_tailed(40, 0.9) if rng.random() < 0.6 else 0,
            expired=self.long_tailed(100, 1.0) if rng.random() < 0.5 else 0,
        )
        return SimulatedCustomer(
            data, created.replace(microsecond=0), updated.replace(microsecond=0)
        )

    def promotion_count(self, member_days: int) -> int:
        """2 to 5 promotions over `PROMOTION_HISTORY_DAYS`, fewer for a newer member (at least
        one): each member gets about as many a month, so redemptions spread evenly over time."""
        share = min(member_days / PROMOTION_HISTORY_DAYS, 1.0)
        return max(1, round(self.rng.randint(2, 5) * share))

    def birth_date(self, now: datetime) -> date:
        """A member's birthday, `AGE_SPREAD` years before `now`."""
        rng = self.rng
        band = bisect(_AGE_CUMULATIVE, rng.random() * _AGE_CUMULATIVE[-1])
        youngest, oldest, _ = AGE_SPREAD[band]
        return now.date() - timedelta(days=int(rng.uniform(youngest, oldest) * 365.25))

    def long_tailed(self, median: float, spread: float) -> int:
        """A whole number, log-normal around `median`: mostly near it, now and then far above."""
        return int(self.rng.lognormvariate(math.log(median), spread))

    def shopping_moments(self, start: datetime, end: datetime, tries: int) -> list[datetime]:
        """Moments in `[start, end]` when members shop, in order. Each try is a day of the window,
        kept with the chance `WEEKDAY_WEIGHT` x `MONTH_WEIGHT` gives it against the busiest day,
        so a busy day sees more redemptions than a quiet one; then an hour by `HOUR_WEIGHT`."""
        rng = self.rng
        first = start.date()
        days = (end.date() - first).days + 1
        moments = []
        for _ in range(tries):
            day = first + timedelta(days=int(rng.random() * days))
            weight = WEEKDAY_WEIGHT[day.weekday()] * MONTH_WEIGHT[day.month - 1]
            if rng.random() * _BUSIEST_DAY > weight:
                continue
            hour = bisect(_HOUR_CUMULATIVE, rng.random() * _HOUR_CUMULATIVE[-1])
            moment = datetime.combine(day, time(hour)) + timedelta(seconds=int(rng.random() * 3600))
            if start <= moment <= end:
                moments.append(moment)
        return sorted(moments)

    def set_points(self, data: dict[str, Any], active: int, pending: int, expired: int) -> None:
        """Keep the spec's identities: points = active + pending = total - expired."""
        loyalty = data["loyalty"]
        loyalty.update(
            points=active + pending,
            pointsActive=active,
            pointsPending=pending,
            pointsExpired=expired,
            pointsTotal=active + pending + expired,
        )

    def stamp_card(self, sort_order: int) -> dict[str, Any]:
        rng = self.rng
        name, total = rng.choice(STAMP_CARDS)
        card_id = rng.randrange(1, 50)
        return {
            # the spec types the id as integer but its example is the string "4"
            "id": str(card_id) if rng.random() < 0.5 else card_id,
            "namn": name,
            "total": total,
            "count": rng.randrange(0, total + 1),
            "imageUrl": f"cdn.oculos.no/card_{card_id}.png",
            "sortOrder": sort_order + 1,
            "extendedProperties": {"color": rng.choice(("brown", "green", "red"))},
        }

    def promotion(self, now: datetime, since: datetime | None = None) -> dict[str, Any]:
        """A promotion valid for `PROMOTION_DAYS` from a day since `since` (a member's joining;
        at most `PROMOTION_HISTORY_DAYS` back), or in the last 60 days without one, with the
        redemptions that happened by `now`."""
        rng = self.rng
        name, value_type, value = rng.choice(PROMOTIONS)
        history = 60 if since is None else min((now - since).days, PROMOTION_HISTORY_DAYS)
        valid_from = now - timedelta(days=rng.randrange(max(history, 1)))
        valid_to = valid_from + timedelta(days=PROMOTION_DAYS)
        limit = rng.randint(1, 5)
        promotion: dict[str, Any] = {
            "id": self.uuid(),
            "type": "Promotion",
            "name": name,
            "available": rng.random() < 0.85,
            "description": f"{name}: {value}{'%' if value_type == 'PERCENT' else ''} for members",
            "terms": "Valid for members in participating stores",
            "urlLink": f"https://trigg.example/promotions/{rng.randrange(10**6)}",
            "urlImage": f"https://cdn.oculos.no/img{rng.randrange(100):02d}.png",
            "validFrom": self.utc(valid_from),
            "validTo": self.utc(valid_to),
            "validTimeFrom": "08:00:00",
            "validTimeTo": "20:00:00",
            "unlimitedRedemption": False,
            "redemptionLimit": limit,
            "redemptionCount": 0,
            "productsIncluded": [
                # typed string, example the number 123
                {
                    "id": rng.randrange(1000, 9999)
                    if rng.random() < 0.5
                    else str(rng.randrange(1000, 9999)),
                    "type": "EAN",
                }
                for _ in range(rng.randint(0, 3))
            ],
            "productsExcluded": [
                {"id": str(rng.randrange(1000, 9999)), "type": "EAN"}
                for _ in range(rng.choice((0, 0, 1)))
            ],
            "storesIncluded": rng.sample(STORES, rng.randint(0, 3)),
            "affiliate": {
                "id": self.uuid(),
                "name": rng.choice(("Kaffebrenneriet", "Sample Affiliate")),
            },
            "redemptionChannels": [
                {
                    "type": channel,
                    "valueType": value_type,
                    "value": value,  # typed string, example the number 10
                    "message": "Only applies to members",
                }
                for channel in rng.sample(("POS", "ECOM", "ALL"), rng.randint(1, 2))
            ],
            "redemptionHistory": [],
        }
        # the redemptions a member makes while the promotion is valid, those until now so far
        tries = rng.randint(0, 6)  # about one in three is kept
        redeemed = [at for at in self.shopping_moments(valid_from, valid_to, tries) if at <= now]
        for redeemed_at in redeemed[:limit]:
            self.redeem(promotion, redeemed_at)
        return promotion

    def redeem(self, promotion: dict[str, Any], at: datetime) -> None:
        promotion["redemptionCount"] += 1
        promotion["redemptionHistory"].append(
            {
                "storeId": self.rng.choice(STORES),
                "receiptId": self.uuid(),
                "redeemDateTime": self.utc(at),
            }
        )

    def consent(self, consent_id: str, name: str, created: datetime) -> dict[str, Any]:
        return {
            "id": consent_id,
            "value": self.rng.random() < 0.5,
            "name": name,
            "consentDate": created.strftime(META_FORMAT),
        }


class CustomerStore:
    """The simulated service's current state, safe to read while the change model writes."""

    def __init__(
        self, customers: int, seed: int, clock: Callable[[], datetime], zone: ZoneInfo
    ) -> None:
        self.clock = clock
        self.generator = CustomerGenerator(seed, zone)
        self.lock = threading.Lock()
        now = clock()
        generated = (self.generator.customer(now) for _ in range(customers))
        self.customers: dict[str, SimulatedCustomer] = {c.data["id"]: c for c in generated}

    def changed_since(self, since: datetime) -> list[SimulatedCustomer]:
        """Customers whose `UpdatedAt` is at or after `since`, oldest change first (copies)."""
        with self.lock:
            return [copy.deepcopy(c) for c in self.selected(since)]

    def render_since(self, since: datetime, render: Callable[[list[SimulatedCustomer]], T]) -> T:
        """`render` the customers changed since `since` while no change can happen: no copies,
        so serving a hundred thousand customers costs a JSON dump, not a deep copy."""
        with self.lock:
            return render(self.selected(since))

    def selected(self, since: datetime) -> list[SimulatedCustomer]:
        """The live customers changed since `since`, oldest first; the caller holds the lock."""
        chosen = [c for c in self.customers.values() if c.updated_at >= since]
        return sorted(chosen, key=lambda c: c.updated_at)

    def snapshot(self) -> list[SimulatedCustomer]:
        """Every customer as the service holds it now."""
        return self.changed_since(datetime.min)

    def change(self, count: int) -> list[str]:
        """Apply `count` realistic changes (points, promotions added and removed, redemptions,
        consents, stamps, new members) and stamp each changed customer with the clock's now."""
        changed: list[str] = []
        with self.lock:
            rng = self.generator.rng
            now = self.clock().replace(microsecond=0)
            for _ in range(count):
                if rng.random() < 0.1:
                    customer = self.generator.customer(now)
                    self.customers[customer.data["id"]] = customer
                else:
                    customer = self.customers[rng.choice(sorted(self.customers))]
                    self.change_one(customer, now)
                customer.updated_at = max(now, customer.updated_at + timedelta(seconds=1))
                changed.append(customer.data["id"])
        return changed

    def change_every(self) -> None:
        """Apply one realistic change to every customer (a benchmark's "N changed customers")."""
        with self.lock:
            now = self.clock().replace(microsecond=0)
            for customer in self.customers.values():
                self.change_one(customer, now)
                customer.updated_at = max(now, customer.updated_at + timedelta(seconds=1))

    def change_one(self, customer: SimulatedCustomer, now: datetime) -> None:
        self.generator.rng.choice(CHANGES)(self.generator, customer.data, now)


def _earn_points(generator: CustomerGenerator, data: dict[str, Any], now: datetime) -> None:
    loyalty = data["loyalty"]
    generator.set_points(
        data,
        active=loyalty["pointsActive"] + generator.rng.randrange(10, 300),
        pending=generator.rng.randrange(0, 200),
        expired=loyalty["pointsExpired"],
    )


def _add_promotion(generator: CustomerGenerator, data: dict[str, Any], now: datetime) -> None:
    data["promotions"].append(generator.promotion(now))


def _remove_promotion(generator: CustomerGenerator, data: dict[str, Any], now: datetime) -> None:
    if data["promotions"]:
        data["promotions"].pop(generator.rng.randrange(len(data["promotions"])))


def _redeem(generator: CustomerGenerator, data: dict[str, Any], now: datetime) -> None:
    rng = generator.rng
    candidates = [p for p in data["promotions"] if p["redemptionCount"] < p["redemptionLimit"]]
    if not candidates:
        _add_promotion(generator, data, now)
        return
    generator.redeem(rng.choice(candidates), now)


def _change_consents(generator: CustomerGenerator, data: dict[str, Any], now: datetime) -> None:
    consents = data["consents"]
    consents["acceptsEmail"] = not consents["acceptsEmail"]
    consents["acceptsSms"] = generator.rng.random() < 0.5
    for consent in consents["extendedConsents"]:
        consent["value"] = not consent["value"]
        consent["consentDate"] = now.strftime(META_FORMAT)


def _stamp(generator: CustomerGenerator, data: dict[str, Any], now: datetime) -> None:
    cards = data["loyalty"]["loyaltyCards"]
    if not cards:
        cards.append(generator.stamp_card(0))
        return
    card = generator.rng.choice(cards)
    if card["count"] < card["total"]:
        card["count"] += 1
    else:  # a completed card is replaced by a fresh one
        cards.remove(card)
        cards.append(generator.stamp_card(len(cards)))


CHANGES = (_earn_points, _add_promotion, _remove_promotion, _redeem, _change_consents, _stamp)
