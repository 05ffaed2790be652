"""What a review found after issue 13 (docs/answers.md): conversations on the bundled survey, in both languages.

A yes or no is a whole reply; a refusal is not a no; a request to stop is a whole message, never words inside an
answer; 'Baja' to the region question asks which Baja; 'casi 18' is under 18 and a minor is asked to confirm the
age before being screened out; sí / no to the work question asks which of the choices that mean it.
"""

from __future__ import annotations

import pytest

from surveys import engine
from surveys.engine import State
from surveys.loader import load_file
from tests.surveys.test_engine import BUNDLED, Conversation

OPTED_OUT = {"es": "Listo, ya no le escribiremos. Para volver, escriba ALTA.",
             "en": "Done, we will not write to you again. To come back, send START."}


@pytest.fixture(scope="module")
def bundled():
    return load_file(BUNDLED)


def _at(definition, question: str, language: str = "es") -> Conversation:
    """A conversation at `question`, as if the questions before it were answered."""
    talk = Conversation(definition)
    talk.state = State(definition.id, definition.version, language, status="in_progress", question=question)
    return talk


# -- 1. a yes or no is a whole reply --------------------------------------------------------------------------


@pytest.mark.parametrize(("language", "text"), [
    ("en", "no problem"), ("es", "no hay problema"), ("es", "no pasa nada"), ("es", "no te preocupes"),
    ("es", "si tuviera dinero"), ("es", "sí, pero rentada"), ("es", "si pero no se por cuanto"),
    ("es", "sí, aunque es prestada"), ("en", "yes but not for long"), ("en", "no worries"),
])
def test_a_reply_that_only_starts_with_a_yes_or_no_word_is_asked_again(bundled, language, text):
    talk = _at(bundled, "housing", language)
    talk.send(text)
    assert "housing" not in talk.stored and talk.question == "housing" and "invalid" in talk.events


@pytest.mark.parametrize(("text", "value"), [
    ("pues este... sí", "yes"), ("claro que sí", "yes"), ("Sí, claro", "yes"), ("no, gracias", "no"),
    ("nel", "no"), ("si tengo", "yes"), ("no tengo", "no"), ("la verdad no", "no"), ("sí, con mis papás", "yes"),
])
def test_a_whole_yes_or_no_with_fillers_is_still_an_answer(bundled, text, value):
    talk = _at(bundled, "housing")
    talk.send(text)
    assert talk.stored["housing"] == value


@pytest.mark.parametrize(("language", "text"), [("en", "no problem"), ("es", "no hay problema"),
                                                 ("es", "sin problema")])
def test_no_problem_agrees_to_take_part(bundled, language, text):
    talk = _at(bundled, "consent", language)
    talk.send(text)
    assert talk.stored["consent"] == "yes" and "consented" in talk.events


# -- 2. a refusal is not a no ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("language", "text"), [
    ("es", "prefiero no contestar"), ("es", "no quiero decir"), ("es", "no le voy a decir"),
    ("en", "rather not say"), ("en", "I'd rather not say"), ("es", "no quiero contestar eso"),
])
@pytest.mark.parametrize("question", ["housing", "accepted", "distress"])
def test_a_refusal_to_a_required_question_is_asked_again_saying_how_to_stop(bundled, language, text, question):
    talk = _at(bundled, question, language)
    replies = talk.send(text)
    assert question not in talk.stored and talk.question == question
    assert talk.events == ["refused"]
    assert replies[0].startswith(bundled.message("refused", language))
    assert ("BAJA" if language == "es" else "STOP") in replies[0]


@pytest.mark.parametrize(("language", "text"), [("es", "prefiero no contestar"), ("en", "rather not say")])
def test_a_refusal_to_an_optional_question_is_a_skip_not_an_answer(bundled, language, text):
    talk = _at(bundled, "community_need", language)
    talk.send(text)
    [answer] = talk.last.answers
    assert (answer.question_id, answer.value, answer.skipped) == ("community_need", None, True)
    assert talk.events[:2] == ["refused", "skipped"]


def test_refusing_again_and_again_pauses_and_stores_nothing(bundled):
    talk = _at(bundled, "housing")
    for _ in range(bundled.max_reprompts + 1):
        talk.send("prefiero no contestar")
    assert "housing" not in talk.stored and talk.state.paused and "paused" in talk.events


def test_a_label_still_wins_over_a_refusal(bundled):
    talk = _at(bundled, "sex")
    talk.send("prefiero no decir")
    assert talk.stored["sex"] == "other"


# -- 3. a request to stop is the whole message ------------------------------------------------------------------


