"""Answer parsers: one small function per question type turns a messy SMS/Telegram reply into a value.

Every parser has the signature `parse_<type>(question, text, language, today=None) -> Outcome` and never
raises: unusable input gives `Rejected(reason, detail)`, which the engine turns into a re-prompt. Replies are
matched against labels and synonyms in all of the question's languages, whatever `language` the respondent
chose, because respondents mix them.
"""

from __future__ import annotations

import math
import re
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from difflib import SequenceMatcher, get_close_matches
from functools import lru_cache
from typing import Any

from surveys.definition import Choice, Question, Region
from surveys.memo import IdentityMemo
from surveys.regions import MEXICO_STATES
from surveys.text import SHORT, contains_phrase, normalize, squeeze, words

# ----- Outcomes -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Accepted:
    """The answer is understood; `value` is what gets stored."""

    value: Any


@dataclass(frozen=True)
class Rejected:
    """The answer cannot be used; `reason` is one of REASONS and `detail` fills the message."""

    reason: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Unsure:
    """A likely match that the respondent must confirm ("Did you mean {label}?")."""

    value: Any
    label: str


Outcome = Accepted | Rejected | Unsure

REASONS = (
    "empty",
    "unsure",
    "not_understood",
    "ambiguous",
    "not_a_number",
    "too_small",
    "too_large",
    "too_long",
    "not_a_date",
    "unknown_region",
    "exclusive",
)

MAX_INPUT = 1000  # characters; longer replies to closed questions are rejected, not parsed
FUZZY_CUTOFF = 0.8  # difflib ratio a typo must reach
FUZZY_MARGIN = 0.1  # how much better the best candidate must be than the runner-up
_MAX_FUZZY_WORDS = 30

# ----- Cleaning -------------------------------------------------------------------------------------------


_BREAKS = re.compile("[\t-\r\x1c-\x1f\x85\u2028\u2029]")
_INVISIBLE = re.compile(
    "[\x00-\x08\x0e-\x1b\x7f-\x84\x86-\x9f\u00ad\u200b\u200c\u200e\u200f\u202a-\u202e"
    "\u2060-\u2064\ufeff\ud800-\udfff]"
)


def _clean(text: object) -> str:
    """The reply with line breaks and tabs as spaces, without other control, invisible or surrogate characters."""
    if not isinstance(text, str):
        return ""
    return _INVISIBLE.sub("", _BREAKS.sub(" ", text)).strip()


def _prepare(text: object, failure: str) -> tuple[str, Rejected | None]:
    """Cleaned reply, or the rejection for an empty or oversized one."""
    if isinstance(text, str) and len(text) > MAX_INPUT * 4:
        return "", Rejected(failure, {"max_length": MAX_INPUT})
    cleaned = _clean(text)
    if not cleaned:
        return "", Rejected("empty")
    if len(cleaned) > MAX_INPUT:
        return "", Rejected(failure, {"max_length": MAX_INPUT})
    return cleaned, None


def _ratio(a: str, b: str, floor: float = FUZZY_CUTOFF - FUZZY_MARGIN) -> float:
    """difflib's similarity of two strings, or 0.0 when it cannot reach `floor` (cheap length check first)."""
    if 2 * min(len(a), len(b)) < floor * (len(a) + len(b)):
        return 0.0
    matcher = SequenceMatcher(None, a, b)
    return matcher.ratio() if matcher.quick_ratio() >= floor else 0.0


# ----- Numbers --------------------------------------------------------------------------------------------

_SMALL = {
    # Spanish
    "cero": 0, "un": 1, "uno": 1, "una": 1, "dos": 2, "tres": 3, "cuatro": 4, "cinco": 5, "sinco": 5,
    "seis": 6, "siete": 7, "ocho": 8, "nueve": 9, "diez": 10, "dies": 10, "once": 11, "doce": 12,
    "trece": 13, "trese": 13, "catorce": 14, "catorse": 14, "quince": 15, "quinse": 15, "dieciseis": 16,
    "diecisiete": 17, "dieciocho": 18, "diecinueve": 19, "veinte": 20, "beinte": 20, "veintiuno": 21,
    "veintiun": 21, "veintiuna": 21, "veintidos": 22, "veintitres": 23, "veinticuatro": 24,
    "veinticinco": 25, "veintiseis": 26, "veintisiete": 27, "veintiocho": 28, "veintinueve": 29,
    "treinta": 30, "cuarenta": 40, "cincuenta": 50, "sincuenta": 50, "sesenta": 60, "setenta": 70,
    "ochenta": 80, "noventa": 90,
    # English
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19, "twenty": 20, "thirty": 30,
    "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80, "ninety": 90,
}  # fmt: skip
_HUNDREDS = {
    "cien": 100, "ciento": 100, "doscientos": 200, "doscientas": 200, "trescientos": 300,
    "trescientas": 300, "cuatrocientos": 400, "cuatrocientas": 400, "quinientos": 500, "quinientas": 500,
    "seiscientos": 600, "seiscientas": 600, "setecientos": 700, "setecientas": 700, "ochocientos": 800,
    "ochocientas": 800, "novecientos": 900, "novecientas": 900,
}  # fmt: skip
_THOUSANDS = {"mil": 1000, "thousand": 1000, "millon": 10**6, "millones": 10**6, "million": 10**6}
_ORDINALS = {
    "primero": 1, "primera": 1, "primer": 1, "segundo": 2, "segunda": 2, "tercero": 3, "tercera": 3,
    "tercer": 3, "cuarto": 4, "cuarta": 4, "quinto": 5, "quinta": 5, "sexto": 6, "sexta": 6,
    "septimo": 7, "septima": 7, "setimo": 7, "setima": 7, "octavo": 8, "octava": 8, "noveno": 9,
    "novena": 9, "decimo": 10, "decima": 10, "first": 1, "second": 2, "third": 3, "fourth": 4,
    "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8, "ninth": 9, "tenth": 10,
}  # fmt: skip
_WEAK = frozenset({"un", "una", "uno", "one"})  # also articles: count only when nothing stronger is said
_CONNECTORS = frozenset({"y", "and"})
_DIGITS = re.compile(r"[0-9]+(?:[.,][0-9]+)*")
_ORDINAL_DIGITS = re.compile(r"([0-9]{1,2})(?:st|nd|rd|th|ro|ra|er|do|da|to|ta|vo|va|no|na|mo|ma|o|a)")
_KILO = re.compile(r"([0-9]+)k")
_HALF = (("y", "medio"), ("y", "media"), ("and", "a", "half"))
_MAX_NUMBER = 1e15


@dataclass(frozen=True)
class _Number:
    """A number mentioned in a reply: its value and the token span [start, end)."""

    value: float
    start: int
    end: int
    weak: bool = False
    ordinal: bool = False


def _digits_value(token: str) -> float | None:
    """'1,500' and '1.500' -> 1500 (separator + exactly 3 digits = thousands), '3,5' -> 3.5, '1.200,50'."""
    if "." in token and "," in token:
        decimal = "." if token.rfind(".") > token.rfind(",") else ","
        whole, _, fraction = token.rpartition(decimal)
        thousands = "," if decimal == "." else "."
        if decimal in whole or not _valid_groups(whole, thousands):
            return None
        return float(whole.replace(thousands, "") + "." + fraction)
    separator = "." if "." in token else "," if "," in token else ""
    if not separator:
        return float(token)
    parts = token.split(separator)
    if len(parts) > 2 or (len(parts[1]) == 3 and parts[0] != "0"):
        return float("".join(parts)) if _valid_groups(token, separator) else None
    return float(parts[0] + "." + parts[1])


def _valid_groups(whole: str, separator: str) -> bool:
    """'1,200,000' has valid thousands groups, '1,20,00' does not."""
    parts = whole.split(separator)
    return 1 <= len(parts[0]) <= 3 and all(len(p) == 3 for p in parts[1:])


def _read_words(tokens: Sequence[str], i: int) -> tuple[int, int]:
    """Read number words from tokens[i]: ('treinta y dos' -> 32, 'dos mil veinticuatro' -> 2024); (value, end)."""
    if tokens[i] in ("cero", "zero"):
        return 0, i + 1
    total = current = 0
    j = end = i
    while j < len(tokens):
        word = tokens[j]
        if word in _CONNECTORS and j > i:
            j += 1
            continue
        if word in _SMALL and _SMALL[word] and _fits(current, _SMALL[word]):
            current += _SMALL[word]
        elif word in _HUNDREDS and current == 0:
            current = _HUNDREDS[word]
        elif word == "hundred" and current < 100:
            current = (current or 1) * 100
        elif word in _THOUSANDS and total % (_THOUSANDS[word] * 1000) == 0:
            total += (current or 1) * _THOUSANDS[word]
            current = 0
        else:
            break
        j = end = j + 1
    return total + current, end


