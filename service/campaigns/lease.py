"""One campaign sender at a time: a lease row in the database, kept alive by a heartbeat thread.

A worker that holds the lease beats every BEAT seconds (real time, whatever the runtime clock says). If it dies,
its beats stop and another worker takes over once the lease expires (TTL seconds). Every claim checks the lease in
its own transaction, so a worker that lost it (stalled past the TTL) stops claiming at once.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from service.models import SenderLease

log = logging.getLogger(__name__)

NAME = "campaigns"
TTL = 3.0
BEAT = 0.5


class Lease:
    def __init__(self, rt, name: str = NAME):
        self.rt = rt
        self.name = name
        self.holder = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def acquire(self, wait: bool = False) -> bool:
        """Take the lease if it is free or expired. A holder that stopped beating is waited for (it expires within
        TTL); with `wait`, any holder is (a sender that died while beating, just before)."""
        held_until = self._try()
        if held_until is not None:
            silent = held_until - time.time() <= TTL - 3 * BEAT
            if silent or wait:
                time.sleep(max(0.0, held_until - time.time()) + 0.05)
                held_until = self._try()
        if held_until is not None:
            return False
        self._thread = threading.Thread(target=self._beat, name="campaign-lease", daemon=True)
        self._thread.start()
        return True

    def _try(self) -> float | None:
        """None when taken; else when the current holder's lease ends."""
        real = time.time()
        with self.rt.sessions() as session, session.begin():
            _ensure(session, self.name)
            row = session.scalar(select(SenderLease).where(SenderLease.name == self.name).with_for_update())
            if row.holder not in (None, self.holder) and row.expires_at > real:
                return row.expires_at
            if row.holder not in (None, self.holder):
                log.warning("campaign sender %s stopped beating; %s takes over", row.holder, self.holder)
            row.holder, row.beat_at, row.expires_at = self.holder, real, real + TTL
        return None

    def check(self, session: Session) -> bool:
        """Within a claim's transaction: whether this worker still holds the lease (and renew it)."""
        real = time.time()
        renewed = session.execute(
            update(SenderLease)
            .where(SenderLease.name == self.name, SenderLease.holder == self.holder)
            .values(beat_at=real, expires_at=real + TTL)
        ).rowcount
        return renewed == 1

    def _beat(self) -> None:
        while not self._stop.wait(BEAT):
            try:
                with self.rt.sessions() as session, session.begin():
                    if not self.check(session):
                        return
            except Exception as error:  # noqa: BLE001 - a missed beat is retried; the TTL covers a few
                log.warning("campaign lease beat failed: %s", type(error).__name__)

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        try:
            with self.rt.sessions() as session, session.begin():
                session.execute(
                    update(SenderLease)
                    .where(SenderLease.name == self.name, SenderLease.holder == self.holder)
                    .values(holder=None, expires_at=0.0)
                )
        except Exception as error:  # noqa: BLE001 - it expires by itself
            log.warning("could not release the campaign lease: %s", type(error).__name__)


def holder(rt, name: str = NAME) -> str | None:
    """Who sends now ('host:pid:id'), if anyone."""
    with rt.sessions() as session:
        row = session.get(SenderLease, name)
        if row is None or row.holder is None or row.expires_at < time.time():
            return None
        return row.holder


def _ensure(session: Session, name: str) -> None:
    dialect = session.get_bind().dialect.name
    statement = {"postgresql": postgresql.insert, "sqlite": sqlite.insert}[dialect]
    session.execute(
        statement(SenderLease)
        .values(name=name, holder=None, beat_at=0.0, expires_at=0.0)
        .on_conflict_do_nothing(index_elements=["name"])
    )
