"""Telegram webhook: secret check and Update -> Incoming.

Only private chats are surveys; everything else is ignored (None, still answered 200). Of the payload we keep
what the survey needs: the chat id, the text or button, the message number and the language hint; never names or
usernames. Every failure is a `Rejected`, whatever the shape of the input.
"""

from __future__ import annotations

import hmac
import json
import re
from typing import Any

from bots._text import storable
from bots.base import Delivery, Incoming, Rejected

SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"
MAX_UPDATE_BYTES = 1_000_000
MAX_TEXT = 10_000
"""Characters; Telegram caps texts at 4,096 and captions at 1,024."""

MEDIA_KINDS = (
    "sticker", "photo", "voice", "video", "video_note", "animation", "document", "audio",
    "venue", "location", "poll", "dice",
)
"""Message contents without text, in the order they are recognised (venue carries a location too, animation
a document)."""

_START = re.compile(r"/start(?:@[A-Za-z0-9_]+)?(?:\s+.*)?", re.DOTALL)
_LANGUAGE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8}){0,3}", re.ASCII)


def verify(settings: Any, header_value: str | None) -> None:
    """Raise Rejected(403) unless the secret-token header equals TELEGRAM_WEBHOOK_SECRET (constant time)."""
    secret = getattr(settings, "telegram_webhook_secret", None)
    if not secret:
        raise Rejected(403, "bad_secret", "Telegram is not configured: TELEGRAM_WEBHOOK_SECRET is unset")
    if not isinstance(header_value, str) or not header_value:
        raise Rejected(403, "bad_secret", f"missing {SECRET_HEADER} header")
    if not hmac.compare_digest(header_value.encode("utf-8", "surrogatepass"), secret.encode("utf-8")):
        raise Rejected(403, "bad_secret", f"wrong {SECRET_HEADER} header")


def read_update(settings: Any, delivery: Delivery) -> Incoming | None:
    """The respondent's message in a Telegram update with the right secret (None: not for the survey)."""
    if not settings.telegram:
        raise Rejected(404, "channel_off", "the Telegram channel is not configured (TELEGRAM_BOT_TOKEN)")
    verify(settings, delivery.header(SECRET_HEADER))
    return parse_update(parse_body(delivery.data()))


def answer() -> tuple[str, str]:
    """`{"ok": true}` (as Flask's jsonify writes it), once the update is stored."""
    return '{"ok":true}\n', "application/json"


def parse_body(raw: bytes | str) -> object:
    """The JSON value of a webhook body; Rejected(400) when it is not JSON."""
    if len(raw) > MAX_UPDATE_BYTES:
        raise Rejected(400, "malformed", "update is too large")
    try:
        return json.loads(raw)
    except (ValueError, TypeError, RecursionError) as exc:
        raise Rejected(400, "malformed", "body is not JSON") from exc


def parse_update(update: object) -> Incoming | None:
    """The respondent's message in an Update, or None when the update is not for the survey."""
    if not isinstance(update, dict):
        raise Rejected(400, "malformed", "an update must be a JSON object")
    update_id = update.get("update_id")
    if not _is_int(update_id):
        raise Rejected(400, "malformed", "update_id is missing or not a 64-bit integer")
    if "message" in update:
        return _message(update_id, update["message"])
    if "edited_message" in update:
        return _edited(update_id, update["edited_message"])
    if "callback_query" in update:
        return _callback(update_id, update["callback_query"])
    return None  # channel posts, membership changes, inline queries, polls, anything new


# -- update kinds -------------------------------------------------------------------------------------------


def _message(update_id: int, message: object) -> Incoming | None:
    message = _object(message, "message")
    chat_id = _private_chat(message)
    sender = _object(message.get("from", {}), "message.from")
    if chat_id is None or sender.get("is_bot") is True:
        return None
    message_id = message.get("message_id")
    if not _is_int(message_id):
        raise Rejected(400, "malformed", "message.message_id is missing or not a 64-bit integer")
    text = _string(message, "text") or _string(message, "caption") or ""
    kind, extra = "text", {}
    if "contact" in message:
        kind, extra = "contact", _contact(message["contact"], sender)
    elif not text.strip():
        kind = next((k for k in MEDIA_KINDS if message.get(k) is not None), "")
        if not kind:
            return None  # service messages (pins, shared chats, ...) and contents the survey cannot answer
    text = _start(text)
    return Incoming(
        channel="telegram",
        provider_id=str(update_id),
        address=str(chat_id),
        text=text,
        kind=kind,
        sequence=message_id,
        language_hint=_language(sender),
        extra=extra,
    )


