"""What a snapshot shows: the API's JSON, CSV and GeoJSON exports, and the selection a map draws."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from service.gaps import aggregate
from service.gaps.geography import Geography
from service.gaps.snapshot import cells
from service.spreadsheet import inert_row
from surveys.definition import DIMENSIONS, Definition

CELL_FIELDS = ("region", "region_name", "group", "dimension", "indicator", "n", "gap_n", "gap_rate", "ci_low",
               "ci_high", "index_mean", "suppressed", "released_at")
DIFFERENCE_FIELDS = ("returnee_gap_rate", "community_gap_rate", "gap_difference", "difference_ci_low",
                     "difference_ci_high", "pattern")
METRICS = ("gap_rate", "index", "difference")


class SelectionError(ValueError):
    """A request for figures the survey does not have; the message says what it has."""


@dataclass(frozen=True)
class Selection:
    """Which cells: a group question (or none), and for maps one measure and what to show of it."""

    grouping: str | None = None
    dimension: str | None = None
    indicator: str | None = None
    metric: str | None = None

    @property
    def measure(self) -> str:
        if self.indicator:
            return aggregate.indicator_measure(self.indicator)
        if self.dimension:
            return aggregate.dimension_measure(self.dimension)
        return aggregate.OVERALL

    @property
    def shown(self) -> str:
        """The metric drawn: the gap rate of an indicator or dimension, the mean index overall."""
        return self.metric or ("index" if self.measure == aggregate.OVERALL else "gap_rate")


def select(definition: Definition, grouping: str | None = None, dimension: str | None = None,
           indicator: str | None = None, metric: str | None = None) -> Selection:
    """A checked selection; raises SelectionError naming what the survey offers."""
    groups = [q.id for q in aggregate.group_questions(definition)]
    if grouping and grouping not in groups:
        raise SelectionError(f"{grouping!r} is not a group question of {definition.id}; "
                             f"group by one of: {', '.join(groups) or 'none'}")
    if dimension and indicator:
        raise SelectionError("choose a dimension or an indicator, not both")
    dimensions = sorted({q.dimension for q in aggregate.indicators(definition)}, key=DIMENSIONS.index)
    if dimension and dimension not in dimensions:
        raise SelectionError(f"{dimension!r} is not a dimension of {definition.id}: {', '.join(dimensions)}")
    indicators = [q.id for q in aggregate.indicators(definition)]
    if indicator and indicator not in indicators:
        raise SelectionError(f"{indicator!r} is not an indicator of {definition.id}: {', '.join(indicators)}")
    if metric and metric not in METRICS:
        raise SelectionError(f"metric must be one of {', '.join(METRICS)}")
    selection = Selection(grouping or None, dimension or None, indicator or None, metric or None)
    if selection.shown == "difference" and selection.grouping:
        raise SelectionError("the returnee-community difference is shown without a group")
    return selection


def _public(cell: dict[str, Any], with_difference: bool) -> dict[str, Any]:
    fields = CELL_FIELDS + (DIFFERENCE_FIELDS if with_difference else ())
    return {f: cell.get(f) for f in fields}


def response(payload: dict[str, Any], selection: Selection) -> dict[str, Any]:
    """The JSON of GET /api/v1/surveys/{id}/gaps (CONTRACT.md, extended compatibly)."""
    ungrouped = selection.grouping is None
    chosen = [c for c in cells(payload) if c["grouping"] == selection.grouping]
    return {
        "survey_id": payload["survey_id"],
        "version": payload["version"],
        "generated_at": payload["generated_at"],
        "min_cell": payload["min_cell"],
        "by": "region",
        "group_question": selection.grouping,
        "wave": payload.get("wave"),
        "respondents": payload.get("respondents"),
        "release": payload.get("release"),
        "comparison": payload.get("comparison"),
        "cells": [_public(c, ungrouped) for c in chosen if c["region"] is not None and not c["overall"]],
        "overall": [_public(c, ungrouped) for c in chosen if c["region"] is not None and c["overall"]],
        "national": [_public(c, ungrouped) | {"overall": c["overall"]} for c in chosen if c["region"] is None],
    }


def to_csv(payload: dict[str, Any], selection: Selection) -> str:
    """One row per published cell (regional, then national; `overall` rows have no dimension or indicator)."""
    data = response(payload, selection)
    ungrouped = selection.grouping is None
    head = ["level", "measure", *CELL_FIELDS, *(DIFFERENCE_FIELDS if ungrouped else ())]
    buffer = io.StringIO()
    writer = csv.writer(buffer)  # RFC 4180 CRLF: a carriage return inside a text cell is quoted, never a new row
    writer.writerow(head)
    rows = [("region", c) for c in data["cells"] + data["overall"]] + [("national", c) for c in data["national"]]
    for level, cell in rows:
        measure = cell["indicator"] or cell["dimension"] or "overall"
        writer.writerow(inert_row([level, measure, *(_csv_value(cell.get(f)) for f in head[2:])]))
    return buffer.getvalue()


def _csv_value(value: Any) -> Any:
    """A figure as a spreadsheet should show it: rates, intervals and indexes to 4 decimals, counts whole."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return Decimal(f"{value:.4f}")  # a number, written -0.1250: never taken for a formula (service.spreadsheet)
    return value


