"""`retorno contacts import FILE.csv [--tag TAG]` and `retorno contacts list`: staff's lists of people to invite."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from service.cli import _runtime, _settings, main, plural

if TYPE_CHECKING:
    from service.contacts import Report


@main.group()
def contacts() -> None:
    """Contacts: import lists of people to invite."""


@contacts.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--tag", "tags", multiple=True, help="Add this tag to every contact in the file (repeatable).")
@click.option("--dry-run", is_flag=True, help="Check the file and report, without storing anything.")
@click.option("--survey", "survey_id", default=None,
              help="Warn about numbers this survey's credit cannot top up (default: RETORNO_DEFAULT_SURVEY).")
def import_contacts(file: Path, tags: tuple[str, ...], dry_run: bool, survey_id: str | None) -> None:
    """Import contacts from a CSV: phone or telegram_chat_id, and optionally language, tags, timezone, channel,
    opt_in (WhatsApp consent: "2026-01-15 formulario de registro", or sí) and opt_in_source.

    Spanish column names work too: teléfono or celular, idioma, etiquetas, zona_horaria, canal, consentimiento,
    origen_consentimiento. Numbers are
    normalized (RETORNO_DEFAULT_REGION for numbers without +country), rows of the same person are merged, and
    contacts who opted out stay opted out. Bad rows are listed with their line numbers (exit 1); the others are
    imported, so fix those lines and import the file again.
    """
    from service.campaigns import CampaignError
    from service.contacts import Report, UnreadableFile, count_rows, merge, open_text, read, store
    from service.db import upgrade

    settings = _settings()
    upgrade(settings.database_url)
    rt = _runtime(settings)
    payout = _payout(rt, survey_id or settings.default_survey, explicit=survey_id is not None)
    report = Report()
    try:
        with open_text(file) as handle, click.progressbar(
            length=count_rows(file), label=f"Reading {file.name}", file=sys.stderr
        ) as bar:
            people = merge(rt, read(handle, settings.default_region, tags, report, payout), report, bar.update)
        if not dry_run and people:
            with click.progressbar(length=len(people), label="Saving contacts", file=sys.stderr) as bar:
                store(rt, people, report, bar.update)
    except (UnreadableFile, CampaignError) as error:
        raise click.ClickException(f"{file}: {error}") from None
    except (OSError, UnicodeError, ValueError) as error:
        raise click.ClickException(f"{file}: cannot read it as CSV ({error})") from None
    _summary(file, report, dry_run)
    sys.exit(1 if report.problems else 0)


def _payout(rt, survey_id: str, explicit: bool):
    """The survey credit that imported numbers are checked against (None: the survey pays nothing)."""
    from service.catalog import UnknownSurvey
    from service.contacts import Payout

    try:
        definition = rt.catalog.current(survey_id)
    except UnknownSurvey:
        if not explicit:
            return None
        known = ", ".join(d.id for d in rt.catalog.all_current()) or "none"
        raise click.ClickException(f"there is no survey {survey_id!r} (known: {known})") from None
    incentive = definition.incentive
    return Payout(definition.id, incentive.currency) if incentive else None


def _summary(file: Path, report: Report, dry_run: bool) -> None:
    from service.contacts import header_key

    verb = "would import" if dry_run else "imported"
    click.echo(f"{file.name}: {plural(report.rows, 'row')}, {verb} {report.rows - len(report.problems):,}")
    renamed = [f"{', else '.join(names)} as {column}" for column, names in report.columns.items()
               if [header_key(name) for name in names] != [column]]
    if renamed:
        click.echo(f"  columns read: {'; '.join(renamed)}")
    if not dry_run:
        click.echo(f"  {plural(report.created, 'new contact')}, {report.updated:,} already known (tags added)")
    if report.merged:
        was = "row was" if report.merged == 1 else "rows were"
        click.echo(f"  {report.merged:,} {was} the same person as an earlier row and merged")
    if report.opt_ins:
        click.echo(f"  {plural(report.opt_ins, 'person', 'people')} with an opt-in to WhatsApp messages")
    if report.kept_opted_out:
        stays = "stays" if report.kept_opted_out == 1 else "stay"
        click.echo(f"  {report.kept_opted_out:,} opted out earlier and {stays} opted out (no messages)")
    if report.skipped_erased:
        click.echo(f"  {report.skipped_erased:,} skipped: erased (they asked for their data to be deleted; "
                   "they are not stored or invited again)")
    if report.ignored_columns:
        click.echo(f"  ignored columns (not stored): {', '.join(report.ignored_columns)}")
    if report.warnings:
        click.echo(f"  {plural(len(report.warnings), 'row')} imported with a warning:")
        for line, warning in report.warnings:
            click.echo(f"    line {line}: {warning}")
    if report.problems:
        click.echo(f"  {plural(len(report.problems), 'row')} not imported:")
        for line, problem in report.problems:
            click.echo(f"    line {line}: {problem}")



@contacts.command("list")
@click.option("--json", "as_json", is_flag=True, help="The same counts as JSON.")
def list_contacts(as_json: bool) -> None:
    """How many contacts there are, by tag, channel and language, and how many opted out (never a number)."""
    import json
    from dataclasses import asdict

    from service.contacts import tally
    from service.db import upgrade

    settings = _settings(existing=True)
    upgrade(settings.database_url)
    counts = tally(_runtime(settings))
    if as_json:
        click.echo(json.dumps({**asdict(counts), "invitable": counts.invitable}, ensure_ascii=False, indent=2))
        return
    if not counts.total:
        click.echo("no contacts yet: retorno contacts import FILE.csv --tag TAG")
        return
    click.echo(f"{plural(counts.total, 'contact')}: {counts.invitable:,} can be invited, "
               f"{counts.opted_out:,} opted out, {counts.unreachable:,} unreachable")
    click.echo("  by channel:  " + ", ".join(f"{name} {n:,}" for name, n in counts.channels.items()))
    click.echo("  by language: " + ", ".join(f"{name} {n:,}" for name, n in counts.languages.items()))
    if not counts.tags:
        click.echo("  no tags yet (retorno contacts import FILE.csv --tag TAG)")
        return
    width = max(len("tag"), *(len(tag) for tag in counts.tags))
    click.echo(f"  {'tag':<{width}}  {'contacts':>9}  {'can be invited':>14}  {'opted out':>9}")
    for tag, row in counts.tags.items():
        click.echo(f"  {tag:<{width}}  {row['contacts']:>9,}  {row['invitable']:>14,}  {row['opted_out']:>9,}")
