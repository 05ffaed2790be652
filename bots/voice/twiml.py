"""TwiML for a call: the engine's replies spoken with `<Say>`, the question asked with `<Gather>`.

`render` is what the inbound worker stores for each reply on the voice channel (like every channel's render): the
text, and in the payload the question and its choices. `document` turns a step's stored replies into the TwiML
the webhook answers: everything said in the respondent's language (an es-MX or en-US voice, or the survey's
recorded audio), and the last question asked inside `<Gather input="dtmf speech">` whose `action` carries what the
keys mean at this step (see bots.voice.handler). Nothing is recorded.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode
from xml.sax.saxutils import escape, quoteattr

from surveys import messages as builtin
from surveys.engine import CONFIRM, Reply

XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>'
LOCALES = {"es": "es-MX", "en": "en-US"}
VOICES = {"es": "Polly.Mia", "en": "Polly.Joanna"}
"""Amazon Polly voices Twilio's <Say> offers: Mia speaks Mexican Spanish, Joanna US English."""
GATHER_TIMEOUT = 6
"""Seconds of silence after the prompt before the step is posted empty (a re-prompt)."""
MAX_HINTS = 400
"""Twilio takes up to 500 hints of up to 100 characters each."""
KEYPAD_CHOICES = 9
"""Choices a single key can pick; a question with more is answered by speech (or digits and #)."""

VOICE_MESSAGES: dict[str, dict[str, str]] = {
    "press": {"es": "Para {label}, marque {n}.", "en": "For {label}, press {n}."},
    "number": {"es": "Marque el número y al final la tecla de gato.", "en": "Enter the number, then press pound."},
    "multi": {
        "es": "Marque los números de las opciones que elija y al final la tecla de gato.",
        "en": "Enter the numbers of the options you choose, then press pound.",
    },
    "speech": {"es": "Diga su respuesta.", "en": "Please say your answer."},
    "keys": {
        "es": "En cualquier momento, marque asterisco para repetir o cero para ayuda.",
        "en": "At any time, press star to repeat, or zero for help.",
    },
    "no_caller_id": {
        "es": "Para responder la encuesta, llame con su número visible. Gracias.",
        "en": "To answer the survey, please call with your number visible. Thank you.",
    },
    "unavailable": {
        "es": "Por ahora no podemos atender su llamada. Por favor llame más tarde. Gracias.",
        "en": "We cannot take your call right now. Please call again later. Thank you.",
    },
    "goodbye": {"es": "Gracias. Hasta luego.", "en": "Thank you. Goodbye."},
    "no_input": {"es": "No escuchamos su respuesta.", "en": "We did not hear your answer."},
}

_SMS_HINTS = tuple(builtin.DEFAULT_MESSAGES["hint_yes_no"].values())
_SPACES = re.compile(r"\s+")


def render(reply: Reply) -> tuple[str, dict[str, Any]]:
    """A reply as stored for the voice channel: its text, and the question it asks with its choices in order."""
    payload: dict[str, Any] = {}
    if reply.question_id is not None:
        payload["question_id"] = reply.question_id
        if reply.choices:
            payload["choices"] = [{"value": c.value, "label": c.label} for c in reply.choices]
        if reply.choices and reply.choices[0].data.startswith(f"{CONFIRM}="):
            payload["confirm"] = True
        if reply.multi:
            payload["multi"] = True
    return reply.text, payload


@dataclass(frozen=True)
class Ask:
    """The question a step asks: how its keys are read (`mode`), its choices, and the words speech may hear."""

    question_id: str
    mode: str
    """choice | yes_no | confirm | multi | number | speech"""
    values: tuple[str, ...] = ()
    labels: tuple[str, ...] = ()
    hints: tuple[str, ...] = ()
    audio: str | None = None
    """A recording of the question to play instead of speaking its text."""
    text: str = ""
    """The question's own text, which the recording replaces (what comes before it in the reply is still said)."""


