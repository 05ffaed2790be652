"""The benchmark's conversations go through the bundled survey the same way whatever the wording."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from bench.conversations import ANSWERS, GREETINGS, conversation
from surveys import engine
from surveys.engine import Inbound
from surveys.loader import load_file
from tests.surveys.test_engine import BUNDLED, RETURNEE_SCRIPT

EXPECTED = {question: value for _, question, value in RETURNEE_SCRIPT}
AT = datetime(2026, 12, 1, tzinfo=UTC)


@pytest.fixture(scope="module")
def bundled():
    return load_file(BUNDLED)


def _after(definition, texts):
    state = None
    for text in texts:
        state = engine.handle(definition, state, Inbound(text=text, at=AT)).state
    return state


def test_the_questions_are_the_scripted_path():
    assert [question for question, _ in ANSWERS] == [question for _, question, _ in RETURNEE_SCRIPT]


@pytest.mark.parametrize("position", range(len(ANSWERS)))
def test_every_way_of_writing_an_answer_is_understood_as_that_answer(bundled, position):
    before = [GREETINGS[0], *[text for text, _, _ in RETURNEE_SCRIPT[:position]]]
    state = _after(bundled, before)
    question, ways = ANSWERS[position]
    assert state.question == question
    for text in ways:
        step = engine.handle(bundled, state, Inbound(text=text, at=AT))
        assert [a.question_id for a in step.answers] == [question], text
        assert step.answers[0].value == EXPECTED[question], text


def test_every_greeting_starts_the_survey(bundled):
    for text in GREETINGS:
        assert engine.handle(bundled, None, Inbound(text=text, at=AT)).state.question == "consent", text


def test_respondents_complete_the_survey_in_different_words(bundled):
    conversations = [conversation(r) for r in range(50)]
    assert len({tuple(c) for c in conversations}) == 50
    for texts in conversations:
        assert _after(bundled, texts).status == engine.COMPLETED
