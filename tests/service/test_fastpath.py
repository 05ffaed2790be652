"""The fast path (service.fastpath) answers every request to the hot webhooks exactly as the Flask views do.

Each request goes to two Retornos on their own databases: one as deployed (the fast path in front of Flask), one
straight to Flask's own WSGI app. Status, headers, body and the rows stored must be the same, and a valid request
must never reach Flask behind the fast path.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from service import fastpath
from service import runtime as runtimes
from service import spool as spools
from service.app import MAX_BODY_BYTES, create_app
from service.fastpath import FastWebhooks
from service.queue import EmbeddedDispatcher
from tests.bots.fakes import case_ids, load_table
from tests.bots.test_telegram import secret_header
from tests.bots.test_twilio import signed_request
from tests.processes import free_port
from tests.support import PUBLIC_URL, TELEGRAM_SECRET, Harness, make_settings, twilio_form, twilio_signature

TWILIO = load_table("twilio/testdata/incoming.json")
TELEGRAM = load_table("telegram/testdata/incoming.json")
SMS = "/webhooks/twilio/sms"
TG = "/webhooks/telegram"
FORM = "application/x-www-form-urlencoded"
ROWS = ("SELECT channel, provider_id, address_hash, body, payload, sequence, received_at, status, attempts "
        "FROM inbound_messages ORDER BY id")


@dataclass
class Pair:
    """The same Retorno twice: `fast` as create_app() builds it, `flask` with the fast path taken out."""

    fast: Harness
    flask: Harness
    flask_calls: int = 0
    reached_flask: bool = False

    def send(self, path: str, body: bytes | str | dict = b"", method: str = "POST", **request: Any) -> tuple:
        """Both answers, checked equal, and the stored rows, checked equal; (status code, body) of the answer."""
        before = self.flask_calls
        fast = self.fast.client.open(path, method=method, data=body, **request)
        plain = self.flask.client.open(path, method=method, data=body, **request)
        assert _answer(fast) == _answer(plain)
        assert _rows(self.fast) == _rows(self.flask)
        self.reached_flask = self.flask_calls > before
        return fast.status_code, fast.get_data()


def _answer(response) -> tuple:
    return response.status, response.headers.to_wsgi_list(), response.get_data()


def _rows(harness: Harness) -> list:
    """The stored rows, with what is sealed (a shared contact, a body holding a number) opened: ciphertexts
    differ by their random nonce."""
    with harness.rt.engine.connect() as connection:
        rows = [list(row) for row in connection.execute(text(ROWS))]
    for row in rows:
        payload = json.loads(row[4])
        for key in ("body_enc", "contact_phone_enc"):
            if key in payload:
                payload[key] = "sealed:" + harness.rt.vault.decrypt(payload[key])
        row[4] = payload
    return [tuple(row) for row in rows]


@pytest.fixture
def make_pair(sqlite_template, providers, tmp_path):
    made: list[Harness] = []

    def make(**overrides: Any) -> Pair:
        harnesses = []
        for name in ("fast", "flask"):
            path = tmp_path / f"{name}-{len(made)}.sqlite3"
            shutil.copy(sqlite_template, path)
            harness = Harness(f"sqlite:///{path}", providers, tmp_path, **overrides)
            made.append(harness)
            harnesses.append(harness)
        pair = Pair(*harnesses)
        middleware = pair.fast.app.wsgi_app
        assert isinstance(middleware, FastWebhooks)
        flask_app = middleware.flask

        def counted(environ, start_response):
            pair.flask_calls += 1
            return flask_app(environ, start_response)

        middleware.flask = counted
        pair.flask.app.wsgi_app = pair.flask.app.wsgi_app.flask
        return pair

    yield make
    for harness in made:
        harness.close()


@pytest.fixture
def pair(make_pair) -> Pair:
    return make_pair()


def _table_settings(table: dict) -> dict:
    return {k: v for k, v in table["settings"].items() if not k.endswith("api_base")}


# -- the case tables -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", TWILIO["cases"], ids=case_ids(TWILIO))
def test_twilio_cases_answer_alike(make_pair, case):
    pair = make_pair(**_table_settings(TWILIO))
    url, signature = signed_request(pair.fast.settings, case)
    path, _, query = url.removeprefix(PUBLIC_URL).partition("?")
    headers = {"X-Twilio-Signature": signature} if signature else {}
    for _ in range(2):  # the second time, a redelivery
        status, _body = pair.send(path, case["form"], headers=headers, query_string=query)
        assert status == case["status"]
        assert pair.reached_flask == (status != 200 or path != SMS)


@pytest.mark.parametrize("case", TELEGRAM["cases"], ids=case_ids(TELEGRAM))
def test_telegram_cases_answer_alike(make_pair, case):
    pair = make_pair(**_table_settings(TELEGRAM))
    secret = secret_header(pair.fast.settings, case)
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {}
    raw = json.dumps(case["body"], ensure_ascii=False).encode()
    for _ in range(2):
        status, _body = pair.send(TG, raw, headers=headers, content_type="application/json")
        assert status == case["status"]
        assert pair.reached_flask == (status != 200)


def test_the_fuzz_tests_go_through_the_fast_path(pair):
    assert isinstance(pair.fast.client.application.wsgi_app, FastWebhooks)
    assert pair.fast.sms("+525512345678", "hola").status_code == 200
    assert pair.fast.telegram_text(42, "hola").status_code == 200
    assert pair.flask_calls == 0


# -- malformed and unusual requests --------------------------------------------------------------------------


def _signed_form(pairs: list[tuple[str, str]], query: str = "") -> dict[str, Any]:
    url = PUBLIC_URL + SMS + (f"?{query}" if query else "")
    return {"headers": {"X-Twilio-Signature": twilio_signature(url, pairs)}, "query_string": query}


VALID = list(twilio_form("+525512345678", "hola", "SM" + "1" * 32).items())


@pytest.mark.parametrize(("body", "content_type", "extra"), [
    (urlencode(VALID), FORM, {}),
    (urlencode(VALID), "application/x-www-form-urlencoded; charset=latin-1", {}),
    (urlencode(VALID), "APPLICATION/X-WWW-FORM-URLENCODED", {}),
    (urlencode(VALID), " application/x-www-form-urlencoded ;", {}),
    (urlencode(VALID), "text/plain", {}),
    (urlencode(VALID), "", {}),
    (urlencode(VALID), "multipart/form-data", {}),
    (urlencode(VALID), "application/json", {}),
    (urlencode([*VALID, ("Body", "otra"), ("MessageSid", "SM" + "2" * 32)]), FORM, {}),
    (urlencode(VALID).replace("hola", "%FF%FEhola"), FORM, {}),
    (urlencode(VALID).replace("hola", "h%C3%B3la+y+m%C3"), FORM, {}),
    (urlencode(VALID).encode().replace(b"hola", b"\xff\xfe"), FORM, {}),
    (urlencode(VALID) + "&&=&Body&x=%", FORM, {}),
    (urlencode(VALID).replace("&", ";"), FORM, {}),
    (b"\xff\xfe\xfd", FORM, {}),
    (b"", FORM, {}),
    (b"a=" + b"x" * 200_000, FORM, {}),
    (b"a=" + b"x" * MAX_BODY_BYTES, FORM, {}),
    (urlencode(VALID), FORM, {"CONTENT_LENGTH": "abc"}),
    (urlencode(VALID), FORM, {"CONTENT_LENGTH": "-1"}),
    (urlencode(VALID), FORM, {"CONTENT_LENGTH": "0"}),
    (urlencode(VALID), FORM, {"CONTENT_LENGTH": "\u0663"}),
    (urlencode(VALID), FORM, {"CONTENT_LENGTH": "99999"}),
    (urlencode(VALID), FORM, {"CONTENT_LENGTH": str(MAX_BODY_BYTES + 1)}),
    (urlencode(VALID), FORM, {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input_terminated": True}),
])
@pytest.mark.parametrize("signature", ["valid", "none", "wrong", "empty"])
def test_odd_twilio_requests_answer_alike(pair, body, content_type, extra, signature):
    pairs = VALID if isinstance(body, str) and body.startswith(urlencode(VALID)[:20]) else []
    request = _signed_form(pairs)
    if signature == "none":
        request["headers"] = {}
    elif signature == "wrong":
        request["headers"] = {"X-Twilio-Signature": "bm9wZQ=="}
    elif signature == "empty":
        request["headers"] = {"X-Twilio-Signature": ""}
    status, _body = pair.send(SMS, body, content_type=content_type, environ_overrides=extra, **request)
    if status == 200 and "HTTP_TRANSFER_ENCODING" not in extra:
        assert not pair.reached_flask


@pytest.mark.parametrize(
    "raw", [b"\xff\xfe", b"h\xc3la", b"\xed\xa0\x80", b"%FF\xff", b"\xc3\xb3", b"%FF%FE", b"h%C3la"]
)
@pytest.mark.parametrize("errors", ["replace", "surrogateescape", "ignore", "latin-1"])
def test_bodies_that_are_not_utf8_are_read_as_werkzeug_reads_them(pair, raw, errors):
    body = urlencode(VALID).encode().replace(b"hola", raw)
    text_ = body.decode("latin-1") if errors == "latin-1" else body.decode("utf-8", errors)
    fields = parse_qsl(text_, keep_blank_values=True)
    signature = twilio_signature(PUBLIC_URL + SMS, [(k, v.encode("utf-8", "replace").decode()) for k, v in fields])
    status, _body = pair.send(SMS, body, content_type=FORM, headers={"X-Twilio-Signature": signature})
    assert pair.reached_flask == (status != 200)


@pytest.mark.parametrize("query", ["campaign=7", "a=%FF&b=%C3%B3", "x=\u00e9", "=", "a=1&a=2", "campaign=7#x"])
@pytest.mark.parametrize("signed_with_query", [True, False])
def test_query_strings_in_the_signed_url_answer_alike(pair, query, signed_with_query):
    request = _signed_form(VALID, query if signed_with_query else "")
    request["query_string"] = query
    status, _body = pair.send(SMS, urlencode(VALID), content_type=FORM, **request)
    assert pair.reached_flask == (status != 200)


@pytest.mark.parametrize("request_", [
    {"method": "GET"}, {"method": "PUT"}, {"method": "HEAD"}, {"method": "OPTIONS"},
    {"path": SMS + "/"}, {"path": "/webhooks//twilio/sms"}, {"path": TG + "/"}, {"path": "/webhooks/TELEGRAM"},
])
def test_other_methods_and_paths_are_flask_s(pair, request_):
    request_ = {"method": "POST", "path": SMS, **request_}
    pair.send(request_.pop("path"), urlencode(VALID), content_type=FORM, **request_, **_signed_form(VALID))
    assert pair.reached_flask


UPDATE = {"update_id": 7, "message": {"message_id": 3, "from": {"id": 9, "is_bot": False, "language_code": "es"},
                                      "chat": {"id": 9, "type": "private"}, "date": 1, "text": "hola"}}


@pytest.mark.parametrize(("body", "content_type", "extra"), [
    (json.dumps(UPDATE), "application/json", {}),
    (json.dumps(UPDATE), "text/plain", {}),
    (json.dumps(UPDATE), "", {}),
    (json.dumps(UPDATE), FORM, {}),
    (json.dumps(UPDATE).replace("hola", "\\ud800"), "application/json", {}),
    (json.dumps(UPDATE).replace('"private"', '"group"'), "application/json", {}),
    (json.dumps(UPDATE, ensure_ascii=False).replace("hola", "h\u00f3la\u0000"), "application/json", {}),
    (json.dumps(UPDATE).encode().replace(b"hola", b"\xff"), "application/json", {}),
    (b"\xff\xfe{", "application/json", {}),
    (b"[1, 2]", "application/json", {}),
    (b"{" * 5000, "application/json", {}),
    (b" " * 1_000_001, "application/json", {}),
    (b" " * (MAX_BODY_BYTES + 1), "application/json", {}),
    (b"", "application/json", {}),
    (json.dumps(UPDATE), "application/json", {"CONTENT_LENGTH": "x"}),
    (json.dumps(UPDATE), "application/json", {"CONTENT_LENGTH": "20"}),
    (json.dumps(UPDATE), "application/json", {"CONTENT_LENGTH": "9999"}),
    (json.dumps(UPDATE), "application/json", {"HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input_terminated": True}),
])
@pytest.mark.parametrize("secret", [TELEGRAM_SECRET, None, "wrong", TELEGRAM_SECRET + "\u00e9"])
def test_odd_telegram_requests_answer_alike(pair, body, content_type, extra, secret):
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {}
    status, _body = pair.send(TG, body, content_type=content_type, headers=headers, environ_overrides=extra)
    if status == 200 and "HTTP_TRANSFER_ENCODING" not in extra:
        assert not pair.reached_flask


@pytest.mark.parametrize("off", [{"twilio_auth_token": None}, {"telegram_bot_token": None},
                                 {"telegram_webhook_secret": None}])
def test_channels_off_answer_alike(make_pair, off):
    pair = make_pair(**off)
    assert pair.send(SMS, urlencode(VALID), content_type=FORM, **_signed_form(VALID))[0] in (200, 404)
    headers = {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}
    assert pair.send(TG, json.dumps(UPDATE), content_type="application/json", headers=headers)[0] in (200, 403, 404)


def test_debug_mode_is_left_to_flask(pair):
    pair.fast.app.debug = pair.flask.app.debug = True
    headers = {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}
    assert pair.send(TG, json.dumps(UPDATE), content_type="application/json", headers=headers)[0] == 200
    assert pair.reached_flask


def test_a_failure_to_store_is_answered_by_flask_s_error_handlers(pair, monkeypatch):
    def broken(runtime, incoming):
        raise RuntimeError("not a database error")

    monkeypatch.setattr(fastpath, "store", broken)
    monkeypatch.setattr("service.webhooks.store", broken)
    status, body = pair.send(SMS, urlencode(VALID), content_type=FORM, **_signed_form(VALID))
    assert status == 500 and json.loads(body)["error"]["code"] == "internal_server_error"


def test_database_down_is_spooled_on_both_and_503_on_both_when_the_spool_is_full(providers, tmp_path):
    settings = make_settings(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none", providers.url, tmp_path)
    runtime = runtimes.build(settings, dispatcher=EmbeddedDispatcher())
    app = create_app(runtime=runtime)
    fast, flask = app.wsgi_app, app.wsgi_app.flask
    client = app.test_client()
    spool = spools.of(runtime)
    answers = {}
    try:
        for room in ("spool", "full"):
            if room == "full":
                spool.max_bytes = 0
            request = {"data": urlencode(VALID), "content_type": FORM, **_signed_form(VALID)}
            app.wsgi_app = fast
            answers[room] = _answer(client.post(SMS, **request))
            app.wsgi_app = flask
            assert _answer(client.post(SMS, **request)) == answers[room]
    finally:
        spool.stop()
        runtime.engine.dispose()
    assert answers["spool"][0].startswith("200") and spool.appended == 2
    assert answers["full"][0].startswith("503") and ("Retry-After", "5") in answers["full"][1]


# -- random requests -----------------------------------------------------------------------------------------


FUZZ = settings(max_examples=80, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=60)
FIELDS = st.lists(st.tuples(st.sampled_from(["MessageSid", "From", "Body", "NumMedia", "To", "Latitude", "x"])
                            | TEXT, TEXT | st.sampled_from(["+525512345678", "SM" + "3" * 32, "whatsapp:+52155"])),
                  max_size=8)
CONTENT_TYPES = st.sampled_from([FORM, f"{FORM}; charset=latin-1", "application/json", "text/plain", ""])


@FUZZ
@given(fields=FIELDS, raw=st.none() | st.binary(max_size=300), content_type=CONTENT_TYPES,
       signed=st.sampled_from(["valid", "none", "wrong"]), query=st.sampled_from(["", "a=1", "%FF"]))
def test_random_twilio_requests_answer_alike(pair, fields, raw, content_type, signed, query):
    body = raw if raw is not None else urlencode(fields)
    request = _signed_form(fields, query)
    if signed != "valid":
        request["headers"] = {"X-Twilio-Signature": "bm9wZQ=="} if signed == "wrong" else {}
    pair.send(SMS, body, content_type=content_type, **request)


@FUZZ
@given(update=st.recursive(st.none() | st.booleans() | st.integers() | TEXT,
                           lambda c: st.lists(c, max_size=4) | st.dictionaries(TEXT, c, max_size=4), max_leaves=20)
       | st.builds(lambda uid, text_, kind: {"update_id": uid, "message": {
           "message_id": 1, "chat": {"id": 5, "type": kind}, "from": {"id": 5, "is_bot": False}, "text": text_}},
           st.integers(-5, 10**6), TEXT, st.sampled_from(["private", "group"])),
       raw=st.none() | st.binary(max_size=200), secret=st.sampled_from([TELEGRAM_SECRET, None, "wrong"]))
def test_random_telegram_requests_answer_alike(pair, update, raw, secret):
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {}
    pair.send(TG, raw if raw is not None else json.dumps(update), content_type="application/json", headers=headers)
