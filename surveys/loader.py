"""Reads survey YAML, reports every problem with its line, and builds the immutable Definition.

`check_text` returns the problems of one file; `load_text` / `load_file` return a Definition or raise SurveyError.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
import string
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from surveys import messages as builtin
from surveys import yamlsource
from surveys.definition import CONSENT_ID, Choice, Definition, Eligibility, Incentive, Question, Region
from surveys.expressions import ExpressionError, compile_expression
from surveys.paths import question_range
from surveys.regions import REGION_SETS
from surveys.schema import ChoiceSpec, EligibilitySpec, QuestionSpec, RegionSpec, SurveySpec
from surveys.text import normalize

BUNDLED_DIR = Path(__file__).parent / "definitions"
CHOICE_TYPES = ("choice", "multi", "yes_no")
MAX_CALLBACK_BYTES = 64
LOWEST_MIN_CELL = 5  # below this, a published cell may describe one or two identifiable people
SHORTEST_RELEASE = 3600  # seconds; more frequent releases give an observer more moments to compare
_INTERVAL = re.compile(r"^\s*(\d+)\s*([mhd])\s*$")
_INTERVAL_UNITS = {"m": 60, "h": 3600, "d": 86400}
CONSENT_PLACEHOLDERS = ("questions", "credit")
"""What a consent text may say in braces: the question count a respondent can get, and the credit."""
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_ADDED_LATER = ("contact", "eligibility", "hint", "means", "segment_budget", "audio", "voice")
"""Keys added after surveys were first published: left out of the digest while unset, so it does not change."""
_KNOWN_KEYS = sorted(
    {
        name
        for model in (SurveySpec, QuestionSpec, ChoiceSpec, RegionSpec, EligibilitySpec)
        for name in model.model_fields
    }
    | {"text", "accept", "decline", "amount", "currency", "budget"}
)


@dataclass(frozen=True, order=True)
class Problem:
    line: int
    message: str


class SurveyError(ValueError):
    """A survey file that cannot be used; `problems` lists every reason with its line."""

    def __init__(self, name: str, problems: list[Problem]):
        self.name = name
        self.problems = problems
        super().__init__("\n".join(f"{name}:{p.line}: {p.message}" for p in problems))


@dataclass(frozen=True)
class Review:
    """A survey source checked: its definition when valid, its problems, and warnings that do not stop it."""

    definition: Definition | None
    problems: list[Problem]
    warnings: list[Problem]
    lines: dict[str, int]
    """The line of each question (by id) and of each overridden message ('messages.<name>')."""


def check_text(text: str) -> list[Problem]:
    """Every problem in a survey's YAML source, sorted by line; empty when the survey is valid."""
    return _compile(text)[1]


def check_source(text: str) -> tuple[Definition | None, list[Problem]]:
    """The survey in a YAML source and its problems: (definition, []) when valid, (None, problems) otherwise."""
    return _compile(text)


def review_text(text: str) -> Review:
    """The problems of a survey's source and, when it is valid, what its author should know (collisions)."""
    definition, problems, warnings, lines = _review(text)
    return Review(definition, problems, warnings, lines)


def load_text(text: str, name: str = "<survey>") -> Definition:
    definition, problems = _compile(text)
    if problems or definition is None:
        raise SurveyError(name, problems)
    return definition


def load_file(path: str | Path) -> Definition:
    path = Path(path)
    return load_text(path.read_text(encoding="utf-8"), str(path))


def bundled_files() -> list[Path]:
    return sorted(BUNDLED_DIR.glob("*.yaml"))


def _compile(text: str) -> tuple[Definition | None, list[Problem]]:
    definition, problems, _, _ = _review(text, warnings=False)
    return definition, problems


