"""Twilio Voice: the survey by phone call (keypad or speech), and calls placed to respondents."""

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

__all__ = ["CHANNEL", "PATH", "STATUS_PATH", "Call", "Prompt", "VoiceSender", "parse_call", "parse_prompt",
           "parse_status", "render", "step_input"]
