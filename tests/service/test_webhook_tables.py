"""The channels' case tables (bots/*/testdata) replayed through the real Flask webhooks and database."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from service.models import InboundMessage
from tests.bots.fakes import case_ids, load_table
from tests.bots.test_telegram import secret_header
from tests.bots.test_twilio import signed_request
from tests.support import Harness

TWILIO = load_table("twilio/testdata/incoming.json")
STATUS = load_table("twilio/testdata/status.json")
TELEGRAM = load_table("telegram/testdata/incoming.json")
CONSOLE = load_table("console/testdata/incoming.json")


@pytest.fixture
def make_harness(sqlite_url, providers, tmp_path):
    made = []

    def make(settings: dict | None) -> Harness:
        overrides = {k: v for k, v in (settings or {}).items() if not k.endswith("api_base")}
        harness = Harness(sqlite_url, providers, tmp_path, **overrides)
        made.append(harness)
        return harness

    yield make
    for harness in made:
        harness.close()


def _stored(harness: Harness) -> list[InboundMessage]:
    with harness.rt.sessions() as session:
        return list(session.scalars(select(InboundMessage)))


def _check_stored(harness: Harness, case: dict) -> None:
    rows = _stored(harness)
    if case["status"] != 200 or case.get("message") is None:
        assert rows == []
        return
    [row] = rows
    expected = case["message"]
    assert row.channel == expected["channel"]
    assert row.body == expected.get("text", "")
    if expected.get("provider_id"):
        assert row.provider_id == expected["provider_id"]
    assert harness.rt.vault.decrypt(row.address_enc).endswith(expected["address"].lstrip("+")[-8:])
    assert row.payload.get("kind", "text") == expected.get("kind", "text")


@pytest.mark.parametrize("case", TWILIO["cases"], ids=case_ids(TWILIO))
def test_twilio_sms_webhook(make_harness, case):
    harness = make_harness(TWILIO["settings"])
    url, signature = signed_request(harness.settings, case)
    path = url.removeprefix(harness.settings.public_url)
    headers = {"X-Twilio-Signature": signature} if signature else {}
    response = harness.client.post(path, data=case["form"], headers=headers)
    assert response.status_code == case["status"], response.get_data(as_text=True)
    if response.status_code == 200:
        assert response.get_data(as_text=True).endswith("<Response/>")
    else:
        assert response.get_json()["error"]["code"] == case["error_code"]
    _check_stored(harness, case)
    again = harness.client.post(path, data=case["form"], headers=headers)
    assert again.status_code == case["status"]
    assert len(_stored(harness)) == (1 if case["status"] == 200 and case.get("message") else 0)


@pytest.mark.parametrize("case", STATUS["cases"], ids=case_ids(STATUS))
def test_twilio_status_webhook(make_harness, case):
    harness = make_harness(STATUS["settings"])
    url, signature = signed_request(harness.settings, case)
    headers = {"X-Twilio-Signature": signature} if signature else {}
    response = harness.client.post(url.removeprefix(harness.settings.public_url), data=case["form"], headers=headers)
    assert response.status_code == case["status"]
    if case["status"] != 200:
        assert response.get_json()["error"]["code"] == case["error_code"]


@pytest.mark.parametrize("case", TELEGRAM["cases"], ids=case_ids(TELEGRAM))
def test_telegram_webhook(make_harness, case):
    harness = make_harness(TELEGRAM["settings"])
    secret = secret_header(harness.settings, case)
    headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {}
    raw = json.dumps(case["body"], ensure_ascii=False).encode()
    response = harness.client.post("/webhooks/telegram", data=raw, headers=headers, content_type="application/json")
    assert response.status_code == case["status"], response.get_data(as_text=True)
    if case["status"] != 200:
        assert response.get_json()["error"]["code"] == case["error_code"]
    _check_stored(harness, case)


@pytest.mark.parametrize("case", CONSOLE["cases"], ids=case_ids(CONSOLE))
def test_console_webhook(make_harness, case):
    harness = make_harness(None)
    raw = json.dumps(case["body"], ensure_ascii=False).encode()
    response = harness.client.post("/webhooks/console", data=raw, content_type="application/json")
    expected = 202 if case["status"] == 200 else case["status"]
    assert response.status_code == expected, response.get_data(as_text=True)
    _check_stored(harness, case)