def _review(
    text: str, warnings: bool = True
) -> tuple[Definition | None, list[Problem], list[Problem], dict[str, int]]:
    data, problems = _parse_yaml(text)
    if problems:
        return None, problems, [], {}
    if not isinstance(data, CommentedMap):
        return None, [Problem(1, "a survey must be a mapping of keys such as id, version, questions")], [], {}
    try:
        spec = SurveySpec.model_validate(_plain(data))
    except ValidationError as error:
        return None, sorted(set(_schema_problems(error, data))), [], {}
    checker = _Checker(spec, data)
    problems = sorted(set(checker.problems()))
    if problems:
        return None, problems, [], {}
    if not warnings:
        return _build(spec), [], [], {}
    lines = {CONSENT_ID: line_of(data, ("consent",))}
    lines |= {q.id: line_of(data, ("questions", i)) for i, q in enumerate(spec.questions)}
    lines |= {f"messages.{key}": line_of(data, ("messages", key)) for key in spec.messages}
    if spec.segment_budget is not None:
        lines["segment_budget"] = line_of(data, ("segment_budget",))
    return _build(spec), [], sorted(set(checker.warnings())), lines


_CREDIT_PARTS = frozenset({"amount", "currency"})
"""Older overrides write the credit as {amount} {currency}: still filled wherever {credit} is."""


def _message_placeholders(key: str) -> frozenset[str]:
    """The placeholders a built-in message fills: those its own texts use ({credit} also as {amount} {currency})."""
    found = {name for text in builtin.DEFAULT_MESSAGES[key].values() for name in _PLACEHOLDER.findall(text)}
    return frozenset(found | (_CREDIT_PARTS if "credit" in found else set()))


def _parse_yaml(text: str) -> tuple[Any, list[Problem]]:
    try:
        return yamlsource.load(text), []
    except yamlsource.YamlProblem as problem:
        return None, [Problem(problem.line, problem.message)]


def _plain(node: Any) -> Any:
    """ruamel's commented containers as plain dicts and lists, for pydantic."""
    if isinstance(node, dict):
        return {str(k) if not isinstance(k, str) else k: _plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_plain(v) for v in node]
    return node


def line_of(data: Any, path: Iterable[Any]) -> int:
    """The 1-based line of the deepest node of `path` found in the YAML tree."""
    line = 1
    node = data
    for key in path:
        if isinstance(node, CommentedMap) and key in node:
            line = node.lc.key(key)[0] + 1
            node = node[key]
        elif isinstance(node, CommentedSeq) and isinstance(key, int) and 0 <= key < len(node):
            line = node.lc.item(key)[0] + 1
            node = node[key]
        else:
            break
    return line


def _schema_problems(error: ValidationError, data: Any) -> Iterator[Problem]:
    for item in error.errors():
        loc = tuple(k for k in item["loc"] if k != "[key]")
        where = _describe(loc, data)
        kind = item["type"]
        if kind == "extra_forbidden":
            key = str(loc[-1])
            hint = difflib.get_close_matches(key, _KNOWN_KEYS, n=1)
            suffix = f" (did you mean '{hint[0]}'?)" if hint else ""
            yield Problem(line_of(data, loc), f"{_prefix(where[:-1])}unknown key '{key}'{suffix}")
        elif kind == "missing":
            yield Problem(line_of(data, loc[:-1]), f"{_prefix(where[:-1])}'{loc[-1]}' is missing")
        elif kind == "string_type" and item.get("input") is None:
            yield Problem(
                line_of(data, loc),
                f"{'.'.join(where)}: empty text (a text with a comma or colon inside {{...}} needs quotes)",
            )
        else:
            yield Problem(line_of(data, loc), f"{'.'.join(where)}: {item['msg'][0].lower()}{item['msg'][1:]}")


def _describe(loc: tuple[Any, ...], data: Any) -> list[str]:
    """A readable path: question 'income' > choices[2] > value."""
    parts: list[str] = []
    node = data
    for key in loc:
        if isinstance(key, int):
            label = f"[{key + 1}]"
            if isinstance(node, CommentedSeq) and 0 <= key < len(node):
                node = node[key]
                if isinstance(node, CommentedMap) and "id" in node:
                    label = f" '{node['id']}'"
                elif isinstance(node, CommentedMap) and "value" in node:
                    label = f" '{node['value']}'"
            parts[-1] = parts[-1] + label if parts else label
        else:
            parts.append({"questions": "question", "choices": "choice"}.get(str(key), str(key)))
            node = node.get(key) if isinstance(node, CommentedMap) else None
    return parts


def _prefix(parts: list[str]) -> str:
    return f"{'.'.join(parts)}: " if parts else ""


