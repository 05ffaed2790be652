"""A steady stream of provider webhooks that remembers how each one was answered."""

from __future__ import annotations

import itertools
import json
import threading
import time
from dataclasses import dataclass, field

import requests

from tests.support import TELEGRAM_SECRET, telegram_message, twilio_form, twilio_signature


@dataclass
class Delivery:
    channel: str
    provider_id: str
    address: str
    status: int


@dataclass
class Flood:
    """Posts one 'hola' per new respondent, alternating SMS and Telegram, at about `rate` per second."""

    web_url: str
    rate: float = 40.0
    threads: int = 4
    deliveries: list[Delivery] = field(default_factory=list)
    stop_event: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __post_init__(self) -> None:
        self.counter = itertools.count(1)
        self.workers = [threading.Thread(target=self._run, daemon=True) for _ in range(self.threads)]

    def start(self) -> Flood:
        for worker in self.workers:
            worker.start()
        return self

    def stop(self) -> None:
        self.stop_event.set()
        for worker in self.workers:
            worker.join(timeout=30)

    def acknowledged(self) -> list[Delivery]:
        with self.lock:
            return [d for d in self.deliveries if 200 <= d.status < 300]

    def statuses(self) -> set[int]:
        with self.lock:
            return {d.status for d in self.deliveries}

    def _run(self) -> None:
        http = requests.Session()
        interval = self.threads / self.rate
        while not self.stop_event.is_set():
            started = time.monotonic()
            n = next(self.counter)
            delivery = self._post(http, n)
            with self.lock:
                self.deliveries.append(delivery)
            self.stop_event.wait(max(0.0, interval - (time.monotonic() - started)))

    def _post(self, http: requests.Session, n: int) -> Delivery:
        if n % 2:
            address = f"+5255{20000000 + n:08d}"
            sid = f"SM{n:032d}"
            form = twilio_form(address, "hola", sid)
            path = "/webhooks/twilio/sms"
            headers = {"X-Twilio-Signature": twilio_signature(self.web_url + path, form)}
            request = {"data": form, "headers": headers}
            channel, provider_id = "sms", sid
        else:
            address = str(900000 + n)
            update = telegram_message(800000 + n, int(address), "hola")
            path = "/webhooks/telegram"
            headers = {"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET, "Content-Type": "application/json"}
            request = {"data": json.dumps(update).encode(), "headers": headers}
            channel, provider_id = "telegram", str(800000 + n)
        try:
            status = http.post(self.web_url + path, timeout=15, **request).status_code
        except requests.RequestException:
            status = 0
        return Delivery(channel, provider_id, address, status)
