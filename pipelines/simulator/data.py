"""Deterministic, realistic Trigg customers and a change model that moves them forward in time.

Data follows the endpoint's spec field by field, including the spec's own type drift (a `zip`
sent as a number, a stamp-card id as a string, a channel value or product id as a number), so the
pipeline meets what the real API may send. Everything derives from one seed.
"""

from __future__ import annotations

import copy
import random
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from faker import Faker

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
    """Builds customers from a seed: pools of Norwegian names and places from Faker, then cheap
    random choices, so that a hundred thousand customers take seconds, not minutes."""

    def __init__(self, seed: int, zone: ZoneInfo) -> None:
        self.zone = zone
        self.rng = random.Random(seed)
        fake = Faker("no_NO")
        fake.seed_instance(seed)
        self.first_names = [fake.first_name() for _ in range(300)]
        self.last_names = [fake.last_name() for _ in range(300)]
        self.streets = [fake.street_address() for _ in range(300)]
        self.places = [(fake.postcode(), fake.city()) for _ in range(120)]
        self.mail_domains = ("gmail.com", "hotmail.com", "online.no", "outlook.com", "icloud.com")

    def utc(self, wall: datetime) -> str:
        """A naive wall-clock time of the API's zone, written as the API writes UTC: with `Z`."""
        instant = wall.replace(tzinfo=self.zone).astimezone(UTC)
        return instant.strftime("%Y-%m-%dT%H:%M:%S.000Z")

    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4)).upper()

    def customer(self, now: datetime) -> SimulatedCustomer:
        rng = self.rng
        first, last = rng.choice(self.first_names), rng.choice(self.last_names)
        postcode, city = rng.choice(self.places)
        birth = datetime(1940, 1, 1) + timedelta(days=rng.randrange(0, 365 * 66))
        created = now - timedelta(days=rng.randrange(30, 2000), seconds=rng.randrange(86400))
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
            "birthDate": birth.strftime("%Y-%m-%dT00:00:00"),
            "gender": rng.choice(("Female", "Male", "Female", "Male", "Unknown")),
            "favoriteStores": rng.sample(STORES, rng.randint(1, 3)),
            "interests": rng.sample(INTERESTS, rng.randint(0, 3)),
            "loyalty": {"loyaltyCards": [self.stamp_card(i) for i in range(rng.randint(1, 3))]},
            "promotions": [self.promotion(now) for _ in range(rng.randint(2, 5))],
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
        self.set_points(data, active=rng.randrange(0, 3000), pending=rng.randrange(0, 500))
        updated = now - timedelta(seconds=rng.randrange(60, 20 * 3600))
        return SimulatedCustomer(
            data, created.replace(microsecond=0), updated.replace(microsecond=0)
        )

    def set_points(self, data: dict[str, Any], active: int, pending: int) -> None:
        """Keep the spec's identities: points = active + pending = total - expired."""
        expired = self.rng.randrange(0, 400)
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

    def promotion(self, now: datetime) -> dict[str, Any]:
        rng = self.rng
        name, value_type, value = rng.choice(PROMOTIONS)
        valid_from = now - timedelta(days=rng.randrange(0, 60))
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
            "validTo": self.utc(valid_from + timedelta(days=90)),
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
        for _ in range(rng.choice((0, 0, 0, 1, 1, 2))):
            if promotion["redemptionCount"] < limit:
                redeemed_at = valid_from + timedelta(hours=rng.randrange(1, 24 * 30))
                self.redeem(promotion, min(redeemed_at, now))
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

    def change(self, count: int, at: datetime | None = None) -> list[str]:
        """Apply `count` realistic changes (points, promotions added and removed, redemptions,
        consents, stamps, new members) and stamp each changed customer with the clock's now, or
        with `at` (a change published late, or a clock gone wrong). A customer's stamps only
        ever grow: one already stamped later gets its last stamp plus a second."""
        changed: list[str] = []
        with self.lock:
            rng = self.generator.rng
            now = self.clock().replace(microsecond=0)
            stamp = now if at is None else at.replace(microsecond=0)
            for _ in range(count):
                if rng.random() < 0.1:
                    customer = self.generator.customer(now)
                    self.customers[customer.data["id"]] = customer
                else:
                    customer = self.customers[rng.choice(sorted(self.customers))]
                    self.change_one(customer, now)
                customer.updated_at = max(stamp, customer.updated_at + timedelta(seconds=1))
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
