"""Gap releases as RQ jobs: every survey whose release is due, on a schedule; one survey on demand."""

from __future__ import annotations

import logging

from service import runtime as runtimes
from service.gaps import snapshot

log = logging.getLogger(__name__)


def refresh_all() -> dict[str, int]:
    """Periodic job: a release of each survey that has none yet, a new definition, or new completions once its
    `release_interval` has passed. Returns the all-waves snapshot id of each survey released."""
    rt = runtimes.current()
    released = {}
    for definition in rt.catalog.all_current():
        try:
            if snapshot.due(rt, snapshot.latest(rt, definition.id), definition):
                released[definition.id] = snapshot.release(rt, definition)[None].id
        except Exception:  # noqa: BLE001 - one survey's failure must not stop the others
            log.exception("gap release of %s failed", definition.id)
    return released


def refresh(survey_id: str, wave: int | None = None) -> int:
    """On-demand job (staff, erasure): a release of one survey now; returns the snapshot id of `wave`'s table.

    Every table is released together, whatever `wave` asks; a wave without completed sessions returns the all-waves id.
    """
    tables = snapshot.recompute(runtimes.current(), survey_id)
    return (tables.get(wave) or tables[None]).id