def _fits(current: int, value: int) -> bool:
    """Whether a units/teens/tens word can extend the number read so far (hundreds, tens, units order)."""
    return current % 10 == 0 if value < 10 else current % 100 == 0


def _token_number(tokens: Sequence[str], i: int) -> _Number | None:
    """The number starting at tokens[i], if any."""
    token = tokens[i]
    if _DIGITS.fullmatch(token):
        value = _digits_value(token) if len(token) <= 40 else None
        if value is None:
            return None
        if i + 1 < len(tokens) and tokens[i + 1] in _THOUSANDS:
            return _Number(value * _THOUSANDS[tokens[i + 1]], i, i + 2)
        return _Number(value, i, i + 1)
    if m := _KILO.fullmatch(token):
        return _Number(float(m.group(1)) * 1000, i, i + 1)
    if m := _ORDINAL_DIGITS.fullmatch(token):
        return _Number(float(m.group(1)), i, i + 1, ordinal=True)
    if token in _ORDINALS:
        return _Number(float(_ORDINALS[token]), i, i + 1, ordinal=True)
    if token in _SMALL or token in _HUNDREDS or token in _THOUSANDS or token == "hundred":
        value, end = _read_words(tokens, i)
        if end > i:
            return _Number(float(value), i, end, weak=end == i + 1 and token in _WEAK)
    return None


def _numbers(tokens: Sequence[str], group_spaces: bool = False) -> list[_Number]:
    """Every number mentioned in normalized tokens, left to right ('1 200' is one number if group_spaces)."""
    found: list[_Number] = []
    i = 0
    while i < len(tokens):
        number = _token_number(tokens, i)
        if number is None:
            i += 1
            continue
        if group_spaces:
            number = _grouped(tokens, number)
        number = _with_half(tokens, number)
        found.append(number)
        i = number.end
    return found


def _grouped(tokens: Sequence[str], number: _Number) -> _Number:
    """'1 200 000' -> 1200000: a 1-3 digit number followed by groups of exactly three digits."""
    first = tokens[number.start]
    if number.end != number.start + 1 or not re.fullmatch(r"[0-9]{1,3}", first):
        return number
    end, digits = number.end, first
    while end < len(tokens) and re.fullmatch(r"[0-9]{3}", tokens[end]):
        digits += tokens[end]
        end += 1
    return _Number(float(digits), number.start, end) if end > number.end else number


def _with_half(tokens: Sequence[str], number: _Number) -> _Number:
    """'dos y medio' -> 2.5."""
    for half in _HALF:
        if tuple(tokens[number.end : number.end + len(half)]) == half:
            return _Number(number.value + 0.5, number.start, number.end + len(half))
    return number


def _plain(value: float | None) -> float | int | None:
    """2.0 -> 2 for messages; other values unchanged."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _in_range(question: Question, value: float) -> Outcome:
    """Accepted(value) within question.min..max, else too_small / too_large with both bounds."""
    detail = {"min": _plain(question.min), "max": _plain(question.max)}
    if question.min is not None and value < question.min:
        return Rejected("too_small", detail)
    if question.max is not None and value > question.max:
        return Rejected("too_large", detail)
    return Accepted(value)


_MINUS = re.compile(r"(?<![\w.,])[-\u2212](?=\s?[0-9])")


def _signed(tokens: Sequence[str], number: _Number) -> _Number:
    """'-5' (read as 'minus 5') -> -5."""
    if number.start > 0 and tokens[number.start - 1] == "minus" and number.value:
        return _Number(-number.value, number.start - 1, number.end, number.weak)
    return number


def _one_number(text: str, question: Question) -> float | Rejected:
    """The single number a reply states, or why there is none."""
    cleaned, error = _prepare(text, "not_a_number")
    if error:
        return error
    unsure = _doubtful(cleaned)
    if unsure:
        return unsure
    tokens = words(_MINUS.sub(" minus ", cleaned))
    mentions = [_signed(tokens, n) for n in _numbers(tokens, group_spaces=True) if not n.ordinal]
    strong = [n for n in mentions if not n.weak] or mentions
    values = sorted({n.value for n in strong})
    if not values:
        return Rejected("not_a_number")
    if len(values) > 1:
        return Rejected("ambiguous", {"values": [_plain(v) for v in values[:5]]})
    if not math.isfinite(values[0]) or values[0] >= _MAX_NUMBER:
        return Rejected("too_large", {"min": _plain(question.min), "max": _plain(question.max)})
    return values[0]


def parse_integer(question: Question, text: str, language: str, today: date | None = None) -> Outcome:
    """'25', '25 años', 'veinticinco', 'twenty five', '1,500' -> an int within question.min/max."""
    value = _one_number(text, question)
    if isinstance(value, Rejected):
        return value
    if not value.is_integer():
        return Rejected("not_a_number", {"decimal": True})
    return _in_range(question, int(value))


def parse_decimal(question: Question, text: str, language: str, today: date | None = None) -> Outcome:
    """'3.5', '3,5', '$1,200.50', '1.200,50', '1 200', 'mil' -> a float within question.min/max."""
    value = _one_number(text, question)
    if isinstance(value, Rejected):
        return value
    return _in_range(question, float(value))


# ----- Text -----------------------------------------------------------------------------------------------


def parse_text(question: Question, text: str, language: str, today: date | None = None) -> Outcome:
    """Free text, stripped and with whitespace collapsed; at most question.max_length characters."""
    cleaned = " ".join(_clean(text).split())
    if not cleaned:
        return Rejected("empty")
    if len(cleaned) <= SHORT and doubt(squeeze(words(cleaned)), asked="?" in cleaned) == "confused":
        return Rejected("unsure", {"doubt": "confused"})
    if question.max_length is not None and len(cleaned) > question.max_length:
        return Rejected("too_long", {"max_length": question.max_length, "length": len(cleaned)})
    return Accepted(cleaned)


# ----- Labels and synonyms in a reply ---------------------------------------------------------------------

_NUMBER_FILLER = frozenset(
    "opcion opciones option options opc op la el lo numero number num nro es mi respuesta answer my is "
    "the choice eleccion elijo escojo pick choose i creo que pues seria would be it s its de".split()
)
_UNITS = frozenset(
    "anos ano years year yrs yo pesos peso dolares dollars usd mxn meses mes months month dias dia "
    "days day semanas weeks horas hours veces times personas people hijos children kids".split()
)
_STOPWORDS = frozenset(
    "para como pero porque with from that this have tengo tiene estoy esta esto otra otro algo more".split()
)
_NEGATORS = frozenset(squeeze(
    "no nunca jamas tampoco ni not never nope nel nah t dont didnt doesnt cant isnt wasnt havent hasnt wont "
    "neither nor".split()
))
"""Words that turn the answer a few words after them around ('no tengo empleo', "I don't have a job")."""
_NEGATION_REACH = 3
_POLAR_CORE = frozenset({"si", "no", "yes"})
"""A label or synonym that is only one of these words answers through the reply's yes/no reading."""


@dataclass(frozen=True)
class _Phrase:
    """A phrase as normalized words naming option `target`."""

    words: tuple[str, ...]
    target: int
    exact_only: bool = False  # one-letter synonyms ('s', 'y', 'n'): the whole reply must be the phrase
    label: bool = False  # from a label: its words can be keywords
    breaks: frozenset[int] = frozenset()  # word positions where the phrase's own punctuation starts a clause


_CLAUSE = re.compile(r"(?<![0-9])[,;.!?¿¡:]+|[,;.!?¿¡:]+(?![0-9])")
"""Punctuation between clauses ('No, busco trabajo'), but not inside numbers ('3,5')."""


def _tokens(text: str) -> tuple[list[str], frozenset[int]]:
    """The reply's words and the word positions that begin a new clause after punctuation."""
    raw = words(text)
    if len(raw) < 2 or not _CLAUSE.search(text):
        return raw, frozenset()
    parts = [words(part) for part in _CLAUSE.split(text)]
    if [t for part in parts for t in part] != raw:
        return raw, frozenset()
    breaks, at = set(), 0
    for part in parts[:-1]:
        at += len(part)
        if 0 < at < len(raw):
            breaks.add(at)
    return raw, frozenset(breaks)


@lru_cache(maxsize=4096)
def _phrase(
    text: str, target: int, label: bool = False, exact_only: bool = False, squeezed: bool = True
) -> _Phrase | None:
    """The phrase for a label, synonym or value; None for blank or purely numeric text."""
    raw, breaks = _tokens(text)
    tokens = tuple(squeeze(raw) if squeezed else raw)
    if not tokens or all(t.isdigit() for t in tokens):
        return None  # bare numbers are option numbers, never labels
    exact_only = exact_only or (len(tokens) == 1 and len(tokens[0]) <= 1)
    return _Phrase(tokens, target, exact_only, label, breaks)


