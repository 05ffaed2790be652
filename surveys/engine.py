"""The conversation engine: (definition, state, inbound message) -> (new state, answers, replies, events).

Pure: no clock, no database, no network. The caller passes the time of the message and whether an incentive can
still be paid; it stores the answers, sends the replies and acts on the events.

`incentive_available` means "this respondent can be promised (and kept) the survey's credit now": checked when
the survey starts (before consent), at consent, at completion and when a payout number is given. A caller that
could not reserve or record the credit runs the same message again with False, and the engine says so.
With `ask_phone` (channels without a phone number, e.g. Telegram), a completed survey that earns credit asks for
the mobile number to pay (a post-completion step; the status stays "completed").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Any

from surveys import messages as builtin
from surveys import sms
from surveys.definition import CONSENT_ID, Definition, Question
from surveys.memo import IdentityMemo
from surveys.parsers import (
    Accepted,
    Rejected,
    Unsure,
    age_said,
    names_choice,
    parse_answer,
    refuses,
    yes_or_no,
)
from surveys.phones import mobile_number
from surveys.text import SHORT, normalize, squeeze

NEW, IN_PROGRESS, COMPLETED, DECLINED, OPTED_OUT, EXPIRED, INELIGIBLE = (
    "new", "in_progress", "completed", "declined", "opted_out", "expired", "ineligible"
)
CONFIRM = "_confirm"
_DEFAULT_STARTS = frozenset(normalize(k) for k in builtin.DEFAULT_START_KEYWORD.values())
PAYOUT_PHONE = "_payout_phone"
_BOT_SUFFIX = re.compile(r"^(/\w+)@\w+", re.ASCII)
RESUMING_KINDS = ("call", "repeat")
"""Inbound kinds that answer nothing: a call that begins ('call': where do I stand?) and a caller's `*` ('repeat').
Both say the current question again, without counting a mistake; a new respondent starts the survey."""


@dataclass
class State:
    """Where one respondent stands in one survey; stored as JSON between messages."""

    survey_id: str
    version: int
    language: str
    status: str = NEW
    question: str | None = None
    attempts: int = 0
    pending: dict[str, Any] | None = None
    answers: dict[str, Any] = field(default_factory=dict)
    paused: bool = False
    incentive: bool = True
    resume_status: str | None = None
    last_at: str | None = None
    erase_pending: bool = False
    """The respondent asked to erase their data; the same keyword again confirms."""
    stop_asked: bool = False
    """Asked to confirm a plain-language request to stop: nothing is sent (no reminder) until they write."""
    keyword_region: bool = False
    """Asked which region an opt-out keyword that begins region names meant ('Baja'); the keyword again opts out."""

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready copy that shares no list or dict with this state."""
        return {name: _copied(value) for name, value in self.__dict__.items()}

    def copy(self) -> State:
        """A copy whose answers can change without changing this state's."""
        return State(**{**self.__dict__, "answers": dict(self.answers)})

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> State:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)


def _copied(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _copied(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_copied(v) for v in value]
    return value


@dataclass(frozen=True)
class Inbound:
    """What a respondent sent: text, or a button press (`qid=value`), or something that is not text."""

    text: str = ""
    button: str | None = None
    kind: str = "text"
    at: datetime | None = None
    language_hint: str | None = None
    contact: str | None = None
    """The phone number of a shared contact card (Telegram's share-contact button)."""
    channel: str | None = None
    """Where it was said: on 'voice', questions the survey does not ask by voice are passed over."""


@dataclass(frozen=True)
class ReplyChoice:
    value: str
    label: str
    data: str


@dataclass(frozen=True)
class Reply:
    """One outgoing message; `choices` become numbered lines on SMS and buttons on Telegram."""

    text: str
    question_id: str | None = None
    choices: tuple[ReplyChoice, ...] = ()
    numbered: bool = False
    multi: bool = False
    contact_button: str | None = None
    """Label of a button that shares the respondent's own phone number (channels that have one)."""
    close_keyboard: bool = False
    """Remove a share-number button shown earlier."""

    def plain(self) -> str:
        """The message for text-only channels (SMS, WhatsApp, console)."""
        if not self.numbered or not self.choices:
            return self.text
        lines = [f"{i}) {c.label}" for i, c in enumerate(self.choices, 1)]
        return "\n".join([self.text, *lines])


@dataclass(frozen=True)
class Answer:
    question_id: str
    value: Any
    skipped: bool = False


@dataclass(frozen=True)
class Event:
    kind: str
    question_id: str | None = None
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class Step:
    state: State
    answers: list[Answer] = field(default_factory=list)
    replies: list[Reply] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)


def new_state(definition: Definition, inbound: Inbound | None = None) -> State:
    """A fresh state for a contact the survey has not met yet, in the language they most likely speak."""
    return State(survey_id=definition.id, version=definition.version, language=_guess_language(definition, inbound))


