"""Processing benchmark: answers parsed and stored per second by 1 and 2 worker processes.

    python -m bench.processing [--respondents 2000] [--workers 1,2]

Each respondent's whole conversation (a greeting, consent and 21 answers of the bundled survey, in that
respondent's own wording: `bench.conversations`) is stored as pending messages first; then the workers start on
all of it at once. They serve only the message queue (`retorno worker --queue retorno`): the replies they write
stay queued for senders, which `bench.lag` measures. The raw limit writes the same rows again (the answers,
replies and session states the workers wrote, and each message's status), precomputed, in the same batch size,
with no Python survey logic: Retorno's figure is a ratio to it.
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

import psycopg
from psycopg.rows import dict_row
from redis import Redis

from bench.common import REDIS_URL, fresh_database, machine, print_json, start_stack
from bench.conversations import conversation
from bots.base import Incoming
from service import inbox
from service import runtime as runtimes
from service.db import json_rows
from service.queue import INBOX, QUEUE_NAME, RedisDispatcher
from tests.support import drop_database, make_settings
from workers.inbound import BATCH


def store_conversations(database_url: str, respondents: int) -> tuple[list[int], int]:
    """Store every respondent's messages as pending (not pushed); returns the ids and the number of answers."""
    from pathlib import Path

    settings = make_settings(database_url, "http://127.0.0.1:9", Path("/tmp"), redis_url=REDIS_URL)
    rt = runtimes.build(settings)
    scripts = [conversation(r) for r in range(respondents)]
    ids: list[int] = []
    now = datetime.now(UTC)
    for step in range(len(scripts[0])):
        rows = [
            inbox.row_for(rt, Incoming("sms", f"SM{step:03d}{r:029d}", f"+5255{40000000 + r:08d}", scripts[r][step]),
                          now)
            for r in range(respondents)
        ]
        for start in range(0, len(rows), 1000):
            with rt.sessions() as session, session.begin():
                ids.extend(i for i in inbox.insert_new(session, rows[start:start + 1000]) if i is not None)
    rt.engine.dispose()
    return sorted(ids), respondents * (len(scripts[0]) - 1)


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


def written_rows(database_url: str) -> dict[str, list]:
    """What the workers wrote, in the order they wrote it: answers, replies, the session state after each answer
    (the final state cut to the answers given so far) and the processed message ids."""
    dsn = database_url.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(dsn, row_factory=dict_row) as connection:
        answers = connection.execute(
            "SELECT session_id, question_id, value, skipped, in_gap, inbound_id, answered_at FROM answers"
            " ORDER BY inbound_id, id").fetchall()
        outbound = connection.execute(
            "SELECT contact_id, session_id, channel, kind, body, payload, status, attempts, created_at"
            " FROM outbound_messages ORDER BY id").fetchall()
        finals = {row["id"]: row["state"] for row in connection.execute("SELECT id, state FROM survey_sessions")}
        inbound = [row["id"] for row in connection.execute("SELECT id FROM inbound_messages ORDER BY id")]
    states = []
    for answer in answers:
        state, question = dict(finals[answer["session_id"]]), answer["question_id"]
        given = list(state.get("answers", {}))
        cut = given[: given.index(question) + 1] if question in given else given
        state["answers"] = {q: state["answers"][q] for q in cut}
        states.append({"id": answer["session_id"], "state": state, "question": question})
    return {"answers": answers, "outbound": outbound, "states": states, "inbound": inbound}


_RAW_WRITES = (
    "INSERT INTO raw_answers (session_id, question_id, value, skipped, in_gap, inbound_id, answered_at)"
    " SELECT session_id, question_id, value, skipped, in_gap, inbound_id, answered_at"
    " FROM jsonb_to_recordset(%s::jsonb)"
    " AS r(session_id bigint, question_id text, value jsonb, skipped bool, in_gap bool, inbound_id bigint,"
    " answered_at timestamptz)",
    "INSERT INTO raw_outbound (contact_id, session_id, channel, kind, body, payload, status, attempts, created_at)"
    " SELECT contact_id, session_id, channel, kind, body, payload, status, attempts, created_at"
    " FROM jsonb_to_recordset(%s::jsonb) AS r(contact_id bigint, session_id bigint, channel text, kind text, body text,"
    " payload jsonb, status text, attempts int, created_at timestamptz)",
    "UPDATE raw_sessions AS s SET state = r.state, question = r.question, last_activity_at = now()"
    " FROM jsonb_to_recordset(%s::jsonb) AS r(id bigint, state jsonb, question text) WHERE s.id = r.id",
    "UPDATE raw_inbound AS m SET status = 'done', processed_at = now()"
    " FROM jsonb_to_recordset(%s::jsonb) AS r(id bigint) WHERE m.id = r.id",
)


def raw_limit(database_url: str, rows: dict[str, list], batch: int = BATCH) -> float:
    """Messages/s for writing the same rows the workers wrote, `batch` messages per transaction: each message's
    answer, its share of the replies, its session's new state and its status. Every batch's four documents are
    encoded before the clock starts, so this is PostgreSQL's work, not the client's."""
    dsn = database_url.replace("postgresql+psycopg", "postgresql")
    messages = len(rows["inbound"])
    with psycopg.connect(dsn, autocommit=True) as connection:
        for statement in (
            "DROP TABLE IF EXISTS raw_answers, raw_outbound, raw_inbound, raw_sessions",
            "CREATE TABLE raw_answers (LIKE answers INCLUDING ALL)",
            "CREATE TABLE raw_outbound (LIKE outbound_messages INCLUDING ALL)",
            "CREATE TABLE raw_inbound (LIKE inbound_messages INCLUDING ALL)",
            "CREATE TABLE raw_sessions (LIKE survey_sessions INCLUDING ALL)",
            "INSERT INTO raw_inbound SELECT * FROM inbound_messages",
            "INSERT INTO raw_sessions SELECT * FROM survey_sessions",
        ):
            connection.execute(statement)
    share = {name: len(rows[name]) / messages for name in ("answers", "outbound", "states")}
    documents = []
    for first in range(0, messages, batch):
        last = min(first + batch, messages)
        part = {name: rows[name][round(first * share[name]):round(last * share[name])] for name in share}
        documents.append([
            json_rows(part["answers"]),
            json_rows(part["outbound"]),
            json_rows(part["states"]),
            json_rows([{"id": id_} for id_ in rows["inbound"][first:last]]),
        ])
    started = time.monotonic()
    with psycopg.connect(dsn) as connection:
        for batch_documents in documents:
            with connection.cursor() as cursor:
                for statement, document in zip(_RAW_WRITES, batch_documents, strict=True):
                    cursor.execute(statement, (document,), prepare=True)
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
        raw = raw_limit(database, written_rows(database))
        print_json(f"raw limit: the same rows written, precomputed, batches of {BATCH} (messages/s)", round(raw))
        print_json("ratio to raw", round(result["answers_per_s"] / raw, 3))
        drop_database("retorno_bench")
        Redis.from_url(REDIS_URL).flushdb()


if __name__ == "__main__":
    main()