def _choice_phrases(
    choices: Sequence[Choice], extra: dict[int, Iterable[str]] | None = None
) -> list[_Phrase]:
    """Every way to name each choice: value, labels and synonyms in all languages, plus `extra`.

    A label or synonym that is only 'sí' or 'no' is left out: it answers through the reply's yes/no reading
    (`_meanings`), so that 'no' inside 'no entiendo' never picks it. Worked out once per question (definitions
    live as long as the process), keyed by identity.
    """
    owners, key = (choices, *extra.values()) if extra else (choices,), tuple(extra or ())
    cached = _PHRASES.get(owners, key)
    if cached is not None:
        return cached
    found: list[_Phrase | None] = []
    for i, choice in enumerate(choices):
        found.append(_phrase(choice.value, i))
        found += [_phrase(label, i, label=True) for label in choice.label.values()]
        found += [_phrase(s, i) for synonyms in choice.synonyms.values() for s in synonyms]
        found += [_phrase(s, i) for s in (extra or {}).get(i, ())]
    kept = (p for p in found if p is not None and not (len(p.words) == 1 and p.words[0] in _POLAR_CORE))
    return _PHRASES.put(owners, key, _Phrases(dict.fromkeys(kept)))


class _Phrases(list):
    """A phrase list kept and searched many times: with its phrases by first word, worked out once."""

    def __init__(self, phrases: Iterable[_Phrase]):
        super().__init__(phrases)
        self.by_first = _by_first_word(self)


_PHRASES: IdentityMemo[_Phrases] = IdentityMemo(4096)
"""Phrases of each question's choices (and extra synonyms)."""
_MEANINGS: IdentityMemo[dict[str, tuple[int, ...]]] = IdentityMemo(4096)
"""The choices each question's yes, no and "don't know" pick."""


def _meanings(choices: Sequence[Choice]) -> dict[str, tuple[int, ...]]:
    """The options a plain yes, no or "don't know" picks: `means`, or a label or synonym that is only sí / no, or
    that says "don't know" ('No sé', 'No lo sé')."""
    cached = _MEANINGS.get((choices,))
    if cached is not None:
        return cached
    found: dict[str, set[int]] = {"yes": set(), "no": set(), "dont_know": set()}
    for i, choice in enumerate(choices):
        if choice.means in found:
            found[choice.means].add(i)
        names = [choice.value, *choice.label.values(), *(s for group in choice.synonyms.values() for s in group)]
        for name in names:
            said = squeeze(words(name))
            if said in (["si"], ["yes"]):
                found["yes"].add(i)
            elif said == ["no"]:
                found["no"].add(i)
            elif tuple(said) in _dont_know_names():
                found["dont_know"].add(i)
    return _MEANINGS.put((choices,), None, {k: tuple(sorted(v)) for k, v in found.items()})


_Hit = tuple[int, int, _Phrase]  # (start, end, phrase): where a phrase occurs in a reply


def _hits(tokens: Sequence[str], phrases: Sequence[_Phrase], breaks: frozenset[int] = frozenset()) -> list[_Hit]:
    """Where each phrase occurs in the reply, as (start, end, phrase); never across the reply's punctuation
    unless the phrase has the same ('no, busco trabajo' is not 'No busco trabajo')."""
    by_first = phrases.by_first if isinstance(phrases, _Phrases) else _by_first_word(phrases)
    whole = tuple(tokens)
    found = []
    for i, token in enumerate(whole):
        for p in by_first.get(token, ()):
            n = len(p.words)
            if p.exact_only:
                if i == 0 and whole == p.words:
                    found.append((0, n, p))
            elif whole[i : i + n] == p.words:
                found.append((i, i + n, p))
    if breaks:
        found = [h for h in found if all(b - h[0] in h[2].breaks for b in breaks if h[0] < b < h[1])]
    return found


def _by_first_word(phrases: Iterable[_Phrase]) -> dict[str, list[_Phrase]]:
    by_first: dict[str, list[_Phrase]] = defaultdict(list)
    for p in phrases:
        by_first[p.words[0]].append(p)
    return dict(by_first)


def _select(hits: list[_Hit]) -> list[tuple[int, int, set[int]]]:
    """Non-overlapping phrase matches, longest first ('no, nunca' beats 'no'), as (start, end, targets).

    Phrases matching the very same words are grouped.
    """
    selected: list[tuple[int, int, set[int]]] = []
    for start, end, _ in sorted(hits, key=lambda h: (h[0] - h[1], h[0])):
        if any(start < e and s < end for s, e, _ in selected):
            continue
        selected.append((start, end, {h[2].target for h in hits if h[0] == start and h[1] == end}))
    return selected


def _resolve(selected: list[tuple[int, int, set[int]]]) -> int | Rejected:
    """The one option the selected matches name, or why there is not exactly one."""
    targets = {t for _, _, group in selected for t in group}
    if not targets:
        return Rejected("not_understood")
    return targets.pop() if len(targets) == 1 else Rejected("ambiguous")


def _negated(tokens: Sequence[str], breaks: frozenset[int]) -> frozenset[int]:
    """Positions a negator a few words before (in the same clause) turns around."""
    turned: set[int] = set()
    for j, token in enumerate(tokens):
        if token in _NEGATORS:
            for i in range(j + 1, min(len(tokens), j + 1 + _NEGATION_REACH)):
                if i in breaks:
                    break
                turned.add(i)
    return frozenset(turned)


def _affirmed(hits: list[_Hit], negated: frozenset[int]) -> list[_Hit]:
    """The matches no negator turns around ('no tengo empleo' does not name 'Tengo empleo'); a phrase that
    begins with a negator itself ('No busco trabajo', 'nunca') stands."""
    return [h for h in hits if h[0] not in negated or h[2].words[0] in _NEGATORS]


def _number_target(number: _Number, choices: Sequence[Choice], unit: bool) -> int | None | Rejected:
    """The option a number picks: its position 1..n or, failing that, the one `range` holding it."""
    value = number.value
    if not value.is_integer() and all(c.range is None or all(float(b).is_integer() for b in c.range) for c in choices):
        value = math.floor(value)  # whole ranges count whole years: '17 y medio' is 17
    in_ranges = [i for i, c in enumerate(choices) if c.range and c.range[0] <= value <= c.range[1]]
    if number.ordinal:
        in_ranges = []
    is_index = number.value.is_integer() and 1 <= number.value <= len(choices)
    if is_index and not (unit and any(c.range for c in choices)):
        return int(number.value) - 1
    if len(in_ranges) > 1:
        return Rejected("ambiguous", {"value": _plain(number.value)})
    return in_ranges[0] if in_ranges else None


def _by_numbers(numbers: list[_Number], choices: Sequence[Choice], unit: bool) -> int | Rejected | None:
    """The one option all numbers point to; None when there are no numbers."""
    if not numbers:
        return None
    targets = _known([_number_target(n, choices, unit) for n in numbers], len(choices))
    if isinstance(targets, Rejected):
        return targets
    return targets.pop() if len(targets) == 1 else Rejected("ambiguous")


def _bare_number(tokens: Sequence[str]) -> tuple[_Number | None, bool]:
    """The number when the reply is only a number plus filler ('la número 2', '25 años'); and if a unit was given."""
    kept = [t for t in tokens if t not in _NUMBER_FILLER]
    unit = any(t in _UNITS for t in kept)
    core = [t for t in kept if t not in _UNITS] if unit else kept
    numbers = _numbers(core)
    if len(numbers) == 1 and numbers[0].start == 0 and numbers[0].end == len(core):
        return numbers[0], unit
    return None, unit


def _keyword(
    tokens: Sequence[str], phrases: Sequence[_Phrase], negated: frozenset[int] = frozenset()
) -> int | Rejected | None:
    """The option whose label has a distinctive word the reply uses ('familia' -> 'Reunirme con mi familia');
    a word a negator turns around ('no tengo familia') names nothing."""
    owners: dict[str, set[int]] = {}
    for p in phrases:
        for w in p.words:
            if p.label and len(w) >= 4 and w.isalpha() and w not in _STOPWORDS:
                owners.setdefault(w, set()).add(p.target)
    keywords = [w for w, targets in owners.items() if len(targets) == 1]
    targets = set()
    for i, token in enumerate(tokens[:_MAX_FUZZY_WORDS]):
        if len(token) >= 4 and token.isalpha() and i not in negated:
            for w in get_close_matches(token, keywords, n=1, cutoff=0.85 if len(token) >= 5 else 1.0):
                targets |= owners[w]
    if len(targets) > 1:
        return Rejected("ambiguous")
    return targets.pop() if targets else None


