"""Answers mean what respondents meant (issue 13): conversations on the bundled survey, in Spanish and English.

Confusion and doubt are asked again with the question's hint; a yes or no is a whole reply; a plain sí / no picks
the choice that means it; plain-language requests to stop ask once to confirm; labels win over skip words and
keywords; minors are screened out; every built-in message is GSM-7 in one SMS segment.
"""

from __future__ import annotations

import re
from datetime import timedelta

import pytest

from surveys import engine, sms
from surveys.engine import State
from surveys.loader import load_file, load_text
from surveys.messages import DEFAULT_MESSAGES, TELEGRAM_ONLY
from tests.surveys.test_engine import BUNDLED, RETURNEE_SCRIPT, Conversation

ENGLISH_SCRIPT = [
    ("yes", "consent", "yes"),
    ("I'm 32", "age_band", "25-34"),
    ("yes", "returned", "returnee"),
    ("I was deported", "return_type", "deported"),
    ("yeah", "assisted", "yes"),
    ("woman", "sex", "female"),
    ("Nuevo Leon", "state", "19"),
    ("sometimes", "income_covers", "sometimes"),
    ("I work for myself", "work", "own_account"),
    ("nope", "skills_used", "no"),
    ("no", "unfair_work", "no"),
    ("yes I do", "savings_credit", "yes"),
    ("not needed", "health_care", "not_needed"),
    ("some", "children_school", "some"),
    ("yes", "housing", "yes"),
    ("yep", "id_documents", "yes"),
    ("no", "support_network", "no"),
    ("somewhat", "accepted", "partly"),
    ("yes", "safe", "yes"),
    ("often", "distress", "often"),
    ("maybe", "migrate_again", "maybe"),
    ("1 and 5", "community_need", ["jobs", "safety"]),
]


@pytest.fixture(scope="module")
def bundled():
    return load_file(BUNDLED)


def _at(definition, question: str, language: str = "es") -> Conversation:
    """A conversation that has just been asked `question` (the returnee's path)."""
    talk = Conversation(definition)
    talk.send("hola" if language == "es" else "hello")
    script = RETURNEE_SCRIPT if language == "es" else ENGLISH_SCRIPT
    for text, asked, _ in script:
        if talk.question == question:
            break
        assert talk.question == asked
        talk.send(text)
    assert talk.question == question
    return talk


def _said(replies: list[str]) -> str:
    return "\n".join(replies)


# -- 1. precision first ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["es", "en"])
def test_confusion_is_never_stored_on_any_question(bundled, language):
    confused = {"es": ["no entiendo", "¿qué?", "perdón, no entendí la pregunta", "no me acuerdo", "?", "cómo así"],
                "en": ["no idea", "no clue what you mean", "what do you mean?", "which one", "huh?", "idk"]}[language]
    talk = Conversation(bundled)
    talk.send("hola" if language == "es" else "hello")
    script = RETURNEE_SCRIPT if language == "es" else ENGLISH_SCRIPT
    asked = 0
    while talk.state.status == "in_progress":
        question = talk.question
        stored = dict(talk.stored)
        knows = any(c.means == "dont_know" for c in bundled.question(question).choices)
        for text in [] if knows else confused[: bundled.max_reprompts]:
            talk.send(text)
            assert talk.stored == stored, f"{text!r} was stored on {question}"
            assert talk.question == question
        talk.send(next(t for t, q, _ in script if q == question))
        asked += 1
    assert talk.state.status == "completed" and asked == 22
    assert talk.stored == {q: v for _, q, v in script}


@pytest.mark.parametrize(("language", "text"), [("es", "no sé si cuenta el DIF"), ("en", "not sure if DIF counts")])
def test_doubt_is_asked_again_with_the_questions_hint(bundled, language, text):
    talk = _at(bundled, "assisted", language)
    replies = talk.send(text)
    assert "assisted" not in talk.stored
    hint = bundled.question("assisted").hint[language]
    assert replies[0].startswith(hint)
    assert bundled.question("assisted").text[language] in _said(replies)
    assert ["invalid"] == [e.kind for e in talk.last.events]
    assert talk.last.events[0].detail["reason"] == "unsure"
    talk.send("sí" if language == "es" else "yes")
    assert talk.stored["assisted"] == "yes"


@pytest.mark.parametrize("language", ["es", "en"])
def test_without_a_hint_the_options_are_given_again(bundled, language):
    talk = _at(bundled, "sex", language)
    replies = talk.send("no entiendo" if language == "es" else "what do you mean")
    assert replies[0].startswith(bundled.message("unsure_choice", language))
    assert "1) " in replies[0] and "sex" not in talk.stored


