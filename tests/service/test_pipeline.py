"""Messages through the real webhooks, database and queue code, on SQLite and on PostgreSQL."""

from __future__ import annotations

from tests.surveys.test_engine import RETURNEE_SCRIPT

PHONE = "+525512345678"


def _play_sms(harness, phone: str, script) -> None:
    harness.sms(phone, "Hola")
    harness.settle()
    for text, _, _ in script:
        assert harness.sms(phone, text).status_code == 200
        harness.settle()


def test_sms_conversation_end_to_end(harness):
    response = harness.sms(PHONE, "Hola")
    assert response.status_code == 200
    assert response.mimetype == "application/xml"
    assert "<Response" in response.get_data(as_text=True)
    harness.settle()
    texts = harness.texts_to(PHONE)
    assert len(texts) == 1 and "¿Acepta? (SI/NO)" in texts[0]
    for text, _, _ in RETURNEE_SCRIPT:
        harness.sms(PHONE, text)
        harness.settle()
    [record] = harness.responses()
    assert record["status"] == "completed"
    assert record["channel"] == "sms"
    assert record["address"] == PHONE
    assert record["answers"] == {q: v for _, q, v in RETURNEE_SCRIPT}
    assert "30 MXN" in harness.texts_to(PHONE)[-1]
    assert len(harness.texts_to(PHONE)) == len(RETURNEE_SCRIPT) + 1


def test_addresses_are_encrypted_and_exports_pseudonymous(harness):
    harness.sms(PHONE, "Hola")
    harness.settle()
    with harness.rt.engine.connect() as connection:
        from sqlalchemy import text

        dump = " ".join(
            str(row)
            for table in ("contacts", "inbound_messages", "outbound_messages")
            for row in connection.execute(text(f"SELECT * FROM {table}"))
        )
    assert "5512345678" not in dump
    response = harness.api("/api/v1/surveys/reintegracion-mx/responses")
    [record] = response.get_json()
    assert "address" not in record
    assert record["respondent_id"] and "5512345678" not in record["respondent_id"]


def test_whatsapp_is_answered_on_whatsapp(harness):
    harness.sms("whatsapp:+5215512345678", "hola")
    harness.settle()
    [sent] = harness.providers.messages
    assert sent.channel == "whatsapp"
    assert sent.to == "+5215512345678"
    assert "whatsapp:+5215512345678" in harness.providers.requests[-1][1].replace("%3A", ":").replace("%2B", "+")


def test_redelivered_messages_are_stored_and_answered_once(harness):
    harness.sms(PHONE, "Hola", sid="SM" + "1" * 32)
    harness.settle()
    harness.sms(PHONE, "si", sid="SM" + "2" * 32)
    harness.sms(PHONE, "si", sid="SM" + "2" * 32)
    harness.settle()
    harness.sms(PHONE, "si", sid="SM" + "2" * 32)
    harness.settle()
    assert harness.count("SELECT count(*) FROM inbound_messages") == 2
    assert len(harness.texts_to(PHONE)) == 2
    [record] = harness.responses()
    assert record["answers"] == {"consent": "yes"}


def test_stop_mid_survey_stops_every_further_message(harness):
    _play_sms(harness, PHONE, RETURNEE_SCRIPT[:5])
    before = len(harness.texts_to(PHONE))
    harness.sms(PHONE, "STOP")
    harness.settle()
    assert harness.texts_to(PHONE)[-1].startswith("Listo, ya no le escribiremos")
    for text in ("hola", "1", "encuesta", "ayuda"):
        harness.sms(PHONE, text)
        harness.settle()
    assert len(harness.texts_to(PHONE)) == before + 1
    [record] = harness.responses()
    assert record["status"] == "opted_out"
    harness.sms(PHONE, "ALTA")
    harness.settle()
    assert "Gracias por volver" in "\n".join(harness.texts_to(PHONE)[-2:])


def test_stop_cancels_messages_already_queued(harness):
    harness.sms(PHONE, "Hola")
    harness.sms(PHONE, "STOP")
    harness.settle()
    texts = harness.texts_to(PHONE)
    assert texts == ["Listo, ya no le escribiremos. Para volver, escriba ALTA."]
    assert harness.count("SELECT count(*) FROM outbound_messages WHERE status = 'cancelled'") == 1