def _within_one(tokens: Sequence[str], phrases: Sequence[_Phrase]) -> int | None:
    """The one option whose label or synonym contains the whole reply as a run of 2+ words ('prefiero no
    decir' in 'Otro o prefiero no decir')."""
    n = len(tokens)
    if n < 2:
        return None
    whole = tuple(tokens)
    targets = {p.target for p in phrases if len(p.words) > n and any(
        p.words[i : i + n] == whole for i in range(len(p.words) - n + 1))}
    return targets.pop() if len(targets) == 1 else None


def names_choice(question: Question, text: str) -> bool:
    """Whether the reply is one of the question's labels or synonyms, or a run of words inside one: then it
    answers the question even when it is also a skip word or a keyword ('prefiero no decir')."""
    if question.type not in ("choice", "multi", "yes_no") or len(text) > MAX_INPUT:
        return False
    said = tuple(squeeze(words(_clean(text))))
    n = len(said)
    if not n:
        return False
    names = _choice_phrases(question.choices)
    return any(p.words[i : i + n] == said for p in names for i in range(len(p.words) - n + 1))


def _fuzzy_scores(tokens: Sequence[str], phrases: Iterable[_Phrase], whole: bool) -> dict[int, float]:
    """Per target, the best similarity between its phrases and the whole reply (or windows of it)."""
    tokens = tokens[:_MAX_FUZZY_WORDS]
    scores: dict[int, float] = {}
    for p in phrases:
        target_text = " ".join(p.words)
        if p.exact_only or len(target_text) < 4:
            continue
        sizes = {len(tokens)} if whole else {max(1, len(p.words) - 1), len(p.words), len(p.words) + 1}
        for size in sizes:
            for i in range(len(tokens) - size + 1):
                window = " ".join(tokens[i : i + size])
                if len(window) >= 3 and not window.replace(" ", "").isdigit():
                    score = _ratio(window, target_text)
                    if score and size == len(p.words) > 1 and not _word_by_word(tokens[i : i + size], p.words):
                        score = 0.0
                    scores[p.target] = max(scores.get(p.target, 0.0), score)
    return scores


def _word_by_word(said: Sequence[str], phrase: Sequence[str]) -> bool:
    """Whether each word is the phrase's word or a typo of it ('me deportarn'), never another word ('mayor de
    edad' is not 'menor de edad')."""
    return all(a == b or (min(len(a), len(b)) > 3 and _ratio(a, b)) for a, b in zip(said, phrase, strict=True))


def _fuzzy(tokens: Sequence[str], phrases: Sequence[_Phrase]) -> int | Rejected | None:
    """The option a small typo most likely meant, when it is clearly the best (whole reply first)."""
    for whole in (True, False):
        scores = _fuzzy_scores(tokens, phrases, whole)
        ranked = sorted(((score, target) for target, score in scores.items() if target >= 0), reverse=True)
        if ranked and ranked[0][0] >= FUZZY_CUTOFF:
            if len(ranked) > 1 and ranked[1][0] > ranked[0][0] - FUZZY_MARGIN:
                return Rejected("ambiguous")
            return ranked[0][1]
    return None


# ----- Doubt: "no sé", "no entiendo", "¿qué?" --------------------------------------------------------------

DONT_KNOW = (
    "no se", "no lo se", "nose", "no c", "ns", "nse", "no sabria", "no sabria decir", "no sabemos",
    "no estoy seguro", "no estoy segura", "no estoy muy seguro", "no estoy muy segura", "quien sabe",
    "ni idea", "nidea", "no tengo idea", "no tengo ni idea", "no me acuerdo", "no recuerdo", "no lo recuerdo",
    "no me recuerdo", "se me olvido", "lo olvide", "no sabe", "no lo sabemos",
    "dont know", "don t know", "do not know", "i dont know", "idk", "dunno", "no idea", "not sure",
    "im not sure", "i m not sure", "unsure", "no clue", "not certain", "cant remember", "can t remember",
    "dont remember", "don t remember", "do not remember", "i forgot", "who knows", "hard to say",
)  # fmt: skip
"""Replies that say the respondent does not know or remember: a survey's "don't know" choice, or asked again."""
DONT_KNOW_ALONE = ("sabe", "sepa", "nos")
"""Mexican 'sabe' / 'sepa' (who knows) and friends: only as the whole reply."""
UNSURE = (
    "tal vez", "talvez", "quizas", "quiza", "a lo mejor", "puede ser", "depende", "maybe", "perhaps",
    "depends", "it depends", "probably", "probablemente", "posiblemente", "supongo", "mas o menos", "kind of",
    "kinda", "sort of", "a veces", "sometimes",
)  # fmt: skip
"""Hedges: a yes/no or a number is not stored on them (a survey's own label or synonym still wins)."""
CONFUSED = (
    "no entiendo", "no entendi", "no le entiendo", "no le entendi", "no les entiendo", "no comprendo",
    "no capto", "no entiendo la pregunta", "no entendi la pregunta", "que quiere decir", "que quieren decir",
    "que significa", "a que se refiere", "a que se refieren", "a que te refieres", "como asi", "cual pregunta",
    "que pregunta", "que es eso", "explique", "expliquen", "what do you mean", "what does that mean",
    "what does it mean", "dont understand", "don t understand", "do not understand", "didnt understand",
    "didn t understand", "don t get it", "dont get it", "not sure what you mean", "which one", "what question",
    "what is this", "what s this", "whats this", "explain", "no clue what you mean", "i m confused",
    "im confused", "confused", "confundido", "confundida", "no me queda claro",
)  # fmt: skip
"""Confusion and questions back: always asked again, with the question's hint."""
CONFUSED_ALONE = (
    "que", "como", "cual", "cuales", "quien", "what", "which", "huh", "perdon", "sorry", "pardon", "disculpe",
    "que cosa", "porque", "por que", "why", "que mas", "mande", "de que", "como que", "que dice", "que dijo",
    "como dice", "perdon que", "mm", "hm", "um",
)  # fmt: skip
_DOUBT_FILLER = frozenset(squeeze(
    "pues bueno este ay ah oh eh verdad sinceramente honestamente well uh jaja jeje oiga senorita senor ok "
    "gracias thanks please porfa favor y and pero but".split()
))
"""Words around a question back that do not change it ('pues ¿qué?', 'and which one?')."""
_DOUBT_KINDS = ("dont_know", "unsure", "confused")
_QUESTION_WORDS = frozenset("que como cual cuales quien quienes cuando donde cuanto cuantos para por what which how "
                            "who why when where".split())
"""A reply that starts with one of these and has a question mark asks back ('¿cómo aceptado?', 'which programs?')."""
BOTH = ("los dos", "las dos", "ambos", "ambas", "both", "the two", "todas las opciones", "all of the above")
"""Replies that name every option of a one-answer question: asked again."""


@lru_cache(maxsize=1)
def _both() -> _Phrases:
    return _Phrases(p for p in (_phrase(text, 0) for text in BOTH) if p is not None)


@lru_cache(maxsize=1)
def _doubt_phrases() -> tuple[_Phrases, dict[tuple[str, ...], int]]:
    """The doubt phrases that count anywhere in a reply, and those that must be the whole reply (by kind)."""
    anywhere = [_phrase(p, kind) for kind, group in enumerate((DONT_KNOW, UNSURE, CONFUSED)) for p in group]
    alone = {tuple(squeeze(words(p))): kind for kind, group in ((0, DONT_KNOW_ALONE), (2, CONFUSED_ALONE))
             for p in group}
    return _Phrases(p for p in anywhere if p is not None), alone


@lru_cache(maxsize=1)
def _dont_know_names() -> frozenset[tuple[str, ...]]:
    return frozenset(tuple(squeeze(words(p))) for p in DONT_KNOW)


def doubt(tokens: Sequence[str], covered: frozenset[int] = frozenset(), asked: bool = False) -> str | None:
    """'dont_know', 'unsure' or 'confused' when a reply (squeezed words) says so outside the positions
    `covered` by an answer's own phrase; `asked`: the reply had a question mark (a bare '?' is confusion)."""
    anywhere, alone = _doubt_phrases()
    core = tuple(t for t in tokens if t not in _DOUBT_FILLER)
    if not core:
        return "confused" if asked else None
    if core in alone:
        return _DOUBT_KINDS[alone[core]]
    if asked and core[0] in _QUESTION_WORDS and polarity(core) is None:
        return "confused"
    kinds = [h[2].target for h in _hits(tokens, anywhere) if not covered.intersection(range(h[0], h[1]))]
    return _DOUBT_KINDS[min(kinds, key=(2, 0, 1).index)] if kinds else None