@pytest.mark.parametrize(("text", "value"), [
    ("no, gracias", "no"), ("sí claro", "yes"), ("nel", "no"), ("pues sí", "yes"), ("no tengo", "no"),
    ("nope", "no"), ("yeah sure", "yes"), ("I don't", "no"),
])
def test_a_whole_yes_or_no_with_fillers_is_an_answer(bundled, text, value):
    talk = _at(bundled, "assisted")
    talk.send(text)
    assert talk.stored["assisted"] == value


@pytest.mark.parametrize("text", ["no siempre", "sí pero no", "no mucho", "tengo", "nomás a veces"])
def test_a_reply_that_only_starts_with_no_or_contains_si_is_not_a_yes_or_no(bundled, text):
    talk = _at(bundled, "assisted")
    talk.send(text)
    assert "assisted" not in talk.stored


@pytest.mark.parametrize(("language", "text"), [("es", "no sé"), ("es", "quién sabe"), ("en", "not sure")])
def test_a_dont_know_choice_takes_dont_know(bundled, language, text):
    talk = _at(bundled, "migrate_again", language)
    talk.send(text)
    assert talk.stored["migrate_again"] == "maybe"


# -- 2. sí / no to choices that mean yes and no ------------------------------------------------------------------


@pytest.mark.parametrize(("language", "text", "value"), [
    ("es", "sí", "returnee"), ("es", "no", "community"), ("es", "nop", "community"), ("es", "claro", "returnee"),
    ("en", "yes", "returnee"), ("en", "no", "community"), ("en", "nope", "community"),
])
def test_si_and_no_pick_the_choices_that_mean_them(bundled, language, text, value):
    talk = _at(bundled, "returned", language)
    talk.send(text)
    assert talk.stored["returned"] == value


def test_the_loader_infers_means_for_two_choices_that_start_with_si_and_no(bundled):
    assert [c.means for c in bundled.question("returned").choices] == ["yes", "no"]
    assert [c.means for c in bundled.question("sex").choices] == [None, None, None]


@pytest.mark.parametrize(("language", "text", "options"), [
    ("es", "sí", "1 o 2"), ("es", "si", "1 o 2"), ("es", "no", "3 o 4"), ("es", "nop", "3 o 4"),
    ("en", "yes", "1 or 2"), ("en", "no", "3 or 4"), ("en", "nope", "3 or 4"),
])
def test_a_yes_that_means_several_choices_asks_which(bundled, language, text, options):
    talk = _at(bundled, "returned", language)
    talk.state = State(bundled.id, bundled.version, language, status="in_progress", question="work")
    replies = talk.send(text)
    assert "work" not in talk.stored  # never 'no' -> the first label with 'no' in it ('No busco trabajo')
    assert replies[0].startswith(bundled.message("error_means", language, options=options))
    talk.send("no, busco trabajo" if language == "es" else "no, I am looking for work")
    assert talk.stored["work"] == "looking"


# -- 3. plain-language requests to stop ------------------------------------------------------------------------


@pytest.mark.parametrize(("language", "text"), [
    ("es", "ya no me escriban"), ("es", "Basta!"), ("es", "no quiero seguir"), ("es", "déjenme en paz"),
    ("es", "quítenme de la lista por favor"), ("en", "stop texting me"), ("en", "leave me alone"),
])
def test_a_plain_request_to_stop_asks_once_to_confirm_with_the_keyword(bundled, language, text):
    talk = _at(bundled, "sex", language)
    replies = talk.send(text)
    assert replies == [bundled.message("opt_out_confirm", language)]
    assert "sex" not in talk.stored and talk.state.status == "in_progress" and talk.state.stop_asked
    assert engine.remind(bundled, talk.state).replies == [], "no reminder while it waits"
    replies = talk.send("BAJA" if language == "es" else "STOP")
    assert talk.state.status == "opted_out"
    assert replies == [bundled.message("opted_out", language)]


@pytest.mark.parametrize("second", ["ya basta", "sí", "no me escriban más"])
def test_a_second_request_or_a_yes_opts_out(bundled, second):
    talk = _at(bundled, "sex")
    talk.send("ya no me escriban")
    talk.send(second)
    assert talk.state.status == "opted_out" and "opted_out" in talk.events


def test_a_no_to_the_confirmation_goes_on_and_an_answer_is_taken(bundled):
    talk = _at(bundled, "sex")
    talk.send("no quiero seguir")
    replies = talk.send("no")
    assert replies[0].startswith(bundled.message("opt_out_cancelled", "es"))
    assert bundled.question("sex").text["es"] in _said(replies)
    assert not talk.state.stop_asked and talk.state.status == "in_progress"
    talk.send("basta")
    talk.send("mujer", after=timedelta(hours=2))
    assert talk.stored["sex"] == "female" and not talk.state.stop_asked