def test_telegram_conversation_with_buttons(harness):
    chat = 5550001
    assert harness.telegram_text(chat, "/start").status_code == 200
    harness.settle()
    [consent] = harness.providers.to(str(chat))
    assert consent.buttons == ["consent=yes", "consent=no"]
    harness.telegram_button(chat, "consent=yes")
    harness.settle()
    harness.telegram_button(chat, "age_band=25-34")
    harness.settle()
    question = harness.providers.to(str(chat))[-1]
    assert question.buttons == ["returned=returnee", "returned=community"]
    assert len(harness.providers.acks) == 2
    harness.telegram_button(chat, "returned=community")
    harness.settle()
    [record] = harness.responses()
    assert record["channel"] == "telegram"
    assert record["answers"] == {"consent": "yes", "age_band": "25-34", "returned": "community"}


def test_telegram_stickers_and_edits_get_a_hint(harness):
    chat = 5550002
    harness.telegram_text(chat, "hola")
    harness.settle()
    update = {"update_id": 90001, "message": {"message_id": 7, "from": {"id": chat, "is_bot": False, "first_name": "A"},
              "chat": {"id": chat, "type": "private"}, "date": 1772474400,
              "sticker": {"file_id": "CAAC", "file_unique_id": "x", "width": 512, "height": 512,
                          "is_animated": False, "is_video": False, "type": "regular"}}}
    assert harness.telegram(update).status_code == 200
    edited = {"update_id": 90002, "edited_message": {"message_id": 8, "from": {"id": chat, "is_bot": False, "first_name": "A"},
              "chat": {"id": chat, "type": "private"}, "date": 1772474400, "edit_date": 1772474460, "text": "no"}}
    assert harness.telegram(edited).status_code == 200
    harness.settle()
    texts = harness.texts_to(str(chat))
    hints = [t for t in texts[1:] if "¿Acepta?" not in t]
    assert hints[0].startswith("Solo puedo leer texto")
    assert hints[1].startswith("Los mensajes editados no cuentan")
    [record] = harness.responses()
    assert record["answers"] == {}


def test_unsigned_and_wrongly_signed_webhooks_are_refused(harness):
    assert harness.sms(PHONE, "hola", signed=False).status_code == 403
    form = {"MessageSid": "SMx", "From": PHONE, "Body": "hola"}
    bad = harness.client.post("/webhooks/twilio/sms", data=form, headers={"X-Twilio-Signature": "bm9wZQ=="})
    assert bad.status_code == 403
    assert harness.telegram({"update_id": 1}, secret="wrong").status_code == 403
    assert harness.telegram({"update_id": 1}, secret=None).status_code == 403
    assert harness.count("SELECT count(*) FROM inbound_messages") == 0


def test_malformed_bodies_get_4xx(harness):
    assert harness.telegram(["not", "an", "update"]).status_code == 400
    response = harness.client.post(
        "/webhooks/telegram", data=b"\xff\xfe{", content_type="application/json",
        headers={"X-Telegram-Bot-Api-Secret-Token": "telegram-webhook-secret"},
    )
    assert response.status_code == 400
    assert response.get_json()["error"]["code"]


def test_status_callbacks_record_delivery(harness):
    harness.sms(PHONE, "Hola")
    harness.settle()
    [sent] = harness.providers.messages
    assert harness.status(sent.provider_id, "sent").status_code == 200
    assert harness.status(sent.provider_id, "delivered").status_code == 200
    assert harness.status(sent.provider_id, "sent").status_code == 200
    assert harness.count("SELECT count(*) FROM outbound_messages WHERE status = 'delivered'") == 1
    assert harness.status("SM" + "f" * 32, "delivered").status_code == 200, "an unknown message is acknowledged"
    assert harness.status("SM-unknown", "delivered").status_code == 400, "a malformed SID is refused"


def test_provider_errors_are_retried_with_backoff(harness):
    harness.providers.fail_next("twilio", 500, {"code": 20500, "message": "Internal Server Error"})
    harness.providers.fail_next("twilio", 429, {"code": 20429, "message": "Too Many Requests"})
    harness.sms(PHONE, "Hola")
    harness.settle()
    assert harness.texts_to(PHONE) == []
    for _ in range(3):
        harness.clock.advance(seconds=30)
        harness.sweep()
    assert len(harness.texts_to(PHONE)) == 1
    assert harness.count("SELECT attempts FROM outbound_messages") == 3


def test_unsubscribed_number_marks_the_contact_unreachable(harness):
    harness.providers.fail_next("twilio", 400, {"code": 21610, "message": "Attempt to send to unsubscribed recipient"})
    harness.sms(PHONE, "Hola")
    harness.settle()
    assert harness.count("SELECT count(*) FROM contacts WHERE unreachable") == 1
    assert harness.count("SELECT count(*) FROM outbound_messages WHERE status = 'failed'") == 1


