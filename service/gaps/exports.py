"""One snapshot in any output format: json, csv, geojson, svg, png (shared by the API, dashboard and CLI)."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.gaps import maps, views
from service.gaps.geography import Geography, GeographyError, load_geojson, tile_grid
from surveys.definition import Definition

FORMATS = ("json", "csv", "geojson", "svg", "png")
MIMETYPES = {"json": "application/json", "csv": "text/csv", "geojson": "application/geo+json",
             "svg": "image/svg+xml", "png": "image/png"}
MAPS_DIR = "RETORNO_MAPS_DIR"
log = logging.getLogger(__name__)


@dataclass
class Output:
    body: str | bytes
    mimetype: str
    filename: str


def geography_for(definition: Definition, geojson: str | Path | None = None,
                  code_property: str | None = None) -> Geography:
    """The map of `definition`'s regions: a GeoJSON given, or `$RETORNO_MAPS_DIR/<survey id>.geojson`, or tiles.

    A GeoJSON given here that cannot be used raises GeographyError; a configured one is logged and replaced by
    the tile grid, so the API and dashboard keep working.
    """
    question = definition.region_question
    regions = question.regions if question else ()
    configured = False
    if geojson is None and os.environ.get(MAPS_DIR):
        candidate = Path(os.environ[MAPS_DIR]) / f"{definition.id}.geojson"
        geojson, configured = (candidate, True) if candidate.exists() else (None, False)
    if geojson is None:
        return tile_grid(regions)
    if configured:
        try:
            return load_geojson(geojson, regions, code_property)
        except GeographyError as error:
            log.error("%s cannot be used, drawing the tile grid instead: %s", geojson, error)
            return tile_grid(regions)
    return load_geojson(geojson, regions, code_property)


def render(payload: dict[str, Any], definition: Definition, selection: views.Selection, output_format: str,
           geography: Geography | None = None, language: str | None = None) -> Output:
    """The snapshot's figures for `selection` as `output_format`; raises SelectionError or GeographyError."""
    if output_format not in FORMATS:
        raise views.SelectionError(f"format must be one of {', '.join(FORMATS)}")
    stem = "-".join(
        part for part in (payload["survey_id"], "gaps", selection.grouping, selection.indicator or selection.dimension,
                          selection.metric) if part
    )
    filename = f"{stem}.{output_format}"
    mimetype = MIMETYPES[output_format]
    if output_format == "json":
        return Output(json.dumps(views.response(payload, selection), ensure_ascii=False) + "\n", mimetype, filename)
    if output_format == "csv":
        return Output(views.to_csv(payload, selection), mimetype, filename)
    geography = geography or geography_for(definition)
    if output_format == "geojson":
        return Output(views.to_geojson(payload, selection, geography) + "\n", mimetype, filename)
    drawing = maps.scene(payload, definition, selection, geography, language)
    if output_format == "svg":
        return Output(maps.to_svg(drawing), mimetype, filename)
    return Output(maps.to_png(drawing), mimetype, filename)