def _doubtful(text: str) -> Rejected | None:
    """Rejected('unsure') for a reply that says it does not know or understand (numbers, dates, regions: a
    hedge such as 'más o menos 25' is an approximate answer, and taken)."""
    kind = doubt(squeeze(words(text)), asked="?" in text)
    return Rejected("unsure", {"doubt": kind}) if kind in ("dont_know", "confused") else None


# ----- Refusals: "prefiero no contestar" ------------------------------------------------------------------

REFUSALS = (
    "prefiero no contestar", "prefiero no responder", "prefiero no decir", "prefiero no decirlo",
    "prefiero no decirle", "mejor no contesto", "mejor no le digo", "no quiero decir", "no quiero decirlo",
    "no quiero decirle", "no quiero contestar", "no quiero responder", "no le voy a decir", "no te voy a decir",
    "no les voy a decir", "no voy a contestar", "no voy a responder", "no voy a decir", "no contesto eso",
    "no le contesto", "eso no se lo digo", "es personal", "es privado", "no es de su incumbencia",
    "rather not say", "i d rather not say", "id rather not say", "i would rather not say", "prefer not to say",
    "i prefer not to say", "prefer not to answer", "i prefer not to answer", "rather not answer",
    "i d rather not answer", "id rather not answer", "no comment", "none of your business", "that s private",
    "thats private", "it s personal", "its personal", "i won t say", "i wont say", "i don t want to answer",
    "i dont want to answer", "i do not want to answer", "not telling", "i m not telling", "im not telling",
)  # fmt: skip
"""Replies that decline to answer one question: a refusal is not an answer (not a "no"). An optional question is
skipped; a required one is asked again, saying how to stop."""
_REFUSAL_FILLER = frozenset(squeeze(
    "pues mejor eso esa esto esta pregunta por favor porfa gracias la verdad ok perdon disculpe lo siento sorry "
    "that this question please thanks well".split()
))


@lru_cache(maxsize=1)
def _refusals() -> frozenset[tuple[str, ...]]:
    return frozenset(tuple(squeeze(words(p))) for p in REFUSALS)


def refuses(text: str) -> bool:
    """Whether the whole reply (filler at either end aside) declines to answer: 'prefiero no contestar', 'no le voy
    a decir', 'rather not say'."""
    if len(text) > SHORT * 2:
        return False
    said = squeeze(words(_clean(text)))
    start = next((i for i, w in enumerate(said) if w not in _REFUSAL_FILLER), len(said))
    end = len(said)
    while end > start and said[end - 1] in _REFUSAL_FILLER:
        end -= 1
    return tuple(said[start:end]) in _refusals() or tuple(said) in _refusals()


# ----- Yes / no -------------------------------------------------------------------------------------------

YES_WORDS = (
    "si", "sí", "s", "yes", "y", "yep", "yeah", "yup", "ya", "claro", "claro que si", "ok", "okay", "okey",
    "oki", "va", "vale", "sale", "simon", "sip", "sipi", "dale", "andale", "de acuerdo", "estoy de acuerdo",
    "acepto", "si acepto", "si quiero", "por supuesto", "por supuesto que si", "correcto", "afirmativo",
    "obvio", "como no", "desde luego", "con gusto", "adelante", "listo", "aja", "asi es",
    "exacto", "efectivamente", "cierto", "esta bien", "sure", "of course", "i agree", "i accept", "agree",
    "accept", "yes please", "i do", "i did", "i have", "i am", "i will", "it does", "absolutely",
    "definitely", "yes i do", "correct", "that s right", "thats right",
)  # fmt: skip
NO_WORDS = (
    "no", "n", "nop", "nope", "nel", "nah", "nones", "nunca", "jamas", "para nada", "nada", "ya no", "no acepto", "negativo",
    "no gracias", "no thanks", "no thank you", "claro que no", "por supuesto que no", "no deseo participar",
    "nadie", "nobody", "no one", "ninguno", "ninguna",
    "no estoy de acuerdo", "no de acuerdo", "no me interesa", "not interested", "tampoco", "i do not agree",
    "i don t agree", "no way", "not really", "de ninguna manera", "incorrecto", "en absoluto", "never",
    "not at all", "i don t", "i dont", "i do not", "i didn t", "i didnt", "i did not", "i haven t",
    "i havent", "i have not", "i m not", "im not", "i am not", "it doesn t", "it doesnt", "it does not",
    "i won t", "i wont", "i will not", "no i don t", "no i dont",
)  # fmt: skip
_LEAD_FILLER = frozenset(squeeze(
    "pues ps pos bueno este mm ah oh eh ay la verdad sinceramente honestamente yo creo que i think so well um "
    "uh hm oye mira jaja jeje haha".split()
))
"""Words that may come before a yes or no ('pues sí', 'la verdad no', 'yo creo que sí')."""
_HEDGES = frozenset(squeeze(
    "pero but aunque although though depende depends veces sometimes casi almost medio kinda maybe quizas "
    "quiza talvez tal igual regular".split()
))
"""Words after a yes or no that make it something else ('sí, pero a veces no')."""
_WEAKENERS = frozenset(squeeze(
    "mucho muy siempre todo todos todas tanto tan really much always exactly exactamente completamente "
    "totalmente del bien suficiente enough".split()
))
"""Words after a no that make it partly ('no siempre', 'no mucho', 'not always')."""
_YES_EMOJI = "👍✅✔☑👌🆗🙆"
_NO_EMOJI = "👎❌✖✗✘🚫🙅⛔"
_DEFAULT_YES_NO = (
    Choice("yes", {"es": "Sí", "en": "Yes"}, means="yes"),
    Choice("no", {"es": "No", "en": "No"}, means="no"),
)


@lru_cache(maxsize=1)
def _polar_phrases() -> _Phrases:
    found = [_phrase(p, 0) for p in YES_WORDS] + [_phrase(p, 1) for p in NO_WORDS]
    return _Phrases(dict.fromkeys(p for p in found if p is not None))


def polarity(
    tokens: Sequence[str], breaks: frozenset[int] = frozenset(), echoes: frozenset[str] = frozenset()
) -> str | Rejected | None:
    """'yes' or 'no' when the whole reply (squeezed words) says it: a yes or no first (after filler such as
    'pues'), then words that neither contradict nor weaken it ('sí claro', 'no, gracias', 'nel', but not 'no
    siempre' or 'sí pero no'); Rejected('ambiguous') for yes and no together; None for anything else.

    A bare 'no' that begins a statement of its own ('no he buscado trabajo', 'no me he enfermado') is not an
    answer, unless the statement repeats the question (`echoes`: its words' first letters: 'no me ayudaron')."""
    hits = _hits(tokens, _polar_phrases(), breaks)
    if not hits:
        return None
    selected = _select(hits)
    targets = {t for _, _, group in selected for t in group}
    if len(targets) > 1:
        return Rejected("ambiguous")
    first, first_end, _ = min(selected)
    if any(t not in _LEAD_FILLER for t in tokens[:first]):
        return None
    covered = {i for start, end, _ in selected for i in range(start, end)}
    rest = [t for i, t in enumerate(tokens) if i not in covered]
    if any(t in _HEDGES for t in rest):
        return None
    end = min((b for b in breaks if b >= first_end), default=len(tokens))
    clause = [t for i, t in enumerate(tokens[first_end:end], first_end) if i not in covered]
    particle = tokens[first_end - 1] in _PARTICLES
    if particle and not _goes_on(clause, echoes, "yes" if targets == {0} else "no"):
        return None  # 'no problem', 'no hay problema', 'ya no aguanto', 'si tuviera': another sentence
    if targets == {0}:
        return None if any(t in _NEGATORS for t in rest) else "yes"
    if any(t in _WEAKENERS for t in clause):
        return None
    if tokens[first:first_end] == ["no"] and _a_statement(clause, echoes):
        return None
    return "no"


_PARTICLES = frozenset({"si", "no", "yes", "ya", "s", "n", "y"})
"""A yes or no that is this bare word may begin another sentence ('no problem', 'si tuviera'); 'nadie', 'nunca'
or 'no one' carry a statement of their own ('nadie me ayudó')."""
_TRAIL_FILLER = frozenset(squeeze(
    "gracias thanks thank you please porfa favor por ok okay senor senora senorita joven amigo verdad dios "
    "jaja jeje haha pues bueno claro obvio este mm eh ah oh ay".split()
))
"""Words that may follow a yes or no without changing it ('no gracias a dios', 'sí claro', 'no la verdad')."""
_JOINERS = frozenset(squeeze(
    "a al de del con en el la los las lo un una unos unas mi mis su sus tu nuestro nuestra por para "
    "yo me le les nos se i we they he she it my our their the an with from in at of for by to".split()
))
"""Words a yes or no may go on with ('sí, del gobierno', 'sí con mi familia', 'no they didn't')."""
_ANSWER_VERBS = frozenset(squeeze(
    "tengo tenemos tiene tienen tuve tuvimos tenia soy somos estoy estamos estuve estuvimos fui fuimos vivi "
    "vivimos uso usamos sirve "
    "hay habia there have has had do does did am is are was were".split()
))
"""Verbs that answer any yes/no question on their own ('sí tengo', 'no tengo', 'yes I have')."""
_MORE_YES = frozenset(squeeze(
    "mucho muchos muchas poco poquito algo todos todas todo siempre ya bastante tambien participar participo "
    "mande mandeme pregunte adelante empecemos little lot all always also too participate go ahead".split()
))
"""Words that may follow a yes and only say how much, or to go on ('sí mucho', 'sí, un poco', 'sí acepto
participar')."""


