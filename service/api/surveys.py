"""Surveys, their normalized definitions and their responses (JSON or CSV)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from flask import Response, g, jsonify, request, stream_with_context
from sqlalchemy import select

from service import audit
from service.api.base import ANALYST, STAFF, ApiError, api
from service.auth import require
from service.edge import INT32_MAX, whole
from service.models import Answer, Contact, SurveySession
from service.runtime import Runtime
from service.spreadsheet import inert_row
from service.web import current_runtime as _runtime

EXPORT_CHUNK = 1000

@api.get("/surveys")
@require(STAFF, ANALYST)
def list_surveys():
    return jsonify(
        [{"id": d.id, "version": d.version, "title": d.title} for d in _runtime().catalog.all_current()]
    )


@api.get("/surveys/<survey_id>")
@require(STAFF, ANALYST)
def get_survey(survey_id: str):
    catalog = _runtime().catalog
    version = whole(request.args.get("version"), "version", high=INT32_MAX)
    if version is not None:
        return jsonify(catalog.get(survey_id, version).normalized())
    return jsonify(catalog.current(survey_id).normalized())


@api.get("/surveys/<survey_id>/responses")
@require(STAFF)
def responses(survey_id: str):
    rt = _runtime()
    definition = rt.catalog.current(survey_id)
    export_format = request.args.get("format", "json").lower()
    if export_format not in ("json", "csv"):
        raise ApiError(400, "bad_request", "format must be json or csv")
    include_contact = request.args.get("include_contact", "false").lower() in ("1", "true", "yes")
    include_tests = request.args.get("include_tests", "false").lower() in ("1", "true", "yes")
    audit.record(rt, g.caller.actor, "responses.exported", survey_id, with_contacts=include_contact,
                 with_tests=include_tests, format=export_format)
    rows = _responses(rt, survey_id, include_contact, include_tests)
    if export_format == "json":
        return Response(stream_with_context(_json_array(rows)), mimetype="application/json")
    columns = [q.id for q in definition.questions]
    response = Response(stream_with_context(_csv(rows, columns, include_contact)), mimetype="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{survey_id}-responses.csv"'
    return response


def _responses(rt: Runtime, survey_id: str, include_contact: bool,
               include_tests: bool = False) -> Iterator[dict[str, Any]]:
    """One record per respondent session, read in chunks so exports of any size stream; test contacts (the
    console) only with `include_tests`."""
    last_id = 0
    tests = [] if include_tests else [Contact.test.is_(False)]
    while True:
        with rt.sessions() as session:
            sessions = session.execute(
                select(SurveySession, Contact.public_id, Contact.channel, Contact.address_enc)
                .join(Contact, Contact.id == SurveySession.contact_id)
                .where(SurveySession.survey_id == survey_id, SurveySession.id > last_id, *tests)
                .order_by(SurveySession.id)
                .limit(EXPORT_CHUNK)
            ).all()
            if not sessions:
                return
            ids = [row[0].id for row in sessions]
            answers: dict[int, dict[str, Any]] = {i: {} for i in ids}
            for session_id, question_id, value in session.execute(
                select(Answer.session_id, Answer.question_id, Answer.value)
                .where(Answer.session_id.in_(ids))
                .order_by(Answer.id)
            ):
                answers[session_id][question_id] = value
        for row, public_id, channel, address_enc in sessions:
            record: dict[str, Any] = {
                "respondent_id": public_id,
                "channel": channel,
            }
            if include_contact:
                record["address"] = rt.vault.decrypt(address_enc)
            record.update(
                {
                    "language": row.language,
                    "status": row.status,
                    "survey_version": row.version,
                    "wave": row.wave,
                    "started_at": _iso(row.started_at),
                    "completed_at": _iso(row.completed_at),
                    "answers": answers[row.id],
                }
            )
            yield record
        last_id = ids[-1]


def _iso(moment) -> str | None:
    return moment.isoformat() if moment is not None else None


def _json_array(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    yield "["
    first = True
    for row in rows:
        yield ("" if first else ",") + json.dumps(row, ensure_ascii=False)
        first = False
    yield "]"


def _csv(rows: Iterator[dict[str, Any]], columns: list[str], include_contact: bool) -> Iterator[str]:
    head = ["respondent_id", "channel", *(["address"] if include_contact else []), "language", "status",
            "survey_version", "wave", "started_at", "completed_at"]
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([*head, *columns])
    for row in rows:
        answers = row["answers"]
        extra = [c for c in answers if c not in columns]
        writer.writerow(inert_row([*(row.get(h) for h in head), *(_cell(answers.get(c)) for c in columns),
                                   *(f"{c}={_cell(answers[c])}" for c in extra)]))
        yield buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
    yield buffer.getvalue()


def _cell(value: Any) -> Any:
    if isinstance(value, list):
        return ";".join(str(v) for v in value)
    return "" if value is None else value


@api.post("/surveys/<survey_id>/simulate")
@require(STAFF)
def simulate(survey_id: str):
    """The survey as a respondent would meet it, through the pure engine: nothing is stored, sent or paid."""
    from service.staff.pages import run_simulation
    from service.staff.simulate import SimulationError

    body = request.get_json(silent=True)
    if not isinstance(body, dict):
        raise ApiError(400, "bad_request", 'send JSON: {"language": "es", "channel": "sms", "messages": ["hola"]}')
    try:
        result = run_simulation(body, survey_id=survey_id)
    except SimulationError as error:
        raise ApiError(400, "bad_request", str(error)) from None
    audit.record(_runtime(), g.caller.actor, "survey.simulated", f"{result['survey_id']} v{result['version']}",
                 messages=len(result["turns"]), channel=result["channel"])
    return jsonify({key: result[key] for key in ("survey_id", "version", "language", "channel", "status", "question",
                                                  "replies", "segments_total", "messages_total", "cost_estimate")})
