"""WhatsApp's rules as Retorno applies them: the 24-hour window, a template's answer, its buttons, Twilio's codes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bots.twilio import errors
from bots.twilio.whatsapp import awaiting_reply, button_stops, is_template, template, window_open

NOW = datetime(2026, 3, 2, 18, 0, tzinfo=UTC)


@pytest.mark.parametrize(("wrote", "open_"), [
    (None, False),
    (NOW - timedelta(minutes=1), True),
    (NOW - timedelta(hours=23, minutes=49), True),
    (NOW - timedelta(hours=23, minutes=51), False),  # free text stops 10 minutes before the window closes
    (NOW - timedelta(days=3), False),
    ((NOW - timedelta(hours=1)).replace(tzinfo=None), True),  # SQLite's naive UTC
])
def test_the_window(wrote, open_):
    assert window_open(wrote, NOW) is open_


@pytest.mark.parametrize(("template_at", "wrote", "awaiting"), [
    (None, None, False),
    (NOW, None, True),
    (NOW, NOW - timedelta(hours=1), True),
    (NOW - timedelta(hours=1), NOW, False),
])
def test_the_next_message_answers_the_template(template_at, wrote, awaiting):
    assert awaiting_reply(template_at, wrote) is awaiting


@pytest.mark.parametrize(("payload", "stops"), [
    ("stop", True), ("STOP", True), (" baja ", True), ("opt_out", True), ("start", False), ("", False), (None, False),
    ("si", False),
])
def test_buttons(payload, stops):
    assert button_stops(payload) is stops


def test_a_template_payload():
    payload = template("HX" + "a" * 32, {"1": "Encuesta"})
    assert is_template(payload) and not is_template({}) and not is_template(None)
    assert payload == {"content_sid": "HX" + "a" * 32, "content_variables": {"1": "Encuesta"}}


@pytest.mark.parametrize(("code", "action", "fallback"), [
    ("63016", errors.TEMPLATE, False), ("63024", errors.UNREACHABLE, True), ("63003", errors.UNREACHABLE, True),
    ("63018", errors.RETRY, False), ("63032", errors.OPTED_OUT, False), ("63049", errors.FAILED, True),
    ("21610", errors.UNREACHABLE, False), ("63027", errors.FAILED, False), (21656, errors.FAILED, False),
])
def test_what_each_code_calls_for(code, action, fallback):
    found = errors.lookup(code)
    assert (found.action, found.fallback) == (action, fallback) and found.meaning and found.outcome


def test_unknown_codes_are_named_not_guessed():
    assert errors.lookup("99999") is None and errors.lookup("not a code") is None
    assert errors.meaning("99999") == "Twilio error 99999 (see twilio.com/docs/api/errors/99999)"
    assert "63032" in errors.codes(errors.OPTED_OUT) and "63016" not in errors.codes(errors.UNREACHABLE)
