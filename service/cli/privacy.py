"""Privacy commands: `contacts erase|show` (people's rights), `audit`, `tokens list|revoke`, `keys rotate`."""

from __future__ import annotations

import json
import sys

import click

from service.cli import _runtime, _settings, main, tokens
from service.cli.contacts import contacts


def _open_runtime():
    settings = _settings(existing=True)
    from service.db import upgrade

    upgrade(settings.database_url)
    return _runtime(settings)


def _who(phone: str | None, telegram_chat: str | None, respondent: str | None) -> None:
    if sum(bool(x) for x in (phone, telegram_chat, respondent)) != 1:
        raise click.UsageError("say who with exactly one of --phone, --telegram-chat, --respondent")


@contacts.command("erase")
@click.option("--phone", help="Their phone number (any form: +52 55 1234 5678, 5512345678...).")
@click.option("--telegram-chat", "telegram_chat", help="Their Telegram chat id.")
@click.option("--respondent", help="Their respondent id (as in exports).")
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def erase(phone: str | None, telegram_chat: str | None, respondent: str | None, yes: bool) -> None:
    """Erase everything about a person (a request to delete their data): contacts, sessions, answers, messages,
    campaign entries, incentive numbers. A paid amount stays as an anonymous ledger line; an opt-out marker
    (a keyed hash, no number) keeps campaigns from reaching them again. Gap maps are recomputed."""
    _who(phone, telegram_chat, respondent)
    from service import audit
    from service.rights import NobodyFound, erase, find

    rt = _open_runtime()
    try:
        with rt.sessions() as session:
            found = find(rt, session, phone, telegram_chat, respondent)
    except NobodyFound as error:
        raise click.ClickException(str(error)) from None
    if not found:
        click.echo("nobody matches: nothing was erased", err=True)
        sys.exit(1)
    described = ", ".join(f"{c.public_id} ({c.channel})" for c in found)
    if not yes:
        click.confirm(f"Erase everything about {described}? This cannot be undone", abort=True, err=True)
    erased = erase(rt, found, audit.cli_actor(), "cli")
    click.echo(f"erased {described}: {erased.records} records")


@contacts.command("show")
@click.option("--phone", help="Their phone number.")
@click.option("--telegram-chat", "telegram_chat", help="Their Telegram chat id.")
@click.option("--respondent", help="Their respondent id.")
def show(phone: str | None, telegram_chat: str | None, respondent: str | None) -> None:
    """Everything stored about a person, as JSON (to answer an access request)."""
    _who(phone, telegram_chat, respondent)
    from service import audit
    from service.rights import NobodyFound, find
    from service.rights import show as everything

    rt = _open_runtime()
    try:
        with rt.sessions() as session:
            found = find(rt, session, phone, telegram_chat, respondent)
    except NobodyFound as error:
        raise click.ClickException(str(error)) from None
    if not found:
        click.echo("nobody matches: nothing is stored about that person", err=True)
        sys.exit(1)
    click.echo(json.dumps(everything(rt, found, audit.cli_actor()), ensure_ascii=False, indent=2))


@main.command("audit")
@click.option("--since", default=None, metavar="DATE", help="Only entries from then on (2026-03-01 or ISO time).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def audit_log(since: str | None, as_json: bool) -> None:
    """The audit log, newest last: who exported, erased, logged in, created or revoked tokens..."""
    from service import audit

    try:
        moment = audit.moment(since) if since else None
    except ValueError:
        raise click.BadParameter("write a date like 2026-03-01 or a time like 2026-03-01T10:00",
                                 param_hint="--since") from None
    entries = audit.entries(_open_runtime(), moment)
    if as_json:
        click.echo(json.dumps(entries, ensure_ascii=False, indent=2))
        return
    if not entries:
        click.echo("the audit log is empty" + (f" since {since}" if since else ""))
        return
    for entry in entries:
        detail = " ".join(f"{k}={v}" for k, v in entry["detail"].items() if v not in (None, "", [], {}))
        click.echo(f"{entry['at'][:19].replace('T', ' ')}  {entry['actor']:<20} {entry['action']:<20} "
                   f"{entry['target'] or '-'}  {detail}".rstrip())


@tokens.command("list")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def tokens_list(as_json: bool) -> None:
    """Every token: id, name, role, state (active, expired, revoked), last use, expiry. Never the token."""
    from service.auth import list_tokens

    listed = list_tokens(_open_runtime())
    if as_json:
        click.echo(json.dumps(listed, indent=2))
        return
    if not listed:
        click.echo("no tokens yet: retorno tokens create --role staff --name NAME")
        return
    click.echo(f"{'id':>4}  {'name':<24} {'role':<8} {'state':<8} {'last used':<16} expires")
    for token in listed:
        used = (token["last_used_at"] or "never")[:16].replace("T", " ")
        expires = (token["expires_at"] or "never")[:16].replace("T", " ")
        click.echo(f"{token['id']:>4}  {token['name'] or '-':<24} {token['role']:<8} {token['state']:<8} "
                   f"{used:<16} {expires}")


@tokens.command("revoke")
@click.argument("which", metavar="NAME|ID")
def tokens_revoke(which: str) -> None:
    """Revoke a token by id or name: it gets 401 at once, and its dashboard sessions end."""
    from service.auth import TokenError, revoke_token

    try:
        ids = revoke_token(_open_runtime(), which)
    except TokenError as error:
        raise click.ClickException(str(error)) from None
    click.echo(f"revoked token {', '.join(f'#{i}' for i in ids)}")


@main.group()
def keys() -> None:
    """The secret key that seals contact addresses."""


@keys.command("rotate")
def keys_rotate() -> None:
    """Seal every stored address and number again under the current RETORNO_SECRET_KEY (old ones are read with
    RETORNO_OLD_SECRET_KEYS, newest first); afterwards the old keys can be dropped."""
    from service import audit
    from service import keys as rotation
    from service.privacy import UnknownKey

    rt = _open_runtime()
    try:
        total = sum(rotation.stale(rt).values())
        with click.progressbar(length=total, label="re-sealing", file=sys.stderr,
                               hidden=not sys.stderr.isatty()) as bar:
            done = rotation.rotate(rt, audit.cli_actor(), progress=bar.update)
    except UnknownKey as error:
        raise click.ClickException(f"{error}. Put the key it was sealed with in RETORNO_OLD_SECRET_KEYS and run "
                                   "`retorno keys rotate` again") from None
    click.echo(f"sealed under key {rt.vault.key_id}: " + ", ".join(f"{n} {what}" for what, n in done.items()))
    click.echo("the hashing key is kept in the database: the old keys may now be removed from "
               "RETORNO_OLD_SECRET_KEYS")
