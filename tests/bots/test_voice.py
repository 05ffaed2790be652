"""The voice channel's adapter: Twilio Voice's webhook table (bots/voice/testdata), the TwiML and the calls placed."""

from __future__ import annotations

import logging
import re
from urllib.parse import parse_qsl

import pytest
from twilio.request_validator import RequestValidator

import bots
from bots.base import Outgoing, Rejected
from bots.twilio import verify
from bots.voice import VoiceSender, parse_call, parse_prompt, parse_status, step_input, twiml
from surveys.engine import Reply, ReplyChoice
from tests.bots.fakes import case_ids, check_requests, fake_session, load_table, make_settings

TABLE = load_table("voice/testdata/incoming.json")
SETTINGS = make_settings(TABLE["settings"])
WRONG_SIGNATURE = "d2hhdGV2ZXIgdGhpcyBpcyBub3Q="


def signed_request(settings, case) -> tuple[str, str | None]:
    """(url, X-Twilio-Signature) for a case, as its 'signed' field describes."""
    path = settings.public_url + case["path"]
    url = path + (f"?{case['query']}" if case.get("query") else "")
    form = case["form"]
    validator = RequestValidator(settings.twilio_auth_token)
    signed = case["signed"]
    if signed is False:
        return url, None
    if signed == "wrong":
        return url, WRONG_SIGNATURE
    if signed == "other_url":
        return url, validator.compute_signature(settings.public_url + "/webhooks/twilio/elsewhere", form)
    if signed == "other_params":
        return url, validator.compute_signature(url, {**form, "Digits": form.get("Digits", "") + "1"})
    if signed == "other_query":
        return url, validator.compute_signature(path, form)
    assert signed is True
    return url, validator.compute_signature(url, form)


def expected_incoming(case) -> dict:
    want = {"channel": "voice", "text": "", "kind": "text", "button": None, **case["incoming"]}
    extra = {k: want.pop(k) for k in ("placed", "silence", "confidence") if k in want}
    return {**want, "extra": extra}


def received(incoming) -> dict:
    got = {"channel": incoming.channel, "text": incoming.text, "kind": incoming.kind, "button": incoming.button,
           "address": incoming.address, "provider_id": incoming.provider_id}
    return {**got, "extra": {k: v for k, v in incoming.extra.items() if k in ("placed", "silence", "confidence")}}


@pytest.mark.parametrize("case", TABLE["cases"], ids=case_ids(TABLE))
def test_incoming(case):
    url, signature = signed_request(SETTINGS, case)
    try:
        verify(SETTINGS, url, case["form"], signature)
        call = parse_call(case["form"], SETTINGS.twilio_account_sid)
        prompt = parse_prompt(dict(parse_qsl(case.get("query", ""))))
    except Rejected as rejected:
        assert (rejected.status, rejected.code) == (case["status"], case["error_code"])
        return
    assert case["status"] == 200
    if case["incoming"] is None:
        assert call.address is None
        return
    want = expected_incoming(case)
    got = received(step_input(call, prompt))
    assert {k: got[k] for k in want} == want


@pytest.mark.parametrize("case", TABLE["status_cases"], ids=[c["label"] for c in TABLE["status_cases"]])
def test_status(case):
    url, signature = signed_request(SETTINGS, case)
    try:
        verify(SETTINGS, url, case["form"], signature)
        update = parse_status(case["form"], SETTINGS.twilio_account_sid)
    except Rejected as rejected:
        assert (rejected.status, rejected.code) == (case["status"], case["error_code"])
        return
    assert case["status"] == 200
    assert {"status": update.status, "error_code": update.error_code} == case["update"]
    assert update.provider_id == case["form"]["CallSid"]


def test_the_voice_channel_is_registered():
    assert "voice" in bots.CHANNELS and "voice" in bots.SPOKEN
    assert isinstance(bots.make_sender("voice", SETTINGS), VoiceSender)
    body, payload = bots.render("voice", Reply("¿Trabaja?", "work", (ReplyChoice("yes", "Sí", "work=yes"),)))
    assert body == "¿Trabaja?"
    assert payload == {"question_id": "work", "choices": [{"value": "yes", "label": "Sí"}]}


def test_a_confirmation_is_marked_in_the_payload():
    reply = Reply("¿Quiso decir Jalisco?", "state", (ReplyChoice("yes", "Sí", "_confirm=yes"),
                                                        ReplyChoice("no", "No", "_confirm=no")))
    assert twiml.render(reply)[1]["confirm"] is True


