"""The voice channel through the real webhooks, engine and database (SQLite and PostgreSQL): Twilio Voice's table
replayed, a whole survey by phone, re-prompts, repeat and help, hang-ups, the same person on SMS, call backs."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from service.models import Contact, InboundMessage, OutboundMessage
from tests.bots.fakes import case_ids, load_table
from tests.bots.test_voice import signed_request
from tests.support import TWILIO_FROM, TWILIO_SID, TWILIO_TOKEN
from tests.voice.caller import Phone, voice_form

TABLE = load_table("voice/testdata/incoming.json")


def as_harness(case: dict) -> dict:
    """A table case rewritten for the harness's Twilio account."""
    form = dict(case["form"])
    if form.get("AccountSid") == TABLE["settings"]["twilio_account_sid"]:
        form["AccountSid"] = TWILIO_SID
    return {**case, "form": form}


def inbound(harness) -> list[InboundMessage]:
    with harness.rt.sessions() as session:
        return list(session.scalars(select(InboundMessage).order_by(InboundMessage.id)))


@pytest.mark.parametrize("case", TABLE["cases"], ids=case_ids(TABLE))
def test_the_table_through_the_webhook(harness, case):
    case = as_harness(case)
    settings = replace(harness.settings, twilio_auth_token=TWILIO_TOKEN)
    url, signature = signed_request(settings, case)
    path = url.removeprefix(settings.public_url)
    headers = {"X-Twilio-Signature": signature} if signature else {}
    response = harness.client.post(path, data=case["form"], headers=headers)
    assert response.status_code == case["status"], response.get_data(as_text=True)
    rows = inbound(harness)
    if case["status"] != 200:
        assert response.get_json()["error"]["code"] == case["error_code"]
        assert rows == []
        return
    assert response.mimetype == "text/xml"
    xml = response.get_data(as_text=True)
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?><Response>') and "<Record" not in xml
    if case["incoming"] is None:
        assert rows == [] and "número visible" in xml and "<Hangup/>" in xml
        return
    [row] = rows
    assert row.channel == "voice" and row.status == "done"
    assert case["form"]["From"] not in repr(row.__dict__) and "5512345678" not in row.address_hash
    assert "<Gather " in xml, xml  # whatever the step, the caller is asked something (the consent, first)
    again = harness.client.post(path, data=case["form"], headers=headers)
    assert again.status_code == 200 and len(inbound(harness)) == 1


def test_a_whole_survey_by_keypad_and_speech(harness):
    phone = Phone(harness.client, "+525512345678")
    turn = phone.dial()
    assert "¿Acepta?" in turn.text and "marque 1" in turn.text and "asterisco para repetir" in turn.text
    assert turn.gather["numDigits"] == "1" and turn.gather["language"] == "es-MX"
    assert "numDigits" in turn.gather and turn.gather["input"] == "dtmf speech"
    steps = [("1", None), ("3", None), (None, "sí regresé"), ("3", None), ("2", None), (None, "mujer"),
             (None, "halisco")]
    for digits, speech in steps:
        turn = phone.answer(digits=digits, speech=speech)
    assert "¿Quiso decir Jalisco?" in turn.text and "mode=confirm" in turn.gather["action"]
    turn = phone.answer(digits="1")  # yes, Jalisco
    assert "alcanza su ingreso" in turn.text
    for _ in range(30):
        if turn.gather is None:
            break
        action = turn.gather["action"]
        if "q=community_need" in action:
            turn = phone.answer(digits="13#")
        else:
            turn = phone.answer(digits="1")
    assert turn.hung_up and "Gracias por completar" in turn.text
    [record] = harness.responses()
    assert record["channel"] == "voice" and record["status"] == "completed"
    answers = record["answers"]
    assert answers["age_band"] == "25-34" and answers["returned"] == "returnee" and answers["return_type"] == "deported"
    assert answers["assisted"] == "no" and answers["sex"] == "female" and answers["state"] == "14"
    assert answers["community_need"] == ["jobs", "schools"]
    harness.settle()
    assert harness.count("SELECT count(*) FROM incentives") == 1
    assert harness.count("SELECT count(*) FROM outbound_messages WHERE channel = 'voice' AND status <> 'sent'") == 0


