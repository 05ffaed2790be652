"""Periodic jobs, run by RQ's CronScheduler in production and by a thread of `retorno run` on a bare machine."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid

from service.queue import queue_for, resolve

log = logging.getLogger(__name__)

# (job, every N seconds)
PERIODIC: list[tuple[str, int]] = [
    ("workers.sweeper.sweep", 5),
    ("workers.gaps.refresh_all", 60),
    ("workers.campaigns.tick", 2),
    ("workers.campaigns.maintain", 5),
    ("workers.incentives.tick", 5),
    ("workers.privacy.purge", 60),
]
LEADER_KEY = "retorno:scheduler:leader"
LEADER_TTL = 15


def embedded_loop(dispatcher, stop: threading.Event, tick: float = 1.0) -> None:
    """Enqueue each periodic job on the in-process queue when it is due, until `stop` is set."""
    due = {name: 0.0 for name, _ in PERIODIC}
    while not stop.is_set():
        now = time.monotonic()
        for name, every in PERIODIC:
            if now >= due[name]:
                dispatcher.enqueue(name)
                due[name] = now + every
        stop.wait(tick)


def cron_scheduler(connection):
    """RQ's CronScheduler with every periodic job registered."""
    from rq.cron import CronScheduler

    scheduler = CronScheduler(connection=connection, name=f"retorno:{socket.gethostname()}:{os.getpid()}")
    for name, every in PERIODIC:
        scheduler.register(resolve(name), queue_name=queue_for(name), interval=every, result_ttl=0)
    return scheduler


def leader_loop(connection, stop: threading.Event) -> None:
    """In a worker process: run the CronScheduler's enqueue loop while this process holds the leader lease.

    Every worker runs this thread; a Redis lease makes one of them enqueue, so jobs are not multiplied by the
    number of workers, and another takes over within LEADER_TTL seconds when the leader dies.
    """
    me = uuid.uuid4().hex
    scheduler = None
    while not stop.is_set():
        try:
            if _hold_lease(connection, me):
                scheduler = scheduler or cron_scheduler(connection)
                scheduler.enqueue_jobs()
                stop.wait(min(1.0, max(0.2, scheduler.calculate_sleep_interval())))
            else:
                stop.wait(LEADER_TTL / 3)
        except Exception as error:  # noqa: BLE001 - Redis down: try again later
            log.warning("scheduler: %s; retrying", type(error).__name__)
            stop.wait(2)


def _hold_lease(connection, me: str) -> bool:
    if connection.set(LEADER_KEY, me, nx=True, ex=LEADER_TTL):
        return True
    holder = connection.get(LEADER_KEY)
    if holder is not None and holder.decode() == me:
        connection.expire(LEADER_KEY, LEADER_TTL)
        return True
    return False
