"""The JSON API: tokens and roles, survey definitions, responses in JSON and CSV."""

from __future__ import annotations

import csv
import io

import pytest

PHONE = "+525512345678"


@pytest.fixture
def h(sqlite_url, providers, tmp_path):
    from tests.support import Harness

    harness = Harness(sqlite_url, providers, tmp_path)
    yield harness
    harness.close()


@pytest.mark.parametrize("path", [
    "/api/v1/surveys", "/api/v1/surveys/reintegracion-mx", "/api/v1/surveys/reintegracion-mx/responses",
])
def test_no_or_unknown_token_is_401(h, path):
    assert h.client.get(path).status_code == 401
    response = h.api(path, token="rt_not-a-token")
    assert response.status_code == 401
    assert response.get_json()["error"]["code"] == "unauthorized"


def test_analysts_may_not_read_responses(h):
    response = h.api("/api/v1/surveys/reintegracion-mx/responses", token=h.analyst_token)
    assert response.status_code == 403
    assert response.get_json() == {"error": {"code": "forbidden", "message": "the analyst role may not do this"}}


def test_list_and_get_surveys(h):
    for token in (h.staff_token, h.analyst_token):
        listed = h.api("/api/v1/surveys", token=token).get_json()
        assert {"id": "reintegracion-mx", "version": 2,
                "title": {"es": "Reintegración en México", "en": "Reintegration in Mexico"}} in listed
    survey = h.api("/api/v1/surveys/reintegracion-mx").get_json()
    assert survey["id"] == "reintegracion-mx" and survey["version"] == 2
    assert survey["languages"] == ["es", "en"] and survey["default_language"] == "es"
    consent = survey["questions"][0]
    assert consent["id"] == "consent" and consent["choices"][0]["value"] == "yes"
    keys = {"id", "type", "text", "required", "choices", "min", "max", "when", "dimension", "gap", "group"}
    assert all(keys <= set(q) for q in survey["questions"])
    state = next(q for q in survey["questions"] if q["type"] == "region")
    assert {"value": "19", "label": {"es": "Nuevo León", "en": "Nuevo León"}} in state["choices"]
    income = next(q for q in survey["questions"] if q["id"] == "income_covers")
    assert income["dimension"] == "economic" and income["gap"] == ["sometimes", "no"]


def test_unknown_survey_is_404(h):
    response = h.api("/api/v1/surveys/nope")
    assert response.status_code == 404
    assert response.get_json()["error"]["code"] == "unknown_survey"


def test_responses_as_json_and_csv(h):
    for text in ("Hola", "si", "30", "1", "me deportaron"):
        h.sms(PHONE, text)
        h.settle()
    h.telegram_text(777, "hola")
    h.settle()
    records = h.api("/api/v1/surveys/reintegracion-mx/responses").get_json()
    assert [r["channel"] for r in records] == ["sms", "telegram"]
    assert records[0]["answers"] == {"consent": "yes", "age_band": "25-34", "returned": "returnee",
                                     "return_type": "deported"}
    assert records[0]["status"] == "in_progress" and records[1]["answers"] == {}
    assert all("address" not in r for r in records)
    response = h.api("/api/v1/surveys/reintegracion-mx/responses?format=csv")
    assert response.mimetype == "text/csv"
    rows = list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))
    assert rows[0]["return_type"] == "deported" and rows[0]["community_need"] == ""
    assert "address" not in rows[0]
    with_contact = h.api("/api/v1/surveys/reintegracion-mx/responses?format=csv&include_contact=true")
    rows = list(csv.DictReader(io.StringIO(with_contact.get_data(as_text=True))))
    assert [r["address"] for r in rows] == ["'" + PHONE, "777"]  # a cell starting with + is made inert


def test_bad_format_is_400(h):
    response = h.api("/api/v1/surveys/reintegracion-mx/responses?format=xml")
    assert response.status_code == 400
