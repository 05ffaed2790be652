"""Gap maps as SVG and PNG: one measure, a sequential colour scale with a legend, withheld regions hatched.

A region without published figures looks the same whether nobody answered there or its figures are suppressed
("fewer than N, or protected"): telling the two apart would show where the few respondents are.

A map is first laid out as a `Scene` (areas, rectangles and texts in pixels), then written as SVG (each region
with a <title>: hover shows its figures and n) or painted as PNG with Pillow (n in each tile's label).
With a group question, one panel per group value.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from service.gaps.geography import Geography
from service.gaps.views import Selection, map_cells
from surveys.definition import Definition

WIDTH = 960
MARGIN = 24
HEADER = 78
PANEL_TITLE = 22
LEGEND = 64
LEGEND_ROW = 22
NO_DATA = "#e6e6e6"
NO_COMPARISON = "#eee3c4"  # not on the diverging scale, whose middle is nearly white
SUPPRESSED = "#f4f4f4"
HATCH = "#8c8c8c"
OUTLINE = "#c8c8c8"
INK = "#222222"
GREY = "#666666"

PALETTES = {
    # ColorBrewer OrRd (5): more in gap is darker
    "gap_rate": ("#fef0d9", "#fdcc8a", "#fc8d59", "#e34a33", "#b30000"),
    # ColorBrewer Purples (5), reversed: a lower index (worse reintegration) is darker
    "index": ("#54278f", "#756bb1", "#9e9ac8", "#cbc9e2", "#f2f0f7"),
    # ColorBrewer RdBu (5), reversed: returnees worse off than the community is red
    "difference": ("#2166ac", "#67a9cf", "#f7f7f7", "#ef8a62", "#b2182b"),
}
BREAKS = {
    "gap_rate": (0.2, 0.4, 0.6, 0.8),
    "index": (0.2, 0.4, 0.6, 0.8),
    "difference": (-0.15, -0.05, 0.05, 0.15),
}

TEXTS = {
    "es": {
        "gap_rate": "personas en brecha", "index": "índice de reintegración medio (0 a 1)",
        "difference": "brecha de retornados menos la de la comunidad",
        "overall": "Reintegración en general", "dimension": "Dimensión", "indicator": "Indicador",
        "economic": "económica", "social": "social", "psychosocial": "psicosocial",
        "suppressed": "menos de {min_cell} respuestas, o protegido", "no_data": "sin datos",
        "version": "versión", "computed": "calculado", "respondents": "respuestas completas",
        "all": "Todos", "n": "n", "ci": "IC 95 %", "in_gap": "en brecha", "index_mean": "índice medio",
        "suppressed_title": "suprimido: menos de {min_cell} respuestas, o protegido para no revelar otra cifra",
        "fewer_than": "menos de {min_cell}", "released": "cifra publicada el {date}",
        "returnees": "retornados", "community": "comunidad",
        "returnees_behind": "retornados rezagados", "returnees_ahead": "retornados mejor",
        "shared": "sin diferencia clara: toda la comunidad",
        "missing_map": "regiones sin forma en el mapa: {codes}",
        "no_comparison": "sin comparación", "no_comparison_short": "sin comp.",
        "no_comparison_title": "sin comparación: pocos retornados o pocos de la comunidad para comparar",
    },
    "en": {
        "gap_rate": "people in gap", "index": "mean reintegration index (0 to 1)",
        "difference": "returnees' gap minus the community's",
        "overall": "Overall reintegration", "dimension": "Dimension", "indicator": "Indicator",
        "economic": "economic", "social": "social", "psychosocial": "psychosocial",
        "suppressed": "fewer than {min_cell} responses, or protected", "no_data": "no data",
        "version": "version", "computed": "computed", "respondents": "completed responses",
        "all": "All", "n": "n", "ci": "95% CI", "in_gap": "in gap", "index_mean": "mean index",
        "suppressed_title": "suppressed: fewer than {min_cell} responses, or protected so as not to reveal another "
                            "figure",
        "fewer_than": "fewer than {min_cell}", "released": "figure released on {date}",
        "returnees": "returnees", "community": "community",
        "returnees_behind": "returnees left behind", "returnees_ahead": "returnees better off",
        "shared": "no clear difference: the whole community",
        "missing_map": "regions without a shape on the map: {codes}",
        "no_comparison": "no comparison", "no_comparison_short": "no comp.",
        "no_comparison_title": "no comparison: too few returnees or community members to compare",
    },
}


@dataclass
class Area:
    rings: list[list[tuple[float, float]]]
    fill: str
    hatched: bool
    tooltip: str
    label: list[str] = field(default_factory=list)
    label_at: tuple[float, float] | None = None
    label_size: float = 11.0
    code: str = ""


@dataclass
class Text:
    x: float
    y: float
    text: str
    size: float = 12.0
    bold: bool = False
    anchor: str = "start"
    fill: str = INK


@dataclass
class Box:
    x: float
    y: float
    width: float
    height: float
    fill: str
    hatched: bool = False
    stroke: str = "#bbbbbb"


@dataclass
class Scene:
    width: int
    height: int
    title: str
    areas: list[Area] = field(default_factory=list)
    boxes: list[Box] = field(default_factory=list)
    texts: list[Text] = field(default_factory=list)


def colour(value: float | None, metric: str) -> str:
    if value is None:
        return NO_DATA
    index = sum(1 for b in BREAKS[metric] if value >= b)
    return PALETTES[metric][index]


def language_of(definition: Definition, language: str | None) -> str:
    return language if language in TEXTS else ("es" if definition.default_language == "es" else "en")


def _measure_title(definition: Definition, selection: Selection, words: dict[str, str], language: str) -> str:
    if selection.indicator:
        q = definition.question(selection.indicator)
        text = q.text.get(language) or q.text.get(definition.default_language) or q.id
        return f"{words['indicator']}: {text}"
    if selection.dimension:
        return f"{words['dimension']} {words.get(selection.dimension, selection.dimension)}"
    return words["overall"]


def _value(cell: dict[str, Any] | None, metric: str) -> float | None:
    if cell is None or cell.get("suppressed"):
        return None
    return cell.get({"gap_rate": "gap_rate", "index": "index_mean", "difference": "gap_difference"}[metric])


def _format(value: float | None, metric: str) -> str:
    if value is None:
        return "–"
    if metric == "gap_rate":
        return f"{round(value * 100)}%"
    if metric == "difference":
        return f"{round(value * 100):+d} pp"
    return f"{value:.2f}"


def _uncompared(cell: dict[str, Any] | None, metric: str) -> bool:
    """A region with published figures but no returnee-community difference (one side too small)."""
    return (metric == "difference" and cell is not None and not cell.get("suppressed")
            and cell.get("n") is not None and cell.get("gap_difference") is None)


def _tooltip(name: str, cell: dict[str, Any] | None, metric: str, words: dict[str, str], min_cell: int) -> str:
    if cell is None or cell.get("suppressed"):
        return f"{name}: {words['suppressed_title'].format(min_cell=min_cell)}"
    if _uncompared(cell, metric):
        return f"{name}: {words['no_comparison_title']} · {words['n']} = {cell['n']}"
    parts = [f"{name}: {_format(_value(cell, metric), metric)}"]
    if metric == "difference":
        parts.append(f"{words['returnees']} {_format(cell['returnee_gap_rate'], 'gap_rate')}, "
                     f"{words['community']} {_format(cell['community_gap_rate'], 'gap_rate')}")
        parts.append(f"{words['ci']} {_format(cell['difference_ci_low'], metric)} … "
                     f"{_format(cell['difference_ci_high'], metric)}")
        parts.append(words.get(cell.get("pattern") or "", ""))
    else:
        parts.append(f"{words['in_gap']} {cell['gap_n']} / {cell['n']} "
                     f"({words['ci']} {_format(cell['ci_low'], 'gap_rate')} … {_format(cell['ci_high'], 'gap_rate')})")
        if cell.get("index_mean") is not None:
            parts.append(f"{words['index_mean']} {cell['index_mean']:.2f}")
    parts.append(f"{words['n']} = {cell['n']}")
    if cell.get("released_at"):
        parts.append(words["released"].format(date=str(cell["released_at"])[:10]))
    return " · ".join(p for p in parts if p)


def scene(payload: dict[str, Any], definition: Definition, selection: Selection, geography: Geography,
          language: str | None = None) -> Scene:
    """Lay out the map of `selection` from a snapshot's payload."""
    language = language_of(definition, language)
    words = TEXTS[language]
    metric = selection.shown
    panels = map_cells(payload, selection)
    if selection.grouping:
        question = definition.question(selection.grouping)
        values = [c.value for c in question.choices] or ["yes", "no"]
        labels = {c.value: c.label.get(language) or c.value for c in question.choices}
        order = [(v, str(labels.get(v, v))) for v in values]
    else:
        order = [(None, "")]
    columns = min(len(order), 2)
    rows = math.ceil(len(order) / columns)
    panel_width = (WIDTH - 2 * MARGIN - (columns - 1) * MARGIN) / columns
    aspect = geography.height / geography.width if geography.width else 0.5
    map_height = panel_width * aspect
    title_space = PANEL_TITLE if selection.grouping else 0
    legend = LEGEND + (LEGEND_ROW if metric == "difference" else 0)
    height = HEADER + rows * (title_space + map_height + MARGIN) + legend
    title = _measure_title(definition, selection, words, language)
    title_line = f"{title} — {words[metric]}"
    result = Scene(width=WIDTH, height=round(height), title=title_line)
    survey_title = definition.title.get(language) or definition.id
    generated = str(payload["generated_at"])[:16].replace("T", " ")
    respondents = payload.get("respondents", 0)
    fewer = words["fewer_than"].format(min_cell=payload["min_cell"])
    counted = f"{respondents:,}" if respondents is not None else fewer
    result.texts.append(Text(MARGIN, 30, title_line, size=18, bold=True))
    result.texts.append(Text(
        MARGIN, 52,
        f"{survey_title} ({payload['survey_id']}) · {words['version']} {payload['version']} · "
        f"{words['computed']} {generated} UTC · {counted} {words['respondents']}",
        size=12, fill=GREY,
    ))
    scale = panel_width / geography.width if geography.width else 1.0
    for number, (value, label) in enumerate(order):
        column, row = number % columns, number // columns
        left = MARGIN + column * (panel_width + MARGIN)
        top = HEADER + row * (title_space + map_height + MARGIN)
        if label:
            result.texts.append(Text(left, top + 14, label, size=13, bold=True))
        cells = panels.get(value, {})
        for shape in geography.shapes:
            cell = cells.get(shape.code)
            shown = _value(cell, metric)
            suppressed = cell is None or bool(cell.get("suppressed"))  # empty and suppressed alike
            rings = [
                [(left + x * scale, top + title_space + y * scale) for x, y in ring]
                for polygon in shape.polygons for ring in polygon
            ]
            uncompared = _uncompared(cell, metric)
            fill = SUPPRESSED if suppressed else NO_COMPARISON if uncompared else colour(shown, metric)
            area = Area(rings, fill, suppressed, _tooltip(shape.name, cell, metric, words, payload["min_cell"]),
                        code=shape.code)
            if geography.tiles:
                xs = [p[0] for p in rings[0]]
                ys = [p[1] for p in rings[0]]
                area.label_at = ((min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2)
                area.label_size = max(7.0, min(14.0, scale * 0.2))
                n = cell.get("n") if cell and not suppressed else None
                area.label = [shape.label, "×" if suppressed else words["no_comparison_short"] if uncompared
                              else _format(shown, metric)]
                if n is not None and scale >= 60:
                    area.label.append(f"n={n}")
            result.areas.append(area)
    _legend(result, metric, words, payload["min_cell"], height - legend + 12)
    if geography.missing:
        missing = words["missing_map"].format(codes=", ".join(geography.missing))
        result.texts.append(Text(WIDTH - MARGIN, height - 8, missing, size=10, anchor="end", fill=GREY))
    return result


def _legend(result: Scene, metric: str, words: dict[str, str], min_cell: int, top: float) -> None:
    """The scale's swatches, then suppressed, no comparison (differences only) and no data; wraps at the edge."""
    result.texts.append(Text(MARGIN, top + 10, words[metric], size=12, bold=True))
    bounds = (None, *BREAKS[metric], None)
    entries: list[tuple[Box, str]] = []
    for i, fill in enumerate(PALETTES[metric]):
        low, high = bounds[i], bounds[i + 1]
        if low is None:
            text = f"< {_format(high, metric)}"
        elif high is None:
            text = f"≥ {_format(low, metric)}"
        else:
            text = f"{_format(low, metric)} – {_format(high, metric)}"
        entries.append((Box(0, 0, 22, 16, fill), text))
    entries.append((Box(0, 0, 22, 16, SUPPRESSED, hatched=True), words["suppressed"].format(min_cell=min_cell)))
    if metric == "difference":
        entries.append((Box(0, 0, 22, 16, NO_COMPARISON), words["no_comparison"]))
    if any(area.fill == NO_DATA and not area.hatched for area in result.areas):  # published, but nothing to draw
        entries.append((Box(0, 0, 22, 16, NO_DATA), words["no_data"]))
    x, y = MARGIN, top + 18
    for box, text in entries:
        if x > MARGIN and x + _advance(text) - 16 > WIDTH - MARGIN:
            x, y = MARGIN, y + LEGEND_ROW
        box.x, box.y = x, y
        result.boxes.append(box)
        result.texts.append(Text(x + 28, y + 13, text, size=11))
        x += _advance(text)


def _advance(label: str) -> float:
    """Room for a legend entry: the swatch, the label (about 6.6 px a character at 11 px) and a gap."""
    return 28 + len(label) * 6.6 + 16


# -- SVG ----------------------------------------------------------------------------------------------------


def to_svg(drawing: Scene) -> str:
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{drawing.width}" height="{drawing.height}" '
        f'viewBox="0 0 {drawing.width} {drawing.height}" role="img" aria-label={quoteattr(drawing.title)} '
        'font-family="DejaVu Sans, Arial, sans-serif">',
        f"<title>{escape(drawing.title)}</title>",
        '<defs><pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" '
        'patternTransform="rotate(45)"><rect width="6" height="6" fill="#f4f4f4"/>'
        f'<line x1="0" y1="0" x2="0" y2="6" stroke="{HATCH}" stroke-width="2"/></pattern></defs>',
        f'<rect width="{drawing.width}" height="{drawing.height}" fill="#ffffff"/>',
    ]
    for area in drawing.areas:
        path = " ".join(
            "M" + " L".join(f"{x:.1f},{y:.1f}" for x, y in ring) + " Z" for ring in area.rings
        )
        fill = "url(#hatch)" if area.hatched else area.fill
        out.append(
            f'<g class="region" data-code={quoteattr(area.code)}><title>{escape(area.tooltip)}</title>'
            f'<path d="{path}" fill="{fill}" fill-rule="evenodd" stroke="{OUTLINE}" stroke-width="1"/>'
        )
        if area.label and area.label_at:
            x, y = area.label_at
            ink = _ink(area.fill if not area.hatched else SUPPRESSED)
            lines = area.label
            start = y - (len(lines) - 1) * area.label_size * 0.6
            for i, line in enumerate(lines):
                weight = ' font-weight="bold"' if i == 0 else ""
                out.append(
                    f'<text x="{x:.1f}" y="{start + i * area.label_size * 1.2 + area.label_size * 0.35:.1f}" '
                    f'font-size="{area.label_size:.1f}" text-anchor="middle" fill="{ink}"{weight} '
                    f'pointer-events="none">{escape(line)}</text>'
                )
        out.append("</g>")
    for box in drawing.boxes:
        fill = "url(#hatch)" if box.hatched else box.fill
        out.append(f'<rect x="{box.x:.1f}" y="{box.y:.1f}" width="{box.width}" height="{box.height}" '
                   f'fill="{fill}" stroke="{box.stroke}"/>')
    for text in drawing.texts:
        weight = ' font-weight="bold"' if text.bold else ""
        out.append(f'<text x="{text.x:.1f}" y="{text.y:.1f}" font-size="{text.size}" fill="{text.fill}" '
                   f'text-anchor="{text.anchor}"{weight}>{escape(text.text)}</text>')
    out.append("</svg>")
    return "\n".join(out)


