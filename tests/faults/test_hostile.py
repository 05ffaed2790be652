"""Hostile requests over the wire to the Procfile's web process (granian) on PostgreSQL and Redis.

Raw bytes on a socket, so nothing is cleaned up on the way: NUL bytes and control characters in the request line,
paths, queries, headers and bodies; 64-bit edges and far beyond; deep JSON. No answer is a 5xx or slower than a
second; poisoned requests sent among valid ones from many threads never fail a valid one; a captured Twilio request
re-split into other parameters under the same signature is never stored again.
"""

from __future__ import annotations

import json
import random
import socket
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import quote, urlencode

import pytest
import requests
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text
from werkzeug.datastructures import MultiDict

from tests import hostile
from tests.processes import free_port, running, service_env, start_web, wait_healthy
from tests.support import TELEGRAM_SECRET, make_settings, telegram_message, twilio_form, twilio_signature

pytestmark = pytest.mark.integration

SMS, TELEGRAM = "/webhooks/twilio/sms", "/webhooks/telegram"
SECOND = 1.0


@dataclass
class Web:
    url: str
    port: int
    database_url: str
    staff_token: str

    def rows(self, sql: str = "SELECT channel, provider_id FROM inbound_messages", **params: str) -> list[tuple]:
        engine = create_engine(self.database_url)
        with engine.connect() as connection:
            found = [tuple(row) for row in connection.execute(text(sql), params)]
        engine.dispose()
        return found


@pytest.fixture(scope="module")
def web(postgres_url, redis_database, tmp_path_factory) -> Iterator[Web]:
    """The web server as the Procfile starts it (granian; one process, 16 threads: requests meet in the group committer)."""
    from service import runtime as runtimes
    from service.auth import create_token
    from tests.support import truncate_all

    truncate_all(postgres_url)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = service_env(postgres_url, redis_database[0], "http://127.0.0.1:9", url)
    log = tmp_path_factory.mktemp("hostile") / "web.log"
    runtime = runtimes.build(make_settings(postgres_url, "http://127.0.0.1:9", log.parent))
    token = create_token(runtime, "staff", "hostile")
    runtime.engine.dispose()
    with running(start_web(env, port, workers=1, log=log, threads=16)):
        wait_healthy(url)
        yield Web(url, port, postgres_url, token)


# -- raw HTTP -----------------------------------------------------------------------------------------------


def raw_request(port: int, method: bytes, target: bytes, headers: list[tuple[bytes, bytes]], body: bytes) -> int:
    """Send one request as raw bytes on a new connection; the status code of the answer (0: none came)."""
    head = [method + b" " + target + b" HTTP/1.1", b"Host: 127.0.0.1", b"Connection: close",
            b"Content-Length: %d" % len(body), *(name + b": " + value for name, value in headers)]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(b"\r\n".join(head) + b"\r\n\r\n" + body)
        answer = b""
        while b"\r\n" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    status_line = answer.split(b"\r\n", 1)[0].split(b" ")
    return int(status_line[1]) if len(status_line) > 1 and status_line[1].isdigit() else 0


def _target(path: str, query: list[tuple[str, str]], raw: bool) -> bytes:
    """The request target: percent-encoded as a client would, or (`raw`) with the bytes as they are."""
    encoded = (path.encode("utf-8", "surrogatepass") if raw else quote(path, safe="/%").encode())
    if query:
        pairs = [(k + "=" + v) if raw else urlencode([(k, v)]) for k, v in query]
        encoded += b"?" + "&".join(pairs).encode("utf-8", "surrogatepass")
    return encoded


@pytest.fixture(scope="module")
def routes(web, tmp_path_factory) -> list[str]:
    """Every route of the app (as create_app() builds it), so that new ones are fuzzed as they come."""
    from service import runtime as runtimes
    from service.app import create_app

    settings = make_settings(web.database_url, "http://127.0.0.1:9", tmp_path_factory.mktemp("routes"))
    runtime = runtimes.build(settings)
    try:
        return sorted(rule.rule for rule in create_app(runtime=runtime).url_map.iter_rules())
    finally:
        runtimes.reset()


WIRE = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                         HealthCheck.too_slow])


