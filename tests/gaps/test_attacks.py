"""Disclosure control attacked as an analyst would (issue 15): every table of a survey at once, and over time.

Each case loads an exact crowd into the bundled survey (min_cell 10), reads every table the API offers an analyst
(all waves and each wave, ungrouped and by every group question, regions and nation) and lets tests.gaps.attack
chain subtractions across all of them: across waves, across groups, national against regions. Over time, the
attacker compares two releases around a respondent's completion (or erasure) and must learn nothing about them.
Each attack is also run once against weakened protection, to show it is a real attack.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from service.gaps import disclosure
from tests.gaps import attack, synthetic

SURVEY = "reintegracion-mx"
RETURNEE, COMMUNITY = True, False
MIN_CELL = 10


@pytest.fixture
def h(sqlite_url, providers, tmp_path):
    from tests.support import Harness

    harness = Harness(sqlite_url, providers, tmp_path)
    yield harness
    harness.close()


def _tables(h, waves=(None,), token=None) -> dict:
    """Every table an analyst can read: {wave: {cell: published cell}}."""
    definition = h.rt.catalog.current(SURVEY)
    found = {}
    for wave in waves:
        bodies = {}
        for grouping in [None, *(q.id for q in definition.questions if q.group)]:
            query = "&".join(part for part in (f"group={grouping}" if grouping else "",
                                               f"wave={wave}" if wave is not None else "") if part)
            response = h.api(f"/api/v1/surveys/{SURVEY}/gaps?{query}", token=token or h.analyst_token)
            assert response.status_code == 200, response.get_data(as_text=True)
            bodies[grouping] = response.get_json()
        found[wave] = synthetic.published_cells(bodies)
    return found


def _truths(definition, people, waves) -> dict:
    return {wave: synthetic.expected_cells(definition, [p for p in people if wave is None or p.wave == wave])
            for wave in waves}


def _load(h, plans_by_wave: dict[int, list], seed: int = 1, first_id: int = 1) -> list:
    definition = h.rt.catalog.current(SURVEY)
    people = []
    for wave, plan in plans_by_wave.items():
        crowd = synthetic.crowd(definition, plan, seed=seed + wave, wave=wave)
        synthetic.insert(h.rt.engine, definition, crowd, first_id=first_id + len(people))
        people += crowd
    return people


def _check_primary(tables, truths) -> None:
    for wave, published in tables.items():
        synthetic.assert_every_cell(published, truths[wave])
        for key, truth in truths[wave].items():
            if truth["n"] < MIN_CELL:
                assert published[key]["suppressed"], (wave, key)


# -- one release, every table ---------------------------------------------------------------------------------

WAVES_PLAN = {
    1: [("01", RETURNEE, 40), ("01", COMMUNITY, 35), ("19", RETURNEE, 30), ("19", COMMUNITY, 22),
        ("14", RETURNEE, 25), ("14", COMMUNITY, 18), ("09", COMMUNITY, 30)],
    # the case: three people in one state in wave 2
    2: [("01", RETURNEE, 3), ("19", RETURNEE, 20), ("19", COMMUNITY, 15), ("14", COMMUNITY, 12)],
}


def test_across_waves_nothing_suppressed_is_recovered(h):
    definition = h.rt.catalog.current(SURVEY)
    people = _load(h, WAVES_PLAN)
    waves = (None, 1, 2)
    tables, truths = _tables(h, waves), _truths(definition, people, waves)
    _check_primary(tables, truths)
    wave_2_state = tables[2][(None, "01", None, None, None, True)]
    assert wave_2_state["suppressed"]  # 3 people
    assert attack.recover_tables(definition, tables, truths) == {}
    assert attack.recover_tables(definition, tables, truths, everyone_has_a_region=True) == {}


def test_each_wave_protected_alone_leaks_the_small_wave(h, monkeypatch):
    """The issue's attack on per-table protection: all waves minus wave 1 gives wave 2's suppressed cells."""
    definition = h.rt.catalog.current(SURVEY)
    original = disclosure.relations
    monkeypatch.setattr(disclosure, "relations",
                        lambda definition, layout, regions: [r for r in original(definition, layout, regions)
                                                             if not r.exact])
    people = _load(h, WAVES_PLAN)
    waves = (None, 1, 2)
    tables, truths = _tables(h, waves), _truths(definition, people, waves)
    recovered = attack.recover_tables(definition, tables, truths, everyone_has_a_region=True)
    assert (2, None, "01", None, None, None, True) in recovered
    assert all(truths[var[0]][var[1:]]["n"] == n for var, n in recovered.items())


def test_across_groups_a_few_community_members_stay_hidden(h):
    """Group tables against the state's total: sex, age band, return type, assistance; in one wave and all."""
    definition = h.rt.catalog.current(SURVEY)
    people = _load(h, {
        1: [("05", RETURNEE, 30), ("05", COMMUNITY, 4), ("06", RETURNEE, 25), ("06", COMMUNITY, 20),
            ("07", RETURNEE, 40), ("07", COMMUNITY, 35)],
        2: [("05", COMMUNITY, 2), ("06", RETURNEE, 14), ("07", COMMUNITY, 11)],
    })
    waves = (None, 1, 2)
    tables, truths = _tables(h, waves), _truths(definition, people, waves)
    _check_primary(tables, truths)
    assert tables[None][("returned", "05", "community", None, None, True)]["suppressed"]  # 4 + 2
    assert not tables[None][(None, "05", None, None, None, True)]["suppressed"]  # the state stays on the map
    for everyone in (False, True):
        assert attack.recover_tables(definition, tables, truths, everyone_has_a_region=everyone) == {}


