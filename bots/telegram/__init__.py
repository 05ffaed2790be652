"""Telegram: private chats with the bot."""

from typing import Any

from bots.base import Channel, Webhook
from bots.telegram.handler import answer, parse_body, parse_update, read_update, verify
from bots.telegram.keyboard import inline_keyboard, render
from bots.telegram.sender import TelegramSender, set_webhook

__all__ = ["CHANNELS", "WEBHOOKS", "TelegramSender", "inline_keyboard", "parse_body", "parse_update", "render",
           "set_webhook", "verify"]

RATE = 25.0
"""Messages per second to different chats (Bot API: about 30)."""


def sends_from(settings: Any) -> tuple[str, float] | None:
    if not settings.telegram:
        return None
    return f"telegram:{(settings.telegram_bot_token or '').split(':')[0]}", RATE


CHANNELS = (Channel("telegram", render, TelegramSender, sends_from),)
WEBHOOKS = (Webhook("/telegram", read_update, answer, fast=True),)
