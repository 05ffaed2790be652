"""Whole conversations played in-process against the pure engine."""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from surveys import engine, sms
from surveys.engine import Inbound, State
from surveys.loader import load_file, load_text

DATA = Path(__file__).parent / "data"
BUNDLED = Path(__file__).parents[2] / "surveys" / "definitions" / "reintegracion-mx.yaml"
T0 = datetime(2026, 3, 2, 12, 0)


class Conversation:
    """A respondent talking to the engine; keeps the state and every stored answer like a worker would."""

    def __init__(self, definition, incentive_available: bool = True):
        self.definition = definition
        self.state: State | None = None
        self.stored: dict[str, object] = {}
        self.events: list[str] = []
        self.now = T0
        self.incentive_available = incentive_available

    def send(self, text: str = "", *, after: timedelta = timedelta(minutes=1), button: str | None = None,
             kind: str = "text") -> list[str]:
        self.now += after
        step = engine.handle(
            self.definition,
            self.state,
            Inbound(text=text, button=button, kind=kind, at=self.now),
            incentive_available=self.incentive_available,
        )
        self.state = step.state
        self.stored.update({a.question_id: a.value for a in step.answers})
        self.events.extend(e.kind for e in step.events)
        self.last = step
        return [r.plain() for r in step.replies]

    @property
    def question(self) -> str | None:
        return self.state.question if self.state else None


@pytest.fixture(scope="module")
def bundled():
    return load_file(BUNDLED)


@pytest.fixture(scope="module")
def every_type():
    return load_file(DATA / "every-type.yaml")


def _text(definition, question_id: str, language: str = "es") -> str:
    return definition.question(question_id).text[language]


# -- consent ------------------------------------------------------------------------------------------------


def test_first_message_starts_with_consent(bundled):
    talk = Conversation(bundled)
    replies = talk.send("Hola")
    assert len(replies) == 1
    assert _text(bundled, "consent") in replies[0]
    assert talk.question == "consent"
    assert talk.events == ["started"]
    assert talk.stored == {}


def test_english_greeting_starts_in_english(bundled):
    talk = Conversation(bundled)
    replies = talk.send("hello")
    assert _text(bundled, "consent", "en") in replies[0]
    assert talk.state.language == "en"


def test_declining_stores_only_the_decline(bundled):
    talk = Conversation(bundled)
    talk.send("hola")
    replies = talk.send("no gracias")
    assert talk.state.status == "declined"
    assert talk.stored == {"consent": "no"}
    assert "declined" in talk.events
    assert replies == [bundled.message("declined", "es")]
    later = talk.send("hola otra vez")
    assert "ENCUESTA" in later[0]
    assert talk.state.status == "declined"


def test_declined_respondent_can_start_again_with_a_start_keyword(bundled):
    talk = Conversation(bundled)
    talk.send("hola")
    talk.send("no")
    replies = talk.send("encuesta")
    assert talk.state.status == "in_progress"
    assert _text(bundled, "consent") in replies[0]
    talk.send("si")
    assert talk.question == "age_band"


def test_no_credit_is_said_before_consent_when_the_budget_is_spent(bundled):
    talk = Conversation(bundled, incentive_available=False)
    replies = talk.send("hola")
    assert replies[0].startswith(bundled.message("no_credit", "es"))
    assert _text(bundled, "consent") in "\n".join(replies)
    assert talk.state.incentive is False


# -- the bundled survey end to end ---------------------------------------------------------------------------

RETURNEE_SCRIPT = [
    ("si claro", "consent", "yes"),
    ("32 años", "age_band", "25-34"),
    ("1", "returned", "returnee"),
    ("me deportaron 😔", "return_type", "deported"),
    ("Sí", "assisted", "yes"),
    ("mujer", "sex", "female"),
    ("nuevo leon", "state", "19"),
    ("a veces", "income_covers", "sometimes"),
    ("2.", "work", "own_account"),
    ("no", "skills_used", "no"),
    ("NO", "unfair_work", "no"),
    ("si", "savings_credit", "yes"),
    ("3", "health_care", "not_needed"),
    ("algunos", "children_school", "some"),
    ("sí!", "housing", "yes"),
    ("👍", "id_documents", "yes"),
    ("no", "support_network", "no"),
    ("mas o menos", "accepted", "partly"),
    ("si", "safe", "yes"),
    ("seguido", "distress", "often"),
    ("tal vez", "migrate_again", "maybe"),
    ("1 y 5", "community_need", ["jobs", "safety"]),
]