def test_silence_and_nonsense_are_asked_again_then_the_call_ends(harness):
    phone = Phone(harness.client, "+525512345679")
    phone.dial()
    turn = phone.answer(digits="1")
    assert "¿Qué edad tiene?" in turn.text
    turn = phone.answer()
    assert turn.text.startswith("No escuchamos su respuesta.") and "¿Qué edad tiene?" in turn.text
    turn = phone.answer(speech="banana")
    assert "¿Qué edad tiene?" in turn.text
    turn = phone.answer(digits="9")
    assert "¿Qué edad tiene?" in turn.text
    turn = phone.answer()
    assert turn.hung_up and "No logramos entender" in turn.text


def test_star_repeats_without_counting_and_zero_helps(harness):
    phone = Phone(harness.client, "+525512345680")
    phone.dial()
    phone.answer(digits="1")
    for _ in range(5):
        turn = phone.answer(digits="*")
        assert turn.text.startswith("¿Qué edad tiene?") and not turn.hung_up
    turn = phone.answer(digits="0")
    assert "Programa Retorno: 55 1234 5678" in turn.text and "¿Qué edad tiene?" in turn.text
    turn = phone.answer(digits="2")
    assert "¿Ha vivido fuera de México?" in turn.text


def test_a_hang_up_is_resumed_by_the_next_call(harness):
    phone = Phone(harness.client, "+525512345681")
    phone.dial()
    phone.answer(digits="1")
    phone.answer(digits="2")  # 18-24; then the caller hangs up
    turn = phone.dial()
    assert "Hola de nuevo" in turn.text and "¿Ha vivido fuera de México?" in turn.text
    assert phone.turn.gather["action"].startswith("https://retorno.example.org/webhooks/twilio/voice?step=1&q=returned")
    phone.answer(digits="2")
    [record] = harness.responses()
    assert record["answers"]["age_band"] == "18-24" and record["answers"]["returned"] == "community"


def test_a_call_then_sms_then_a_call_is_one_session(harness):
    number = "+525512345682"
    phone = Phone(harness.client, number)
    phone.dial()
    phone.answer(digits="1")
    phone.answer(digits="3")  # 25-34 by phone
    assert harness.sms(number, "2").status_code == 200  # "No, nunca me fui" by SMS
    harness.settle()
    assert "¿Usted es mujer u hombre?" in harness.texts_to(number)[-1]
    turn = phone.dial()
    assert "¿Usted es mujer u hombre?" in turn.text
    phone.answer(speech="hombre")
    [record] = harness.responses()
    assert record["answers"] == {"consent": "yes", "age_band": "25-34", "returned": "community", "sex": "male"}
    assert harness.count("SELECT count(*) FROM survey_sessions") == 1


def test_sms_first_then_a_call_goes_on_and_is_paid_once(harness):
    number = "+525512345683"
    harness.sms(number, "ENCUESTA")
    harness.settle()
    harness.sms(number, "si")
    harness.settle()
    phone = Phone(harness.client, number)
    turn = phone.dial()
    assert "¿Qué edad tiene?" in turn.text
    for _ in range(30):
        if turn.gather is None:
            break
        turn = phone.answer(digits="13#" if "q=community_need" in turn.gather["action"] else "2")
        if "mode=speech" in (turn.gather or {}).get("action", ""):
            turn = phone.answer(speech="Oaxaca")
            if turn.gather and "mode=confirm" in turn.gather["action"]:
                turn = phone.answer(digits="1")
    assert "Gracias por completar" in turn.text
    harness.settle()
    assert harness.count("SELECT count(*) FROM survey_sessions") == 1
    assert harness.count("SELECT count(*) FROM incentives") == 1
    harness.sms(number, "ENCUESTA")
    phone.dial()
    harness.settle()
    assert harness.count("SELECT count(*) FROM incentives") == 1


def test_english_is_spoken_in_english(harness):
    phone = Phone(harness.client, "+525512345684")
    phone.dial()
    turn = phone.answer(speech="English")
    assert 'language="en-US"' in turn.xml and turn.gather["language"] == "en-US" and "Agree?" in turn.text
    turn = phone.answer(digits="1")
    assert "How old are you?" in turn.text and "press 1" in turn.text


