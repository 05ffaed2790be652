"""What `retorno surveys check` says about a valid survey: the SMS segment table, the longest path, warnings."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from surveys.costs import KINDS, Cost, SurveyCost, survey_cost
from surveys.loader import Review
from surveys.sms import GSM7, non_gsm7

_TITLES = {"question": "question", "reprompt": "re-prompt", "help": "help"}


def costs(review: Review) -> SurveyCost:
    assert review.definition is not None
    return survey_cost(review.definition, review.lines)


def too_long(path: Path, cost: SurveyCost, limit: int, error: bool) -> list[str]:
    """`FILE:LINE:` lines for the messages over `limit` segments: warnings, or errors with --max-segments."""
    lines = []
    for item in cost.over(limit):
        what = f"question '{item.about}'" if item.kind in KINDS else f"message '{item.about}'"
        kind = f" {_TITLES[item.kind]}" if item.kind in KINDS else ""
        why = ""
        if item.measure.encoding != GSM7:
            why = f"; {' '.join(repr(ch) for ch in non_gsm7(item.text)[:5])} force UCS-2 (70 characters a segment)"
        prefix = "" if error else "warning: "
        limit_note = f", more than --max-segments {limit}" if error else ""
        lines.append(
            f"{path}:{item.line}: {prefix}{what} ({item.language}){kind} takes {item.measure.segments} SMS "
            f"({item.measure.encoding}, {item.measure.characters} characters{why}){limit_note}"
        )
    return lines


def table(path: Path, review: Review, cost: SurveyCost) -> list[str]:
    """The segment table: per question and language, encoding / characters / segments of each message."""
    definition = review.definition
    assert definition is not None
    low, high = definition.question_range
    asked = f"{low}" if low == high else f"{low} to {high}"
    lines = [
        f"{path}: {definition.id} v{definition.version}, {len(definition.questions) - 1} questions "
        f"({asked} asked after consent), languages {', '.join(definition.languages)}",
        "  SMS per message: encoding, characters, segments",
    ]
    width = max(len(q.id) for q in definition.questions)
    lines.append(f"  {'question':<{width}}  lang  " + "".join(f"{_TITLES[k]:<20}" for k in KINDS).rstrip())
    by_key = {(c.about, c.language, c.kind): c for c in cost.questions}
    for question in definition.questions:
        for n, language in enumerate(definition.languages):
            name = question.id if n == 0 else ""
            cells = "".join(f"{_cell(by_key[(question.id, language, k)]):<20}" for k in KINDS).rstrip()
            lines.append(f"  {name:<{width}}  {language:<4}  {cells}")
    worst = max(cost.other, key=lambda c: (c.measure.segments, c.measure.characters), default=None)
    if worst is not None:
        encodings = sorted({c.measure.encoding for c in cost.other})
        most = max(c.measure.segments for c in cost.other)
        lines.append(
            f"  other messages: {len(cost.other) // len(definition.languages)} in each language, "
            f"{' and '.join(encodings)}, at most {most} SMS (longest: {worst.about}, {worst.language}, "
            f"{worst.measure.characters} characters)"
        )
    paths = "; ".join(f"{p.language} {p.questions} questions, {p.messages} messages, {p.segments} SMS"
                      for p in cost.longest)
    lines.append(f"  longest path (consent to thanks): {paths}")
    worst = "; ".join(f"{p.language} {p.messages} messages, {p.segments} SMS" for p in cost.worst)
    budget = f" (budget {cost.budget})" if cost.budget is not None else ""
    lines.append(f"  worst path (each question asked again {definition.max_reprompts} times, HELP once): "
                 f"{worst}{budget}")
    return lines


def over_budget(path: Path, review: Review, cost: SurveyCost) -> list[str]:
    """`FILE:LINE: warning:` lines for the languages whose worst path sends more than `segment_budget`."""
    line = review.lines.get("segment_budget", 1)
    return [f"{path}:{line}: warning: segment_budget: the worst path in {p.language} sends {p.segments} SMS, more "
            f"than the budget of {cost.budget} (shorten the texts or raise segment_budget)" for p in cost.over_budget()]


def as_json(path: Path, review: Review, cost: SurveyCost | None, limit: int | None) -> dict[str, Any]:
    """The same figures for tools: `retorno surveys check --json`."""
    found: dict[str, Any] = {
        "file": str(path),
        "valid": not review.problems,
        "problems": [{"line": p.line, "message": p.message} for p in review.problems],
        "warnings": [{"line": p.line, "message": p.message.removeprefix("warning: ")} for p in review.warnings],
    }
    definition = review.definition
    if definition is None or cost is None:
        return found
    over = cost.over(limit if limit is not None else 1)
    found.update({
        "survey": definition.id,
        "version": definition.version,
        "languages": list(definition.languages),
        "questions_asked": {"min": definition.question_range[0], "max": definition.question_range[1]},
        "max_segments": limit,
        "messages": [_json_cost(c) for c in cost.questions],
        "other_messages": [_json_cost(c) for c in cost.other],
        "longest_path": {p.language: p.as_dict() for p in cost.longest},
        "worst_path": {p.language: p.as_dict() for p in cost.worst},
        "segment_budget": cost.budget,
        "over_budget": [p.language for p in cost.over_budget()],
        "over_limit": [_json_cost(c) for c in over],
    })
    return found


def _json_cost(cost: Cost) -> dict[str, Any]:
    key = "question" if cost.kind in KINDS else "message"
    return {key: cost.about, "language": cost.language, **({"kind": cost.kind} if key == "question" else {}),
            **cost.measure.as_dict(), "line": cost.line, "text": cost.text}


def _cell(cost: Cost) -> str:
    m = cost.measure
    return f"{m.encoding} {m.characters:>3} {m.segments}"
