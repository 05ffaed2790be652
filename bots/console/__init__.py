"""The console channel (`retorno chat`)."""

from typing import Any

from bots.base import Channel
from bots.console.handler import parse_address, parse_message, render
from bots.console.sender import ConsoleSender

__all__ = ["CHANNELS", "ConsoleSender", "parse_address", "parse_message", "render"]

RATE = 50.0


def sends_from(settings: Any) -> tuple[str, float] | None:
    return ("console", RATE) if settings.console_channel else None


CHANNELS = (Channel("console", render, ConsoleSender, sends_from, test=True),)
