"""The drain flag on real Redis: one drain job waits per box, and a flag whose job a dying worker took is replaced."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from rq.job import Job, JobStatus

from service.queue import DRAIN_JOBS, INBOX, OUTBOX, RedisDispatcher

pytestmark = pytest.mark.integration


def _waiting_drains(dispatcher: RedisDispatcher, box: str) -> list[Job]:
    queue = dispatcher.send_queue if box == OUTBOX else dispatcher.queue
    return [job for job in queue.get_jobs() if job.func_name == DRAIN_JOBS[box]]


def _taken(dispatcher: RedisDispatcher, job: Job, seconds_ago: float) -> None:
    """A worker popped the job `seconds_ago` and has not run its first line (it is starting, or it died)."""
    queue = dispatcher.send_queue if job.origin == dispatcher.send_queue.name else dispatcher.queue
    queue.remove(job)
    job.started_at = datetime.now(UTC) - timedelta(seconds=seconds_ago)
    job.save()
    job.set_status(JobStatus.STARTED)


def test_pushes_schedule_one_drain_job_named_by_the_flag(redis_url):
    dispatcher = RedisDispatcher(redis_url)
    for ids in ([1, 2], [3], [4, 5, 6]):
        assert dispatcher.push(OUTBOX, ids)
    jobs = _waiting_drains(dispatcher, OUTBOX)
    assert len(jobs) == 1
    assert dispatcher.redis.get("retorno:drain:outbox").decode() == jobs[0].id
    dispatcher.ensure_drain(OUTBOX, verify=True)
    assert len(_waiting_drains(dispatcher, OUTBOX)) == 1, "a waiting job is trusted"


@pytest.mark.parametrize("box", [INBOX, OUTBOX])
def test_the_sweeper_replaces_a_drain_job_lost_with_its_worker(redis_url, box):
    dispatcher = RedisDispatcher(redis_url)
    dispatcher.push(box, [1, 2, 3])
    (lost,) = _waiting_drains(dispatcher, box)
    _taken(dispatcher, lost, seconds_ago=0.1)
    dispatcher.ensure_drain(box, verify=True)
    assert _waiting_drains(dispatcher, box) == [], "a job a worker has just taken is about to clear the flag"
    _taken(dispatcher, lost, seconds_ago=10)
    dispatcher.push(box, [4])
    dispatcher.ensure_drain(box)
    assert _waiting_drains(dispatcher, box) == [], "without verifying, the flag is trusted until it expires"
    dispatcher.ensure_drain(box, verify=True)
    (replacement,) = _waiting_drains(dispatcher, box)
    assert replacement.id != lost.id
    assert dispatcher.redis.get(f"retorno:drain:{box}").decode() == replacement.id
    dispatcher.draining(box)
    assert dispatcher.pop(box, 10) == [1, 2, 3, 4]


def test_a_job_popped_by_a_worker_that_died_before_starting_it_is_replaced(redis_url):
    dispatcher = RedisDispatcher(redis_url)
    dispatcher.push(OUTBOX, [1])
    (popped,) = _waiting_drains(dispatcher, OUTBOX)
    dispatcher.send_queue.remove(popped)
    dispatcher.ensure_drain(OUTBOX, verify=True)
    (replacement,) = _waiting_drains(dispatcher, OUTBOX)
    assert replacement.id != popped.id


def test_a_flag_whose_job_vanished_is_replaced(redis_url):
    dispatcher = RedisDispatcher(redis_url)
    dispatcher.redis.set("retorno:drain:inbox", "no-such-job", ex=120)
    dispatcher.push(INBOX, [7])
    assert _waiting_drains(dispatcher, INBOX) == []
    dispatcher.ensure_drain(INBOX, verify=True)
    assert len(_waiting_drains(dispatcher, INBOX)) == 1
