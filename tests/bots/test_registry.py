"""bots.CHANNELS, bots.render and bots.make_sender."""

from __future__ import annotations

import pytest

import bots
from bots.console import ConsoleSender
from bots.telegram import TelegramSender
from bots.twilio import TwilioSender
from surveys.engine import Reply, ReplyChoice
from tests.bots.fakes import make_settings

REPLY = Reply("¿Trabaja?", "q", (ReplyChoice("yes", "Sí", "q=yes"), ReplyChoice("no", "No", "q=no")), numbered=True)


def test_channels():
    assert bots.CHANNELS == ("sms", "whatsapp", "telegram", "console", "voice")


@pytest.mark.parametrize("channel", ["sms", "whatsapp", "console"])
def test_text_channels_number_the_choices(channel):
    assert bots.render(channel, REPLY) == ("¿Trabaja?\n1) Sí\n2) No", {})


def test_telegram_gets_buttons_except_for_multiple_choice():
    body, payload = bots.render("telegram", REPLY)
    assert body == "¿Trabaja?"
    assert payload["reply_markup"]["inline_keyboard"] == [
        [{"text": "Sí", "callback_data": "q=yes"}, {"text": "No", "callback_data": "q=no"}]]
    multi = Reply(REPLY.text, REPLY.question_id, REPLY.choices, numbered=True, multi=True)
    assert bots.render("telegram", multi) == ("¿Trabaja?\n1) Sí\n2) No", {})


def test_make_sender():
    settings = make_settings()
    assert isinstance(bots.make_sender("sms", settings), TwilioSender)
    assert isinstance(bots.make_sender("whatsapp", settings), TwilioSender)
    assert isinstance(bots.make_sender("telegram", settings), TelegramSender)
    assert isinstance(bots.make_sender("console", settings), ConsoleSender)


@pytest.mark.parametrize("call", [lambda: bots.render("fax", REPLY), lambda: bots.make_sender("fax", None)])
def test_unknown_channels(call):
    with pytest.raises(ValueError, match="unknown channel"):
        call()