def test_a_stop_said_on_the_phone_ends_the_call(harness):
    phone = Phone(harness.client, "+525512345685")
    phone.dial()
    turn = phone.answer(speech="Baja")
    assert turn.hung_up and "ALTA" in turn.text
    turn = phone.dial()
    assert turn.hung_up and "<Gather" not in turn.xml


def callback_harness(harness, at: datetime):
    harness.rt.settings = replace(harness.rt.settings, voice_callback=True)
    harness.clock.now = at
    return harness


def test_a_missed_call_is_rejected_and_called_back_once(harness, providers):
    callback_harness(harness, datetime(2026, 3, 2, 18, 0, tzinfo=UTC))  # noon in Mexico City
    phone = Phone(harness.client, "+525512345686")
    turn = phone.dial()
    assert turn.xml.endswith('<Response><Reject reason="busy"/></Response>')
    assert phone.dial().xml.endswith('<Reject reason="busy"/></Response>')  # again: still one call back
    harness.settle()
    assert [c["To"] for c in providers.calls] == ["+525512345686"]
    call = providers.calls[0]
    assert call["Url"] == "https://retorno.example.org/webhooks/twilio/voice" and call["StatusCallbackEvent"] == "completed"
    assert "Record" not in call
    picked = Phone(harness.client, "+525512345686", direction="outbound-api")
    turn = picked.dial(call["sid"])
    assert "¿Acepta?" in turn.text
    status = voice_form("+525512345686", call["sid"], "outbound-api", "completed", CallDuration="95",
                        CallbackSource="call-progress-events", Timestamp="Mon, 02 Mar 2026 18:02:00 +0000",
                        SequenceNumber="0")
    assert picked.post("https://retorno.example.org/webhooks/twilio/voice/status", status).status == 200
    with harness.rt.sessions() as session:
        message = session.scalars(select(OutboundMessage).where(OutboundMessage.kind == "callback")).one()
        assert message.status == "delivered" and message.provider_id == call["sid"]
        assert session.scalars(select(Contact.channel)).all() == ["voice"]
    harness.clock.advance(hours=30)
    phone.dial()
    harness.settle()
    assert len(providers.calls) == 2  # a day later, a new missed call is called back


def test_quiet_hours_hold_the_call_back_until_morning(harness, providers):
    callback_harness(harness, datetime(2026, 3, 2, 9, 0, tzinfo=UTC))  # 03:00 in Mexico City
    Phone(harness.client, "+525512345687").dial()
    harness.sweep()
    assert providers.calls == []
    harness.clock.advance(hours=4, minutes=59)  # 07:59
    harness.sweep()
    assert providers.calls == []
    harness.clock.advance(minutes=2)  # 08:01
    harness.sweep()
    assert [c["To"] for c in providers.calls] == ["+525512345687"]


def test_a_busy_call_back_is_failed_with_its_reason(harness, providers):
    callback_harness(harness, datetime(2026, 3, 2, 18, 0, tzinfo=UTC))
    phone = Phone(harness.client, "+525512345688")
    phone.dial()
    harness.settle()
    sid = providers.calls[0]["sid"]
    form = voice_form("+525512345688", sid, "outbound-api", "busy", CallDuration="0", SipResponseCode="486")
    phone.post("https://retorno.example.org/webhooks/twilio/voice/status", form)
    with harness.rt.sessions() as session:
        message = session.scalars(select(OutboundMessage).where(OutboundMessage.kind == "callback")).one()
    assert (message.status, message.error_code) == ("failed", "busy")


def test_nothing_in_clear(harness, caplog):
    number = "+525512345689"
    phone = Phone(harness.client, number)
    phone.dial()
    phone.answer(digits="1")
    phone.answer(speech="tengo 40 años")
    with harness.rt.engine.connect() as connection:
        from sqlalchemy import text

        for table in ("contacts", "inbound_messages", "outbound_messages", "survey_sessions", "answers"):
            for row in connection.execute(text(f"SELECT * FROM {table}")):
                assert "5512345689" not in repr(tuple(row)), table
    assert "5512345689" not in caplog.text and TWILIO_FROM not in caplog.text


