"""Twilio Voice: the survey by phone call (keypad or speech), and calls placed to respondents."""

from typing import Any

from bots.base import Channel
from bots.twilio import errors
from bots.voice.caller import VoiceSender
from bots.voice.handler import (
    CHANNEL,
    PATH,
    STATUS_PATH,
    Call,
    Prompt,
    parse_call,
    parse_prompt,
    parse_status,
    step_input,
)
from bots.voice.twiml import render

__all__ = ["CHANNEL", "CHANNELS", "PATH", "STATUS_PATH", "Call", "Prompt", "VoiceSender", "parse_call",
           "parse_prompt", "parse_status", "render", "step_input"]

CALL_RATE = 1.0
"""Calls placed per second: Twilio's default CPS for an account, unless it was raised."""


def sends_from(settings: Any) -> tuple[str, float] | None:
    if not (settings.twilio_outbound and settings.twilio_from_number):
        return None
    return f"twilio-calls:{settings.twilio_from_number}", CALL_RATE


CHANNELS = (Channel(CHANNEL, render, VoiceSender, sends_from, phone=True, errors=errors, spoken=True),)