def test_a_returnee_completes_the_bundled_survey(bundled):
    talk = Conversation(bundled)
    talk.send("Hola")
    for text, question, value in RETURNEE_SCRIPT:
        assert talk.question == question, f"expected to be asked {question}, was asked {talk.question}"
        replies = talk.send(text)
        assert talk.stored[question] == value
        assert replies, f"no reply after answering {question}"
    assert talk.state.status == "completed"
    assert "completed" in talk.events
    assert "30 MXN" in replies[-1]
    assert talk.send("hola") == [bundled.message("already_completed", "es")]


def test_a_community_member_skips_the_returnee_questions(bundled):
    talk = Conversation(bundled)
    talk.send("hola")
    talk.send("si")
    talk.send("40")
    talk.send("nunca me he ido")
    assert talk.stored["returned"] == "community"
    assert talk.question == "sex"
    for question in ("return_type", "assisted"):
        assert question not in talk.stored


def test_every_question_asks_its_text_with_numbered_choices(bundled):
    talk = Conversation(bundled)
    first = talk.send("hola")
    talk.send("si")
    talk.send("40")
    assert "1) " not in first[0]
    returned = talk.last.replies[0]
    assert returned.numbered
    assert returned.plain().splitlines()[0] == _text(bundled, "returned")
    assert "1) Si, y regresé" in returned.plain()
    assert [c.data for c in returned.choices] == ["returned=returnee", "returned=community"]


# -- every question type -------------------------------------------------------------------------------------


def _through_consent(definition) -> Conversation:
    talk = Conversation(definition)
    talk.send("hola")
    talk.send("si")
    return talk


def test_every_type_conversation(every_type):
    talk = _through_consent(every_type)
    script = [
        ("retornado", "kind", "returnee"),
        ("no", "deported", "no"),
        ("1, 3", "needs", ["health", "work"]),
        ("si hay", "clinic", "yes"),
        ("dos hijos", "children", 2),
        ("1", "in_school", 1),
        ("$1,200.50", "income", 1200.5),
        ("15 de marzo de 2024", "returned_on", "2024-03-15"),
        ("CDMX", "state", "09"),
        ("todo bien, gracias", "comment", "todo bien, gracias"),
    ]
    for text, question, value in script:
        assert talk.question == question
        talk.send(text)
        assert talk.stored[question] == value
    assert talk.state.status == "completed"


def test_skip_logic_follows_earlier_answers(every_type):
    talk = _through_consent(every_type)
    talk.send("2")
    assert talk.question == "needs"
    talk.send("escuela")
    assert talk.question == "children"
    talk.send("0")
    assert talk.question == "income"
    assert "deported" not in talk.stored and "clinic" not in talk.stored and "in_school" not in talk.stored


def test_region_typo_asks_for_confirmation(every_type):
    talk = _through_consent(every_type)
    for text in ("2", "nada", "0", "100"):
        talk.send(text)
    talk.send("saltar")
    assert talk.question == "state"
    replies = talk.send("Chiuaua")
    assert "Chihuahua" in replies[0]
    assert "state" not in talk.stored
    talk.send("si")
    assert talk.stored["state"] == "08"
    assert talk.question == "comment"


def test_region_confirmation_refused_asks_again(every_type):
    talk = _through_consent(every_type)
    for text in ("2", "nada", "0", "100", "saltar"):
        talk.send(text)
    talk.send("Chiuaua")
    replies = talk.send("no")
    assert _text(every_type, "state") in replies[0]
    talk.send("Sonora")
    assert talk.stored["state"] == "26"


def test_exclusive_choice_cannot_be_combined(every_type):
    talk = _through_consent(every_type)
    talk.send("2")
    replies = talk.send("1 y nada")
    assert talk.question == "needs"
    assert every_type.message("error_exclusive", "es") in replies[0]


# -- re-prompts ---------------------------------------------------------------------------------------------


def test_invalid_answer_is_reprompted_with_the_reason(every_type):
    talk = _through_consent(every_type)
    for text in ("2", "nada"):
        talk.send(text)
    replies = talk.send("muchos")
    assert talk.question == "children"
    assert replies[0].startswith(every_type.message("error_range", "es", min="0", max="20"))
    assert _text(every_type, "children") in replies[0]
    replies = talk.send("25")
    assert "entre 0 y 20" in replies[0]


def test_required_question_pauses_politely_after_the_reprompt_limit(every_type):
    talk = _through_consent(every_type)
    for text in ("2", "nada"):
        talk.send(text)
    for _ in range(every_type.max_reprompts):
        talk.send("no sé")
        assert talk.question == "children"
    replies = talk.send("no sé")
    assert replies == [every_type.message("paused", "es")]
    assert talk.state.paused and talk.state.status == "in_progress"
    replies = talk.send("hola", after=timedelta(days=1))
    assert every_type.message("welcome_back", "es") in replies[0]
    assert _text(every_type, "children") in replies[0]
    talk.send("3")
    assert talk.stored["children"] == 3