@WIRE
@given(
    data=st.data(), method=hostile.METHODS, query=hostile.QUERIES, headers=hostile.HEADERS, body=hostile.BODIES,
    raw=st.booleans(), token=st.booleans(), content_type=hostile.CONTENT_TYPES,
)
def test_hostile_requests_over_the_wire_never_5xx(web, routes, data, method, query, headers, body, raw, token,
                                                  content_type):
    rule = data.draw(st.sampled_from(routes))
    count = hostile.placeholders(rule)
    segments = data.draw(st.lists(hostile.SEGMENTS, min_size=count, max_size=count))
    path = hostile.fill(rule, segments)
    if raw:
        path = path.replace("%00", "\x00").replace("%1B", "\x1b")
    fields = [(name.encode(), value.encode("latin-1")) for name, value in headers.items()]
    if token:
        fields.append((b"Authorization", b"Bearer " + web.staff_token.encode()))
    fields.append((b"Content-Type", content_type.encode()))
    if method == "POST" and rule == TELEGRAM:
        fields.append((b"X-Telegram-Bot-Api-Secret-Token", TELEGRAM_SECRET.encode()))
    for _attempt in (1, 2):
        started = time.perf_counter()
        status = raw_request(web.port, method.encode(), _target(path, query, raw), fields, body)
        elapsed = time.perf_counter() - started
        assert 100 <= status < 500, (status, method, path[:200], query)
        if elapsed < SECOND:
            return
    raise AssertionError(f"{method} {path[:200]} answered in {elapsed:.2f} s, twice over a second")


# -- poisoned requests among valid ones --------------------------------------------------------------------


@dataclass(frozen=True)
class Post:
    label: str
    path: str
    body: bytes
    headers: dict[str, str]
    stored_as: tuple[str, str] | None
    """(channel, provider_id) for a valid request; None for a poisoned one."""


def _sms(web: Web, form: dict[str, str] | list[tuple[str, str]], label: str, valid: bool) -> Post:
    pairs = list(form.items()) if isinstance(form, dict) else form
    signature = twilio_signature(web.url + SMS, MultiDict(pairs))  # type: ignore[arg-type] - repeated names kept
    sid = dict(pairs).get("MessageSid", "")
    return Post(label, SMS, urlencode(pairs).encode(),
                {"X-Twilio-Signature": signature, "Content-Type": "application/x-www-form-urlencoded"},
                ("sms", sid) if valid else None)


def _telegram(body: bytes | dict, label: str, stored_as: str | None) -> Post:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Post(label, TELEGRAM, raw, {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET,
                                       "Content-Type": "application/json"},
                ("telegram", stored_as) if stored_as else None)


def _poisoned(web: Web, n: int) -> list[Post]:
    """One of each kind of poisoned request, numbered `n` so that none repeats another."""
    base = 70_000_000 + n * 10
    form = twilio_form(f"+5255{30000000 + n:08d}", "hola", f"SM{base:032x}")
    resplit = [(k, v) for k, v in form.items() if k != "NumMedia"]
    resplit = [(k, v + "NumMedia0" if k == "MessageSid" else v) for k, v in resplit]
    wrong_account = {**form, "MessageSid": f"SM{base + 1:032x}", "SmsSid": f"SM{base + 1:032x}",
                     "SmsMessageSid": f"SM{base + 1:032x}", "AccountSid": "AC" + "b" * 32}
    not_a_sid = {**form, "MessageSid": f"SM{base + 2:031x}g", "SmsSid": f"SM{base + 2:031x}g",
                 "SmsMessageSid": f"SM{base + 2:031x}g"}
    repeated = [*twilio_form(f"+5255{30000000 + n:08d}", "hola", f"SM{base + 3:032x}").items(),
                ("MessageSid", f"SM{base + 4:032x}")]
    chat = 5_000_000 + n
    return [
        _sms(web, resplit, "MessageSid re-split over NumMedia", False),
        _sms(web, wrong_account, "another account", False),
        _sms(web, not_a_sid, "not a message SID", False),
        _sms(web, repeated, "MessageSid twice", False),
        _sms(web, {**form, "Body": "x" * 10_001, "MessageSid": f"SM{base + 5:032x}", "SmsSid": f"SM{base + 5:032x}",
                   "SmsMessageSid": f"SM{base + 5:032x}"}, "body too long", False),
        _telegram(telegram_message(2**63 + n, chat, "hola"), "update_id beyond 64 bits", None),
        _telegram(telegram_message(base + 6, chat, "hola", message_id=2**64 + n), "message_id beyond 64 bits", None),
        _telegram(telegram_message(base + 7, -(2**63) - 1 - n, "hola"), "chat id beyond 64 bits", None),
        _telegram({**telegram_message(base + 8, chat, "hola"), "update_id": str(base + 8)}, "update_id as text", None),
        _telegram(json.dumps(telegram_message(base + 9, chat, "\ud800")).encode(), "lone surrogate", None),
        _telegram(hostile.deep_json(50_000), "deep JSON", None),
        _telegram(b"\xff\xfe" + b"\x00" * 20, "not UTF-8", None),
    ]