def handle(
    definition: Definition,
    state: State | None,
    inbound: Inbound,
    incentive_available: bool = True,
    ask_phone: bool = False,
    phone_region: str = "MX",
) -> Step:
    """Advance one respondent's conversation by one inbound message.

    `ask_phone`: after completing, ask for the mobile number to pay (numbers without +country are read in
    `phone_region`).
    """
    if state is None:
        state = new_state(definition, inbound)
    if (state.survey_id, state.version) != (definition.id, definition.version):
        raise ValueError(
            f"state is for {state.survey_id} v{state.version}, definition is {definition.id} v{definition.version}"
        )
    turn = _Turn(definition, state.copy(), inbound, incentive_available, ask_phone, phone_region)
    return turn.run()


def invite(definition: Definition, state: State | None = None, incentive_available: bool = True) -> Step:
    """Begin the survey without an inbound message (a campaign invitation): the consent question."""
    state = state or new_state(definition)
    turn = _Turn(definition, state.copy(), Inbound(), incentive_available)
    turn.start()
    return turn.step


def remind(definition: Definition, state: State) -> Step:
    """Ask the current question again (a campaign reminder); nothing when there is nothing to ask, or when the
    respondent asked to stop and has not written since."""
    turn = _Turn(definition, state.copy(), Inbound(), True)
    if state.status == IN_PROGRESS and state.question and not state.stop_asked:
        question = definition.question(state.question)
        if state.pending is not None and state.pending.get("minor"):
            turn.ask_minor_confirmation(question, state.pending.get("age"))  # '2' must still mean 'my mistake'
        else:
            turn.ask(question)
    return turn.step


_REHEARSED_REASONS = {
    "choice": ("not_understood", "ambiguous", "unsure", "means"),
    "multi": ("not_understood", "ambiguous", "exclusive", "unsure"),
    "yes_no": ("not_understood", "ambiguous", "unsure"),
    "integer": ("not_a_number", "too_small", "too_large", "unsure"),
    "decimal": ("not_a_number", "too_small", "too_large", "unsure"),
    "text": ("empty", "too_long", "unsure"),
    "date": ("not_a_date", "ambiguous", "unsure"),
    "region": ("unknown_region", "ambiguous", "unsure"),
}


def rehearse(definition: Definition, question_id: str, language: str) -> dict[str, list[list[Reply]]]:
    """What the engine can send about one question, to measure it: the question as asked, each re-prompt (one
    per kind of mistake; a region's "did you mean" too) and the answer to HELP. Nothing is stored."""
    question = definition.question(question_id)
    state = State(definition.id, definition.version, language, status=IN_PROGRESS, question=question_id)

    def turn() -> _Turn:
        return _Turn(definition, state.copy(), Inbound(), True)

    asked = turn()
    asked.ask(question)
    reprompts = []
    for reason in _REHEARSED_REASONS.get(question.type, ("not_understood",)):
        wrong = turn()
        detail: dict[str, Any] = {"max_length": question.max_length or ""}
        if reason == "means":
            reason, detail["options"] = "ambiguous", list(range(1, len(question.choices) + 1))
        wrong.reject(question, Rejected(reason, detail))
        reprompts.append(wrong.step.replies)
    if question.type == "region":
        unsure = turn()
        unsure.ask_confirmation(question, max((r.name for r in question.regions), key=len, default=""))
        reprompts.append(unsure.step.replies)
        baja = _Turn(definition, state.copy(), Inbound(text="BAJA"), True)
        baja.on_keyword_region(["Baja California", "Baja California Sur"])
        reprompts.append(baja.step.replies)
        for reason in ("unknown_region", "ambiguous"):
            which = turn()
            which.reject(question, Rejected(reason, {"regions": ["Baja California", "Baja California Sur"]}))
            reprompts.append(which.step.replies)
    if definition.eligibility is not None and definition.eligibility.question == question.id:
        minor = turn()
        minor.ask_minor_confirmation(question, definition.eligibility.min_age - 1)
        reprompts.append(minor.step.replies)
        minor = turn()
        minor.ask_minor_confirmation(question)
        reprompts.append(minor.step.replies)
    refused = turn()
    refused.on_refusal(question)
    reprompts.append(refused.step.replies)
    helped = turn()
    helped.on_keyword("help", None)
    return {"question": [asked.step.replies], "reprompt": reprompts, "help": [helped.step.replies]}


def expire(definition: Definition, state: State) -> Step:
    """Close an unfinished session: it will not be asked again."""
    step = Step(state=state.copy())
    if state.status in (NEW, IN_PROGRESS):
        step.state.status = EXPIRED
        step.events.append(Event("expired", state.question))
    return step


def keyword(text: str) -> tuple[str, str | None] | None:
    """The built-in keyword a whole message is, if any: ('opt_out'|'opt_in'|'help'|'language'|'erase', argument)."""
    return _keyword(text) if len(text) <= SHORT else _keyword.__wrapped__(text)


