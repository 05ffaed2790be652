"""`retorno spool ...`: the webhooks this machine kept on disk while the database was down."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import click

from service.cli import _runtime, _settings, main


@main.group()
def spool() -> None:
    """This machine's spool of webhooks kept while the database could not take them."""


def _spool(directory: Path | None):
    from service import spool as spools

    settings = _settings(existing=True)
    if directory is not None:
        settings = replace(settings, spool_dir=directory.resolve())
    return spools.Spool(_runtime(settings))


@spool.command()
@click.option("--dir", "directory", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Another spool folder (default: RETORNO_SPOOL_DIR, or spool/ in the data folder).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def status(directory: Path | None, as_json: bool) -> None:
    """Files and bytes waiting for the database, the oldest record's age, records set aside."""
    kept = _spool(directory)
    kept.purge_rejected()
    stats = kept.stats()
    if as_json:
        click.echo(json.dumps({"folder": str(kept.directory), **stats}))
        return
    click.echo(f"{kept.directory}: {stats['files']} files, {stats['bytes']} bytes waiting for the database"
               + (f", the oldest record {stats['oldest_seconds']:.0f} s old" if stats["files"] else ""))
    if stats["rejected_files"]:
        days = stats["rejected_oldest_seconds"] / 86400
        click.echo(f"{stats['rejected_records']} records the database refused, in {stats['rejected_files']} files in "
                   f"{kept.rejected_folder} (the oldest {days:.1f} days old; each is deleted "
                   f"{stats['rejected_purged_after_days']:g} days after it was set aside, RETORNO_RETENTION_DAYS)")
    else:
        click.echo("no records set aside (the database took every spooled record)")


@spool.command()
@click.option("--dir", "directory", type=click.Path(path_type=Path, file_okay=False, exists=True), default=None,
              help="A spool folder from another machine (default: this machine's).")
def replay(directory: Path | None) -> None:
    """Move spooled webhooks into the database now (web processes do it on their own once it answers)."""
    kept = _spool(directory)
    kept.probe()  # a database that cannot be reached is one line (service.cli._Commands)
    files = kept.segments()
    moved = kept.replay_all()  # every file at once, merged in arrival order across the processes that wrote them
    left = kept.segments()
    click.echo(f"{moved} records moved into the database from {len(files) - len(left)} files")
    if left:
        click.echo(f"{len(left)} files are held by a running web process, which replays them itself")
    if kept.rejected:
        click.echo(f"{kept.rejected} records the database refused are kept in {kept.directory / 'rejected'}")
