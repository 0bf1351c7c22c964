"""Personal data of club members, handled before anything reaches the destination.

`keep` loads what the API sends. `pseudonymize` replaces e-mail, mobile phone and names with a
keyed HMAC-SHA256 of their normalised form (e-mails lower-cased and trimmed, phone numbers in
E.164), so the same person joins across runs and tables without being readable; birth dates
become birth years and street addresses are dropped. `drop` removes all of them (the birth year
stays, for age bands). Free-form properties are scrubbed too: any string in them that looks like
an e-mail address or a phone number is treated the same way, at any depth, and so is the raw
record kept in the quarantine.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

from pipelines.trigg.errors import ConfigError

PII_MODES: Final = ("keep", "pseudonymize", "drop")
DEFAULT_COUNTRY_CODE: Final = "47"
"""Phone numbers without a country code are Norwegian: the club's home market."""

IDENTIFYING: Final = ("email", "mobilePhone", "firstName", "lastName")
REMOVED: Final = ("address",)
BIRTH_DATE: Final = "birthDate"
BIRTH_YEAR: Final = "birthYear"
FREE_FORM: Final = "extendedProperties"

_EMAIL = re.compile(r"^\s*[^@\s]+@[^@\s]+\.[^@\s]+\s*$")
_PHONE = re.compile(r"^\s*(\+|00)?[\d\s().-]{8,20}$")


def normalize_email(value: str) -> str:
    return value.strip().lower()


def normalize_phone(value: str) -> str:
    """E.164: `+` and digits only; `00` becomes `+`; 8 digits without a code are Norwegian."""
    digits = re.sub(r"\D", "", value)
    if value.strip().startswith("+"):
        return "+" + digits
    if digits.startswith("00"):
        return "+" + digits[2:]
    if len(digits) == 8:
        return f"+{DEFAULT_COUNTRY_CODE}{digits}"
    return "+" + digits


NORMALIZERS: Final[dict[str, Callable[[str], str]]] = {
    "email": normalize_email,
    "mobilePhone": normalize_phone,
    "firstName": str.strip,
    "lastName": str.strip,
}


@dataclass(frozen=True)
class Privacy:
    mode: str = "keep"
    key: str | None = None

    def __post_init__(self) -> None:
        if self.mode not in PII_MODES:
            raise ConfigError(
                f"SOURCES__TRIGG__PII={self.mode!r} is not one of {', '.join(PII_MODES)}"
            )
        if self.mode == "pseudonymize" and not self.key:
            raise ConfigError("pii = pseudonymize needs a secret key: set SOURCES__TRIGG__PII_KEY")

    def pseudonym(self, normalized: str) -> str:
        assert self.key is not None
        return hmac.new(self.key.encode(), normalized.encode(), hashlib.sha256).hexdigest()

    def apply(self, data: Any) -> Any:
        """A copy of one customer's `data` with its personal data handled; `keep` returns it."""
        if self.mode == "keep" or not isinstance(data, dict):
            return data
        cleaned = {key: value for key, value in data.items() if key not in REMOVED}
        for field in IDENTIFYING:
            if field in cleaned:
                cleaned[field] = self._identifier(cleaned[field], NORMALIZERS[field])
        if BIRTH_DATE in cleaned:
            cleaned[BIRTH_YEAR] = _year(cleaned.pop(BIRTH_DATE))
        if FREE_FORM in cleaned:
            cleaned[FREE_FORM] = self._scrub(cleaned[FREE_FORM])
        loyalty = cleaned.get("loyalty")
        if isinstance(loyalty, dict) and isinstance(loyalty.get("loyaltyCards"), list):
            cards = [
                {**card, FREE_FORM: self._scrub(card[FREE_FORM])}
                if isinstance(card, dict) and FREE_FORM in card
                else card
                for card in loyalty["loyaltyCards"]
            ]
            cleaned["loyalty"] = {**loyalty, "loyaltyCards": cards}
        return cleaned

    def _identifier(self, value: Any, normalize: Callable[[str], str]) -> Any:
        if self.mode == "drop" or value is None:
            return None
        return self.pseudonym(normalize(str(value)))

    def _scrub(self, value: Any) -> Any:
        """Free-form JSON: e-mail addresses and phone numbers anywhere inside are handled."""
        if isinstance(value, dict):
            return {key: self._scrub(item) for key, item in value.items()}
        if isinstance(value, list):
            return [self._scrub(item) for item in value]
        if isinstance(value, str) and _EMAIL.match(value):
            return self._identifier(value, normalize_email)
        if isinstance(value, str) and _PHONE.match(value) and sum(c.isdigit() for c in value) >= 8:
            return self._identifier(value, normalize_phone)
        return value


def _year(value: Any) -> int | None:
    if isinstance(value, str) and re.match(r"^\d{4}", value.strip()):
        return int(value.strip()[:4])
    return None
