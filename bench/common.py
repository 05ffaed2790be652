"""What the benchmarks share: a fresh database and Redis, Retorno processes, raw limits, figures, machine facts."""

from __future__ import annotations

import fcntl
import json
import os
import platform
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import psycopg
from redis import Redis

from service.db import upgrade
from tests.processes import free_port, service_env, start_web, start_worker, stop, wait_healthy
from tests.support import create_database

ROOT = Path(__file__).resolve().parents[1]
REDIS_URL = "redis://127.0.0.1:6379/13"
ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
LOCK_PATH = "/tmp/retorno-bench.lock"
_lock = None


@dataclass
class Stack:
    """A production-like Retorno on loopback: PostgreSQL database, Redis, web servers and workers."""

    database: str
    url: str
    env: dict[str, str]
    web: list[subprocess.Popen]
    workers: list[subprocess.Popen]

    def stop(self) -> None:
        for process in [*self.web, *self.workers]:
            stop(process)


def exclusive() -> None:
    """Hold the machine's benchmark lock for the rest of this process (waiting for another benchmark to finish):
    benchmarks share a database name, a Redis database and the cores, so two must never run at once."""
    global _lock
    if _lock is not None:
        return
    _lock = open(LOCK_PATH, "w")  # noqa: SIM115 - held until the process exits
    try:
        fcntl.flock(_lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        print(f"waiting for the benchmark that holds {LOCK_PATH} ...", file=sys.stderr, flush=True)
        fcntl.flock(_lock, fcntl.LOCK_EX)


def fresh_database(name: str = "retorno_bench") -> str:
    exclusive()
    url = create_database(name)
    upgrade(url)
    Redis.from_url(REDIS_URL).flushdb()
    return url


@contextmanager
def pinned(cpus: set[int] | None) -> Iterator[None]:
    """Processes started inside run only on `cpus` (they inherit this thread's affinity, restored after)."""
    if not cpus:
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, cpus)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def start_stack(database_url: str, providers_url: str = "http://127.0.0.1:9", web: int = 1, web_workers: int = 2,
                workers: int = 0, threads: int = 32, log: Path | None = None, queues: tuple[str, ...] = (),
                server: str = "granian", web_cpus: set[int] | None = None, worker_cpus: set[int] | None = None,
                factory: str = "service.app:create_app", **extra: str) -> Stack:
    """`web` servers (granian or gunicorn, each with `web_workers` processes) and `workers` RQ workers (of
    `queues`, or all), each kind optionally pinned to some cores (a stand-in for machines of its own)."""
    ports = [free_port() for _ in range(web)]
    env = service_env(database_url, REDIS_URL, providers_url, f"http://127.0.0.1:{ports[0]}", **extra)
    with pinned(web_cpus):
        servers = [start_web(env, port, workers=web_workers, threads=threads, log=log, server=server,
                             factory=factory) for port in ports]
    for port in ports:
        wait_healthy(f"http://127.0.0.1:{port}")
    with pinned(worker_cpus):
        consumers = [start_worker(env, log=log, queues=queues) for _ in range(workers)]
    return Stack(database_url, f"http://127.0.0.1:{ports[0]}", env, servers, consumers)


def children(pid: int) -> list[int]:
    try:
        output = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout
    except FileNotFoundError:
        return []
    return [int(p) for p in output.split()]


def peak_rss_mb(pid: int) -> float:
    """Peak resident memory (VmHWM) of a process, in MB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_by_program() -> dict[str, float]:
    """CPU seconds used so far by every process on the machine, grouped by program (postgres, redis, gunicorn,
    retorno worker, wrk, this benchmark)."""
    ticks = os.sysconf("SC_CLK_TCK")
    totals: dict[str, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        seconds = (int(fields[11]) + int(fields[12])) / ticks
        totals[_program(command, stat)] = totals.get(_program(command, stat), 0.0) + seconds
    return totals


def _program(command: str, stat: str) -> str:
    if "gunicorn" in command:
        return "web (gunicorn)"
    if "granian" in command:
        return "web (granian)"
    if "service.cli worker" in command:
        return "retorno worker"
    if command.startswith("postgres") or "(postgres)" in stat:
        return "postgresql"
    if "redis-server" in command:
        return "redis"
    if command.startswith("wrk"):
        return "wrk"
    if "-m bench." in command:
        return "benchmark (load and fakes)"
    return "other"


class CpuShare:
    """Share of the machine's CPU (100% = every core busy) each program used between `start` and `stop`."""

    def start(self) -> CpuShare:
        self.before, self.started = cpu_by_program(), time.monotonic()
        return self

    def stop(self) -> dict[str, float]:
        after, seconds = cpu_by_program(), time.monotonic() - self.started
        cores = os.cpu_count() or 1
        shares = {name: (used - self.before.get(name, 0.0)) / seconds / cores * 100 for name, used in after.items()}
        return {name: round(share, 1) for name, share in sorted(shares.items(), key=lambda kv: -kv[1]) if share >= 0.5}


