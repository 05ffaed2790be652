"""Twilio webhooks (SMS and WhatsApp): signature check, inbound messages, delivery status callbacks.

Pure functions over the request's form parameters. Every failure is a `Rejected`: 403 when the request is not
signed by Twilio, 400 when it is malformed. Nothing here logs numbers or bodies.

The signature covers the URL and every name and value run together without separators, so a captured request can
be re-split into other parameters under the same signature (`MessageSid=SM...NumMedia0` with `NumMedia` dropped).
The fields read are therefore held to Twilio's exact forms: a message SID is `SM` or `MM` and 32 hex digits, every
field naming it (MessageSid, SmsMessageSid, SmsSid) names the same one, AccountSid is the configured account, and
no field read appears twice. A re-split request is then refused, or names the message already stored.
"""

from __future__ import annotations

import base64
import functools
import hmac
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urlparse

from twilio.request_validator import RequestValidator, add_port, remove_port

from bots._text import storable
from bots.base import Delivery, Incoming, Rejected, StatusUpdate

SIGNATURE_HEADER = "X-Twilio-Signature"
TWIML_TYPE = "application/xml"
FORM_TYPE = "application/x-www-form-urlencoded"
WHATSAPP_PREFIX = "whatsapp:"
MAX_BODY = 10_000
"""Characters; Twilio itself caps inbound bodies at 1,600, so anything near this is not from Twilio."""
MAX_FIELD = 10_000
MAX_BUTTON = 256
"""Characters of a template quick-reply button's id that are kept (the ids Retorno reads are short)."""
MAX_MEDIA = 100

_MESSAGE_SID = re.compile(r"(?:SM|MM)[0-9a-f]{32}", re.ASCII)
_ACCOUNT_SID = re.compile(r"AC[0-9a-f]{32}", re.ASCII)
_PHONE = re.compile(r"\+?[0-9]{3,15}", re.ASCII)
_STATUS = re.compile(r"[a-z_]{1,32}", re.ASCII)
_ERROR_CODE = re.compile(r"[0-9]{1,10}", re.ASCII)
_COUNT = re.compile(r"[0-9]{1,3}", re.ASCII)

Params = Mapping[str, Any] | Iterable[tuple[str, str]]


class _Form(dict[str, list[str]]):
    """Form parameters as name -> values; `getall` is what Twilio's RequestValidator asks a multi-dict for."""

    def getall(self, name: str) -> list[str]:
        return self[name]

    def first(self, name: str) -> str | None:
        values = self.get(name)
        return values[0] if values else None

    def one(self, name: str) -> str | None:
        """The value of a field that Twilio sends once; Rejected(400) when it is repeated."""
        values = self.get(name)
        if not values:
            return None
        if len(values) > 1:
            raise Rejected(400, "malformed", f"{name} is repeated")
        return values[0]


def twiml_empty() -> str:
    """The answer to a valid webhook: replies go out through the REST API, never inline."""
    return '<?xml version="1.0" encoding="UTF-8"?><Response/>'


def verified(settings: Any, delivery: Delivery) -> list[tuple[str, str]]:
    """The POST parameters of a Twilio webhook as Twilio signed them (repeated keys kept), once the signature holds."""
    if not settings.twilio_inbound:
        raise Rejected(404, "channel_off", "the SMS channel is not configured (TWILIO_AUTH_TOKEN)")
    signature = delivery.header(SIGNATURE_HEADER)
    url = settings.public_url + delivery.path
    if delivery.query_string:
        url += "?" + delivery.query_string.decode("utf-8", "replace")
    if signature is None:
        raise Rejected(403, "bad_signature", "missing X-Twilio-Signature")
    if delivery.mimetype != FORM_TYPE:
        raise Rejected(400, "malformed", "Twilio webhooks are application/x-www-form-urlencoded")
    params = delivery.form()
    verify(settings, url, params, signature)
    return params


def read_message(settings: Any, delivery: Delivery) -> Incoming:
    """The respondent's message in a signed Twilio SMS/WhatsApp webhook; Rejected otherwise."""
    return parse_message(verified(settings, delivery), settings.twilio_account_sid)


