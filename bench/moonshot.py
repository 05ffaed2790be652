"""The moonshot: whole conversations at a fixed rate through the production processes, for minutes, per rate.

    python -m bench.moonshot [--rates 400,650,800] [--seconds 600] [--workers 2] [--web-workers 2] [--web-threads 32]
                             [--telegram 0.3] [--duplicates 0.1] [--server granian]
                             [--web-cpus 0] [--worker-cpus 1]

Respondents answer the bundled survey in their own words (`bench.conversations`), 70% by SMS (signed Twilio
webhooks) and 30% by Telegram (secret-token updates), each writing their next line every 3 s; a respondent who
finishes is replaced by a new one, so a 10-minute run at 650 messages/s carries about 17,000 whole surveys. The rate
counts distinct messages; 10% of them are delivered twice (a provider's retry), a few requests later, on top. The
load is open-loop: it does not slow down when the service does. The production processes run on loopback: the web
server (granian, as the Procfile), `retorno worker`s, PostgreSQL (synchronous_commit on), Redis, and fake Twilio and
Telegram APIs that timestamp each reply.

Per rate it prints: messages/s stored (2xx), processed and replied; lag from the webhook's 2xx to the message's
first reply handed to the provider (p50, p99; also without the first minute, when every respondent starts at once);
the backlog (messages not yet processed plus replies not yet sent) every 30 s and at the end, and whether it grew
over the run's second half; CPU milliseconds per message by program; peak RSS per process.
A rate is sustainable when its backlog does not grow.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import re
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from urllib.parse import quote, urlsplit

import psycopg

from bench.common import (
    cpu_by_program,
    describe,
    fresh_database,
    machine,
    postgres_settings,
    print_json,
    process_tree_peaks,
    start_stack,
    wal_position,
)
from bench.conversations import conversation
from bench.loopback import FakeTwilio, Loop, OpenLoop, _read_message
from surveys.loader import bundled_files
from tests.support import TELEGRAM_SECRET, drop_database, telegram_message, twilio_form, twilio_signature

TWILIO_PATH = "/webhooks/twilio/sms"
TELEGRAM_PATH = "/webhooks/telegram"
GAP = 3.0
"""Seconds between one respondent's lines."""
WARM_UP = 60.0
"""Lag is also reported without the first minute, when every respondent starts at once (the campaign's first wave)."""
FIRST_REPLIES = """
    SELECT i.channel, i.provider_id, r.provider_id
    FROM inbound_messages i
    JOIN LATERAL (SELECT o.provider_id FROM outbound_messages o
                  WHERE o.contact_id = i.contact_id AND o.created_at = i.processed_at
                  ORDER BY o.id LIMIT 1) r ON true
    WHERE i.status = 'done'
"""
"""Each message's first reply: replies are written in the batch that processes the message, with its timestamp."""


class Message:
    __slots__ = ("key", "request")

    def __init__(self, key: str, request: bytes):
        self.key, self.request = key, request


def load(url: str, rate: float, seconds: float, telegram: float, duplicates: float, seed: int = 7) -> list[Message]:
    """The deliveries offered, in order: `rate * GAP` respondents write at once; finished ones are replaced."""
    parts = urlsplit(url)
    host = f"{parts.hostname}:{parts.port}"
    slots = int(rate * GAP) + 1
    choose = random.Random(seed)
    current: list[tuple[int, int, list[str]] | None] = [None] * slots
    messages: list[Message] = []
    later: dict[int, list[Message]] = defaultdict(list)
    generation = [0] * slots
    for index in range(int(rate * seconds)):
        slot = index % slots
        state = current[slot]
        if state is None or state[1] >= len(state[2]):
            state = (generation[slot] * slots + slot, 0, conversation(generation[slot] * slots + slot))
            generation[slot] += 1
        respondent, step, lines = state
        current[slot] = (respondent, step + 1, lines)
        text = lines[step]
        is_telegram = respondent % 100 < telegram * 100
        message = _telegram(host, respondent, step, text) if is_telegram else _twilio(url, host, respondent, step, text)
        messages.append(message)
        messages.extend(later.pop(index, []))
        if choose.random() < duplicates:
            later[index + choose.randint(1, 20)].append(message)
    for pending in later.values():
        messages.extend(pending)
    return messages