class _Checker:
    """The meaning checks that the schema cannot express, each problem with its line."""

    def __init__(self, spec: SurveySpec, data: CommentedMap):
        self.spec = spec
        self.data = data
        self.languages = list(dict.fromkeys(spec.languages))

    def problems(self) -> Iterator[Problem]:
        yield from self._languages()
        yield from self._translated(self.spec.title, ("title",), "title")
        yield from self._translated(self.spec.consent.text, ("consent", "text"), "consent text")
        for key in ("accept", "decline"):
            labels = getattr(self.spec.consent, key)
            if labels:
                yield from self._translated(labels, ("consent", key), f"consent {key} label")
        yield from self._messages()
        yield from self._keywords()
        yield from self._disclosure()
        yield from self._questions()
        if self.spec.contact:
            yield from self._translated(self.spec.contact, ("contact",), "contact")
        yield from self._consent_placeholders()
        yield from self._eligibility()

    def warnings(self) -> Iterator[Problem]:
        """Things that work, but maybe not as the author expects: labels that are also skip words or keywords."""
        for i, question in enumerate(self.spec.questions):
            yield from _QuestionChecker(self, question, ("questions", i), {}).collisions()

    def at(self, *path: Any) -> int:
        return line_of(self.data, path)

    def _languages(self) -> Iterator[Problem]:
        if len(self.languages) != len(self.spec.languages):
            yield Problem(self.at("languages"), "languages: a language is listed twice")
        if self.spec.default_language not in self.languages:
            yield Problem(
                self.at("default_language"),
                f"default_language '{self.spec.default_language}' is not one of languages {self.languages}",
            )
        for lang in self.spec.skip_words:
            if lang not in self.languages:
                yield Problem(self.at("skip_words", lang), f"skip_words: '{lang}' is not one of languages")

    def _translated(self, texts: dict[str, str], path: tuple[Any, ...], what: str) -> Iterator[Problem]:
        for lang in self.languages:
            if not (texts.get(lang) or "").strip():
                yield Problem(self.at(*path), f"{what}: missing the '{lang}' translation")
        for lang in texts:
            if lang not in self.languages:
                yield Problem(self.at(*path, lang), f"{what}: '{lang}' is not one of languages {self.languages}")

    def _messages(self) -> Iterator[Problem]:
        for key, texts in self.spec.messages.items():
            if key not in builtin.DEFAULT_MESSAGES:
                hint = difflib.get_close_matches(key, builtin.DEFAULT_MESSAGES, n=1)
                suffix = f" (did you mean '{hint[0]}'?)" if hint else ""
                yield Problem(self.at("messages", key), f"messages: unknown message '{key}'{suffix}")
                continue
            known = _message_placeholders(key)
            for lang, text in texts.items():
                if lang not in self.languages:
                    yield Problem(self.at("messages", key, lang), f"messages.{key}: '{lang}' is not one of languages")
                    continue
                try:
                    names = [name for _, name, _, _ in string.Formatter().parse(text) if name is not None]
                except ValueError:
                    yield Problem(self.at("messages", key, lang),
                                  f"messages.{key}.{lang}: a lone {{ or }} (write {{{{ or }}}} for the character)")
                    continue
                for name in dict.fromkeys(names):
                    if name not in known:
                        allowed = ", ".join(f"{{{k}}}" for k in sorted(known)) or "none"
                        yield Problem(self.at("messages", key, lang),
                                      f"messages.{key}.{lang}: unknown {{{name}}} (this message can say {allowed})")
        for lang in self.languages:
            missing = [
                key
                for key, texts in builtin.DEFAULT_MESSAGES.items()
                if lang not in texts and lang not in self.spec.messages.get(key, {})
            ]
            if missing:
                yield Problem(
                    self.at("languages"),
                    f"language '{lang}' has no built-in messages: add messages.<name>.{lang} for {', '.join(missing)}",
                )

    def _disclosure(self) -> Iterator[Problem]:
        """Settings that protect respondents in published gap figures (see docs/disclosure.md)."""
        if self.spec.min_cell < LOWEST_MIN_CELL:
            yield Problem(self.at("min_cell"), f"min_cell: {self.spec.min_cell} is below {LOWEST_MIN_CELL}: "
                                               f"so small a cell can single people out; use {LOWEST_MIN_CELL} or more "
                                               "(10 by default)")
        seconds = release_seconds(self.spec.release_interval)
        if seconds is None:
            yield Problem(self.at("release_interval"), f"release_interval: {self.spec.release_interval!r} is not a "
                                                       "duration: write a number and a unit, like 1d, 12h or 90m")
        elif seconds < SHORTEST_RELEASE:
            yield Problem(self.at("release_interval"), f"release_interval: {self.spec.release_interval} is shorter "
                                                       "than 1h: each release is one more moment to compare; use 1h "
                                                       "or more (1d by default)")

    def _keywords(self) -> Iterator[Problem]:
        for i, keyword in enumerate(self.spec.start_keywords):
            if normalize(keyword) in builtin.ALL_KEYWORDS:
                yield Problem(
                    self.at("start_keywords", i), f"start keyword '{keyword}' is already a built-in keyword"
                )

    def _consent_placeholders(self) -> Iterator[Problem]:
        for lang, text in self.spec.consent.text.items():
            for name in _PLACEHOLDER.findall(text):
                if name not in CONSENT_PLACEHOLDERS:
                    known = ", ".join(f"{{{n}}}" for n in CONSENT_PLACEHOLDERS)
                    yield Problem(self.at("consent", "text", lang), f"consent text: unknown {{{name}}} (known: {known})")
                elif name == "credit" and self.spec.incentive is None:
                    yield Problem(self.at("consent", "text", lang), "consent text: {credit} needs an incentive")

    def _eligibility(self) -> Iterator[Problem]:
        rule = self.spec.eligibility
        if rule is None:
            return
        line = self.at("eligibility", "question")
        index = _index_of(self.spec, rule.question)
        if index is None:
            hint = difflib.get_close_matches(rule.question, [q.id for q in self.spec.questions], n=1)
            suffix = f" (did you mean '{hint[0]}'?)" if hint else ""
            yield Problem(line, f"eligibility: '{rule.question}' is not a question{suffix}")
            return
        question = self.spec.questions[index]
        if question.when is not None:
            yield Problem(line, f"eligibility: question '{question.id}' must be asked of everyone (it has a when)")
        if not question.required:
            yield Problem(line, f"eligibility: question '{question.id}' must be required (a minor could skip it)")
        if question.type in ("integer", "decimal"):
            return
        if question.type != "choice":
            yield Problem(line, f"eligibility: question '{question.id}' must be an integer, or a choice with ranges")
            return
        for i, choice in enumerate(question.choices):
            where = self.at("questions", index, "choices", i)
            if choice.range is None:
                yield Problem(where, f"eligibility: choice '{choice.value}' of '{question.id}' needs a range of ages")
            elif choice.range[0] < rule.min_age <= choice.range[1]:
                yield Problem(
                    where,
                    f"eligibility: choice '{choice.value}' mixes ages under and over {rule.min_age}; split it",
                )
        if not any(c.range and c.range[1] < rule.min_age for c in question.choices):
            yield Problem(
                line,
                f"eligibility: question '{question.id}' needs a choice for ages under {rule.min_age} "
                f"(e.g. range: [0, {rule.min_age - 1}]) so that a minor can answer",
            )

    def _questions(self) -> Iterator[Problem]:
        seen: dict[str, int] = {}
        regions = []
        for i, question in enumerate(self.spec.questions):
            path = ("questions", i)
            if question.id in seen or question.id == CONSENT_ID:
                yield Problem(self.at(*path, "id"), f"question id '{question.id}' is used twice")
            elif not question.id.isidentifier() or not question.id.isascii() or question.id != question.id.lower():
                yield Problem(
                    self.at(*path, "id"),
                    f"question id '{question.id}' must be lowercase letters, digits and _ (like monthly_income)",
                )
            seen.setdefault(question.id, i)
            if question.type == "region":
                regions.append(i)
            yield from _QuestionChecker(self, question, path, seen).problems()
        if not regions:
            yield Problem(self.at("questions"), "the survey needs one question of type region to feed the maps")
        for i in regions[1:]:
            yield Problem(self.at("questions", i, "type"), "only one question of type region is allowed")