@lru_cache(maxsize=8192)
def _keyword(text: str) -> tuple[str, str | None] | None:
    word = normalize(_BOT_SUFFIX.sub(r"\1", text.strip()))
    if word in builtin.OPT_OUT_KEYWORDS:
        return ("opt_out", None)
    if word in builtin.OPT_IN_KEYWORDS:
        return ("opt_in", None)
    if word in builtin.HELP_KEYWORDS:
        return ("help", None)
    if word in builtin.LANGUAGE_KEYWORDS:
        return ("language", builtin.LANGUAGE_KEYWORDS[word])
    if word in builtin.ERASE_KEYWORDS:
        return ("erase", None)
    return None


def asks_to_stop(text: str) -> bool:
    """Whether a message asks in plain words to stop being written to ('ya no me escriban', 'leave me alone')."""
    return _asks_to_stop(text) if len(text) <= SHORT else _asks_to_stop.__wrapped__(text)


def _stop_cores(said: list[str]) -> set[tuple[str, ...]]:
    """The ways to read a message as a request to stop: as it is, and without STOP_FILLER at either end or the
    words that may trail a request ('mensajes', 'con esto', 'me')."""
    cores = set()
    for start in (0, next((i for i, w in enumerate(said) if w not in builtin.STOP_FILLER), len(said))):
        end = len(said)
        cores.add(tuple(said[start:end]))
        while end > start and (said[end - 1] in builtin.STOP_FILLER or said[end - 1] in builtin.STOP_TAIL):
            end -= 1
            cores.add(tuple(said[start:end]))
    return cores


_STOP_WHOLE = frozenset(tuple(squeeze(normalize(p).split())) for p in (*builtin.STOP_PHRASES, *builtin.STOP_ALONE))
"""Every plain-language request to stop, as the whole message it must be (filler aside)."""


@lru_cache(maxsize=8192)
def _asks_to_stop(text: str) -> bool:
    """Only a whole message is a request to stop: never words inside a longer answer ('ya no aguanto', 'basta de
    violencia en mi colonia', 'no quiero seguir viviendo así' are answers, and may be a cry for help)."""
    return not _STOP_WHOLE.isdisjoint(_stop_cores(squeeze(normalize(text).split())))


def _guess_language(definition: Definition, inbound: Inbound | None) -> str:
    if inbound is not None:
        if normalize(inbound.text) in builtin.GREETINGS_EN and "en" in definition.languages:
            return "en"
        hint = (inbound.language_hint or "").split("-")[0].lower()
        if hint in definition.languages:
            return hint
    return definition.default_language


