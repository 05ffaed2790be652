"""A fake Reloadly (OAuth + airtime top-ups) on loopback: a real HTTP server that behaves like the real one.

Each `customIdentifier` is topped up at most once, as Reloadly promises; a reference used again is refused.
Tests choose how the next top-ups go (`fail_next`) or let them go wrong at random (`chaos`):

    ok            200 SUCCESSFUL
    timeout       tops up, then answers only after the client gave up (the answer is lost)
    lost          answers late and tops up nothing (the request died on the way)
    error         502 before topping up
    error_after   tops up, then 502 (a gateway failing after the work was done)
    insufficient  400 INSUFFICIENT_BALANCE
    refunded      200 REFUNDED: the operator did not deliver; the reference stays used
    processing    200 PROCESSING; SUCCESSFUL when looked up later
    hang          tops up, then holds the answer for `hang_seconds` (a worker killed meanwhile never hears back)
    stall         holds the answer for `hang_seconds` and tops up nothing (the request never got through)
    slow          504 at once; the top-up itself shows up `appear_seconds` later (still in flight when looked up)
"""

from __future__ import annotations

import itertools
import json
import random
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

CLIENT_ID, CLIENT_SECRET = "reloadly-test-client", "reloadly-test-secret"
MODES = ("ok", "timeout", "lost", "error", "error_after", "insufficient", "processing", "hang", "stall", "slow",
         "refunded")
_AUTO_DETECT = re.compile(r"^/operators/auto-detect/phone/(?P<phone>\d+)/countries/(?P<iso>[A-Z]{2})$")
OPERATORS = {
    "MX": {"operatorId": 1201, "name": "Telcel Mexico", "destinationCurrencyCode": "MXN", "senderCurrencyCode": "USD",
           "supportsLocalAmounts": True},
    "US": {"operatorId": 900, "name": "AT&T US", "destinationCurrencyCode": "USD", "senderCurrencyCode": "USD",
           "supportsLocalAmounts": True},
}


