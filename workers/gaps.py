"""Gap snapshots as RQ jobs: every survey whose completed sessions changed, on a schedule; one survey on demand."""

from __future__ import annotations

import logging

from service import runtime as runtimes
from service.gaps import snapshot

log = logging.getLogger(__name__)


def refresh_all() -> dict[str, int]:
    """Periodic job: a new snapshot (all waves) of each survey whose completed sessions or definition changed."""
    rt = runtimes.current()
    computed = {}
    for definition in rt.catalog.all_current():
        try:
            latest = snapshot.latest(rt, definition.id)
            if snapshot.stale(rt, latest, definition):
                computed[definition.id] = snapshot.compute(rt, definition).id
        except Exception:  # noqa: BLE001 - one survey's failure must not stop the others
            log.exception("gap snapshot of %s failed", definition.id)
    return computed


def refresh(survey_id: str, wave: int | None = None) -> int:
    """On-demand job: a new snapshot of one survey (one wave, or all); returns its id."""
    rt = runtimes.current()
    return snapshot.compute(rt, rt.catalog.current(survey_id), wave).id
