"""Waking the workers: Redis lists and RQ jobs in production, an in-process queue on a bare machine.

The database is the source of truth. The queue only says "look at these message ids": pushes are best effort
(a failed push is logged and counted, never raised), and the sweeper re-pushes whatever stays unprocessed.
The ids of new messages go to a Redis list; a drain job pops them in batches, so one job handles many messages.
A flag key makes sure one drain job is waiting whenever ids are pushed, without enqueueing one job per message;
it names that job, so the sweeper can tell a flag whose job was lost with a dying worker and schedule another.
Sending has its own RQ queue, which workers serve first, so replies never wait behind a long inbound backlog.
Jobs that wait on slow outside APIs (airtime top-ups) have a queue served last, so they never delay conversations.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from redis import Redis
    from rq import Queue

log = logging.getLogger(__name__)

QUEUE_NAME = "retorno"
SEND_QUEUE_NAME = "retorno-send"
SLOW_QUEUE_NAME = "retorno-slow"
QUEUE_NAMES = (SEND_QUEUE_NAME, QUEUE_NAME, SLOW_QUEUE_NAME)
"""RQ queues in the order a worker serves them: sends, then messages and periodic jobs, then top-ups."""
SLOW_JOBS = ("workers.incentives.",)
"""Job paths (prefixes) that go to the slow queue."""
INBOX, OUTBOX = "inbox", "outbox"
DRAIN_JOBS = {INBOX: "workers.inbound.drain", OUTBOX: "workers.outbound.drain"}
DRAIN_FLAG_TTL = 120
"""Seconds a drain flag lives at most, should its job be lost and no sweeper notice."""


class Dispatcher(Protocol):
    def push(self, box: str, ids: Sequence[int], wake: bool = True) -> bool: ...

    def pop(self, box: str, count: int) -> list[int]: ...

    def draining(self, box: str) -> None: ...

    def ensure_drain(self, box: str, verify: bool = False) -> None: ...

    def send_waiting(self) -> bool: ...

    def enqueue(self, function: str, *args: Any, **options: Any) -> bool: ...

    def depth(self) -> dict[str, int]: ...

    def ping(self) -> bool: ...


class RedisDispatcher:
    """Redis lists for message ids and RQ for the jobs that drain them."""

    def __init__(self, url: str, prefix: str = "retorno"):
        from redis import Redis
        from rq import Queue

        self.url = url
        self.redis = Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2, health_check_interval=30)
        self.queue = Queue(QUEUE_NAME, connection=self.redis, default_timeout=600)
        self.send_queue = Queue(SEND_QUEUE_NAME, connection=self.redis, default_timeout=600)
        self.slow_queue = Queue(SLOW_QUEUE_NAME, connection=self.redis, default_timeout=600)
        self.queues = [self.send_queue, self.queue, self.slow_queue]
        """What a worker listens to, in priority order."""
        self.prefix = prefix
        self.failures = 0

    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def worker_queues(self, only: Sequence[str] = ()) -> tuple[Redis, list[Queue]]:
        """A connection and queues (all, or those named in `only`, in priority order) for an RQ worker: no read
        timeout, since a worker blocks on BLPOP while idle (with the pushers' 2 s timeout, RQ would take each idle
        wait for a lost connection and back off)."""
        from redis import Redis
        from rq import Queue

        connection = Redis.from_url(self.url, socket_connect_timeout=5, socket_keepalive=True, health_check_interval=30)
        return connection, [
            Queue(q.name, connection=connection, default_timeout=600)
            for q in self.queues
            if not only or q.name in only
        ]

    def push(self, box: str, ids: Sequence[int], wake: bool = True) -> bool:
        """Append ids to a box; with `wake`, make sure a drain job will run (else the sweeper wakes one)."""
        if not ids:
            return True
        try:
            job_id = uuid.uuid4().hex
            with self.redis.pipeline(transaction=False) as pipe:
                pipe.rpush(self._key(box), *ids)
                if wake:
                    pipe.set(self._key("drain", box), job_id, nx=True, ex=DRAIN_FLAG_TTL)
                flag_set = pipe.execute()[-1] if wake else False
            if flag_set:
                self._enqueue_drain(box, job_id)
            return True
        except Exception as error:  # noqa: BLE001 - Redis down must not fail a stored message
            self.failures += 1
            log.warning("queue push to %s failed (%s); the sweeper will retry", box, type(error).__name__)
            return False

    def pop(self, box: str, count: int) -> list[int]:
        values = self.redis.lpop(self._key(box), count) or []
        return [int(v) for v in values]

    def draining(self, box: str) -> None:
        """Called when a drain job starts: later pushes must schedule another job."""
        self.redis.delete(self._key("drain", box))

    def ensure_drain(self, box: str, verify: bool = False) -> None:
        """Schedule a drain job unless one is waiting; with `verify`, also when the job the flag names is no longer
        waiting (a worker died between taking it and starting it), instead of trusting the flag until it expires."""
        flag, job_id = self._key("drain", box), uuid.uuid4().hex
        if self.redis.set(flag, job_id, nx=True, ex=DRAIN_FLAG_TTL):
            self._enqueue_drain(box, job_id)
        elif verify and self._lost(self.redis.get(flag)):
            self.redis.set(flag, job_id, ex=DRAIN_FLAG_TTL)
            self._enqueue_drain(box, job_id)
            log.warning("drain of %s: its job was lost (a worker died taking it); scheduled another", box)

    def _lost(self, job_id: bytes | None, grace: float = 2.0) -> bool:
        """The flag's job will never clear it: gone, ended, popped from its queue but never started, or started
        more than `grace` seconds ago (a live worker's drain clears the flag on its first line)."""
        from rq.exceptions import NoSuchJobError
        from rq.job import Job, JobStatus

        if job_id is None:
            return False
        try:
            job = Job.fetch(job_id.decode(), connection=self.redis)
        except NoSuchJobError:
            return True
        status = job.get_status(refresh=False)
        if status == JobStatus.QUEUED:
            return job.get_position() is None
        if status == JobStatus.STARTED and job.started_at is not None:
            return (datetime.now(UTC) - job.started_at.replace(tzinfo=UTC)).total_seconds() > grace
        return True

    def send_waiting(self) -> bool:
        """A send job is queued and no worker has taken it yet (a long drain of the inbox then hands over)."""
        try:
            return bool(self.redis.llen(self.send_queue.key))
        except Exception:  # noqa: BLE001 - only a hint
            return False

    def _enqueue_drain(self, box: str, job_id: str) -> None:
        queue = self.send_queue if box == OUTBOX else self.queue
        queue.enqueue(DRAIN_JOBS[box], job_id=job_id, job_timeout=600, result_ttl=0, failure_ttl=86400)

    def enqueue(self, function: str, *args: Any, **options: Any) -> bool:
        queue = self.slow_queue if queue_for(function) == SLOW_QUEUE_NAME else self.queue
        try:
            queue.enqueue(function, *args, result_ttl=0, failure_ttl=86400, **options)
            return True
        except Exception as error:  # noqa: BLE001
            self.failures += 1
            log.warning("enqueue of %s failed (%s)", function, type(error).__name__)
            return False

    def depth(self) -> dict[str, int]:
        with self.redis.pipeline(transaction=False) as pipe:
            pipe.llen(self._key(INBOX))
            pipe.llen(self._key(OUTBOX))
            pipe.llen(self.queue.key)
            pipe.llen(self.send_queue.key)
            inbox, outbox, jobs, sends = pipe.execute()
        return {INBOX: inbox, OUTBOX: outbox, "jobs": jobs + sends}

    def ping(self) -> bool:
        try:
            return bool(self.redis.ping())
        except Exception:  # noqa: BLE001
            return False


class EmbeddedDispatcher:
    """The same interface in one process: deques, and jobs run by `run_pending` or a background thread."""

    def __init__(self) -> None:
        self.boxes: dict[str, collections.deque[int]] = {INBOX: collections.deque(), OUTBOX: collections.deque()}
        self.jobs: collections.deque[tuple[str, tuple[Any, ...]]] = collections.deque()
        self.scheduled: set[str] = set()
        self.lock = threading.Lock()
        self.wake = threading.Event()
        self.failures = 0

    def push(self, box: str, ids: Sequence[int], wake: bool = True) -> bool:
        with self.lock:
            self.boxes[box].extend(ids)
        if wake:
            self.ensure_drain(box)
        return True

    def pop(self, box: str, count: int) -> list[int]:
        with self.lock:
            queue = self.boxes[box]
            return [queue.popleft() for _ in range(min(count, len(queue)))]

    def draining(self, box: str) -> None:
        with self.lock:
            self.scheduled.discard(box)

    def ensure_drain(self, box: str, verify: bool = False) -> None:
        with self.lock:
            if box in self.scheduled:
                return
            self.scheduled.add(box)
            self.jobs.append((DRAIN_JOBS[box], ()))
        self.wake.set()

    def send_waiting(self) -> bool:
        with self.lock:
            return any(function == DRAIN_JOBS[OUTBOX] for function, _ in self.jobs)

    def enqueue(self, function: str, *args: Any, **options: Any) -> bool:
        with self.lock:
            self.jobs.append((function, args))
        self.wake.set()
        return True

    def depth(self) -> dict[str, int]:
        with self.lock:
            return {INBOX: len(self.boxes[INBOX]), OUTBOX: len(self.boxes[OUTBOX]), "jobs": len(self.jobs)}

    def ping(self) -> bool:
        return True

    def run_pending(self, limit: int = 10_000) -> int:
        """Run queued jobs (and the jobs they queue) until none is left; returns how many ran."""
        ran = 0
        while ran < limit:
            with self.lock:
                if not self.jobs:
                    return ran
                function, args = self.jobs.popleft()
            _call(function, args)
            ran += 1
        return ran

    def serve(self, stop: threading.Event, idle: float = 0.5) -> None:
        """The embedded worker loop: run jobs as they come until `stop` is set."""
        while not stop.is_set():
            self.wake.wait(idle)
            self.wake.clear()
            try:
                self.run_pending()
            except Exception:  # noqa: BLE001 - a job's failure must not stop the embedded worker
                log.exception("embedded job failed")
                time.sleep(0.2)


def queue_for(function: str) -> str:
    """The RQ queue a job goes to: the slow one for jobs that wait on outside APIs, else the main one."""
    return SLOW_QUEUE_NAME if function.startswith(SLOW_JOBS) else QUEUE_NAME


def _call(function: str, args: tuple[Any, ...]) -> Any:
    return resolve(function)(*args)


def resolve(path: str) -> Callable[..., Any]:
    """'workers.inbound.drain' -> the function."""
    import importlib

    module, _, name = path.rpartition(".")
    return getattr(importlib.import_module(module), name)
