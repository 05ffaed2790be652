"""Twilio: SMS and WhatsApp."""

from bots.twilio.handler import parse_message, parse_status, twiml_empty, verify
from bots.twilio.sender import TwilioSender, render

__all__ = ["TwilioSender", "parse_message", "parse_status", "render", "twiml_empty", "verify"]
