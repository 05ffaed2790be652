"""Duplicated and reordered deliveries give exactly the answers of a clean run."""

from __future__ import annotations

import random

from tests.surveys.test_engine import RETURNEE_SCRIPT

RESPONDENTS = 10


def _play(harness, duplicate_rate: float, reorder: bool, seed: int, base: int) -> dict[int, tuple]:
    """Each respondent answers the whole script; with `reorder`, pairs of their messages arrive swapped."""
    rng = random.Random(seed)
    scripts = {base + i: ["hola", *[text for text, _, _ in RETURNEE_SCRIPT]] for i in range(RESPONDENTS)}
    update_ids = iter(range(base * 1000, base * 1000 + 10_000_000))
    position = dict.fromkeys(scripts, 0)
    while any(position[chat] < len(script) for chat, script in scripts.items()):
        for chat, script in scripts.items():
            start = position[chat]
            if start >= len(script):
                continue
            take = 2 if reorder and start + 1 < len(script) and rng.random() < 0.5 else 1
            updates = [(next(update_ids), script[start + k]) for k in range(take)]
            if take == 2:
                updates.reverse()
            for update_id, text in updates:
                for _ in range(2 if rng.random() < duplicate_rate else 1):
                    assert harness.telegram_text(chat, text, update_id=update_id).status_code == 200
            position[chat] += take
        harness.settle()
    return {
        int(r["address"]) - base: (r["status"], r["answers"])
        for r in harness.responses()
        if int(r["address"]) in scripts
    }


def test_duplicates_and_reordering_give_the_answers_of_a_clean_run(harness):
    clean = _play(harness, duplicate_rate=0.0, reorder=False, seed=1, base=5000)
    assert len(clean) == RESPONDENTS
    assert all(status == "completed" for status, _ in clean.values())
    expected = {q: v for _, q, v in RETURNEE_SCRIPT}
    assert all(answers == expected for _, answers in clean.values())
    messy = _play(harness, duplicate_rate=0.1, reorder=True, seed=2, base=7000)
    assert messy == clean
