"""The HTTP layer under `cairn.Client`: one `requests` session, JSON in and out, error answers
turned into typed exceptions, and retries with exponential back-off on 408, 429, 5xx and
connection failures, honouring `Retry-After`.

Retrying writes is safe here because every native write is idempotent: registering a lineage
node, slice or edge again with the same content is a no-op on the server.
"""

from __future__ import annotations

import email.utils
import random
import time
from typing import Any, Callable

import requests

from cairn._config import Settings
from cairn._exceptions import APIError, CairnError, ConnectionFailed, error_for_status

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Back-off: 0.25 s, 0.5 s, 1 s, … capped, with jitter so many clients do not retry in step.
BASE_DELAY = 0.25
MAX_DELAY = 8.0


def retry_after(value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait from a `Retry-After` header (delta seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def backoff(attempt: int) -> float:
    """The delay before retry number `attempt` (0-based) when the server did not say."""
    delay: float = min(MAX_DELAY, BASE_DELAY * (2**attempt))
    return delay * (0.5 + random.random() / 2)


class Transport:
    """Sends requests to one server."""

    def __init__(self, settings: Settings, sleep: Callable[[float], None] = time.sleep) -> None:
        self.settings = settings
        self._sleep = sleep
        self.session = requests.Session()
        self.session.verify = settings.verify_tls
        if settings.token:
            self.session.headers["Authorization"] = f"Bearer {settings.token}"
        elif settings.username and settings.password:
            self.session.auth = (settings.username, settings.password)

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: dict[str, Any] | None = None,
        retries: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        """Sends one request and returns its decoded JSON body (or text, for non-JSON answers)."""
        url = self.settings.url + path
        max_retries = self.settings.max_retries if retries is None else retries
        attempt = 0
        while True:
            try:
                response = self.session.request(
                    method, url, json=json, params=params, headers=headers, timeout=self.settings.timeout
                )
            except requests.RequestException as e:
                if attempt >= max_retries:
                    raise ConnectionFailed(f"{method} {url}: {e}") from e
                self._sleep(backoff(attempt))
                attempt += 1
                continue
            if retryable(response) and attempt < max_retries:
                wait = retry_after(response.headers.get("Retry-After"))
                self._sleep(min(MAX_DELAY * 4, wait) if wait is not None else backoff(attempt))
                attempt += 1
                continue
            return _decode(method, url, response)

    def close(self) -> None:
        self.session.close()


def retryable(response: requests.Response) -> bool:
    """Whether an answer is worth sending again: a transient status, or a 409 the server marks
    with `Retry-After` (a request with the same Idempotency-Key still in progress)."""
    if response.status_code in RETRY_STATUSES:
        return True
    return response.status_code == 409 and "Retry-After" in response.headers


def in_progress(error: CairnError) -> bool:
    """Whether an error is the server's "another request with this Idempotency-Key is still
    running": nothing is wrong with the write, it only has to be sent again later."""
    return isinstance(error, APIError) and error.status == 409 and error.error_code == "INVALID_STATE"


def _decode(method: str, url: str, response: requests.Response) -> Any:
    is_json = response.headers.get("Content-Type", "").startswith("application/json")
    if response.status_code >= 400:
        code, message = "UNKNOWN", response.text[:500]
        if is_json:
            try:
                body = response.json()
                code = str(body.get("error_code", code))
                message = str(body.get("message", message))
            except ValueError:
                pass
        raise error_for_status(response.status_code, code, message)
    if not is_json:
        return response.text
    try:
        return response.json()
    except ValueError as e:
        raise CairnError(f"{method} {url}: the server sent malformed JSON") from e