def test_national_against_regions_and_the_map_with_two_respondents(h):
    """Two people in two states: every table, map and export shows every state alike, and nothing is computable."""
    definition = h.rt.catalog.current(SURVEY)
    people = _load(h, {1: [("08", RETURNEE, 1), ("30", COMMUNITY, 1)]})
    tables, truths = _tables(h), _truths(definition, people, (None,))
    _check_primary(tables, truths)
    body = h.api(f"/api/v1/surveys/{SURVEY}/gaps", token=h.analyst_token).get_json()
    assert body["respondents"] is None and all(c["suppressed"] for c in body["cells"] + body["national"])
    assert {c["region"] for c in body["overall"]} == {r.code for r in definition.region_question.regions}
    assert attack.recover_tables(definition, tables, truths, everyone_has_a_region=True) == {}
    _assert_all_regions_alike(h, definition)


def _assert_all_regions_alike(h, definition) -> None:
    import csv
    import io
    import json
    import re
    import xml.etree.ElementTree as ElementTree

    names = {r.code: r.name for r in definition.region_question.regions}
    base = f"/api/v1/surveys/{SURVEY}/gaps"
    for query in ("?format=svg", "?format=svg&group=returned&indicator=work", "?format=svg&metric=difference"):
        svg = h.api(base + query, token=h.analyst_token).get_data(as_text=True)
        root = ElementTree.fromstring(svg)
        ns = {"s": "http://www.w3.org/2000/svg"}
        looks = set()
        for g in root.findall("s:g[@class='region']", ns):
            code = g.get("data-code")
            title = g.find("s:title", ns).text.replace(names[code], "STATE")
            label = [t.text for t in g.findall("s:text", ns)][1:]  # the state's abbreviation aside
            looks.add((g.find("s:path", ns).get("fill"), title, tuple(label)))
        assert len(looks) == 1, (query, looks)
        assert "menos de 10" in next(iter(looks))[1]
    png = h.api(base + "?format=png", token=h.analyst_token)
    assert png.status_code == 200
    collection = json.loads(h.api(base + "?format=geojson", token=h.analyst_token).get_data(as_text=True))
    properties = {json.dumps({k: v for k, v in f["properties"].items() if k not in ("code", "name")}, sort_keys=True)
                  for f in collection["features"]}
    assert len(properties) == 1
    rows = list(csv.DictReader(io.StringIO(h.api(base + "?format=csv", token=h.analyst_token).get_data(as_text=True))))
    assert rows and all(r["suppressed"] == "true" and r["n"] == "" for r in rows)
    assert {r["region"] for r in rows if r["level"] == "region"} == set(names)
    page = h.client.get("/dashboard?lang=es", headers={"Authorization": f"Bearer {h.analyst_token}"})
    html = page.get_data(as_text=True)
    assert page.status_code == 200 and "sin datos" not in html
    assert len(set(re.findall(r'<path d="[^"]*" fill="([^"]+)"', html))) == 1
    assert "menos de 10 respuestas completas" in html


