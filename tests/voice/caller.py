"""A phone that calls Retorno's voice webhook as Twilio does: signed form posts, following each <Gather>'s action."""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass, field
from html import unescape
from urllib.parse import urlsplit

from tests.support import PUBLIC_URL, TWILIO_FROM, TWILIO_SID, twilio_signature

_SAY = re.compile(r"<Say[^>]*>(.*?)</Say>", re.S)
_GATHER = re.compile(r"<Gather ([^>]*)>")
_ATTRIBUTE = re.compile(r'(\w+)="([^"]*)"')
_sids = itertools.count(1)


def call_sid() -> str:
    return f"CA{next(_sids):032x}"


@dataclass
class Turn:
    """One TwiML answer: what was said, the <Gather> (its attributes) or none, and the raw XML."""

    status: int
    xml: str
    said: list[str] = field(default_factory=list)
    gather: dict[str, str] | None = None

    @property
    def text(self) -> str:
        return " ".join(self.said)

    @property
    def hung_up(self) -> bool:
        return "<Hangup/>" in self.xml or "<Reject" in self.xml


def voice_form(number: str, sid: str, direction: str = "inbound", status: str = "ringing", **extra: str) -> dict:
    """The form Twilio posts for a call (a real inbound call's fields; From/To swap on calls Retorno placed)."""
    caller, called = (number, TWILIO_FROM) if direction == "inbound" else (TWILIO_FROM, number)
    return {
        "AccountSid": TWILIO_SID, "ApiVersion": "2010-04-01", "CallSid": sid, "CallStatus": status,
        "Called": called, "CalledCity": "", "CalledCountry": "US", "CalledState": "", "CalledZip": "",
        "Caller": caller, "CallerCity": "", "CallerCountry": "MX", "CallerState": "", "CallerZip": "",
        "Direction": direction, "From": caller, "FromCity": "", "FromCountry": "MX", "FromState": "", "FromZip": "",
        "To": called, "ToCity": "", "ToCountry": "US", "ToState": "", "ToZip": "", **extra,
    }


def parse(status: int, xml: str) -> Turn:
    said = [unescape(s) for s in _SAY.findall(xml)]
    match = _GATHER.search(xml)
    gather = {k: unescape(v) for k, v in _ATTRIBUTE.findall(match.group(1))} if match else None
    return Turn(status, xml, said, gather)


class HttpClient:
    """A running Retorno behind the interface `Phone` posts to (a Flask test client's `post`)."""

    def __init__(self, base_url: str):
        import requests

        self.base_url = base_url
        self.session = requests.Session()

    def post(self, path: str, data: dict[str, str], headers: dict[str, str]):
        response = self.session.post(self.base_url + path, data=data, headers=headers, timeout=30)
        response.get_data = lambda as_text=True: response.text
        return response


class Phone:
    """One caller's phone on a Flask test client (or anything with `.post(path, data=, headers=)`)."""

    def __init__(self, client, number: str, direction: str = "inbound", public_url: str = PUBLIC_URL):
        self.client = client
        self.public_url = public_url
        self.number = number
        self.direction = direction
        self.sid = ""
        self.turn: Turn | None = None

    def post(self, url: str, form: dict[str, str]) -> Turn:
        parts = urlsplit(url)
        path = parts.path + (f"?{parts.query}" if parts.query else "")
        signature = twilio_signature(url, form)
        response = self.client.post(path, data=form, headers={"X-Twilio-Signature": signature})
        self.turn = parse(response.status_code, response.get_data(as_text=True))
        return self.turn

    def dial(self, sid: str | None = None) -> Turn:
        """A new call (or Retorno's call picked up, for direction outbound-api)."""
        self.sid = sid or call_sid()
        form = voice_form(self.number, self.sid, self.direction,
                          "ringing" if self.direction == "inbound" else "in-progress")
        return self.post(self.public_url + "/webhooks/twilio/voice", form)

    def answer(self, digits: str | None = None, speech: str | None = None, confidence: str = "0.91") -> Turn:
        """What the caller keys or says at the current <Gather> (nothing: silence), posted to its action."""
        assert self.turn is not None and self.turn.gather is not None, self.turn and self.turn.xml
        form = voice_form(self.number, self.sid, self.direction, "in-progress")
        if digits is not None:
            form.update(Digits=digits, FinishedOnKey="#" if digits.endswith("#") else "")
            form["Digits"] = digits.rstrip("#")
        elif speech is not None:
            form.update(SpeechResult=speech, Confidence=confidence)
        return self.post(self.turn.gather["action"], form)
