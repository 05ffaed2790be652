"""Incentives benchmark: how fast the budget can be held, and how fast credits are paid.

    python -m bench.incentives [--seconds 5] [--processes 1,2,4] [--records 600] [--latency 0,0.3]

1. Budget holds per second: K processes, each committing transactions that raise one survey wave's counter
   (the conditional UPDATE every consent runs), against the same K processes each raising its own wave. The
   shared row is the price of "never above the budget": its holds are serialized by the row lock.
2. The same in batches, as inbound workers hold credit: 50 holds per transaction with 5 ms of other work after
   each (the engine, the answers), holding at each consent (strict) or adding up and holding once at the end
   (deferred, what batches do unless they would pass the budget).
3. Credits paid per second by one `issue` job against a fake Reloadly on loopback whose top-ups take `latency`
   seconds: the job makes CONCURRENCY provider calls at a time.
"""

from __future__ import annotations

import argparse
import multiprocessing
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.common import fresh_database, machine, print_json, raw_postgres_commits
from tests.support import drop_database, make_settings

SURVEY = """
id: bench
version: 1
title: {es: Bench, en: Bench}
languages: [es, en]
default_language: es
incentive: {amount: 30, currency: MXN}
consent:
  text: {es: ¿Acepta?, en: Agree?}
questions:
  - id: state
    type: region
    text: {es: ¿Estado?, en: State?}
"""


def _definition():
    from surveys.loader import load_text

    return load_text(SURVEY)


def _holder(database_url: str, wave: int, seconds: float, results) -> None:
    from service import runtime as runtimes
    from service.incentives import budget

    rt = runtimes.build(make_settings(database_url, "http://127.0.0.1:9", Path("/tmp")))
    definition = _definition()
    done = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with rt.sessions() as session, session.begin():
            budget.commit(session, definition, wave, 3000)
        done += 1
    rt.engine.dispose()
    results.put(done)


def _batcher(database_url: str, deferred: bool, seconds: float, results, holds: int = 50, work: float = 0.005):
    from service import runtime as runtimes
    from service.incentives import budget

    rt = runtimes.build(make_settings(database_url, "http://127.0.0.1:9", Path("/tmp")))
    definition = _definition()
    done = 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with rt.sessions() as session, session.begin():
            tally = budget.Tally(session, deferred=deferred)
            for _ in range(holds):
                tally.commit(definition, 2, 3000)
                time.sleep(work)
            tally.settle()
        done += holds
    rt.engine.dispose()
    results.put(done)


def holds_per_second(database_url: str, processes: int, shared: bool, seconds: float) -> float:
    return _run(processes, seconds, lambda i: (_holder, (database_url, 1 if shared else 100 + i, seconds)))


def batch_holds_per_second(database_url: str, processes: int, deferred: bool, seconds: float) -> float:
    return _run(processes, seconds, lambda i: (_batcher, (database_url, deferred, seconds)))


def _run(processes: int, seconds: float, job) -> float:
    results: multiprocessing.Queue = multiprocessing.Queue()
    workers = []
    for i in range(processes):
        target, args = job(i)
        workers.append(multiprocessing.Process(target=target, args=(*args, results)))
    for worker in workers:
        worker.start()
    total = sum(results.get() for _ in workers)
    for worker in workers:
        worker.join()
    return total / seconds


def _seed_records(database_url: str, records: int) -> list[int]:
    """Contacts, completed sessions and pending incentive records, written directly."""
    import secrets

    from sqlalchemy import insert

    from service import runtime as runtimes
    from service.models import Contact, Incentive, SurveySession

    rt = runtimes.build(make_settings(database_url, "http://127.0.0.1:9", Path("/tmp")))
    now = datetime.now(UTC)
    ids: list[int] = []
    with rt.engine.begin() as connection:
        for i in range(records):
            phone = f"+5255{60000000 + i:08d}"
            contact = connection.execute(insert(Contact).values(
                public_id=secrets.token_hex(8), channel="sms", address_hash=rt.vault.hash("sms", phone),
                address_enc=rt.vault.encrypt(phone), tags=[], opted_out=False, unreachable=False,
                created_at=now, updated_at=now,
            ).returning(Contact.id)).scalar_one()
            session = connection.execute(insert(SurveySession).values(
                contact_id=contact, survey_id="bench", version=1, wave=1, status="completed", language="es",
                state={}, started_at=now, last_activity_at=now, reminders_sent=0, updated_at=now,
            ).returning(SurveySession.id)).scalar_one()
            ids.append(connection.execute(insert(Incentive).values(
                contact_id=contact, session_id=session, survey_id="bench", wave=1, amount_cents=3000,
                currency="MXN", status="pending", provider="reloadly", idempotency_key=f"rt-bench{i}",
                phone_hash=rt.vault.hash("phone", phone), phone_enc=rt.vault.encrypt(phone), attempts=0,
                next_attempt_at=now, created_at=now, updated_at=now,
            ).returning(Incentive.id)).scalar_one())
    rt.engine.dispose()
    return ids


def paid_per_second(records: int, latency: float, tmp: Path) -> dict:
    from service import runtime as runtimes
    from tests.fake_reloadly import FakeReloadly
    from workers import incentives

    database_url = fresh_database("retorno_bench_incentives")
    fake = FakeReloadly(latency_seconds=latency).start()
    try:
        ids = _seed_records(database_url, records)
        folder = tmp / "surveys"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "bench.yaml").write_text(SURVEY, encoding="utf-8")
        settings = make_settings(database_url, "http://127.0.0.1:9", tmp, surveys_dir=folder, **fake.settings(5.0))
        rt = runtimes.install(runtimes.build(settings, pool_size=incentives.CONCURRENCY))
        rt.catalog.publish()
        started = time.monotonic()
        outcomes = incentives.issue(*ids)
        elapsed = time.monotonic() - started
        rt.engine.dispose()
        runtimes.reset()
        return {"records": records, "provider_latency_s": latency, "outcomes": outcomes,
                "seconds": round(elapsed, 2), "paid_per_second": round(records / elapsed, 1)}
    finally:
        fake.stop()
        drop_database("retorno_bench_incentives")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--processes", default="1,2,4")
    parser.add_argument("--records", type=int, default=600)
    parser.add_argument("--latency", default="0,0.3")
    args = parser.parse_args()
    print_json("machine", machine())
    database_url = fresh_database("retorno_bench_budget")
    try:
        raw = raw_postgres_commits(database_url, connections=4, seconds=args.seconds)
        print_json("raw PostgreSQL commits per second (4 connections)", round(raw))
        for processes in (int(p) for p in args.processes.split(",")):
            shared = holds_per_second(database_url, processes, True, args.seconds)
            separate = holds_per_second(database_url, processes, False, args.seconds)
            print_json("budget holds per second", {
                "processes": processes, "one_wave": round(shared), "one_wave_each": round(separate),
            })
        for processes in (int(p) for p in args.processes.split(",")):
            strict = batch_holds_per_second(database_url, processes, False, args.seconds)
            deferred = batch_holds_per_second(database_url, processes, True, args.seconds)
            print_json("budget holds per second in batches of 50 (5 ms of work each)", {
                "processes": processes, "strict": round(strict), "deferred": round(deferred),
            })
    finally:
        drop_database("retorno_bench_budget")
    for latency in (float(x) for x in args.latency.split(",")):
        print_json("credits paid by one issue job", paid_per_second(args.records, latency, Path("/tmp/retorno-bench")))


if __name__ == "__main__":
    main()
