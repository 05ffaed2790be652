"""Benchmark: gap aggregation over 1,000,000 answers on PostgreSQL.

    .venv/bin/python bench/gaps.py [--answers 1000000] [--admin-url postgresql://postgres@127.0.0.1:5432/postgres]

Creates a throwaway database, fills it with completed sessions of the bundled survey (COPY, realistic answer
mix: 21 answers per returnee, 18 per community member, 32 states), then times the aggregation (the one SQL
statement), disclosure control and a whole release (aggregate, protect, store), each several times, and
prints the figures. The database is dropped at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psycopg  # noqa: E402

from surveys.loader import bundled_files, load_text  # noqa: E402


def respondents_for(definition, answers: int, seed: int = 5) -> list[dict]:
    """Completed respondents of `definition` until about `answers` answers; each a {question_id: value}."""
    rng = random.Random(seed)
    regions = [r.code for r in definition.region_question.regions]
    region_weights = [rng.uniform(0.2, 3.0) for _ in regions]
    people, total = [], 0
    while total < answers:
        person: dict[str, object] = {"consent": "yes"}
        for q in definition.questions[1:]:
            if q.when and "returnee" in q.when and person.get("returned") != "returnee":
                continue
            if q.type == "region":
                person[q.id] = rng.choices(regions, region_weights)[0]
            elif q.type == "multi":
                person[q.id] = sorted(rng.sample([c.value for c in q.choices if not c.exclusive], 2))
            elif q.id == "returned":
                person[q.id] = "returnee" if rng.random() < 0.6 else "community"
            else:
                choices = [c.value for c in q.choices] or ["yes", "no"]
                person[q.id] = rng.choice(choices)
        people.append(person)
        total += len(person)
    return people


def fill(url: str, definition, people: list[dict]) -> int:
    now = datetime(2026, 3, 1, tzinfo=UTC)
    with psycopg.connect(url) as connection, connection.cursor() as cursor:
        with cursor.copy(
            "COPY contacts (id, public_id, channel, address_hash, address_enc, tags, opted_out, unreachable,"
            " created_at, updated_at) FROM STDIN"
        ) as copy:
            for i, _ in enumerate(people, 1):
                copy.write_row((i, f"r{i:010d}", "sms", f"{i:064x}", "x", "[]", False, False, now, now))
        with cursor.copy(
            "COPY survey_sessions (id, contact_id, survey_id, version, wave, status, language, region, state,"
            " started_at, completed_at, last_activity_at, reminders_sent, updated_at) FROM STDIN"
        ) as copy:
            for i, person in enumerate(people, 1):
                done = now + timedelta(seconds=i)
                copy.write_row((i, i, definition.id, definition.version, 1, "completed", "es",
                                person.get(definition.region_question.id), "{}", now, done, done, 0, done))
        lines = []
        stamp = now.isoformat()
        for i, person in enumerate(people, 1):
            for question_id, value in person.items():
                q = definition.question(question_id)
                in_gap = "\\N"
                if q.is_indicator:
                    in_gap = "t" if any(v in q.gap for v in (value if isinstance(value, list) else [value])) else "f"
                lines.append(f"{i}\t{question_id}\t{json.dumps(value)}\tf\t{in_gap}\t{stamp}\n")
        answers = len(lines)
        with cursor.copy(
            "COPY answers (session_id, question_id, value, skipped, in_gap, answered_at) FROM STDIN"
        ) as copy:
            copy.write("".join(lines))
        connection.commit()
    with psycopg.connect(url, autocommit=True) as connection:
        connection.execute("VACUUM ANALYZE")
    return answers


def timed(function, repeat: int) -> tuple[list[float], object]:
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = function()
        times.append(time.perf_counter() - started)
    return times, result


def main() -> None:
    from bench.common import exclusive

    exclusive()
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--answers", type=int, default=1_000_000)
    parser.add_argument("--admin-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    from sqlalchemy import create_engine

    from service.db import upgrade
    from service.gaps import aggregate, disclosure
    from service.gaps.snapshot import release

    definition = load_text(bundled_files()[0].read_text(encoding="utf-8"), "bundled")
    name = f"retorno_bench_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(args.admin_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = args.admin_url.rsplit("/", 1)[0]
    url = f"{base}/{name}"
    sa_url = url.replace("postgresql://", "postgresql+psycopg://", 1)
    try:
        upgrade(sa_url)
        started = time.perf_counter()
        people = respondents_for(definition, args.answers)
        answers = fill(url, definition, people)
        seconds = time.perf_counter() - started
        print(f"filled {answers:,} answers of {len(people):,} completed sessions in {seconds:.1f} s")
        engine = create_engine(sa_url)

        def run_count():
            with engine.connect() as connection:
                return aggregate.count(connection, definition)

        run_count()  # warm the cache once
        count_times, counts = timed(run_count, args.repeat)
        suppress_times, decision = timed(lambda: disclosure.protect(counts, definition), args.repeat)

        class _Runtime:  # the part of Runtime that release() uses
            def __init__(self):
                from service.db import session_factory

                self.engine = engine
                self.sessions = session_factory(engine)

            def now(self):
                return datetime.now(UTC)

        rt = _Runtime()
        snapshot_times, _ = timed(lambda: release(rt, definition, force=True), args.repeat)
        print(f"cells: {len(counts.cells):,}; suppressed by disclosure control: {len(decision.suppressed):,}")
        print(f"machine: {platform.machine()}, {_cores()} cores, Python {platform.python_version()}, "
              f"PostgreSQL {_server_version(url)}; load average {os.getloadavg()[0]:.1f} (other work on the machine)")
        for label, times in (("aggregation (SQL)", count_times), ("disclosure control", suppress_times),
                             ("whole release (aggregate, protect every table, store)", snapshot_times)):
            print(f"{label}: median {statistics.median(times):.3f} s, best {min(times):.3f} s "
                  f"over {len(times)} runs")
        engine.dispose()
    finally:
        with psycopg.connect(args.admin_url, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _cores() -> int:
    return os.cpu_count() or 1


def _server_version(url: str) -> str:
    with psycopg.connect(url) as connection:
        return connection.execute("SHOW server_version").fetchone()[0]


if __name__ == "__main__":
    main()