def _edited(update_id: int, message: object) -> Incoming | None:
    """An edit is never an answer: the engine gets an empty 'edited' message and explains."""
    message = _object(message, "edited_message")
    chat_id = _private_chat(message)
    sender = _object(message.get("from", {}), "edited_message.from")
    if chat_id is None or sender.get("is_bot") is True:
        return None
    return Incoming(
        channel="telegram",
        provider_id=str(update_id),
        address=str(chat_id),
        kind="edited",
        language_hint=_language(sender),
    )


def _callback(update_id: int, query: object) -> Incoming | None:
    query = _object(query, "callback_query")
    query_id = query.get("id")
    if not isinstance(query_id, str) or not query_id or len(query_id) > 256:
        raise Rejected(400, "malformed", "callback_query.id is missing or not text")
    query_id = storable(query_id, "callback_query.id")
    sender = _object(query.get("from"), "callback_query.from")
    data = query.get("data")
    if data is None:
        return None  # a game button: not ours
    if not isinstance(data, str) or len(data) > 256:
        raise Rejected(400, "malformed", "callback_query.data is not text")
    data = storable(data, "callback_query.data")
    chat_id = _callback_chat(query, sender)
    if chat_id is None:
        return None
    return Incoming(
        channel="telegram",
        provider_id=str(update_id),
        address=str(chat_id),
        text="",
        kind="button",
        button=data,
        language_hint=_language(sender),
        extra={"callback_query_id": query_id},
    )


# -- parts ------------------------------------------------------------------------------------------------


def _private_chat(message: dict[str, Any]) -> int | None:
    """The chat id when the message is in a private chat; None for groups, supergroups and channels."""
    chat = _object(message.get("chat"), "message.chat")
    chat_id = chat.get("id")
    if not _is_int(chat_id):
        raise Rejected(400, "malformed", "message.chat.id is missing or not a 64-bit integer")
    return chat_id if chat.get("type") == "private" else None


def _callback_chat(query: dict[str, Any], sender: dict[str, Any]) -> int | None:
    """The chat of the message that carried the button, else the presser's own id (their private chat)."""
    if query.get("message") is not None:
        return _private_chat(_object(query["message"], "callback_query.message"))
    user_id = sender.get("id")
    if not _is_int(user_id):
        raise Rejected(400, "malformed", "callback_query.from.id is missing or not a 64-bit integer")
    return user_id


def _contact(contact: object, sender: dict[str, Any]) -> dict[str, Any]:
    contact = _object(contact, "message.contact")
    phone = contact.get("phone_number")
    if not isinstance(phone, str) or not phone.strip() or len(phone) > 64:
        raise Rejected(400, "malformed", "message.contact.phone_number is missing or not text")
    user_id = contact.get("user_id")
    is_self = _is_int(user_id) and _is_int(sender.get("id")) and user_id == sender.get("id")
    return {"contact_phone": storable(phone.strip(), "message.contact.phone_number"), "contact_is_self": is_self}


def _start(text: str) -> str:
    """'/start' and '/start PAYLOAD' (a deep link) become '/start' (nothing reads a deep link's payload, so it is not
    stored); other texts pass."""
    return "/start" if _START.fullmatch(text.strip()) else text


def _language(sender: dict[str, Any]) -> str | None:
    code = sender.get("language_code")
    return code if isinstance(code, str) and _LANGUAGE.fullmatch(code) else None


def _string(message: dict[str, Any], name: str) -> str | None:
    value = message.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise Rejected(400, "malformed", f"message.{name} is not text")
    if len(value) > MAX_TEXT:
        raise Rejected(400, "malformed", f"message.{name} is longer than {MAX_TEXT} characters")
    return storable(value, f"message.{name}")


def _object(value: object, where: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise Rejected(400, "malformed", f"{where} is not an object")
    return value


def _is_int(value: object) -> bool:
    """A JSON integer that fits a 64-bit signed column (Telegram's ids take at most 52 bits)."""
    return isinstance(value, int) and not isinstance(value, bool) and -(2**63) <= value < 2**63