def _goes_on(clause: Sequence[str], echoes: frozenset[str], said: str) -> bool:
    """Whether the words right after a yes or no (in its clause, filler aside) carry on the same answer: they
    begin with a joiner, a verb that answers, the question's own words or, after a yes, how much. Anything
    else makes the yes or no part of another sentence: 'no problem', 'no hay problema' (an idiom), 'ya no
    aguanto' (I can't take it any more), 'si tuviera' ('if I had')."""
    rest = [w for w in clause if w not in _TRAIL_FILLER]
    if not rest:
        return True
    first = rest[0]
    if first in _JOINERS or first in _ANSWER_VERBS or first in _NEGATORS or first[:4] in echoes:
        return True
    return said == "yes" and (first in _MORE_YES or first.isdigit())


def yes_or_no(text: str) -> str | None:
    """'yes' or 'no' when a whole reply says it, with its punctuation ('no, sigo' is a no); else None."""
    raw, breaks = _tokens(_emoji_words(_clean(text)[:MAX_INPUT]))
    said = polarity(squeeze(raw), breaks)
    return said if isinstance(said, str) else None


_PERFECT = frozenset("he ha han hemos has e fui fue fuimos fueron habia hay".split())
_STATEMENT = frozenset("me te se le les lo la los las nos quiero queremos puedo podemos voy vamos estoy estamos "
                       "sabia supe pude tuve".split())


def _a_statement(clause: list[str], echoes: frozenset[str]) -> bool:
    """Whether the words after a bare 'no' state something else ('no he buscado', 'no me he enfermado')."""
    clause = [w for w in clause if w not in _LEAD_FILLER]
    if not clause:
        return False
    if clause[0] in _PERFECT:
        return True
    return clause[0] in _STATEMENT and len(clause) > 1 and not any(w[:4] in echoes for w in clause[1:])


_ECHOES: IdentityMemo[frozenset[str]] = IdentityMemo(4096)


def _echoes(question: Question) -> frozenset[str]:
    """The first four letters of the question's words of four letters or more, in every language."""
    found = _ECHOES.get((question,))
    if found is None:
        said = {w[:4] for text in question.text.values() for w in squeeze(words(text)) if len(w) >= 4}
        found = _ECHOES.put((question,), None, frozenset(said))
    return found


def _emoji_words(text: str) -> str:
    """Thumbs up/down and check/cross marks become 'si' / 'no' before normalization strips them."""
    for emoji in _YES_EMOJI:
        text = text.replace(emoji, " si ")
    for emoji in _NO_EMOJI:
        text = text.replace(emoji, " no ")
    return text


# ----- Choices --------------------------------------------------------------------------------------------


def _pick(choices: Sequence[Choice], text: str, echoes: frozenset[str] = frozenset()) -> int | Rejected:
    """The index of the one choice a reply names, or why there is none.

    In order: a whole label or synonym; "don't know" (its choice, or asked again); confusion (asked again); a
    number; the reply's plain yes or no (choices that mean it); labels and synonyms inside the reply, unless a
    negator turns them around; a reply inside one label; then numbers in a sentence, label keywords, typos.
    """
    raw, breaks = _tokens(text.replace(",", " , "))
    if not raw:
        return Rejected("unsure", {"doubt": "confused"}) if "?" in text else Rejected("not_understood")
    tokens = squeeze(raw)
    phrases = _choice_phrases(choices)
    hits = _hits(tokens, phrases, breaks)
    whole = [h for h in hits if h[1] - h[0] == len(tokens)]
    if whole:
        return _resolve(_select(whole))
    meanings = _meanings(choices)
    covered = frozenset(i for start, end, _ in hits for i in range(start, end))
    kind = doubt(tokens, covered, asked="?" in text)
    if kind is not None:
        known = meanings["dont_know"]
        return known[0] if kind != "confused" and len(known) == 1 else Rejected("unsure", {"doubt": kind})
    number, unit = _bare_number(raw)
    if number is not None:
        return _by_numbers([number], choices, unit)
    if any(h[2].target == 0 and not covered.intersection(range(h[0], h[1])) for h in _hits(tokens, _both())):
        return Rejected("ambiguous", {"both": True})
    negated = _negated(tokens, breaks)
    affirmed = _affirmed(hits, negated)
    lead = tokens[: min(start for start, _, _ in affirmed)] if affirmed else tokens
    said = polarity(lead, breaks, echoes) if len(affirmed) == len(hits) else None  # 'no, busco...'; not 'algunos sí'
    if isinstance(said, Rejected):
        return said
    meant = set(meanings[said]) if said else set()
    if affirmed:
        picked = _resolve(_select(affirmed))
        if isinstance(picked, int) and meant and picked not in meant:
            return Rejected("ambiguous")
        if isinstance(picked, int) and _elsewhere(raw, affirmed, choices, phrases, negated) - {picked}:
            return Rejected("ambiguous")
        return picked
    if meant:
        if len(meant) == 1:
            return meant.pop()
        return Rejected("ambiguous", {"means": said, "options": [i + 1 for i in sorted(meant)]})
    inside = _within_one(tokens, phrases)
    if inside is not None:
        return inside
    found = _by_numbers(_sentence_numbers(raw, choices), choices, any(t in _UNITS for t in raw))
    if found is None and len(affirmed) == len(hits):
        found = _keyword(tokens, phrases, negated)
        if found is None and not negated:
            found = _fuzzy(tokens, phrases)
    return Rejected("not_understood") if found is None else found


def _sentence_numbers(raw: Sequence[str], choices: Sequence[Choice]) -> list[_Number]:
    """The numbers in a sentence that can name an option: not articles ('un'), and, when no choice has a range,
    not quantities ('regresé hace 2 años' does not pick option 2); 'casi 18' is under 18."""
    ranged = any(c.range for c in choices)
    found = [n for n in _numbers(raw) if not n.weak and (ranged or n.end >= len(raw) or raw[n.end] not in _UNITS)]
    return [_almost(raw, n) for n in found] if ranged else found


_ALMOST = frozenset("casi almost nearly cumplo cumplire cumplir turning turn".split())
"""Words that put the number after them just out of reach: 'casi 18', 'ya casi tengo 18', 'voy a cumplir 18',
'almost 18' are under 18."""


def age_said(text: str) -> int | None:
    """The one age (whole years) a reply states, for a confirmation: '17 años', 'casi 18' and '17 y medio' are 17."""
    tokens = words(_clean(text)[:MAX_INPUT])
    values = {math.floor(_almost(tokens, n).value) for n in _numbers(tokens) if not n.weak and not n.ordinal}
    return values.pop() if len(values) == 1 and 0 <= min(values) < 150 else None


def _almost(raw: Sequence[str], number: _Number) -> _Number:
    """The number a little below what is said when 'casi' / 'almost' comes shortly before it."""
    if _ALMOST.isdisjoint(raw[max(0, number.start - 3) : number.start]) or number.ordinal:
        return number
    return replace(number, value=number.value - 0.5)


def _elsewhere(
    raw: Sequence[str],
    hits: list[_Hit],
    choices: Sequence[Choice],
    phrases: list[_Phrase],
    negated: frozenset[int] = frozenset(),
) -> set[int]:
    """Options that numbers or label keywords outside the matched phrases point to ('trabajo y familia')."""
    matched = {i for start, end, _ in hits for i in range(start, end)}
    kept = [i for i in range(len(raw)) if i not in matched]
    rest = [raw[i] for i in kept]
    turned = frozenset(k for k, i in enumerate(kept) if i in negated)
    numbers = [n for n in _sentence_numbers(raw, choices) if n.start not in matched]
    found = [_by_numbers(numbers, choices, any(t in _UNITS for t in raw)), _keyword(squeeze(rest), phrases, turned)]
    return {t for t in found if isinstance(t, int)}