def test_blocked_telegram_bot_marks_the_contact_unreachable(harness):
    harness.providers.fail_next("telegram", 403, {"ok": False, "error_code": 403,
                                                  "description": "Forbidden: bot was blocked by the user"})
    harness.telegram_text(5550003, "hola")
    harness.settle()
    assert harness.count("SELECT count(*) FROM contacts WHERE unreachable") == 1


def test_messages_stored_while_the_queue_lost_them_are_swept(harness):
    harness.sms(PHONE, "Hola")
    harness.rt.dispatcher.boxes["inbox"].clear()
    harness.rt.dispatcher.jobs.clear()
    harness.rt.dispatcher.scheduled.clear()
    harness.settle()
    assert harness.texts_to(PHONE) == []
    harness.clock.advance(seconds=10)
    assert harness.sweep()["inbound"] == 1
    assert len(harness.texts_to(PHONE)) == 1


def _engine_bug_on_boom(monkeypatch):
    """The engine fails on the text 'boom' (a bug met by one respondent); returns the real `engine.handle`."""
    from surveys import engine

    original = engine.handle

    def explode(definition, state, inbound, **kwargs):
        if inbound.text == "boom":
            raise RuntimeError("engine bug")
        return original(definition, state, inbound, **kwargs)

    monkeypatch.setattr(engine, "handle", explode)
    return original


def test_a_failing_message_is_set_aside_without_stopping_others(harness, monkeypatch):
    _engine_bug_on_boom(monkeypatch)
    harness.sms("+525511111111", "boom")
    harness.sms(PHONE, "Hola")
    harness.settle()
    assert len(harness.texts_to(PHONE)) == 1
    assert harness.count("SELECT count(*) FROM inbound_messages WHERE status = 'failed'") == 1
    assert harness.count("SELECT count(*) FROM inbound_messages WHERE status = 'done'") == 1


def test_messages_set_aside_are_shown_to_staff_and_can_be_processed_again(harness, monkeypatch):
    import json

    from click.testing import CliRunner

    from service import runtime as runtimes
    from service.cli import main
    from surveys import engine

    original = _engine_bug_on_boom(monkeypatch)
    harness.sms("+525511111111", "boom")
    harness.sms(PHONE, "Hola")
    harness.settle()
    assert "retorno_inbound_set_aside 1" in harness.client.get("/metrics").get_data(as_text=True)

    def cli(*args: str):
        env = {"DATABASE_URL": harness.settings.database_url, "RETORNO_SECRET_KEY": harness.settings.secret_key,
               "REDIS_URL": None}
        try:
            return CliRunner().invoke(main, list(args), env=env)
        finally:
            runtimes.install(harness.rt)

    listed = cli("inbox", "failed")
    assert listed.exit_code == 0, listed.output
    assert "1 message set aside" in listed.stdout and "RuntimeError: engine bug" in listed.stdout
    assert "5511111111" not in listed.stdout and "boom" not in listed.stdout
    [record] = json.loads(cli("inbox", "failed", "--json", "--text").stdout)["messages"]
    assert (record["channel"], record["text"], record["attempts"]) == ("sms", "boom", 1)
    monkeypatch.setattr(engine, "handle", original)
    assert "1 message back in the inbox" in cli("inbox", "retry", "--all").stdout
    harness.clock.advance(seconds=10)
    harness.sweep()
    assert len(harness.texts_to("+525511111111")) == 1
    assert "retorno_inbound_set_aside 0" in harness.client.get("/metrics").get_data(as_text=True)
    assert cli("inbox", "failed").stdout.strip() == "no message is set aside"


def test_health_and_metrics(harness):
    response = harness.client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json()["status"] == "ok"
    webhooks = harness.client.get("/healthz/webhooks")
    assert webhooks.status_code == 200 and webhooks.get_json()["status"] == "ok"
    harness.sms(PHONE, "Hola")
    metrics = harness.client.get("/metrics").get_data(as_text=True)
    assert 'retorno_inbound_messages{status="pending"} 1' in metrics
    assert "retorno_processing_lag_seconds" in metrics
    assert "retorno_group_commit_rows 1" in metrics.splitlines()


