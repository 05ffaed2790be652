"""Provider webhooks: verify, store, wake a worker, answer. A 2xx means the message is committed."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify, request
from sqlalchemy import select

from bots import console, telegram, twilio
from bots.base import Rejected
from service.app import error_response
from service.inbox import record_status, store
from service.models import Contact, OutboundMessage
from service.runtime import Runtime

webhooks = Blueprint("webhooks", __name__, url_prefix="/webhooks")
TWIML_TYPE = "application/xml"


def _runtime() -> Runtime:
    return current_app.extensions["retorno"]


@webhooks.errorhandler(Rejected)
def _rejected(error: Rejected):
    return error_response(error.status, error.code, error.message)


def _twilio_params() -> list[tuple[str, str]]:
    """The POST parameters as Twilio signed them (repeated keys kept)."""
    if request.mimetype != "application/x-www-form-urlencoded":
        raise Rejected(400, "malformed", "Twilio webhooks are application/x-www-form-urlencoded")
    return list(request.form.items(multi=True))


def _twilio_verified() -> list[tuple[str, str]]:
    settings = _runtime().settings
    if not settings.twilio_inbound:
        raise Rejected(404, "channel_off", "the SMS channel is not configured (TWILIO_AUTH_TOKEN)")
    signature = request.headers.get("X-Twilio-Signature")
    url = settings.public_url + request.path
    if request.query_string:
        url += "?" + request.query_string.decode("utf-8", "replace")
    if signature is None:
        raise Rejected(403, "bad_signature", "missing X-Twilio-Signature")
    params = _twilio_params()
    twilio.verify(settings, url, params, signature)
    return params


@webhooks.post("/twilio/sms")
def twilio_sms():
    params = _twilio_verified()
    incoming = twilio.parse_message(params)
    store(_runtime(), [incoming])
    return Response(twilio.twiml_empty(), status=200, mimetype=TWIML_TYPE)


@webhooks.post("/twilio/status")
def twilio_status():
    params = _twilio_verified()
    record_status(_runtime(), twilio.parse_status(params))
    return Response(twilio.twiml_empty(), status=200, mimetype=TWIML_TYPE)


@webhooks.post("/telegram")
def telegram_update():
    settings = _runtime().settings
    if not settings.telegram:
        raise Rejected(404, "channel_off", "the Telegram channel is not configured (TELEGRAM_BOT_TOKEN)")
    telegram.verify(settings, request.headers.get("X-Telegram-Bot-Api-Secret-Token"))
    incoming = telegram.parse_update(telegram.parse_body(request.get_data()))
    if incoming is not None:
        store(_runtime(), [incoming])
    return jsonify({"ok": True})


def _console_enabled() -> None:
    if not _runtime().settings.console_channel:
        raise Rejected(404, "channel_off", "the console channel is off (RETORNO_CONSOLE_CHANNEL)")


@webhooks.post("/console")
def console_message():
    _console_enabled()
    incoming = console.parse_message(telegram.parse_body(request.get_data()))
    ids = store(_runtime(), [incoming])
    return jsonify({"ok": True, "stored": ids[0] is not None}), 202


@webhooks.get("/console/replies")
def console_replies():
    """What the service said to a console address after message id `after` (for `retorno chat`)."""
    _console_enabled()
    rt = _runtime()
    address = request.args.get("address", "")
    try:
        after = int(request.args.get("after", "0"))
    except ValueError:
        raise Rejected(400, "malformed", "after must be a message id") from None
    if not address:
        raise Rejected(400, "malformed", "address is required")
    address_hash = rt.vault.hash("console", address.strip())
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