def _twilio(url: str, host: str, respondent: int, step: int, text: str) -> Message:
    sid = f"SM{respondent:016d}{step:016d}"
    sender = f"+5255{10000000 + respondent:08d}"
    form = twilio_form(sender, text, sid)
    body = "&".join(f"{quote(k, safe='')}={quote(v, safe='')}" for k, v in form.items()).encode()
    head = (f"POST {TWILIO_PATH} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/x-www-form-urlencoded\r\n"
            f"X-Twilio-Signature: {twilio_signature(url + TWILIO_PATH, form)}\r\nContent-Length: {len(body)}\r\n\r\n")
    return Message(sid, head.encode() + body)


def _telegram(host: str, respondent: int, step: int, text: str) -> Message:
    chat = 700_000_000 + respondent
    update = respondent * 100 + step + 1
    body = json.dumps(telegram_message(update, chat, text)).encode()
    head = (f"POST {TELEGRAM_PATH} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            f"X-Telegram-Bot-Api-Secret-Token: {TELEGRAM_SECRET}\r\nContent-Length: {len(body)}\r\n\r\n")
    return Message(f"tg{update}", head.encode() + body)


class Offer(OpenLoop):
    """The open-loop generator: each delivery at its due time on one of `connections` kept-alive connections."""

    def __init__(self, url: str, messages: list[Message], rate: float, connections: int = 96):
        parts = urlsplit(url)
        self.host, self.port = parts.hostname, parts.port
        self.requests, self.rate, self.connections = messages, rate, connections
        self.accepted: dict[str, float] = {}
        self.failed = self.late = self.sent = 0
        self.finished = 0.0

    async def _connection(self, queue: asyncio.Queue) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        try:
            while (item := await queue.get()) is not None:
                due, message = item
                if time.monotonic() - due > 0.25:
                    self.late += 1
                writer.write(message.request)
                status, _, _ = await _read_message(reader)
                self.sent += 1
                self.finished = time.time()
                if status.split(b" ")[1] != b"200":
                    self.failed += 1
                elif message.key not in self.accepted:
                    self.accepted[message.key] = time.time()
        finally:
            writer.close()


def backlog(dsn: str) -> int:
    """Messages not yet processed plus replies not yet handed to a provider."""
    with psycopg.connect(dsn) as connection:
        pending = connection.execute("SELECT count(*) FROM inbound_messages WHERE status = 'pending'").fetchone()[0]
        unsent = connection.execute("SELECT count(*) FROM outbound_messages WHERE status = 'queued'").fetchone()[0]
    return pending + unsent


def paid_survey(rate: float, seconds: float) -> str:
    """A folder with the bundled survey whose budget pays everyone the run can carry (the bundled one pays 1,000
    credits, spent in the first seconds): every completion's credit goes through the budget's path."""
    bundled = bundled_files()[0]
    source = bundled.read_text(encoding="utf-8")
    credits = int(rate * seconds) + 10_000
    source = re.sub(r"(?m)^  budget: \d+$", f"  budget: {credits * 30}", source, count=1)
    source = re.sub(r"(?m)^version: (\d+)$", lambda m: f"version: {int(m.group(1)) + 1000}", source, count=1)
    folder = tempfile.mkdtemp(prefix="retorno-moonshot-")
    Path(folder, bundled.name).write_text(source, encoding="utf-8")
    return folder


def cores(text: str | None) -> set[int] | None:
    """`0` or `0,1` as a set of cores; None (no pinning) for an empty value."""
    return {int(core) for core in text.split(",")} if text else None


def run_rate(rate: float, options: argparse.Namespace) -> dict:
    database = fresh_database()
    dsn = database.replace("postgresql+psycopg", "postgresql")
    loop = Loop()
    providers = FakeTwilio()
    providers_url = loop.run(providers.start())
    stack = start_stack(database, providers_url=providers_url, web_workers=options.web_workers,
                        threads=options.web_threads, workers=options.workers, server=options.server,
                        web_cpus=cores(options.web_cpus), worker_cpus=cores(options.worker_cpus),
                        RETORNO_SURVEYS_DIR=paid_survey(rate, options.seconds))
    samples: list[tuple[float, int]] = []
    try:
        messages = load(stack.url, rate, options.seconds, options.telegram, options.duplicates)
        offer = Offer(stack.url, messages, rate * len(messages) / int(rate * options.seconds))
        time.sleep(2)
        cpu_before, wal_before, started = cpu_by_program(), wal_position(), time.time()
        future = asyncio.run_coroutine_threadsafe(offer.run(), loop.loop)
        while not future.done():
            time.sleep(min(30.0, max(1.0, options.seconds / 20)))
            samples.append((round(time.time() - started, 1), backlog(dsn)))
        future.result()
        offered_for = offer.finished - started
        window_end = offer.finished
        cpu_after, wal_after = cpu_by_program(), wal_position()
        end_backlog = backlog(dsn)
        drain_started = time.time()
        while backlog(dsn) and time.time() - drain_started < 120:
            time.sleep(1)
        drained_in = time.time() - drain_started
        peaks = {f"web {i}": round(max(process_tree_peaks(p).values()), 1) for i, p in enumerate(stack.web)}
        peaks |= {f"worker {i}": round(max(process_tree_peaks(p).values()), 1) for i, p in enumerate(stack.workers)}
    finally:
        stack.stop()
        loop.run(providers.close())
        loop.stop()
    with psycopg.connect(dsn) as connection:
        processed = connection.execute(
            "SELECT count(*) FROM inbound_messages WHERE status = 'done' AND processed_at <= to_timestamp(%s)",
            (window_end,)).fetchone()[0]
        first_replies = connection.execute(FIRST_REPLIES).fetchall()
    drop_database("retorno_bench")
    replied = sum(1 for at in providers.handed.values() if at <= window_end)
    lags, steady = [], []
    for channel, key, reply in first_replies:
        accepted = offer.accepted.get(key if channel != "telegram" else f"tg{key}")
        handed = providers.handed.get(int(reply.removeprefix("SM"))) if reply else None
        if accepted is not None and handed is not None:
            lags.append(handed - accepted)
            if accepted >= started + WARM_UP:
                steady.append(handed - accepted)
    half = [count for at, count in samples if offered_for / 2 <= at <= offered_for]  # while offered, not drained
    grew = bool(half) and half[-1] > half[0] + rate * 2
    handled = max(1, len(offer.accepted))
    cpu_ms = {name: round((cpu_after.get(name, 0.0) - used) * 1000 / handled, 3)
              for name, used in cpu_before.items() if cpu_after.get(name, 0.0) - used > 0.5}
    return {
        "rate": rate, "seconds": round(offered_for, 1), "deliveries": offer.sent, "unique": len(offer.accepted),
        "non_2xx": offer.failed, "sent_late": offer.late,
        "stored_per_s": round(len(offer.accepted) / offered_for, 1),
        "processed_per_s": round(processed / offered_for, 1),
        "replied_per_s": round(replied / offered_for, 1),
        "lag_s": {k: round(v, 3) for k, v in describe(lags).items()},
        f"lag_s_after_{WARM_UP:g}_s": {k: round(v, 3) for k, v in describe(steady).items()},
        "lag_pairs": len(lags),
        "backlog_samples": samples, "backlog_end": end_backlog, "drained_in_s": round(drained_in, 1),
        "backlog_grew": grew, "cpu_ms_per_message": dict(sorted(cpu_ms.items(), key=lambda kv: -kv[1])),
        "wal_kb_per_message": round((wal_after[0] - wal_before[0]) / 1024 / handled, 2),
        "checkpoints": wal_after[1] - wal_before[1],
        "peak_rss_mb": peaks,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rates", default="400,650,800")
    parser.add_argument("--seconds", type=float, default=600)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--web-threads", type=int, default=32, help="threads per web process (the Procfile's 32)")
    parser.add_argument("--telegram", type=float, default=0.3)
    parser.add_argument("--duplicates", type=float, default=0.1)
    parser.add_argument("--server", default="granian")
    parser.add_argument("--web-cpus", default="", help="pin the web processes to these cores, e.g. 0")
    parser.add_argument("--worker-cpus", default="", help="pin the workers to these cores, e.g. 1")
    parser.add_argument("--allow-autovacuum-off", action="store_true",
                        help="measure even though the server does not vacuum (figures then fall over minutes)")
    options = parser.parse_args()
    if postgres_settings()["autovacuum"] != "on" and not options.allow_autovacuum_off:
        parser.exit(2, "bench.moonshot: autovacuum is off on this PostgreSQL (a CI setting; production runs it, and "
                       "minutes without it slow every plan): ALTER SYSTEM SET autovacuum = on; SELECT "
                       "pg_reload_conf(); or pass --allow-autovacuum-off\n")
    print_json("machine", machine())
    sustainable = None
    for rate in (float(r) for r in options.rates.split(",")):
        result = run_rate(rate, options)
        print_json(f"moonshot {rate:g}/s", result)
        if not result["backlog_grew"] and not result["non_2xx"]:
            sustainable = rate
    print_json("highest sustainable rate offered (messages/s)", sustainable)


if __name__ == "__main__":
    main()