def parse_choice(question: Question, text: str, language: str, today: date | None = None) -> Outcome:
    """One option, by number, value, label or synonym in any language, tolerating noise and small typos; a plain
    yes or no picks the choice that means it; "no sé" picks a "don't know" choice or is asked again."""
    cleaned, error = _prepare(text, "not_understood")
    if error:
        return error
    picked = _pick(question.choices, _emoji_words(cleaned), _echoes(question))
    return picked if isinstance(picked, Rejected) else Accepted(question.choices[picked].value)


def parse_yes_no(question: Question, text: str, language: str, today: date | None = None) -> Outcome:
    """Yes or no when the whole reply says it, in Spanish or English, slang, emoji, or 1 (yes) / 2 (no)."""
    cleaned, error = _prepare(text, "not_understood")
    if error:
        return error
    choices = question.choices or _DEFAULT_YES_NO
    picked = _pick(choices, _emoji_words(cleaned), _echoes(question))
    if isinstance(picked, Rejected) and picked.reason == "not_understood":
        picked = _yes_no_typo(choices, cleaned)
    return picked if isinstance(picked, Rejected) else Accepted(choices[picked].value)


def _yes_no_typo(choices: Sequence[Choice], text: str) -> int | Rejected:
    """A one-word yes or no with a small typo ('claor', 'sipp')."""
    tokens = squeeze(words(text))
    meanings = _meanings(choices)
    if len(tokens) != 1 or not meanings["yes"] or not meanings["no"]:
        return Rejected("not_understood")
    polar = _polar_phrases()
    found = _fuzzy(tokens, [replace(p, target=meanings["yes" if p.target == 0 else "no"][0]) for p in polar])
    return found if isinstance(found, int) else Rejected("not_understood")


# ----- Multiple choice ------------------------------------------------------------------------------------

_SEPARATORS = re.compile(r"[,;/&+|.\n]")
_SEPARATOR_WORDS = frozenset({"y", "e", "and", "tambien", "also", "mas", "plus"})


def _runs(tokens: Sequence[str], used: set[int]) -> list[list[str]]:
    """The unmatched stretches of a reply, split at matched phrases and at 'y' / 'e' / 'and'."""
    runs: list[list[str]] = [[]]
    for i, token in enumerate(tokens):
        if i in used or token in _SEPARATOR_WORDS:
            runs.append([])
        else:
            runs[-1].append(token)
    return [run for run in runs if run]


def _greedy(tokens: Sequence[str], phrases: list[_Phrase]) -> tuple[set[int], set[int]] | Rejected:
    """Options named by non-overlapping phrases, longest first, and the token positions they cover; a phrase a
    negator turns around ('no falta trabajo') makes the reply one to ask again."""
    hits = _hits(tokens, phrases)
    if len(_affirmed(hits, _negated(tokens, frozenset()))) < len(hits):
        return Rejected("not_understood", {"negated": True})
    selected = _select(hits)
    if any(len(group) > 1 for _, _, group in selected):
        return Rejected("ambiguous")
    targets = {t for _, _, group in selected for t in group}
    return targets, {i for start, end, _ in selected for i in range(start, end)}


def _run_targets(
    run: list[str], choices: Sequence[Choice], phrases: list[_Phrase], beside_a_label: bool = False
) -> set[int] | Rejected:
    """Options named in an unmatched stretch: numbers ('1 3', 'la uno') or a typo'd label."""
    core = [t for t in run if t not in _NUMBER_FILLER]
    numbers = _numbers(core)
    if numbers and all(n.weak for n in numbers) and beside_a_label:
        return set()  # 'una clinica': an article, not option 1
    if numbers and sum(n.end - n.start for n in numbers) == len(core):
        return _known([_number_target(n, choices, unit=False) for n in numbers], len(choices))
    strong = [n for n in numbers if not n.weak]
    if strong:
        return _known([_number_target(n, choices, unit=False) for n in strong], len(choices))
    found = _keyword(squeeze(run), phrases)
    if found is None:
        found = _fuzzy(squeeze(run), phrases)
    return {found} if isinstance(found, int) else set()


def _known(targets: list[int | None | Rejected], options: int) -> set[int] | Rejected:
    """The options numbers point to, or why one of them points nowhere (ambiguous range, out of range)."""
    rejected = [t for t in targets if isinstance(t, Rejected)]
    if rejected:
        return rejected[0]
    if None in targets:
        return Rejected("not_understood", {"options": options})
    return {t for t in targets if isinstance(t, int)}


def parse_multi(question: Question, text: str, language: str, today: date | None = None) -> Outcome:
    """Several options: '1,3', '1 y 3', '1 and 3', labels joined by commas, 'y', 'e', 'and', '/', '&'."""
    cleaned, error = _prepare(text, "not_understood")
    if error:
        return error
    raw = words(_SEPARATORS.sub(" , ", cleaned))
    if not raw:
        return Rejected("unsure", {"doubt": "confused"}) if "?" in cleaned else Rejected("not_understood")
    phrases = _choice_phrases(question.choices)
    greedy = _greedy(squeeze(raw), phrases)
    if isinstance(greedy, Rejected):
        return greedy
    selected, used = greedy
    kind = doubt(squeeze(raw), frozenset(used), asked="?" in cleaned)
    if kind is not None:
        return Rejected("unsure", {"doubt": kind})
    for run in _runs(raw, used):
        found = _run_targets(run, question.choices, phrases, beside_a_label=bool(used))
        if isinstance(found, Rejected):
            return found
        selected |= found
    if not selected:
        return Rejected("not_understood")
    exclusive = [question.choices[i].value for i in sorted(selected) if question.choices[i].exclusive]
    if exclusive and len(selected) > 1:
        return Rejected("exclusive", {"exclusive": exclusive[0]})
    return Accepted([question.choices[i].value for i in sorted(selected)])


# ----- Dates ----------------------------------------------------------------------------------------------

_MONTHS = {
    "enero": 1, "ene": 1, "january": 1, "jan": 1, "febrero": 2, "feb": 2, "february": 2, "marzo": 3,
    "mar": 3, "march": 3, "abril": 4, "abr": 4, "april": 4, "apr": 4, "mayo": 5, "may": 5, "junio": 6,
    "jun": 6, "june": 6, "julio": 7, "jul": 7, "july": 7, "agosto": 8, "ago": 8, "august": 8, "aug": 8,
    "septiembre": 9, "setiembre": 9, "sep": 9, "sept": 9, "set": 9, "september": 9, "octubre": 10,
    "oct": 10, "october": 10, "noviembre": 11, "nov": 11, "november": 11, "diciembre": 12, "dic": 12,
    "december": 12, "dec": 12,
}  # fmt: skip
_MONTH_NAMES = [name for name in _MONTHS if len(name) >= 5]
_RELATIVE_DAYS = (
    (("antes", "de", "ayer"), 2), (("day", "before", "yesterday"), 2), (("anteayer",), 2), (("antier",), 2),
    (("ayer",), 1), (("yesterday",), 1), (("hoy",), 0), (("today",), 0),
)  # fmt: skip
_DATE_NUMBER = re.compile(r"([0-9]{1,4})(?:st|nd|rd|th|ro|er|o)?")
_COMPACT_DATE = re.compile(r"[0-9]{8}")


def _month(token: str) -> int | None:
    """'marzo', 'mar', 'March', 'setiembre', 'febero' -> month number."""
    if token in _MONTHS:
        return _MONTHS[token]
    if len(token) >= 5 and token.isalpha():
        close = get_close_matches(token, _MONTH_NAMES, n=1, cutoff=0.85)
        return _MONTHS[close[0]] if close else None
    return None


def _full_year(year: int, digits: int, today: date | None) -> int:
    """Two-digit years up to this year's are 20xx, later ones 19xx."""
    if digits > 2:
        return year
    pivot = (today or date.today()).year % 100
    return 2000 + year if year <= pivot else 1900 + year


def _day_month(first: int, second: int) -> tuple[int, int]:
    """Day first as in Mexico, unless only the second number can be a day (US style 3/15)."""
    return (second, first) if second > 12 >= first else (first, second)


def _iso(year: int, month: int, day: int) -> Outcome:
    """Accepted('YYYY-MM-DD') for a real calendar date between 1900 and 2100."""
    if not 1900 <= year <= 2100:
        return Rejected("not_a_date")
    try:
        return Accepted(date(year, month, day).isoformat())
    except (ValueError, OverflowError):
        return Rejected("not_a_date")


def _relative(tokens: list[str], today: date | None) -> Outcome | None:
    """'hoy', 'ayer', 'antier', 'today', 'yesterday' relative to `today`; None when the reply has none."""
    for phrase, days_ago in _RELATIVE_DAYS:
        if contains_phrase(tokens, list(phrase)):
            return (
                Accepted((today - timedelta(days=days_ago)).isoformat()) if today else Rejected("not_a_date")
            )
    return None


