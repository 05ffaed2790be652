"""The console channel (`retorno chat`)."""

from bots.console.handler import parse_address, parse_message, render
from bots.console.sender import ConsoleSender

__all__ = ["ConsoleSender", "parse_address", "parse_message", "render"]
