"""Channel adapters: each turns a provider's webhook into an `Incoming` and sends `Outgoing` messages.

    render(channel, reply)              -> (body, payload) to store as an outbound message
    make_sender(channel, settings, http) -> an object whose send(Outgoing) returns a SendResult, never raising
"""

from __future__ import annotations

from typing import Any, Protocol

from bots._http import Http
from bots.base import Outgoing, SendResult
from surveys.engine import Reply

CHANNELS = ("sms", "whatsapp", "telegram", "console", "voice")
SPOKEN = ("voice",)
"""Channels whose replies are the webhook's own answer (TwiML said in the call): stored as sent, never queued."""


class Sender(Protocol):
    def send(self, outgoing: Outgoing) -> SendResult: ...


def render(channel: str, reply: Reply) -> tuple[str, dict[str, Any]]:
    """What to send on `channel` for the engine's reply: buttons on Telegram, numbered text elsewhere."""
    if channel == "telegram":
        from bots.telegram.keyboard import render as telegram_render

        return telegram_render(reply)
    if channel in ("sms", "whatsapp"):
        from bots.twilio.sender import render as twilio_render

        return twilio_render(reply)
    if channel == "console":
        from bots.console.handler import render as console_render

        return console_render(reply)
    if channel == "voice":
        from bots.voice.twiml import render as voice_render

        return voice_render(reply)
    raise ValueError(f"unknown channel {channel!r}; known: {', '.join(CHANNELS)}")


def make_sender(channel: str, settings: Any, http: Http | None = None) -> Sender:
    """The sender for `channel`, sharing `http` (a requests.Session or a bots._http.Client) when given."""
    if channel in ("sms", "whatsapp"):
        from bots.twilio.sender import TwilioSender

        return TwilioSender(settings, http)
    if channel == "telegram":
        from bots.telegram.sender import TelegramSender

        return TelegramSender(settings, http)
    if channel == "console":
        from bots.console.sender import ConsoleSender

        return ConsoleSender(settings, http)
    if channel == "voice":
        from bots.voice.caller import VoiceSender

        return VoiceSender(settings, http)
    raise ValueError(f"unknown channel {channel!r}; known: {', '.join(CHANNELS)}")