def test_a_contact_another_worker_is_processing_is_left_to_it_not_waited_for(clean_postgres, providers, tmp_path):
    """Two workers' batches touching the same respondents: the second processes the others and pushes the rest
    back; when all it has are locked, it waits. Nothing is processed twice or out of order."""
    import threading

    from sqlalchemy import text

    from service.queue import INBOX
    from tests.support import Harness
    from workers import inbound

    h = Harness(clean_postgres, providers, tmp_path)
    try:
        busy, free = "+525511110000", "+525522220000"
        for phone in (busy, free):
            h.sms(phone, "Hola")
        h.settle()
        for phone in (busy, free):
            h.sms(phone, "si")
        ids = h.rt.dispatcher.pop(INBOX, 100)
        other = h.rt.engine.connect()
        other.begin()
        contact = other.execute(text("SELECT id FROM contacts ORDER BY id LIMIT 1 FOR UPDATE")).scalar_one()
        assert inbound.process(ids) == 1
        assert h.rt.dispatcher.pop(INBOX, 100) == [
            i for i in ids if h.count("SELECT contact_id FROM inbound_messages WHERE id = :i", i=i) is None]
        threading.Timer(0.5, other.rollback).start()
        assert inbound.process(ids) == 1  # all it has are locked: it waits for them
        other.close()
        assert h.count("SELECT count(*) FROM inbound_messages WHERE status = 'done'") == 4
        assert h.count("SELECT count(*) FROM inbound_messages WHERE contact_id = :c", c=contact) == 2
        h.settle()
        assert len(h.texts_to(busy)) == len(h.texts_to(free)) == 2
    finally:
        h.close()


def _pending_to_inbox(h) -> list[int]:
    """The harness's pushed ids, taken off its inbox (a test then drains them itself)."""
    from service.queue import INBOX

    return h.rt.dispatcher.pop(INBOX, 10_000)


def test_drain_writes_each_batch_while_preparing_the_next_on_postgresql(clean_postgres, providers, tmp_path,
                                                                        monkeypatch):
    """Batches of 2 over 9 respondents: every message processed once, in order, every reply queued once (a batch
    meeting respondents whose earlier batch is still being written pushes them back for after its commit)."""
    from service.queue import INBOX
    from tests.support import Harness
    from workers import inbound

    h = Harness(clean_postgres, providers, tmp_path)
    try:
        phones = [f"+5255333300{i:02d}" for i in range(9)]
        for phone in phones:
            h.sms(phone, "Hola")
        h.settle()
        for text, _, _ in RETURNEE_SCRIPT[:3]:
            for phone in phones:
                h.sms(phone, text)
        ids = _pending_to_inbox(h)
        h.rt.dispatcher.push(INBOX, ids, wake=False)
        monkeypatch.setattr(h.rt.dispatcher, "send_waiting", lambda: False)
        assert inbound.drain(max_seconds=30, batch=2) == len(ids) == 27
        assert h.rt.dispatcher.pop(INBOX, 100) == []
        assert h.count("SELECT count(*) FROM inbound_messages WHERE status <> 'done'") == 0
        assert h.count("SELECT count(*) FROM answers") == 27
        expected = {q: v for _, q, v in RETURNEE_SCRIPT[:3]}
        assert [r["answers"] for r in h.responses()] == [expected] * 9
        h.settle()
        assert {len(h.texts_to(phone)) for phone in phones} == {4}
    finally:
        h.close()


def test_a_batch_whose_writes_fail_is_processed_again(clean_postgres, providers, tmp_path, monkeypatch):
    """The writer thread's batch fails once at its writes: nothing of it was committed, and its messages are
    processed again, once."""
    from service.queue import INBOX
    from tests.support import Harness
    from workers import inbound

    h = Harness(clean_postgres, providers, tmp_path)
    write = inbound._Batch.write
    failures = []

    def failing_once(batch, session, result):
        if not failures:
            failures.append(result.processed)
            raise RuntimeError("disk full")
        return write(batch, session, result)

    try:
        phones = [f"+5255444400{i:02d}" for i in range(4)]
        for phone in phones:
            h.sms(phone, "Hola")
        ids = _pending_to_inbox(h)
        monkeypatch.setattr(inbound._Batch, "write", failing_once)
        h.rt.dispatcher.push(INBOX, ids, wake=False)
        assert inbound.drain(max_seconds=30, batch=2) == 4
        assert failures == [2]
        assert h.count("SELECT count(*) FROM inbound_messages WHERE status = 'done'") == 4
        assert h.count("SELECT count(*) FROM survey_sessions") == 4
        h.settle()
        assert {len(h.texts_to(phone)) for phone in phones} == {1}
    finally:
        h.close()
