"""A clock that a test drives for every process at once (RETORNO_TEST_CLOCK=1; never in production).

The time is a number of epoch seconds in one Redis key. It does not move by itself: the test sets it and advances
it, and every web process and worker reads it as `runtime.now()`, so a day of reminders and a night of quiet
hours pass in a moment, the same for everyone. Unset, the key means the real time.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from redis import Redis

KEY = "retorno:test:clock"
POLL = 0.005


class SharedClock:
    def __init__(self, redis_url: str):
        self.redis = Redis.from_url(redis_url, socket_timeout=5, socket_connect_timeout=5)

    def __call__(self) -> datetime:
        raw = self.redis.get(KEY)
        if raw is None:
            return datetime.now(UTC)
        return datetime.fromtimestamp(float(raw), UTC)

    def set(self, moment: datetime) -> None:
        self.redis.set(KEY, repr(moment.timestamp()))

    def advance(self, seconds: float) -> datetime:
        return datetime.fromtimestamp(self.redis.incrbyfloat(KEY, seconds), UTC)

    def wait_until(self, epoch: float, limit: float) -> bool:
        """Poll until the test has moved the clock to `epoch` (True) or `limit` real seconds passed (False)."""
        deadline = time.monotonic() + limit
        while self().timestamp() < epoch:
            if time.monotonic() >= deadline:
                return False
            time.sleep(POLL)
        return True
