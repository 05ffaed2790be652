"""Scripted respondents: each reads what the fake provider delivered to them and answers it, messily.

Each answer is chosen from real-world variants whose stored value is known, so a test can compare Retorno's export
with what every respondent meant. Some deliveries are duplicated (as providers do), some respondents send STOP.
"""

from __future__ import annotations

import json
import queue
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import requests

from surveys.definition import Definition
from tests.fake_providers import Sent
from tests.support import TELEGRAM_SECRET, telegram_callback, telegram_message, twilio_form, twilio_signature

# question id -> (what a respondent types, the value Retorno must store)
ANSWERS: dict[str, list[tuple[str, Any]]] = {
    "consent": [("si", "yes"), ("Sí, acepto", "yes"), ("SI!!!", "yes"), ("👍", "yes"), ("claro que sí", "yes"), ("1", "yes")],
    "returned": [("1", "returnee"), ("regresé", "returnee"), ("Viví en otro país y regresé", "returnee"),
                 ("2", "community"), ("nunca me he ido", "community")],
    "return_type": [("me deportaron", "deported"), ("3.", "deported"), ("por decisión propia", "own_decision"),
                    ("ya no podía quedarme", "could_not_stay"), ("1", "own_decision")],
    "assisted": [("sí", "yes"), ("no", "no"), ("nop", "no"), ("claro", "yes")],
    "sex": [("mujer", "female"), ("1", "female"), ("Hombre", "male"), ("2", "male"), ("otro", "other")],
    "age_band": [("32 años", "25-34"), ("tengo 45", "45-59"), ("3", "25-34"), ("60 o más", "60+"), ("veinte", "18-24")],
    "state": [("nuevo leon", "19"), ("CDMX", "09"), ("jalisco", "14"), ("Edomex", "15"), ("Oaxaca", "20"),
              ("Michoacán", "16"), ("vivo en Zacatecas", "32"), ("BCS", "03")],
    "income_covers": [("a veces", "sometimes"), ("no alcanza", "no"), ("sí", "yes"), ("3", "no")],
    "work": [("2.", "own_account"), ("tengo empleo", "employed"), ("busco trabajo", "looking"), ("4", "not_looking")],
    "skills_used": [("sí", "yes"), ("no", "no")],
    "unfair_work": [("no", "no"), ("si", "yes"), ("NO", "no")],
    "savings_credit": [("no", "no"), ("sí", "yes")],
    "health_care": [("3", "not_needed"), ("si", "yes"), ("no me atendieron", "no")],
    "children_school": [("algunos", "some"), ("4", "no_children"), ("Sí, todos", "all"), ("ninguno", "none")],
    "housing": [("sí", "yes"), ("no", "no")],
    "id_documents": [("👍", "yes"), ("no", "no"), ("si tengo", "yes")],
    "support_network": [("sí", "yes"), ("no", "no")],
    "accepted": [("mas o menos", "partly"), ("1", "yes"), ("no", "no")],
    "safe": [("si", "yes"), ("más o menos", "partly"), ("no", "no")],
    "distress": [("seguido", "often"), ("nunca", "never"), ("a veces", "sometimes")],
    "migrate_again": [("tal vez", "maybe"), ("no", "no"), ("1", "yes")],
    "community_need": [("1 y 5", ["jobs", "safety"]), ("1,3", ["jobs", "schools"]), ("salud", ["health"]),
                       ("saltar", None)],
}
COMPLETED = "¡Gracias por completar la encuesta!"
OPTED_OUT = "Listo, ya no le escribiremos"


@dataclass
class Respondent:
    channel: str
    address: str
    stop_at: int | None = None
    expected: dict[str, Any] = field(default_factory=dict)
    received: list[str] = field(default_factory=list)
    done: bool = False
    stopped: bool = False
    after_stop: int = 0


