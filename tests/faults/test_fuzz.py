"""Property-based fuzzing of every webhook and API endpoint: only 2xx/4xx, never 5xx; stored input never crashes a worker.

Random forms, JSON, bytes, huge bodies, invalid UTF-8, wrong content types, missing and repeated fields, with and
without valid signatures (a valid signature lets random content reach storage and the workers).
"""

from __future__ import annotations

import json
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support import PUBLIC_URL, TELEGRAM_SECRET, Harness, twilio_signature

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                          HealthCheck.too_slow])
TEXT = st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=300)
FIELD = st.sampled_from(["MessageSid", "SmsSid", "From", "To", "Body", "NumMedia", "AccountSid", "MessageStatus",
                         "ErrorCode", "ButtonText", "Latitude", "WaId"]) | st.text(max_size=20)
FORMS = st.lists(st.tuples(FIELD, TEXT | st.sampled_from(["+525512345678", "whatsapp:+5215512345678", "SMx1", "3"])),
                 max_size=12)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | TEXT,
    lambda children: st.lists(children, max_size=5) | st.dictionaries(TEXT, children, max_size=5),
    max_leaves=30,
)
UPDATE_KEYS = st.sampled_from(["message", "edited_message", "callback_query", "channel_post", "my_chat_member"])
MESSAGE = st.fixed_dictionaries(
    {"message_id": st.integers(0, 10**9), "chat": st.fixed_dictionaries({"id": st.integers(-10**12, 10**12),
                                                                          "type": st.sampled_from(["private", "group"])})},
    optional={"text": TEXT, "from": st.fixed_dictionaries({"id": st.integers(1, 10**9), "is_bot": st.booleans()},
                                                         optional={"language_code": TEXT}),
              "date": st.integers(), "sticker": JSON, "contact": JSON, "data": TEXT},
)
UPDATES = st.builds(lambda uid, key, body: {"update_id": uid, key: body}, st.integers(-10, 10**12), UPDATE_KEYS,
                    MESSAGE | JSON)
BODIES = st.binary(max_size=2000) | st.sampled_from([b"\xff\xfe\xfd", b"{" * 5000, b"\x00" * 100,
                                                     b"a=" + b"x" * 200_000, b'{"update_id": 1}'])
CONTENT_TYPES = st.sampled_from([
    "application/x-www-form-urlencoded", "application/json", "text/plain", "multipart/form-data",
    "application/xml", "", "application/x-www-form-urlencoded; charset=latin-1",
])


@pytest.fixture
def h(sqlite_url, providers, tmp_path):
    harness = Harness(sqlite_url, providers, tmp_path)
    yield harness
    harness.close()


def _ok(response) -> None:
    assert response.status_code < 500, (response.status_code, response.get_data(as_text=True)[:300])


def _settle_without_failures(h: Harness) -> None:
    h.settle()
    assert h.count("SELECT count(*) FROM inbound_messages WHERE status = 'failed'") == 0
    assert h.count("SELECT count(*) FROM inbound_messages WHERE status = 'pending'") == 0


@FUZZ
@given(form=FORMS, signed=st.booleans(), path=st.sampled_from(["/webhooks/twilio/sms", "/webhooks/twilio/status"]))
def test_twilio_webhooks_never_5xx(h, form, signed, path):
    headers = {"X-Twilio-Signature": twilio_signature(PUBLIC_URL + path, form)} if signed else {}
    _ok(h.client.post(path, data=urlencode(form), headers=headers,
                      content_type="application/x-www-form-urlencoded"))
    _settle_without_failures(h)


@FUZZ
@given(update=UPDATES | JSON, secret=st.sampled_from([TELEGRAM_SECRET, None, "wrong"]))
def test_telegram_webhook_never_5xx(h, update, secret):
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {}
    _ok(h.client.post("/webhooks/telegram", data=json.dumps(update), headers=headers,
                      content_type="application/json"))
    _settle_without_failures(h)


@FUZZ
@given(body=BODIES, content_type=CONTENT_TYPES, path=st.sampled_from([
    "/webhooks/twilio/sms", "/webhooks/twilio/status", "/webhooks/telegram", "/webhooks/console",
]), signed=st.booleans())
def test_raw_bodies_never_5xx(h, body, content_type, path, signed):
    headers = {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET} if signed else {}
    if signed and path.startswith("/webhooks/twilio"):
        headers = {"X-Twilio-Signature": twilio_signature(PUBLIC_URL + path, {})}
    _ok(h.client.post(path, data=body, headers=headers, content_type=content_type))
    _settle_without_failures(h)


@FUZZ
@given(data=JSON)
def test_console_webhook_never_5xx(h, data):
    _ok(h.client.post("/webhooks/console", data=json.dumps(data), content_type="application/json"))
    _settle_without_failures(h)


@FUZZ
@given(
    path=st.sampled_from([
        "/api/v1/surveys", "/api/v1/surveys/reintegracion-mx", "/api/v1/surveys/{x}",
        "/api/v1/surveys/reintegracion-mx/responses", "/api/v1/surveys/{x}/responses", "/healthz", "/metrics",
        "/dashboard", "/webhooks/console/replies", "/api/v1/nothing",
    ]),
    query=st.dictionaries(st.sampled_from(["format", "include_contact", "version", "address", "after", "x"]),
                          TEXT, max_size=3),
    token=st.sampled_from(["staff", "analyst", "none", "garbage"]),
    method=st.sampled_from(["GET", "POST", "PUT", "DELETE"]),
    x=st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=1, max_size=40),
)
def test_api_never_5xx(h, path, query, token, method, x):
    tokens = {"staff": h.staff_token, "analyst": h.analyst_token, "none": None, "garbage": "rt_nope"}
    headers = {"Authorization": f"Bearer {tokens[token]}"} if tokens[token] else {}
    _ok(h.client.open(path.replace("{x}", x.replace("/", "_")), method=method, query_string=query, headers=headers))


@FUZZ
@given(body=TEXT | st.binary(max_size=400).map(lambda b: b.decode("utf-8", "replace")),
       extra=FORMS, sid=st.integers(0, 10**12), sender=st.integers(0, 999))
def test_any_text_that_is_stored_is_processed(h, body, extra, sid, sender):
    form = [*extra, ("MessageSid", f"SM{sid:032d}"), ("From", f"+52551000{sender:04d}"), ("Body", body),
            ("AccountSid", "AC" + "a" * 32), ("To", "+15005550006")]
    form = list({k: v for k, v in form}.items())
    path = "/webhooks/twilio/sms"
    response = h.client.post(path, data=urlencode(form), content_type="application/x-www-form-urlencoded",
                             headers={"X-Twilio-Signature": twilio_signature(PUBLIC_URL + path, form)})
    _ok(response)
    _settle_without_failures(h)
