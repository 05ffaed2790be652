"""The one-HMAC signature check agrees with twilio's RequestValidator on every case table and URL form."""

from __future__ import annotations

from unittest import mock

import pytest
from twilio.request_validator import RequestValidator

from bots.base import Rejected
from bots.twilio import handler, verify
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
            assert _accepted(settings, url, form, signature) == _validator(token, url, form, signature), (url, signature)


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
