"""What a survey costs in SMS: every message the engine can send, measured per question and language.

For `retorno surveys check`: per question and language, the question with its options, its longest re-prompt and
the answer to HELP (encoding, characters, segments); the messages that are not about one question (thanks,
confirmations, notices) with this survey's own values; the segments of the longest path through the survey; and
the worst path, where every question is asked again as often as the survey allows and HELP is asked once, which
`segment_budget` bounds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from surveys import engine, sms
from surveys.definition import Definition
from surveys.messages import TELEGRAM_ONLY
from surveys.paths import paths

KINDS = ("question", "reprompt", "help")
_NOT_SENT_ALONE = frozenset({"hint_yes_no", "hint_multi", "hint_optional", "phone_button"})
"""Pieces of other messages (hints) and button labels: measured inside what they are part of, if at all."""


@dataclass(frozen=True)
class Cost:
    """The costliest message of one kind: `about` is a question id or a message name."""

    about: str
    language: str
    kind: str
    text: str
    measure: sms.Measure
    line: int


@dataclass(frozen=True)
class Path:
    """The longest path through the survey in one language: questions asked, messages and segments sent."""

    language: str
    questions: int
    messages: int
    segments: int

    def as_dict(self) -> dict[str, Any]:
        return {"questions": self.questions, "messages": self.messages, "segments": self.segments}


@dataclass(frozen=True)
class SurveyCost:
    questions: list[Cost]
    other: list[Cost]
    longest: list[Path]
    worst: list[Path] = field(default_factory=list)
    """Per language, the path that sends the most segments when every question is asked again as often as the
    survey allows (its costliest re-prompt each time) and HELP is asked once."""
    budget: int | None = None

    def over(self, limit: int) -> list[Cost]:
        """The messages that take more than `limit` segments."""
        return [c for c in (*self.questions, *self.other) if c.measure.segments > limit]

    def over_budget(self) -> list[Path]:
        """The languages whose worst path sends more segments than the survey's `segment_budget`."""
        return [p for p in self.worst if self.budget is not None and p.segments > self.budget]


def survey_cost(definition: Definition, lines: dict[str, int] | None = None) -> SurveyCost:
    """Every message of a survey measured; `lines` gives a question's (by id) or an overridden message's
    ('messages.<name>') line in its file."""
    lines = lines or {}
    questions: list[Cost] = []
    asked: dict[tuple[str, str], list[sms.Measure]] = {}
    again: dict[tuple[str, str], list[sms.Measure]] = {}
    helped: dict[tuple[str, str], list[sms.Measure]] = {}
    for language in definition.languages:
        for question in definition.questions:
            sent = engine.rehearse(definition, question.id, language)
            for kind in KINDS:
                texts = [reply.plain() for replies in sent[kind] for reply in replies]
                worst = max(texts, key=lambda t: (sms.segments(t), sms.characters(t)))
                questions.append(Cost(question.id, language, kind, worst, sms.measure(worst), lines.get(question.id, 1)))
            asked[(question.id, language)] = [sms.measure(r.plain()) for r in sent["question"][0]]
            again[(question.id, language)] = max(
                ([sms.measure(r.plain()) for r in replies] for replies in sent["reprompt"]),
                key=lambda ms: (sum(m.segments for m in ms), len(ms)),
            )
            helped[(question.id, language)] = [sms.measure(r.plain()) for r in sent["help"][0]]
    other = [
        Cost(key, language, "message", text, sms.measure(text), lines.get(f"messages.{key}", 1))
        for key in definition.messages
        if key not in _NOT_SENT_ALONE and key not in TELEGRAM_ONLY
        for language in definition.languages
        for text in [definition.message(key, language, **_sample_values(definition, language))]
    ]
    return SurveyCost(
        questions,
        other,
        [_longest(definition, language, asked) for language in definition.languages],
        [_longest(definition, language, asked, again, helped) for language in definition.languages],
        definition.segment_budget,
    )


def _longest(
    definition: Definition,
    language: str,
    asked: dict[tuple[str, str], list[sms.Measure]],
    again: dict[tuple[str, str], list[sms.Measure]] | None = None,
    helped: dict[tuple[str, str], list[sms.Measure]] | None = None,
) -> Path:
    """The path (consent, questions, thanks) that sends the most segments; with `again` and `helped`, each question
    also re-prompted `max_reprompts` times and, on the costliest question, HELP once (the worst path)."""
    found = paths(definition.questions, definition.eligibility) or [tuple(q.id for q in definition.questions)]
    ending = "completed_incentive" if definition.incentive else "completed"
    thanks = sms.segments(definition.message(ending, language, **_sample_values(definition, language)))
    best = Path(language, 0, 0, 0)
    for path in found:
        measures = [m for question_id in path for m in asked[(question_id, language)]]
        if again is not None and helped is not None:
            measures += [m for q in path for _ in range(definition.max_reprompts) for m in again[(q, language)]]
            measures += max((helped[(q, language)] for q in path), key=lambda ms: sum(m.segments for m in ms))
        candidate = Path(language, len(path) - 1, len(measures) + 1, sum(m.segments for m in measures) + thanks)
        if (candidate.segments, candidate.messages) > (best.segments, best.messages):
            best = candidate
    return best


def _sample_values(definition: Definition, language: str) -> dict[str, str]:
    """Values for every placeholder a built-in message can have, as long as this survey makes them."""
    incentive = definition.incentive
    regions = definition.region_question.regions if definition.region_question else ()
    title = definition.title.get(language, "")
    return {
        "credit": incentive.credit if incentive else "",
        "amount": f"{incentive.amount:g}" if incentive else "",
        "currency": incentive.currency if incentive else "",
        "keyword": (definition.start_keywords or ("ENCUESTA",))[0],
        "min_age": str(definition.eligibility.min_age) if definition.eligibility else "18",
        "ending": "5678",
        "label": max((r.name for r in regions), key=len, default="Baja California Sur"),
        "regions": "Baja California o Baja California Sur",
        "age": "17",
        "options": "1, 2, 3 o 4",
        "min": "0",
        "max": "1000000",
        "max_length": "1000",
        "contact": definition.contact.get(language) or title,
        "title": title,
    }