class _QuestionChecker:
    def __init__(self, checker: _Checker, question: QuestionSpec, path: tuple[Any, ...], seen: dict[str, int]):
        self.c = checker
        self.q = question
        self.path = path
        self.seen = seen
        self.name = f"question '{question.id}'"

    def at(self, *keys: Any) -> int:
        return self.c.at(*self.path, *keys)

    def values(self) -> list[str] | None:
        if self.q.type == "yes_no":
            return ["yes", "no"]
        if self.q.type in CHOICE_TYPES:
            return [c.value for c in self.q.choices]
        if self.q.type == "region":
            return [r.code for r in _regions(self.q)] if _region_set_known(self.q) else None
        return None

    def problems(self) -> Iterator[Problem]:
        yield from self.c._translated(self.q.text, (*self.path, "text"), f"{self.name} text")
        if self.q.error:
            yield from self.c._translated(self.q.error, (*self.path, "error"), f"{self.name} error")
        if self.q.hint:
            yield from self.c._translated(self.q.hint, (*self.path, "hint"), f"{self.name} hint")
        yield from self._audio()
        if self.q.voice is False and (self.q.type != "text" or self.q.required):
            yield Problem(self.at("voice"), f"{self.name}: voice: false is for optional text questions (type: text, "
                                            "required: false), which a call passes over")
        yield from self._choices()
        yield from self._meanings()
        yield from self._limits()
        yield from self._regions()
        yield from self._analytics()
        yield from self._when()

    def _audio(self) -> Iterator[Problem]:
        """Recordings are optional per language (a language without one is said by the voice); each is https."""
        for lang, url in self.q.audio.items():
            if lang not in self.c.languages:
                yield Problem(self.at("audio", lang),
                              f"{self.name} audio: '{lang}' is not one of languages {self.c.languages}")
            elif not re.fullmatch(r"https://[^\s<>\"']+", url):
                yield Problem(self.at("audio", lang), f"{self.name} audio: the '{lang}' recording must be an "
                                                      "https:// URL that Twilio can fetch")

    def _choices(self) -> Iterator[Problem]:
        q = self.q
        if q.type in ("choice", "multi"):
            if len(q.choices) < 2:
                yield Problem(self.at("type"), f"{self.name}: a {q.type} question needs at least 2 choices")
        elif q.choices:
            yield Problem(self.at("choices"), f"{self.name}: choices only belong to choice and multi questions")
            return
        values: dict[str, int] = {}
        labels: dict[tuple[str, str], str] = {}
        for i, choice in enumerate(q.choices):
            where = ("choices", i)
            if choice.value in values:
                yield Problem(self.at(*where, "value"), f"{self.name}: choice value '{choice.value}' is used twice")
            values.setdefault(choice.value, i)
            data = f"{q.id}={choice.value}"
            if len(data.encode()) > MAX_CALLBACK_BYTES:
                yield Problem(
                    self.at(*where, "value"),
                    f"{self.name}: id and choice value '{choice.value}' are too long for a Telegram button "
                    f"(at most {MAX_CALLBACK_BYTES} bytes together)",
                )
            yield from self.c._translated(choice.label, (*self.path, *where, "label"), f"{self.name} choice '{choice.value}' label")
            for lang in self.c.languages:
                label = normalize(choice.label.get(lang, ""))
                if (lang, label) in labels and label:
                    yield Problem(
                        self.at(*where, "label"),
                        f"{self.name}: choices '{labels[(lang, label)]}' and '{choice.value}' have the same {lang} label",
                    )
                labels.setdefault((lang, label), choice.value)
            for lang in choice.synonyms:
                if lang not in self.c.languages:
                    yield Problem(self.at(*where, "synonyms", lang), f"{self.name}: synonyms in '{lang}', which is not one of languages")
            for line, kind, phrase in self._phrases(i, choice):
                if normalize(phrase) in builtin.OPT_OUT_KEYWORDS:
                    yield Problem(
                        line,
                        f"{self.name}: {kind} '{phrase}' is an opt-out keyword; STOP always works, so this reply "
                        "would never reach the question (reword it)",
                    )
            if choice.range is not None:
                if q.type != "choice":
                    yield Problem(self.at(*where, "range"), f"{self.name}: range only belongs to choice questions")
                elif choice.range[0] > choice.range[1]:
                    yield Problem(self.at(*where, "range"), f"{self.name}: range of '{choice.value}' goes from high to low")
            if choice.exclusive and q.type != "multi":
                yield Problem(self.at(*where, "exclusive"), f"{self.name}: exclusive only belongs to multi questions")

    def _phrases(self, i: int, choice: ChoiceSpec) -> Iterator[tuple[int, str, str]]:
        """(line, 'label' or 'synonym', text) for every way the author names a choice."""
        where = (*self.path, "choices", i)
        for lang, label in choice.label.items():
            yield self.c.at(*where, "label", lang), "label", label
        for lang, synonyms in choice.synonyms.items():
            for synonym in synonyms:
                yield self.c.at(*where, "synonyms", lang), "synonym", synonym

    def _meanings(self) -> Iterator[Problem]:
        meant = [(i, c) for i, c in enumerate(self.q.choices) if c.means is not None]
        if meant and self.q.type != "choice":
            yield Problem(self.at("choices", meant[0][0], "means"), f"{self.name}: means only belongs to choice questions")
            return
        unknown = [i for i, c in meant if c.means == "dont_know"]
        for i in unknown[1:]:
            yield Problem(self.at("choices", i, "means"), f"{self.name}: only one choice can mean dont_know")

    def collisions(self) -> Iterator[Problem]:
        """Labels and synonyms that are also a skip word, a keyword or another choice's name, with their lines."""
        if self.q.type not in ("choice", "multi"):
            return
        skip_words = {normalize(w): w for lang in self.c.languages
                      for w in (*builtin.SKIP_WORDS.get(lang, ()), *self.c.spec.skip_words.get(lang, ()))}
        keywords = {normalize(k): k for k in builtin.ALL_KEYWORDS - builtin.OPT_OUT_KEYWORDS}
        named: dict[str, set[str]] = {}
        for i, choice in enumerate(self.q.choices):
            for _, _, phrase in self._phrases(i, choice):
                named.setdefault(normalize(phrase), set()).add(choice.value)
        for i, choice in enumerate(self.q.choices):
            for line, kind, phrase in self._phrases(i, choice):
                said = normalize(phrase)
                words = f" {said} "
                if not self.q.required:
                    for word in (w for w in skip_words if f" {w} " in words):
                        yield Problem(
                            line,
                            f"warning: {self.name}: {kind} '{phrase}' contains the skip word '{skip_words[word]}': "
                            f"here that reply picks '{choice.value}' instead of skipping",
                        )
                for word in (k for k in keywords if f" {k} " in words):
                    yield Problem(
                        line,
                        f"warning: {self.name}: {kind} '{phrase}' contains the keyword '{keywords[word].upper()}': "
                        f"here that reply picks '{choice.value}' instead of acting as the keyword",
                    )
                others = sorted(named.get(said, set()) - {choice.value})
                if others:
                    yield Problem(
                        line,
                        f"warning: {self.name}: {kind} '{phrase}' also names choice '{others[0]}': "
                        "that reply is always asked again",
                    )

    def _limits(self) -> Iterator[Problem]:
        q = self.q
        for key in ("min", "max"):
            if getattr(q, key) is not None and q.type not in ("integer", "decimal"):
                yield Problem(self.at(key), f"{self.name}: {key} only belongs to integer and decimal questions")
        if q.min is not None and q.max is not None and q.min > q.max:
            yield Problem(self.at("min"), f"{self.name}: min {q.min:g} is greater than max {q.max:g}")
        if q.max_length is not None and q.type != "text":
            yield Problem(self.at("max_length"), f"{self.name}: max_length only belongs to text questions")

    def _regions(self) -> Iterator[Problem]:
        q = self.q
        if q.regions is None:
            return
        if q.type != "region":
            yield Problem(self.at("regions"), f"{self.name}: regions only belong to region questions")
        elif isinstance(q.regions, str) and q.regions not in REGION_SETS:
            yield Problem(
                self.at("regions"),
                f"{self.name}: unknown region set '{q.regions}' (known: {', '.join(sorted(REGION_SETS))})",
            )
        elif isinstance(q.regions, list):
            codes: set[str] = set()
            for i, region in enumerate(q.regions):
                if region.code in codes:
                    yield Problem(self.at("regions", i, "code"), f"{self.name}: region code '{region.code}' is used twice")
                codes.add(region.code)

    def _analytics(self) -> Iterator[Problem]:
        q = self.q
        if q.gap is not None and q.dimension is None:
            yield Problem(self.at("gap"), f"{self.name}: gap needs a dimension (economic, social or psychosocial)")
        if q.dimension is not None and q.gap is None:
            yield Problem(self.at("dimension"), f"{self.name}: dimension needs gap: the values that mean an unmet need")
        if q.gap is not None:
            if q.type not in CHOICE_TYPES:
                yield Problem(self.at("gap"), f"{self.name}: gap works on choice, multi and yes_no questions")
            else:
                allowed = self.values() or []
                for value in q.gap:
                    if value not in allowed:
                        yield Problem(self.at("gap"), f"{self.name}: gap value '{value}' is not a choice ({', '.join(dict.fromkeys(allowed))})")
        if q.group and q.type not in ("choice", "yes_no"):
            yield Problem(self.at("group"), f"{self.name}: group works on choice and yes_no questions")

    def _when(self) -> Iterator[Problem]:
        if self.q.when is None:
            return
        line = self.at("when")
        try:
            expression = compile_expression(self.q.when)
        except ExpressionError as error:
            yield Problem(line, f"{self.name}: when: {error}")
            return
        order = self.seen
        current = order[self.q.id] if self.q.id in order else len(order)
        for name in sorted(expression.names):
            if name == CONSENT_ID:
                continue
            index = _index_of(self.c.spec, name)
            if index is None:
                hint = difflib.get_close_matches(name, [q.id for q in self.c.spec.questions], n=1)
                suffix = f" (did you mean '{hint[0]}'?)" if hint else ""
                yield Problem(line, f"{self.name}: when names '{name}', which is not a question{suffix}")
            elif index >= current:
                yield Problem(line, f"{self.name}: when names '{name}', which is asked later, so it has no answer yet")
        for name, literal in expression.comparisons:
            index = _index_of(self.c.spec, name)
            if index is None or index >= current:
                continue
            allowed = _QuestionChecker(self.c, self.c.spec.questions[index], (), {}).values()
            if allowed is not None and str(literal) not in allowed:
                yield Problem(
                    line,
                    f"{self.name}: when compares '{name}' with '{literal}', which is not one of its values "
                    f"({', '.join(allowed)})",
                )