def read_status(settings: Any, delivery: Delivery) -> StatusUpdate:
    """The delivery report in a signed Twilio status callback; Rejected otherwise."""
    return parse_status(verified(settings, delivery), settings.twilio_account_sid)


def answer() -> tuple[str, str]:
    """Empty TwiML, once what the webhook brought is stored."""
    return twiml_empty(), TWIML_TYPE


def verify(settings: Any, url: str, params: Params, signature: str | None) -> None:
    """Raise Rejected(403) unless `signature` (X-Twilio-Signature) signs `url` and `params` with the auth token."""
    token = getattr(settings, "twilio_auth_token", None)
    if not token:
        raise Rejected(403, "bad_signature", "Twilio is not configured: TWILIO_AUTH_TOKEN is unset")
    if not isinstance(signature, str) or not signature.strip():
        raise Rejected(403, "bad_signature", f"missing {SIGNATURE_HEADER} header")
    try:
        form = _form(params)
        signature = signature.strip()
        valid = _signed(token, url, form, signature) or RequestValidator(token).validate(url, form, signature)
    except Exception:  # whatever the input, a request that cannot be checked is not signed
        valid = False
    if not valid:
        raise Rejected(403, "bad_signature", f"invalid {SIGNATURE_HEADER} for this URL and parameters")


def _signed(token: str, url: str, form: _Form, signature: str) -> bool:
    """One HMAC-SHA1 over `url` exactly as given, as RequestValidator computes it; False sends to the full check.

    RequestValidator tries the URL with and without the port, both rebuilt by urlparse; the one HMAC here counts
    only for a URL that is one of those two, so it accepts nothing that RequestValidator would refuse.
    """
    if not _validator_form(url):
        return False
    signed = url + "".join(name + value for name in sorted(form) for value in sorted(set(form[name])))
    expected = base64.b64encode(hmac.digest(token.encode("utf-8"), signed.encode("utf-8"), "sha1"))
    return hmac.compare_digest(expected, signature.encode("utf-8", "surrogatepass"))


@functools.lru_cache(maxsize=256)
def _validator_form(url: str) -> bool:
    """Whether `url` is one of the two forms (with, without port) that RequestValidator signs for it."""
    try:
        parsed = urlparse(url)
        return url in (remove_port(parsed), add_port(parsed))
    except ValueError:
        return False


def parse_message(params: Params, account_sid: str | None = None) -> Incoming:
    """The respondent's message in an inbound SMS/WhatsApp webhook (to `account_sid`, when given).

    WhatsApp's own fields are read for what the survey needs and no more: a template button's id (ButtonPayload)
    is kept; the person's WhatsApp profile name (ProfileName) and WhatsApp id (WaId, their number) never are.
    """
    form = _form(params)
    _account(form, account_sid)
    provider_id = _message_sid(form, "MessageSid", "SmsMessageSid", "SmsSid")
    channel, address = _sender(form.one("From"))
    body = _text(form, "Body", MAX_BODY)
    if not body:
        body = _text(form, "ButtonText", MAX_FIELD)
    media = _media_count(form.one("NumMedia"))
    kind, extra = "text", {}
    button = _text(form, "ButtonPayload", MAX_FIELD).strip()[:MAX_BUTTON] if channel == "whatsapp" else ""
    if button:  # a template's quick-reply button: its id says start or stop, whatever its label
        extra["button_payload"] = button
    if not body.strip():
        if media:
            kind = "media"
        elif form.first("Latitude") is not None and form.first("Longitude") is not None:
            kind = "location"
    return Incoming(channel=channel, provider_id=provider_id, address=address, text=body, kind=kind, extra=extra)


