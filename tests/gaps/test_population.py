"""20,000 synthetic respondents with known true gaps: every published figure equals an independent recount."""

from __future__ import annotations

import math

import pytest

from tests.gaps import attack, synthetic
from tests.gaps.conftest import SURVEY

BEHIND = {"14", "16", "32"}  # states where returnees are made worse off than their neighbours
SMALL = {"06": 9, "18": 10, "04": 3, "27": 25}  # a few deliberately small states; the rest skewed


def _load(h, people_count: int):
    definition = h.rt.catalog.current(SURVEY)
    people = synthetic.population(definition, people_count, region_sizes=SMALL, behind=BEHIND)
    synthetic.insert(h.rt.engine, definition, people)
    return definition, people


def _all_tables(h, definition) -> dict[str | None, dict]:
    groups = [None, *(q.id for q in definition.questions if q.group)]
    tables = {}
    for grouping in groups:
        path = f"/api/v1/surveys/{SURVEY}/gaps?by=region" + (f"&group={grouping}" if grouping else "")
        response = h.api(path, token=h.analyst_token)
        assert response.status_code == 200, response.get_data(as_text=True)
        tables[grouping] = response.get_json()
    return tables


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
def test_20000_respondents_every_published_figure_equals_an_independent_recount(gaps_harness):
    h = gaps_harness
    definition, people = _load(h, 20_000)
    _check_figures(h, definition, people, 20_000, published_at_least=9000)
    _check_truth(h, definition)


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_sqlite_publishes_the_same_figures(gaps_harness):
    h = gaps_harness
    definition, people = _load(h, 3_000)
    _check_figures(h, definition, people, 3_000, published_at_least=1000)


def _check_figures(h, definition, people, count: int, published_at_least: int) -> None:
    tables = _all_tables(h, definition)
    published = synthetic.published_cells(tables)
    expected = synthetic.expected_cells(definition, people)

    assert sum(1 for p in people if p.status == "completed" and p.survey_id == SURVEY) == count + 3
    assert tables[None]["respondents"] == count + 3
    synthetic.assert_every_cell(published, expected)  # no cell missing; empty ones look suppressed
    assert tables[None]["min_cell"] == 7
    assert {"survey_id", "version", "generated_at", "min_cell", "cells"} <= set(tables[None])
    checked = suppressed = 0
    for key, cell in published.items():
        if key not in expected:
            continue  # nobody there: looks suppressed (checked above)
        truth = expected[key]
        if truth["n"] < 7:
            assert cell["suppressed"], f"a cell of {truth['n']} respondents was published: {key}"
        if cell["suppressed"]:
            suppressed += 1
            assert cell["n"] is cell["gap_n"] is cell["gap_rate"] is cell["ci_low"] is cell["ci_high"] is None
            assert cell["index_mean"] is None
            continue
        checked += 1
        assert cell["n"] == truth["n"] and cell["gap_n"] == truth["gap_n"], key
        assert cell["gap_rate"] == pytest.approx(truth["gap_n"] / truth["n"], abs=1e-12)
        low, high = synthetic.wilson(truth["gap_n"], truth["n"])
        assert (cell["ci_low"], cell["ci_high"]) == pytest.approx((low, high), abs=1e-12)
        assert cell["index_mean"] == pytest.approx(truth["index_sum"] / truth["index_n"], abs=1e-9)
    assert checked > published_at_least and suppressed > 20

    # returnees minus community, on every ungrouped cell where both groups are published
    differences = 0
    for cell in tables[None]["cells"] + tables[None]["overall"]:
        overall = cell["dimension"] is None and cell["indicator"] is None
        returnee = published[("returned", cell["region"], "returnee", cell["dimension"], cell["indicator"], overall)]
        community = published.get(
            ("returned", cell["region"], "community", cell["dimension"], cell["indicator"], overall)
        )
        if cell["suppressed"] or returnee["suppressed"] or community is None or community["suppressed"]:
            assert cell["gap_difference"] is None
            continue
        differences += 1
        assert cell["returnee_gap_rate"] == pytest.approx(returnee["gap_rate"])
        assert cell["community_gap_rate"] == pytest.approx(community["gap_rate"])
        assert cell["gap_difference"] == pytest.approx(returnee["gap_rate"] - community["gap_rate"])
        assert cell["difference_ci_low"] < cell["gap_difference"] < cell["difference_ci_high"]
    assert differences > published_at_least // 30

    # and nothing suppressed can be recovered from all the tables together
    assert attack.recover(definition, published, expected) == {}


def _check_truth(h, definition) -> None:
    """Group cells (one kind of respondent per region) estimate a known rate: their 95% intervals cover it."""
    body = h.api(f"/api/v1/surveys/{SURVEY}/gaps?group=returned", token=h.analyst_token).get_json()
    covered = total = 0
    for cell in body["cells"]:
        if cell["suppressed"] or cell["indicator"] is None:
            continue
        q = definition.question(cell["indicator"])
        truth = synthetic.true_rate(q, cell["region"], cell["group"] == "returnee", BEHIND)
        total += 1
        covered += cell["ci_low"] <= truth <= cell["ci_high"]
    assert total > 500
    assert covered / total > 0.92  # 95% intervals; a little slack for chance
    # states where returnees were made worse off are read as "returnees left behind"
    ungrouped = h.api(f"/api/v1/surveys/{SURVEY}/gaps", token=h.analyst_token).get_json()
    patterns = {(c["region"], c["indicator"]): c["pattern"] for c in ungrouped["cells"] if c["indicator"]}
    behind = [p for (region, _), p in patterns.items() if region in BEHIND and p]
    elsewhere = [p for (region, _), p in patterns.items() if region not in BEHIND and p]
    assert behind.count("returnees_behind") / len(behind) > 0.8
    assert elsewhere.count("shared") / len(elsewhere) > 0.85
    assert math.isclose(sum(1 for c in ungrouped["national"] if c["overall"]), 1)