def _ink(fill: str) -> str:
    """Black or white text, whichever reads better on `fill`."""
    r, g, b = (int(fill[i : i + 2], 16) for i in (1, 3, 5))
    return INK if 0.299 * r + 0.587 * g + 0.114 * b > 140 else "#ffffff"


# -- PNG ----------------------------------------------------------------------------------------------------


def to_png(drawing: Scene, scale: float = 1.0) -> bytes:
    """The same scene painted with Pillow (no system libraries)."""
    from PIL import Image, ImageDraw

    size = (round(drawing.width * scale), round(drawing.height * scale))
    image = Image.new("RGB", size, "#ffffff")
    draw = ImageDraw.Draw(image)
    hatch = _hatch_tile(size)
    for area in drawing.areas:
        rings = [[(x * scale, y * scale) for x, y in ring] for ring in area.rings]
        if area.hatched:
            mask = Image.new("L", size, 0)
            mask_draw = ImageDraw.Draw(mask)
            for ring in rings:
                mask_draw.polygon(ring, fill=255)
            image.paste(hatch, (0, 0), mask)
        else:
            for ring in rings:
                draw.polygon(ring, fill=area.fill)
        for ring in rings:
            draw.line(ring, fill=OUTLINE, width=max(1, round(scale)))
        if area.label and area.label_at:
            x, y = area.label_at
            ink = _ink(area.fill if not area.hatched else SUPPRESSED)
            font_size = area.label_size * scale
            start = (y - (len(area.label) - 1) * area.label_size * 0.6) * scale
            for i, line in enumerate(area.label):
                draw.text((x * scale, start + i * font_size * 1.2), line, fill=ink, font=_font(font_size, i == 0),
                          anchor="mm")
    for box in drawing.boxes:
        corners = [box.x * scale, box.y * scale, (box.x + box.width) * scale, (box.y + box.height) * scale]
        if box.hatched:
            region = hatch.crop(tuple(round(c) for c in corners))
            image.paste(region, (round(corners[0]), round(corners[1])))
            draw.rectangle(corners, outline=box.stroke)
        else:
            draw.rectangle(corners, fill=box.fill, outline=box.stroke)
    for text in drawing.texts:
        anchor = {"start": "ls", "middle": "ms", "end": "rs"}[text.anchor]
        draw.text((text.x * scale, text.y * scale), text.text, fill=text.fill,
                  font=_font(text.size * scale, text.bold), anchor=anchor)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _hatch_tile(size: tuple[int, int]):
    from PIL import Image, ImageDraw

    image = Image.new("RGB", size, SUPPRESSED)
    draw = ImageDraw.Draw(image)
    width, height = size
    for offset in range(-height, width, 7):
        draw.line([(offset, height), (offset + height, 0)], fill=HATCH, width=2)
    return image


_fonts: dict[tuple[int, bool], Any] = {}
# Debian's fonts-dejavu-core; without it, Pillow's own font (no accents)
FONT_FILES = {False: "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
              True: "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf"}


def _font(size: float, bold: bool = False):
    from PIL import ImageFont

    key = (max(6, round(size)), bold)
    if key not in _fonts:
        try:
            _fonts[key] = ImageFont.truetype(FONT_FILES[bold], key[0])
        except OSError:
            _fonts[key] = ImageFont.load_default(size=key[0])
    return _fonts[key]