def parse_status(params: Params, account_sid: str | None = None) -> StatusUpdate:
    """A delivery status callback (to `account_sid`, when given): which message, its new status, Twilio's error code."""
    form = _form(params)
    _account(form, account_sid, required=False)
    provider_id = _message_sid(form, "MessageSid", "SmsSid")
    status = (form.one("MessageStatus") or form.one("SmsStatus") or "").strip().lower()
    if not _STATUS.fullmatch(status):
        raise Rejected(400, "malformed", "MessageStatus is missing or not a status")
    code = (form.one("ErrorCode") or "").strip()
    if code and not _ERROR_CODE.fullmatch(code):
        raise Rejected(400, "malformed", "ErrorCode is not a number")
    return StatusUpdate(provider_id=provider_id, status=status, error_code=code if code and code != "0" else None)


# -- helpers ----------------------------------------------------------------------------------------------


def _form(params: object) -> _Form:
    """Normalise a Mapping, a multi-dict (werkzeug/Django) or a list of pairs; Rejected(400) for anything else."""
    form = _Form()
    try:
        for name, value in _pairs(params):
            if not isinstance(name, str) or not isinstance(value, str):
                raise Rejected(400, "malformed", "form parameters must be text")
            form.setdefault(name, []).append(value)
    except Rejected:
        raise
    except Exception as exc:  # odd containers are malformed input, nothing else
        raise Rejected(400, "malformed", "form parameters could not be read") from exc
    return form


def _pairs(params: object) -> Iterable[tuple[Any, Any]]:
    if isinstance(params, str | bytes) or params is None:
        raise Rejected(400, "malformed", "form parameters must be a mapping or a list of pairs")
    if isinstance(params, Mapping):
        getlist = getattr(params, "getlist", None)
        for name in list(params.keys()):
            values = getlist(name) if callable(getlist) else params[name]
            for value in values if isinstance(values, list | tuple) else [values]:
                yield name, value
        return
    for pair in params:  # type: ignore[attr-defined]
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise Rejected(400, "malformed", "form parameters must be (name, value) pairs")
        yield pair[0], pair[1]


def _message_sid(form: _Form, *names: str) -> str:
    """The message's SID: each of `names` present is one `SM`/`MM` SID, and all of them name the same message."""
    found = None
    for name in names:
        value = form.one(name)
        if value is None:
            continue
        if not _MESSAGE_SID.fullmatch(value):
            raise Rejected(400, "malformed", f"{name} is not a Twilio message SID (SM or MM and 32 hex digits)")
        if found is not None and value != found:
            raise Rejected(400, "malformed", f"{name} names another message than {names[0]}")
        found = value
    if found is None:
        raise Rejected(400, "malformed", f"{names[0]} is missing")
    return found


def _account(form: _Form, expected: str | None, required: bool = True) -> None:
    """AccountSid is an account SID, and the configured account's when one is configured."""
    value = form.one("AccountSid")
    if value is None and not required:
        return
    if value is None or not _ACCOUNT_SID.fullmatch(value):
        raise Rejected(400, "malformed", "AccountSid is missing or not a Twilio account SID")
    if expected and value != expected:
        raise Rejected(400, "malformed", "AccountSid is not this service's Twilio account (TWILIO_ACCOUNT_SID)")


def _sender(raw: str | None) -> tuple[str, str]:
    """(channel, address): WhatsApp when From has the whatsapp: prefix, which the address loses."""
    value = (raw or "").strip()
    if not value:
        raise Rejected(400, "malformed", "From is missing")
    channel = "sms"
    if value[: len(WHATSAPP_PREFIX)].lower() == WHATSAPP_PREFIX:
        channel, value = "whatsapp", value[len(WHATSAPP_PREFIX):].strip()
    if not _PHONE.fullmatch(value):
        raise Rejected(400, "malformed", "From is not a phone number")
    return channel, value


def _text(form: _Form, name: str, limit: int) -> str:
    value = form.one(name) or ""
    if len(value) > limit:
        raise Rejected(400, "malformed", f"{name} is longer than {limit} characters")
    return storable(value, name)


def _media_count(raw: str | None) -> int:
    value = (raw or "0").strip() or "0"
    if not _COUNT.fullmatch(value) or int(value) > MAX_MEDIA:
        raise Rejected(400, "malformed", "NumMedia is not a number of attachments")
    return int(value)