def to_geojson(payload: dict[str, Any], selection: Selection, geography: Geography) -> str:
    """A FeatureCollection, one feature per region with its figures as properties.

    With a chosen measure, properties are `gap_rate`, `n`...; otherwise one set per measure (`economic.gap_rate`,
    `income_covers.n`, `overall.index_mean`). With a group, the group value comes before the figure
    (`returnee.gap_rate`). The tile grid gives each state its approximate centre as a Point.
    """
    chosen = [c for c in cells(payload) if c["grouping"] == selection.grouping and c["region"] is not None]
    chosen_measure = selection.indicator or selection.dimension
    fields = [f for f in CELL_FIELDS if f not in ("region", "region_name", "group", "dimension", "indicator")]
    if selection.grouping is None:
        fields += list(DIFFERENCE_FIELDS)
    features = []
    for shape in geography.shapes:
        properties: dict[str, Any] = {"code": shape.code, "name": shape.name}
        for cell in chosen:
            if cell["region"] != shape.code:
                continue
            measure = cell["indicator"] or cell["dimension"] or "overall"
            if chosen_measure and measure != chosen_measure:
                continue
            prefix = [] if chosen_measure else [measure]
            if cell["group"] is not None:
                prefix.append(cell["group"])
            for f in fields:
                properties[".".join([*prefix, f])] = cell.get(f)
        features.append({"type": "Feature", "geometry": shape.geometry, "properties": properties})
    collection = {
        "type": "FeatureCollection",
        "survey_id": payload["survey_id"],
        "version": payload["version"],
        "generated_at": payload["generated_at"],
        "min_cell": payload["min_cell"],
        "features": features,
    }
    return json.dumps(collection, ensure_ascii=False)


def map_cells(payload: dict[str, Any], selection: Selection) -> dict[str | None, dict[str, dict[str, Any]]]:
    """For a map: group value (None without a group) -> region code -> the cell of the chosen measure."""
    dimension, indicator = selection.dimension, selection.indicator
    panels: dict[str | None, dict[str, dict[str, Any]]] = {}
    for cell in cells(payload):
        if cell["grouping"] != selection.grouping or cell["region"] is None:
            continue
        if indicator and cell["indicator"] != indicator:
            continue
        if not indicator and dimension and (cell["dimension"] != dimension or cell["indicator"] is not None):
            continue
        if not indicator and not dimension and not cell["overall"]:
            continue
        panels.setdefault(cell["group"], {})[cell["region"]] = cell
    return panels