def release_seconds(text: str) -> int | None:
    """Seconds in a release interval such as '1d', '12h' or '90m'; None when it is not one."""
    match = _INTERVAL.match(str(text))
    return int(match[1]) * _INTERVAL_UNITS[match[2]] if match else None


def _index_of(spec: SurveySpec, question_id: str) -> int | None:
    return next((i for i, q in enumerate(spec.questions) if q.id == question_id), None)


def _region_set_known(q: QuestionSpec) -> bool:
    return not isinstance(q.regions, str) or q.regions in REGION_SETS


def _regions(q: QuestionSpec) -> tuple[Region, ...]:
    if isinstance(q.regions, list):
        return tuple(Region(r.code, r.name, tuple(r.abbreviations), tuple(r.synonyms)) for r in q.regions)
    return REGION_SETS[q.regions or "mx-states"]


def _build(spec: SurveySpec) -> Definition:
    messages = {key: dict(texts) for key, texts in builtin.DEFAULT_MESSAGES.items()}
    for key, texts in spec.messages.items():
        messages[key].update(texts)
    skip_words = {
        lang: tuple(dict.fromkeys((*builtin.SKIP_WORDS.get(lang, ()), *spec.skip_words.get(lang, ()))))
        for lang in spec.languages
    }
    incentive = Incentive(spec.incentive.amount, spec.incentive.currency, spec.incentive.budget) if spec.incentive else None
    eligibility = Eligibility(spec.eligibility.question, spec.eligibility.min_age) if spec.eligibility else None
    questions = tuple(_question(q, spec.languages) for q in spec.questions)
    consent = Question(
        id=CONSENT_ID,
        type="yes_no",
        text=dict(spec.consent.text),
        choices=(
            Choice("yes", _labels(spec.consent.accept, builtin.CONSENT_LABELS["yes"], spec.languages),
                   synonyms=builtin.CONSENT_SYNONYMS["yes"], means="yes"),
            Choice("no", _labels(spec.consent.decline, builtin.CONSENT_LABELS["no"], spec.languages),
                   synonyms=builtin.CONSENT_SYNONYMS["no"], means="no"),
        ),
    )
    counts = question_range((consent, *questions), eligibility)
    consent = replace(consent, text={
        lang: _fill_consent(text, lang, counts, incentive) for lang, text in consent.text.items()
    })
    return Definition(
        id=spec.id,
        version=spec.version,
        title=dict(spec.title),
        languages=tuple(dict.fromkeys(spec.languages)),
        default_language=spec.default_language,
        questions=(consent, *questions),
        start_keywords=tuple(k.upper() for k in spec.start_keywords),
        incentive=incentive,
        min_cell=spec.min_cell,
        release_interval=release_seconds(spec.release_interval) or 86400,
        weights={d: float(spec.weights.get(d, 1.0)) for d in ("economic", "social", "psychosocial")},
        messages=messages,
        skip_words=skip_words,
        max_reprompts=spec.max_reprompts,
        segment_budget=spec.segment_budget,
        resume_after_minutes=spec.resume_after_minutes,
        digest=hashlib.sha256(json.dumps(_dumped(spec), sort_keys=True).encode()).hexdigest(),
        contact=dict(spec.contact),
        eligibility=eligibility,
        question_range=counts,
    )