class FakeReloadly:
    def __init__(self, late_seconds: float = 1.6, hang_seconds: float = 30.0, appear_seconds: float = 1.0,
                 latency_seconds: float = 0.0):
        self.latency_seconds = latency_seconds
        """How long every top-up takes (a real one takes a few hundred milliseconds)."""
        self.late_seconds = late_seconds
        self.hang_seconds = hang_seconds
        self.appear_seconds = appear_seconds
        self.lock = threading.Lock()
        self.transactions: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, str, dict]] = []
        self.script: list[str] = []
        self.tokens: set[str] = set()
        self.token_counter = itertools.count(1)
        self.ids = itertools.count(50_000)
        self.refused_duplicates = 0
        self.chaos_rate = 0.0
        self.chaos_modes: tuple[str, ...] = ()
        self.chaos_per_key = 0
        self.chaos_rng = random.Random(0)
        self.chaos_done: Counter[str] = Counter()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def env(self, timeout: float = 1.0) -> dict[str, str]:
        """The environment that points Retorno at this fake."""
        return {
            "RETORNO_INCENTIVE_PROVIDER": "reloadly",
            "RELOADLY_CLIENT_ID": CLIENT_ID,
            "RELOADLY_CLIENT_SECRET": CLIENT_SECRET,
            "RELOADLY_API_BASE": self.url,
            "RELOADLY_AUTH_URL": self.url + "/oauth/token",
            "RELOADLY_TIMEOUT": str(timeout),
        }

    def settings(self, timeout: float = 1.0) -> dict[str, Any]:
        """The same as Settings overrides."""
        return {
            "incentive_provider": "reloadly",
            "reloadly_client_id": CLIENT_ID,
            "reloadly_client_secret": CLIENT_SECRET,
            "reloadly_api_base": self.url,
            "reloadly_auth_url": self.url + "/oauth/token",
            "reloadly_timeout": timeout,
        }

    def start(self) -> FakeReloadly:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    # -- steering -------------------------------------------------------------------------------------------

    def fail_next(self, mode: str, times: int = 1) -> None:
        assert mode in MODES, mode
        with self.lock:
            self.script.extend([mode] * times)

    def chaos(self, rate: float, modes: tuple[str, ...], per_key: int = 2, seed: int = 7) -> None:
        """Each top-up call goes wrong with probability `rate` (a random mode), at most `per_key` times per key."""
        with self.lock:
            self.chaos_rate, self.chaos_modes, self.chaos_per_key = rate, modes, per_key
            self.chaos_rng = random.Random(seed)

    def expire_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    # -- reading results ---------------------------------------------------------------------------------------

    def paid(self) -> dict[str, dict[str, Any]]:
        """customIdentifier -> transaction, for the successful top-ups."""
        with self.lock:
            return {k: dict(t) for k, t in self.transactions.items() if t["status"] == "SUCCESSFUL"}

    def paid_per_phone(self) -> Counter[str]:
        return Counter(t["recipientPhone"] for t in self.paid().values())

    def topup_calls(self) -> int:
        with self.lock:
            return sum(1 for method, path, _ in self.requests if method == "POST" and path == "/topups")

    # -- the server ----------------------------------------------------------------------------------------------

    def _mode(self, key: str) -> str:
        with self.lock:
            if self.script:
                return self.script.pop(0)
            if self.chaos_rate and self.chaos_done[key] < self.chaos_per_key:
                if self.chaos_rng.random() < self.chaos_rate:
                    self.chaos_done[key] += 1
                    return self.chaos_rng.choice(self.chaos_modes)
        return "ok"

    def _topup(self, body: dict[str, Any]) -> tuple[int, dict[str, Any], float]:
        """(status, answer, seconds to wait before answering)."""
        key = body.get("customIdentifier")
        phone = (body.get("recipientPhone") or {}).get("number")
        if not isinstance(key, str) or not key or not phone or not isinstance(body.get("operatorId"), int):
            return 400, _error("INVALID_REQUEST", "customIdentifier, operatorId and recipientPhone are required"), 0
        with self.lock:
            if key in self.transactions:
                self.refused_duplicates += 1
                return 400, _error("DUPLICATED_CUSTOM_IDENTIFIER", "This custom identifier was already used"), 0
        mode = self._mode(key)
        if mode == "insufficient":
            return 400, _error("INSUFFICIENT_BALANCE", "Your balance is not enough for this top-up"), 0
        if mode == "error":
            return 502, {"message": "Bad Gateway"}, 0
        if mode == "lost":
            return 504, {"message": "Gateway Timeout"}, self.late_seconds
        if mode == "stall":
            return 504, {"message": "Gateway Timeout"}, self.hang_seconds
        status = {"processing": "PROCESSING", "refunded": "REFUNDED"}.get(mode, "SUCCESSFUL")
        transaction = {
            "transactionId": next(self.ids), "status": status, "customIdentifier": key,
            "recipientPhone": phone, "countryCode": body["recipientPhone"].get("countryCode"),
            "operatorId": body["operatorId"], "requestedAmount": body.get("amount"),
            "useLocalAmount": body.get("useLocalAmount"), "transactionDate": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        if mode == "slow":
            threading.Timer(self.appear_seconds, self._store, (key, transaction)).start()
            return 504, {"message": "Gateway Timeout"}, 0
        self._store(key, transaction)
        if mode == "error_after":
            return 502, {"message": "Bad Gateway"}, 0
        wait = {"timeout": self.late_seconds, "hang": self.hang_seconds}.get(mode, self.latency_seconds)
        return 200, dict(transaction), wait

    def _store(self, key: str, transaction: dict[str, Any]) -> None:
        with self.lock:
            self.transactions.setdefault(key, transaction)

    def _report(self, query: dict[str, list[str]]) -> dict[str, Any]:
        key = (query.get("customIdentifier") or [""])[0]
        with self.lock:
            found = self.transactions.get(key)
            if found is not None and found["status"] == "PROCESSING":
                found["status"] = "SUCCESSFUL"
            content = [dict(found)] if found is not None else []
        return {"content": content, "totalElements": len(content), "number": 0}

    def _handler(self):
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are two writes: without this, 40 ms per answer

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802 - http.server's naming
                body = self._body()
                path = urlparse(self.path).path
                with fake.lock:
                    fake.requests.append(("POST", path, body))
                if path == "/oauth/token":
                    self._token(body)
                    return
                if not self._authorized():
                    return
                if path == "/topups":
                    status, answer, wait = fake._topup(body)
                    if wait:
                        time.sleep(wait)
                    self._reply(status, answer)
                    return
                self._reply(404, _error(None, "No message available"))

            def do_GET(self) -> None:  # noqa: N802
                parsed = urlparse(self.path)
                with fake.lock:
                    fake.requests.append(("GET", parsed.path, parse_qs(parsed.query)))
                if not self._authorized():
                    return
                detected = _AUTO_DETECT.match(parsed.path)
                if detected:
                    operator = OPERATORS.get(detected["iso"])
                    if operator is None:
                        self._reply(400, _error("COULD_NOT_AUTO_DETECT_OPERATOR", "Could not detect the operator"))
                    else:
                        self._reply(200, {"id": operator["operatorId"], **operator})
                    return
                if parsed.path == "/topups/reports/transactions":
                    self._reply(200, fake._report(parse_qs(parsed.query)))
                    return
                self._reply(404, _error(None, "No message available"))

            def _token(self, body: dict[str, Any]) -> None:
                if body.get("client_id") != CLIENT_ID or body.get("client_secret") != CLIENT_SECRET:
                    self._reply(401, {"error": "access_denied", "error_description": "Unauthorized"})
                    return
                if body.get("grant_type") != "client_credentials" or not body.get("audience"):
                    self._reply(400, {"error": "invalid_request"})
                    return
                token = f"fake-token-{next(fake.token_counter)}"
                with fake.lock:
                    fake.tokens.add(token)
                self._reply(200, {"access_token": token, "scope": "send-topups", "expires_in": 5184000,
                                  "token_type": "Bearer"})

            def _authorized(self) -> bool:
                token = (self.headers.get("Authorization") or "").removeprefix("Bearer ").strip()
                with fake.lock:
                    known = token in fake.tokens
                if not known:
                    self._reply(401, _error("TOKEN_EXPIRED", "Full authentication is required"))
                return known

            def _body(self) -> dict[str, Any]:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    data = json.loads(raw or b"{}")
                except ValueError:
                    return {}
                return data if isinstance(data, dict) else {}

            def _reply(self, status: int, body: dict) -> None:
                payload = json.dumps(body).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout): the answer is lost, as on a real network

        return Handler


def _error(code: str | None, message: str) -> dict[str, Any]:
    return {"timeStamp": time.strftime("%Y-%m-%d %H:%M:%S"), "message": message, "path": "/topups",
            "errorCode": code, "infoLink": None, "details": []}
