"""The channels' case tables (bots/*/testdata) replayed through the real Flask webhooks and database."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from service.models import Contact, InboundMessage, OutboundMessage
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
    assert row.payload.get("button_payload") == expected.get("extra", {}).get("button_payload")
    assert "López" not in repr(row.payload) and "WaId" not in repr(row.payload), "no WhatsApp profile is kept"


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
    effect = case.get("effect")
    if effect:
        contact_id = _plant_sent_message(harness, case["update"]["provider_id"])
    url, signature = signed_request(harness.settings, case)
    headers = {"X-Twilio-Signature": signature} if signature else {}
    response = harness.client.post(url.removeprefix(harness.settings.public_url), data=case["form"], headers=headers)
    assert response.status_code == case["status"]
    if case["status"] != 200:
        assert response.get_json()["error"]["code"] == case["error_code"]
    if effect:
        with harness.rt.sessions() as session:
            contact = session.get(Contact, contact_id)
            message = session.scalars(select(OutboundMessage)).one()
        assert (message.status, message.error_code) == (effect["message_status"], case["update"]["error_code"])
        assert (contact.unreachable, contact.opted_out) == (effect["unreachable"], effect["opted_out"])
        assert (contact.opt_in_withdrawn_at is not None) == effect["opted_out"], "opting out withdraws the opt-in"


def _plant_sent_message(harness: Harness, provider_id: str) -> int:
    """A WhatsApp contact (with an opt-in) and a message to them that Twilio took as `provider_id`."""
    from datetime import UTC, datetime

    now = harness.clock.now
    with harness.rt.sessions() as session, session.begin():
        contact = Contact(public_id="a1b2c3d4e5f60718", channel="whatsapp",
                          address_hash=harness.rt.vault.hash("whatsapp", "+525587654321"),
                          address_enc=harness.rt.vault.encrypt("whatsapp:+525587654321"), tags=[],
                          opt_in_at=datetime(2026, 1, 15, tzinfo=UTC), opt_in_source="registro")
        session.add(contact)
        session.flush()
        session.add(OutboundMessage(contact_id=contact.id, channel="whatsapp", kind="invite", body="", payload={},
                                    status="sent", provider_id=provider_id, created_at=now, sent_at=now))
        return contact.id


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
