"""Processing benchmark: answers parsed and stored per second by 1 and 2 worker processes.

    python -m bench.processing [--respondents 2000] [--workers 1,2]

Each respondent's whole conversation (hola, consent and 21 messy answers of the bundled survey) is stored as
pending messages first; then the workers start on all of it at once. They serve only the message queue
(`retorno worker --queue retorno`): the replies they write stay queued for senders, which `bench.lag` measures. The raw limit is the same database work per
message (insert the answer and the reply, update the session and the message) done with precomputed values in the
same batch size, with no Python survey logic: Retorno's figure is reported as a ratio to it.
"""

from __future__ import annotations

import argparse
import json
import time
from datetime import UTC, datetime

import psycopg
from redis import Redis

from bench.common import REDIS_URL, fresh_database, machine, print_json, start_stack
from bots.base import Incoming
from service import inbox
from service import runtime as runtimes
from service.queue import INBOX, QUEUE_NAME, RedisDispatcher
from tests.support import drop_database, make_settings
from tests.surveys.test_engine import RETURNEE_SCRIPT
from workers.inbound import BATCH


def store_conversations(database_url: str, respondents: int) -> tuple[list[int], int]:
    """Store every respondent's messages as pending (not pushed); returns the ids and the number of answers."""
    from pathlib import Path

    settings = make_settings(database_url, "http://127.0.0.1:9", Path("/tmp"), redis_url=REDIS_URL)
    rt = runtimes.build(settings)
    script = ["hola", *[text for text, _, _ in RETURNEE_SCRIPT]]
    ids: list[int] = []
    now = datetime.now(UTC)
    for step, text in enumerate(script):
        rows = [
            inbox.row_for(rt, Incoming("sms", f"SM{step:03d}{r:029d}", f"+5255{40000000 + r:08d}", text), now)
            for r in range(respondents)
        ]
        for start in range(0, len(rows), 1000):
            with rt.sessions() as session, session.begin():
                ids.extend(i for i in inbox.insert_new(session, rows[start:start + 1000]) if i is not None)
    rt.engine.dispose()
    return sorted(ids), respondents * (len(script) - 1)


def pending(database_url: str) -> int:
    with psycopg.connect(database_url.replace("postgresql+psycopg", "postgresql")) as connection:
        return connection.execute("SELECT count(*) FROM inbound_messages WHERE status = 'pending'").fetchone()[0]


def run_workers(database_url: str, ids: list[int], answers: int, workers: int) -> dict:
    stack = start_stack(database_url, web=1, web_workers=1, workers=workers, queues=(QUEUE_NAME,))
    try:
        time.sleep(3)
        dispatcher = RedisDispatcher(REDIS_URL)
        started = time.monotonic()
        for start in range(0, len(ids), 10_000):
            dispatcher.push(INBOX, ids[start:start + 10_000])
        left = len(ids)
        while left:
            time.sleep(0.1)
            left = pending(database_url)
        seconds = time.monotonic() - started
    finally:
        stack.stop()
    return {"workers": workers, "messages": len(ids), "answers": answers, "seconds": round(seconds, 2),
            "answers_per_s": round(answers / seconds), "answers_per_s_per_worker": round(answers / seconds / workers)}


def raw_limit(database_url: str, messages: int = 40_000, batch: int = BATCH) -> float:
    """Messages/s for the same writes per message, precomputed, in batches of `batch` per transaction."""
    dsn = database_url.replace("postgresql+psycopg", "postgresql")
    state = json.dumps({"survey_id": "reintegracion-mx", "version": 1, "language": "es", "status": "in_progress",
                        "question": "work", "attempts": 0, "answers": {q: v for _, q, v in RETURNEE_SCRIPT[:8]}})
    with psycopg.connect(dsn, autocommit=True) as connection:
        for statement in (
            "DROP TABLE IF EXISTS raw_answers, raw_outbound, raw_inbound, raw_sessions",
            "CREATE TABLE raw_answers (LIKE answers INCLUDING ALL)",
            "CREATE TABLE raw_outbound (LIKE outbound_messages INCLUDING ALL)",
            "CREATE TABLE raw_inbound (LIKE inbound_messages INCLUDING ALL)",
            "CREATE TABLE raw_sessions (LIKE survey_sessions INCLUDING ALL)",
        ):
            connection.execute(statement)
        connection.execute(
            "INSERT INTO raw_inbound (id, channel, provider_id, address_hash, address_enc, body, payload, received_at,"
            " status, attempts) SELECT g, 'sms', 'SM' || g, 'h', 'e', 'si', '{}', now(), 'pending', 0"
            " FROM generate_series(1, %s) g", (messages,))
        connection.execute(
            "INSERT INTO raw_sessions (id, contact_id, survey_id, version, wave, status, language, state, started_at,"
            " last_activity_at, reminders_sent, updated_at) SELECT g, g, 'reintegracion-mx', 1, 1, 'in_progress',"
            " 'es', '{}', now(), now(), 0, now() FROM generate_series(1, %s) g", (messages,))
    now = datetime.now(UTC)
    started = time.monotonic()
    with psycopg.connect(dsn) as connection:
        for first in range(1, messages + 1, batch):
            ids = list(range(first, min(first + batch, messages + 1)))
            with connection.cursor() as cursor:
                cursor.execute(
                    "INSERT INTO raw_answers (session_id, question_id, value, skipped, in_gap, inbound_id, answered_at)"
                    " SELECT unnest(%s::bigint[]), 'work', '\"own_account\"', false, false, unnest(%s::bigint[]), %s",
                    (ids, ids, now))
                cursor.execute(
                    "INSERT INTO raw_outbound (contact_id, session_id, channel, kind, body, payload, status, attempts,"
                    " created_at) SELECT unnest(%s::bigint[]), unnest(%s::bigint[]), 'sms', 'reply',"
                    " '¿Tiene trabajo?', '{}', 'queued', 0, %s", (ids, ids, now))
                cursor.execute("UPDATE raw_sessions SET state = %s, question = 'unfair_work', last_activity_at = %s"
                               " WHERE id = ANY(%s)", (state, now, ids))
                cursor.execute("UPDATE raw_inbound SET status = 'done', processed_at = %s WHERE id = ANY(%s)",
                               (now, ids))
            connection.commit()
    seconds = time.monotonic() - started
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("DROP TABLE raw_answers, raw_outbound, raw_inbound, raw_sessions")
    return messages / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--respondents", type=int, default=2000)
    parser.add_argument("--workers", default="1,2")
    options = parser.parse_args()
    print_json("machine", machine())
    results = []
    for workers in [int(w) for w in options.workers.split(",")]:
        database = fresh_database()
        ids, answers = store_conversations(database, options.respondents)
        result = run_workers(database, ids, answers, workers)
        print_json(f"processing, {workers} worker(s)", result)
        results.append(result)
        raw = raw_limit(database)
        print_json(f"raw limit: same writes per message, precomputed, batches of {BATCH} (messages/s)", round(raw))
        print_json("ratio to raw", round(result["answers_per_s"] / raw, 3))
        drop_database("retorno_bench")
        Redis.from_url(REDIS_URL).flushdb()


if __name__ == "__main__":
    main()