def test_document_asks_inside_gather_and_escapes():
    ask = twiml.Ask("q1", "choice", ("a", "b"), ("Sí & no", "<b>"), hints=("sí",))
    xml = twiml.document(["Aviso.", "¿Pregunta (SI/NO)?"], "es", ask, "https://x/webhooks/twilio/voice?step=1&q=q1")
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?><Response><Say voice="Polly.Mia" language="es-MX">'
                          "Aviso.</Say><Gather ")
    assert 'input="dtmf speech"' in xml and 'language="es-MX"' in xml and 'actionOnEmptyResult="true"' in xml
    assert 'action="https://x/webhooks/twilio/voice?step=1&amp;q=q1"' in xml and 'numDigits="1"' in xml
    assert "Para Sí &amp; no, marque 1. Para &lt;b&gt;, marque 2." in xml
    assert "(SI/NO)" not in xml and "<Record" not in xml
    assert xml.endswith("</Gather></Response>")


def test_numbers_end_with_pound_and_english_has_its_voice():
    xml = twiml.document(["How many?"], "en", twiml.Ask("n", "number"), "https://x/v?step=2")
    assert 'finishOnKey="#"' in xml and "numDigits" not in xml
    assert 'voice="Polly.Joanna" language="en-US"' in xml and "then press pound" in xml


def test_no_question_ends_the_call_and_reject_is_first():
    assert twiml.document(["Gracias."], "es").endswith("Gracias.</Say><Hangup/></Response>")
    assert re.fullmatch(r'<\?xml[^>]*\?><Response><Reject reason="busy"/></Response>', twiml.reject())


def test_action_urls_carry_the_choices_in_order():
    ask = twiml.Ask("age", "choice", ("under_18", "60+"), ("Menos de 18", "60+"))
    url = twiml.action_url("https://r.example/webhooks/twilio/voice", 3, ask)
    assert dict(parse_qsl(url.split("?", 1)[1])) == {"step": "3", "q": "age", "mode": "choice", "c": "under_18,60+"}
    assert parse_prompt(dict(parse_qsl(url.split("?", 1)[1]))).choices == ("under_18", "60+")


CALL_OK = {"status": 201, "json": {"sid": "CA" + "1" * 32, "status": "queued", "direction": "outbound-api"}}


def test_a_call_is_placed_with_the_webhook_and_status_callback():
    session, provider = fake_session([CALL_OK])
    sender = VoiceSender(SETTINGS, session)
    result = sender.send(Outgoing(id=7, channel="voice", address="+525598765432", body="", payload={}))
    assert result.ok and result.provider_id == "CA" + "1" * 32
    check_requests(provider, [{
        "method": "POST",
        "url": "https://api.twilio.com/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Calls.json",
        "form": {"To": "+525598765432", "From": "+525512340000", "Url": "https://retorno.example.org/webhooks/twilio/voice",
                 "Method": "POST", "StatusCallback": "https://retorno.example.org/webhooks/twilio/voice/status",
                 "StatusCallbackMethod": "POST", "StatusCallbackEvent": "completed", "Timeout": "30"},
        "auth": ["AC0123456789abcdef0123456789abcdef", "0123456789abcdef0123456789abcdef"],
    }])
    assert "Record" not in provider.requests[0].decoded()["form"]


@pytest.mark.parametrize(("response", "expected"), [
    ({"status": 429, "json": {"code": 20429, "message": "Too Many Requests"}, "headers": {"Retry-After": "3"}},
     {"ok": False, "retry": True, "retry_after": 3.0}),
    ({"status": 400, "json": {"code": 21211, "message": "The 'To' number +525598765432 is not a valid phone number."}},
     {"ok": False, "retry": False, "unreachable": True, "error_code": "21211"}),
    ({"status": 503, "text": "unavailable"}, {"ok": False, "retry": True}),
    ({"exception": "connection"}, {"ok": False, "retry": True, "error_code": "connection"}),
])
def test_call_failures(response, expected, caplog):
    session, _ = fake_session([response])
    with caplog.at_level(logging.INFO):
        result = VoiceSender(SETTINGS, session).send(Outgoing(7, "voice", "+525598765432", ""))
    assert {k: getattr(result, k) for k in expected} == expected
    assert "5598765432" not in (result.error or "") and "5598765432" not in caplog.text


def test_parsing_logs_nothing_and_keeps_no_recording(caplog):
    case = TABLE["cases"][11]
    with caplog.at_level(logging.DEBUG):
        call = parse_call(case["form"], SETTINGS.twilio_account_sid)
    assert caplog.text == "" and call.speech == "eh Jalisco creo"