def _with_month(month: int, numbers: list[tuple[int, int]], today: date | None) -> Outcome:
    """'15 de marzo de 2024', 'March 15, 2024', '15 mar 24', 'marzo 2024' (the 1st), '15 de marzo'."""
    if len(numbers) == 1:
        value, digits = numbers[0]
        if digits > 2 or value > 31:
            return _iso(_full_year(value, digits, today), month, 1)
        return _iso(today.year, month, value) if today else Rejected("not_a_date")
    if len(numbers) == 2:
        (a, a_digits), (b, b_digits) = numbers
        if a_digits == 4:
            return _iso(a, month, b)
        return _iso(_full_year(b, b_digits, today), month, a)
    return Rejected("not_a_date")


def _numeric(numbers: list[tuple[int, int]], today: date | None) -> Outcome:
    """'2024-03-15', '15/03/2024', '15.03.24', '3/15/2024', '03/2024' (the 1st), '15/03' (this year)."""
    if len(numbers) == 3:
        (a, a_digits), (b, _), (c, c_digits) = numbers
        if a_digits == 4:
            return _iso(a, b, c)
        day, month = _day_month(a, b)
        return _iso(_full_year(c, c_digits, today), month, day)
    if len(numbers) == 2:
        (a, a_digits), (b, b_digits) = numbers
        if b_digits == 4:
            return _iso(b, a, 1)
        if a_digits == 4:
            return _iso(a, b, 1)
        day, month = _day_month(a, b)
        return _iso(today.year, month, day) if today else Rejected("not_a_date")
    return Rejected("not_a_date")


def _compact(token: str) -> Outcome:
    """'20240315' or '15032024'."""
    if token[:2] in ("19", "20"):
        iso = _iso(int(token[:4]), int(token[4:6]), int(token[6:]))
        if isinstance(iso, Accepted):
            return iso
    return _iso(int(token[4:]), int(token[2:4]), int(token[:2]))


def parse_date(question: Question, text: str, language: str, today: date | None = None) -> Outcome:
    """A date as ISO 'YYYY-MM-DD', from numeric forms, month names (es/en) or 'hoy' / 'ayer' / 'antier'."""
    cleaned, error = _prepare(text, "not_a_date")
    if error:
        return error
    unsure = _doubtful(cleaned)
    if unsure:
        return unsure
    tokens = words(re.sub(r"[./\-_,]", " ", cleaned))
    relative = _relative(tokens, today)
    if relative is not None:
        return relative
    if len(tokens) == 1 and _COMPACT_DATE.fullmatch(tokens[0]):
        return _compact(tokens[0])
    months = {m for t in tokens if (m := _month(t))}
    numbers = [(int(m.group(1)), len(m.group(1))) for t in tokens if (m := _DATE_NUMBER.fullmatch(t))]
    if len(months) > 1:
        return Rejected("ambiguous")
    if months:
        return _with_month(months.pop(), numbers, today)
    return _numeric(numbers, today)


# ----- Regions --------------------------------------------------------------------------------------------

_CONFIRM = frozenset({"mexico", "mex"})  # also the country: "México" alone needs a confirmation
_COMMON_WORDS = frozenset(
    {"sin", "son", "ver", "pue", "col", "camp", "mor", "tab", "chis", "nay", "roo", "cam"}
)
_REGION_FILLER = frozenset(
    "vivo vive vivimos en soy somos de del la el estado estoy ahora ahorita actualmente aqui me regrese a al "
    "es mi yo i live in from im am the state of pues bueno vengo".split()
)


@lru_cache(maxsize=32)
def _region_phrases(regions: tuple[Region, ...]) -> _Phrases:
    """Names and synonyms match anywhere; abbreviations that are also common words only as the whole reply."""
    found: list[_Phrase | None] = []
    for i, region in enumerate(regions):
        found += [_phrase(name, i, squeezed=False) for name in (region.name, *region.synonyms)]
        for abbreviation in region.abbreviations:
            risky = normalize(abbreviation) in _COMMON_WORDS
            found.append(_phrase(abbreviation, i, exact_only=risky, squeezed=False))
    return _Phrases(p for p in found if p is not None)


@lru_cache(maxsize=32)
def _region_phrases_split(regions: tuple[Region, ...]) -> tuple[_Phrases, _Phrases]:
    """The regions' phrases that match anywhere, and the risky ones that match only a whole reply."""
    phrases = _region_phrases(regions)
    return _Phrases(p for p in phrases if not p.exact_only), _Phrases(p for p in phrases if p.exact_only)


def _region_by_code(tokens: list[str], regions: Sequence[Region]) -> Outcome | None:
    """'19', 'el 9' -> the region with that code (one-digit codes padded to two)."""
    if len(tokens) != 1 or not tokens[0].isdigit() or len(tokens[0]) > 3:
        return None
    code = next((r.code for r in regions if r.code in (tokens[0], tokens[0].zfill(len(r.code)))), None)
    return Accepted(code) if code else Rejected("unknown_region")


def _region_hits(tokens: list[str], regions: tuple[Region, ...]) -> list[_Hit]:
    """Phrase matches; risky abbreviations ('Sin', 'Son') only when nothing but filler surrounds them."""
    anywhere, whole_only = _region_phrases_split(regions)
    core = [t for t in tokens if t not in _REGION_FILLER]
    return _hits(tokens, anywhere) + _hits(core, whole_only)


def regions_beginning(regions: Sequence[Region], tokens: Sequence[str]) -> list[str]:
    """The names of the regions whose name begins with the reply's words ('Baja': Baja California and Baja
    California Sur)."""
    said = tuple(tokens)
    if not said:
        return []
    return [r.name for r in regions if tuple(words(r.name))[: len(said)] == said and len(words(r.name)) > len(said)]


def parse_region(question: Question, text: str, language: str, today: date | None = None) -> Outcome:
    """A region code by code, name, abbreviation or synonym; typos and 'México' alone give Unsure."""
    cleaned, error = _prepare(text, "unknown_region")
    if error:
        return error
    unsure = _doubtful(cleaned)
    if unsure:
        return unsure
    regions = question.regions or MEXICO_STATES
    tokens = words(cleaned)
    by_code = _region_by_code([t for t in tokens if t not in _REGION_FILLER], regions)
    if by_code is not None:
        return by_code
    regions = tuple(regions)
    phrases = _region_phrases(regions)
    hits = _region_hits(tokens, regions)
    sure = [h for h in hits if " ".join(h[2].words) not in _CONFIRM]
    if sure or hits:
        picked = _resolve(_select(sure or hits))
        if isinstance(picked, Rejected):
            return picked
        region = regions[picked]
        return Accepted(region.code) if sure else Unsure(region.code, region.name)
    named = regions_beginning(regions, [t for t in tokens if t not in _REGION_FILLER])
    if len(named) > 1:
        return Rejected("ambiguous", {"regions": named})
    guess = _fuzzy([t for t in tokens if t not in _REGION_FILLER] or tokens, phrases)
    if isinstance(guess, Rejected):
        return guess
    if guess is None:
        return Rejected("unknown_region")
    return Unsure(regions[guess].code, regions[guess].name)


# ----- Registry -------------------------------------------------------------------------------------------

Parser = Callable[[Question, str, str, date | None], Outcome]

PARSERS: dict[str, Parser] = {
    "choice": parse_choice,
    "multi": parse_multi,
    "yes_no": parse_yes_no,
    "integer": parse_integer,
    "decimal": parse_decimal,
    "text": parse_text,
    "date": parse_date,
    "region": parse_region,
}


UNREMEMBERED = frozenset({"date", "text"})
"""Types whose outcomes are not remembered: dates depend on the day, free text rarely repeats."""
_PARSED: IdentityMemo[Outcome] = IdentityMemo(16384)
"""Outcomes of short replies, by question, text and language."""


def parse_answer(question: Question, text: str, language: str, today: date | None = None) -> Outcome:
    """Parse a reply with the parser registered for the question's type.

    Short replies are parsed once per question ('1', 'si', 'no se' come back from many respondents): a parser is
    a function of the question, the text and the language (and the day, for dates, which are not remembered).
    """
    parser = PARSERS.get(question.type)
    if parser is None:
        return Rejected("not_understood", {"type": question.type})
    if len(text) > SHORT or question.type in UNREMEMBERED:
        return parser(question, text, language, today)
    outcome = _PARSED.get((question,), (text, language))
    if outcome is None:
        outcome = _PARSED.put((question,), (text, language), parser(question, text, language, today))
    if isinstance(outcome, Accepted | Unsure) and isinstance(outcome.value, list):
        return replace(outcome, value=list(outcome.value))
    return outcome
