"""The HTTP client of the Trigg Integrations API: one endpoint, one key, clear errors."""

from __future__ import annotations

import json
from typing import Any

import requests

from pipelines.trigg.errors import ApiError, ResponseShapeError
from pipelines.trigg.settings import API_KEY_HEADER, CHANGED_CUSTOMERS_PATH, env_var


class TriggClient:
    """Fetches changed customers. The key travels only in the `x-api-key` header."""

    def __init__(self, base_url: str, api_key: str, timeout_seconds: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout_seconds = timeout_seconds
        self.session = requests.Session()
        self.session.headers.update({API_KEY_HEADER: api_key, "Accept": "application/json"})

    def changed_customers_url(self, since: str) -> str:
        return self.base_url + CHANGED_CUSTOMERS_PATH.format(since=since)

    def changed_customers(self, since: str) -> Any:
        """GET `/customers/changed/{since}` and return the decoded JSON body."""
        url = self.changed_customers_url(since)
        try:
            response = self.session.get(url, timeout=self.timeout_seconds)
        except requests.RequestException as failure:
            raise ApiError(
                f"could not reach the API at {self.base_url} ({type(failure).__name__});"
                " check SOURCES__TRIGG__BASE_URL and the network"
            ) from None
        if response.status_code != 200:
            raise ApiError(describe_failure(response.status_code, response.content, since))
        try:
            return response.json()
        except ValueError:
            raise ResponseShapeError(
                "the API answered 200 with a body that is not JSON"
                f" ({_content_type(response)}); nothing was loaded"
            ) from None


def describe_failure(status: int, body: bytes, since: str) -> str:
    """One sentence for a non-200 answer, quoting the API's own error body where it has one."""
    detail = api_error_message(body)
    suffix = f": {detail}" if detail else ""
    if status in (401, 403):
        return f"the API key was rejected (HTTP {status}): check {env_var('api_key')}"
    if status == 400:
        return f"the API rejected the since {since!r} (HTTP 400){suffix}"
    return f"the API answered HTTP {status}{suffix}"


def api_error_message(body: bytes) -> str:
    """Read the API's error body `{code, message, detailedErrorMessage}` into one line."""
    try:
        error = json.loads(body)
    except ValueError:
        return ""
    if not isinstance(error, dict):
        return ""
    parts = [str(error["message"])] if error.get("message") else []
    detail = error.get("detailedErrorMessage")
    if isinstance(detail, list):
        parts.extend(str(item) for item in detail if item)
    elif detail:
        parts.append(str(detail))
    return "; ".join(parts)


def _content_type(response: requests.Response) -> str:
    return response.headers.get("Content-Type") or "no content type"