# -- over time --------------------------------------------------------------------------------------------------

BASE = {1: [("01", RETURNEE, 40), ("01", COMMUNITY, 35), ("19", RETURNEE, 30), ("19", COMMUNITY, 22),
            ("14", RETURNEE, 25), ("14", COMMUNITY, 18), ("09", COMMUNITY, 30), ("27", RETURNEE, 6)]}


def _next_day(h) -> None:
    h.clock.advance(days=1, seconds=1)


def _learnt(changes: dict) -> dict:
    """Changes the attacker saw or worked out that describe a small group (1 .. min_cell - 1 people)."""
    return {var: value for var, value in changes.items() if value[0] and abs(value[0]) < MIN_CELL}


@pytest.mark.parametrize("wave", [1, 2])
def test_one_respondent_completing_between_two_releases_is_not_seen(h, wave):
    """The issue's attack: snapshots before and after one completion gave that person's every answer."""
    definition = h.rt.catalog.current(SURVEY)
    people = _load(h, BASE)
    waves = (None, 1, 2)
    before = _tables(h, waves)
    assert attack.recover_tables(definition, before, _truths(definition, people, waves)) == {}
    person = _load(h, {wave: [("19", RETURNEE, 1)]}, seed=11, first_id=5000)
    _next_day(h)
    after = _tables(h, waves)  # a new release: the day passed and someone completed
    assert h.count("SELECT count(*) FROM gap_snapshots WHERE wave IS NULL") == 2
    assert after == before  # not one figure moved
    changes = attack.learn_over_time(definition, before, after, everyone_has_a_region=True)
    assert _learnt(changes) == {}
    assert attack.recover_tables(definition, after, _truths(definition, people + person, waves)) == {}


def test_a_crowd_then_one_more_between_releases_learns_only_groups_of_ten(h):
    """Nine people complete, then the target: what changes at the release describes ten people or more."""
    definition = h.rt.catalog.current(SURVEY)
    people = _load(h, BASE)
    before = _tables(h)
    arrivals = _load(h, {1: [("19", RETURNEE, 6), ("14", COMMUNITY, 3)]}, seed=5, first_id=5000)
    target = _load(h, {1: [("27", RETURNEE, 1)]}, seed=13, first_id=6000)
    _next_day(h)
    after = _tables(h)
    changes = attack.learn_over_time(definition, before, after, everyone_has_a_region=True)
    assert _learnt(changes) == {}
    moved = {var: value for var, value in changes.items() if value[0]}
    assert moved  # the national figures moved: ten new people
    assert attack.recover_tables(definition, after, _truths(definition, people + arrivals + target, (None,))) == {}
    # a week of single completions: each release learns nothing new about anyone
    for day in range(7):
        before = after
        _load(h, {1: [(("19", "14", "27", "01")[day % 4], day % 2 == 0, 1)]}, seed=20 + day, first_id=7000 + day)
        _next_day(h)
        after = _tables(h)
        assert _learnt(attack.learn_over_time(definition, before, after, everyone_has_a_region=True)) == {}, day


def test_without_the_release_rule_the_time_attack_reads_the_person(h, monkeypatch):
    """Recomputing every cell at each release (the old behaviour) gives the target's answers away."""
    monkeypatch.setattr(disclosure._Solver, "_initial",
                        lambda self, number: disclosure._SUPPRESSED if self.n[number] < self.min_cell
                        else disclosure._NEW)
    definition = h.rt.catalog.current(SURVEY)
    _load(h, BASE)
    before = _tables(h)
    target = _load(h, {1: [("19", RETURNEE, 1)]}, seed=11, first_id=5000)[0]
    _next_day(h)
    after = _tables(h)
    learnt = _learnt(attack.learn_over_time(definition, before, after, everyone_has_a_region=True))
    work = (None, None, "19", None, "economic", "work", False)
    assert learnt[work] == (1, int(target.in_gap["work"]))  # one person, and whether they are in gap


