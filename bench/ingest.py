"""Ingest benchmark: signed Twilio and Telegram webhooks at rising concurrency, with wrk.

    python -m bench.ingest [--seconds 60] [--connections 8,16,32,64] [--web-workers 2] [--threads 32]
                           [--retorno-threads N] [--servers granian] [--channels twilio,telegram]

Everything runs on this machine at once (wrk, the web server, PostgreSQL, Redis); no queue consumers run, so this
measures storing and acknowledging. Prints one line per level (with the CPU milliseconds per request of the web
server and of PostgreSQL), the raw limits measured in the same run, and the web processes' peak memory.

`--servers` compares, in one run, Retorno under granian (the Procfile's) and gunicorn (`gunicorn`), Retorno without
its fast path (`granian-flask`, `gunicorn-flask`: every webhook through Flask's routing, as `bench.flask_only`
serves it), and the naive durable webhook of `bench.naive` under either (`naive-gunicorn`, `naive-granian`; Twilio
only).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import time
from pathlib import Path

from bench.common import (
    REDIS_URL,
    ROOT,
    cpu_by_program,
    fresh_database,
    machine,
    print_json,
    process_tree_peaks,
    raw_postgres_commits,
    raw_redis_round_trips,
    start_stack,
)
from tests.processes import free_port, stop, wait_healthy, web_command
from tests.support import TELEGRAM_SECRET, TWILIO_TOKEN, drop_database

HERE = Path(__file__).resolve().parent


def measured(url: str, script: str, args: list[str], connections: int, seconds: int) -> dict:
    """wrk's figures and the CPU milliseconds per request the web server and PostgreSQL used meanwhile."""
    before = cpu_by_program()
    result = wrk(url, script, args, connections, seconds)
    after = cpu_by_program()
    requests = max(result["requests"], 1)
    for program, key in (("web", "web_cpu_ms"), ("postgresql", "postgresql_cpu_ms")):
        used = sum(total - before.get(name, 0.0) for name, total in after.items() if name.startswith(program))
        result[key] = round(used / requests * 1000, 3)
    return result


def wrk(url: str, script: str, args: list[str], connections: int, seconds: int) -> dict:
    command = [
        "wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "10s", "-s", str(HERE / script), url,
        "--", *args,
    ]
    output = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    line = next(line for line in output.splitlines() if line.startswith("{"))
    return json.loads(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--connections", default="8,16,32,64")
    parser.add_argument("--web-workers", type=int, default=2)
    parser.add_argument("--threads", type=int, default=32)
    parser.add_argument("--retorno-threads", type=int, default=None,
                        help="Retorno's threads per web process when they differ from the naive webhook's (--threads)")
    parser.add_argument("--channels", default="twilio,telegram")
    parser.add_argument("--servers", default="granian")
    options = parser.parse_args()
    levels = [int(c) for c in options.connections.split(",")]
    print_json("machine", machine())
    database = fresh_database()
    for server in options.servers.split(","):
        if server.startswith("naive-"):
            naive(database, server.removeprefix("naive-"), levels, options)
        else:
            retorno(database, server, levels, options)
    print_json("raw postgres, 1 row per commit, 32 connections (rows/s)", round(raw_postgres_commits(database)))
    print_json("raw postgres, 32 rows per commit, 32 connections (rows/s)",
               round(raw_postgres_commits(database, rows_per_commit=32)))
    print_json("raw redis RPUSH round trips, 32 connections (/s)", round(raw_redis_round_trips()))
    drop_database("retorno_bench")


def retorno(database: str, server: str, levels: list[int], options: argparse.Namespace) -> None:
    factory = "bench.flask_only:create_app" if server.endswith("-flask") else "service.app:create_app"
    stack = start_stack(database, web_workers=options.web_workers, threads=options.retorno_threads or options.threads,
                        server=server.removesuffix("-flask"), factory=factory)
    try:
        wrk(stack.url, "telegram.lua", [TELEGRAM_SECRET, "9", "10000"], 16, 5)
        tag = 10
        for channel in options.channels.split(","):
            for connections in levels:
                tag += 1
                if channel == "twilio":
                    result = measured(stack.url, "twilio_sms.lua", [stack.url, TWILIO_TOKEN, str(tag), "10000"],
                                 connections, options.seconds)
                else:
                    result = measured(stack.url, "telegram.lua", [TELEGRAM_SECRET, str(tag), "10000"],
                                      connections, options.seconds)
                print_json(f"ingest {server} {channel} c={connections}", result)
                time.sleep(2)
        peaks = {pid: round(mb, 1) for process in stack.web for pid, mb in process_tree_peaks(process).items()}
        print_json(f"{server} web peak RSS MB (master and workers)", peaks)
    finally:
        stack.stop()


def naive(database: str, server: str, levels: list[int], options: argparse.Namespace) -> None:
    """The naive durable webhook (bench.naive) under `server`, Twilio SMS only."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "NAIVE_DATABASE_URL": database.replace("+psycopg", ""), "NAIVE_REDIS_URL": REDIS_URL,
           "NAIVE_PUBLIC_URL": url, "TWILIO_AUTH_TOKEN": TWILIO_TOKEN}
    command = web_command(port, options.web_workers, options.threads, server, factory="bench.naive:create_app")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
                               start_new_session=True)
    try:
        wait_healthy(url)
        for tag, connections in enumerate(levels, start=50):
            result = measured(url, "twilio_sms.lua", [url, TWILIO_TOKEN, str(tag), "10000"], connections,
                              options.seconds)
            print_json(f"ingest naive-{server} twilio c={connections}", result)
            time.sleep(2)
        peaks = {pid: round(mb, 1) for pid, mb in process_tree_peaks(process).items()}
        print_json(f"naive-{server} web peak RSS MB (master and workers)", peaks)
    finally:
        stop(process)


if __name__ == "__main__":
    main()
