"""Twilio: SMS and WhatsApp."""

from typing import Any

from bots.base import Channel, Webhook
from bots.twilio import errors
from bots.twilio.handler import (
    answer,
    parse_message,
    parse_status,
    read_message,
    read_status,
    twiml_empty,
    verify,
)
from bots.twilio.sender import TwilioSender, render

__all__ = ["CHANNELS", "WEBHOOKS", "TwilioSender", "parse_message", "parse_status", "render", "twiml_empty", "verify"]

NUMBER_RATE, SERVICE_RATE = 1.0, 10.0
"""Messages per second: a Twilio number (long code), a Messaging Service."""


def sends_from(settings: Any) -> tuple[str, float] | None:
    if not settings.twilio_outbound:
        return None
    service = settings.twilio_messaging_service_sid
    return f"twilio:{service or settings.twilio_from_number}", SERVICE_RATE if service else NUMBER_RATE


CHANNELS = tuple(
    Channel(name, render, TwilioSender, sends_from, phone=True, errors=errors) for name in ("sms", "whatsapp")
)
WEBHOOKS = (
    Webhook("/twilio/sms", read_message, answer, fast=True),
    Webhook("/twilio/status", read_status, answer),
)