def test_optional_question_is_skipped_after_the_reprompt_limit(every_type):
    talk = _through_consent(every_type)
    for text in ("2", "nada", "0", "100"):
        talk.send(text)
    assert talk.question == "returned_on"
    for _ in range(every_type.max_reprompts):
        talk.send("no me acuerdo bien")
    replies = talk.send("quién sabe")
    assert talk.question == "state"
    assert talk.stored["returned_on"] is None
    assert replies[0].startswith(every_type.message("skipped", "es"))


def test_skip_word_skips_optional_but_not_required(every_type):
    talk = _through_consent(every_type)
    replies = talk.send("saltar")
    assert talk.question == "kind"
    assert every_type.message("required", "es") in replies[0]
    for text in ("2", "nada", "0", "100"):
        talk.send(text)
    talk.send("SALTAR")
    assert talk.question == "state"
    assert talk.stored["returned_on"] is None
    assert "skipped" in talk.events


def test_custom_error_message(every_type):
    talk = _through_consent(every_type)
    for text in ("2", "nada", "0", "100", "saltar", "jalisco"):
        talk.send(text)
    replies = talk.send("x" * 41)
    assert replies[0].startswith("Máximo 40 letras.")


# -- keywords -----------------------------------------------------------------------------------------------

QUESTION_POSITIONS = [0, 1, 3, 7, 12, 21]


@pytest.mark.parametrize("answered", QUESTION_POSITIONS)
@pytest.mark.parametrize("word", ["STOP", "baja", "Alto.", "cancelar", "unsubscribe"])
def test_stop_at_any_point_ends_every_message_until_start(bundled, answered, word):
    talk = Conversation(bundled)
    talk.send("hola")
    for text, _, _ in RETURNEE_SCRIPT[:answered]:
        talk.send(text)
    asked = talk.question
    replies = talk.send(word)
    assert replies == [bundled.message("opted_out", "es")]
    assert talk.state.status == "opted_out"
    for text in ("hola", "1", "ayuda", "si"):
        assert talk.send(text) == []
    replies = talk.send("ALTA")
    assert talk.state.status == "in_progress"
    assert talk.question == asked
    assert replies[0].startswith(bundled.message("opted_in", "es"))
    assert _text(bundled, asked) in "\n".join(replies)


def test_stop_as_very_first_message(bundled):
    talk = Conversation(bundled)
    assert talk.send("STOP") == [bundled.message("opted_out", "es")]
    assert talk.send("hola") == []
    replies = talk.send("start")
    assert _text(bundled, "consent") in replies[0]


@pytest.mark.parametrize("answered", QUESTION_POSITIONS)
@pytest.mark.parametrize("word", ["AYUDA", "help", "Ayuda!"])
def test_help_at_any_point_repeats_the_question(bundled, answered, word):
    talk = Conversation(bundled)
    talk.send("hola")
    for text, _, _ in RETURNEE_SCRIPT[:answered]:
        talk.send(text)
    asked = talk.question
    replies = talk.send(word)
    assert talk.question == asked
    assert replies[0].startswith("Programa Retorno: 55 1234 5678")
    assert _text(bundled, asked) in "\n".join(replies)
    assert all(sms.segments(reply) == 1 for reply in replies)
    assert "help" in talk.events


def test_help_after_completion(bundled):
    talk = Conversation(bundled)
    talk.send("hola")
    for text, _, _ in RETURNEE_SCRIPT:
        talk.send(text)
    replies = talk.send("ayuda")
    assert replies[0].startswith("Programa Retorno: 55 1234 5678")
    assert bundled.message("already_completed", "es") in "\n".join(replies)


def test_language_switch_mid_survey_repeats_the_question_in_english(bundled):
    talk = Conversation(bundled)
    talk.send("hola")
    for text, _, _ in RETURNEE_SCRIPT[:6]:
        talk.send(text)
    assert talk.question == "state"
    replies = talk.send("ENGLISH")
    assert talk.state.language == "en"
    assert replies[0].startswith(bundled.message("language_changed", "en"))
    assert _text(bundled, "state", "en") in replies[0]
    talk.send("Jalisco")
    assert talk.stored["state"] == "14"
    replies = talk.send("yes")
    assert talk.stored["income_covers"] == "yes"
    assert _text(bundled, "work", "en") in replies[0]
    replies = talk.send("español")
    assert _text(bundled, "work", "es") in replies[0]
    replies = talk.send("idioma")
    assert talk.state.language == "en"