class _Turn:
    """One inbound message's worth of work; collects answers, replies and events into `step`."""

    def __init__(
        self,
        definition: Definition,
        state: State,
        inbound: Inbound,
        incentive_available: bool,
        ask_phone: bool = False,
        phone_region: str = "MX",
    ):
        self.d = definition
        self.state = state
        self.inbound = inbound
        self.incentive_available = incentive_available
        self.ask_phone = ask_phone
        self.phone_region = phone_region
        self.step = Step(state=state)
        self.preamble: list[str] = []

    # -- dispatch ---------------------------------------------------------------------------------------

    def run(self) -> Step:
        found = keyword(self.inbound.text) if self.inbound.button is None else None
        since_last = self._since_last()
        if self.inbound.at is not None:
            self.state.last_at = self.inbound.at.isoformat()
        asked_to_erase, self.state.erase_pending = self.state.erase_pending, False
        if found and found[0] == "erase":
            self.on_erase(asked_to_erase)
            return self.step
        if self.state.status == OPTED_OUT:
            if found and found[0] == "opt_in":
                self.opt_in()
            else:
                self.event("ignored")
            return self.step
        asked_region, self.state.keyword_region = self.state.keyword_region, False
        if found and found[0] != "opt_out" and self._names_choice():
            found = None  # a label or synonym of the question answers it, even when it is also a keyword
        if found and found[0] == "opt_out" and not asked_region and self._regions_named():
            self.on_keyword_region(self._regions_named())  # 'Baja' to "¿En qué estado vive?": which Baja?
            return self.step
        if found:
            self.state.stop_asked = False
            self.on_keyword(*found)
        elif self.inbound.kind in RESUMING_KINDS and self.state.status != NEW:
            self.resume()
        elif self.on_stop_request():
            return self.step
        elif self.state.status == NEW:
            self.start()
        elif self.state.status == IN_PROGRESS:
            self.on_answer(since_last)
        elif self.state.status == COMPLETED:
            if self.state.question == PAYOUT_PHONE:
                self.on_payout_phone()
            else:
                self.say("already_completed")
        elif self.state.status == DECLINED:
            if self._is_start_keyword():
                self.restart()
            else:
                self.say("already_declined", keyword=self._start_keyword())
        elif self.state.status == EXPIRED:
            self.say("expired")
        elif self.state.status == INELIGIBLE:
            self.say("ineligible", min_age=self._min_age())
        return self.step

    def on_stop_request(self) -> bool:
        """A plain-language request to stop ('ya no me escriban') is asked once to confirm with the keyword, and
        nothing else is sent until the respondent writes; a second such request, or a yes, opts out; a no goes on.
        True when this message was such a request or its answer."""
        asked, self.state.stop_asked = self.state.stop_asked, False
        if self.inbound.button is not None:
            return False
        text = self.inbound.text
        if asks_to_stop(text) and not self._declines_consent():
            if asked:
                self.on_keyword("opt_out", None)
            else:
                self.state.stop_asked = True
                self.event("stop_asked", self.state.question)
                self.say("opt_out_confirm")
            return True
        said = yes_or_no(text) if asked else None
        if said == "yes":
            self.on_keyword("opt_out", None)
        elif said == "no":
            self.event("stop_withdrawn", self.state.question)
            self.preamble.append(self.d.message("opt_out_cancelled", self.state.language))
            self.repeat_current()
        return said in ("yes", "no")

    def on_keyword(self, kind: str, argument: str | None) -> None:
        if kind == "opt_out":
            self.state.resume_status = self.state.status
            self.state.status = OPTED_OUT
            self.state.pending = None
            self.event("opted_out", self.state.question)
            self.say("opted_out")
        elif kind == "opt_in":
            if self.state.status == NEW:
                self.start()
            else:
                self.repeat_current()
        elif kind == "help":
            self.event("help", self.state.question)
            self.preamble.append(self._help_text())
            self.repeat_current()
        elif kind == "language":
            self.switch_language(argument)

    def on_keyword_region(self, regions: list[str]) -> None:
        """An opt-out keyword that is also how people name a region ('Baja', for Baja California and Baja
        California Sur) answers the region question: asked which; the keyword again opts out."""
        question = self._current()
        assert question is not None
        self.state.keyword_region = True
        self.event("keyword_region", question.id)
        keyword = normalize(self.inbound.text).upper()
        self.preamble.append(
            self.d.message("keyword_region", self.state.language, regions=_either(regions, self.state.language),
                           keyword=keyword)
        )
        self.ask(question)

    def on_erase(self, confirmed: bool) -> None:
        """BORRAR / DELETE MY DATA: asks once to confirm; the caller erases the respondent on 'erase_confirmed'
        (the state does not change otherwise, so another message goes on where they were)."""
        if confirmed:
            self.event("erase_confirmed", self.state.question)
            self.say("erased")
            return
        self.state.erase_pending = True
        self.event("erase_requested", self.state.question)
        self.say("erase_confirm")

    def on_answer(self, since_last: timedelta | None) -> None:
        question = self._current()
        if question is None:
            self.advance()
            return
        if self.inbound.kind != "text" and not self.inbound.text.strip() and self.inbound.button is None:
            hint = "edited" if self.inbound.kind == "edited" else "media"
            self.preamble.append(self.d.message(hint, self.state.language))
            self.ask(question)
            return
        resumed = self.state.paused or (
            since_last is not None and since_last > timedelta(minutes=self.d.resume_after_minutes)
        )
        self.state.paused = False
        if self.state.pending is not None:
            self.on_confirmation(question)
            return
        if self.inbound.button is not None:
            self.on_button(question)
            return
        if refuses(self.inbound.text) and not self._names_choice():
            self.on_refusal(question)  # also 'prefiero no decir', a skip word: a required question says how to stop
            return
        if self._is_skip_word():
            self.on_skip(question)
            return
        outcome = parse_answer(question, self.inbound.text, self.state.language, self._today())
        if isinstance(outcome, Accepted):
            self.accept(question, outcome.value)
        elif isinstance(outcome, Unsure):
            self.state.pending = {"value": outcome.value, "label": outcome.label}
            self.ask_confirmation(question, outcome.label)
        elif resumed:
            self.event("resumed", question.id)
            self.preamble.append(self.d.message("welcome_back", self.state.language))
            self.ask(question)
        else:
            self.reject(question, outcome)

    # -- conversation moves -------------------------------------------------------------------------------

    def start(self) -> None:
        self.state.status = IN_PROGRESS
        self.state.question = CONSENT_ID
        self.state.attempts = 0
        self.state.incentive = self.d.incentive is not None and self.incentive_available
        self.event("started")
        if self.d.incentive is not None and not self.incentive_available:
            self.preamble.append(self.d.message("no_credit", self.state.language))
        self.ask(self.d.consent)

    def restart(self) -> None:
        self.state.answers = {}
        self.state.pending = None
        self.start()

    def opt_in(self) -> None:
        self.state.status = self.state.resume_status or NEW
        self.state.resume_status = None
        self.event("opted_in")
        if self.state.status == NEW:
            self.start()
            return
        self.preamble.append(self.d.message("opted_in", self.state.language))
        self.repeat_current()

    def switch_language(self, language: str | None) -> None:
        languages = self.d.languages
        if language is None:
            language = languages[(languages.index(self.state.language) + 1) % len(languages)]
        if language in languages and language != self.state.language:
            self.state.language = language
            self.event("language_changed", self.state.question, {"language": language})
        self.preamble.append(self.d.message("language_changed", self.state.language))
        if self.state.status == NEW:
            self.start()
        else:
            self.repeat_current()

    def resume(self) -> None:
        """A call began, or the caller asked to hear the question again: where they stand, with no mistake counted."""
        if self.inbound.kind == "call" and self.state.status == IN_PROGRESS and self.state.answers:
            self.preamble.append(self.d.message("welcome_back", self.state.language))
        self.state.paused = False
        self.repeat_current()

    def repeat_current(self) -> None:
        """Say what was prepared and ask the current question again, or say where the respondent stands."""
        status = self.state.status
        if status == IN_PROGRESS and self.state.question:
            question = self.d.question(self.state.question)
            if self.state.pending is not None and self.state.pending.get("minor"):
                self.ask_minor_confirmation(question, self.state.pending.get("age"))
            elif self.state.pending is not None:
                self.ask_confirmation(question, self.state.pending["label"])
            else:
                self.ask(question)
        elif status == COMPLETED and self.state.question == PAYOUT_PHONE:
            self.ask_payout_phone()
        elif status == COMPLETED:
            self.say("already_completed")
        elif status == DECLINED:
            self.say("already_declined", keyword=self._start_keyword())
        elif status == EXPIRED:
            self.say("expired")
        elif status == INELIGIBLE:
            self.say("ineligible", min_age=self._min_age())
        elif status == NEW:
            self.start()
        else:
            self.flush()

    def on_confirmation(self, question: Question) -> None:
        pending = self.state.pending or {}
        if pending.get("minor"):
            self.on_minor_confirmation(question, pending)
            return
        if self.inbound.button is not None:
            target, _, answer = self.inbound.button.partition("=")
            if target != CONFIRM:
                self.preamble.append(self.d.message("stale_button", self.state.language))
                self.ask_confirmation(question, pending["label"])
                return
        elif normalize(self.inbound.text).isdigit():
            answer = None
        else:
            outcome = parse_answer(self.d.consent, self.inbound.text, self.state.language)
            answer = outcome.value if isinstance(outcome, Accepted) else None
        self.state.pending = None
        if answer == "yes":
            self.accept(question, pending["value"])
        elif answer == "no":
            self.ask(question)
        else:
            self.on_answer(None)

    def on_button(self, question: Question) -> None:
        target, _, value = (self.inbound.button or "").partition("=")
        choice = question.choice(value) if target == question.id else None
        if choice is None:
            self.event("stale_button", question.id)
            self.preamble.append(self.d.message("stale_button", self.state.language))
            self.ask(question)
            return
        self.accept(question, [value] if question.type == "multi" else value)

    def on_refusal(self, question: Question) -> None:
        """'Prefiero no contestar' is not an answer: an optional question is skipped (and the refusal counted), a
        required one is asked again, saying how to stop; refused again and again, the survey pauses."""
        self.event("refused", question.id)
        if not question.required:
            self.skip(question)
            return
        self.state.attempts += 1
        if self.state.attempts > self.d.max_reprompts:
            self.state.attempts = 0
            self.state.paused = True
            self.event("paused", question.id)
            self.say("paused")
            return
        self.preamble.append(self.d.message("refused", self.state.language))
        self.ask(question)

    def on_skip(self, question: Question) -> None:
        if question.required:
            self.preamble.append(self.d.message("required", self.state.language))
            self.ask(question)
            return
        self.skip(question)

    def accept(self, question: Question, value: Any, confirmed: bool = False) -> None:
        rule = self.d.eligibility
        screens_out = rule is not None and question.id == rule.question and not rule.admits(question, value)
        if screens_out and not confirmed:
            self.confirm_minor(question, value)
            return
        self.state.answers[question.id] = value
        self.state.attempts = 0
        self.event("answered", question.id)
        if question.id == CONSENT_ID:
            if value != "yes":
                self.state.status = DECLINED
                self.state.question = None
                self.step.answers.append(Answer(CONSENT_ID, value))
                self.event("declined")
                self.say("declined")
                return
            self.event("consented")
            if self.state.incentive and not self.incentive_available:
                self.state.incentive = False
                self.preamble.append(self.d.message("no_credit", self.state.language))
        self.step.answers.append(Answer(question.id, value))
        if screens_out:
            self.screen_out(question, value)
            return
        self.advance()

    def confirm_minor(self, question: Question, value: Any) -> None:
        """Before a minor is screened out, ask once to confirm the age ('¿Tiene 17 años? 1) Si 2) No, me
        equivoqué'), so that a typo ('15' for '51') does not drop an adult; nothing is stored yet."""
        said = normalize(self.inbound.text)
        option = said.isdigit() and 1 <= int(said) <= len(question.choices)  # '1': the option, not an age
        age = age_said(self.inbound.text) if self.inbound.button is None and not option else None
        self.state.pending = {"value": value, "label": "", "minor": True, "age": age}
        self.state.attempts = 0
        self.event("confirm_minor", question.id)
        self.ask_minor_confirmation(question, age)

    def ask_minor_confirmation(self, question: Question, age: int | None = None) -> None:
        language = self.state.language
        if age is not None and self.d.eligibility and age < self.d.eligibility.min_age:
            asked = self.d.message("confirm_age", language, age=age)
        else:
            asked = self.d.message("confirm_minor", language, min_age=self._min_age())
        choices = tuple(
            ReplyChoice(v, builtin.MINOR_LABELS[v].get(language, v), f"{CONFIRM}={v}") for v in ("yes", "no")
        )
        text = self._with_preamble(asked, True, choices) if self.preamble else asked
        self.step.replies.append(Reply(text=text, question_id=question.id, choices=choices, numbered=True))

    def on_minor_confirmation(self, question: Question, pending: dict[str, Any]) -> None:
        """The answer to '¿Tiene 17 años?': 1 / sí (or the same age again) screens out; 2 / no asks the age again,
        or takes the adult age the reply gives instead ('no, tengo 51'); another age is a new answer."""
        self.state.pending = None
        said = normalize(self.inbound.text)
        if self.inbound.button is not None:
            target, _, answer = self.inbound.button.partition("=")
            answer = answer if target == CONFIRM else None
        elif said in ("1", "2"):
            answer = "yes" if said == "1" else "no"
        else:
            outcome = parse_answer(self.d.consent, self.inbound.text, self.state.language)
            answer = outcome.value if isinstance(outcome, Accepted) else None
        retyped = None
        if self.inbound.button is None and said not in ("1", "2"):
            outcome = parse_answer(question, self.inbound.text, self.state.language, self._today())
            retyped = outcome.value if isinstance(outcome, Accepted) else None
        if answer == "yes" or (answer is None and retyped == pending["value"]):
            self.event("minor_confirmed", question.id)
            self.accept(question, pending["value"], confirmed=True)
        elif retyped is not None and retyped != pending["value"]:
            self.accept(question, retyped)  # 'no, tengo 51', or '51'
        elif answer == "no":
            self.event("minor_withdrawn", question.id)
            self.ask(question)
        elif self.state.attempts < self.d.max_reprompts:
            self.state.attempts += 1
            self.state.pending = pending
            self.event("invalid", question.id, {"reason": "not_understood", "attempt": self.state.attempts})
            self.ask_minor_confirmation(question, pending.get("age"))
        else:
            self.state.attempts = 0
            self.ask(question)  # the confirmation was never answered: the age is asked afresh, nothing stored

    def screen_out(self, question: Question, value: Any) -> None:
        """Someone the survey is not for (a minor): thanked and ended; only the screening answer is kept and
        nothing is paid (the `ineligible` event tells the caller to drop the answers stored before it)."""
        self.state.status = INELIGIBLE
        self.state.question = None
        self.state.answers = {question.id: value}
        self.state.incentive = False
        self.state.pending = None
        self.event("ineligible", question.id, {"kept": [question.id]})
        self.say("ineligible", min_age=self._min_age())

    def skip(self, question: Question) -> None:
        self.state.answers[question.id] = None
        self.state.attempts = 0
        self.step.answers.append(Answer(question.id, None, skipped=True))
        self.event("skipped", question.id)
        self.advance()

    def reject(self, question: Question, outcome: Rejected) -> None:
        self.state.attempts += 1
        self.event("invalid", question.id, {"reason": outcome.reason, "attempt": self.state.attempts})
        if self.state.attempts <= self.d.max_reprompts:
            self.preamble.append(self._error_text(question, outcome))
            self.ask(question)
        elif not question.required:
            self.preamble.append(self.d.message("skipped", self.state.language))
            self.skip(question)
        else:
            self.state.attempts = 0
            self.state.paused = True
            self.event("paused", question.id)
            self.say("paused")

    def advance(self) -> None:
        start = self.d.index(self.state.question) + 1 if self.state.question else 1
        for question in self.d.questions[start:]:
            if not question.by_voice and self.inbound.channel == "voice":
                self.event("not_asked", question.id, {"channel": "voice"})
                continue
            if question.condition is None or question.condition.evaluate(self.state.answers):
                self.ask(question)
                return
        self.complete()

    def complete(self) -> None:
        self.state.status = COMPLETED
        self.state.question = None
        self.event("completed")
        incentive = self.d.incentive
        if incentive is None or not self.state.incentive:
            self.say("completed")
        elif not self.incentive_available:
            self.state.incentive = False
            self.say("completed_no_credit")
        elif self.ask_phone:
            self.state.question = PAYOUT_PHONE
            self.state.attempts = 0
            self.preamble.append(self.d.message("completed", self.state.language))
            self.ask_payout_phone()
        else:
            self.say("completed_incentive", **self._credit())

    def on_payout_phone(self) -> None:
        """The post-completion step: the number to send the credit to, typed or shared as a contact."""
        shared = self.inbound.contact is not None
        raw = self.inbound.contact if shared else self.inbound.text
        number = mobile_number(raw or "", self.phone_region, international=shared)
        if number is None:
            self.state.attempts += 1
            self.event("invalid", PAYOUT_PHONE, {"reason": "not_a_mobile", "attempt": self.state.attempts})
            if self.state.attempts > self.d.max_reprompts:
                self.state.attempts = 0
                self.say("phone_later", **self._credit())
                return
            self.preamble.append(self.d.message("error_phone", self.state.language))
            self.ask_payout_phone()
            return
        self.state.question = None
        self.state.attempts = 0
        if not self.incentive_available:
            self.state.incentive = False
            self.event("payout_phone_refused", PAYOUT_PHONE, {"phone": number})
            self.say("phone_paid_before", close_keyboard=True)
            return
        self.event("payout_phone", PAYOUT_PHONE, {"phone": number})
        self.say("phone_saved", close_keyboard=True, ending=number[-4:], **self._credit())

    # -- messages -----------------------------------------------------------------------------------------

    def ask(self, question: Question) -> None:
        """Send a question (with what was prepared before it) and make it the current one."""
        if self.state.question != question.id:
            self.state.attempts = 0
        self.state.question = question.id
        text, choices = _asked(self.d, question, self.state.language)
        if self.preamble:
            text = self._with_preamble(text, question.type in ("choice", "multi"), choices)
        self.step.replies.append(
            Reply(
                text=text,
                question_id=question.id,
                choices=choices,
                numbered=question.type in ("choice", "multi"),
                multi=question.type == "multi",
            )
        )

    def _with_preamble(self, text: str, numbered: bool, choices: tuple[ReplyChoice, ...]) -> str:
        """The question with what was prepared before it; what would make it take more SMS segments than it
        takes alone goes first, as messages of their own (a re-prompt or HELP never makes a question cost more)."""
        *before, last = _packed(self.preamble)
        self.preamble = []
        for message in before:
            self.step.replies.append(Reply(text=message))
        question = Reply(text, numbered=numbered, choices=choices).plain()
        if sms.segments(f"{last}\n{question}") > sms.segments(question):
            self.step.replies.append(Reply(text=last))
            return text
        return f"{last}\n{text}"

    def ask_confirmation(self, question: Question, label: str) -> None:
        language = self.state.language
        text = "\n".join([*self.preamble, self.d.message("confirm", language, label=label)])
        self.preamble = []
        choices = tuple(
            ReplyChoice(v, builtin.YES_NO_LABELS[v].get(language, v), f"{CONFIRM}={v}") for v in ("yes", "no")
        )
        self.step.replies.append(Reply(text=text, question_id=question.id, choices=choices))

    def ask_payout_phone(self) -> None:
        language = self.state.language
        text = "\n".join([*self.preamble, self.d.message("ask_phone", language, **self._credit())])
        self.preamble = []
        button = self.d.message("phone_button", language)
        self.step.replies.append(Reply(text=text, question_id=PAYOUT_PHONE, contact_button=button))

    def say(self, key: str, close_keyboard: bool = False, **values: Any) -> None:
        self.preamble.append(self.d.message(key, self.state.language, **values))
        self.flush(close_keyboard)

    def flush(self, close_keyboard: bool = False) -> None:
        if self.preamble:
            for message in _packed(self.preamble):
                self.step.replies.append(Reply(text=message, close_keyboard=close_keyboard))
            self.preamble = []

    def event(self, kind: str, question_id: str | None = None, detail: dict[str, Any] | None = None) -> None:
        self.step.events.append(Event(kind, question_id, detail or {}))

    # -- helpers ------------------------------------------------------------------------------------------

    def _current(self) -> Question | None:
        if self.state.question and self.d.has_question(self.state.question):
            return self.d.question(self.state.question)
        return None

    def _since_last(self) -> timedelta | None:
        if self.inbound.at is None or self.state.last_at is None:
            return None
        return self.inbound.at - datetime.fromisoformat(self.state.last_at)

    def _today(self):
        return self.inbound.at.date() if self.inbound.at is not None else None

    def _is_skip_word(self) -> bool:
        return normalize(self.inbound.text) in self.d.skip_set and not self._names_choice()

    def _names_choice(self) -> bool:
        """Whether the reply is (part of) a label or synonym of the question being asked."""
        question = self._current() if self.state.status == IN_PROGRESS else None
        return question is not None and names_choice(question, self.inbound.text)

    def _regions_named(self) -> list[str]:
        """The regions a reply to the region question begins to name ('Baja'), when it names more than one."""
        question = self._current() if self.state.status == IN_PROGRESS and self.state.pending is None else None
        if question is None or question.type != "region":
            return []
        outcome = parse_answer(question, self.inbound.text, self.state.language)
        return list(outcome.detail.get("regions", [])) if isinstance(outcome, Rejected) else []

    def _declines_consent(self) -> bool:
        """A 'no quiero participar' to the consent question is a decline, not a request to stop writing."""
        if self.state.status != IN_PROGRESS or self.state.question != CONSENT_ID:
            return False
        if builtin.TAKING_PART.isdisjoint(normalize(self.inbound.text).split()):
            return False
        outcome = parse_answer(self.d.consent, self.inbound.text, self.state.language)
        return isinstance(outcome, Accepted) and outcome.value == "no"

    def _min_age(self) -> int | str:
        return self.d.eligibility.min_age if self.d.eligibility else ""

    def _credit(self) -> dict[str, str]:
        """The credit for messages: written once ('30 MXN'), and as amount and currency for older overrides."""
        incentive = self.d.incentive
        if incentive is None:
            return {"credit": "", "amount": "", "currency": ""}
        return {"credit": incentive.credit, "amount": f"{incentive.amount:g}", "currency": incentive.currency}

    def _help_text(self) -> str:
        language = self.state.language
        title = self.d.title.get(language) or self.d.title[self.d.default_language]
        contact = self.d.contact.get(language) or self.d.contact.get(self.d.default_language) or title
        return self.d.message("help", language, contact=contact, title=title)

    def _is_start_keyword(self) -> bool:
        said = normalize(self.inbound.text)
        return said in self.d.start_set or said in _DEFAULT_STARTS

    def _start_keyword(self) -> str:
        return (self.d.start_keywords or (builtin.DEFAULT_START_KEYWORD[self.d.default_language],))[0]

    def _error_text(self, question: Question, outcome: Rejected) -> str:
        language = self.state.language
        if outcome.reason == "unsure":
            return question.hint.get(language) or self.d.message(_UNSURE_KEYS[question.type], language)
        if question.errors.get(language):
            return question.errors[language]
        if isinstance(options := outcome.detail.get("options"), list) and options:  # the choices a reply may mean
            return self.d.message("error_means", language, options=_either([str(n) for n in options], language))
        if outcome.detail.get("regions"):
            return self.d.message("error_region_which", language, regions=_either(outcome.detail["regions"], language))
        key = _error_key(question, outcome)
        return self.d.message(key, language, **_format_detail(question, outcome))


