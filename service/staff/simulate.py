"""The survey simulator: a conversation replayed through the pure engine, with every reply measured as an SMS.

Nothing is stored, sent, paid or mapped: the engine is pure and this module touches no database. The whole
conversation is replayed from its first message on every turn (a few dozen messages at most), so the browser
holds the only copy and there is no server-side state to leak into exports, maps or incentives.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from surveys import engine, sms
from surveys.definition import Definition

CHANNELS = ("sms", "whatsapp", "telegram")
MAX_MESSAGES = 200
MAX_TEXT = 1600
PRICE_PER_SEGMENT = 0.0079
"""USD per outbound SMS segment (Twilio's list price to a Mexican number, as an estimate only)."""


class SimulationError(ValueError):
    """A simulation that cannot be run; the message says which field to fix."""


@dataclass(frozen=True)
class Said:
    """One message from the simulated respondent: typed text, or a pressed button's data."""

    text: str = ""
    button: str | None = None


def read_messages(raw: Any) -> list[Said]:
    """The `messages` of a request: strings, or `{"text": ...}` / `{"button": "qid=value"}` objects."""
    if not isinstance(raw, list):
        raise SimulationError("messages must be a list of texts")
    if len(raw) > MAX_MESSAGES:
        raise SimulationError(f"at most {MAX_MESSAGES} messages")
    said = []
    for index, item in enumerate(raw):
        if isinstance(item, str):
            said.append(Said(item[:MAX_TEXT]))
        elif isinstance(item, dict) and isinstance(item.get("button"), str) and item["button"]:
            said.append(Said(str(item.get("text") or "")[:MAX_TEXT], item["button"][:64]))
        elif isinstance(item, dict) and isinstance(item.get("text"), str):
            said.append(Said(item["text"][:MAX_TEXT]))
        else:
            raise SimulationError(f"messages[{index}] must be a text (or {{\"button\": \"question=value\"}})")
    return said


def simulate(definition: Definition, language: str, channel: str, messages: list[Said],
             start: datetime, phone_region: str = "MX") -> dict[str, Any]:
    """Replay `messages` through the engine: `{"turns": [...], "replies": [...], "segments_total", ...}`."""
    if channel not in CHANNELS:
        raise SimulationError(f"channel must be one of {', '.join(CHANNELS)}")
    if language not in definition.languages:
        raise SimulationError(f"language must be one of {', '.join(definition.languages)}")
    state = engine.new_state(definition)
    state.language = language
    turns: list[dict[str, Any]] = []
    replies: list[dict[str, Any]] = []
    total = 0
    for index, said in enumerate(messages):
        inbound = engine.Inbound(text=said.text, button=said.button, at=start + timedelta(minutes=index),
                                 language_hint=language)
        step = engine.handle(definition, state, inbound, incentive_available=True,
                             ask_phone=channel == "telegram", phone_region=phone_region)
        state = step.state
        sent = [_reply(reply, channel) for reply in step.replies]
        for reply in sent:
            total += reply["segments"]
            reply["running_total"] = total
        replies += sent
        turns.append({
            "said": said.button and _label(definition, said.button, language) or said.text,
            "button": said.button,
            "replies": sent,
            "answers": {a.question_id: a.value for a in step.answers},
            "events": [e.kind for e in step.events],
        })
    return {
        "survey_id": definition.id, "version": definition.version, "language": language, "channel": channel,
        "status": state.status, "question": state.question, "turns": turns, "replies": replies,
        "segments_total": total, "messages_total": len(replies),
        "cost_estimate": {"amount": round(total * PRICE_PER_SEGMENT, 4), "currency": "USD",
                          "per_segment": PRICE_PER_SEGMENT},
    }


def _reply(reply: engine.Reply, channel: str) -> dict[str, Any]:
    """One reply as the channel shows it, measured as the SMS it would be."""
    buttons = channel == "telegram" and bool(reply.choices) and not reply.multi
    text = reply.text if buttons else reply.plain()
    measure = sms.measure(reply.plain())
    return {
        "text": text,
        **measure.as_dict(),
        "buttons": [{"label": c.label or c.value, "data": c.data} for c in reply.choices] if buttons else [],
        "question_id": reply.question_id,
        "share_number": reply.contact_button if channel == "telegram" else None,
    }


def _label(definition: Definition, data: str, language: str) -> str:
    """What a pressed button said (its label), for the transcript."""
    question_id, _, value = data.partition("=")
    if definition.has_question(question_id):
        for choice in getattr(definition.question(question_id), "choices", ()) or ():
            if str(choice.value) == value:
                labels = choice.label if isinstance(choice.label, dict) else {}
                return labels.get(language) or value
    return value
