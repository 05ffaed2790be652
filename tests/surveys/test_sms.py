"""surveys.sms: encoding, characters and segments as the network counts them; surveys.paths: questions asked."""

from __future__ import annotations

import pytest

from surveys import sms
from surveys.loader import load_text
from surveys.paths import paths, question_range

CASES = [
    ("empty", "", "GSM-7", 0, 1),
    ("plain", "Hola", "GSM-7", 4, 1),
    ("spanish-gsm", "¿Qué año? ¡Señor! É ñ ü", "GSM-7", 23, 1),
    ("160", "a" * 160, "GSM-7", 160, 1),
    ("161", "a" * 161, "GSM-7", 161, 2),
    ("306", "a" * 306, "GSM-7", 306, 2),
    ("307", "a" * 307, "GSM-7", 307, 3),
    ("extension-counts-twice", "€" * 80, "GSM-7", 160, 1),
    ("extension-81", "{" * 81, "GSM-7", 162, 2),
    ("accent-forces-ucs2", "Sí", "UCS-2", 2, 1),
    ("70", "á" * 70, "UCS-2", 70, 1),
    ("71", "á" * 71, "UCS-2", 71, 2),
    ("134", "ó" * 134, "UCS-2", 134, 2),
    ("135", "ó" * 135, "UCS-2", 135, 3),
    ("emoji-is-two-units", "👍" * 35, "UCS-2", 70, 1),
    ("curly-quotes", "“Hola”", "UCS-2", 6, 1),
]


@pytest.mark.parametrize(("label", "text", "encoding", "characters", "segments"), CASES, ids=[c[0] for c in CASES])
def test_measure(label, text, encoding, characters, segments):
    assert sms.measure(text) == sms.Measure(encoding, characters, segments)
    assert sms.segments(text) == segments and sms.is_gsm7(text) == (encoding == "GSM-7")


def test_what_forces_ucs2():
    assert sms.non_gsm7("¿Cuántos años? «sí»") == "á«í»"
    assert sms.non_gsm7("¿Cuantos años?") == ""


BRANCHING = """
id: branching
version: 1
title: {es: R}
languages: [es]
default_language: es
eligibility: {question: age, min_age: 18}
consent: {text: {es: "{questions} preguntas. ¿Acepta?"}}
questions:
  - {id: age, type: integer, min: 0, max: 120, text: {es: ¿Edad?}}
  - id: returned
    type: choice
    text: {es: ¿Regresó?}
    choices: [{value: r, label: {es: Sí}}, {value: c, label: {es: No}}]
  - {id: why, type: yes_no, when: returned == 'r', text: {es: ¿Deportado?}}
  - {id: kids, type: integer, min: 0, max: 20, text: {es: ¿Hijos?}}
  - {id: school, type: integer, when: kids > 0 and why == 'yes', text: {es: ¿Escuela?}}
  - {id: retired, type: yes_no, when: age >= 65, text: {es: ¿Jubilado?}}
  - {id: state, type: region, text: {es: ¿Estado?}}
"""


def test_paths_follow_the_conditions_and_count_only_eligible_respondents():
    survey = load_text(BRANCHING)
    found = paths(survey.questions, survey.eligibility)
    assert ("consent", "age", "returned", "why", "kids", "school", "retired", "state") in found
    assert ("consent", "age", "returned", "kids", "state") in found
    assert all("age" in p for p in found)
    assert question_range(survey.questions, survey.eligibility) == (4, 7)
    assert survey.consent.text["es"] == "4 a 7 preguntas. ¿Acepta?"


def test_the_screening_question_must_be_required():
    from surveys.loader import check_text

    source = BRANCHING.replace("{id: age, type: integer,", "{id: age, type: integer, required: false,")
    assert any("eligibility: question 'age' must be required" in p.message for p in check_text(source))
