"""`retorno inbox failed|retry`: inbound messages the workers could not process, set aside with their reason."""

from __future__ import annotations

import json

import click
from sqlalchemy import func, select, update

from service.cli import main, open_runtime
from service.models import Contact, InboundMessage
from service.vocabulary import InboundStatus

FAILED = InboundStatus.FAILED


@main.group()
def inbox() -> None:
    """Inbound messages: the ones set aside because they could not be processed."""


@inbox.command("failed")
@click.option("--limit", default=50, show_default=True, type=click.IntRange(1, 100_000), help="List at most N.")
@click.option("--text", "with_text", is_flag=True, help="Also show what the respondent wrote.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of text.")
def failed(limit: int, with_text: bool, as_json: bool) -> None:
    """Messages set aside, oldest first, with the reason; never a phone number."""
    rt = open_runtime()
    with rt.sessions() as session:
        total = session.scalar(select(func.count()).where(InboundMessage.status == FAILED))
        rows = session.execute(
            select(InboundMessage.id, InboundMessage.channel, InboundMessage.received_at, InboundMessage.attempts,
                   InboundMessage.error, InboundMessage.body, Contact.public_id)
            .outerjoin(Contact, Contact.id == InboundMessage.contact_id)
            .where(InboundMessage.status == FAILED)
            .order_by(InboundMessage.id)
            .limit(limit)
        ).all()
    records = [
        {"id": row.id, "channel": row.channel, "received_at": row.received_at.isoformat(),
         "respondent_id": row.public_id, "attempts": row.attempts, "reason": row.error,
         **({"text": row.body} if with_text else {})}
        for row in rows
    ]
    if as_json:
        click.echo(json.dumps({"total": total, "messages": records}, ensure_ascii=False, indent=2))
        return
    if not total:
        click.echo("no message is set aside")
        return
    click.echo(f"{total} message{'s' if total != 1 else ''} set aside (`retorno inbox retry --all` processes them "
               "again, after what their senders wrote since):")
    for record in records:
        who = f"respondent {record['respondent_id']}" if record["respondent_id"] else "new sender"
        click.echo(f"  #{record['id']}  {record['received_at'][:19]}  {record['channel']}  {who}  "
                   f"attempts {record['attempts']}  {record['reason']}")
        if with_text:
            click.echo(f"      {record['text']!r}")
    if total > len(records):
        click.echo(f"  ... and {total - len(records)} more (--limit)")


@inbox.command("retry")
@click.argument("ids", nargs=-1, type=click.IntRange(1, 2**63 - 1))
@click.option("--all", "every", is_flag=True, help="Every message set aside.")
def retry(ids: tuple[int, ...], every: bool) -> None:
    """Process messages set aside again (e.g. after fixing the survey or upgrading Retorno)."""
    if bool(ids) == every:
        raise click.UsageError("give message ids or --all")
    from service.queue import INBOX

    rt = open_runtime()
    with rt.sessions() as session, session.begin():
        statement = update(InboundMessage).where(InboundMessage.status == FAILED)
        if ids:
            statement = statement.where(InboundMessage.id.in_(ids))
        again = session.scalars(statement.values(status=InboundStatus.PENDING).returning(InboundMessage.id)).all()
    rt.dispatcher.push(INBOX, sorted(again))
    click.echo(f"{len(again)} message{'s' if len(again) != 1 else ''} back in the inbox")
    skipped = sorted(set(ids) - set(again))
    if skipped:
        click.echo(f"not set aside, left as they are: {', '.join(map(str, skipped))}", err=True)