def message(key: str, language: str, **values: Any) -> str:
    texts = VOICE_MESSAGES[key]
    text = texts.get(language) or texts["es"]
    return text.format(**values) if values else text


def spoken(text: str) -> str:
    """A text message as said aloud: one line, without the SMS-only '(SI/NO)'."""
    for hint in _SMS_HINTS:
        text = text.replace(hint, "")
    return _SPACES.sub(" ", text).strip()


def action_url(base: str, step: int, ask: Ask) -> str:
    """Where the answer to `ask` is posted: the voice webhook with the step and what its keys mean."""
    query: list[tuple[str, str]] = [("step", str(step)), ("q", ask.question_id), ("mode", ask.mode)]
    if ask.mode == "choice" and all("," not in v for v in ask.values):
        query.append(("c", ",".join(ask.values)))
    return f"{base}?{urlencode(query)}"


def document(texts: list[str], language: str, ask: Ask | None = None, action: str | None = None,
             keys_help: bool = False) -> str:
    """The TwiML of a step: `texts` said, then `ask` gathered (posted to `action`), or the call ended."""
    say = _sayer(language)
    parts = [say(spoken(t)) for t in texts[:-1] if spoken(t)] if ask is not None else [
        say(spoken(t)) for t in texts if spoken(t)]
    if ask is None or action is None:
        return _response([*parts, "<Hangup/>"])
    last = texts[-1] if texts else ""
    if ask.audio:
        before = last.split(ask.text, 1)[0] if ask.text and ask.text in last else ""
        inner = [say(spoken(before)), _play(ask.audio)] if spoken(before) else [_play(ask.audio)]
    else:
        inner = [say(spoken(last))]
    inner.extend(say(line) for line in instructions(ask, language))
    if keys_help:
        inner.append(say(message("keys", language)))
    attributes = {
        "input": "dtmf speech",
        "action": action,
        "method": "POST",
        "language": LOCALES.get(language, language),
        "timeout": str(GATHER_TIMEOUT),
        "speechTimeout": "auto",
        "actionOnEmptyResult": "true",
    }
    if ask.mode in ("choice", "yes_no", "confirm") and len(ask.values) <= KEYPAD_CHOICES:
        attributes["numDigits"] = "1"
    else:
        attributes["finishOnKey"] = "#"
    if ask.hints:
        attributes["hints"] = ", ".join(ask.hints)
    gather = "<Gather " + " ".join(f"{k}={quoteattr(v)}" for k, v in attributes.items()) + ">"
    return _response([*parts, gather + "".join(inner) + "</Gather>"])


def instructions(ask: Ask, language: str) -> list[str]:
    """What the caller is told to key or say for this question."""
    if ask.mode in ("choice", "yes_no", "confirm") and len(ask.labels) <= KEYPAD_CHOICES:
        return [" ".join(message("press", language, label=label, n=n) for n, label in enumerate(ask.labels, 1))]
    if ask.mode == "multi":
        return [" ".join(message("press", language, label=label, n=n) for n, label in enumerate(ask.labels, 1)),
                message("multi", language)]
    if ask.mode == "number":
        return [message("number", language)]
    return [message("speech", language)]


def ended(key: str, language: str = "es") -> str:
    """A call answered with one of the voice messages, then ended."""
    return _response([_sayer(language)(message(key, language)), "<Hangup/>"])


def reject() -> str:
    """Refuse an incoming call before it is answered: nothing is charged to the caller (nor to Retorno)."""
    return _response(['<Reject reason="busy"/>'])


def _sayer(language: str):
    voice = VOICES.get(language)
    locale = LOCALES.get(language, language)

    def say(text: str) -> str:
        voice_attribute = f" voice={quoteattr(voice)}" if voice else ""
        return f"<Say{voice_attribute} language={quoteattr(locale)}>{escape(text)}</Say>"

    return say


def _play(url: str) -> str:
    return f"<Play>{escape(url)}</Play>"


def _response(verbs: list[str]) -> str:
    return XML_HEAD + "<Response>" + "".join(verbs) + "</Response>"
