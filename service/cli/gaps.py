"""`retorno gaps`: published gap figures and maps from the command line."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from service.cli import _runtime, _settings, main
from service.gaps.exports import FORMATS
from service.gaps.views import METRICS


@main.command()
@click.option("--survey", "survey_id", required=True, help="Survey id, e.g. reintegracion-mx.")
@click.option("--format", "output_format", type=click.Choice(FORMATS), default="json", show_default=True)
@click.option("--dimension", default=None, help="A map of one dimension (economic, social, psychosocial).")
@click.option("--indicator", default=None, help="A map of one indicator (a question id).")
@click.option("--group", "grouping", default=None, help="Break down by a group question, e.g. returned.")
@click.option("--metric", type=click.Choice(METRICS), default=None,
              help="What maps show: gap_rate (indicator, dimension), index (overall) or difference "
                   "(returnees minus community).")
@click.option("--wave", type=int, default=None, help="One wave only (default: all).")
@click.option("--geojson", type=click.Path(path_type=Path), default=None,
              help="Your own regions as GeoJSON, for a true choropleth (default: the tile grid).")
@click.option("--code-property", default=None, help="The GeoJSON property holding the region code.")
@click.option("--language", type=click.Choice(["es", "en"]), default=None, help="Map labels (default: the survey's).")
@click.option("--refresh", is_flag=True,
              help="Release now instead of serving the latest release (a cell still changes only once min_cell "
                   "more people answered).")
@click.option("--output", "-o", type=click.Path(path_type=Path), default=None, help="Write to FILE (default: stdout).")
def gaps(survey_id: str, output_format: str, dimension: str | None, indicator: str | None, grouping: str | None,
         metric: str | None, wave: int | None, geojson: Path | None, code_property: str | None,
         language: str | None, refresh: bool, output: Path | None) -> None:
    """Published gap figures (after disclosure control) as JSON, CSV, GeoJSON, or an SVG/PNG map."""
    from service.catalog import UnknownSurvey
    from service.db import upgrade
    from service.gaps import snapshot, views
    from service.gaps.exports import geography_for, render
    from service.gaps.geography import GeographyError

    if output_format == "png" and output is None and sys.stdout.isatty():
        raise click.ClickException("a PNG is binary: write it to a file with --output map.png")
    settings = _settings(existing=True)
    upgrade(settings.database_url)
    rt = _runtime(settings)
    try:
        definition = rt.catalog.current(survey_id)
    except UnknownSurvey:
        known = ", ".join(d.id for d in rt.catalog.all_current()) or "none"
        raise click.ClickException(f"no survey {survey_id!r}; surveys: {known}") from None
    steps = ["figures", "geography", "output"]
    try:
        with click.progressbar(steps, label="gap figures", file=sys.stderr,
                               item_show_func=lambda step: step or "") as progress:
            for step in progress:
                if step == "figures":
                    selection = views.select(definition, grouping, dimension, indicator, metric)
                    found = snapshot.current(rt, definition, wave, refresh=refresh)
                elif step == "geography":
                    geography = (geography_for(definition, geojson, code_property)
                                 if output_format in ("geojson", "svg", "png") else None)
                else:
                    result = render(found.payload, definition, selection, output_format, geography, language)
    except (views.SelectionError, GeographyError) as error:
        raise click.ClickException(str(error)) from None
    finally:
        rt.engine.dispose()
    if geography is not None and geography.missing:
        click.echo(f"warning: regions without a shape on the map: {', '.join(geography.missing)}", err=True)
    body = result.body.encode("utf-8") if isinstance(result.body, str) else result.body
    if output is None:
        sys.stdout.buffer.write(body)
        sys.stdout.buffer.flush()
        return
    output.write_bytes(body)
    generated = found.payload["generated_at"][:19].replace("T", " ")
    click.echo(f"wrote {output} ({len(body):,} bytes; figures computed {generated} UTC)", err=True)