def _either(names: list[str], language: str) -> str:
    """'Baja California o Baja California Sur'."""
    word = " or " if language == "en" else " o "
    return ", ".join(names[:-1]) + word + names[-1] if len(names) > 1 else "".join(names)


def _packed(parts: list[str]) -> list[str]:
    """Parts of a reply joined into as few messages as keep each in one SMS segment (a longer part alone)."""
    messages = [parts[0]]
    for part in parts[1:]:
        joined = f"{messages[-1]}\n{part}"
        if sms.segments(joined) == 1:
            messages[-1] = joined
        else:
            messages.append(part)
    return messages


_ASKED: IdentityMemo[tuple[str, tuple[ReplyChoice, ...]]] = IdentityMemo(4096)
"""Each question's text with its hints and its choices, by definition and language."""


def _asked(definition: Definition, question: Question, language: str) -> tuple[str, tuple[ReplyChoice, ...]]:
    """A question as asked in one language: its text with the hints its type needs, and its choices."""
    found = _ASKED.get((definition, question), language)
    if found is not None:
        return found
    line = question.text[language]
    if question.type == "yes_no":
        line += " " + definition.message("hint_yes_no", language)
    parts = [line]
    if question.type == "multi":
        parts.append(definition.message("hint_multi", language))
    if not question.required:
        parts.append(definition.message("hint_optional", language))
    choices = tuple(ReplyChoice(c.value, c.label[language], f"{question.id}={c.value}") for c in question.choices)
    return _ASKED.put((definition, question), language, ("\n".join(parts), choices))


