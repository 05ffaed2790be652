"""End-to-end lag at a fixed offered load: webhook accepted -> answer stored -> reply handed to the provider.

    python -m bench.lag [--rate 500] [--seconds 60] [--workers 2] [--web-workers 2]

An open-loop generator sends signed Twilio webhooks at a fixed rate (each respondent writes every few seconds, the
next line of a messy conversation, whatever the service's speed); a fake Twilio on loopback timestamps each reply.
Per message: accepted = the webhook's 200, stored = processed_at in the database, handed = the fake provider's
arrival time of the reply to it.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections import defaultdict
from datetime import UTC, datetime

import psycopg
import requests

from bench.common import describe, fresh_database, machine, print_json, process_tree_peaks, start_stack
from tests.fake_providers import FakeProviders, Sent
from tests.support import drop_database, twilio_form, twilio_signature
from tests.surveys.test_engine import RETURNEE_SCRIPT

SCRIPT = ["hola", *[text for text, _, _ in RETURNEE_SCRIPT]]


class Generator:
    """Sends message k of respondent r at its scheduled time, from a pool of threads."""

    def __init__(self, url: str, rate: float, seconds: float, threads: int = 48):
        self.url = url
        self.rate = rate
        self.seconds = seconds
        self.threads = threads
        self.accepted: dict[str, float] = {}
        self.failed = 0
        self.late = 0
        self.lock = threading.Lock()
        gap = 3.0
        respondents = int(rate * gap) + 1
        total = int(rate * seconds)
        self.schedule = [(i / rate, i % respondents, i // respondents) for i in range(total)]

    def run(self) -> None:
        start = time.monotonic() + 0.5
        cursor = iter(range(len(self.schedule)))
        cursor_lock = threading.Lock()

        def work() -> None:
            http = requests.Session()
            while True:
                with cursor_lock:
                    index = next(cursor, None)
                if index is None:
                    return
                offset, respondent, step = self.schedule[index]
                delay = start + offset - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                elif delay < -0.05:
                    with self.lock:
                        self.late += 1
                self._send(http, respondent, step)

        workers = [threading.Thread(target=work) for _ in range(self.threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    def _send(self, http: requests.Session, respondent: int, step: int) -> None:
        address = f"+5255{50000000 + respondent:08d}"
        sid = f"SM{respondent:016d}{step:016d}"
        form = twilio_form(address, SCRIPT[step % len(SCRIPT)], sid)
        path = "/webhooks/twilio/sms"
        response = http.post(self.url + path, data=form,
                             headers={"X-Twilio-Signature": twilio_signature(self.url + path, form)}, timeout=30)
        with self.lock:
            if response.status_code == 200:
                self.accepted[sid] = time.time()
            else:
                self.failed += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--web-workers", type=int, default=2)
    options = parser.parse_args()
    print_json("machine", machine())
    database = fresh_database()
    provider = FakeProviders().start()
    arrivals: dict[str, list[float]] = defaultdict(list)

    def arrived(sent: Sent) -> None:
        arrivals[sent.to].append(time.time())

    provider.on_message = arrived
    stack = start_stack(database, providers_url=provider.url, web_workers=options.web_workers,
                        workers=options.workers)
    try:
        time.sleep(2)
        generator = Generator(stack.url, options.rate, options.seconds)
        generator.run()
        time.sleep(5)
        peaks = {f"web {i}": max(process_tree_peaks(p).values()) for i, p in enumerate(stack.web)}
        peaks |= {f"worker {i}": max(process_tree_peaks(p).values()) for i, p in enumerate(stack.workers)}
    finally:
        stack.stop()
        provider.stop()
    dsn = database.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(dsn) as connection:
        rows = connection.execute(
            "SELECT provider_id, received_at, processed_at FROM inbound_messages WHERE status = 'done'"
        ).fetchall()
    drop_database("retorno_bench")
    stored, handed = [], []
    by_respondent: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for sid, received, processed in rows:
        if sid in generator.accepted:
            stored.append((processed - received).total_seconds())
        by_respondent[sid[2:18]].append((int(sid[18:]), sid))
    for respondent, messages in by_respondent.items():
        address = f"+5255{50000000 + int(respondent):08d}"
        for (_, sid), arrival in zip(sorted(messages), arrivals.get(address, []), strict=False):
            if sid in generator.accepted:
                handed.append(arrival - generator.accepted[sid])
    print_json("offered", {"rate": options.rate, "seconds": options.seconds, "sent": len(generator.schedule),
                           "accepted": len(generator.accepted), "failed": generator.failed,
                           "sent_late": generator.late})
    print_json("accepted -> answer stored (s)", {k: round(v, 4) for k, v in describe(stored).items()})
    print_json("accepted -> reply handed to provider (s)", {k: round(v, 4) for k, v in describe(handed).items()})
    print_json("peak RSS MB", {k: round(v, 1) for k, v in peaks.items()})
    print_json("finished", datetime.now(UTC).isoformat())


if __name__ == "__main__":
    main()
