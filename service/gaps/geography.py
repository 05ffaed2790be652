"""Where regions are drawn: a tile grid of Mexico's 32 states by default, or a programme's own GeoJSON.

The tile grid needs no outside data: one square per state (INEGI code) in its approximate position, north at the
top. A GeoJSON FeatureCollection gives a true choropleth; one property of each feature holds the region code
(named by the caller, by a top-level `code_property` member of the file, or found: the one property whose values
are all region codes). Codes are checked against the survey's region list.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from surveys.definition import Region

# INEGI code -> (column, row) of the tile grid
MEXICO_TILES: dict[str, tuple[int, int]] = {
    "02": (0, 0), "26": (1, 0), "08": (2, 0), "05": (3, 0), "19": (4, 0),
    "03": (0, 1), "25": (1, 1), "10": (2, 1), "32": (3, 1), "24": (4, 1), "28": (5, 1),
    "18": (1, 2), "01": (2, 2), "11": (3, 2), "22": (4, 2), "13": (5, 2), "30": (6, 2), "31": (8, 2),
    "14": (1, 3), "16": (2, 3), "15": (3, 3), "09": (4, 3), "29": (5, 3), "21": (6, 3), "27": (7, 3),
    "04": (8, 3), "23": (9, 3),
    "06": (1, 4), "12": (3, 4), "17": (4, 4), "20": (6, 4), "07": (7, 4),
}
GRID_COLUMNS = 8
# INEGI code -> approximate centre (longitude, latitude), for GeoJSON exports of the tile grid
MEXICO_CENTRES: dict[str, tuple[float, float]] = {
    "01": (-102.3, 21.9), "02": (-115.1, 30.5), "03": (-112.0, 25.9), "04": (-90.4, 18.8), "05": (-102.0, 27.3),
    "06": (-103.9, 19.1), "07": (-92.6, 16.5), "08": (-106.1, 28.8), "09": (-99.1, 19.3), "10": (-104.8, 24.9),
    "11": (-101.0, 20.9), "12": (-99.9, 17.6), "13": (-98.8, 20.5), "14": (-103.6, 20.6), "15": (-99.6, 19.4),
    "16": (-101.9, 19.2), "17": (-99.0, 18.7), "18": (-104.8, 21.8), "19": (-99.7, 25.6), "20": (-96.7, 17.0),
    "21": (-97.9, 19.0), "22": (-99.9, 20.9), "23": (-88.1, 19.6), "24": (-100.4, 22.6), "25": (-107.5, 25.0),
    "26": (-110.7, 29.3), "27": (-92.6, 18.0), "28": (-98.6, 24.3), "29": (-98.2, 19.4), "30": (-96.4, 19.2),
    "31": (-89.1, 20.7), "32": (-102.6, 23.3),
}


class GeographyError(ValueError):
    """A GeoJSON that cannot be used, with what to fix."""


Ring = list[tuple[float, float]]


@dataclass
class Shape:
    """One region's outline: polygons, each a list of rings (the first the outside, then holes) in map units."""

    code: str
    name: str
    label: str
    polygons: list[list[Ring]] = field(default_factory=list)
    geometry: dict[str, Any] | None = None


@dataclass
class Geography:
    """Shapes in map units (x to the right, y down) and their bounding box; `tiles` for the square grid."""

    shapes: list[Shape]
    tiles: bool
    width: float
    height: float
    missing: list[str] = field(default_factory=list)


def short_label(region: Region) -> str:
    return region.abbreviations[0].rstrip(".") if region.abbreviations else region.name[:5]