@pytest.mark.parametrize("text", [
    "ya no aguanto", "ya no aguanto, déjame en paz", "no quiero seguir viviendo así",
    "basta de violencia en mi colonia", "ya no puedo más",
])
def test_words_of_a_request_to_stop_inside_an_answer_to_distress_neither_opt_out_nor_answer(bundled, text):
    talk = _at(bundled, "distress")
    talk.send(text)
    assert talk.state.status == "in_progress" and not talk.state.stop_asked
    assert "distress" not in talk.stored and talk.question == "distress"


@pytest.mark.parametrize(("language", "text"), [
    ("es", "basta"), ("es", "ya basta por favor"), ("es", "déjame en paz"), ("es", "ya no me escriban"),
    ("es", "no quiero seguir con esto"), ("en", "stop texting me"), ("en", "leave me alone"),
])
def test_a_whole_request_to_stop_still_asks_to_confirm(bundled, language, text):
    talk = _at(bundled, "distress", language)
    talk.send(text)
    assert talk.state.stop_asked and talk.events == ["stop_asked"]


@pytest.mark.parametrize("text", ["STOP", "stop", "BAJA"])
def test_stop_always_works_on_distress(bundled, text):
    talk = _at(bundled, "distress")
    assert talk.send(text) == [OPTED_OUT["es"]] and talk.state.status == "opted_out"


# -- 4. 'Baja' to the region question ----------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["es", "en"])
def test_baja_to_the_region_question_asks_which_baja_and_again_opts_out(bundled, language):
    talk = _at(bundled, "state", language)
    replies = talk.send("Baja")
    assert talk.state.status == "in_progress" and talk.question == "state" and "state" not in talk.stored
    assert "Baja California" in replies[0] and "Baja California Sur" in replies[0] and "BAJA" in replies[0]
    assert talk.events == ["keyword_region"]
    assert talk.send("BAJA") == [OPTED_OUT[language]] and talk.state.status == "opted_out"


def test_after_which_baja_the_full_name_answers(bundled):
    talk = _at(bundled, "state")
    talk.send("baja")
    talk.send("Baja California Sur")
    assert talk.stored["state"] == "03" and talk.question == "income_covers"


@pytest.mark.parametrize("question", ["consent", "age_band", "housing", "work"])
def test_baja_elsewhere_opts_out_at_once(bundled, question):
    talk = _at(bundled, question)
    assert talk.send("baja") == [OPTED_OUT["es"]] and talk.state.status == "opted_out"


def test_stop_on_the_region_question_opts_out_at_once(bundled):
    talk = _at(bundled, "state")
    assert talk.send("STOP") == [OPTED_OUT["es"]]


# -- 5. eligibility ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("language", "text", "age"), [
    ("es", "casi 18", 17), ("es", "ya casi tengo 18", 17), ("es", "17 y medio", 17), ("en", "almost 18", 17),
    ("es", "voy a cumplir 18", 17), ("es", "15", 15),
])
def test_almost_18_does_not_pass_the_age_screen_and_is_asked_to_confirm(bundled, language, text, age):
    talk = _at(bundled, "age_band", language)
    [asked] = talk.send(text)
    assert talk.stored == {} and talk.state.status == "in_progress" and talk.events == ["confirm_minor"]
    labels = "1) Si\n2) No, me equivoqué" if language == "es" else "1) Yes\n2) No, my mistake"
    assert asked == bundled.message("confirm_age", language, age=age) + "\n" + labels


@pytest.mark.parametrize("confirm", ["1", "si", "sí", "15"])
def test_a_confirmed_minor_is_screened_out(bundled, confirm):
    talk = _at(bundled, "age_band")
    talk.send("15")
    talk.send(confirm)
    assert talk.state.status == "ineligible" and talk.stored == {"age_band": "under_18"}
    assert "minor_confirmed" in talk.events and talk.state.incentive is False


@pytest.mark.parametrize(("replies", "value"), [(["2", "51"], "45-59"), (["no, tengo 51"], "45-59"),
                                                (["51"], "45-59"), (["no", "34"], "25-34")])
def test_a_typo_does_not_drop_an_adult(bundled, replies, value):
    talk = _at(bundled, "age_band")
    talk.send("15")
    for text in replies:
        talk.send(text)
    assert talk.state.status == "in_progress" and talk.stored == {"age_band": value}
    assert talk.question == "returned"


def test_an_option_number_is_confirmed_without_an_age(bundled):
    talk = _at(bundled, "age_band")
    [asked] = talk.send("1")
    assert asked.startswith(bundled.message("confirm_minor", "es", min_age=18) + "\n1) Si")


