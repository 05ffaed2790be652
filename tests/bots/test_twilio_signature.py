"""The one-HMAC signature check agrees with twilio's RequestValidator on every case table and URL form."""

from __future__ import annotations

from unittest import mock

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from twilio.request_validator import RequestValidator

from bots.base import Rejected
from bots.twilio import handler, parse_message, verify
from tests.bots.fakes import load_table, make_settings

TABLES = [load_table("twilio/testdata/incoming.json"), load_table("twilio/testdata/status.json")]
CASES = [(table["settings"], case) for table in TABLES for case in table["cases"]]
URLS = [
    "https://retorno.example.org{path}", "https://retorno.example.org:443{path}", "http://retorno.example.org{path}",
    "http://retorno.example.org:8080{path}", "https://retorno.example.org{path}?campaign=7",
    "https://retorno.example.org{path}?", "https://retorno.example.org{path}#frag", "HTTPS://Retorno.example.org{path}",
    "https://retorno.example.org:99999{path}", "https://retorno.example.org{path};p?q=é",
]


def _accepted(settings, url, form, signature) -> bool:
    try:
        verify(settings, url, form, signature)
    except Rejected as rejected:
        assert (rejected.status, rejected.code) == (403, "bad_signature")
        return False
    return True


def _validator(token, url, form, signature) -> bool:
    try:
        return RequestValidator(token).validate(url, handler._form(form), signature)
    except Exception:  # noqa: BLE001 - what verify() counts as not signed
        return False


@pytest.mark.parametrize(("table_settings", "case"), CASES, ids=[case["label"] for _, case in CASES])
def test_one_hmac_agrees_with_request_validator(table_settings, case):
    settings = make_settings(table_settings)
    token = settings.twilio_auth_token
    form = case["form"]
    urls = [u.format(path=case["path"]) for u in URLS]
    signatures = [RequestValidator(token).compute_signature(u, form) for u in urls] + ["bm9wZQ==", " ", "é"]
    for url in urls:
        for signature in signatures:
            expected = _validator(token, url, form, signature)
            assert _accepted(settings, url, form, signature) == expected, (url, signature)


@pytest.mark.parametrize(("table_settings", "case"), CASES, ids=[case["label"] for _, case in CASES])
def test_a_valid_request_pays_one_hmac(table_settings, case):
    settings = make_settings(table_settings)
    url = settings.public_url + case["path"] + (f"?{case['query']}" if case.get("query") else "")
    signature = RequestValidator(settings.twilio_auth_token).compute_signature(url, case["form"])
    assert handler._signed(settings.twilio_auth_token, url, handler._form(case["form"]), signature)
    with mock.patch.object(handler, "RequestValidator", side_effect=AssertionError("second check")):
        verify(settings, url, case["form"], signature)


def test_repeated_keys_and_values_are_signed_as_request_validator_signs_them():
    settings = make_settings(TABLES[0]["settings"])
    token = settings.twilio_auth_token
    url = settings.public_url + "/webhooks/twilio/sms"
    pairs = [("MediaUrl", "b"), ("Body", "x"), ("MediaUrl", "a"), ("MediaUrl", "b"), ("", ""), ("Body", "")]
    for signed in (pairs, pairs[:3], pairs[1:]):
        signature = RequestValidator(token).compute_signature(url, handler._form(signed))
        for form in (pairs, pairs[:3], pairs[1:], []):
            expected = _validator(token, url, form, signature)
            assert handler._signed(token, url, handler._form(form), signature) == expected
            assert _accepted(settings, url, form, signature) == expected


# -- re-splits: the signature runs names and values together, so one request can be read as others --------------


def _captured() -> tuple[object, str, list[tuple[str, str]]]:
    """(settings, URL, form) of a real inbound SMS from the case table, as an attacker could capture it."""
    table = TABLES[0]
    case = next(case for case in table["cases"] if case["label"] == "SMS text")
    settings = make_settings(table["settings"])
    return settings, settings.public_url + case["path"], sorted(case["form"].items())


@st.composite
def resplits(draw) -> list[tuple[str, str]]:
    """The captured form re-split so that its signature still holds: names stay in strictly increasing order, so
    running the sorted names and values together gives the same text."""
    pairs = list(_captured()[2])
    for _ in range(draw(st.integers(1, 4))):
        i = draw(st.integers(0, len(pairs) - 1))
        name, value = pairs[i]
        following = pairs[i + 1][0] if i + 1 < len(pairs) else None
        after_next = pairs[i + 2][0] if i + 2 < len(pairs) else None
        operation = draw(st.sampled_from(["merge", "split", "shift"]))
        if operation == "merge" and following is not None:  # the next name and value become part of this value
            pairs[i:i + 2] = [(name, value + following + pairs[i + 1][1])]
        elif operation == "split" and value:  # part of this value becomes a name of its own
            start = draw(st.integers(0, len(value) - 1))
            end = draw(st.integers(start + 1, len(value)))
            new = value[start:end]
            if name < new and (following is None or new < following):
                pairs[i:i + 1] = [(name, value[:start]), (new, value[end:])]
        elif operation == "shift" and following is not None:  # the boundary between this value and the next name
            n = draw(st.integers(-min(len(value), 8), min(len(following) - 1, 8)))
            moved = (value[len(value) + n:] + following) if n < 0 else following[n:]
            kept = value[: len(value) + n] if n < 0 else value + following[:n]
            if name < moved and (after_next is None or moved < after_next):
                pairs[i:i + 2] = [(name, kept), (moved, pairs[i + 1][1])]
    return pairs


@settings(max_examples=400, deadline=None)
@given(resplit=resplits())
def test_a_re_split_request_is_refused_or_names_the_captured_message(resplit):
    settings, url, form = _captured()
    validator = RequestValidator(settings.twilio_auth_token)
    assert validator.compute_signature(url, dict(resplit)) == validator.compute_signature(url, dict(form))
    try:
        incoming = parse_message(resplit, settings.twilio_account_sid)
    except Rejected as rejected:
        assert (rejected.status, rejected.code) == (400, "malformed")
        return
    assert incoming.provider_id == dict(form)["MessageSid"], "a replay can only name the message already stored"


def test_the_reported_re_split_is_refused():
    """`MessageSid=SM...NumMedia0` with NumMedia dropped: the signature holds, the request does not."""
    settings, url, form = _captured()
    values = dict(form)
    resplit = [(k, v + "NumMedia" + values["NumMedia"] if k == "MessageSid" else v) for k, v in form if k != "NumMedia"]
    validator = RequestValidator(settings.twilio_auth_token)
    assert validator.compute_signature(url, dict(resplit)) == validator.compute_signature(url, dict(form))
    with pytest.raises(Rejected) as rejected:
        parse_message(resplit, settings.twilio_account_sid)
    assert (rejected.value.status, rejected.value.code) == (400, "malformed")
