"""The web process's access log: one line per request on standard output, never a phone number.

Written by the app itself, so it is the same under granian and gunicorn, and cheap: the line is built with one
format and written with one `os.write` (atomic on a pipe), with no logging record and no lock shared by the web
threads. Granian's own `--access-log` goes through Python logging: about 0.1 ms of web CPU per Twilio webhook on the
2-core box, a fifth of the request's whole cost; this one about 0.03 ms (docs/benchmarks.md). The line is granian's
default:

    [2026-12-05 09:14:03 +0000] 127.0.0.1 - "POST /webhooks/twilio/sms HTTP/1.1" 200 3.215

the last figure the milliseconds until the app answered. Only the method, path and protocol can carry what a
client wrote: they are scrubbed (service.logs.scrub) and the query string, headers and body are never written.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any

from service.logs import scrub

Environ = dict[str, Any]
WsgiApp = Callable[[Environ, Callable[..., Any]], Iterable[bytes]]

MAX_REQUEST_CHARS = 2000
"""A longer request line (a scanner's path) is cut to this once scrubbed."""


class AccessLog:
    """WSGI middleware writing one scrubbed line per request to a file descriptor (standard output by default)."""

    def __init__(self, app: WsgiApp, fd: int = 1) -> None:
        self.app, self.fd = app, fd
        self._stamp: tuple[int, str] = (-1, "")

    def __call__(self, environ: Environ, start_response: Callable[..., Any]) -> Iterable[bytes]:
        started = time.time()
        status = "500"

        def recorded(line: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            nonlocal status
            status = line[:3]
            return start_response(line, headers, exc_info)

        try:
            return self.app(environ, recorded)
        finally:
            self._write(environ, status, started)

    def _write(self, environ: Environ, status: str, started: float) -> None:
        request = (f'{environ.get("REQUEST_METHOD", "-")} {environ.get("PATH_INFO", "")} '
                   f'{environ.get("SERVER_PROTOCOL", "-")}')
        line = (f'[{self._time(started)}] {environ.get("REMOTE_ADDR", "-")} - '
                f'"{scrub(request)[:MAX_REQUEST_CHARS]}" {status} {(time.time() - started) * 1000:.3f}\n')
        data = line.encode("utf-8", "replace")
        try:
            while data:
                data = data[os.write(self.fd, data):]
        except OSError:
            pass  # standard output closed or full: the request was answered, its log line is lost

    def _time(self, moment: float) -> str:
        """Local time to the second, formatted once a second (the pair is replaced at once, so threads agree)."""
        second, text = self._stamp
        if int(moment) != second:
            second = int(moment)
            text = datetime.fromtimestamp(second).astimezone().strftime("%Y-%m-%d %H:%M:%S %z")
            self._stamp = (second, text)
        return text
