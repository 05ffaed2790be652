"""Cheap load on loopback: an open-loop webhook generator and a fake Twilio, both on one asyncio loop.

Python threads with `requests` and `http.server` cost a millisecond or two of CPU per call; on a 2-core machine
that shares its cores with the service under test, the load side then measures itself. Here every request is
built and signed before the clock starts, connections are kept alive, and the fake provider parses only what it
must, so the generator and the provider together cost a small fraction of one core at 500 messages/s.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
from collections import defaultdict
from urllib.parse import parse_qs, urlsplit

from tests.support import twilio_form, twilio_signature

TWILIO_PATH = "/webhooks/twilio/sms"


class Loop:
    """An asyncio loop in a daemon thread, for code that is otherwise synchronous."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine, timeout: float | None = None):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)


async def _read_message(reader: asyncio.StreamReader) -> tuple[bytes, dict[bytes, bytes], bytes]:
    """One HTTP/1.1 message with a Content-Length body: (start line, headers in lower case, body)."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name:
            headers[name.strip().lower()] = value.strip()
    length = int(headers.get(b"content-length", b"0"))
    body = await reader.readexactly(length) if length else b""
    return lines[0], headers, body


class FakeTwilio:
    """Twilio's Messages API (and Telegram's sendMessage) on loopback: answers as they do and notes when each
    recipient was sent a message."""

    def __init__(self) -> None:
        self.arrivals: dict[str, list[float]] = defaultdict(list)
        self.handed: dict[int, float] = {}
        """When each message was handed over, by the number in the id the fake gave it (`SM…n`, Telegram's n)."""
        self.counter = itertools.count(1)
        self.server: asyncio.base_events.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0, backlog=1024)
        host, port = self.server.sockets[0].getsockname()[:2]
        return f"http://{host}:{port}"

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                start, _, body = await _read_message(reader)
                status, payload = self._answer(start, body, next(self.counter))
                writer.write(b"HTTP/1.1 %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s"
                             % (status, len(payload), payload))
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    def _answer(self, start: bytes, body: bytes, number: int) -> tuple[bytes, bytes]:
        """Twilio's Messages API (arrivals by `To`); Telegram's Bot API too (`/bot...`, arrivals by `tg:chat_id`)."""
        if b"/bot" in start:
            chat = json.loads(body or b"{}").get("chat_id", 0)
            self.arrivals[f"tg:{chat}"].append(time.time())
            self.handed[number] = time.time()
            return b"200 OK", json.dumps({"ok": True, "result": {
                "message_id": number, "date": int(time.time()), "text": "", "chat": {"id": chat, "type": "private"}}
            }).encode()
        to = parse_qs(body.decode("utf-8", "replace")).get("To", [""])[0]
        self.arrivals[to].append(time.time())
        self.handed[number] = time.time()
        return b"201 Created", b'{"sid": "SM%032d", "status": "queued"}' % number


class OpenLoop:
    """Signed Twilio webhooks at a fixed rate, whatever the service's speed (an open-loop load)."""

    def __init__(self, url: str, messages: list[tuple[str, str, str]], rate: float, connections: int = 64):
        """`messages`: (MessageSid, From, Body) in the order they are offered."""
        self.url = url
        self.rate = rate
        self.connections = connections
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.requests = [(sid, self._request(sid, sender, text)) for sid, sender, text in messages]
        self.accepted: dict[str, float] = {}
        self.failed = 0
        self.late = 0

    def _request(self, sid: str, sender: str, text: str) -> bytes:
        form = twilio_form(sender, text, sid)
        body = "&".join(f"{k}={v}" for k, v in _encoded(form)).encode()
        signature = twilio_signature(self.url + TWILIO_PATH, form)
        return (
            f"POST {TWILIO_PATH} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\nX-Twilio-Signature: {signature}\r\n"
            f"Content-Length: {len(body)}\r\n\r\n"
        ).encode() + body

    async def run(self) -> None:
        queue: asyncio.Queue = asyncio.Queue()
        senders = [asyncio.create_task(self._connection(queue)) for _ in range(self.connections)]
        start = time.monotonic() + 0.2
        for index, item in enumerate(self.requests):
            due = start + index / self.rate
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            queue.put_nowait((due, item))
        for _ in senders:
            queue.put_nowait(None)
        await asyncio.gather(*senders)

    async def _connection(self, queue: asyncio.Queue) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            while (item := await queue.get()) is not None:
                due, (sid, request) = item
                if time.monotonic() - due > 0.05:
                    self.late += 1
                writer.write(request)
                status, _, _ = await _read_message(reader)
                if status.split(b" ")[1] == b"200":
                    self.accepted[sid] = time.time()
                else:
                    self.failed += 1
        finally:
            writer.close()


def _encoded(form: dict[str, str]):
    from urllib.parse import quote

    for key, value in form.items():
        yield quote(key, safe=""), quote(value, safe="")
