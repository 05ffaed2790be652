"""How well replies are understood: the labelled corpus played through the engine, by outcome and question type.

Each reply of `tests/surveys/data/replies.tsv` is sent to the bundled survey at its question (in its language), and
what the engine did is compared with what the person meant:

- precision: of the replies stored as a value, the share stored as the value they meant (must be 100%);
- recall: of the replies that mean a value, the share understood (stored, or a "did you mean" with that value);
- for replies that mean no value, whether they got what they should (asked again, asked to confirm a stop, skipped).

    python -m bench.answers            # the table
    python -m bench.answers --wrong    # and every reply that did not get what it should
    python -m bench.answers --speed    # and the engine's time per reply never seen before (caches emptied)
"""

from __future__ import annotations

import argparse
import csv
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from surveys import engine
from surveys.definition import Definition
from surveys.engine import IN_PROGRESS, Inbound, State
from surveys.loader import bundled_files, load_file

CORPUS = Path(__file__).parents[1] / "tests" / "surveys" / "data" / "replies.tsv"
NO_VALUE = ("reask", "stop", "optout", "skip")


@dataclass(frozen=True)
class Reply:
    question: str
    language: str
    expected: Any
    """The value meant (a list for a multi question) or one of NO_VALUE."""
    text: str
    line: int


@dataclass(frozen=True)
class Result:
    reply: Reply
    kind: str
    """The question's type ('consent' for the consent question)."""
    got: str
    """'value', 'confirm' (a "did you mean"), or one of NO_VALUE."""
    value: Any = None

    @property
    def means_value(self) -> bool:
        return self.reply.expected not in NO_VALUE

    @property
    def stored(self) -> bool:
        return self.got == "value"

    @property
    def wrong_value(self) -> bool:
        """Stored as a value the person did not mean."""
        return self.stored and (not self.means_value or self.value != self.reply.expected)

    @property
    def understood(self) -> bool:
        if self.means_value:
            return self.got in ("value", "confirm") and self.value == self.reply.expected
        return self.got == self.reply.expected or (self.got == "confirm" and self.reply.expected == "reask")


def load_corpus(path: Path = CORPUS, definition: Definition | None = None) -> list[Reply]:
    definition = definition or load_file(bundled_files()[0])
    replies = []
    with path.open(encoding="utf-8", newline="") as file:
        for number, row in enumerate(csv.reader(file, delimiter="\t", quoting=csv.QUOTE_NONE), 1):
            if not row or row[0].startswith("#"):
                continue
            question, language, expected, text = row
            multi = definition.question(question).type == "multi" and expected not in NO_VALUE
            replies.append(Reply(question, language, expected.split("+") if multi else expected, text, number))
    return replies


def play(definition: Definition, reply: Reply) -> Result:
    """What the engine does with one reply to its question, from a fresh session at that question."""
    question = definition.question(reply.question)
    state = State(definition.id, definition.version, reply.language, status=IN_PROGRESS, question=question.id)
    step = engine.handle(definition, state, Inbound(text=reply.text))
    kind = "consent" if question.id == "consent" else question.type
    answers = [a for a in step.answers if a.question_id == question.id]
    if answers and answers[0].skipped:
        return Result(reply, kind, "skip")
    if answers:
        return Result(reply, kind, "value", answers[0].value)
    if step.state.status == engine.OPTED_OUT:
        return Result(reply, kind, "optout")
    if step.state.stop_asked:
        return Result(reply, kind, "stop")
    if step.state.pending is not None:
        return Result(reply, kind, "confirm", step.state.pending["value"])
    return Result(reply, kind, "reask")


def evaluate(replies: list[Reply] | None = None, definition: Definition | None = None) -> list[Result]:
    definition = definition or load_file(bundled_files()[0])
    return [play(definition, reply) for reply in (replies or load_corpus(definition=definition))]


def precision(results: list[Result]) -> float:
    stored = [r for r in results if r.stored]
    return sum(not r.wrong_value for r in stored) / len(stored) if stored else 1.0


def recall(results: list[Result]) -> float:
    meant = [r for r in results if r.means_value]
    return sum(r.understood for r in meant) / len(meant) if meant else 1.0


def table(results: list[Result]) -> list[str]:
    """Rows per intended outcome and question type: replies, understood, asked again, stored wrongly."""
    groups: dict[tuple[str, str], list[Result]] = defaultdict(list)
    for r in results:
        groups[("value" if r.means_value else r.reply.expected, r.kind)].append(r)
    order = {"value": 0, "reask": 1, "stop": 2, "optout": 3, "skip": 4}
    lines = [f"| {'meant':<7} | {'question type':<13} | {'replies':>7} | {'understood':>10} | {'asked again':>11} "
             f"| {'wrong value':>11} |", f"|{'-' * 9}|{'-' * 15}|{'-' * 9}|{'-' * 12}|{'-' * 13}|{'-' * 13}|"]
    for (meant, kind), group in sorted(groups.items(), key=lambda g: (order[g[0][0]], g[0][1])):
        understood = sum(r.understood for r in group)
        again = sum(r.got in ("reask", "confirm") and not r.understood for r in group)
        wrong = sum(r.wrong_value for r in group)
        lines.append(f"| {meant:<7} | {kind:<13} | {len(group):>7} | {understood:>10} | {again:>11} | {wrong:>11} |")
    languages = Counter(r.reply.language for r in results)
    lines += [
        "",
        f"{len(results)} replies ({', '.join(f'{n} {lang}' for lang, n in sorted(languages.items()))}); "
        f"precision {100 * precision(results):.1f}% of {sum(r.stored for r in results)} stored; "
        f"recall {100 * recall(results):.1f}% of {sum(r.means_value for r in results)} that mean a value; "
        f"{sum(r.understood for r in results if not r.means_value)} of {sum(not r.means_value for r in results)} "
        "others got what they should",
    ]
    return lines


def speed(rounds: int = 3) -> float:
    """Microseconds per reply, the corpus played with the parse, keyword and normalization caches emptied (best
    of `rounds`): the cost of a reply never seen before."""
    from surveys import parsers, text

    definition = load_file(bundled_files()[0])
    replies = load_corpus(definition=definition)
    best = float("inf")
    for _ in range(rounds):
        parsers._PARSED.clear()
        for cached in (text._normalize_short, engine._keyword, engine._asks_to_stop):
            cached.cache_clear()
        start = time.perf_counter()
        evaluate(replies, definition)
        best = min(best, (time.perf_counter() - start) / len(replies) * 1e6)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--wrong", action="store_true", help="list every reply that did not get what it should")
    parser.add_argument("--speed", action="store_true", help="time each reply never seen before")
    args = parser.parse_args()
    results = evaluate()
    print("\n".join(table(results)))
    if args.speed:
        print(f"\n{speed():.0f} us per reply never seen before (best of 3)")
    if args.wrong:
        print()
        for r in results:
            if not r.understood:
                got = f"{r.got} {r.value!r}" if r.value is not None else r.got
                print(f"line {r.reply.line}: {r.reply.question} ({r.reply.language}) {r.reply.text!r}: "
                      f"meant {r.reply.expected!r}, got {got}")


if __name__ == "__main__":
    main()
