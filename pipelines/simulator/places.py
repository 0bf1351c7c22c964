"""Where the simulated members live: real Norwegian towns, weighted roughly by population.

A retail club's members cluster in the cities, so the demo's "members by city" should look like
Norway: Oslo first, then Bergen, Trondheim, Stavanger and a long tail of towns. Each town carries a
few of its real postcodes (the post office's own place name for each is the town's), as text: a
postcode's leading zero is part of it. Populations are rounded municipality figures; only their
proportions matter.
"""

from __future__ import annotations

import random
from bisect import bisect
from dataclasses import dataclass
from itertools import accumulate
from typing import Final


@dataclass(frozen=True)
class Town:
    name: str
    population: int
    postcodes: tuple[str, ...]


def _town(name: str, population: int, postcodes: str) -> Town:
    return Town(name, population, tuple(postcodes.split()))


TOWNS: Final = (
    _town(
        "Oslo",
        717_000,
        "0150 0152 0157 0160 0170 0182 0250 0255 0264 0350 0358 0366 0450 0460 0473 0484"
        " 0552 0560 0570 0580 0655 0670 0680 0750 0765 0775 0855 0870 0950 0970 0985"
        " 1055 1065 1086 1155 1170 1187 1255 1270 1285",
    ),
    _town("Bergen", 291_000, "5003 5006 5009 5011 5014 5017 5020 5031 5035 5042 5052 5058 5072"),
    _town("Trondheim", 214_000, "7010 7012 7014 7018 7020 7024 7030 7034 7040 7044 7048 7052"),
    _town("Stavanger", 148_000, "4005 4008 4010 4012 4014 4016 4020 4024 4028 4031 4035"),
    _town("Sandvika", 131_000, "1300 1337 1338"),
    _town("Kristiansand", 117_000, "4608 4610 4612 4614 4616 4620 4624 4630 4634 4638"),
    _town("Drammen", 103_000, "3012 3015 3018 3021 3024 3028 3032 3036 3040 3044 3048"),
    _town("Asker", 97_000, "1371 1372 1373 1383 1384 1385 1386 1387"),
    _town("Lillestrøm", 93_000, "2000 2004 2012 2028"),
    _town("Fredrikstad", 85_000, "1605 1606 1607 1608 1609 1610 1612 1614 1616 1618"),
    _town("Sandnes", 83_000, "4306 4307 4308 4312 4314 4316 4318 4320 4322 4325 4328"),
    _town("Tromsø", 78_000, "9006 9007 9008 9009 9010 9011 9012 9013 9014 9015 9016 9018"),
    _town("Ålesund", 68_000, "6002 6003 6004 6005 6008 6009 6010 6012 6014 6016 6018 6020"),
    _town("Sandefjord", 65_000, "3208 3209 3210 3212 3214 3216 3218 3220 3222 3224 3226"),
    _town("Ski", 62_000, "1400 1406 1423 1424 1425"),
    _town("Sarpsborg", 59_000, "1706 1707 1708 1709 1710 1711 1721 1723 1725 1727"),
    _town("Tønsberg", 58_000, "3110 3111 3112 3114 3115 3116 3117 3118 3122 3124 3126"),
    _town("Skien", 56_000, "3710 3711 3712 3714 3716 3718 3720 3722 3724 3728 3732 3736"),
    _town("Bodø", 53_000, "8003 8004 8005 8006 8007 8008 8009 8010 8012 8014 8016 8020"),
    _town("Moss", 51_000, "1511 1512 1513 1514 1515 1516 1517 1518 1520 1523 1526 1530"),
    _town("Lørenskog", 49_000, "1470 1471 1473 1474 1478"),
    _town("Larvik", 48_000, "3256 3257 3258 3259 3260 3262 3264 3267 3269 3271"),
    _town("Arendal", 46_000, "4836 4838 4839 4841 4842 4843 4844 4846 4847 4848"),
    _town("Jessheim", 42_000, "2050 2051 2052 2053 2066 2067 2068 2069"),
    _town("Haugesund", 38_000, "5511 5512 5514 5515 5516 5518 5521 5523 5525 5528 5531 5535"),
    _town("Porsgrunn", 37_000, "3910 3911 3912 3913 3914 3915 3916 3917 3918 3920 3922"),
    _town("Hamar", 32_000, "2315 2316 2317 2318 2319 2321 2325 2326"),
    _town("Molde", 32_000, "6411 6412 6413 6414 6415 6416 6419 6421"),
    _town("Halden", 31_000, "1763 1764 1765 1766 1767 1768 1769 1771 1772 1776 1778"),
    _town("Hønefoss", 31_000, "3510 3511 3512 3513 3514 3515 3516 3517 3518 3519"),
    _town("Gjøvik", 31_000, "2815 2816 2817 2818 2819 2821 2825"),
    _town("Lillehammer", 29_000, "2609 2611 2613 2614 2615 2617 2618 2619"),
    _town("Kongsberg", 28_000, "3610 3611 3612 3613 3614 3615 3616 3617"),
    _town("Horten", 28_000, "3181 3182 3183 3186 3187 3188 3189"),
    _town("Mo i Rana", 26_000, "8610 8611 8613 8614 8616 8618 8622 8624"),
    _town("Harstad", 25_000, "9403 9404 9405 9406 9407 9408 9409 9411 9414 9415"),
    _town("Kristiansund", 24_000, "6508 6509 6510 6511 6512 6514 6515 6516 6517 6518"),
    _town("Steinkjer", 24_000, "7711 7712 7713 7714 7715 7716 7717 7718 7724 7725"),
    _town("Grimstad", 24_000, "4876 4877 4878 4879"),
    _town("Førde", 22_000, "6800 6803 6804 6805 6807 6808 6809 6810"),
    _town("Alta", 21_000, "9506 9507 9508 9509 9510 9511 9512 9513 9514 9515"),
    _town("Narvik", 21_000, "8505 8506 8507 8508 8509 8510 8512 8514 8515 8516"),
    _town("Elverum", 21_000, "2406 2407 2408 2409 2411 2413 2414 2417 2418"),
    _town("Stord", 19_000, "5411 5412 5414 5415 5416"),
    _town("Bryne", 19_000, "4340 4344 4345 4346 4349"),
    _town("Kongsvinger", 18_000, "2211 2212 2213 2214 2225 2226"),
    _town("Egersund", 15_000, "4370 4371 4372 4373 4374 4379"),
    _town("Hammerfest", 11_000, "9600 9601 9602 9603"),
)
"""Towns, largest first."""

_CUMULATIVE_POPULATION: Final = tuple(accumulate(town.population for town in TOWNS))
_GOLDEN_STEP: Final = (5**0.5 - 1) / 2
"""The golden ratio's fraction: stepping by it fills [0, 1) as evenly as any sequence can."""


class TownDraws:
    """Towns in proportion to their population, even in a club of a few hundred members.

    Independent random draws rank a small club's towns by luck (Tromsø ahead of Trondheim in
    300 members); a golden-ratio (Weyl) sequence from a seeded start gives each town its share
    within a member or two at any size, at the cost of one addition per draw."""

    def __init__(self, rng: random.Random) -> None:
        self.position = rng.random()

    def address(self, rng: random.Random) -> tuple[str, str]:
        """`(postcode, town name)`: the next member's town and one of its real postcodes."""
        self.position = (self.position + _GOLDEN_STEP) % 1.0
        town = TOWNS[bisect(_CUMULATIVE_POPULATION, self.position * _CUMULATIVE_POPULATION[-1])]
        return rng.choice(town.postcodes), town.name
