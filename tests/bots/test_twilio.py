"""Twilio SMS/WhatsApp: the case tables in bots/twilio/testdata, plus what tables cannot say."""

from __future__ import annotations

import logging
from dataclasses import asdict

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hyp_settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import ImmutableMultiDict

from bots.base import Incoming, Rejected, StatusUpdate
from bots.twilio import TwilioSender, parse_message, parse_status, render, twiml_empty, verify
from surveys.engine import Reply, ReplyChoice
from tests.bots.fakes import (
    case_ids,
    check_requests,
    check_result,
    fake_session,
    load_table,
    make_settings,
    outgoing,
)

INCOMING = load_table("twilio/testdata/incoming.json")
STATUS = load_table("twilio/testdata/status.json")
OUTGOING = load_table("twilio/testdata/outgoing.json")
SETTINGS = make_settings(INCOMING["settings"])
WRONG_SIGNATURE = "dGhpcyBpcyBub3QgYSBzaWduYXR1cmU="


def signed_request(settings, case) -> tuple[str, str | None]:
    """(url, X-Twilio-Signature) for a case, as its 'signed' field describes."""
    url = settings.public_url + case["path"] + (f"?{case['query']}" if case.get("query") else "")
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
        return url, validator.compute_signature(url, {**form, "Body": form.get("Body", "") + "!"})
    assert signed is True
    return url, validator.compute_signature(url, form)


def webhook(settings, case, parse):
    """What the webhook does: verify, then parse; (HTTP status, parsed value or Rejected)."""
    url, signature = signed_request(settings, case)
    try:
        verify(settings, url, case["form"], signature)
        return 200, parse(case["form"])
    except Rejected as rejected:
        return rejected.status, rejected


# -- tables -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("case", INCOMING["cases"], ids=case_ids(INCOMING))
def test_incoming(case):
    status, result = webhook(SETTINGS, case, parse_message)
    assert status == case["status"]
    if status == 200:
        assert result == Incoming(**case["message"])
    else:
        assert result.code == case["error_code"]
        assert result.message


@pytest.mark.parametrize("case", STATUS["cases"], ids=case_ids(STATUS))
def test_status(case):
    status, result = webhook(make_settings(STATUS["settings"]), case, parse_status)
    assert status == case["status"]
    if status == 200:
        assert result == StatusUpdate(**case["update"])
    else:
        assert result.code == case["error_code"]


@pytest.mark.parametrize("case", OUTGOING["cases"], ids=case_ids(OUTGOING))
def test_outgoing(case):
    settings = make_settings(OUTGOING["settings"], case.get("settings"))
    session, provider = fake_session(case["responses"])
    result = TwilioSender(settings, session).send(outgoing(case["outgoing"]))
    check_result(result, case["result"])
    check_requests(provider, case["requests"])
    assert all(recorded.timeout == (3.05, 10) for recorded in provider.requests)


# -- signatures ---------------------------------------------------------------------------------------------


def test_repeated_form_keys_are_signed_as_twilio_signs_them():
    pairs = [("MessageSid", "SM" + "a" * 32), ("From", "+525587654321"), ("Body", "hola"),
             ("MediaUrl", "https://example.org/b"), ("MediaUrl", "https://example.org/a")]
    form = ImmutableMultiDict(pairs)
    url = SETTINGS.public_url + "/webhooks/twilio/sms"
    signature = RequestValidator(SETTINGS.twilio_auth_token).compute_signature(url, form)
    verify(SETTINGS, url, form, signature)
    verify(SETTINGS, url, pairs, signature)
    verify(SETTINGS, url, {"MessageSid": "SM" + "a" * 32, "From": "+525587654321", "Body": "hola",
                           "MediaUrl": ["https://example.org/a", "https://example.org/b"]}, signature)
    with pytest.raises(Rejected) as rejected:
        verify(SETTINGS, url, pairs[:-1], signature)
    assert rejected.value.status == 403


def test_signature_with_or_without_default_port():
    form = {"MessageSid": "SM" + "b" * 32, "From": "+525587654321", "Body": "1"}
    signature = RequestValidator(SETTINGS.twilio_auth_token).compute_signature(
        "https://retorno.example.org:443/webhooks/twilio/sms", form)
    verify(SETTINGS, "https://retorno.example.org/webhooks/twilio/sms", form, signature)


@pytest.mark.parametrize("signature", [None, "", "   ", WRONG_SIGNATURE, "é", "\x00"])
def test_bad_signatures_are_403(signature):
    with pytest.raises(Rejected) as rejected:
        verify(SETTINGS, "https://retorno.example.org/webhooks/twilio/sms", {"Body": "x"}, signature)
    assert (rejected.value.status, rejected.value.code) == (403, "bad_signature")


def test_no_auth_token_rejects_everything():
    with pytest.raises(Rejected) as rejected:
        verify(make_settings(), "https://retorno.example.org/webhooks/twilio/sms", {}, WRONG_SIGNATURE)
    assert rejected.value.status == 403


# -- parsing details ---------------------------------------------------------------------------------------


def base_form(**over):
    form = {"MessageSid": "SM" + "c" * 32, "AccountSid": "AC" + "0" * 32, "From": "+525587654321",
            "To": "+525512340000", "Body": "hola", "NumMedia": "0"}
    form.update(over)
    return form