_RANGE_WORDS = {"es": "{low} a {high}", "en": "{low} to {high}"}


def _fill_consent(text: str, language: str, counts: tuple[int, int], incentive: Incentive | None) -> str:
    """The consent text with {questions} ('18 a 21', or '21') and {credit} ('30 MXN') written in."""
    low, high = counts
    number = str(low) if low == high else _RANGE_WORDS.get(language, "{low}-{high}").format(low=low, high=high)
    text = text.replace("{questions}", number)
    return text.replace("{credit}", incentive.credit) if incentive else text


def _dumped(spec: SurveySpec) -> Any:
    """The spec as plain data for the digest, without keys added later while they are unset."""

    def prune(node: Any) -> Any:
        if isinstance(node, dict):
            return {k: prune(v) for k, v in node.items() if not (k in _ADDED_LATER and v in (None, {}))}
        if isinstance(node, list):
            return [prune(v) for v in node]
        return node

    return prune(spec.model_dump(mode="json"))


def _meanings(q: QuestionSpec) -> list[str | None]:
    """Each choice's `means`: as written, or inferred for two choices whose labels start with Sí/Yes and No."""
    choices = q.choices
    written = [c.means for c in choices]
    if any(written) or len(choices) != 2 or q.type != "choice":
        return written
    inferred = [_leading_polarity(c.label) for c in choices]
    return inferred if sorted(m or "" for m in inferred) == ["no", "yes"] else written