def test_a_campaign_invites_by_call(harness, providers):
    import io

    from service import campaigns
    from service.campaigns.timing import QuietHours
    from service.contacts import Report, load, read
    from workers import campaigns as sender

    harness.clock.now = datetime(2026, 3, 2, 18, 0, tzinfo=UTC)
    report = Report()
    load(harness.rt, read(io.StringIO("phone,channel,tags\n+525512345690,voice,returnee\n"), "MX", (), report), report)
    assert not report.problems, report.problems
    plan = campaigns.Plan(survey_id="reintegracion-mx", tag="returnee", channel="voice",
                          quiet_hours=QuietHours.parse("21:00-08:00"), rate=10.0)
    campaign = campaigns.create(harness.rt, plan)
    campaigns.start(harness.rt, campaign.id)
    sender.maintain()
    sender.tick(0)
    harness.settle()
    [call] = providers.calls
    assert call["To"] == "+525512345690" and call["Url"].endswith("/webhooks/twilio/voice")
    phone = Phone(harness.client, "+525512345690", direction="outbound-api")
    turn = phone.dial(call["sid"])
    assert "¿Acepta?" in turn.text
    turn = phone.answer(digits="1")
    assert "¿Qué edad tiene?" in turn.text
    status = voice_form("+525512345690", call["sid"], "outbound-api", "completed", CallDuration="40")
    phone.post("https://retorno.example.org/webhooks/twilio/voice/status", status)
    counts = harness.api(f"/api/v1/campaigns/{campaign.id}").get_json()["counts"]
    assert (counts["invited"], counts["delivered"], counts["started"], counts["consented"]) == (1, 1, 1, 1)


def test_a_database_outage_is_an_apology_not_a_5xx(harness, monkeypatch):
    from sqlalchemy.exc import OperationalError

    from service import voice as service_voice

    def down(*args, **kwargs):
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    monkeypatch.setattr(service_voice, "_before", down)
    turn = Phone(harness.client, "+525512345691").dial()
    assert turn.status == 200 and turn.hung_up and "llame más tarde" in turn.text
    monkeypatch.setattr(service_voice, "schedule_callback", down)
    harness.rt.settings = replace(harness.rt.settings, voice_callback=True)
    turn = Phone(harness.client, "+525512345692").dial()
    assert turn.status == 200 and "<Reject" not in turn.xml and "llame más tarde" in turn.text


def test_a_stop_said_on_a_call_stops_the_sms_too(harness):
    number = "+525512345693"
    harness.sms(number, "ENCUESTA")
    harness.settle()
    phone = Phone(harness.client, number)
    phone.dial()
    phone.answer(speech="baja")
    with harness.rt.sessions() as session:
        assert dict(session.execute(select(Contact.channel, Contact.opted_out)).all()) == {"sms": True, "voice": True}
    sent = len(harness.texts_to(number))
    harness.sms(number, "1")
    harness.settle()
    assert len(harness.texts_to(number)) == sent
    harness.sms(number, "ALTA")
    harness.settle()
    with harness.rt.sessions() as session:
        assert dict(session.execute(select(Contact.channel, Contact.opted_out)).all()) == {"sms": False, "voice": False}


VOICE_SURVEY = """
id: llamada
version: 1
title: {es: Llamada, en: Call}
languages: [es, en]
default_language: es
consent:
  text: {es: ¿Acepta contestar?, en: Do you agree to answer?}
questions:
  - id: children
    type: integer
    min: 0
    max: 20
    text: {es: ¿Cuántos hijos tiene?, en: How many children do you have?}
    audio: {es: "https://audio.example.org/hijos-es.mp3"}
  - id: town
    type: text
    required: false
    text: {es: ¿En qué pueblo vive?, en: Which town do you live in?}
  - id: story
    type: text
    required: false
    voice: false
    text: {es: Cuéntenos su regreso en pocas palabras., en: Tell us about your return in a few words.}
  - id: state
    type: region
    regions: mx-states
    text: {es: ¿En qué estado vive?, en: Which state do you live in?}
"""


