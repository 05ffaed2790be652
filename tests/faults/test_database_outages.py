"""PostgreSQL down in the middle of conversations, and a web process killed while it spools: no SMS is lost.

While the database is down, webhooks are answered 200 from the web machine's spool (service.spool), and replayed into
the database when it is back. Twilio does not deliver a messaging webhook again after a 5xx, so before the spool an
outage lost the SMS that arrived during it; these tests run real web and worker processes against a throwaway
PostgreSQL that they stop and start.
"""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from surveys.loader import bundled_files, load_file
from tests.crowd import Crowd
from tests.faults.flood import Flood
from tests.faults.test_faults import (
    _replies_by_address,
    _stored,
    _wait_processed,
    retorno_on_throwaway_postgres,
)
from tests.integration.test_many_respondents import _export
from tests.processes import running, start_web, start_worker, stop, wait_healthy

pytestmark = pytest.mark.integration

SMS, TELEGRAM = 24, 8
OUTAGES = (2.0, 15.0, 28.0)  # seconds after the first message; each outage lasts DOWN seconds
DOWN = 10.0
RESUMED_WITHIN = 10.0
DEADLINE = 150.0


def _spooled(data_dir: str) -> list[Path]:
    return sorted((Path(data_dir) / "spool").glob("*.spool"))


def test_postgres_stopped_three_times_mid_conversation_loses_no_sms(redis_url, providers, tmp_path):
    definition = load_file(bundled_files()[0])
    with retorno_on_throwaway_postgres(redis_url, providers, tmp_path) as on:
        postgres, env, web_url, log = on.postgres, on.env, on.web_url, on.log
        crowd = Crowd(definition, web_url, web_url, seed=22, threads=SMS + TELEGRAM, think=0.6)
        for i in range(SMS):
            crowd.add("sms", f"+5255{40000000 + i:08d}")
        for i in range(TELEGRAM):
            crowd.add("telegram", str(620000 + i))
        arrivals: list[float] = []

        def delivered(sent) -> None:
            arrivals.append(time.monotonic())
            crowd.deliver(sent)

        providers.on_message = delivered
        restarts: list[float] = []
        with running(start_web(env, on.port, log=log), start_worker(env, log=log), start_worker(env, log=log)):
            wait_healthy(web_url)
            started = time.monotonic()
            crowd.start()
            posted_while_down = []
            for at in OUTAGES:
                time.sleep(max(0.0, started + at - time.monotonic()))
                before = crowd.posted
                postgres.stop("fast")
                time.sleep(DOWN)
                posted_while_down.append(crowd.posted - before)
                postgres.start()
                restarts.append(time.monotonic())
            while crowd.pending() and time.monotonic() - started < DEADLINE and not crowd.errors:
                time.sleep(0.5)
            time.sleep(1)
            crowd.stop()
            stored = _export(postgres.url)
            engine = create_engine(postgres.url)
            with engine.connect() as connection:
                inbound = dict(connection.execute(text(
                    "SELECT status, count(*) FROM inbound_messages GROUP BY status")).all())
            engine.dispose()
        spooled = _spooled(env["RETORNO_DATA_DIR"])

    assert not crowd.errors, f"every webhook is answered 200: {crowd.errors[:5]}"
    unfinished = crowd.pending()
    assert not unfinished, f"{len(unfinished)} respondents unfinished, e.g. {unfinished[0]}\n" + log.read_text()[-3000:]
    assert sum(inbound.values()) == crowd.posted and set(inbound) == {"done"}, (
        f"every distinct delivery stored once and processed: {inbound}, {crowd.posted} posted")
    for address, respondent in crowd.respondents.items():
        assert stored[address] == {"status": "completed", "answers": respondent.expected}, address
        assert len(respondent.received) == 1 + len(respondent.expected), f"{address} got a message twice or missed one"
    resumed = [min((t for t in arrivals if t > restart), default=float("inf")) - restart for restart in restarts]
    assert all(posted_while_down), f"each outage fell in the middle of conversations: {posted_while_down}"
    assert max(resumed) < RESUMED_WITHIN, f"replies resumed {resumed} s after the restarts"
    assert not spooled, spooled


def test_web_killed_while_spooling_then_every_acknowledged_message_is_stored_once(redis_url, providers, tmp_path):
    with retorno_on_throwaway_postgres(redis_url, providers, tmp_path) as on:
        postgres, env, port, web_url, log = on.postgres, on.env, on.port, on.web_url, on.log
        with running(start_worker(env, log=log)):
            web = start_web(env, port, log=log)
            wait_healthy(web_url)
            flood = Flood(web_url, rate=80).start()
            time.sleep(1)
            postgres.stop("fast")
            down_from = len(flood.deliveries)
            time.sleep(2)
            stop(web, sig=signal.SIGKILL)  # the web server and its workers, in the middle of spooling
            killed_at = len(flood.deliveries)
            left_behind = _spooled(env["RETORNO_DATA_DIR"])
            web = start_web(env, port, log=log)  # the next web process on this machine, the database still down
            wait_healthy(web_url)
            time.sleep(1)
            postgres.start()
            time.sleep(2)
            flood.stop()
            acknowledged = flood.acknowledged()
            counts = _wait_processed(postgres.url, len(acknowledged), timeout=60)
            stored = _stored(postgres.url)
            stop(web)
        spooled = _spooled(env["RETORNO_DATA_DIR"])
    spooling = [d for d in flood.deliveries[down_from:killed_at] if d.status == 200]
    assert len(spooling) > 20 and left_behind, "the web process was killed while it spooled"
    assert flood.statuses() <= {200, 0}, f"200, or no answer from a killed process: {flood.statuses()}"
    missing = [d for d in acknowledged if stored.get((d.channel, d.provider_id)) != "done"]
    assert not missing, f"{len(missing)} acknowledged messages not processed, e.g. {missing[:3]}; {counts}"
    replies = _replies_by_address(providers)
    assert all(replies.get(d.address) == 1 for d in acknowledged), "each acknowledged message processed once"
    assert not spooled, spooled
