"""Scale-out: the same burst of conversations through 1 web + 1 worker process, then 2 web + 4 worker processes.

    python -m bench.scaleout [--messages 20000] [--configs 1x1,2x4]

A burst larger than the service can take at once (signed Twilio webhooks offered at `--rate`, 64 kept-alive
connections, each respondent writing the next line of a conversation every 3 s) goes through real gunicorn and
`retorno worker` processes, PostgreSQL and Redis, with a fake Twilio on loopback. Per configuration: webhooks
accepted per second, messages fully handled per second (stored, processed, reply handed to the provider) from the
first webhook to the last reply, and the CPU share of each program. On one 2-core machine, more processes cannot
add cores: the comparison shows what the extra processes cost or gain when the machine is the limit, which is the
case the "Scaling out" section of the README is about (add machines, not processes).
"""

from __future__ import annotations

import argparse
import time

import psycopg

from bench.common import CpuShare, fresh_database, machine, print_json, start_stack
from bench.lag import conversation_load
from bench.loopback import FakeTwilio, Loop, OpenLoop
from tests.support import drop_database


def handled(database_url: str) -> tuple[int, int]:
    """(inbound messages still pending, replies not yet sent)."""
    with psycopg.connect(database_url.replace("postgresql+psycopg", "postgresql")) as connection:
        pending = connection.execute("SELECT count(*) FROM inbound_messages WHERE status = 'pending'").fetchone()[0]
        queued = connection.execute(
            "SELECT count(*) FROM outbound_messages WHERE status IN ('queued', 'sending')"
        ).fetchone()[0]
    return pending, queued


def run(web_processes: int, workers: int, messages: int, rate: float, limit: float) -> dict:
    database = fresh_database()
    loop = Loop()
    provider = FakeTwilio()
    provider_url = loop.run(provider.start())
    stack = start_stack(database, providers_url=provider_url, web_workers=web_processes, threads=8,
                        workers=workers)
    try:
        time.sleep(2)
        load = conversation_load(rate, messages / rate)
        generator = OpenLoop(stack.url, load, rate)
        cpu = CpuShare().start()
        started = time.time()
        loop.run(generator.run())
        accepted_seconds = time.time() - started
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline and any(handled(database)):
            time.sleep(0.2)
        shares = cpu.stop()
        left = handled(database)
    finally:
        stack.stop()
        loop.run(provider.close())
        loop.stop()
    replies = sum(len(times) for times in provider.arrivals.values())
    last_reply = max((max(times) for times in provider.arrivals.values()), default=started)
    drop_database("retorno_bench")
    return {
        "web_processes": web_processes,
        "workers": workers,
        "offered": len(load),
        "accepted": len(generator.accepted),
        "failed": generator.failed,
        "accepted_per_s": round(len(generator.accepted) / accepted_seconds),
        "handled_per_s": round(len(generator.accepted) / max(last_reply - started, 1e-9)),
        "replies": replies,
        "left_pending_and_unsent": list(left),
        "cpu_percent_of_machine": shares,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--rate", type=float, default=2_000, help="offered webhooks/s (above what the service takes)")
    parser.add_argument("--configs", default="1x1,2x4", help="WEBxWORKERS, comma-separated")
    parser.add_argument("--limit", type=float, default=180, help="seconds to wait for the backlog to drain")
    options = parser.parse_args()
    print_json("machine", machine())
    for config in options.configs.split(","):
        web_processes, workers = (int(n) for n in config.split("x"))
        print_json(f"scale-out {web_processes} web + {workers} workers",
                   run(web_processes, workers, options.messages, options.rate, options.limit))


if __name__ == "__main__":
    main()
