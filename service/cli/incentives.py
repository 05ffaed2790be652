"""`retorno incentives ...`: what is owed, what was paid, what failed; export, mark paid, reconcile, retry."""

from __future__ import annotations

import csv
import json
import os
import sys
from pathlib import Path

import click
from sqlalchemy import func, select

from service import audit
from service.cli import main, open_runtime, plural
from service.incentives import EXPORT_COLUMNS, FAILED, PENDING, STATUSES, amount, ledger, payments
from service.models import Contact, Incentive, IncentiveBudget
from service.queue import OUTBOX
from service.spreadsheet import inert_row


@main.group()
def incentives() -> None:
    """Airtime credits earned by completed surveys."""


@incentives.command()
@click.option("--survey", "survey_id", help="Only this survey.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def status(survey_id: str | None, as_json: bool) -> None:
    """Budget, counts by status, and the failures left for staff."""
    rt = open_runtime()
    with rt.sessions() as session:
        budgets = session.scalars(
            select(IncentiveBudget).where(*([IncentiveBudget.survey_id == survey_id] if survey_id else []))
            .order_by(IncentiveBudget.survey_id, IncentiveBudget.wave)
        ).all()
        counts = session.execute(
            select(Incentive.survey_id, Incentive.wave, Incentive.status, func.count(),
                   func.sum(Incentive.amount_cents))
            .where(*([Incentive.survey_id == survey_id] if survey_id else []))
            .group_by(Incentive.survey_id, Incentive.wave, Incentive.status)
        ).all()
        failed = session.execute(
            select(Incentive, Contact.public_id)
            .join(Contact, Contact.id == Incentive.contact_id)
            .where(Incentive.status == FAILED, *([Incentive.survey_id == survey_id] if survey_id else []))
            .order_by(Incentive.id)
        ).all()
    waves: dict[tuple[str, int], dict] = {}
    for row in budgets:
        waves[(row.survey_id, row.wave)] = {
            "survey_id": row.survey_id, "wave": row.wave, "currency": row.currency,
            "budget": amount(row.budget_cents) if row.budget_cents is not None else None,
            "committed": amount(row.committed_cents), "statuses": {},
        }
    for survey, wave, state, count, total in counts:
        entry = waves.setdefault((survey, wave), {"survey_id": survey, "wave": wave, "currency": None,
                                                  "budget": None, "committed": None, "statuses": {}})
        entry["statuses"][state] = {"count": count, "amount": amount(total or 0)}
    problems = [
        {"incentive_id": record.id, "respondent_id": public_id, "survey_id": record.survey_id, "wave": record.wave,
         "attempts": record.attempts, "retrying": record.next_attempt_at is not None, "error": record.error}
        for record, public_id in failed
    ]
    if as_json:
        click.echo(json.dumps({"provider": rt.settings.incentive_provider, "waves": list(waves.values()),
                               "failed": problems}, ensure_ascii=False, indent=2))
        return
    click.echo(f"provider: {rt.settings.incentive_provider}")
    if not waves:
        click.echo("no incentives yet")
    for entry in waves.values():
        budget = "no limit" if entry["budget"] is None else f"{entry['budget']:g}"
        committed = "?" if entry["committed"] is None else f"{entry['committed']:g}"
        click.echo(f"{entry['survey_id']} wave {entry['wave']}: {committed} of {budget} {entry['currency'] or ''} "
                   "promised (held at consent + earned)")
        for state in STATUSES:
            if state in entry["statuses"]:
                found = entry["statuses"][state]
                click.echo(f"  {state:<15} {found['count']:>6}  {found['amount']:g}")
    if problems:
        click.echo(f"failed ({len(problems)}; `retorno incentives retry` tries again):")
        for problem in problems:
            when = "will retry" if problem["retrying"] else "left for staff"
            click.echo(f"  #{problem['incentive_id']} {problem['respondent_id']} attempts={problem['attempts']} "
                       f"{when}: {problem['error']}")


@incentives.command()
@click.option("--survey", "survey_id", help="Only this survey.")
@click.option("--wave", type=int, help="Only this wave.")
@click.option("--status", "statuses", multiple=True, type=click.Choice(STATUSES),
              help="Statuses to export (repeatable); default: what staff must pay by hand (with the ledger "
                   "provider pending and failed records; with Reloadly the failed ones it will not retry).")
@click.option("--output", "-o", type=click.Path(dir_okay=False, path_type=Path), help="A CSV file (default: stdout).")
def export(survey_id: str | None, wave: int | None, statuses: tuple[str, ...], output: Path | None) -> None:
    """What is owed, as CSV with phone numbers, for paying by hand (keep the file safe, delete it after)."""
    rt = open_runtime()
    automatic = rt.settings.incentive_provider != "ledger"
    wanted = statuses or ((FAILED,) if automatic else (PENDING, FAILED))
    query = (
        select(Incentive, Contact.public_id)
        .join(Contact, Contact.id == Incentive.contact_id)
        .where(Incentive.status.in_(wanted))
        .order_by(Incentive.id)
    )
    if automatic and not statuses:
        query = query.where(Incentive.next_attempt_at.is_(None))
    if survey_id:
        query = query.where(Incentive.survey_id == survey_id)
    if wave is not None:
        query = query.where(Incentive.wave == wave)
    with rt.sessions() as session, session.begin():
        rows = session.execute(query).all()
        audit.add(session, rt.now(), audit.cli_actor(), "incentives.exported", survey_id,
                  wave=wave, statuses=list(wanted), records=len(rows), with_numbers=True)
    handle = _private_file(output) if output else sys.stdout
    try:
        writer = csv.writer(handle)
        writer.writerow(EXPORT_COLUMNS)
        with click.progressbar(rows, label="exporting", file=sys.stderr if output else None,
                               hidden=output is None) as bar:
            for record, public_id in bar:
                writer.writerow(inert_row([
                    record.id, record.idempotency_key, public_id, record.survey_id, record.wave,
                    rt.vault.decrypt(record.phone_enc) if record.phone_enc else "", f"{amount(record.amount_cents):g}",
                    record.currency, record.status, record.attempts, record.error or "", record.created_at.isoformat(),
                ]))
    finally:
        if output:
            handle.close()
    total = sum(record.amount_cents for record, _ in rows)
    click.echo(f"exported {plural(len(rows), 'incentive')} ({amount(total):g} in total)"
               f"{' to ' + str(output) if output else ''}", err=True)


def _private_file(path: Path):
    """The export file, readable by its owner only: it holds phone numbers."""
    return open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w", newline="", encoding="utf-8")


@incentives.command("mark-paid")
@click.argument("csv_file", required=False, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--id", "ids", multiple=True, type=int, help="An incentive id (repeatable), instead of a file.")
@click.option("--reference", help="The payment reference (e.g. the recharge receipt) stored with every record.")
def mark_paid(csv_file: Path | None, ids: tuple[int, ...], reference: str | None) -> None:
    """Mark records paid by hand: the CSV from `export` (column incentive_id; optional column reference)."""
    if bool(csv_file) == bool(ids):
        raise click.UsageError("give either a CSV file or --id")
    items = _items(csv_file) if csv_file else [(None, i, reference) for i in ids]
    rt = open_runtime()
    outcomes: dict[str, int] = {}
    problems: list[str] = []
    outbound: list[int] = []
    with click.progressbar(items, label="marking paid", hidden=len(items) < 50) as bar:
        for line, incentive_id, row_reference in bar:
            if incentive_id is None:
                problems.append(f"line {line}: incentive_id is missing or not a number")
                continue
            with rt.sessions() as session, session.begin():
                outcome = ledger.mark_paid(session, incentive_id, rt.now(), row_reference or reference)
                if outcome == "paid":
                    outbound.extend(payments.notify_paid(rt, session, incentive_id))
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
            if outcome not in ("paid", "already paid"):
                problems.append(f"{'line ' + str(line) if line else 'id ' + str(incentive_id)}: {outcome}")
    rt.dispatcher.push(OUTBOX, outbound)
    click.echo(", ".join(f"{count} {outcome}" for outcome, count in outcomes.items()) or "nothing to mark")
    for problem in problems:
        click.echo(problem, err=True)
    if problems:
        sys.exit(1)


def _items(path: Path) -> list[tuple[int, int | None, str | None]]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        if "incentive_id" not in (reader.fieldnames or []):
            raise click.ClickException(f"{path}: the first line must name an incentive_id column")
        items = []
        for row in reader:
            raw = (row.get("incentive_id") or "").strip()
            items.append((reader.line_num, int(raw) if raw.isdigit() else None, (row.get("reference") or "").strip()))
        return items


@incentives.command()
@click.option("--survey", "survey_id", help="Only this survey.")
@click.option("--all", "everything", is_flag=True,
              help="Ask the provider about every submitted record now, not only overdue ones (e.g. after a crash, "
                   "with no worker running).")
def reconcile(survey_id: str | None, everything: bool) -> None:
    """Settle records stuck in `submitted` by asking the provider about their reference, then issue due ones."""
    rt = open_runtime()
    if rt.settings.incentive_provider == "ledger":
        with rt.sessions() as session:
            owed = session.scalar(select(func.count()).where(Incentive.status.in_((PENDING, FAILED)))) or 0
        waits = "incentive waits" if owed == 1 else "incentives wait"
        click.echo(f"ledger provider: nothing is sent; {owed:,} {waits} to be paid by hand "
                   "(`retorno incentives export`, then `mark-paid`)")
        return
    counts = payments.reconcile(rt, everything=everything, survey_id=survey_id)
    click.echo(", ".join(f"{count} {what}" for what, count in counts.items() if count) or "nothing to reconcile")


@incentives.command()
@click.argument("ids", nargs=-1, type=int)
@click.option("--all-failed", is_flag=True, help="Every failed record (of --survey).")
@click.option("--survey", "survey_id", help="With --all-failed: only this survey.")
def retry(ids: tuple[int, ...], all_failed: bool, survey_id: str | None) -> None:
    """Try failed records again from their first attempt (e.g. after funding the provider account)."""
    if bool(ids) == all_failed:
        raise click.UsageError("give incentive ids or --all-failed")
    rt = open_runtime()
    with rt.sessions() as session, session.begin():
        if all_failed:
            query = select(Incentive.id).where(Incentive.status == FAILED)
            if survey_id:
                query = query.where(Incentive.survey_id == survey_id)
            ids = tuple(session.scalars(query).all())
        retried = [i for i in ids if ledger.retry(session, i, rt.now())]
    payments.wake(rt, retried)
    click.echo(f"{plural(len(retried), 'incentive')} will be tried again")
    skipped = sorted(set(ids) - set(retried))
    if skipped:
        click.echo(f"not failed, left as they are: {', '.join(map(str, skipped))}", err=True)

