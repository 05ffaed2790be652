"""The engine's side of incentives: promises before consent, withdrawn promises, and the payout-number step."""

from __future__ import annotations

import pytest

from surveys import engine
from surveys.engine import PAYOUT_PHONE, Inbound
from surveys.loader import load_text
from surveys.phones import mobile_number

SHORT = """
id: corta
version: 1
title: {es: Corta, en: Short}
languages: [es, en]
default_language: es
incentive: {amount: 30, currency: MXN, budget: 90}
consent:
  text: {es: ¿Acepta?, en: Agree?}
questions:
  - id: state
    type: region
    text: {es: ¿En qué estado vive?, en: Which state do you live in?}
"""


@pytest.fixture(scope="module")
def short():
    return load_text(SHORT)


class Talk:
    """A respondent on a channel without a phone number (Telegram): the engine asks for one after completing."""

    def __init__(self, definition, ask_phone: bool = True):
        self.d = definition
        self.state = None
        self.events: list[engine.Event] = []
        self.ask_phone = ask_phone

    def send(self, text: str = "", available: bool = True, **inbound) -> list[engine.Reply]:
        step = engine.handle(self.d, self.state, Inbound(text=text, **inbound), incentive_available=available,
                             ask_phone=self.ask_phone, phone_region="MX")
        self.state = step.state
        self.events.extend(step.events)
        self.step = step
        return step.replies

    def kinds(self) -> list[str]:
        return [e.kind for e in self.events]

    def finish(self) -> list[engine.Reply]:
        self.send("hola")
        self.send("si")
        return self.send("jalisco")


def test_completing_on_telegram_asks_for_the_number_to_pay(short):
    talk = Talk(short)
    [reply] = talk.finish()
    assert talk.state.status == "completed"
    assert talk.state.question == PAYOUT_PHONE
    assert reply.text.startswith(short.message("completed", "es"))
    assert "30 MXN" in reply.text and "celular" in reply.text
    assert reply.contact_button == short.message("phone_button", "es")


def test_a_shared_contact_is_the_payout_number(short):
    talk = Talk(short)
    talk.finish()
    [reply] = talk.send("", kind="contact", contact="5215512345678")
    assert talk.state.status == "completed" and talk.state.question is None
    [event] = [e for e in talk.step.events if e.kind == "payout_phone"]
    assert event.detail == {"phone": "+525512345678"}
    assert "5678" in reply.text and reply.close_keyboard
    assert talk.send("hola")[0].text == short.message("already_completed", "es")


@pytest.mark.parametrize("typed", ["55 1234 5678", "mi cel es 044 55 1234 5678", "+52 1 55 1234 5678"])
def test_a_typed_mobile_number_is_accepted(short, typed):
    talk = Talk(short)
    talk.finish()
    talk.send(typed)
    assert [e.detail for e in talk.step.events if e.kind == "payout_phone"] == [{"phone": "+525512345678"}]


def test_a_wrong_number_is_asked_again_then_left_for_later(short):
    talk = Talk(short)
    talk.finish()
    for attempt in range(short.max_reprompts):
        [reply] = talk.send("800 123 4567" if attempt == 0 else "no sé")
        assert reply.text.startswith(short.message("error_phone", "es"))
        assert reply.contact_button
    [reply] = talk.send("12")
    assert reply.text == short.message("phone_later", "es", credit=short.incentive.credit)
    assert talk.state.question == PAYOUT_PHONE, "a later message may still give the number"
    talk.send("5512345678")
    assert "payout_phone" in talk.kinds()


def test_keywords_still_work_while_the_number_is_asked(short):
    talk = Talk(short)
    talk.finish()
    [reply] = talk.send("ENGLISH")
    assert "mobile number" in reply.text and reply.contact_button == short.message("phone_button", "en")
    [reply] = talk.send("AYUDA")
    assert reply.contact_button
    talk.send("STOP")
    assert talk.state.status == "opted_out"
    [reply] = talk.send("ALTA")
    assert talk.state.status == "completed" and reply.contact_button


def test_a_number_already_paid_is_refused_politely(short):
    talk = Talk(short)
    talk.finish()
    [reply] = talk.send("5512345678", available=False)
    assert reply.text == short.message("phone_paid_before", "es")
    assert talk.state.incentive is False and talk.state.question is None
    assert [e.detail for e in talk.step.events if e.kind == "payout_phone_refused"] == [{"phone": "+525512345678"}]


def test_sms_respondents_are_not_asked_for_a_number(short):
    talk = Talk(short, ask_phone=False)
    [reply] = talk.finish()
    assert talk.state.question is None
    assert "30 MXN" in reply.text and reply.contact_button is None


def test_no_number_is_asked_when_nothing_is_due(short):
    talk = Talk(short)
    talk.send("hola", available=False)
    talk.send("si")
    [reply] = talk.send("jalisco")
    assert reply.text == short.message("completed", "es")
    assert talk.state.question is None


def test_a_reservation_refused_at_consent_is_said_before_the_first_question(short):
    talk = Talk(short)
    talk.send("hola")
    assert talk.state.incentive is True
    [reply] = talk.send("si", available=False)
    assert reply.text.startswith(short.message("no_credit", "es"))
    assert "¿En qué estado vive?" in reply.text
    assert talk.state.incentive is False
    [reply] = talk.send("jalisco")
    assert reply.text == short.message("completed", "es")


def test_a_credit_that_cannot_be_recorded_at_completion_is_not_promised(short):
    talk = Talk(short, ask_phone=False)
    talk.send("hola")
    talk.send("si")
    [reply] = talk.send("jalisco", available=False)
    assert reply.text == short.message("completed_no_credit", "es")
    assert talk.state.incentive is False


def test_the_same_message_gives_the_same_step(short):
    """Workers run a message again with incentive_available=False; the engine must not depend on anything else."""
    talk = Talk(short)
    talk.send("hola")
    state = talk.state
    first = engine.handle(short, state, Inbound(text="si"), incentive_available=True)
    again = engine.handle(short, state, Inbound(text="si"), incentive_available=True)
    assert first == again
    assert state.answers == {}, "the input state is not changed"


@pytest.mark.parametrize(
    ("text", "international", "expected"),
    [
        ("5512345678", False, "+525512345678"),
        ("55-1234-5678", False, "+525512345678"),
        ("045 33 3123 4567", False, "+523331234567"),
        ("5215512345678", True, "+525512345678"),
        ("+1 415 555 2671", False, "+14155552671"),
        ("800 123 4567", False, None),
        ("12345", False, None),
        ("", False, None),
        ("sin número", False, None),
    ],
)
def test_mobile_numbers(text, international, expected):
    assert mobile_number(text, "MX", international=international) == expected