def test_no_quiero_participar_to_the_consent_is_a_decline(bundled):
    talk = Conversation(bundled)
    talk.send("hola")
    talk.send("no quiero participar")
    assert talk.state.status == "declined" and talk.stored == {"consent": "no"}


# -- 4. labels win over skip words and keywords --------------------------------------------------------------


@pytest.mark.parametrize(("language", "text"), [("es", "prefiero no decir"), ("en", "prefer not to say")])
def test_a_label_that_is_a_skip_word_answers(bundled, language, text):
    talk = _at(bundled, "sex", language)
    replies = talk.send(text)
    assert talk.stored["sex"] == "other"
    assert bundled.message("required", language) not in _said(replies)


HELPFUL = """
id: help-label
version: 1
title: {es: Apoyos, en: Support}
languages: [es, en]
default_language: es
consent: {text: {es: ¿Acepta?, en: Agree?}}
questions:
  - id: support
    type: choice
    required: false
    text: {es: ¿Qué recibió?, en: What did you get?}
    choices:
      - {value: government, label: {es: Ayuda del gobierno, en: Government help}}
      - {value: family, label: {es: Mi familia, en: My family}}
      - {value: none, label: {es: Nada, en: Nothing}}
  - id: state
    type: region
    text: {es: ¿Estado?, en: State?}
"""


def test_a_label_that_contains_a_keyword_answers_and_help_still_works_elsewhere():
    survey = load_text(HELPFUL)
    talk = Conversation(survey)
    talk.send("hola")
    talk.send("si")
    talk.send("ayuda")
    assert talk.stored["support"] == "government"
    replies = talk.send("ayuda")
    assert "help" in talk.events and talk.question == "state" and replies[0].startswith("Apoyos")


# -- 5. eligibility ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("language", "text"), [("es", "15"), ("es", "17 años"), ("es", "1"), ("en", "I'm 16")])
def test_a_minor_is_thanked_and_ended_keeping_only_the_screening_answer(bundled, language, text):
    talk = Conversation(bundled)
    talk.send("hola" if language == "es" else "hello")
    talk.send("si" if language == "es" else "yes")
    [asked] = talk.send(text)
    assert talk.state.status == "in_progress" and talk.state.answers == {"consent": "yes"}  # asked to confirm
    assert asked.endswith("\n1) Si\n2) No, me equivoqué" if language == "es" else "\n1) Yes\n2) No, my mistake")
    replies = talk.send("1")
    assert talk.state.status == "ineligible"
    assert replies == [bundled.message("ineligible", language, min_age=18)]
    assert [(a.question_id, a.value) for a in talk.last.answers] == [("age_band", "under_18")]
    assert talk.state.answers == {"age_band": "under_18"} and talk.state.incentive is False
    [ineligible] = [e for e in talk.last.events if e.kind == "ineligible"]
    assert ineligible.detail == {"kept": ["age_band"]}
    assert talk.send("hola") == [bundled.message("ineligible", language, min_age=18)]
    assert talk.state.status == "ineligible" and engine.remind(bundled, talk.state).replies == []
    assert "paid" not in " ".join(talk.events)


def test_an_adult_goes_on(bundled):
    talk = _at(bundled, "age_band")
    talk.send("18")
    assert talk.stored["age_band"] == "18-24" and talk.question == "returned"


def test_the_minors_message_is_fit_for_a_minor(bundled):
    for language in bundled.languages:
        text = bundled.message("ineligible", language, min_age=18)
        assert "18" in text and sms.measure(text).segments == 1 and sms.is_gsm7(text)
        assert not re.search(r"saldo|credit|BAJA|STOP", text)


# -- 6. SMS cost ---------------------------------------------------------------------------------------------------


VALUES = {"credit": "30 MXN", "amount": "30", "currency": "MXN", "keyword": "ENCUESTA", "min_age": "18",
          "ending": "5678", "label": "Baja California Sur", "regions": "Baja California o Baja California Sur",
          "age": "17", "options": "1, 2, 3 o 4", "min": "0", "max": "1000000", "max_length": "1000",
          "contact": "Programa Retorno: 55 1234 5678 (lun a vie, 9 a 18 h)", "title": "Reintegracion en Mexico"}


