"""What the senders share: timeouts, Retry-After, JSON bodies, transport failures, redaction."""

from __future__ import annotations

import email.utils
import math
import re
from datetime import UTC, datetime
from typing import Any

import requests

from bots.base import SendResult

TIMEOUT = (3.05, 10)
"""(connect, read) seconds for every provider call."""

MAX_RETRY_AFTER = 24 * 3600.0

_NUMBER = re.compile(r"\+?[0-9][0-9 ().-]{4,}[0-9]")

_TRANSIENT = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


def retry_after(value: object) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or HTTP date); None when absent or unusable."""
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        seconds = _seconds_until(text)
        if seconds is None:
            return None
    if not math.isfinite(seconds):
        return None
    return max(0.0, min(seconds, MAX_RETRY_AFTER))


def _seconds_until(http_date: str) -> float | None:
    try:
        when = email.utils.parsedate_to_datetime(http_date)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - datetime.now(UTC)).total_seconds()


def json_object(response: requests.Response) -> dict[str, Any]:
    """The response body as a JSON object, or {} when it is anything else."""
    try:
        data = response.json()
    except ValueError:
        return {}
    return data if isinstance(data, dict) else {}


def transport_failure(exc: Exception, *secrets: str | None) -> SendResult:
    """A SendResult for an exception raised while talking to a provider; network trouble is retried."""
    retry = isinstance(exc, _TRANSIENT)
    return SendResult(ok=False, retry=retry, error_code="connection" if retry else "request",
                      error=redact(f"{type(exc).__name__}: {exc}", *secrets))


def redact(text: str, *secrets: str | None) -> str:
    """The text without the secrets (tokens in URLs), cut to a storable length."""
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text[:500]


def provider_error(text: str, *secrets: str | None) -> str:
    """A provider's error message without secrets or phone numbers (Twilio repeats the 'To' number)."""
    return _NUMBER.sub("[number]", redact(text, *secrets))
