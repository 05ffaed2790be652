"""Disclosure control on adversarial populations: nothing suppressed can be read or computed back.

The bundled survey (min_cell 10). Each case loads an exact crowd, reads every table the API offers (all regions,
every group question, national totals) as an analyst, and lets tests.gaps.attack try to recover what was
suppressed by subtraction.
"""

from __future__ import annotations

import pytest

from service.gaps import disclosure
from service.gaps.aggregate import ZERO, Figures
from tests.gaps import attack, synthetic

SURVEY = "reintegracion-mx"
RETURNEE, COMMUNITY = True, False


@pytest.fixture
def h(sqlite_url, providers, tmp_path):
    from tests.support import Harness

    harness = Harness(sqlite_url, providers, tmp_path)
    yield harness
    harness.close()


def _publish(h, plan):
    definition = h.rt.catalog.current(SURVEY)
    people = synthetic.crowd(definition, plan)
    synthetic.insert(h.rt.engine, definition, people)
    tables = {}
    for grouping in [None, *(q.id for q in definition.questions if q.group)]:
        query = f"?group={grouping}" if grouping else ""
        response = h.api(f"/api/v1/surveys/{SURVEY}/gaps{query}", token=h.analyst_token)
        assert response.status_code == 200, response.get_data(as_text=True)
        tables[grouping] = response.get_json()
    published = synthetic.published_cells(tables)
    expected = synthetic.expected_cells(definition, people)
    synthetic.assert_every_cell(published, expected)
    for key, truth in expected.items():
        if truth["n"] < 10:
            assert published[key]["suppressed"], key
    return definition, tables, published, expected


def _overall(published, region, grouping=None, value=None):
    return published[(grouping, region, value, None, None, True)]


def test_n_of_min_cell_minus_one_is_suppressed_and_min_cell_is_published(h):
    definition, tables, published, expected = _publish(h, [
        ("01", RETURNEE, 9), ("02", RETURNEE, 10), ("03", RETURNEE, 10), ("04", RETURNEE, 40),
    ])
    assert tables[None]["min_cell"] == 10
    nine, ten, other_ten, forty = (_overall(published, code) for code in ("01", "02", "03", "04"))
    assert nine["suppressed"] and nine["n"] is None and nine["gap_rate"] is None and nine["ci_low"] is None
    # 9 alone would be national minus the others: one more state goes (the smallest), the rest stay
    assert ten["suppressed"]
    assert not other_ten["suppressed"] and other_ten["n"] == 10
    assert not forty["suppressed"] and forty["n"] == 40
    national = next(c for c in tables[None]["national"] if c["overall"])
    assert national["n"] == 69
    assert national["n"] - other_ten["n"] - forty["n"] == 19  # only the sum of the two suppressed states
    assert attack.recover(definition, published, expected, everyone_has_a_region=True) == {}


def test_a_state_where_only_the_community_is_small(h):
    definition, tables, published, expected = _publish(h, [
        ("05", RETURNEE, 30), ("05", COMMUNITY, 4),
        ("06", RETURNEE, 25), ("06", COMMUNITY, 20),
        ("07", RETURNEE, 40), ("07", COMMUNITY, 35),
    ])
    state = _overall(published, "05")
    community = _overall(published, "05", "returned", "community")
    returnees = _overall(published, "05", "returned", "returnee")
    assert not state["suppressed"] and state["n"] == 34  # the state's own figure stays on the map
    assert community["suppressed"]
    assert returnees["suppressed"]  # else 34 - 30 gives the 4 community members away
    assert state["gap_difference"] is None and state["pattern"] is None
    # the national returnee and community totals would give them away too: another state's pair goes
    assert _overall(published, "06", "returned", "community")["suppressed"]
    assert _overall(published, "06", "returned", "returnee")["suppressed"]
    assert not _overall(published, "07", "returned", "community")["suppressed"]
    assert _overall(published, "07")["gap_difference"] is not None
    # return_type is asked of returnees only: its remainder is the community, so it must not settle the sum
    return_types = [published[("return_type", "05", v, None, None, True)]
                    for v in ("own_decision", "could_not_stay", "deported")
                    if ("return_type", "05", v, None, None, True) in published]
    assert sum(1 for c in return_types if c["suppressed"]) >= 1
    assert attack.recover(definition, published, expected, everyone_has_a_region=True) == {}


