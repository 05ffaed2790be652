"""Sending to Telegram through the Bot API: sendMessage, answerCallbackQuery, and setWebhook for the CLI."""

from __future__ import annotations

import logging
import re
from typing import Any

import requests

from bots._http import TIMEOUT, Http, json_object, provider_error, redact, retry_after, transport_failure
from bots.base import Outgoing, SendResult

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/telegram"
ALLOWED_UPDATES = ("message", "edited_message", "callback_query")
UNREACHABLE_400 = ("chat not found", "user not found", "peer_id_invalid")
"""Phrases of a 400 description meaning the chat is gone; any 403 (blocked, deactivated) is unreachable too."""

_SECRET = re.compile(r"[A-Za-z0-9_-]{1,256}", re.ASCII)
_CHAT_ID = re.compile(r"-?[0-9]{1,20}", re.ASCII)


class TelegramSender:
    """Hands messages to the Bot API; `send` never raises."""

    channels = ("telegram",)

    def __init__(self, settings: Any, http: Http | None = None):
        self.settings = settings
        self.http = http or requests.Session()

    def send(self, outgoing: Outgoing) -> SendResult:
        """sendMessage, or answerCallbackQuery when the payload carries a callback_query_id."""
        try:
            result = self._send(outgoing)
        except Exception as exc:  # a sender reports, it never raises
            result = transport_failure(exc, self.settings.telegram_bot_token)
        level = logging.INFO if result.ok else logging.WARNING
        log.log(level, "telegram send message=%s ok=%s retry=%s unreachable=%s code=%s",
                outgoing.id, result.ok, result.retry, result.unreachable, result.error_code)
        return result

    def request(self, outgoing: Outgoing) -> tuple[str, dict[str, Any]]:
        """(method, JSON body) of the Bot API call for this message."""
        payload = outgoing.payload or {}
        if payload.get("callback_query_id"):
            return "answerCallbackQuery", {"callback_query_id": str(payload["callback_query_id"])}
        body: dict[str, Any] = {"chat_id": _chat_id(outgoing.address), "text": outgoing.body}
        if payload.get("reply_markup"):
            body["reply_markup"] = payload["reply_markup"]
        return "sendMessage", body

    def _send(self, outgoing: Outgoing) -> SendResult:
        if not self.settings.telegram_bot_token:
            return SendResult(ok=False, error_code="not_configured", error="TELEGRAM_BOT_TOKEN is unset")
        if outgoing.channel not in self.channels:
            return SendResult(ok=False, error_code="channel", error=f"Telegram does not send on {outgoing.channel!r}")
        method, body = self.request(outgoing)
        response = self.http.post(api_url(self.settings, method), json=body, timeout=TIMEOUT)
        return self._result(response, ack=method == "answerCallbackQuery")

    def _result(self, response: requests.Response, ack: bool) -> SendResult:
        status = response.status_code
        data = json_object(response)
        if status == 200 and data.get("ok") is True:
            result = data.get("result")
            message_id = result.get("message_id") if isinstance(result, dict) else None
            return SendResult(ok=True, provider_id=str(message_id) if _is_int(message_id) else None)
        code = data.get("error_code") if _is_int(data.get("error_code")) else status
        description = data.get("description") if isinstance(data.get("description"), str) else f"HTTP {status}"
        error = provider_error(description, self.settings.telegram_bot_token)
        if code == 429 or status == 429:
            parameters = data.get("parameters") if isinstance(data.get("parameters"), dict) else {}
            wait = retry_after(parameters.get("retry_after"))
            if wait is None:
                wait = retry_after(response.headers.get("Retry-After"))
            return SendResult(ok=False, retry=True, retry_after=wait, error_code="429", error=error)
        if status >= 500 or code >= 500:
            return SendResult(ok=False, retry=True, error_code=str(code), error=error)
        if code == 403 or (code == 400 and any(p in description.lower() for p in UNREACHABLE_400) and not ack):
            return SendResult(ok=False, unreachable=True, error_code=str(code), error=error)
        if ack and code == 400:
            # the button press is too old to acknowledge: nothing left to do, and the replies must not wait
            return SendResult(ok=True, error_code=str(code), error=error)
        return SendResult(ok=False, error_code=str(code), error=error)


def api_url(settings: Any, method: str) -> str:
    """{TELEGRAM_API_BASE}/bot{TOKEN}/{method}; it holds the token: never log it."""
    return f"{settings.telegram_api_base.rstrip('/')}/bot{settings.telegram_bot_token}/{method}"


def set_webhook(settings: Any, http: Http | None = None, drop_pending_updates: bool = False) -> dict:
    """Point the bot at RETORNO_PUBLIC_URL/webhooks/telegram with the secret; returns the Bot API's answer."""
    token, secret = settings.telegram_bot_token, settings.telegram_webhook_secret
    if not token or not secret:
        return {"ok": False, "description": "TELEGRAM_BOT_TOKEN and TELEGRAM_WEBHOOK_SECRET are both required"}
    if not _SECRET.fullmatch(secret):
        return {"ok": False, "description": "TELEGRAM_WEBHOOK_SECRET may only hold 1-256 of A-Z a-z 0-9 _ -"}
    body = {
        "url": f"{settings.public_url.rstrip('/')}{WEBHOOK_PATH}",
        "secret_token": secret,
        "allowed_updates": list(ALLOWED_UPDATES),
        "drop_pending_updates": drop_pending_updates,
    }
    try:
        response = (http or requests.Session()).post(api_url(settings, "setWebhook"), json=body, timeout=TIMEOUT)
    except requests.RequestException as exc:
        return {"ok": False, "description": redact(f"{type(exc).__name__}: {exc}", token, secret)}
    data = json_object(response)
    return data or {"ok": False, "error_code": response.status_code, "description": f"HTTP {response.status_code}"}


def _chat_id(address: str) -> int | str:
    """Telegram chat ids are integers; anything else (a @channel name) is passed as given."""
    text = address.strip()
    return int(text) if _CHAT_ID.fullmatch(text) else text


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
