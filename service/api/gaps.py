"""Gap maps: published figures by region (and group), as JSON, CSV, GeoJSON, SVG or PNG."""

from __future__ import annotations

from flask import Response, g, jsonify, request

from service.api.base import ANALYST, STAFF, ApiError, api
from service.auth import require
from service.edge import INT32_MAX, whole
from service.gaps import snapshot, views
from service.gaps.exports import FORMATS, geography_for, render
from service.gaps.geography import GeographyError
from service.web import current_runtime as _runtime

TRUE = ("1", "true", "yes")


@api.get("/surveys/<survey_id>/gaps")
@require(STAFF, ANALYST)
def gaps(survey_id: str):
    rt = _runtime()
    definition = rt.catalog.current(survey_id)
    args = request.args
    if args.get("by", "region") != "region":
        raise ApiError(400, "bad_request", "by must be region (the only breakdown for now)")
    output_format = args.get("format", "json").lower()
    if output_format not in FORMATS:
        raise ApiError(400, "bad_request", f"format must be one of {', '.join(FORMATS)}")
    wave = _wave(args.get("wave"))
    refresh = args.get("refresh", "").lower() in TRUE
    if refresh and g.role != STAFF:
        raise ApiError(403, "forbidden", "refresh is for staff: analysts see the latest release")
    language = args.get("language") or None
    if language is not None and language not in definition.languages:
        raise ApiError(400, "bad_request", f"language {language!r} is not one of the languages of {survey_id}: "
                                           f"{', '.join(definition.languages)}")
    try:
        selection = views.select(definition, args.get("group"), args.get("dimension"), args.get("indicator"),
                                 args.get("metric"))
        found = snapshot.current(rt, definition, wave, refresh=refresh)
        if output_format == "json":
            response = jsonify(views.response(found.payload, selection))
        else:
            output = render(found.payload, definition, selection, output_format, geography_for(definition),
                            language)
            response = Response(output.body, mimetype=output.mimetype)
            if output_format in ("csv", "geojson"):
                response.headers["Content-Disposition"] = f'attachment; filename="{output.filename}"'
    except (views.SelectionError, GeographyError) as error:
        raise ApiError(400, "bad_request", str(error)) from None
    response.headers["Cache-Control"] = "private, no-store"
    return response


@api.post("/surveys/<survey_id>/gaps/refresh")
@require(STAFF)
def refresh(survey_id: str):
    """Queue a release now (figures still change only where enough new people answered)."""
    rt = _runtime()
    rt.catalog.current(survey_id)
    wave = _wave(request.args.get("wave"))
    if not rt.dispatcher.enqueue("workers.gaps.refresh", survey_id, wave):
        raise ApiError(503, "queue_unavailable", "the queue is unavailable; try again shortly")
    response = jsonify({"survey_id": survey_id, "wave": wave, "queued": True})
    response.status_code = 202
    return response


def _wave(value: str | None) -> int | None:
    return whole(value, "wave", high=INT32_MAX)

