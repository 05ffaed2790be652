"""Fake Twilio and Telegram APIs on loopback: a real HTTP server that records what Retorno sends.

Tests read `messages` (every accepted message, in order), inject failures with `fail_next`, and may install an
`on_message` hook that plays a respondent answering each message.

WhatsApp as Twilio and Meta enforce it: free text (a `Body`) reaches a number only within 24 hours of its last
message to the business (tests tell the fake with `wrote`, on the fake's `clock`); outside, Twilio takes the
request, then reports it failed with 63016, and the person never sees it (`refused`). Templates (`ContentSid`
plus `ContentVariables`, no `Body`) always go, unless `whatsapp_errors` names an error for that number (63049,
63024...), reported the same way. Reports go to `reports` and, when set, to `on_status(sid, to, status, code)`.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl

WINDOW = timedelta(hours=24)


@dataclass
class Sent:
    """One message a provider accepted."""

    channel: str
    to: str
    text: str
    buttons: list[str] = field(default_factory=list)
    provider_id: str = ""
    template: str | None = None
    """The Content SID of a WhatsApp template (then `text` is empty and `variables` holds its values)."""
    variables: dict[str, str] = field(default_factory=dict)


class _Server(ThreadingHTTPServer):
    request_queue_size = 256
    """Senders open 16 connections at once; the default backlog of 5 drops some (a connection error mid-send)."""


class FakeProviders:
    def __init__(self) -> None:
        self.messages: list[Sent] = []
        self.acks: list[str] = []
        self.requests: list[tuple[str, str]] = []
        self.failures: list[tuple[str, int, dict]] = []
        self.on_message: Callable[[Sent], None] | None = None
        self.clock: Callable[[], datetime] = lambda: datetime.now(UTC)
        self.last_wrote: dict[str, datetime] = {}
        self.refused: list[Sent] = []
        self.whatsapp_errors: dict[str, str] = {}
        self.reports: list[tuple[str, str, str, str | None]] = []
        self.on_status: Callable[[str, str, str, str | None], None] | None = None
        self.calls: list[dict[str, str]] = []
        """Calls placed through Twilio's Calls API: the request's form, and the call's `sid`."""
        self.lock = threading.Lock()
        self.counter = itertools.count(1)
        self.server = _Server(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeProviders:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail_next(self, channel: str, status: int, body: dict | None = None, times: int = 1) -> None:
        """The next `times` calls for `channel` ('twilio' or 'telegram') answer `status` with `body`."""
        with self.lock:
            self.failures.extend([(channel, status, body or {})] * times)

    def wrote(self, number: str, at: datetime | None = None) -> None:
        """The person at this WhatsApp number wrote to the business (their 24-hour window opens)."""
        with self.lock:
            self.last_wrote[number.removeprefix("whatsapp:")] = at or self.clock()

    def take_reports(self) -> list[tuple[str, str, str, str | None]]:
        """The delivery reports not taken yet: (sid, to, status, error code)."""
        with self.lock:
            taken, self.reports = self.reports, []
        return taken

    def _whatsapp_failure(self, number: str, form: dict[str, str]) -> str | None:
        """The error WhatsApp gives this message, if any: 63016 for free text outside the window."""
        with self.lock:
            if number in self.whatsapp_errors:
                return self.whatsapp_errors[number]
            if form.get("ContentSid"):
                return None
            last = self.last_wrote.get(number)
        return None if last is not None and self.clock() < last + WINDOW else "63016"

    def _report(self, sid: str, to: str, status: str, code: str | None) -> None:
        with self.lock:
            self.reports.append((sid, to, status, code))
        if self.on_status is not None:
            self.on_status(sid, to, status, code)

    def to(self, address: str) -> list[Sent]:
        with self.lock:
            return [m for m in self.messages if m.to == address]

    def _take_failure(self, channel: str) -> tuple[int, dict] | None:
        with self.lock:
            for i, (which, status, body) in enumerate(self.failures):
                if which == channel:
                    del self.failures[i]
                    return status, body
        return None

    def _record(self, sent: Sent) -> None:
        with self.lock:
            self.messages.append(sent)
        if self.on_message is not None:
            self.on_message(sent)

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                with fake.lock:
                    fake.requests.append((self.path, raw.decode("utf-8", "replace")))
                if "/Messages.json" in self.path:
                    self._twilio(dict(parse_qsl(raw.decode())))
                elif "/Calls.json" in self.path:
                    self._call(dict(parse_qsl(raw.decode())))
                elif "/sendMessage" in self.path or "/answerCallbackQuery" in self.path:
                    self._telegram(json.loads(raw or b"{}"))
                else:
                    self._reply(404, {"error": "unknown path"})

            def _twilio(self, form: dict[str, str]) -> None:
                failure = fake._take_failure("twilio")
                if failure:
                    self._reply(*failure)
                    return
                sid = f"SM{next(fake.counter):032x}"
                to = form.get("To", "")
                channel = "whatsapp" if to.startswith("whatsapp:") else "sms"
                number = to.removeprefix("whatsapp:")
                if channel == "whatsapp" and form.get("ContentSid") and form.get("Body"):
                    self._reply(400, {"message": "this fake refuses a Body with a ContentSid: a template goes "
                                      "without Body (CONTRACT.md)", "status": 400})
                    return
                variables = json.loads(form.get("ContentVariables") or "{}")
                sent = Sent(channel, number, form.get("Body", ""), [], sid, form.get("ContentSid"), variables)
                failure = fake._whatsapp_failure(number, form) if channel == "whatsapp" else None
                self._reply(201, {"sid": sid, "status": "queued", "to": to, "body": form.get("Body", "")})
                if failure is not None:  # Twilio took it; WhatsApp refuses it a moment later
                    if failure == "63016":
                        with fake.lock:
                            fake.refused.append(sent)
                    fake._report(sid, number, "undelivered" if failure != "63016" else "failed", failure)
                    return
                fake._record(sent)

            def _call(self, form: dict[str, str]) -> None:
                failure = fake._take_failure("twilio")
                if failure:
                    self._reply(*failure)
                    return
                sid = f"CA{next(fake.counter):032x}"
                with fake.lock:
                    fake.calls.append({**form, "sid": sid})
                self._reply(201, {"sid": sid, "status": "queued", "to": form.get("To", ""), "direction": "outbound-api"})

            def _telegram(self, data: dict[str, Any]) -> None:
                failure = fake._take_failure("telegram")
                if failure:
                    self._reply(*failure)
                    return
                if "/answerCallbackQuery" in self.path:
                    with fake.lock:
                        fake.acks.append(str(data.get("callback_query_id")))
                    self._reply(200, {"ok": True, "result": True})
                    return
                message_id = next(fake.counter)
                keyboard = (data.get("reply_markup") or {}).get("inline_keyboard") or []
                buttons = [b["callback_data"] for row in keyboard for b in row]
                self._reply(200, {"ok": True, "result": {"message_id": message_id, "chat": {"id": data["chat_id"]}}})
                fake._record(Sent("telegram", str(data["chat_id"]), data.get("text", ""), buttons, str(message_id)))

            def _reply(self, status: int, body: dict) -> None:
                payload = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler
