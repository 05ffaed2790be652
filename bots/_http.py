"""What the senders share: timeouts, Retry-After, JSON bodies, transport failures, redaction."""

from __future__ import annotations

import base64
import email.utils
import http.client
import json as stdjson
import math
import os
import re
import select
import socket
import ssl
import threading
import urllib.request
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlencode, urlsplit

import certifi
import orjson
import requests

from bots.base import SendResult

Http = Any
"""What senders post through: a `requests.Session`, or a `Client` (below)."""

TIMEOUT = (3.05, 10)
"""(connect, read) seconds for every provider call."""

MAX_RETRY_AFTER = 24 * 3600.0

_NUMBER = re.compile(r"\+?[0-9][0-9 ().-]{4,}[0-9]")

_TRANSIENT = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)


class PerThread:
    """One keep-alive HTTP client per thread (`make()` on a thread's first call), for senders run in a pool."""

    def __init__(self, make: Callable[[], Http]) -> None:
        self._make = make
        self._local = threading.local()

    def __call__(self) -> Http:
        client = getattr(self._local, "client", None)
        if client is None:
            client = self._local.client = self._make()
        return client


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


class Response:
    """What the senders read of an HTTP response: the part of `requests.Response` they use."""

    def __init__(self, status_code: int, headers: http.client.HTTPMessage, content: bytes):
        self.status_code = status_code
        self.headers = headers
        """Case-insensitive, as requests' are."""
        self.content = content

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", "replace")

    def json(self) -> Any:
        """The body as JSON; ValueError when it is not."""
        return orjson.loads(self.content)


class Client:
    """A lean HTTP/1.1 client for provider calls, one per thread: `post` as the senders call it on a
    `requests.Session`, over one kept-alive connection per host, at about a third of requests' CPU per call.

    Failures raise requests' exceptions (`ConnectTimeout`, `ReadTimeout`, `ConnectionError`), so senders
    classify them the same way. A request is never sent twice: a kept connection the server has closed is
    noticed before it is used, and anything failing after sending is reported, not retried. HTTPS is verified
    against the CA bundle requests would use (REQUESTS_CA_BUNDLE, CURL_CA_BUNDLE, else certifi's); a host that
    the environment sends through a proxy is called through requests, which speaks to proxies.
    """

    def __init__(self) -> None:
        self._connections: dict[tuple[str, str, int], http.client.HTTPConnection] = {}
        self._proxied: dict[tuple[str, str], bool] = {}
        self._requests: requests.Session | None = None
        self._tls: ssl.SSLContext | None = None

    def post(
        self,
        url: str,
        data: Iterable[tuple[str, str]] | dict[str, str] | None = None,
        json: Any = None,
        auth: tuple[str, str] | None = None,
        headers: dict[str, str] | None = None,
        timeout: tuple[float, float] | float = TIMEOUT,
    ) -> Response:
        parts = urlsplit(url)
        if self._through_proxy(parts.scheme, parts.hostname or ""):
            self._requests = self._requests or requests.Session()
            return self._requests.post(url, data=data, json=json, auth=auth, headers=headers, timeout=timeout)
        fields = {"Accept-Encoding": "identity", "User-Agent": "retorno", **(headers or {})}
        if json is not None:
            body = stdjson.dumps(json, allow_nan=False).encode()  # written as requests writes it
            fields["Content-Type"] = "application/json"
        else:
            body = urlencode(list(data.items()) if isinstance(data, dict) else list(data or ())).encode()
            fields["Content-Type"] = "application/x-www-form-urlencoded"
        if auth is not None:
            fields["Authorization"] = "Basic " + base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        connect, read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
        connection = self._connection(parts.scheme, parts.hostname or "", parts.port, connect)
        try:
            connection.sock.settimeout(read)
            connection.request("POST", path, body=body, headers=fields)
            answer = connection.getresponse()
            content = answer.read()
        except TimeoutError as error:
            self._drop(connection)
            raise requests.ReadTimeout(f"Read timed out. (read timeout={read})") from error
        except (OSError, http.client.HTTPException) as error:
            self._drop(connection)
            raise requests.ConnectionError(f"{type(error).__name__}: {error}") from error
        if answer.will_close:
            self._drop(connection)
        return Response(answer.status, answer.headers, content)

    def close(self) -> None:
        for connection in list(self._connections.values()):
            self._drop(connection)

    def _connection(self, scheme: str, host: str, port: int | None, timeout: float) -> http.client.HTTPConnection:
        if scheme not in ("http", "https"):
            raise requests.exceptions.InvalidSchema(f"no connection for {scheme!r} URLs")
        key = (scheme, host, port or (443 if scheme == "https" else 80))
        connection = self._connections.get(key)
        if connection is not None and connection.sock is not None and not _closed(connection.sock):
            return connection
        if connection is not None:
            self._drop(connection)
        if scheme == "https":
            connection = http.client.HTTPSConnection(host, key[2], timeout=timeout, context=self._tls_context())
        else:
            connection = http.client.HTTPConnection(host, key[2], timeout=timeout)
        try:
            connection.connect()
        except TimeoutError as error:
            raise requests.ConnectTimeout(f"Connection to {host} timed out. (connect timeout={timeout})") from error
        except OSError as error:
            raise requests.ConnectionError(f"{type(error).__name__}: {error}") from error
        connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self._connections[key] = connection
        return connection

    def _through_proxy(self, scheme: str, host: str) -> bool:
        key = (scheme, host)
        if key not in self._proxied:
            proxies = urllib.request.getproxies()
            proxied = bool(proxies.get(scheme) or proxies.get("all"))
            self._proxied[key] = proxied and not urllib.request.proxy_bypass(host)
        return self._proxied[key]

    def _tls_context(self) -> ssl.SSLContext:
        if self._tls is None:
            bundle = os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where()
            self._tls = ssl.create_default_context(cafile=bundle)
        return self._tls

    def _drop(self, connection: http.client.HTTPConnection) -> None:
        connection.close()
        for key, kept in list(self._connections.items()):
            if kept is connection:
                del self._connections[key]


def _closed(sock: socket.socket) -> bool:
    """An idle kept-alive connection that is readable has been closed (or broken) by the server."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)
