"""Placing calls through Twilio's Calls REST API, and what the voice channel's outbound messages mean.

Replies to a caller are spoken in the call itself (the webhook's TwiML) and stored as sent, so they never reach a
sender. What does reach it (an invitation, a reminder, a call back after a missed call) places a call:
`POST {TWILIO_API_BASE}/2010-04-01/Accounts/{AccountSid}/Calls.json` with `To`, `From`, `Url` (the voice webhook,
which asks the respondent where they stand once they pick up), `StatusCallback` and `StatusCallbackEvent=completed`
(busy, no-answer, failed and completed arrive there). Never `Record`. Logs name the message id, never the number.
"""

from __future__ import annotations

import logging
from typing import Any

import requests

from bots._http import TIMEOUT, Http, json_object, provider_error, retry_after, transport_failure
from bots.base import Outgoing, SendResult
from bots.twilio import errors
from bots.voice.handler import PATH, STATUS_PATH

log = logging.getLogger(__name__)

RING_SECONDS = 30
"""How long a placed call rings before it is `no-answer` (Twilio's Timeout; its default is 60)."""


class VoiceSender:
    """Places calls at Twilio; `send` never raises."""

    channels = ("voice",)

    def __init__(self, settings: Any, http: Http | None = None):
        self.settings = settings
        self.http = http or requests.Session()

    @property
    def url(self) -> str:
        base = self.settings.twilio_api_base.rstrip("/")
        return f"{base}/2010-04-01/Accounts/{self.settings.twilio_account_sid}/Calls.json"

    def send(self, outgoing: Outgoing) -> SendResult:
        """Place a call to the respondent; once they pick up, the webhook asks where they stand."""
        try:
            result = self._call(outgoing)
        except Exception as exc:  # a sender reports, it never raises
            result = transport_failure(exc, self.settings.twilio_auth_token)
        level = logging.INFO if result.ok else logging.WARNING
        log.log(level, "twilio call message=%s ok=%s retry=%s code=%s", outgoing.id, result.ok, result.retry,
                result.error_code)
        return result

    def form(self, outgoing: Outgoing) -> list[tuple[str, str]]:
        """The create-call request's form fields, in a stable order."""
        public = self.settings.public_url.rstrip("/")
        return [
            ("To", outgoing.address),
            ("From", self.settings.twilio_from_number or ""),
            ("Url", f"{public}{PATH}"),
            ("Method", "POST"),
            ("StatusCallback", f"{public}{STATUS_PATH}"),
            ("StatusCallbackMethod", "POST"),
            ("StatusCallbackEvent", "completed"),
            ("Timeout", str(RING_SECONDS)),
        ]

    def _call(self, outgoing: Outgoing) -> SendResult:
        s = self.settings
        if not (s.twilio_account_sid and s.twilio_auth_token and s.twilio_from_number):
            return SendResult(ok=False, error_code="not_configured",
                              error="calls need TWILIO_ACCOUNT_SID, TWILIO_AUTH_TOKEN and TWILIO_FROM_NUMBER")
        response = self.http.post(self.url, data=self.form(outgoing), auth=(s.twilio_account_sid, s.twilio_auth_token),
                                  headers={"Accept": "application/json"}, timeout=TIMEOUT)
        status = response.status_code
        data = json_object(response)
        if 200 <= status < 300:
            sid = data.get("sid")
            return SendResult(ok=True, provider_id=sid if isinstance(sid, str) and sid else None)
        code = data.get("code") if isinstance(data.get("code"), int) else None
        message = data.get("message") if isinstance(data.get("message"), str) else f"HTTP {status}"
        error = provider_error(message, s.twilio_auth_token)
        error_code = str(code) if code is not None else str(status)
        if status == 429 or status >= 500 or str(code) in errors.codes(errors.RETRY):
            return SendResult(ok=False, retry=True, retry_after=retry_after(response.headers.get("Retry-After")),
                              error_code=error_code, error=error)
        unreachable = code in (13223, 13224, 21211, 21214, 21217)
        return SendResult(ok=False, unreachable=unreachable, error_code=error_code, error=error)
