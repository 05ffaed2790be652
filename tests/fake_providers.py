"""Fake Twilio and Telegram APIs on loopback: a real HTTP server that records what Retorno sends.

Tests read `messages` (every accepted message, in order), inject failures with `fail_next`, and may install an
`on_message` hook that plays a respondent answering each message.
"""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl


@dataclass
class Sent:
    """One message a provider accepted."""

    channel: str
    to: str
    text: str
    buttons: list[str] = field(default_factory=list)
    provider_id: str = ""


class FakeProviders:
    def __init__(self) -> None:
        self.messages: list[Sent] = []
        self.acks: list[str] = []
        self.requests: list[tuple[str, str]] = []
        self.failures: list[tuple[str, int, dict]] = []
        self.on_message: Callable[[Sent], None] | None = None
        self.lock = threading.Lock()
        self.counter = itertools.count(1)
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
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
                self._reply(201, {"sid": sid, "status": "queued", "to": to, "body": form.get("Body", "")})
                fake._record(Sent(channel, to.removeprefix("whatsapp:"), form.get("Body", ""), [], sid))

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