def tile_grid(regions: tuple[Region, ...]) -> Geography:
    """The default map: Mexico's states in their places, or any other region list as a grid in list order."""
    mexico = bool(regions) and all(r.code in MEXICO_TILES for r in regions)
    if mexico:
        positions = {r.code: MEXICO_TILES[r.code] for r in regions}
    else:
        positions = {r.code: (i % GRID_COLUMNS, i // GRID_COLUMNS) for i, r in enumerate(regions)}
    shapes = []
    for region in regions:
        column, row = positions[region.code]
        x, y = column + 0.04, row + 0.04
        square = [(x, y), (x + 0.92, y), (x + 0.92, y + 0.92), (x, y + 0.92), (x, y)]
        centre = MEXICO_CENTRES.get(region.code) if mexico else None
        geometry = {"type": "Point", "coordinates": list(centre)} if centre else None
        shapes.append(Shape(region.code, region.name, short_label(region), [[square]], geometry))
    width = max((c for c, _ in positions.values()), default=0) + 1
    height = max((r for _, r in positions.values()), default=0) + 1
    return Geography(shapes, tiles=True, width=float(width), height=float(height))


def load_geojson(source: str | Path | dict[str, Any], regions: tuple[Region, ...],
                 code_property: str | None = None) -> Geography:
    """A programme's GeoJSON of its regions, projected for drawing; raises GeographyError with what is wrong."""
    if isinstance(source, dict):
        data = source
    else:
        path = Path(source)
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as error:
            raise GeographyError(f"cannot read {path}: {error.strerror or error}") from None
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise GeographyError(f"{path} is not JSON: {error}") from None
    collection = isinstance(data, dict) and data.get("type") == "FeatureCollection"
    if not collection or not isinstance(data.get("features"), list):
        raise GeographyError("the GeoJSON must be a FeatureCollection with a list of features")
    features = [f for f in data["features"] if isinstance(f, dict)]
    if not features:
        raise GeographyError("the GeoJSON has no features")
    known = {r.code: r for r in regions}
    prop = code_property or data.get("code_property") or _find_code_property(features, known)
    shapes: dict[str, Shape] = {}
    unknown = []
    for number, feature in enumerate(features, 1):
        properties = feature.get("properties") or {}
        if prop not in properties:
            raise GeographyError(f"feature {number} has no property {prop!r} (the region code)")
        code = _code(properties[prop], known)
        if code not in known:
            unknown.append(str(properties[prop]))
            continue
        polygons = _polygons(feature.get("geometry"), number)
        region = known[code]
        shape = shapes.setdefault(code, Shape(code, region.name, short_label(region)))
        shape.polygons.extend(polygons)
        shape.geometry = {"type": "MultiPolygon", "coordinates": [
            [[list(point) for point in ring] for ring in polygon] for polygon in shape.polygons
        ]}
    if unknown:
        raise GeographyError(
            f"region codes not in the survey's region list: {', '.join(sorted(set(unknown)))} "
            f"(property {prop!r}; the survey's codes are {', '.join(sorted(known))})"
        )
    missing = [code for code in known if code not in shapes]
    return _project(list(shapes.values()), missing)


def _find_code_property(features: list[dict], known: dict[str, Region]) -> str:
    """The property most of whose values are region codes (then every value is checked)."""
    names = set.intersection(*(set((f.get("properties") or {}).keys()) for f in features))
    matches = {n: sum(_code(f["properties"][n], known) in known for f in features) for n in names}
    best = max(matches.values(), default=0)
    fitting = sorted(n for n, count in matches.items() if count == best)
    if best == 0:
        raise GeographyError(
            "no property of the features holds the survey's region codes; name it with --code-property "
            f"(properties: {', '.join(sorted(names)) or 'none'})"
        )
    if len(fitting) > 1:
        raise GeographyError(f"several properties could hold the region codes ({', '.join(fitting)}); "
                             "name one with --code-property")
    return fitting[0]


def _code(value: Any, known: dict[str, Region]) -> str:
    """A property value as a region code: 9 or "9" matches "09" when the survey's codes are zero-padded."""
    if isinstance(value, bool) or value is None:
        return ""
    text = str(int(value)) if isinstance(value, float) and value.is_integer() else str(value).strip()
    if text in known:
        return text
    width = max((len(code) for code in known), default=0)
    if text.isdigit() and text.zfill(width) in known:
        return text.zfill(width)
    return text


def _polygons(geometry: Any, number: int) -> list[list[Ring]]:
    if not isinstance(geometry, dict):
        raise GeographyError(f"feature {number} has no geometry")
    kind, coordinates = geometry.get("type"), geometry.get("coordinates")
    try:
        if kind == "Polygon":
            return [[_ring(ring) for ring in coordinates]]
        if kind == "MultiPolygon":
            return [[_ring(ring) for ring in polygon] for polygon in coordinates]
    except (TypeError, ValueError, IndexError):
        raise GeographyError(f"feature {number} has malformed coordinates") from None
    raise GeographyError(f"feature {number} is a {kind}; regions must be Polygon or MultiPolygon")


def _ring(ring: Any) -> Ring:
    points = [(float(p[0]), float(p[1])) for p in ring]
    if len(points) < 3 or not all(math.isfinite(x) and math.isfinite(y) for x, y in points):
        raise ValueError("bad ring")
    return points


def _project(shapes: list[Shape], missing: list[str]) -> Geography:
    """Longitude/latitude to map units: equirectangular, scaled by the cosine of the middle latitude."""
    points = [p for s in shapes for polygon in s.polygons for ring in polygon for p in ring]
    west, east = min(p[0] for p in points), max(p[0] for p in points)
    south, north = min(p[1] for p in points), max(p[1] for p in points)
    factor = math.cos(math.radians((south + north) / 2)) if abs(north) <= 90 and abs(south) <= 90 else 1.0
    span_x = max((east - west) * factor, 1e-9)
    span_y = max(north - south, 1e-9)
    scale = 10.0 / max(span_x, span_y)
    for shape in shapes:
        shape.polygons = [
            [[((x - west) * factor * scale, (north - y) * scale) for x, y in ring] for ring in polygon]
            for polygon in shape.polygons
        ]
    return Geography(shapes, tiles=False, width=span_x * scale, height=span_y * scale, missing=missing)
