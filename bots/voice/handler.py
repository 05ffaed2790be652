"""Twilio Voice webhooks: a call's request (and each `<Gather>` answer), and call status callbacks.

Pure functions over the request's form parameters, signed like every Twilio webhook (`bots.twilio.verify`).
Every failure is a `Rejected` (400: malformed). A call's respondent is the caller on an inbound call (`From`) and
the person called on a call Retorno placed (`To`, Direction `outbound-api`). Caller ID withheld (Twilio's
`anonymous`, `+266696687`, ...) gives no respondent: the call is answered, told why, and ended. Nothing here logs a
number, digits or a transcript; no recording is ever asked for.

What a step of the call means for the engine (`step_input`): keypad digit n picks the n-th choice of the question
being asked (`yes_no` and confirmations: 1 yes, 2 no), as the button of that choice, and a key that picks no
choice is an unreadable reply (never a number: 9 among six age bands is not "aged 9"); a number is typed and ends
with `#`; `*` repeats the question; `0` asks for help (except where a number is expected, 0 being one); speech is
the transcript, parsed like an SMS reply; silence is an empty reply, which the engine re-prompts as it re-prompts
any reply it cannot read.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from bots._text import storable
from bots.base import Incoming, Rejected, StatusUpdate
from bots.twilio.handler import Params, _account, _form

CHANNEL = "voice"
PATH = "/webhooks/twilio/voice"
STATUS_PATH = "/webhooks/twilio/voice/status"
MAX_SPEECH = 1_000
"""Characters of a transcript kept; a question's answer is a few words, Twilio's transcripts are short."""
MAX_STEPS = 500
"""Steps of one call; a longer call is a loop, not a respondent."""

CALL_STATUSES = ("queued", "ringing", "in-progress", "completed", "busy", "failed", "no-answer", "canceled")
"""Twilio's call statuses (Call resource, CallStatus)."""
DIRECTIONS = ("inbound", "outbound-api", "outbound-dial")
ANONYMOUS = frozenset({"anonymous", "restricted", "unknown", "unavailable", "private", "+266696687", "266696687"})
"""What From holds when the caller withholds their number: Twilio's +266696687 ('ANONYMOUS' on a keypad), or a
word a carrier passed on."""

STATUS_OF_CALL = {
    "queued": "queued", "initiated": "queued", "ringing": "sending", "in-progress": "sent", "answered": "sent",
    "completed": "delivered", "busy": "failed", "no-answer": "failed", "failed": "failed", "canceled": "canceled",
}
"""A placed call's status as the status of the outbound message that placed it: answered and ended is delivered
(the funnel counts it); busy, no-answer and failed are failures whose code says which (`ErrorCode` = the status)."""

UNREADABLE = "*"
"""The reply a key that means nothing at this step becomes: every parser rejects it as not understood."""

_CALL_SID = re.compile(r"CA[0-9a-f]{32}", re.ASCII)
_PHONE = re.compile(r"\+?[0-9]{3,15}", re.ASCII)
_DIGITS = re.compile(r"[0-9*#]{0,64}", re.ASCII)
_STEP = re.compile(r"[0-9]{1,4}", re.ASCII)
_QUESTION = re.compile(r"[A-Za-z0-9_.-]{1,64}", re.ASCII)
_VALUE = re.compile(r"[^,\x00-\x1f\x7f]{1,64}")
_MODES = ("choice", "yes_no", "confirm", "multi", "number", "speech")


@dataclass(frozen=True)
class Call:
    """One request of a call: who, which call, and what the caller keyed or said at this step."""

    sid: str
    address: str | None
    """The respondent's number (None: caller ID withheld)."""
    direction: str
    status: str
    digits: str | None = None
    speech: str | None = None
    confidence: float | None = None

    @property
    def placed(self) -> bool:
        """A call Retorno placed (a call back or an invitation), not one the respondent made."""
        return self.direction.startswith("outbound")


@dataclass(frozen=True)
class Prompt:
    """What the `<Gather>` of a step asked (carried in its action URL): the step's number, the question and how
    its keys are read."""

    step: int = 0
    question: str | None = None
    mode: str | None = None
    choices: tuple[str, ...] = ()
    """The values of the question's choices in the order the keypad numbers them."""


def parse_call(params: Params, account_sid: str | None = None) -> Call:
    """The call in a voice webhook or `<Gather>` action (to `account_sid`, when given); Rejected(400) otherwise."""
    form = _form(params)
    _account(form, account_sid)
    sid = form.one("CallSid") or ""
    if not _CALL_SID.fullmatch(sid):
        raise Rejected(400, "malformed", "CallSid is missing or not a Twilio call SID (CA and 32 hex digits)")
    direction = (form.one("Direction") or "inbound").strip().lower()
    if direction not in DIRECTIONS:
        raise Rejected(400, "malformed", f"Direction is not one of {', '.join(DIRECTIONS)}")
    status = (form.one("CallStatus") or "").strip().lower()
    if status and status not in CALL_STATUSES:
        raise Rejected(400, "malformed", "CallStatus is not a Twilio call status")
    address = _respondent(form.one("To") if direction.startswith("outbound") else form.one("From"))
    digits = form.one("Digits")
    if digits is not None and not _DIGITS.fullmatch(digits):
        raise Rejected(400, "malformed", "Digits holds something other than keypad keys")
    speech = form.one("SpeechResult")
    if speech is not None:
        if len(speech) > MAX_SPEECH:
            raise Rejected(400, "malformed", f"SpeechResult is longer than {MAX_SPEECH} characters")
        speech = storable(speech, "SpeechResult")
    return Call(sid=sid, address=address, direction=direction, status=status or "in-progress", digits=digits,
                speech=speech, confidence=_confidence(form.one("Confidence")))