def test_numbers_by_keypad_recordings_and_free_text_by_speech(sqlite_url, providers, tmp_path):
    from tests.support import Harness

    folder = tmp_path / "surveys"
    folder.mkdir()
    (folder / "llamada.yaml").write_text(VOICE_SURVEY, encoding="utf-8")
    harness = Harness(sqlite_url, providers, tmp_path, surveys_dir=folder, default_survey="llamada")
    try:
        phone = Phone(harness.client, "+525512345694")
        phone.dial()
        turn = phone.answer(digits="1")
        assert "<Play>https://audio.example.org/hijos-es.mp3</Play>" in turn.xml and "¿Cuántos hijos" not in turn.text
        assert turn.gather["finishOnKey"] == "#" and "mode=number" in turn.gather["action"]
        turn = phone.answer(digits="0#")  # zero children: 0 is a number here, not HELP
        assert "¿En qué pueblo vive?" in turn.text and "mode=speech" in turn.gather["action"]
        turn = phone.answer(speech="San Juan de los Lagos")
        assert "¿En qué estado vive?" in turn.text and "Jalisco" in turn.gather["hints"]  # 'story' is not asked
        turn = phone.answer(speech="en Jalisco")
        assert turn.hung_up
        [record] = harness.responses("llamada")
        assert record["answers"] == {"consent": "yes", "children": 0, "town": "San Juan de los Lagos", "state": "14"}
        assert record["channel"] == "voice"
    finally:
        harness.close()


def test_a_recording_must_be_https():
    from surveys.loader import SurveyError, load_text

    with pytest.raises(SurveyError, match="the 'es' recording must be an https:// URL"):
        load_text(VOICE_SURVEY.replace("https://audio", "http://audio"))
    with pytest.raises(SurveyError, match="'fr' is not one of languages"):
        load_text(VOICE_SURVEY.replace('audio: {es:', 'audio: {fr:'))
    with pytest.raises(SurveyError, match="voice: false is for optional text questions"):
        load_text(VOICE_SURVEY.replace("    required: false\n    voice: false", "    voice: false"))


def test_a_question_kept_from_calls_is_asked_by_sms(sqlite_url, providers, tmp_path):
    from tests.support import Harness

    folder = tmp_path / "surveys"
    folder.mkdir()
    (folder / "llamada.yaml").write_text(VOICE_SURVEY, encoding="utf-8")
    harness = Harness(sqlite_url, providers, tmp_path, surveys_dir=folder, default_survey="llamada")
    try:
        number = "+525512345696"
        for text in ("hola", "si", "2", "San Juan"):
            harness.sms(number, text)
            harness.settle()
        assert "Cuéntenos su regreso" in harness.texts_to(number)[-1]
    finally:
        harness.close()


def test_an_invitation_call_not_picked_up_is_placed_again_later(harness, providers):
    import io

    from service import campaigns
    from service.campaigns.timing import QuietHours
    from service.contacts import Report, load, read
    from workers import campaigns as sender

    harness.clock.now = datetime(2026, 3, 2, 18, 0, tzinfo=UTC)
    report = Report()
    load(harness.rt, read(io.StringIO("phone,channel,tags\n+525512345695,voice,returnee\n"), "MX", (), report), report)
    plan = campaigns.Plan(survey_id="reintegracion-mx", tag="returnee", channel="voice",
                          quiet_hours=QuietHours.parse("21:00-08:00"), rate=10.0)
    campaign = campaigns.create(harness.rt, plan)
    campaigns.start(harness.rt, campaign.id)
    sender.maintain()
    sender.tick(0)
    harness.settle()
    [call] = providers.calls
    phone = Phone(harness.client, "+525512345695", direction="outbound-api")
    busy = voice_form("+525512345695", call["sid"], "outbound-api", "no-answer", CallDuration="0")
    assert phone.post("https://retorno.example.org/webhooks/twilio/voice/status", busy).status == 200
    sender.maintain()
    sender.tick(0)
    harness.settle()
    assert len(providers.calls) == 1
    harness.clock.advance(hours=2, minutes=1)
    sender.maintain()
    sender.tick(0)
    harness.settle()
    assert [c["To"] for c in providers.calls] == ["+525512345695", "+525512345695"]
    turn = phone.dial(providers.calls[1]["sid"])
    assert "¿Acepta?" in turn.text
