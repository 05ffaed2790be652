"""Campaign throughput on PostgreSQL: contact import, the sender (claim, send to a fake Twilio on loopback, record),
reminder planning and expiry, each timed alone, in one process.

    .venv/bin/python -m bench.campaigns [--contacts 10000]

`send`: the sender with a clock the benchmark moves one second at a time and a rate of 1,000/s, so the figure is
what one worker can push through (up to 200 messages per claim), not a configured rate. `paced`: 10 messages per
second with the clock moved 2 s at a time, as the 10,000-contact test does: the real time one step of 20 messages
costs. The fake Twilio runs in the same process, so HTTP costs both sides.
"""

from __future__ import annotations

import argparse
import io
import os
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from tempfile import mkdtemp

from bench.common import fresh_database, machine, print_json
from service import campaigns, runtime
from service.contacts import Report, load, read
from tests.fake_providers import FakeProviders
from tests.support import Clock, make_settings
from workers import campaigns as sender


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=10_000)
    args = parser.parse_args()
    database = fresh_database("retorno_bench_campaigns")
    providers = FakeProviders().start()
    settings = replace(make_settings(database, providers.url, Path(mkdtemp())), sender_rate=100_000.0)
    rt = runtime.install(runtime.build(settings))
    clock = rt.clock = Clock(datetime(2026, 3, 2, 18, 0, tzinfo=UTC))
    print_json("machine", machine())

    text = "phone,tags\n" + "".join(f"+5255{30000000 + i:08d},returnee\n" for i in range(args.contacts))
    started = time.perf_counter()
    report = Report()
    load(rt, read(io.StringIO(text), "MX", (), report), report)
    elapsed = time.perf_counter() - started
    print_json("import", {"rows": report.rows, "seconds": round(elapsed, 2),
                          "rows_per_s": round(report.rows / elapsed)})

    plan = campaigns.Plan(survey_id="reintegracion-mx", tag="returnee", rate=1000.0, quiet_hours=None,
                          remind_after=3600, max_reminders=1, expire_after=86400)
    campaign = campaigns.create(rt, plan)
    campaigns.start(rt, campaign.id)
    started = time.perf_counter()
    sent = 0
    while sent < args.contacts:
        clock.advance(seconds=1)
        sent += sender.tick(0)
    elapsed = time.perf_counter() - started
    print_json("send", {"messages": sent, "seconds": round(elapsed, 2),
                        "messages_per_s": round(sent / elapsed), "provider_got": len(providers.messages)})

    paced = campaigns.create(rt, replace(plan, tag="paced", rate=10.0))
    text = "phone,tags\n" + "".join(f"+5255{40000000 + i:08d},paced\n" for i in range(1001))
    load(rt, read(io.StringIO(text), "MX", (), Report()), Report())
    campaigns.start(rt, paced.id)
    sender.tick(0)
    started = time.perf_counter()
    for _ in range(50):
        clock.advance(seconds=2)
        sender.tick(0)
    elapsed = time.perf_counter() - started
    print_json("paced", {"rate": 10, "steps_of_2_s": 50, "ms_per_step": round(elapsed / 50 * 1000, 1)})

    clock.advance(hours=2)
    started = time.perf_counter()
    planned = sender.maintain()["reminders"]
    print_json("plan_reminders", {"reminders": planned, "seconds": round(time.perf_counter() - started, 2)})

    clock.now += timedelta(days=2)
    started = time.perf_counter()
    expired = sender.maintain()["expired"]
    elapsed = time.perf_counter() - started
    print_json("expire", {"sessions": expired, "seconds": round(elapsed, 2), "per_s": round(expired / elapsed)})
    print_json("load_average", dict(zip(("1m", "5m", "15m"), os.getloadavg(), strict=True)))
    providers.stop()


if __name__ == "__main__":
    main()