def test_body_length_limit():
    assert parse_message(base_form(Body="a" * 10_000)).text == "a" * 10_000
    with pytest.raises(Rejected) as rejected:
        parse_message(base_form(Body="a" * 10_001))
    assert (rejected.value.status, rejected.value.code) == (400, "malformed")


def test_media_urls_are_never_kept():
    incoming = parse_message(base_form(Body="", NumMedia="1", MediaUrl0="https://api.twilio.com/secret-media"))
    assert "secret-media" not in repr(asdict(incoming))
    assert incoming.payload() == {"kind": "media"}


def test_whatsapp_prefix_is_case_insensitive_and_the_address_is_kept_as_sent():
    incoming = parse_message(base_form(From="WhatsApp:+5215587654321"))
    assert (incoming.channel, incoming.address) == ("whatsapp", "+5215587654321")
    assert parse_message(base_form(From="5215587654321")).address == "5215587654321"


def test_twiml_empty():
    assert twiml_empty() == '<?xml version="1.0" encoding="UTF-8"?><Response/>'


# -- sending details ---------------------------------------------------------------------------------------


def test_status_callback_can_be_given():
    session, provider = fake_session([{"status": 201, "json": {"sid": "SM" + "d" * 32}}])
    sender = TwilioSender(make_settings(OUTGOING["settings"]), session, "https://hooks.example.org/status?x=1")
    result = sender.send(outgoing({"id": 1, "channel": "sms", "address": "+525587654321", "body": "hola"}))
    assert result.ok and result.provider_id == "SM" + "d" * 32
    assert provider.requests[0].decoded()["form"]["StatusCallback"] == "https://hooks.example.org/status?x=1"


def test_retry_after_as_http_date_in_the_past_is_zero():
    session, _ = fake_session([{"status": 503, "headers": {"Retry-After": "Wed, 21 Oct 2015 07:28:00 GMT"},
                                "text": "busy"}])
    result = TwilioSender(make_settings(OUTGOING["settings"]), session).send(
        outgoing({"id": 1, "channel": "sms", "address": "+525587654321", "body": "hola"}))
    assert (result.retry, result.retry_after) == (True, 0.0)


def test_real_connection_refused_is_retried(closed_port):
    settings = make_settings(OUTGOING["settings"], {"twilio_api_base": f"http://127.0.0.1:{closed_port}"})
    result = TwilioSender(settings).send(
        outgoing({"id": 7, "channel": "sms", "address": "+525587654321", "body": "hola"}))
    assert (result.ok, result.retry, result.error_code) == (False, True, "connection")
    assert settings.twilio_auth_token not in (result.error or "")


def test_unknown_channel_is_not_sent():
    session, provider = fake_session([])
    result = TwilioSender(make_settings(OUTGOING["settings"]), session).send(
        outgoing({"id": 1, "channel": "telegram", "address": "123", "body": "hola"}))
    assert (result.ok, result.retry, result.error_code) == (False, False, "channel")
    assert provider.requests == []


def test_logs_carry_no_number_nor_body(caplog):
    session, _ = fake_session([{"status": 400, "json": {"code": 21610, "message": "unsubscribed", "status": 400}}])
    with caplog.at_level(logging.DEBUG):
        TwilioSender(make_settings(OUTGOING["settings"]), session).send(
            outgoing({"id": 9, "channel": "sms", "address": "+525587654321", "body": "secreto"}))
    assert caplog.records
    assert "5587654321" not in caplog.text and "secreto" not in caplog.text


def test_render_is_plain_text():
    reply = Reply("¿Trabaja?", "q_work", (ReplyChoice("yes", "Sí", "q_work=yes"), ReplyChoice("no", "No", "q_work=no")),
                  numbered=True)
    assert render(reply) == ("¿Trabaja?\n1) Sí\n2) No", {})


# -- whatever Twilio (or anyone) posts, the parsers only ever reject ------------------------------------------

NAMES = ["MessageSid", "SmsMessageSid", "SmsSid", "From", "To", "Body", "NumMedia", "MessageStatus", "SmsStatus",
         "ErrorCode", "ButtonText", "Latitude", "Longitude", "AccountSid"]
forms = st.dictionaries(st.sampled_from(NAMES) | st.text(max_size=12), st.text(max_size=40), max_size=12)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=20)
    | st.binary(max_size=8),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    | st.tuples(children, children),
    max_leaves=20,
)


def only_rejections(parse, value):
    try:
        parse(value)
    except Rejected as rejected:
        assert rejected.status == 400 and rejected.code == "malformed"


@hyp_settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(forms)
def test_random_forms_only_ever_reject(form):
    only_rejections(parse_message, form)
    only_rejections(parse_status, form)
    only_rejections(parse_message, list(form.items()))


@hyp_settings(max_examples=300)
@given(json_values)
def test_random_values_only_ever_reject(value):
    only_rejections(parse_message, value)
    only_rejections(parse_status, value)


@hyp_settings(max_examples=200)
@given(json_values | forms, st.none() | st.text(max_size=40), st.text(max_size=60))
def test_random_verify_only_ever_rejects(params, signature, url):
    try:
        verify(SETTINGS, url, params, signature)
    except Rejected as rejected:
        assert rejected.status == 403


def test_body_is_made_storable():
    assert parse_message(base_form(Body="s\x00í")).text == "sí"
    with pytest.raises(Rejected):
        parse_message(base_form(Body="\udc80"))
