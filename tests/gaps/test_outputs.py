"""Outputs of the gap maps: the API's formats and errors, the CLI, GeoJSON geography, snapshots and their schedule."""

from __future__ import annotations

import csv
import io
import json
import xml.etree.ElementTree as ElementTree

import pytest
from click.testing import CliRunner

from tests.gaps import synthetic

SURVEY = "reintegracion-mx"
PLAN = [("01", True, 30), ("01", False, 25), ("19", True, 40), ("19", False, 12), ("14", True, 6), ("09", False, 20)]


@pytest.fixture
def h(sqlite_url, providers, tmp_path):
    from tests.support import Harness

    harness = Harness(sqlite_url, providers, tmp_path)
    definition = harness.rt.catalog.current(SURVEY)
    synthetic.insert(harness.rt.engine, definition, synthetic.crowd(definition, PLAN))
    yield harness
    harness.close()


def _geojson(codes=("01", "19", "14", "09"), prop="CVE_ENT"):
    features = []
    for i, code in enumerate(codes):
        x, y = -110 + 3 * i, 20 + i
        square = [[x, y], [x + 2, y], [x + 2, y + 2], [x, y + 2], [x, y]]
        features.append({"type": "Feature", "properties": {prop: code, "NOMGEO": f"S{code}"},
                         "geometry": {"type": "Polygon", "coordinates": [square]}})
    return {"type": "FeatureCollection", "features": features}


def test_gaps_api_roles_and_errors(h):
    path = f"/api/v1/surveys/{SURVEY}/gaps"
    assert h.client.get(path).status_code == 401
    assert h.api(path, token="rt_nope").status_code == 401
    assert h.api(path, token=h.analyst_token).status_code == 200
    assert h.api(path, token=h.staff_token).status_code == 200
    for query, fragment in (("?by=sex", "by must be region"), ("?group=state", "not a group question"),
                            ("?dimension=spiritual", "not a dimension"), ("?indicator=sex", "not an indicator"),
                            ("?format=xlsx", "format must be"), ("?wave=two", "wave must be a number"),
                            ("?metric=difference&group=sex", "without a group")):
        response = h.api(path + query, token=h.analyst_token)
        assert response.status_code == 400, query
        assert fragment in response.get_json()["error"]["message"], query
    assert h.api("/api/v1/surveys/nope/gaps", token=h.analyst_token).status_code == 404
    # analysts see aggregates only: nothing about a respondent or an address
    body = h.api(path, token=h.analyst_token).get_data(as_text=True)
    assert "respondent_id" not in body and "address" not in body and "syn0000" not in body


def test_every_format_from_the_api(h):
    base = f"/api/v1/surveys/{SURVEY}/gaps?dimension=economic"
    data = h.api(base, token=h.analyst_token).get_json()
    assert data["survey_id"] == SURVEY and data["version"] == 2 and data["min_cell"] == 10
    state = next(c for c in data["cells"] if c["region"] == "19" and c["indicator"] is None
                 and c["dimension"] == "economic")
    assert state["n"] == 52 and state["region_name"] == "Nuevo León"

    rows = list(csv.DictReader(io.StringIO(h.api(base + "&format=csv", token=h.analyst_token).get_data(as_text=True))))
    nuevo_leon = next(r for r in rows if r["region"] == "19" and r["measure"] == "economic")
    assert int(nuevo_leon["n"]) == 52 and nuevo_leon["gap_rate"] == f"{state['gap_rate']:.4f}"  # 4 decimals
    small = next(r for r in rows if r["region"] == "14" and r["measure"] == "economic")
    assert small["suppressed"] == "true" and small["n"] == "" and small["gap_rate"] == ""

    collection = json.loads(h.api(base + "&format=geojson", token=h.analyst_token).get_data(as_text=True))
    assert collection["type"] == "FeatureCollection" and len(collection["features"]) == 32
    feature = next(f for f in collection["features"] if f["properties"]["code"] == "19")
    assert feature["geometry"]["type"] == "Point"
    assert feature["properties"]["n"] == 52 and feature["properties"]["gap_rate"] == pytest.approx(state["gap_rate"])

    svg = h.api(base + "&format=svg", token=h.analyst_token)
    assert svg.mimetype == "image/svg+xml"
    root = ElementTree.fromstring(svg.get_data())
    ns = {"s": "http://www.w3.org/2000/svg"}
    regions = root.findall("s:g[@class='region']", ns)
    assert len(regions) == 32
    titles = {g.get("data-code"): g.find("s:title", ns).text for g in regions}
    assert "n = 52" in titles["19"] and "Nuevo León" in titles["19"]
    assert "suprimido" in titles["14"]
    assert next(g for g in regions if g.get("data-code") == "14").find("s:path", ns).get("fill") == "url(#hatch)"
    text = svg.get_data(as_text=True)
    assert "Dimensión económica" in text and "versión 2" in text and "calculado" in text  # title, version, date
    assert "personas en brecha" in text and "≥ 80%" in text  # legend

    png = h.api(base + "&format=png&language=en", token=h.analyst_token)
    assert png.mimetype == "image/png"
    from PIL import Image

    image = Image.open(io.BytesIO(png.get_data()))
    assert image.size[0] == 960 and image.size[1] > 400
    assert len(image.getcolors(1 << 16)) > 10  # a real picture, not a blank page


