"""Personal data of club members, handled before anything reaches the destination.

`keep` loads what the API sends. `pseudonymize` replaces e-mail, mobile phone and names with a
keyed HMAC-SHA256 of their normalised form (e-mails lower-cased and trimmed, phone numbers in
E.164), so the same person joins across runs and tables without being readable; birth dates
become birth years and street addresses are dropped. `drop` removes all of them (the birth year
stays, for age bands). Free-form properties are scrubbed too: any string in them that looks like
an e-mail address or a phone number is treated the same way, at any depth, and so is the raw
record kept in the quarantine.

The fast path does the same in SQL (`SqlPrivacy`): the same normalisation, and the HMAC built from
DuckDB's `sha256`. Where SQL could differ from Python (a non-ASCII e-mail or phone number, free-form
properties that may hold an e-mail or a phone number) it leaves the record to `Privacy.apply`.
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

WHITESPACE: Final = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005"
    "\u2006\u2007\u2008\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
"""What `str.strip()` strips: every character `str.isspace()` holds true for."""
LOWERED_OTHERWISE: Final = "[\u0130\u03a3]"
"""The characters DuckDB's `lower` maps unlike `str.lower()` (a test compares every one)."""
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


HMAC_BLOCK_BYTES: Final = 64
"""SHA-256's block size: HMAC pads (or first hashes) its key to it."""
IPAD_VARIABLE, OPAD_VARIABLE = "trigg_pii_ipad", "trigg_pii_opad"
"""DuckDB session variables holding the key's inner and outer pads: set as parameters, so the key
never appears in SQL text (or in an error message quoting it)."""


def hmac_pads(key: str) -> tuple[bytes, bytes]:
    """HMAC's inner and outer key pads (RFC 2104) for `key`, as `hmac.new` derives them."""
    raw = key.encode()
    if len(raw) > HMAC_BLOCK_BYTES:
        raw = hashlib.sha256(raw).digest()
    raw = raw.ljust(HMAC_BLOCK_BYTES, b"\0")
    return bytes(b ^ 0x36 for b in raw), bytes(b ^ 0x5C for b in raw)


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class SqlPrivacy:
    """`Privacy` as DuckDB SQL over text values, for the fast path's flattened columns.

    `value(field, v)` is what `Privacy.apply` makes of the text `v` of `field` (one of
    `IDENTIFYING`); `needs_python(field, v)` is true where the SQL might differ from it."""

    privacy: Privacy

    def value(self, field: str, text: str) -> str:
        if self.privacy.mode == "drop":
            return "NULL::VARCHAR"
        return self.pseudonym(self.normalized(field, text))

    def normalized(self, field: str, text: str) -> str:
        stripped = f"trim({text}, {_sql_literal(WHITESPACE)})"
        if field == "email":
            return f"lower({stripped})"
        if field == "mobilePhone":
            digits = f"regexp_replace({text}, '[^0-9]', '', 'g')"
            return (
                f"CASE WHEN starts_with({stripped}, '+') THEN '+' || {digits}"
                f" WHEN starts_with({digits}, '00') THEN '+' || substr({digits}, 3)"
                f" WHEN length({digits}) = 8 THEN '+{DEFAULT_COUNTRY_CODE}' || {digits}"
                f" ELSE '+' || {digits} END"
            )
        return stripped  # names: trimmed only

    def needs_python(self, field: str, text: str) -> str:
        """Where SQL might not match Python: e-mails holding one of the two characters DuckDB's
        `lower` maps otherwise (`İ`, and `Σ`, which Python lowers by its place in the word), and
        phone numbers holding digits other than ASCII's (Python's `\\D` knows them all)."""
        if self.privacy.mode == "drop" or field not in ("email", "mobilePhone"):
            return "false"
        if field == "email":
            return f"regexp_matches({text}, {_sql_literal(LOWERED_OTHERWISE)})"
        return f"regexp_matches(regexp_replace({text}, '[0-9]', '', 'g'), '\\p{{Nd}}')"

    @staticmethod
    def pseudonym(normalized: str) -> str:
        inner = f"sha256(getvariable('{IPAD_VARIABLE}') || encode({normalized}))"
        return f"sha256(getvariable('{OPAD_VARIABLE}') || unhex({inner}))"

    @staticmethod
    def birth_year(text: str) -> str:
        """`_year` of a text: its first four digits."""
        starts = f"regexp_matches({text}, '^[0-9]{{4}}')"
        return f"CASE WHEN {starts} THEN CAST(left({text}, 4) AS BIGINT) END"

    @staticmethod
    def birth_year_needs_python(text: str) -> str:
        """Texts `_year` might read otherwise: not starting with four ASCII digits, nor with a
        printable ASCII character that is no digit (leading spaces, Unicode digits, ...)."""
        return (
            f"NOT (regexp_matches({text}, '^[0-9]{{4}}') OR regexp_matches({text}, '^[!-/:-~]')"
            f" OR {text} = '')"
        )

    @staticmethod
    def may_need_scrubbing(json_text: str) -> str:
        """Free-form JSON that may hold a string `_scrub` replaces: an `@` anywhere, or eight
        digits (Unicode's included) without a quote between them. A superset: such records take
        the Python way."""
        return (
            f"(contains({json_text}, '@')"
            f" OR regexp_matches({json_text}, '\\p{{Nd}}(?:[^\"]*\\p{{Nd}}){{7}}'))"
        )
