"""End-to-end lag at a fixed offered load: webhook accepted -> answer stored -> reply handed to the provider.

    python -m bench.lag [--rate 500] [--seconds 60] [--workers 2] [--web-workers 2]

An open-loop generator (asyncio, requests signed in advance) sends signed Twilio webhooks at a fixed rate (each
respondent writes every few seconds, the next line of a messy conversation, whatever the service's speed); a fake
Twilio on loopback (asyncio, the same loop) timestamps each reply.
Per message: accepted = the webhook's 200, stored = processed_at in the database, handed = the fake provider's
arrival time of the reply to it.
"""

from __future__ import annotations

import argparse
import time
from collections import defaultdict
from datetime import UTC, datetime

import psycopg

from bench.common import (
    CpuShare,
    describe,
    fresh_database,
    machine,
    print_json,
    process_tree_peaks,
    start_stack,
)
from bench.conversations import conversation
from bench.loopback import FakeTwilio, Loop, OpenLoop
from tests.support import drop_database


def conversation_load(rate: float, seconds: float, gap: float = 3.0) -> list[tuple[str, str, str]]:
    """(MessageSid, From, Body) offered in order: each respondent writes their next line every `gap` seconds."""
    respondents = int(rate * gap) + 1
    scripts = [conversation(r) for r in range(respondents)]
    messages = []
    for i in range(int(rate * seconds)):
        respondent, step = i % respondents, i // respondents
        script = scripts[respondent]
        messages.append((f"SM{respondent:016d}{step:016d}", f"+5255{50000000 + respondent:08d}",
                         script[step % len(script)]))
    return messages


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=float, default=500)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--web-workers", type=int, default=2)
    options = parser.parse_args()
    print_json("machine", machine())
    database = fresh_database()
    loop = Loop()
    provider = FakeTwilio()
    provider_url = loop.run(provider.start())
    stack = start_stack(database, providers_url=provider_url, web_workers=options.web_workers, threads=32,
                        workers=options.workers)
    try:
        time.sleep(2)
        generator = OpenLoop(stack.url, conversation_load(options.rate, options.seconds), options.rate)
        cpu = CpuShare().start()
        loop.run(generator.run())
        shares = cpu.stop()
        time.sleep(5)
        peaks = {f"web {i}": max(process_tree_peaks(p).values()) for i, p in enumerate(stack.web)}
        peaks |= {f"worker {i}": max(process_tree_peaks(p).values()) for i, p in enumerate(stack.workers)}
    finally:
        stack.stop()
        loop.run(provider.close())
        loop.stop()
    arrivals = provider.arrivals
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
    print_json("offered", {"rate": options.rate, "seconds": options.seconds, "sent": len(generator.requests),
                           "accepted": len(generator.accepted), "failed": generator.failed,
                           "sent_late": generator.late})
    print_json("accepted -> answer stored (s)", {k: round(v, 4) for k, v in describe(stored).items()})
    print_json("accepted -> reply handed to provider (s)", {k: round(v, 4) for k, v in describe(handed).items()})
    print_json("peak RSS MB", {k: round(v, 1) for k, v in peaks.items()})
    print_json("CPU while offered, % of the machine", shares)
    print_json("finished", datetime.now(UTC).isoformat())


if __name__ == "__main__":
    main()
