"""Provider webhooks: verify, store, wake a worker, answer. A 2xx means the message is kept durably: committed, or,
while the database cannot take it, fsynced in this machine's spool (service.spool).

The two hot ones (Twilio SMS, Telegram) are also answered by service.fastpath straight from the WSGI environ;
both read the request through a `Delivery` and share `twilio_sms_incoming` and `telegram_incoming`.
"""

from __future__ import annotations

import hmac
import ipaddress
from typing import Protocol

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import select

from bots import console, telegram, twilio
from bots.base import Incoming, Rejected
from bots.telegram.handler import SECRET_HEADER
from bots.twilio.handler import SIGNATURE_HEADER
from service.app import error_response
from service.auth import authenticate, bearer
from service.config import Settings
from service.edge import BadInput, whole
from service.inbox import store, store_status
from service.models import Contact, InboundMessage, OutboundMessage
from service.runtime import Runtime

webhooks = Blueprint("webhooks", __name__, url_prefix="/webhooks")
TWIML_TYPE = "application/xml"
FORM_TYPE = "application/x-www-form-urlencoded"
READER_HEADER = "X-Console-Reader"


class Delivery(Protocol):
    """What a webhook reads of a provider's POST: Flask's request, or the WSGI environ on the fast path."""

    path: str
    query_string: bytes
    mimetype: str

    def header(self, name: str) -> str | None: ...

    def form(self) -> list[tuple[str, str]]: ...

    def data(self) -> bytes: ...


class _FlaskDelivery:
    """The request Flask is handling, as a Delivery."""

    def __init__(self) -> None:
        self.path, self.query_string, self.mimetype = request.path, request.query_string, request.mimetype

    def header(self, name: str) -> str | None:
        return request.headers.get(name)

    def form(self) -> list[tuple[str, str]]:
        return list(request.form.items(multi=True))

    def data(self) -> bytes:
        return request.get_data()


def _runtime() -> Runtime:
    return current_app.extensions["retorno"]


@webhooks.errorhandler(Rejected)
def _rejected(error: Rejected):
    return error_response(error.status, error.code, error.message)


def twilio_verified(settings: Settings, delivery: Delivery) -> list[tuple[str, str]]:
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
    twilio.verify(settings, url, params, signature)
    return params


def twilio_sms_incoming(settings: Settings, delivery: Delivery) -> Incoming:
    """The respondent's message in a signed Twilio SMS/WhatsApp webhook; Rejected otherwise."""
    return twilio.parse_message(twilio_verified(settings, delivery), settings.twilio_account_sid)


def telegram_incoming(settings: Settings, delivery: Delivery) -> Incoming | None:
    """The respondent's message in a Telegram update with the right secret (None: not for the survey)."""
    if not settings.telegram:
        raise Rejected(404, "channel_off", "the Telegram channel is not configured (TELEGRAM_BOT_TOKEN)")
    telegram.verify(settings, delivery.header(SECRET_HEADER))
    return telegram.parse_update(telegram.parse_body(delivery.data()))


def twiml_ok() -> Response:
    """The answer to a Twilio webhook once handled: empty TwiML."""
    return Response(twilio.twiml_empty(), status=200, mimetype=TWIML_TYPE)


def telegram_ok() -> Response:
    """The answer to a Telegram update once handled (needs an app context)."""
    return jsonify({"ok": True})


@webhooks.post("/twilio/sms")
def twilio_sms():
    rt = _runtime()
    store(rt, [twilio_sms_incoming(rt.settings, _FlaskDelivery())])
    return twiml_ok()


@webhooks.post("/twilio/status")
def twilio_status():
    rt = _runtime()
    params = twilio_verified(rt.settings, _FlaskDelivery())
    store_status(rt, twilio.parse_status(params, rt.settings.twilio_account_sid))
    return twiml_ok()


@webhooks.post("/twilio/voice")
def twilio_voice():
    """A call, and each answer its TwiML gathers (see service.voice)."""
    from service.voice import call_step

    rt = _runtime()
    delivery = _FlaskDelivery()
    return Response(call_step(rt, twilio_verified(rt.settings, delivery), delivery.query_string), mimetype="text/xml")


@webhooks.post("/twilio/voice/status")
def twilio_voice_status():
    from service.voice import call_status

    rt = _runtime()
    call_status(rt, twilio_verified(rt.settings, _FlaskDelivery()))
    return twiml_ok()


@webhooks.post("/telegram")
def telegram_update():
    rt = _runtime()
    incoming = telegram_incoming(rt.settings, _FlaskDelivery())
    if incoming is not None:
        store(rt, [incoming])
    return telegram_ok()


