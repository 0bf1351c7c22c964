"""Every setting of the Trigg source, its default, and the names it is known by.

Values are resolved the dlt way (env vars, `.dlt/config.toml`, `.dlt/secrets.toml`) under
`sources.trigg.*`; the defaults live here and nowhere else.
"""

from __future__ import annotations

from typing import Final
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from dlt.common.configuration import configspec
from dlt.common.configuration.exceptions import ConfigFieldMissingException
from dlt.common.configuration.resolve import resolve_configuration
from dlt.common.configuration.specs import BaseConfiguration
from dlt.common.typing import TSecretStrValue

from pipelines.trigg.errors import ConfigError
from pipelines.trigg.privacy import Privacy

SOURCE_NAME: Final = "trigg"
PIPELINE_NAME: Final = "trigg_customers"
DATASET_NAME: Final = "trigg"
RESOURCE_NAME: Final = "customers"

PRODUCTION_BASE_URL: Final = "https://api.oculos.no/v4"
STAGING_BASE_URL: Final = "https://api.staging.oculos.no/v4"
CHANGED_CUSTOMERS_PATH: Final = "/customers/changed/{since}"
API_KEY_HEADER: Final = "x-api-key"

DEFAULT_TIMEZONE: Final = "Europe/Oslo"
DEFAULT_LOOKBACK_MINUTES: Final = 10
DEFAULT_INITIAL_SINCE_DAYS: Final = 1
"""With no `initial_since`, a first run asks for one day back: the API's own default."""
WHOLE_BASE_SINCE: Final = "20000101T0000"
"""A since before any Trigg data can exist: asking from it returns the whole customer base."""
DEFAULT_REQUEST_TIMEOUT_SECONDS: Final = 300.0
DEFAULT_MAX_ATTEMPTS: Final = 5
DEFAULT_BACKOFF_SECONDS: Final = 1.0
DEFAULT_MAX_RETRY_WAIT_SECONDS: Final = 300.0
DEFAULT_LOCK_TIMEOUT_SECONDS: Final = 60.0
DEFAULT_DUCKDB_FILE: Final = "trigg.duckdb"
DEFAULT_PII: Final = "keep"


def env_var(key: str) -> str:
    """The environment variable dlt reads for `sources.trigg.<key>`."""
    return f"SOURCES__{SOURCE_NAME.upper()}__{key.upper()}"


@configspec
class TriggSettings(BaseConfiguration):
    """The `sources.trigg` section of the configuration."""

    base_url: str = None
    api_key: TSecretStrValue = None
    timezone: str = DEFAULT_TIMEZONE
    lookback_minutes: int = DEFAULT_LOOKBACK_MINUTES
    initial_since: str | None = None
    request_timeout_seconds: float = DEFAULT_REQUEST_TIMEOUT_SECONDS
    max_attempts: int = DEFAULT_MAX_ATTEMPTS
    """Requests per run, the first included, before a temporary failure fails the run."""
    backoff_seconds: float = DEFAULT_BACKOFF_SECONDS
    """The first wait between attempts; it doubles each time, with jitter."""
    max_retry_wait_seconds: float = DEFAULT_MAX_RETRY_WAIT_SECONDS
    """The most a run spends waiting between attempts, `Retry-After` included."""
    allow_insecure_http: bool = False
    """Allow a plain http:// base URL for a host that is not loopback (the key travels in clear)."""
    lock_timeout_seconds: float = DEFAULT_LOCK_TIMEOUT_SECONDS
    """How long a run waits for a DuckDB file another process holds open."""
    pii: str = DEFAULT_PII
    """keep, pseudonymize or drop: what happens to members' personal data (see privacy.py)."""
    pii_key: TSecretStrValue | None = None
    """The secret HMAC key of pii = pseudonymize; the same key keeps pseudonyms joinable."""
    fast_path: bool = True
    """Flatten responses with DuckDB into Arrow tables; false: always through dlt's normalizer."""

    def source_arguments(self) -> dict[str, object]:
        """The arguments of `trigg_source()` these settings stand for."""
        return {name: getattr(self, name) for name in SOURCE_ARGUMENTS}


SOURCE_ARGUMENTS: Final = (
    "base_url",
    "api_key",
    "timezone",
    "lookback_minutes",
    "initial_since",
    "request_timeout_seconds",
    "max_attempts",
    "backoff_seconds",
    "max_retry_wait_seconds",
    "allow_insecure_http",
    "pii",
    "pii_key",
    "fast_path",
)


def load_settings() -> TriggSettings:
    """Resolve `sources.trigg.*`; a missing required key names the env var to set."""
    try:
        settings = resolve_configuration(TriggSettings(), sections=("sources", SOURCE_NAME))
    except ConfigFieldMissingException as missing:
        fields = ", ".join(env_var(field) for field in missing.fields)
        raise ConfigError(
            f"missing configuration: set {fields} (or sources.{SOURCE_NAME}.* in .dlt/)"
        ) from None
    validate_settings(settings)
    return settings


def validate_settings(settings: TriggSettings) -> None:
    """Reject values that would only fail later, less clearly."""
    url = urlsplit(settings.base_url)
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ConfigError(
            f"{env_var('base_url')} must be an http(s) URL such as {PRODUCTION_BASE_URL}"
        )

    try:
        ZoneInfo(settings.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"{env_var('timezone')}={settings.timezone!r} is not a known time zone;"
            f" use an IANA name such as {DEFAULT_TIMEZONE}"
        ) from None
    if settings.lookback_minutes < 0:
        raise ConfigError(f"{env_var('lookback_minutes')} must be zero or more minutes")
    if settings.max_attempts < 1:
        raise ConfigError(f"{env_var('max_attempts')} must be 1 or more")
    Privacy(settings.pii, settings.pii_key)  # an unknown mode or a missing key fails here
