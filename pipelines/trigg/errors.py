"""The errors a run can end with. Each message is one plain sentence for the operator."""

from __future__ import annotations


class TriggError(Exception):
    """Base class: the run failed for a reason the operator can act on."""

    exit_code = 1


class ConfigError(TriggError):
    """A setting is missing or unusable."""


class ApiError(TriggError):
    """The API refused the request or answered something unusable."""


class ResponseShapeError(ApiError):
    """The API answered 200 with a body that is not a customers feed."""
