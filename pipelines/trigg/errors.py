"""The errors a run can end with. Each message is one plain sentence for the operator.

Messages quote what failed, and some libraries quote their connection strings: a secret that
reaches one (a DuckLake catalog's password, which DuckDB echoes when it cannot connect) is
registered with `keep_secret` and masked by `redacted` wherever a message leaves the process.
"""

from __future__ import annotations

from urllib.parse import quote

_SECRETS: set[str] = set()


def keep_secret(value: str | None) -> None:
    """Mask `value` in every message `redacted` passes on (as given and URL-encoded)."""
    if value:
        _SECRETS.update({value, quote(value, safe="")})


def redacted(text: str) -> str:
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


class TriggError(Exception):
    """Base class: the run failed for a reason the operator can act on."""

    exit_code = 1


class ConfigError(TriggError):
    """A setting is missing or unusable."""


class ApiError(TriggError):
    """The API refused the request or answered something unusable."""


class TemporaryApiError(ApiError):
    """A failure worth another attempt: 429, 5xx, a lost connection, a body cut off."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ResponseShapeError(ApiError):
    """The API answered 200 with a body that is not a customers feed."""


class QuarantineError(TriggError):
    """Records could not be loaded and `--strict` makes that a failure."""


class RunInProgress(TriggError):
    """Another run holds this warehouse: not a failure of this run, so it exits distinctly."""

    exit_code = 75  # EX_TEMPFAIL: schedulers read it as "try again later"