def test_the_confirmation_is_asked_again_after_help_and_a_request_to_stop_still_works(bundled):
    talk = _at(bundled, "age_band")
    talk.send("casi 18")
    replies = talk.send("ayuda")
    assert replies[-1].startswith(bundled.message("confirm_age", "es", age=17))
    talk.send("ya no me escriban")
    assert talk.state.stop_asked and talk.stored == {}


@pytest.mark.parametrize(("text", "value"), [("ya cumplí 18", "18-24"), ("casi 25", "18-24"), ("34 y medio", "25-34")])
def test_adults_close_to_a_boundary_get_the_right_band(bundled, text, value):
    talk = _at(bundled, "age_band")
    talk.send(text)
    assert talk.stored == {"age_band": value}


def test_buttons_answer_the_confirmation(bundled):
    talk = _at(bundled, "age_band")
    talk.send("16")
    assert [c.data for c in talk.last.replies[0].choices] == ["_confirm=yes", "_confirm=no"]
    talk.send(button="_confirm=no")
    assert talk.question == "age_band" and talk.state.pending is None and talk.stored == {}
    talk.send("16")
    talk.send(button="_confirm=yes")
    assert talk.state.status == "ineligible"


def test_the_state_with_a_pending_confirmation_survives_json(bundled):
    talk = _at(bundled, "age_band")
    talk.send("16")
    talk.state = engine.State.from_dict(talk.state.to_dict())
    talk.send("1")
    assert talk.state.status == "ineligible"


@pytest.mark.parametrize(("text", "goes_on"), [("no, sigo", True), ("no gracias", True), ("sí", False),
                                               ("si por favor", False)])
def test_the_answer_to_the_stop_confirmation_reads_its_punctuation(bundled, text, goes_on):
    talk = _at(bundled, "housing")
    talk.send("ya no me escriban")
    talk.send(text)
    assert (talk.state.status == "in_progress") is goes_on
    if goes_on:
        assert "stop_withdrawn" in talk.events and talk.question == "housing"


def test_a_reply_that_begins_several_region_names_is_asked_which(bundled):
    from surveys.parsers import Rejected, parse_region

    question = bundled.question("state")
    outcome = parse_region(question, "baja", "es")
    assert isinstance(outcome, Rejected) and outcome.reason == "ambiguous"
    assert outcome.detail["regions"] == ["Baja California", "Baja California Sur"]
    talk = _at(bundled, "state")
    replies = talk.send("vivo en baja")
    assert replies[0].startswith(bundled.message("error_region_which", "es",
                                                 regions="Baja California o Baja California Sur"))


def test_a_reminder_while_the_age_is_being_confirmed_asks_the_confirmation(bundled):
    talk = _at(bundled, "age_band")
    talk.send("15")
    [reminder] = engine.remind(bundled, talk.state).replies
    assert reminder.plain() == "¿Tiene 15 años?\n1) Si\n2) No, me equivoqué"
    talk.send("2")
    assert talk.question == "age_band" and talk.stored == {}


@pytest.mark.parametrize(("language", "text"), [("es", "prefiero no decir"), ("en", "prefer not to say")])
def test_a_skip_word_that_refuses_a_required_question_says_how_to_stop(bundled, language, text):
    talk = _at(bundled, "housing", language)
    replies = talk.send(text)
    assert replies[0].startswith(bundled.message("refused", language)) and "housing" not in talk.stored


def test_a_confirmation_never_answered_asks_the_age_afresh(bundled):
    talk = _at(bundled, "age_band")
    talk.send("15")
    for _ in range(bundled.max_reprompts):
        assert talk.send("asdf")[0].startswith("¿Tiene 15 años?")
    replies = talk.send("asdf")
    assert replies[0].startswith("¿Qué edad tiene?") and talk.state.pending is None and talk.stored == {}


# -- no reply crashes the engine ------------------------------------------------------------------------------

WORDS = ["hola", "1", "2", "si", "no", "Jalisco", "AYUDA", "SALTAR", "STOP", "ALTA", "BORRAR", "EN", "ES", "99", "",
         "0", "7", "1 y 9", "baja", "casi 18", "prefiero no decir", "tal vez", "15"]


@pytest.mark.parametrize("question", ["community_need", "work", "health_care", "children_school", "sex", "state",
                                      "age_band", "returned", "migrate_again"])
def test_every_reply_to_every_question_gets_an_answer_not_a_crash(bundled, question):
    """A number out of range on a choice question once crashed the error text (`options` was a count there)."""
    for language in ("es", "en"):
        for text in WORDS:
            talk = _at(bundled, question, language)
            talk.send(text)