def test_totals_would_reveal_a_suppressed_state_and_do_not(h):
    definition, tables, published, expected = _publish(h, [
        ("08", RETURNEE, 3), ("09", RETURNEE, 60), ("10", RETURNEE, 55), ("11", COMMUNITY, 50),
    ])
    for cell in tables[None]["national"]:
        regional = [c for c in tables[None]["cells"] + tables[None]["overall"]
                    if (c["dimension"], c["indicator"]) == (cell["dimension"], cell["indicator"])
                    and (c in tables[None]["overall"]) == cell["overall"]]
        hidden = [c for c in regional if c["suppressed"]]
        assert len(hidden) != 1, cell  # never exactly one state behind national minus the published states
        if hidden:
            rest = cell["n"] - sum(c["n"] for c in regional if not c["suppressed"])
            assert rest >= 10
    assert attack.recover(definition, published, expected, everyone_has_a_region=True) == {}


def test_the_attacker_is_real_without_complementary_suppression(h, monkeypatch):
    """Primary suppression alone leaks: the same attacker then recovers cells (so its silence above means something)."""
    monkeypatch.setattr(disclosure._Solver, "_examine", lambda self, number: [])
    definition, tables, published, expected = _publish(h, [
        ("05", RETURNEE, 30), ("05", COMMUNITY, 4), ("07", RETURNEE, 40), ("07", COMMUNITY, 35),
    ])
    recovered = attack.recover(definition, published, expected, everyone_has_a_region=True)
    assert recovered
    assert all(expected[key]["n"] == n for key, n in recovered.items())
    assert ("returned", "05", "community", None, None, True) in recovered


def _figures(n: int, gap_n: int) -> Figures:
    return Figures(n, gap_n, n * 0.75, n)


def test_a_returnee_only_question_cannot_give_away_a_protected_community_cell(monkeypatch):
    """return_type is asked of returnees only, so its cells sum to the returnees and its remainder is the
    community: when the community cell is suppressed to protect another state, a return_type cell must go too."""
    from service.gaps.aggregate import Counts, Key
    from surveys.loader import bundled_files, load_text

    definition = load_text(bundled_files()[0].read_text(encoding="utf-8"), "bundled")
    cells = {}

    def put(grouping, region, value, n, gap_n):
        cells[Key(grouping, "*", region, value)] = _figures(n, gap_n)

    for region, community, returnees, types in (("01", (4, 2), (30, 15), [(10, 5), (10, 5), (10, 5)]),
                                                 ("02", (12, 6), (40, 20), [(14, 7), (13, 7), (13, 6)]),
                                                 ("03", (50, 25), (33, 16), [(11, 5), (11, 6), (11, 5)])):
        put(None, region, None, community[0] + returnees[0], community[1] + returnees[1])
        put("returned", region, "community", *community)
        put("returned", region, "returnee", *returnees)
        for value, figures in zip(("own_decision", "could_not_stay", "deported"), types, strict=True):
            put("return_type", region, value, *figures)
    regional = list(cells.items())
    for key, figures in regional:  # national cells: the sum of the two states
        national = Key(key.grouping, "*", None, key.value)
        cells[national] = cells.get(national, ZERO) + figures
    counts = Counts(cells, respondents=169, latest_completion=None)

    decided = {key for _, key in disclosure.protect(counts, definition).suppressed}
    assert Key("returned", "*", "01", "community") in decided  # 4: too few
    assert Key("returned", "*", "01", "returnee") in decided  # else 34 - 30
    assert Key("returned", "*", "02", "community") in decided  # else national community - 4
    assert Key("returned", "*", "02", "returnee") in decided  # else 52 - 40
    types_02 = [Key("return_type", "*", "02", v) for v in ("own_decision", "could_not_stay", "deported")]
    assert any(key in decided for key in types_02)  # else 52 - (14 + 13 + 13) = the community's 12
    assert not any(Key(None, "*", region, None) in decided for region in ("01", "02", "03"))

    # without the twin rule, that last cell would stay published and the community would be computable
    def small_only(self, r):
        rest = self.remainder_n[r]
        return rest if 0 < rest < 10 else 0

    monkeypatch.setattr(disclosure._Solver, "_remainder_mass", small_only)
    weaker = {key for _, key in disclosure.protect(counts, definition).suppressed}
    assert not any(key in weaker for key in types_02)