def test_erasure_recomputes_without_showing_the_erased_person(h):
    """`snapshot.recompute` after deleting a respondent: the figures around them do not move by one person."""
    from service.gaps import snapshot

    definition = h.rt.catalog.current(SURVEY)
    _load(h, BASE)
    target = _load(h, {1: [("19", COMMUNITY, 1)]}, seed=17, first_id=5000)
    _next_day(h)
    before = _tables(h)
    with h.rt.engine.begin() as connection:
        connection.execute(text("DELETE FROM answers WHERE session_id = :id"), {"id": 5000})
        connection.execute(text("DELETE FROM survey_sessions WHERE id = :id"), {"id": 5000})
    assert target
    tables = snapshot.recompute(h.rt, SURVEY)
    assert tables[None].respondents == sum(count for _, _, count in BASE[1])
    after = _tables(h)
    assert h.count("SELECT count(*) FROM gap_snapshots WHERE wave IS NULL") == 2
    assert _learnt(attack.learn_over_time(definition, before, after, everyone_has_a_region=True)) == {}



@pytest.mark.parametrize("seed", [8, 31])
def test_a_fortnight_of_daily_releases_gives_no_small_group_away(seed):
    """Random arrivals over two weeks (a second wave from day 4), each day released after the one before: in every
    release nothing suppressed is recovered, and between releases no true change about fewer than 10 people shows."""
    import random
    from datetime import UTC, datetime, timedelta

    from service.gaps import aggregate, snapshot
    from service.gaps.aggregate import Counts, Figures, Key
    from surveys.loader import bundled_files, load_text

    definition = load_text(bundled_files()[0].read_text(encoding="utf-8"), "bundled")
    rng = random.Random(seed)
    people: list = []

    def arrive(count: int, wave: int) -> None:
        plan = [(rng.choice(("01", "05", "09", "14", "19", "27", "30")), rng.random() < 0.6, 1) for _ in range(count)]
        people.extend(synthetic.crowd(definition, plan, seed=rng.randrange(10**6), wave=wave))

    def counts(crowd) -> Counts:
        cells = {}
        for (grouping, region, value, dimension, indicator, overall), f in synthetic.expected_cells(definition,
                                                                                                   crowd).items():
            measure = (aggregate.OVERALL if overall else aggregate.indicator_measure(indicator) if indicator
                       else aggregate.dimension_measure(dimension))
            cells[Key(grouping, measure, region, value)] = Figures(f["n"], f["gap_n"], f["index_sum"], f["index_n"])
        return Counts(cells, len(crowd), None)

    arrive(100 if seed > 10 else 300, 1)
    history, before, truths_before, first_release, moved = disclosure.History(), None, None, None, set()
    for day in range(14):
        if day == 4:
            arrive(rng.randrange(1, 30), 2)
        elif day:
            arrive(rng.randrange(0, 14), rng.choice((1, 2)) if day > 4 else 1)
        waves = {wave: counts([p for p in people if p.wave == wave]) for wave in sorted({p.wave for p in people})}
        tables = {None: aggregate.total(waves.values()), **waves}
        released = snapshot.publish(tables, definition, datetime(2026, 5, 1, tzinfo=UTC) + timedelta(days=day), history)
        history, after = disclosure.History(), {}
        for table, (payload, basis) in released.items():
            shown, hidden = snapshot.history_of(payload, basis)
            history.shown.update(((table, key), figures) for key, figures in shown.items())
            history.hidden.update(((table, key), n) for key, n in hidden.items())
            after[table] = {(c["grouping"], c["region"], c["group"], c["dimension"], c["indicator"], c["overall"]): c
                            for c in snapshot.cells(payload)}
        truths = _truths(definition, people, tables)
        assert attack.recover_tables(definition, after, truths, everyone_has_a_region=True) == {}, day
        if before is not None:
            then = {table: before.get(table, {}) for table in after}
            changes = attack.learn_over_time(definition, then, after, everyone_has_a_region=True)
            truths_then = {table: truths_before.get(table, {}) for table in after}
            assert attack.small_groups(changes, truths_then, truths, MIN_CELL) == {}, day
        before, truths_before = after, truths
        moved = {key for key, cell in after[None].items() if cell["released_at"] not in (None, first_release)} \
            if day else set()
        first_release = first_release if day else after[None][(None, None, None, None, None, True)]["released_at"]
    assert moved  # the figures did move along the fortnight, by ten people or more at a time
