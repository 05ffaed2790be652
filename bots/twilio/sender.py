"""Sending SMS and WhatsApp messages through Twilio's Messages REST API."""

from __future__ import annotations

import json
import logging
from typing import Any

import requests

from bots._http import TIMEOUT, Http, json_object, provider_error, retry_after, transport_failure
from bots.base import Outgoing, SendResult
from bots.twilio import errors
from bots.twilio.handler import WHATSAPP_PREFIX
from surveys.engine import Reply

log = logging.getLogger(__name__)

STATUS_PATH = "/webhooks/twilio/status"

UNREACHABLE_CODES = frozenset(int(code) for code in errors.codes(errors.UNREACHABLE))
"""Errors that mean this address will not get messages: the contact is marked unreachable, not retried.

Not among them: 63016 (WhatsApp's 24-hour window closed: free text needs the respondent to write first, or a
template), 21408/21612 (routing or account permissions: a configuration problem, not the contact's).
"""

RETRY_CODES = frozenset(int(code) for code in errors.codes(errors.RETRY))
"""Twilio's own rate limits (too many requests, channel rate limit): try again later."""


def render(reply: Reply) -> tuple[str, dict[str, Any]]:
    """SMS and WhatsApp are text only: choices become numbered lines."""
    return reply.plain(), {}


class TwilioSender:
    """Hands messages to Twilio; `send` never raises."""

    channels = ("sms", "whatsapp")

    def __init__(self, settings: Any, http: Http | None = None, status_callback_url: str | None = None):
        self.settings = settings
        self.http = http or requests.Session()
        self.status_callback_url = status_callback_url or f"{settings.public_url.rstrip('/')}{STATUS_PATH}"

    @property
    def url(self) -> str:
        base = self.settings.twilio_api_base.rstrip("/")
        return f"{base}/2010-04-01/Accounts/{self.settings.twilio_account_sid}/Messages.json"

    def send(self, outgoing: Outgoing) -> SendResult:
        """Create the message at Twilio and say how it went."""
        try:
            result = self._send(outgoing)
        except Exception as exc:  # a sender reports, it never raises
            result = transport_failure(exc, self.settings.twilio_auth_token)
        level = logging.INFO if result.ok else logging.WARNING
        log.log(level, "twilio send message=%s ok=%s retry=%s unreachable=%s code=%s",
                outgoing.id, result.ok, result.retry, result.unreachable, result.error_code)
        return result

    def form(self, outgoing: Outgoing) -> list[tuple[str, str]]:
        """The form fields of the create-message request, in a stable order."""
        whatsapp = outgoing.channel == "whatsapp"
        fields = [("To", _whatsapp(outgoing.address) if whatsapp else outgoing.address)]
        service = self.settings.twilio_messaging_service_sid
        if service:
            fields.append(("MessagingServiceSid", service))
        else:
            sender = self.settings.twilio_from_number or ""
            fields.append(("From", _whatsapp(sender) if whatsapp else sender))
        content_sid = outgoing.payload.get("content_sid") if whatsapp else None
        if content_sid:  # a WhatsApp template (Content API): ContentSid and its variables, never a Body
            fields.append(("ContentSid", str(content_sid)))
            variables = outgoing.payload.get("content_variables") or {}
            if variables:
                fields.append(("ContentVariables", json.dumps(variables, ensure_ascii=False, separators=(",", ":"))))
        else:
            fields.append(("Body", outgoing.body))
        fields.append(("StatusCallback", self.status_callback_url))
        return fields

    def _send(self, outgoing: Outgoing) -> SendResult:
        s = self.settings
        sends_from = s.twilio_from_number or s.twilio_messaging_service_sid
        if not (s.twilio_account_sid and s.twilio_auth_token and sends_from):
            return SendResult(ok=False, error_code="not_configured",
                              error="Twilio needs TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and a sender")
        if outgoing.channel not in self.channels:
            return SendResult(ok=False, error_code="channel", error=f"Twilio does not send on {outgoing.channel!r}")
        response = self.http.post(
            self.url,
            data=self.form(outgoing),
            auth=(s.twilio_account_sid, s.twilio_auth_token),
            headers={"Accept": "application/json"},
            timeout=TIMEOUT,
        )
        return self._result(response)

    def _result(self, response: requests.Response) -> SendResult:
        status = response.status_code
        data = json_object(response)
        if 200 <= status < 300:
            sid = data.get("sid")
            return SendResult(ok=True, provider_id=sid if isinstance(sid, str) and sid else None)
        code = _code(data.get("code"))
        message = data.get("message") if isinstance(data.get("message"), str) else f"HTTP {status}"
        error = provider_error(message, self.settings.twilio_auth_token)
        error_code = str(code) if code is not None else str(status)
        if status == 429 or status >= 500 or code in RETRY_CODES:
            wait = retry_after(response.headers.get("Retry-After"))
            known = errors.lookup(code)
            if known is not None and known.retry_after:
                wait = max(wait or 0.0, known.retry_after)
            return SendResult(ok=False, retry=True, retry_after=wait, error_code=error_code, error=error)
        if code in UNREACHABLE_CODES:
            return SendResult(ok=False, unreachable=True, error_code=error_code, error=error)
        return SendResult(ok=False, error_code=error_code, error=error)


def _whatsapp(address: str) -> str:
    return address if address.lower().startswith(WHATSAPP_PREFIX) else f"{WHATSAPP_PREFIX}{address}"


def _code(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit():
        return int(value.strip())
    return None
