"""Telegram: private chats with the bot."""

from bots.telegram.handler import parse_body, parse_update, verify
from bots.telegram.keyboard import inline_keyboard, render
from bots.telegram.sender import TelegramSender, set_webhook

__all__ = ["TelegramSender", "inline_keyboard", "parse_body", "parse_update", "render", "set_webhook", "verify"]