def test_groups_and_the_returnee_community_difference(h):
    base = f"/api/v1/surveys/{SURVEY}/gaps"
    grouped = h.api(base + "?group=returned", token=h.analyst_token).get_json()
    assert grouped["group_question"] == "returned"
    assert {c["group"] for c in grouped["cells"]} == {"returnee", "community"}
    assert "gap_difference" not in grouped["cells"][0]
    ungrouped = h.api(base, token=h.analyst_token).get_json()
    # a state where both groups are published (others protect Jalisco's 6 returnees)
    state = next(c for c in ungrouped["overall"] if c["gap_difference"] is not None)
    returnees = next(c for c in grouped["overall"] if c["region"] == state["region"] and c["group"] == "returnee")
    community = next(c for c in grouped["overall"] if c["region"] == state["region"] and c["group"] == "community")
    assert state["gap_difference"] == pytest.approx(returnees["gap_rate"] - community["gap_rate"])
    assert state["pattern"] in ("returnees_behind", "returnees_ahead", "shared")
    svg = h.api(base + "?metric=difference&format=svg", token=h.analyst_token).get_data(as_text=True)
    assert "retornados" in svg and "pp" in svg
    panels = h.api(base + "?group=sex&indicator=work&format=svg", token=h.analyst_token).get_data(as_text=True)
    assert panels.count('class="region"') == 32 * 3  # one panel per value


def test_releases_come_at_most_once_a_day_and_refresh_is_for_staff(h):
    """Figures change only on a release: at most once per release_interval (1d), and a cell only once min_cell
    (10) more people answered in it; analysts cannot force one (issue 15)."""
    from service import schedule
    from workers.gaps import refresh_all

    assert ("workers.gaps.refresh_all", 60) in schedule.PERIODIC
    path = f"/api/v1/surveys/{SURVEY}/gaps"
    releases = "SELECT count(*) FROM gap_snapshots WHERE wave IS NULL"
    first = h.api(path, token=h.analyst_token).get_json()
    assert h.count(releases) == 1
    assert first["release"]["interval_seconds"] == 86400
    assert h.api(path, token=h.analyst_token).get_json()["generated_at"] == first["generated_at"]
    assert refresh_all() == {}

    def overall(body, region):
        return next(c for c in body["overall"] if c["region"] == region)

    # one more person in Nuevo León: nothing moves for a day, and then still not their state's figures
    definition = h.rt.catalog.current(SURVEY)
    synthetic.insert(h.rt.engine, definition, synthetic.crowd(definition, [("19", True, 1)], seed=9), first_id=10_000)
    h.clock.advance(hours=23)
    assert h.api(path, token=h.analyst_token).get_json()["generated_at"] == first["generated_at"]
    assert refresh_all() == {}
    h.clock.advance(hours=2)
    assert list(refresh_all()) == [SURVEY]
    second = h.api(path, token=h.analyst_token).get_json()
    assert second["generated_at"] != first["generated_at"] and h.count(releases) == 2
    assert overall(second, "19") == overall(first, "19")  # n 52 -> 53: kept, with its first release date
    assert overall(second, "19")["released_at"] == first["generated_at"]
    assert second["respondents"] == first["respondents"] == 133
    assert second["national"] == first["national"]

    # ten more there: at the next release, the state's figures (and the nation's) move
    synthetic.insert(h.rt.engine, definition, synthetic.crowd(definition, [("19", True, 10)], seed=4), first_id=10_001)
    h.clock.advance(hours=12)
    assert refresh_all() == {}  # not a day yet
    h.clock.advance(hours=12)
    assert list(refresh_all()) == [SURVEY]
    third = h.api(path, token=h.analyst_token).get_json()
    assert overall(third, "19")["n"] == 63 and overall(third, "19")["released_at"] == third["generated_at"]
    assert third["respondents"] == 144
    assert overall(third, "01") == overall(first, "01")  # nobody new in Aguascalientes

    # refresh is for staff: analysts get 403, staff a release at once (the per-cell rule still holds)
    refresh = path + "/refresh"
    assert h.api(refresh, token=h.staff_token).status_code == 405
    assert h.client.post(refresh, headers={"Authorization": f"Bearer {h.analyst_token}"}).status_code == 403
    assert h.api(path + "?refresh=true", token=h.analyst_token).status_code == 403
    assert h.count(releases) == 3
    assert h.client.post(refresh, headers={"Authorization": f"Bearer {h.staff_token}"}).status_code == 202
    h.settle()
    assert h.count(releases) == 4
    forced = h.api(path + "?refresh=true", token=h.staff_token).get_json()
    assert h.count(releases) == 5
    assert forced["cells"] == third["cells"] and forced["national"] == third["national"]


