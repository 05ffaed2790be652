"""The checked, immutable form of a survey definition that the engine, workers and analytics read."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from surveys.text import normalize

QUESTION_TYPES = ("choice", "multi", "yes_no", "integer", "decimal", "text", "date", "region")
DIMENSIONS = ("economic", "social", "psychosocial")
CONSENT_ID = "consent"


@dataclass(frozen=True)
class Choice:
    """One answer option: the stored `value`, a label per language and synonyms per language."""

    value: str
    label: dict[str, str]
    synonyms: dict[str, tuple[str, ...]] = field(default_factory=dict)
    range: tuple[float, float] | None = None
    exclusive: bool = False
    means: str | None = None
    """'yes', 'no' or 'dont_know': a plain "sí", "no" or "no sé" picks this choice."""


@dataclass(frozen=True)
class Region:
    """A region of the map: its code (INEGI two digits for Mexican states), name and other names."""

    code: str
    name: str
    abbreviations: tuple[str, ...] = ()
    synonyms: tuple[str, ...] = ()


@dataclass(frozen=True)
class Question:
    """One question as the engine asks it; `condition` is the compiled `when` expression."""

    id: str
    type: str
    text: dict[str, str]
    required: bool = True
    choices: tuple[Choice, ...] = ()
    min: float | None = None
    max: float | None = None
    max_length: int | None = None
    when: str | None = None
    condition: Any = None
    dimension: str | None = None
    gap: tuple[Any, ...] | None = None
    group: bool = False
    errors: dict[str, str] = field(default_factory=dict)
    regions: tuple[Region, ...] = ()
    line: int = 0
    hint: dict[str, str] = field(default_factory=dict)
    """A short clarification per language, sent with the question again when a respondent is unsure."""
    audio: dict[str, str] = field(default_factory=dict)
    """A recording of the question per language (https URL), played to callers instead of its text said."""
    by_voice: bool = True
    """Asked in a call; False for optional text questions a survey keeps to written channels."""

    def choice(self, value: str) -> Choice | None:
        return next((c for c in self.choices if c.value == value), None)

    @property
    def is_indicator(self) -> bool:
        return self.dimension is not None and self.gap is not None


@dataclass(frozen=True)
class Incentive:
    amount: float
    currency: str
    budget: float | None = None

    @property
    def credit(self) -> str:
        """The credit as every message writes it: '30 MXN'."""
        return credit_text(self.amount, self.currency)


def credit_text(amount: float, currency: str) -> str:
    """An amount of credit as every message writes it: '30 MXN', '12.5 USD'."""
    return f"{amount:g} {currency}"


@dataclass(frozen=True)
class Eligibility:
    """Who may answer: the screening question (integer, or choices with ranges) and the youngest age it admits."""

    question: str
    min_age: int

    def admits(self, question: Question, value: Any) -> bool:
        """Whether this answer to the screening question lets the respondent go on."""
        if question.type in ("integer", "decimal"):
            return isinstance(value, int | float) and value >= self.min_age
        choice = question.choice(value) if isinstance(value, str) else None
        return choice is not None and choice.range is not None and choice.range[0] >= self.min_age


@dataclass(frozen=True)
class Definition:
    """A whole survey at one version; `questions[0]` is the consent question."""

    id: str
    version: int
    title: dict[str, str]
    languages: tuple[str, ...]
    default_language: str
    questions: tuple[Question, ...]
    start_keywords: tuple[str, ...] = ()
    incentive: Incentive | None = None
    min_cell: int = 10
    release_interval: int = 86400  # seconds between releases of gap figures
    weights: dict[str, float] = field(default_factory=dict)
    messages: dict[str, dict[str, str]] = field(default_factory=dict)
    skip_words: dict[str, tuple[str, ...]] = field(default_factory=dict)
    max_reprompts: int = 3
    segment_budget: int | None = None
    """The most SMS segments one respondent should be sent on the worst path (`surveys check` warns above it)."""
    resume_after_minutes: int = 360
    digest: str = ""
    contact: dict[str, str] = field(default_factory=dict)
    """Who a respondent can reach, per language (HELP says it)."""
    eligibility: Eligibility | None = None
    question_range: tuple[int, int] = (0, 0)
    """The fewest and most questions (consent aside) an eligible respondent can be asked."""

    def __post_init__(self) -> None:
        object.__setattr__(self, "_by_id", {q.id: i for i, q in enumerate(self.questions)})

    def question(self, question_id: str) -> Question:
        return self.questions[self._by_id[question_id]]  # type: ignore[attr-defined]

    def has_question(self, question_id: str) -> bool:
        return question_id in self._by_id  # type: ignore[attr-defined]

    def index(self, question_id: str) -> int:
        return self._by_id[question_id]  # type: ignore[attr-defined]

    @cached_property
    def skip_set(self) -> frozenset[str]:
        """Every language's skip words, normalized."""
        return frozenset(normalize(w) for words in self.skip_words.values() for w in words)

    @cached_property
    def start_set(self) -> frozenset[str]:
        """The start keywords, normalized."""
        return frozenset(normalize(k) for k in self.start_keywords)

    @property
    def consent(self) -> Question:
        return self.questions[0]

    @property
    def region_question(self) -> Question | None:
        return next((q for q in self.questions if q.type == "region"), None)

    def message(self, key: str, language: str, **values: Any) -> str:
        """A system message in a language, with `{placeholders}` filled."""
        texts = self.messages[key]
        text = texts.get(language) or texts[self.default_language]
        return text.format(**values) if values else text

    def normalized(self) -> dict[str, Any]:
        """The definition as the JSON API publishes it (see CONTRACT.md)."""
        return {
            "id": self.id,
            "version": self.version,
            "title": dict(self.title),
            "languages": list(self.languages),
            "default_language": self.default_language,
            "start_keywords": list(self.start_keywords),
            "incentive": (
                {"amount": self.incentive.amount, "currency": self.incentive.currency}
                if self.incentive
                else None
            ),
            "min_cell": self.min_cell,
            "weights": dict(self.weights),
            "questions": [_normalized_question(q) for q in self.questions],
        }


def _normalized_question(q: Question) -> dict[str, Any]:
    choices = q.choices or tuple(Choice(r.code, {"*": r.name}) for r in q.regions)
    return {
        "id": q.id,
        "type": q.type,
        "text": dict(q.text),
        "required": q.required,
        "choices": [
            {"value": c.value, "label": dict(c.label) if "*" not in c.label else _all_languages(c.label, q.text)}
            for c in choices
        ],
        "min": q.min,
        "max": q.max,
        "max_length": q.max_length,
        "when": q.when,
        "dimension": q.dimension,
        "gap": list(q.gap) if q.gap is not None else None,
        "group": q.group,
    }


def _all_languages(label: dict[str, str], text: dict[str, str]) -> dict[str, str]:
    return {language: label["*"] for language in text}