def test_answers_in_the_other_language_are_understood(bundled):
    talk = Conversation(bundled)
    talk.send("hola")
    talk.send("yes")
    talk.send("I am 40")
    talk.send("I never left")
    assert talk.stored == {"consent": "yes", "age_band": "35-44", "returned": "community"}


# -- time and versions ---------------------------------------------------------------------------------------


def test_resume_after_a_pause_does_not_count_a_failed_attempt(bundled):
    talk = Conversation(bundled)
    talk.send("hola")
    for text, _, _ in RETURNEE_SCRIPT[:8]:
        talk.send(text)
    asked = talk.question
    replies = talk.send("hola, ya regresé", after=timedelta(days=3))
    assert talk.question == asked
    assert talk.state.attempts == 0
    assert replies[0].startswith(bundled.message("welcome_back", "es"))
    talk.send("2", after=timedelta(minutes=2))
    assert talk.stored[asked] == "own_account"


def test_a_valid_answer_after_a_pause_is_taken(bundled):
    talk = Conversation(bundled)
    talk.send("hola")
    talk.send("si")
    talk.send("35", after=timedelta(days=2))
    assert talk.stored["age_band"] == "35-44"


def test_survey_edited_while_respondents_are_in_the_middle(every_type):
    source = (DATA / "every-type.yaml").read_text()
    edited_source = (
        source.replace("version: 1", "version: 2")
        .replace("¿Cuántos hijos tiene?", "¿Cuántas hijas e hijos tiene?")
        .replace("      - {value: work, label: {es: Trabajo, en: Work}}\n", "")
    )
    v2 = load_text(edited_source)
    assert v2.version == 2 and every_type.version == 1
    talk = _through_consent(every_type)
    talk.send("2")
    replies = talk.send("3")
    assert talk.stored["needs"] == ["work"]
    assert _text(every_type, "children") in replies[0]
    talk.send("1")
    assert talk.stored["children"] == 1
    with pytest.raises(ValueError):
        engine.handle(v2, talk.state, Inbound("1"))
    fresh = _through_consent(v2)
    fresh.send("2")
    assert "Trabajo" not in fresh.send("hola")[0]
    assert fresh.question == "needs"
    fresh.send("2")
    assert fresh.stored["needs"] == ["school"]
    assert _text(v2, "children") in fresh.last.replies[0].text


def test_state_survives_a_json_round_trip(bundled):
    talk = Conversation(bundled)
    talk.send("hola")
    talk.send("si")
    talk.send("30")
    talk.send("1")
    restored = State.from_dict(talk.state.to_dict())
    assert restored == talk.state
    step = engine.handle(bundled, restored, Inbound("deportado", at=T0 + timedelta(hours=1)))
    assert step.answers[0].value == "deported"


def test_engine_does_not_mutate_the_state_it_is_given(bundled):
    talk = Conversation(bundled)
    talk.send("hola")
    before = replace(talk.state, answers=dict(talk.state.answers))
    engine.handle(bundled, talk.state, Inbound("si"))
    assert talk.state == before


# -- Telegram buttons and other inputs ---------------------------------------------------------------------


def test_button_press_answers_the_question(bundled):
    talk = Conversation(bundled)
    talk.send("/start")
    talk.send(button="consent=yes")
    assert talk.stored == {"consent": "yes"}
    talk.send(button="age_band=25-34")
    talk.send(button="returned=community")
    assert talk.stored["returned"] == "community"


def test_button_from_an_earlier_question_is_not_taken(bundled):
    talk = Conversation(bundled)
    talk.send("hola")
    talk.send(button="consent=yes")
    replies = talk.send(button="consent=no")
    assert talk.state.status == "in_progress"
    assert talk.question == "age_band"
    assert replies[0].startswith(bundled.message("stale_button", "es"))


def test_photos_and_stickers_get_a_hint(bundled):
    talk = Conversation(bundled)
    talk.send("hola")
    replies = talk.send("", kind="sticker")
    assert replies[0].startswith(bundled.message("media", "es"))
    assert talk.question == "consent"
    assert talk.state.attempts == 0


def test_telegram_start_command_with_bot_name(bundled):
    talk = Conversation(bundled)
    replies = talk.send("/start@RetornoBot")
    assert _text(bundled, "consent") in replies[0]


def test_invite_and_remind_and_expire(bundled):
    step = engine.invite(bundled)
    assert _text(bundled, "consent") in step.replies[0].text
    reminder = engine.remind(bundled, step.state)
    assert reminder.replies[0].text == step.replies[0].text
    expired = engine.expire(bundled, step.state)
    assert expired.state.status == "expired"
    assert [e.kind for e in expired.events] == ["expired"]
    after = engine.handle(bundled, expired.state, Inbound("si"))
    assert after.replies[0].text == bundled.message("expired", "es")