def process_tree_peaks(process: subprocess.Popen) -> dict[int, float]:
    pids = [process.pid, *children(process.pid)]
    return {pid: peak_rss_mb(pid) for pid in pids}


def raw_postgres_commits(database_url: str, connections: int = 32, seconds: float = 10.0,
                         rows_per_commit: int = 1) -> float:
    """Rows/s of INSERT ... COMMIT of inbound-message-sized rows from `connections` threads: the durable limit."""
    dsn = database_url.replace("postgresql+psycopg", "postgresql")
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("DROP TABLE IF EXISTS bench_raw")
        connection.execute(
            "CREATE TABLE bench_raw (id bigserial PRIMARY KEY, channel text, provider_id text UNIQUE, "
            "address_hash text, address_enc text, body text, payload jsonb, received_at timestamptz, status text)"
        )
    counts = [0] * connections
    deadline = time.monotonic() + seconds
    row = ("sms", None, "a" * 64, "b" * 80, "nuevo leon", '{"kind": "text"}', datetime.now(UTC), "pending")

    def work(index: int) -> None:
        with psycopg.connect(dsn) as connection:
            n = 0
            while time.monotonic() < deadline:
                with connection.cursor() as cursor:
                    cursor.executemany(
                        "INSERT INTO bench_raw (channel, provider_id, address_hash, address_enc, body, payload, "
                        "received_at, status) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
                        [(row[0], f"{index}-{n + i}", *row[2:]) for i in range(rows_per_commit)],
                    )
                connection.commit()
                n += rows_per_commit
            counts[index] = n

    _run_threads(work, connections)
    with psycopg.connect(dsn, autocommit=True) as connection:
        connection.execute("DROP TABLE bench_raw")
    return sum(counts) / seconds


def raw_redis_round_trips(connections: int = 32, seconds: float = 5.0) -> float:
    """RPUSH round trips/s from `connections` threads."""
    counts = [0] * connections
    deadline = time.monotonic() + seconds

    def work(index: int) -> None:
        redis = Redis.from_url(REDIS_URL)
        n = 0
        while time.monotonic() < deadline:
            redis.rpush("bench:raw", n)
            n += 1
        counts[index] = n
        redis.close()

    _run_threads(work, connections)
    Redis.from_url(REDIS_URL).delete("bench:raw")
    return sum(counts) / seconds


def _run_threads(work: Callable[[int], None], count: int) -> None:
    threads = [threading.Thread(target=work, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def machine() -> dict[str, str]:
    exclusive()
    cpu = ""
    try:
        cpu = next(
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        )
    except (OSError, StopIteration):
        pass
    with psycopg.connect(ADMIN_DSN) as connection:
        pg = connection.execute("SHOW server_version").fetchone()[0]
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{cpu} x {os.cpu_count()}",
        "python": platform.python_version(),
        "postgresql": pg,
        "postgresql_settings": postgres_settings(),
        "redis": Redis.from_url(REDIS_URL).info()["redis_version"],
    }


SETTINGS_SHOWN = ("autovacuum", "synchronous_commit", "shared_buffers", "max_wal_size", "checkpoint_timeout")
"""The server settings that move these figures: each benchmark's machine line states them."""


def postgres_settings() -> dict[str, str]:
    with psycopg.connect(ADMIN_DSN) as connection:
        return {name: connection.execute(f"SHOW {name}").fetchone()[0] for name in SETTINGS_SHOWN}


def wal_position(dsn: str = ADMIN_DSN) -> tuple[int, int]:
    """(bytes of WAL written so far, checkpoints so far): a run's difference is its WAL and its checkpoints."""
    with psycopg.connect(dsn) as connection:
        row = connection.execute(
            "SELECT pg_current_wal_lsn() - '0/0'::pg_lsn, checkpoints_timed + checkpoints_req FROM pg_stat_bgwriter"
        ).fetchone()
    return int(row[0]), int(row[1])


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def describe(values: list[float]) -> dict[str, float]:
    return {
        "p50": percentile(values, 50),
        "p95": percentile(values, 95),
        "p99": percentile(values, 99),
        "mean": statistics.fmean(values) if values else float("nan"),
    }


def print_json(label: str, data: object) -> None:
    print(f"{label}: {json.dumps(data, ensure_ascii=False)}", flush=True)