def _valid(web: Web, n: int) -> list[Post]:
    sid = f"SM{90_000_000 + n:032x}"
    sms = _sms(web, twilio_form(f"+5255{40000000 + n:08d}", "hola\x00 y adiós", sid), "valid SMS", True)
    update_id = 60_000_000 + n
    tg = _telegram(telegram_message(update_id, 6_000_000 + n, "hola"), "valid Telegram", str(update_id))
    return [sms, tg]


def test_poisoned_requests_never_fail_their_neighbours(web):
    posts = [post for n in range(1, 121) for post in _valid(web, n)]
    posts += [post for n in range(1, 21) for post in _poisoned(web, n)]
    random.Random(14).shuffle(posts)
    local = __import__("threading").local()

    def send(post: Post) -> tuple[Post, int]:
        if not hasattr(local, "http"):
            local.http = requests.Session()
        response = local.http.post(web.url + post.path, data=post.body, headers=post.headers, timeout=30)
        return post, response.status_code

    before = set(web.rows())
    with ThreadPoolExecutor(max_workers=32) as pool:
        answers = list(pool.map(send, posts))
    wrong = [(post.label, status) for post, status in answers
             if (post.stored_as is not None) != (200 <= status < 300) or not (200 <= status < 500)]
    assert not wrong, wrong[:10]
    stored = [row for row in web.rows() if row not in before]
    expected = [post.stored_as for post in posts if post.stored_as is not None]
    assert sorted(stored) == sorted(expected), "every valid request stored exactly once, no poisoned one"


# -- a captured request re-split ------------------------------------------------------------------------------


def test_a_re_split_replay_is_not_stored_again(web):
    sid = f"SM{0xC0FFEE:032x}"
    form = list(twilio_form("+525599990000", "sí", sid).items())
    captured = twilio_signature(web.url + SMS, form)
    post = _sms(web, form, "captured", True)
    assert requests.post(web.url + SMS, data=post.body, headers=post.headers, timeout=10).status_code == 200

    def resplit(absorbing: str, absorbed: str) -> list[tuple[str, str]]:
        """`absorbed`'s name and value moved into `absorbing`'s value (adjacent in sorted order): same signature."""
        values = dict(form)
        pairs = [(k, v) for k, v in form if k != absorbed]
        return [(k, v + absorbed + values[absorbed] if k == absorbing else v) for k, v in pairs]

    replays = [resplit("MessageSid", "NumMedia"), resplit("SmsMessageSid", "SmsSid"),
               resplit("AccountSid", "ApiVersion"), resplit("FromZip", "MessageSid"), resplit("Body", "From")]
    for replay in replays:
        assert twilio_signature(web.url + SMS, replay) == captured, "a true replay: the captured signature holds"
        body = urlencode(replay).encode()
        response = requests.post(web.url + SMS, data=body, timeout=10, headers={
            "X-Twilio-Signature": captured, "Content-Type": "application/x-www-form-urlencoded"})
        assert response.status_code in (200, 400), response.status_code
    rows = web.rows("SELECT provider_id FROM inbound_messages WHERE address_hash = "
                    "(SELECT address_hash FROM inbound_messages WHERE provider_id = :sid)", sid=sid)
    assert rows == [(sid,)], "the captured message is stored once, under its own id"