@pytest.mark.parametrize("key", sorted(set(DEFAULT_MESSAGES) - TELEGRAM_ONLY))
def test_every_built_in_message_is_gsm7_and_one_segment_in_both_languages(key):
    for language in ("es", "en"):
        text = DEFAULT_MESSAGES[key][language].format(**VALUES)
        assert sms.is_gsm7(text), f"{key} ({language}) is UCS-2 because of {sms.non_gsm7(text)!r}"
        assert sms.segments(text) == 1, f"{key} ({language}) takes {sms.segments(text)} segments"


@pytest.mark.parametrize("language", ["es", "en"])
def test_every_message_of_the_bundled_survey_is_one_segment(bundled, language):
    for question in bundled.questions:
        sent = engine.rehearse(bundled, question.id, language)
        for kind, variants in sent.items():
            for replies in variants:
                for reply in replies:
                    measure = sms.measure(reply.plain())
                    assert (measure.encoding, measure.segments) == ("GSM-7", 1), (question.id, kind, reply.plain())


def test_a_reprompt_that_would_not_fit_goes_before_the_question_as_its_own_message(bundled):
    talk = _at(bundled, "consent")
    replies = talk.send("xyz")
    assert len(replies) == 2 and replies[0] == bundled.message("error_yes_no", "es")
    assert all(sms.segments(r) == 1 for r in replies)
    talk = _at(bundled, "sex")
    [reply] = talk.send("xyz")
    assert reply.startswith(bundled.message("error_choice", "es")) and sms.segments(reply) == 1


# -- 7. consistent words; HELP with a person to reach ---------------------------------------------------------------


def test_the_credit_is_written_the_same_way_everywhere(bundled):
    consent = bundled.consent.text
    assert "30 MXN" in consent["es"] and "30 MXN" in consent["en"]
    for key in ("completed_incentive", "ask_phone", "phone_saved", "phone_later", "credit_sent"):
        for language in ("es", "en"):
            assert "{credit}" in DEFAULT_MESSAGES[key][language]
            assert "{amount}" not in DEFAULT_MESSAGES[key][language]
    talk = Conversation(bundled)
    talk.send("hola")
    for text, _, _ in RETURNEE_SCRIPT:
        replies = talk.send(text)
    assert "saldo de 30 MXN" in replies[-1]


def test_greetings_are_not_gendered():
    spanish = " ".join(texts["es"] for texts in DEFAULT_MESSAGES.values())
    assert not re.search(r"\b(bienvenid[oa]|seguro\b|segura\b|listo para|lista para)", spanish, re.I)
    assert DEFAULT_MESSAGES["opted_in"]["es"] == "Gracias por volver."


def test_the_consent_says_the_number_of_questions_a_respondent_can_get(bundled):
    assert bundled.question_range == (18, 21)
    assert "18 a 21 preguntas" in bundled.consent.text["es"]
    assert "18 to 21 questions" in bundled.consent.text["en"]
    community = Conversation(bundled)
    community.send("hola")
    for text in ("si", "40", "no"):
        community.send(text)
    asked = {community.question}
    while community.state.status == "in_progress":
        community.send(next(t for t, q, _ in RETURNEE_SCRIPT if q == community.question))
        asked.add(community.question)
    assert len(asked - {None}) + 2 == 18, "age and returned, then the rest"


def test_a_single_count_or_none_at_all():
    source = HELPFUL.replace("{es: ¿Acepta?, en: Agree?}", "{es: '{questions} preguntas. ¿Acepta?', en: Agree?}")
    assert load_text(source).consent.text["es"] == "2 preguntas. ¿Acepta?"
    assert load_text(HELPFUL).consent.text["es"] == "¿Acepta?"


@pytest.mark.parametrize("language", ["es", "en"])
def test_help_names_the_programme_and_a_person_to_reach(bundled, language):
    talk = _at(bundled, "state", language)
    replies = talk.send("AYUDA" if language == "es" else "HELP")
    assert replies[0].startswith(bundled.contact[language])
    assert "55 1234 5678" in replies[0]
    assert all(sms.is_gsm7(r) and sms.segments(r) == 1 for r in replies)
    assert bundled.question("state").text[language] in _said(replies)


def test_help_without_a_contact_names_the_survey():
    talk = Conversation(load_text(HELPFUL))
    talk.send("hola")
    replies = talk.send("help")
    assert replies[0].startswith("Support.") or replies[0].startswith("Apoyos.")


def test_ya_no_me_escriban_to_the_consent_asks_to_confirm(bundled):
    talk = Conversation(bundled)
    talk.send("hola")
    assert talk.send("ya no me escriban") == [bundled.message("opt_out_confirm", "es")]
    assert talk.state.stop_asked and talk.stored == {}