def parse_prompt(query: Mapping[str, str]) -> Prompt:
    """What the step being answered asked, from its action URL's query (signed with the request)."""
    step = query.get("step", "0")
    if not _STEP.fullmatch(step) or int(step) > MAX_STEPS:
        raise Rejected(400, "malformed", f"step is not a step of a call (0 to {MAX_STEPS})")
    question = query.get("q") or None
    if question is not None and not _QUESTION.fullmatch(question):
        raise Rejected(400, "malformed", "q is not a question id")
    mode = query.get("mode") or None
    if mode is not None and mode not in _MODES:
        raise Rejected(400, "malformed", f"mode is not one of {', '.join(_MODES)}")
    choices = tuple(c for c in (query.get("c") or "").split(",") if c)
    if any(not _VALUE.fullmatch(c) for c in choices) or len(choices) > 99:
        raise Rejected(400, "malformed", "c is not a list of choice values")
    return Prompt(step=int(step), question=question, mode=mode, choices=choices)


def parse_status(params: Params, account_sid: str | None = None) -> StatusUpdate:
    """A call status callback as a status of the outbound message that placed the call."""
    form = _form(params)
    _account(form, account_sid, required=False)
    sid = form.one("CallSid") or ""
    if not _CALL_SID.fullmatch(sid):
        raise Rejected(400, "malformed", "CallSid is missing or not a Twilio call SID (CA and 32 hex digits)")
    status = (form.one("CallStatus") or "").strip().lower()
    if status not in STATUS_OF_CALL:
        raise Rejected(400, "malformed", "CallStatus is missing or not a Twilio call status")
    mapped = STATUS_OF_CALL[status]
    return StatusUpdate(provider_id=sid, status=mapped, error_code=status if mapped == "failed" else None)


def step_input(call: Call, prompt: Prompt, language: str = "es") -> Incoming:
    """The step as the message the engine reads: a choice's button, digits, the transcript, or a repeat."""
    provider_id = f"{call.sid}.{prompt.step}"
    extra: dict[str, Any] = {"call_step": prompt.step}
    if call.placed:
        extra["placed"] = True
    base = {"channel": CHANNEL, "provider_id": provider_id, "address": call.address or "", "extra": extra}
    if prompt.question is None:  # the call's first request: where does this respondent stand?
        return Incoming(**base, kind="call")
    digits = (call.digits or "").rstrip("#")
    if digits:
        extra["digits"] = True
        return _keyed(base, digits, prompt, language)
    if call.speech and call.speech.strip():
        if call.confidence is not None:
            extra["confidence"] = call.confidence
        return Incoming(**base, text=call.speech.strip())
    extra["silence"] = True
    return Incoming(**base, text="")


def _keyed(base: dict[str, Any], digits: str, prompt: Prompt, language: str) -> Incoming:
    if "*" in digits:
        return Incoming(**base, kind="repeat")
    if digits == "0" and prompt.mode != "number":
        return Incoming(**base, text="HELP" if language == "en" else "AYUDA")
    mode, question = prompt.mode, prompt.question
    if mode in ("yes_no", "confirm") and digits in ("1", "2"):
        target = "_confirm" if mode == "confirm" else question
        return Incoming(**base, button=f"{target}={'yes' if digits == '1' else 'no'}")
    if mode == "choice" and digits.isdigit() and 1 <= int(digits) <= len(prompt.choices):
        return Incoming(**base, button=f"{question}={prompt.choices[int(digits) - 1]}")
    if mode == "multi":
        return Incoming(**base, text=" ".join(digits.replace("#", "")))
    if mode == "number":
        return Incoming(**base, text=digits)
    # keys that pick nothing here (a 9 among 6 choices is not 'aged 9'; digits for a region said aloud): a reply
    # no parser reads, so the engine asks again and counts it like any unreadable reply
    base["extra"]["keys"] = digits[:4]
    return Incoming(**base, text=UNREADABLE)


def _respondent(raw: str | None) -> str | None:
    value = (raw or "").strip()
    if value.lower() in ANONYMOUS or not value:
        return None
    if value.lower().startswith(("client:", "sip:")):
        raise Rejected(400, "malformed", "a call from a Twilio Client or SIP endpoint has no phone number")
    if not _PHONE.fullmatch(value):
        raise Rejected(400, "malformed", "the caller's number is not a phone number")
    return value


def _confidence(raw: str | None) -> float | None:
    if raw is None or not raw.strip():
        return None
    try:
        value = float(raw)
    except ValueError:
        raise Rejected(400, "malformed", "Confidence is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise Rejected(400, "malformed", "Confidence is not between 0 and 1")
    return round(value, 3)
