"""The console channel: `retorno chat` posts JSON messages; replies are read back from the database."""

from __future__ import annotations

import re
import uuid
from typing import Any

from bots._text import storable
from bots.base import Incoming, Rejected
from surveys.engine import Reply

MAX_TEXT = 10_000
MAX_ADDRESS = 255
_ID = re.compile(r"[A-Za-z0-9_.:-]{1,64}", re.ASCII)
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8}){0,3}", re.ASCII)


def parse_message(data: object) -> Incoming:
    """{"from", "text", "button"?, "id"?, "language"?} -> Incoming; Rejected(400) when malformed."""
    if not isinstance(data, dict):
        raise Rejected(400, "malformed", "a console message must be a JSON object")
    address = parse_address(data.get("from"))
    text = _optional_text(data, "text", MAX_TEXT) or ""
    button = _optional_text(data, "button", 256)
    if not text and not button:
        raise Rejected(400, "malformed", "a console message needs text or a button")
    return Incoming(
        channel="console",
        provider_id=_provider_id(data.get("id")),
        address=address,
        text=text,
        kind="button" if button else "text",
        button=button or None,
        language_hint=_language(data.get("language")),
    )


def render(reply: Reply) -> tuple[str, dict[str, Any]]:
    """The console shows text: choices become numbered lines."""
    return reply.plain(), {}


def parse_address(value: object, where: str = "'from'") -> str:
    """A console address: up to MAX_ADDRESS printable characters; Rejected(400) otherwise."""
    if not isinstance(value, str) or not value.strip():
        raise Rejected(400, "malformed", f"{where} must be a non-empty string")
    address = value.strip()
    if len(address) > MAX_ADDRESS or not address.isprintable():
        raise Rejected(400, "malformed", f"{where} must be at most {MAX_ADDRESS} printable characters")
    return address


def _optional_text(data: dict[str, Any], name: str, limit: int) -> str | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise Rejected(400, "malformed", f"'{name}' must be a string")
    if len(value) > limit:
        raise Rejected(400, "malformed", f"'{name}' is longer than {limit} characters")
    return storable(value, f"'{name}'")


def _provider_id(value: object) -> str:
    """The client's message id (so that a resent message is stored once), or a fresh one."""
    if value is None or value == "":
        return uuid.uuid4().hex
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not _ID.fullmatch(value):
        raise Rejected(400, "malformed", "'id' must be up to 64 letters, digits or _.:-")
    return value


def _language(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not _LANGUAGE.fullmatch(value):
        raise Rejected(400, "malformed", "'language' must be a language code such as 'es' or 'en'")
    return value
