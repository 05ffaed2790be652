"""A 2xx means stored: with Redis unreachable webhooks still store and answer; with the database down, 503."""

from __future__ import annotations

from service import runtime as runtimes
from service.app import create_app
from service.queue import EmbeddedDispatcher, RedisDispatcher
from tests.processes import free_port
from tests.support import Harness, twilio_form, twilio_signature

PHONE = "+525512345678"


def test_redis_down_still_stores_and_answers_then_the_sweeper_catches_up(sqlite_url, providers, tmp_path):
    harness = Harness(sqlite_url, providers, tmp_path)
    embedded = harness.rt.dispatcher
    harness.rt.dispatcher = RedisDispatcher(f"redis://127.0.0.1:{free_port()}/0")
    try:
        response = harness.sms(PHONE, "Hola")
        assert response.status_code == 200
        assert harness.count("SELECT count(*) FROM inbound_messages WHERE status = 'pending'") == 1
        assert harness.rt.dispatcher.failures == 1
        health = harness.client.get("/healthz")
        assert health.status_code == 503 and health.get_json()["queue"] == "unavailable"
        harness.rt.dispatcher = embedded
        harness.clock.advance(seconds=10)
        assert harness.sweep()["inbound"] == 1
        assert len(harness.texts_to(PHONE)) == 1
    finally:
        harness.close()


def test_database_down_answers_503_never_2xx(sqlite_url, providers, tmp_path):
    from tests.support import PUBLIC_URL, make_settings

    settings = make_settings(f"postgresql+psycopg://postgres@127.0.0.1:{free_port()}/none", providers.url, tmp_path)
    runtime = runtimes.build(settings, dispatcher=EmbeddedDispatcher())
    client = create_app(runtime=runtime).test_client()
    form = twilio_form(PHONE, "hola", "SM" + "9" * 32)
    path = "/webhooks/twilio/sms"
    response = client.post(path, data=form, headers={"X-Twilio-Signature": twilio_signature(PUBLIC_URL + path, form)})
    assert response.status_code == 503
    assert response.headers["Retry-After"]
    assert response.get_json()["error"]["code"] == "database_unavailable"
    telegram = client.post("/webhooks/telegram", json={"update_id": 5, "message": {
        "message_id": 1, "chat": {"id": 5, "type": "private"}, "from": {"id": 5, "is_bot": False, "first_name": "A"},
        "date": 1, "text": "hola"}}, headers={"X-Telegram-Bot-Api-Secret-Token": settings.telegram_webhook_secret})
    assert telegram.status_code == 503
    health = client.get("/healthz")
    assert health.status_code == 503 and health.get_json()["database"] == "unavailable"
    runtime.engine.dispose()
