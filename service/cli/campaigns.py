"""`retorno campaigns create|start|pause|status|list`: invitations to a survey wave, reminders, expiry."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from service.cli import main, open_runtime, plural


@main.group()
def campaigns() -> None:
    """Campaigns: invite the contacts with a tag to a survey wave, remind them, expire what is left."""


def _fail(error: Exception):
    raise click.ClickException(str(error)) from None


@campaigns.command("create")
@click.option("--survey", "survey_id", required=True, help="The survey to invite to (its id).")
@click.option("--tag", required=True, help="Invite the contacts with this tag.")
@click.option("--wave", default=1, show_default=True, type=int,
              help="Wave number: ask the same people again months later with --wave 2.")
@click.option("--rate", type=float, default=None,
              help="Messages per second (default: the sender's, RETORNO_SEND_RATE or 1/s for a Twilio number).")
@click.option("--quiet-hours", default="21:00-08:00", show_default=True,
              help="No messages between these local times (HH:MM-HH:MM), or 'none'.")
@click.option("--timezone", default="America/Mexico_City", show_default=True,
              help="Time zone of contacts without one of their own.")
@click.option("--remind-after", default="24h", show_default=True,
              help="Remind after this long without a reply (90m, 24h, 7d).")
@click.option("--max-reminders", default=1, show_default=True, type=int, help="At most this many reminders (0: none).")
@click.option("--expire-after", default="7d", show_default=True,
              help="A session not finished this long after its invitation is expired ('none': never).")
@click.option("--allow-empty", is_flag=True,
              help="Create it even though no contact has the tag yet (contacts tagged later join at start).")
@click.option("--channel", type=click.Choice(["sms", "whatsapp", "telegram", "voice"], case_sensitive=False),
              default=None, help="Only the tagged contacts on this channel (default: every channel).")
@click.option("--whatsapp-template", "invite_template", default=None, metavar="es=HX...,en=HX...",
              help="The approved WhatsApp template (Content SID) per language that invites people outside the "
                   "24-hour window; required when WhatsApp contacts are invited. Variables: {{1}} the survey's "
                   "title, {{2}} its credit.")
@click.option("--whatsapp-reminder-template", "reminder_template", default=None, metavar="es=HX...",
              help="The template for reminders outside the 24-hour window (default: the invitation's).")
@click.option("--whatsapp-credit-template", "credit_template", default=None, metavar="es=HX...",
              help="The template for the credit-sent notice outside the 24-hour window ({{2}}: the credit).")
@click.option("--fallback", type=click.Choice(["sms"], case_sensitive=False), default=None,
              help="A WhatsApp invitation WhatsApp does not deliver goes to the same number by SMS.")
@click.option("--without-opt-in", is_flag=True,
              help="Invite WhatsApp contacts even without a recorded opt-in (only when you have their consent "
                   "some other way; a STOP still withdraws it).")
def create(survey_id: str, tag: str, wave: int, rate: float | None, quiet_hours: str, timezone: str,
           remind_after: str, max_reminders: int, expire_after: str, allow_empty: bool, channel: str | None,
           invite_template: str | None, reminder_template: str | None, credit_template: str | None,
           fallback: str | None, without_opt_in: bool) -> None:
    """Create a campaign (not sending yet: see `campaigns start`); prints its id alone on the last line."""
    from service import campaigns as service
    from service.campaigns.timing import OFF, QuietHours, TimingError, parse_duration
    from service.whatsapp import TemplateError, parse_templates

    try:
        options = service.TEMPLATE_OPTIONS
        templates = {kind: parse_templates(spec, options[kind]) for kind, spec in
                     (("invite", invite_template), ("reminder", reminder_template), ("credit", credit_template))}
        plan = service.Plan(
            survey_id=survey_id, tag=service.normalize_tag(tag), wave=wave, rate=rate,
            quiet_hours=QuietHours.parse(quiet_hours), timezone=timezone.strip(),
            remind_after=parse_duration(remind_after) if max_reminders else None, max_reminders=max_reminders,
            expire_after=None if expire_after.strip().lower() in OFF else parse_duration(expire_after),
            channel=channel.lower() if channel else None, templates={k: v for k, v in templates.items() if v},
            fallback=fallback.lower() if fallback else None, opt_in_required=not without_opt_in,
        )
        rt = open_runtime()
        campaign = service.create(rt, plan, allow_empty=allow_empty)
    except (service.CampaignError, TimingError, TemplateError) as error:
        _fail(error)
    audience = service.audience_size(rt, campaign.tag, campaign.channel)
    on = f" on {campaign.channel}" if campaign.channel else ""
    click.echo(f"created campaign {campaign.id}: survey {campaign.survey_id} wave {campaign.wave} for the "
               f"{plural(audience, 'contact')}{on} tagged {campaign.tag}; start it with: retorno campaigns start "
               f"{campaign.id}", err=True)
    if audience == 0:
        click.echo(f"warning: no contact has the tag {campaign.tag!r} yet (retorno contacts import FILE --tag "
                   f"{campaign.tag})", err=True)
    click.echo(campaign.id)


@campaigns.command("start")
@click.argument("campaign_id", type=int)
def start(campaign_id: int) -> None:
    """Start (or resume) sending; contacts tagged since the last start are added."""
    from service import campaigns as service

    rt = open_runtime()
    try:
        started = service.start(rt, campaign_id)
    except service.UnknownCampaign:
        _fail(click.ClickException(f"there is no campaign {campaign_id}"))
    campaign = started.campaign
    click.echo(f"campaign {campaign_id} is running: {plural(started.audience, 'contact')} tagged {campaign.tag}"
               + (f" ({started.added:,} new)" if started.added != started.audience else ""))
    if started.skipped:
        why = {"opted_out": "opted out", "unreachable": "cannot be reached",
               "no_opt_in": "have no WhatsApp opt-in (import it, or --without-opt-in)",
               "opt_in_withdrawn": "withdrew their WhatsApp opt-in (STOP)",
               "no_template": "are on WhatsApp and the campaign has no template"}
        click.echo(f"  {started.skipped:,} will not be invited: "
                   + ", ".join(f"{n:,} {why.get(reason, reason)}" for reason, n in started.reasons.items()))
    for channel, how in service.senders(rt, campaign).items():
        click.echo(f"  {channel}: " + (how or "no sender is configured for this channel; its invitations wait"))
    if rt.settings.embedded_queue:
        click.echo("  messages go out from `retorno run` (or `retorno worker` with REDIS_URL) while it runs")


@campaigns.command("pause")
@click.argument("campaign_id", type=int)
def pause(campaign_id: int) -> None:
    """Stop sending (resume with `campaigns start`); sessions still expire."""
    from service import campaigns as service

    try:
        service.pause(open_runtime(), campaign_id)
    except service.UnknownCampaign:
        _fail(click.ClickException(f"there is no campaign {campaign_id}"))
    except service.CampaignError as error:
        _fail(error)
    click.echo(f"campaign {campaign_id} is paused")


@campaigns.command("status")
@click.argument("campaign_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="The same JSON as GET /api/v1/campaigns/ID.")
def status(campaign_id: int, as_json: bool) -> None:
    """The funnel: invited, delivered, started, consented, completed, opted out, expired; where people stop."""
    from service.campaigns import UnknownCampaign
    from service.campaigns.funnel import report

    try:
        data = report(open_runtime(), campaign_id)
    except UnknownCampaign:
        _fail(click.ClickException(f"there is no campaign {campaign_id}"))
    if as_json:
        click.echo(json.dumps(data, ensure_ascii=False, indent=2))
        return
    _print_status(data)


@campaigns.command("list")
def list_campaigns() -> None:
    """Every campaign with its status and how many were invited."""
    from service.campaigns import all_campaigns
    from service.campaigns.funnel import invited_counts

    rt = open_runtime()
    rows = all_campaigns(rt)
    if not rows:
        click.echo("no campaigns yet: retorno campaigns create --survey ID --tag TAG")
        return
    counts = invited_counts(rt)
    for c in rows:
        invited, audience = counts.get(c.id, (0, 0))
        click.echo(f"{c.id:>4}  {c.status:<9} {c.survey_id} wave {c.wave}, tag {c.tag}: "
                   f"{invited:,} invited of {plural(audience, 'contact')}")


def _print_status(data: dict[str, Any]) -> None:
    counts, settings = data["counts"], data["settings"]
    click.echo(f"Campaign {data['id']}: {data['survey_id']} wave {data['wave']}, tag {data['tag']} "
               f"- {data['status']}")
    rules = [f"quiet hours {settings['quiet_hours']} ({settings['timezone']})" if settings["quiet_hours"]
             else "no quiet hours"]
    if settings["max_reminders"]:
        rules.append(f"remind after {settings['remind_after']} (at most {settings['max_reminders']})")
    if settings["expire_after"]:
        rules.append(f"expire after {settings['expire_after']}")
    if settings.get("channel"):
        rules.append(f"only {settings['channel']}")
    if settings.get("whatsapp_templates"):
        rules.append("WhatsApp templates for " + ", ".join(settings["whatsapp_templates"])
                     + (", SMS when WhatsApp does not deliver" if settings.get("fallback") else ""))
    click.echo("  " + ", ".join(rules))
    for channel, how in data["senders"].items():
        click.echo(f"  {channel}: {how or 'no sender configured'}")
    invited = counts["invited"]
    lines = [("audience", data["audience"], None), ("waiting to send", data["pending"], None),
             ("invited", invited, None)]
    lines += [(name.replace("_", " "), counts[name], invited) for name in
              ("delivered", "started", "consented", "completed", "opted_out", "expired", "ineligible")]
    lines.append(("reminders sent", data["reminders_sent"], None))
    width = max(len(name) for name, _, _ in lines)
    for name, value, of in lines:
        share = f"  {100 * value / of:5.1f}%" if of else ""
        click.echo(f"  {name:<{width}}  {value:>8,}{share}")
    if data["not_invited"]:
        click.echo("  not invited: " + ", ".join(f"{n:,} {why.replace('_', ' ')}"
                                                  for why, n in data["not_invited"].items()))
    fallback = data.get("fallback_sms") or {}
    if any(fallback.values()):
        click.echo(f"  by SMS instead of WhatsApp: {fallback['invited']:,} invited, {fallback['pending']:,} waiting, "
                   f"{fallback['not_invited']:,} not invited")
    if data.get("errors"):
        click.echo("Errors from the provider (code, how many, meaning: what Retorno did):")
        for row in data["errors"]:
            outcomes = ", ".join(f"{n:,} {outcome}" for outcome, n in row["outcomes"].items())
            click.echo(f"  {row['code']:>6} {row['count']:>7,}  {row['meaning']}: {outcomes}")
    if data["drop_off"]:
        click.echo("Where unfinished respondents are (waiting / expired / opted out):")
        width = max(len(row["question"]) for row in data["drop_off"])
        for row in data["drop_off"]:
            click.echo(f"  {row['question']:<{width}}  {row['waiting']:>7,} {row['expired']:>7,} "
                       f"{row['opted_out']:>7,}")
    sys.stdout.flush()
