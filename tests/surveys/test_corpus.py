"""The labelled corpus of replies (tests/surveys/data/replies.tsv): no reply is stored as a value it did not mean,
and nearly every reply that means a value is understood. bench/answers.py prints the same table as docs/answers.md."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from bench.answers import NO_VALUE, evaluate, load_corpus, precision, recall, table
from surveys.loader import bundled_files, load_file

DOCS = Path(__file__).parents[2] / "docs" / "answers.md"


@pytest.fixture(scope="module")
def results():
    return evaluate()


def test_the_corpus_covers_every_question_both_languages_and_every_outcome():
    survey = load_file(bundled_files()[0])
    replies = load_corpus()
    assert len(replies) >= 600
    languages = Counter(r.language for r in replies)
    assert set(languages) == {"es", "en"} and languages["en"] >= 100
    assert {r.question for r in replies} == {q.id for q in survey.questions}
    assert {survey.question(r.question).type for r in replies} == {q.type for q in survey.questions}
    outcomes = {r.expected if isinstance(r.expected, str) and r.expected in NO_VALUE else "value" for r in replies}
    assert outcomes == {"value", *NO_VALUE}
    assert len({(r.question, r.language, r.text) for r in replies}) == len(replies), "no reply twice"


def test_no_reply_is_stored_as_a_value_it_did_not_mean(results):
    wrong = [f"line {r.reply.line}: {r.reply.text!r} meant {r.reply.expected!r}, stored {r.value!r}"
             for r in results if r.wrong_value]
    assert wrong == []
    assert precision(results) == 1.0


def test_nearly_every_reply_that_means_a_value_is_understood(results):
    assert recall(results) >= 0.95


def test_requests_to_stop_keywords_and_skips_get_what_they_should(results):
    missed = [r for r in results if r.reply.expected in ("stop", "optout", "skip") and not r.understood]
    assert missed == []


def test_the_table_in_the_docs_is_current(results):
    assert "\n".join(table(results)) in DOCS.read_text(encoding="utf-8")