def test_cli_writes_every_format(h, tmp_path, monkeypatch):
    from service.cli import main

    monkeypatch.setenv("DATABASE_URL", h.settings.database_url)
    monkeypatch.setenv("RETORNO_SECRET_KEY", h.settings.secret_key)
    monkeypatch.delenv("REDIS_URL", raising=False)
    runner = CliRunner()
    result = runner.invoke(main, ["gaps", "--survey", SURVEY, "--format", "json", "--group", "returned"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["group_question"] == "returned" and data["cells"]
    for output_format in ("csv", "geojson", "svg", "png"):
        target = tmp_path / f"map.{output_format}"
        result = runner.invoke(main, ["gaps", "--survey", SURVEY, "--format", output_format, "--indicator", "work",
                                      "--output", str(target)])
        assert result.exit_code == 0, result.output
        assert target.stat().st_size > 200
        assert f"wrote {target}" in result.stderr
    assert (tmp_path / "map.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    result = runner.invoke(main, ["gaps", "--survey", "nope"])
    assert result.exit_code != 0 and "no survey 'nope'" in result.output
    result = runner.invoke(main, ["gaps", "--survey", SURVEY, "--dimension", "economic", "--indicator", "work"])
    assert result.exit_code != 0 and "not both" in result.output


def test_a_programmes_geojson_makes_a_choropleth(h, tmp_path, monkeypatch):
    from service.cli import main

    monkeypatch.setenv("DATABASE_URL", h.settings.database_url)
    monkeypatch.setenv("RETORNO_SECRET_KEY", h.settings.secret_key)
    good = tmp_path / "states.geojson"
    good.write_text(json.dumps(_geojson()), encoding="utf-8")
    runner = CliRunner()
    result = runner.invoke(main, ["gaps", "--survey", SURVEY, "--format", "geojson", "--geojson", str(good)])
    assert result.exit_code == 0, result.output
    collection = json.loads(result.stdout)
    assert {f["properties"]["code"] for f in collection["features"]} == {"01", "19", "14", "09"}
    assert collection["features"][0]["geometry"]["type"] == "MultiPolygon"
    assert "regions without a shape on the map" in result.stderr  # 28 states have none in this file
    result = runner.invoke(main, ["gaps", "--survey", SURVEY, "--format", "svg", "--geojson", str(good),
                                  "--code-property", "CVE_ENT"])
    assert result.exit_code == 0 and result.stdout.count('class="region"') == 4
    # codes are checked against the survey's region list; numbers are read as zero-padded codes
    bad = tmp_path / "bad.geojson"
    bad.write_text(json.dumps(_geojson(codes=("01", "99"))), encoding="utf-8")
    result = runner.invoke(main, ["gaps", "--survey", SURVEY, "--format", "svg", "--geojson", str(bad)])
    assert result.exit_code != 0 and "not in the survey's region list: 99" in result.output
    numbers = tmp_path / "numbers.geojson"
    numbers.write_text(json.dumps(_geojson(codes=(1, 19))), encoding="utf-8")
    result = runner.invoke(main, ["gaps", "--survey", SURVEY, "--format", "svg", "--geojson", str(numbers)])
    assert result.exit_code == 0, result.output
    # a configured map folder serves the API and dashboard too
    maps = tmp_path / "maps"
    maps.mkdir()
    (maps / f"{SURVEY}.geojson").write_text(json.dumps(_geojson()), encoding="utf-8")
    monkeypatch.setenv("RETORNO_MAPS_DIR", str(maps))
    svg = h.api(f"/api/v1/surveys/{SURVEY}/gaps?format=svg", token=h.analyst_token).get_data(as_text=True)
    assert svg.count('class="region"') == 4


def test_a_survey_with_no_completed_responses_yet(sqlite_url, providers, tmp_path):
    from tests.support import Harness

    h = Harness(sqlite_url, providers, tmp_path)
    try:
        data = h.api(f"/api/v1/surveys/{SURVEY}/gaps", token=h.analyst_token).get_json()
        assert data["cells"] == [] and data["national"] == [] and data["respondents"] == 0
        svg = h.api(f"/api/v1/surveys/{SURVEY}/gaps?format=svg", token=h.analyst_token)
        assert svg.status_code == 200 and svg.get_data(as_text=True).count('class="region"') == 32
        assert h.client.get("/dashboard", headers={"Authorization": f"Bearer {h.analyst_token}"}).status_code == 200
    finally:
        h.close()


def test_two_processes_releasing_at_once_make_one_release(harness):
    """Releases of a survey never run side by side (an advisory lock on PostgreSQL, SQLite's write lock): the one
    that waited finds the release made and returns it, instead of a second one decided against the same history."""
    import threading

    from service.gaps import snapshot

    definition = harness.rt.catalog.current(SURVEY)
    synthetic.insert(harness.rt.engine, definition, synthetic.crowd(definition, PLAN))
    found, start = [], threading.Barrier(2)

    def release():
        start.wait()
        found.append(snapshot.aware(snapshot.release(harness.rt, definition)[None].computed_at))

    threads = [threading.Thread(target=release) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == 2 and found[0] == found[1]
    assert harness.count("SELECT count(*) FROM gap_snapshots WHERE wave IS NULL") == 1


def test_outputs_read_as_a_person_expects(h, tmp_path, monkeypatch):
    """JSON ends with a newline, CSV figures have the digits they mean, and a language the survey does not
    have is an error that lists the ones it has."""
    from service.cli import main

    monkeypatch.setenv("DATABASE_URL", h.settings.database_url)
    monkeypatch.setenv("RETORNO_SECRET_KEY", h.settings.secret_key)
    monkeypatch.delenv("REDIS_URL", raising=False)
    for output_format in ("json", "geojson"):
        result = CliRunner().invoke(main, ["gaps", "--survey", SURVEY, "--format", output_format])
        assert result.exit_code == 0 and result.stdout.endswith("}\n"), output_format
    base = f"/api/v1/surveys/{SURVEY}/gaps"
    body = h.api(base + "?format=csv", token=h.analyst_token).get_data(as_text=True)
    rows = list(csv.DictReader(io.StringIO(body)))
    rates = ("gap_rate", "ci_low", "ci_high", "index_mean", "returnee_gap_rate", "community_gap_rate",
             "gap_difference", "difference_ci_low", "difference_ci_high")
    figures = [row[field] for row in rows for field in rates if row[field]]
    assert figures and all(len(value.split(".")[1]) == 4 for value in figures), figures[:5]
    assert all(row["n"] == "" or row["n"].isdigit() for row in rows)
    response = h.api(base + "?format=svg&language=fr", token=h.analyst_token)
    assert response.status_code == 400
    assert response.get_json()["error"]["message"] == (
        f"language 'fr' is not one of the languages of {SURVEY}: es, en")
    assert h.api(base + "?format=svg&language=en", token=h.analyst_token).status_code == 200


@pytest.mark.parametrize("language, words, missing", [("es", "sin comparación", "sin datos"),
                                                      ("en", "no comparison", "no data")])
def test_the_difference_map_says_when_a_region_has_figures_but_no_comparison(h, language, words, missing):
    """A state whose figures are published but whose returnee or community cells are suppressed (to protect small
    ones elsewhere) has no difference to draw: it reads as "no comparison" with its n, never as "no data"; a state
    nobody answered in looks like a suppressed one (issue 15: empty and suppressed cells look alike)."""
    from service.gaps import maps

    base = f"/api/v1/surveys/{SURVEY}/gaps"
    overall = h.api(base, token=h.analyst_token).get_json()["overall"]
    state = next(c for c in overall if c["n"] and c["gap_difference"] is None and not c["suppressed"])
    svg = h.api(base + f"?metric=difference&format=svg&language={language}", token=h.analyst_token)
    root = ElementTree.fromstring(svg.get_data())
    ns = {"svg": "http://www.w3.org/2000/svg"}
    region = root.find(f".//svg:g[@data-code='{state['region']}']", ns)
    tooltip = region.find("svg:title", ns).text
    assert words in tooltip and f"n = {state['n']}" in tooltip and missing not in tooltip
    assert region.find("svg:path", ns).get("fill") == maps.NO_COMPARISON
    labels = [t.text for t in region.findall("svg:text", ns)]
    assert labels[1] in ("sin comp.", "no comp.")
    legend = [t.text for t in root.findall("svg:text", ns)]
    assert words in legend
    width = int(root.get("width"))
    assert all(float(t.get("x")) < width for t in root.findall("svg:text", ns)), "the legend wraps inside the map"
    empty = root.find(".//svg:g[@data-code='32']", ns)
    suppressed = next(g for g in root.findall(".//svg:g[@data-code]", ns)
                      if next(c for c in overall if c["region"] == g.get("data-code"))["suppressed"])
    assert missing not in empty.find("svg:title", ns).text
    assert empty.find("svg:title", ns).text.split(": ", 1)[1] == suppressed.find("svg:title", ns).text.split(": ", 1)[1]