def _leading_polarity(label: dict[str, str]) -> str | None:
    """'yes' when every label starts with Sí/Si/Yes, 'no' when every one starts with No; else None."""
    firsts = {(normalize(text).split(" ") or [""])[0] for text in label.values()}
    if firsts and firsts <= {"si", "yes"}:
        return "yes"
    return "no" if firsts == {"no"} else None


def _labels(given: dict[str, str], defaults: dict[str, str], languages: list[str]) -> dict[str, str]:
    return {lang: given.get(lang) or defaults.get(lang) or defaults["en"] for lang in languages}


def _question(q: QuestionSpec, languages: list[str]) -> Question:
    if q.type == "yes_no":
        choices = tuple(Choice(v, _labels({}, builtin.YES_NO_LABELS[v], languages), means=v) for v in ("yes", "no"))
    else:
        choices = tuple(
            Choice(
                value=c.value,
                label=dict(c.label),
                synonyms={lang: tuple(words) for lang, words in c.synonyms.items()},
                means=means,
                range=c.range,
                exclusive=c.exclusive,
            )
            for c, means in zip(q.choices, _meanings(q), strict=True)
        )
    return Question(
        id=q.id,
        type=q.type,
        text=dict(q.text),
        required=q.required,
        choices=choices,
        min=q.min,
        max=q.max,
        max_length=q.max_length,
        when=q.when,
        condition=compile_expression(q.when) if q.when else None,
        dimension=q.dimension,
        gap=tuple(q.gap) if q.gap is not None else None,
        group=q.group,
        errors=dict(q.error),
        hint=dict(q.hint),
        regions=_regions(q) if q.type == "region" else (),
        audio=dict(q.audio),
        by_voice=q.voice is not False,
    )
