"""Pinned text, such as generated SQL, compared with a file under tests/snapshots/ (goflow's test/snapshot.go).

A change to what the code generates fails the test with both texts; once it is reviewed, `pytest
--update-snapshots` writes the new text to the file, and the diff shows it in review.
"""

from __future__ import annotations

from pathlib import Path

import pytest

SNAPSHOTS = Path(__file__).resolve().parent / "snapshots"


def check(config: pytest.Config, name: str, text: str) -> None:
    """`text` must equal tests/snapshots/NAME (rewritten instead with --update-snapshots)."""
    path = SNAPSHOTS / name
    if config.getoption("update_snapshots"):
        path.write_text(text, encoding="utf-8")
        return
    assert path.exists(), f"{path} is missing: run pytest --update-snapshots and review it"
    pinned = path.read_text(encoding="utf-8")
    assert text == pinned, f"{name} changed: review the difference, then run pytest --update-snapshots"