class Crowd:
    """Plays many respondents against a running Retorno through its real webhooks."""

    def __init__(self, definition: Definition, web_url: str, public_url: str, seed: int = 7,
                 duplicate_rate: float = 0.1, threads: int = 12, think: float = 0.0):
        self.definition = definition
        self.web_url = web_url
        self.public_url = public_url
        self.rng = random.Random(seed)
        self.lock = threading.Lock()
        self.duplicate_rate = duplicate_rate
        self.think = think
        self.respondents: dict[str, Respondent] = {}
        self.inbox: queue.Queue[Sent | None] = queue.Queue()
        self.ids = iter(range(10_000_000, 99_999_999))
        self.posted = 0
        self.duplicates = 0
        self.errors: list[str] = []
        self.http = requests.Session()
        self.threads = [threading.Thread(target=self._work, daemon=True) for _ in range(threads)]
        texts = [(q.text["es"], q.id) for q in definition.questions]
        self.questions = sorted(texts, key=lambda t: -len(t[0]))

    def add(self, channel: str, address: str, stop_at: int | None = None) -> Respondent:
        respondent = Respondent(channel, address, stop_at)
        self.respondents[address] = respondent
        return respondent

    def start(self) -> None:
        for thread in self.threads:
            thread.start()
        for respondent in list(self.respondents.values()):
            self._say(respondent, "Hola")

    def stop(self) -> None:
        for _ in self.threads:
            self.inbox.put(None)

    def deliver(self, sent: Sent) -> None:
        """The fake provider's hook: a message reached a respondent's phone."""
        self.inbox.put(sent)

    def pending(self) -> list[Respondent]:
        return [r for r in self.respondents.values() if not r.done and not r.stopped]

    # -- one respondent's turn ------------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            sent = self.inbox.get()
            if sent is None:
                return
            try:
                self._react(sent)
            except Exception as error:  # noqa: BLE001 - reported by the test
                with self.lock:
                    self.errors.append(f"{type(error).__name__}: {error}")

    def _react(self, sent: Sent) -> None:
        respondent = self.respondents.get(sent.to)
        if respondent is None:
            return
        with self.lock:
            respondent.received.append(sent.text)
            if respondent.stopped:
                respondent.after_stop += 1
                return
        if sent.text.startswith(OPTED_OUT):
            with self.lock:
                respondent.stopped = True
            for text in ("hola", "1"):
                self._say(respondent, text)
            return
        if COMPLETED in sent.text:
            respondent.done = True
            return
        question = self._question_in(sent.text)
        if question is None:
            with self.lock:
                self.errors.append(f"{respondent.address}: unexpected message {sent.text[:80]!r}")
            return
        if respondent.stop_at is not None and len(respondent.expected) >= respondent.stop_at:
            words = ["STOP", "Alto", "cancelar"] + ([] if question == "state" else ["baja"])  # "Baja" may be a state
            self._say(respondent, self.rng.choice(words))
            return
        text, value = self.rng.choice(ANSWERS[question])
        with self.lock:
            respondent.expected[question] = value
            pause = self.rng.uniform(0, 2 * self.think)
        time.sleep(pause)  # a person reads the question, then types
        button = f"{question}={value}"
        if respondent.channel == "telegram" and button in sent.buttons and self.rng.random() < 0.5:
            self._press(respondent, button)
        else:
            self._say(respondent, text)

    def _question_in(self, text: str) -> str | None:
        return next((qid for question_text, qid in self.questions if question_text in text), None)

    # -- webhooks --------------------------------------------------------------------------------------------

    def _say(self, respondent: Respondent, text: str) -> None:
        if respondent.channel == "telegram":
            update = telegram_message(next(self.ids), int(respondent.address), text)
            self._post_telegram(update)
        else:
            sid = f"SM{next(self.ids):032d}"
            form = twilio_form(respondent.address, text, sid)
            self._post_twilio(form)

    def _press(self, respondent: Respondent, data: str) -> None:
        self._post_telegram(telegram_callback(next(self.ids), int(respondent.address), data))

    def _post_twilio(self, form: dict[str, str]) -> None:
        path = "/webhooks/twilio/sms"
        headers = {"X-Twilio-Signature": twilio_signature(self.public_url + path, form)}
        self._post(path, {"data": form, "headers": headers})

    def _post_telegram(self, update: dict[str, Any]) -> None:
        body = json.dumps(update, ensure_ascii=False).encode()
        headers = {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET, "Content-Type": "application/json"}
        self._post("/webhooks/telegram", {"data": body, "headers": headers})

    def _post(self, path: str, request: dict[str, Any]) -> None:
        copies = 2 if self.rng.random() < self.duplicate_rate else 1
        for _ in range(copies):
            response = self.http.post(self.web_url + path, timeout=30, **request)
            if response.status_code != 200:
                with self.lock:
                    self.errors.append(f"{path}: {response.status_code} {response.text[:200]}")
        with self.lock:
            self.posted += 1
            self.duplicates += copies - 1