_UNSURE_KEYS = {
    "choice": "unsure_choice",
    "multi": "unsure_multi",
    "yes_no": "unsure_yes_no",
    "integer": "unsure_number",
    "decimal": "unsure_number",
    "date": "unsure_date",
    "region": "unsure_region",
    "text": "unsure_text",
}
"""The clarification a respondent who is unsure gets, by question type, when the question has no `hint`."""


def _error_key(question: Question, outcome: Rejected) -> str:
    reason = outcome.reason
    bounded = question.min is not None and question.max is not None
    if question.type in ("integer", "decimal") and bounded and reason != "ambiguous":
        return "error_range"
    if reason in ("too_small", "too_large"):
        return f"error_{reason}"
    by_reason = {
        "ambiguous": "error_ambiguous",
        "exclusive": "error_exclusive",
        "too_long": "error_too_long",
        "empty": "error_empty",
        "not_a_date": "error_date",
        "unknown_region": "error_region",
        "not_a_number": "error_number",
    }
    if reason in by_reason:
        return by_reason[reason]
    by_type = {
        "choice": "error_choice",
        "multi": "error_multi",
        "yes_no": "error_yes_no",
        "integer": "error_number",
        "decimal": "error_number",
        "date": "error_date",
        "region": "error_region",
    }
    return by_type.get(question.type, "error_not_understood")


def _format_detail(question: Question, outcome: Rejected) -> dict[str, Any]:
    def number(x: float | None) -> str:
        return "" if x is None else f"{x:g}"

    return {
        "min": number(question.min),
        "max": number(question.max),
        "max_length": question.max_length or outcome.detail.get("max_length", ""),
    }
