"""The shape of a survey YAML file, as pydantic models: keys, types and defaults (meaning is checked in loader)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

Translated = dict[str, str]


class Spec(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


def _as_text(value: object) -> object:
    """YAML reads `value: 1` as a number; a stored choice value is always text."""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int | float):
        return str(value)
    return value


class ChoiceSpec(Spec):
    value: str
    label: Translated
    synonyms: dict[str, list[str]] = {}
    range: tuple[float, float] | None = None
    exclusive: bool = False
    means: Literal["yes", "no", "dont_know"] | None = None

    _value_as_text = field_validator("value", mode="before")(_as_text)


class RegionSpec(Spec):
    code: str
    name: str
    abbreviations: list[str] = []
    synonyms: list[str] = []

    _code_as_text = field_validator("code", mode="before")(_as_text)


class QuestionSpec(Spec):
    id: str
    type: Literal["choice", "multi", "yes_no", "integer", "decimal", "text", "date", "region"]
    text: Translated
    required: bool = True
    choices: list[ChoiceSpec] = []
    min: float | None = None
    max: float | None = None
    max_length: int | None = Field(default=None, ge=1)
    when: str | None = None
    dimension: Literal["economic", "social", "psychosocial"] | None = None
    gap: list[str] | None = None
    group: bool = False
    error: Translated = {}
    hint: Translated = {}
    regions: str | list[RegionSpec] | None = None
    audio: Translated = {}
    """A recording of the question per language (an https URL), played to callers instead of its text said."""
    voice: bool | None = None
    """`false`: not asked in a call (an optional text question); unset: asked on every channel."""

    _id_as_text = field_validator("id", mode="before")(_as_text)

    @field_validator("gap", mode="before")
    @classmethod
    def _gap_as_text(cls, value: object) -> object:
        if isinstance(value, list):
            return [_as_text(v) for v in value]
        return [_as_text(value)] if value is not None else None


class ConsentSpec(Spec):
    text: Translated
    accept: Translated = {}
    decline: Translated = {}


class IncentiveSpec(Spec):
    amount: float = Field(gt=0)
    currency: str = Field(pattern=r"^[A-Z]{3}$")
    budget: float | None = Field(default=None, ge=0)


SURVEY_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,62}$"


class EligibilitySpec(Spec):
    question: str
    min_age: int = Field(ge=1, le=120)


class SurveySpec(Spec):
    id: str = Field(pattern=SURVEY_ID_PATTERN)
    version: int = Field(ge=1)
    title: Translated
    languages: list[str] = Field(min_length=1)
    default_language: str
    start_keywords: list[str] = []
    incentive: IncentiveSpec | None = None
    min_cell: int = 10
    release_interval: str | int = "1d"
    weights: dict[Literal["economic", "social", "psychosocial"], float] = {}
    max_reprompts: int = Field(default=3, ge=0, le=10)
    segment_budget: int | None = Field(default=None, ge=1)
    resume_after_minutes: int = Field(default=360, ge=1)
    skip_words: dict[str, list[str]] = {}
    messages: dict[str, Translated] = {}
    contact: Translated = {}
    eligibility: EligibilitySpec | None = None
    consent: ConsentSpec
    questions: list[QuestionSpec] = Field(min_length=1)
