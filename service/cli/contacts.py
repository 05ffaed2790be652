"""`retorno contacts import FILE.csv [--tag TAG]`: staff's lists of people to invite."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from service.cli import _runtime, _settings, main

if TYPE_CHECKING:
    from service.contacts import Report


@main.group()
def contacts() -> None:
    """Contacts: import lists of people to invite."""


@contacts.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--tag", "tags", multiple=True, help="Add this tag to every contact in the file (repeatable).")
@click.option("--dry-run", is_flag=True, help="Check the file and report, without storing anything.")
def import_contacts(file: Path, tags: tuple[str, ...], dry_run: bool) -> None:
    """Import contacts from a CSV: phone or telegram_chat_id, and optionally language, tags, timezone, channel.

    Numbers are normalized (RETORNO_DEFAULT_REGION for numbers without +country), rows of the same person are
    merged, and contacts who opted out stay opted out. Bad rows are listed with their line numbers (exit 1);
    the others are imported, so fix those lines and import the file again.
    """
    from service.campaigns import CampaignError
    from service.contacts import Report, UnreadableFile, count_rows, load, open_text, read
    from service.db import upgrade

    settings = _settings()
    upgrade(settings.database_url)
    rt = _runtime(settings)
    report = Report()
    try:
        with open_text(file) as handle, click.progressbar(
            length=count_rows(file), label=f"Reading {file.name}", file=sys.stderr
        ) as bar:
            load(rt, read(handle, settings.default_region, tags, report), report, progress=bar.update,
                 dry_run=dry_run)
    except (UnreadableFile, CampaignError) as error:
        raise click.ClickException(f"{file}: {error}") from None
    except (OSError, UnicodeError, ValueError) as error:
        raise click.ClickException(f"{file}: cannot read it as CSV ({error})") from None
    _summary(file, report, dry_run)
    sys.exit(1 if report.problems else 0)


def _summary(file: Path, report: Report, dry_run: bool) -> None:
    verb = "would import" if dry_run else "imported"
    click.echo(f"{file.name}: {report.rows:,} rows, {verb} {report.rows - len(report.problems):,}")
    if not dry_run:
        click.echo(f"  {report.created:,} new contacts, {report.updated:,} already known (tags added)")
    if report.merged:
        click.echo(f"  {report.merged:,} rows were the same person as an earlier row and were merged")
    if report.kept_opted_out:
        click.echo(f"  {report.kept_opted_out:,} opted out earlier and stay opted out (no messages)")
    if report.ignored_columns:
        click.echo(f"  ignored columns (not stored): {', '.join(report.ignored_columns)}")
    if report.problems:
        click.echo(f"  {len(report.problems):,} rows not imported:")
        for line, problem in report.problems:
            click.echo(f"    line {line}: {problem}")
