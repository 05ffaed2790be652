"""One bad row never fails its neighbours: a group commit the database refuses for its data is written again one
request at a time, so every valid request is stored and acknowledged and only the bad one is refused (400)."""

from __future__ import annotations

import threading

import pytest

from bots.base import Incoming
from service.db import INVALID, cause
from service.inbox import GroupCommitter, _Waiter, committer, row_for, store
from tests.support import TELEGRAM_SECRET, telegram_message

POISON = 2**63
"""A message number one beyond a BIGINT column: what the edge refuses, written here behind its back."""


def _incoming(n: int, poisoned: bool = False) -> Incoming:
    return Incoming("telegram", str(10_000 + n), str(700_000 + n), "hola", sequence=POISON if poisoned else n)


def _count(harness) -> int:
    return harness.count("SELECT count(*) FROM inbound_messages")


def test_a_refused_batch_is_written_one_request_at_a_time(harness):
    rt = harness.rt
    waiters = [_Waiter([row_for(rt, _incoming(n, poisoned=n == 3), rt.now())]) for n in range(1, 7)]
    batcher = GroupCommitter(rt)
    batcher._commit(waiters)
    assert all(waiter.done.is_set() for waiter in waiters)
    assert [waiter.error is None for waiter in waiters] == [True, True, False, True, True, True]
    assert cause(waiters[2].error) == INVALID
    assert all(waiter.ids and waiter.ids[0] for n, waiter in enumerate(waiters, 1) if n != 3)
    assert _count(harness) == 5
    assert harness.count("SELECT count(*) FROM inbound_messages WHERE sequence = 3") == 0


def test_concurrent_requests_around_poisoned_ones_are_all_stored(harness):
    rt = harness.rt
    start = threading.Barrier(48)
    results: dict[int, object] = {}

    def submit(n: int) -> None:
        start.wait()
        try:
            results[n] = store(rt, [_incoming(n, poisoned=n % 6 == 0)])
        except Exception as error:  # noqa: BLE001 - what the request would be answered
            results[n] = error

    threads = [threading.Thread(target=submit, args=(n,)) for n in range(1, 49)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    poisoned = {n for n in results if n % 6 == 0}
    assert all(cause(results[n]) == INVALID for n in poisoned), {n: results[n] for n in poisoned}
    assert all(isinstance(results[n], list) and results[n][0] for n in results if n not in poisoned)
    assert _count(harness) == 48 - len(poisoned)
    assert committer(rt).rows == 48 - len(poisoned)


@pytest.mark.parametrize("path", ["fast", "flask"])
def test_a_request_the_edge_let_through_is_refused_alone_over_http(harness, monkeypatch, path):
    """Were a check at the edge missing, the database's refusal is the request's 400, never its neighbours' 503."""
    from bots.telegram import handler

    monkeypatch.setattr(handler, "_is_int", lambda value: isinstance(value, int) and not isinstance(value, bool))
    if path == "flask":
        harness.app.wsgi_app = harness.app.wsgi_app.flask
    start = threading.Barrier(24)
    statuses: dict[int, int] = {}

    def post(n: int) -> None:
        client = harness.app.test_client()
        update = telegram_message(20_000 + n, 800_000 + n, "hola", message_id=POISON if n % 4 == 0 else n)
        start.wait()
        statuses[n] = client.post("/webhooks/telegram", json=update,
                                  headers={"X-Telegram-Bot-Api-Secret-Token": TELEGRAM_SECRET}).status_code

    threads = [threading.Thread(target=post, args=(n,)) for n in range(1, 25)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert statuses == {n: 400 if n % 4 == 0 else 200 for n in range(1, 25)}
    assert _count(harness) == 18