def _console_allowed() -> bool:
    """The console is a test channel: it answers loopback clients, or a staff token. A request that came through
    a proxy (Forwarded, X-Forwarded-For) is not a loopback client, whatever address the proxy has.

    Returns whether the caller is staff (who may read any console address's replies)."""
    rt = _runtime()
    if not rt.settings.console_channel:
        raise Rejected(404, "channel_off", "the console channel is off (RETORNO_CONSOLE_CHANNEL)")
    if bearer() is not None:
        caller = authenticate(rt, bearer())
        if caller is None or caller.role != "staff":
            raise Rejected(403, "forbidden", "the console channel needs a staff token from another machine")
        return True
    proxied = request.headers.get("Forwarded") or request.headers.get("X-Forwarded-For")
    if proxied or not _loopback(request.remote_addr):
        raise Rejected(403, "forbidden", "the console channel answers this machine only (or a staff token)")
    return False


def _loopback(address: str | None) -> bool:
    try:
        return ipaddress.ip_address((address or "").split("%")[0]).is_loopback
    except ValueError:
        return False


def console_reader(rt: Runtime, address: str) -> str:
    """The secret that lets a console client read the replies to `address` (given with its first message only):
    the address's keyed hash and a keyed check of it."""
    address_hash = rt.vault.hash("console", address.strip())
    return f"{address_hash}.{rt.vault.hash('console-reader', address_hash)[:32]}"


def _read_as(rt: Runtime, reader: str) -> str | None:
    """The address hash a reader secret stands for, or None when it is not one."""
    address_hash, _, check = reader.partition(".")
    expected = rt.vault.hash("console-reader", address_hash)[:32]
    return address_hash if check and _same(check, expected) else None


def _same(given: str, expected: str) -> bool:
    """A constant-time comparison that any header text can go through."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), expected.encode())


def _claimed(rt: Runtime, address_hash: str) -> bool:
    """Whether a console address is in use (someone wrote as it already)."""
    with rt.sessions() as session:
        for model in (Contact, InboundMessage):
            if session.scalar(select(model.id).where(model.channel == "console", model.address_hash == address_hash)
                              .limit(1)) is not None:
                return True
    return False


@webhooks.post("/console")
def console_message():
    """A console message: `{"from", "text", ...}` (see bots/console). The first message of an address answers
    `reader`, the secret for reading its replies (and for writing as it again: `X-Console-Reader`)."""
    staff = _console_allowed()
    rt = _runtime()
    incoming = console.parse_message(telegram.parse_body(request.get_data()))
    reader = console_reader(rt, incoming.address)
    given = request.headers.get(READER_HEADER, "")
    if not staff and not _same(given, reader):
        if _claimed(rt, rt.vault.hash("console", incoming.address.strip())):
            raise Rejected(403, "address_taken", "another console client writes as this address; choose another "
                                                 "name, or send its reader secret (X-Console-Reader)")
    ids = store(rt, [incoming])
    return jsonify({"ok": True, "stored": ids[0] is not None, "reader": reader}), 202


@webhooks.get("/console/replies")
def console_replies():
    """What the service said to one console address after message id `after` (for `retorno chat`): the client
    names the address by its reader secret (X-Console-Reader), so it reads only its own replies."""
    staff = _console_allowed()
    rt = _runtime()
    try:
        after = whole(request.args.get("after"), "after") or 0
    except BadInput as error:
        raise Rejected(400, "malformed", str(error)) from None
    reader = request.headers.get(READER_HEADER, "").strip()
    if reader:
        address_hash = _read_as(rt, reader)
        if address_hash is None:
            raise Rejected(403, "forbidden", f"{READER_HEADER} is not a reader secret of this service")
    elif staff and request.args.get("address", "").strip():
        address_hash = rt.vault.hash("console", console.parse_address(request.args.get("address"), "address"))
    else:
        raise Rejected(400, "malformed", f"the {READER_HEADER} header is required (the reader secret that the "
                                         "first message answered)")
    with rt.sessions() as session:
        rows = session.execute(
            select(OutboundMessage.id, OutboundMessage.body, OutboundMessage.payload)
            .join(Contact, Contact.id == OutboundMessage.contact_id)
            .where(
                Contact.channel == "console",
                Contact.address_hash == address_hash,
                OutboundMessage.id > after,
                OutboundMessage.status.in_(("sent", "delivered")),
            )
            .order_by(OutboundMessage.id)
            .limit(100)
        ).all()
    return jsonify([{"id": i, "text": body, "buttons": (payload or {}).get("buttons", [])} for i, body, payload in rows])
