"""The `retorno` command: run the service, workers and the staff's tools.

Feature commands (contacts, campaigns, incentives, gaps) live in modules of this package that add themselves
to `main` with `@main.group()` / `@main.command()`.
"""

from __future__ import annotations

import gc
import logging
import os
import sys
import threading
from pathlib import Path

import click

from service.config import ConfigError, Settings, check_reachable, embedded_database, sqlite_file
from service.privacy import UnknownKey
from service.queue import QUEUE_NAMES
from surveys.definition import Definition
from surveys.loader import review_text

log = logging.getLogger("retorno")


def _setup_logging(level: str = "INFO") -> None:
    from service import logs

    logs.setup(level)
    logging.getLogger("alembic").setLevel(logging.WARNING)  # what a start says is the service's, not each migration


def _settings(port: int = 8000, existing: bool = False, **overrides) -> Settings:
    """The configuration, once it can work: URLs well formed, database and Redis reachable.

    Without DATABASE_URL the embedded database is used; a command that reads data (`existing`) refuses to start one
    that does not exist yet (it would only find it empty), and any other command says that it creates one.
    """
    embedded = embedded_database()
    named = sqlite_file(os.environ.get("DATABASE_URL", ""))
    if existing and named is not None and not named.exists():
        raise click.ClickException(
            f"no Retorno database at {named} (DATABASE_URL): point DATABASE_URL at the database `retorno run` uses, "
            "or unset it and run this command in the folder with retorno-data/"
        )
    if embedded is not None and not embedded.exists():
        if existing:
            where = "RETORNO_DATA_DIR" if os.environ.get("RETORNO_DATA_DIR", "").strip() else "this folder"
            raise click.ClickException(
                f"no Retorno database at {embedded} ({where}): run this command in the folder where you ran "
                "`retorno run`, or set RETORNO_DATA_DIR to its retorno-data folder, or DATABASE_URL"
            )
        click.echo(f"retorno: creating a new embedded database at {embedded} "
                   "(set RETORNO_DATA_DIR or DATABASE_URL to use another)", err=True)
    settings = Settings.from_env(port=port)
    check_reachable(settings)
    if overrides:
        from dataclasses import replace

        settings = replace(settings, **overrides)
    return settings


def _check_surveys(rt) -> None:
    """Publish the surveys; refuse to run on a survey file that is invalid or edited without a new version, on
    an unknown default survey, or with a secret key that cannot open the stored data."""
    from service import startup

    rt.catalog.publish()
    if rt.catalog.refused:
        raise click.ClickException("\n".join(rt.catalog.refused))
    startup.check_default_survey(rt)
    startup.check_keys(rt)
    startup.warn_database_settings(rt)


def _runtime(settings: Settings):
    from service import runtime as runtimes

    return runtimes.install(runtimes.build(settings))


def open_runtime(existing: bool = True):
    """This process's runtime on the configured database, migrated first; `existing`: never a new embedded one
    (a command that reads contacts, campaigns or records needs the database `retorno run` made)."""
    from service.db import upgrade

    settings = _settings(existing=existing)
    upgrade(settings.database_url)
    return _runtime(settings)


def plural(n: int, word: str, many: str | None = None) -> str:
    """'1 row', '2 rows', '1,000 rows'."""
    return f"{n:,} {word if n == 1 else many or word + 's'}"


class WrongValue(click.UsageError):
    """A wrong option value: exit 2 with one line naming the option and the fix (no usage block around it)."""

    def __init__(self, option: str, message: str):
        super().__init__(f"{option}: {message}")

    def show(self, file=None) -> None:
        click.echo(f"Error: {self.format_message()}", err=True)


class _Commands(click.Group):
    """`retorno`: a misconfiguration or an outage met while a command runs is told in one line, not a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except ConfigError as error:
            raise click.ClickException(str(error)) from None
        except click.ClickException:
            raise
        except UnknownKey as error:
            from service.startup import KEY_FIX

            raise click.ClickException(f"{error}: {KEY_FIX}") from None
        except Exception as error:
            line = _outage(error)
            if line is None:
                raise
            raise click.ClickException(line) from None


def _outage(error: Exception) -> str | None:
    """One line for a database or Redis that went away (or never answered); None for any other error."""
    module = type(error).__module__
    if module.startswith("sqlalchemy"):
        from service.db import INVALID, UNAVAILABLE, cause

        why = cause(error)
        reason = " ".join(str(getattr(error, "orig", None) or error).split())[:300]
        if why == UNAVAILABLE:
            return f"the database cannot be reached ({reason}); check DATABASE_URL and that the database is running"
        if why == INVALID:
            return f"the database refused a value given to this command ({reason}); check the command's arguments"
    if module.startswith("redis"):
        from redis.exceptions import ConnectionError as RedisDown
        from redis.exceptions import TimeoutError as RedisSlow

        if isinstance(error, RedisDown | RedisSlow):
            return f"Redis cannot be reached ({error}); check REDIS_URL and that Redis is running"
    return None


@click.group(cls=_Commands, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="retorno", prog_name="retorno", message="%(prog)s %(version)s")
def main() -> None:
    """Retorno: SMS and Telegram surveys of returnees, turned into reintegration gap maps."""


# -- running ------------------------------------------------------------------------------------------------


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
def run(host: str, port: int) -> None:
    """Web + worker + scheduler in one process (SQLite and an in-process queue unless configured)."""
    _setup_logging()
    console = os.environ.get("RETORNO_CONSOLE_CHANNEL", "true").lower() not in ("0", "false", "no")
    settings = _settings(port=port, console_channel=console, access_log=False)  # its terminal is for people
    from service.db import upgrade

    upgrade(settings.database_url)
    rt = _runtime(settings)
    _check_surveys(rt)
    from werkzeug.serving import make_server

    from service.app import create_app

    app = create_app(runtime=rt)
    stop = threading.Event()
    threads = _background(rt, stop)
    server = make_server(host, port, app, threaded=True)
    _announce(settings, host, port)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        stop.set()
        server.server_close()
        for thread in threads:
            thread.join(timeout=5)


def _background(rt, stop: threading.Event) -> list[threading.Thread]:
    from service import schedule
    from service.queue import EmbeddedDispatcher

    threads = []
    if isinstance(rt.dispatcher, EmbeddedDispatcher):
        threads.append(threading.Thread(target=rt.dispatcher.serve, args=(stop,), name="worker", daemon=True))
        threads.append(
            threading.Thread(target=schedule.embedded_loop, args=(rt.dispatcher, stop), name="scheduler", daemon=True)
        )
    else:
        threads.append(threading.Thread(target=_rq_worker_thread, args=(rt, stop), name="worker", daemon=True))
        threads.append(
            threading.Thread(target=schedule.leader_loop, args=(rt.dispatcher.redis, stop), name="scheduler",
                             daemon=True)
        )
    for thread in threads:
        thread.start()
    return threads


def _rq_worker_thread(rt, stop: threading.Event) -> None:
    """An RQ worker inside `retorno run` when REDIS_URL is set: burst passes, so no signal handlers are needed."""
    from rq import SimpleWorker

    while not stop.is_set():
        try:
            connection, queues = rt.dispatcher.worker_queues()
            worker = SimpleWorker(queues, connection=connection)
            worker._install_signal_handlers = lambda: None  # signals belong to the main thread
            worker.work(burst=True, logging_level="WARNING")
        except Exception as error:  # noqa: BLE001
            log.warning("worker: %s; retrying", type(error).__name__)
        stop.wait(0.2)


def _announce(settings: Settings, host: str, port: int) -> None:
    embedded = "SQLite " + settings.database_url.removeprefix("sqlite:///")
    database = embedded if settings.embedded_database else "PostgreSQL"
    queue = "in-process queue" if settings.embedded_queue else "Redis"
    channels = [name for name, on in (
        ("SMS/WhatsApp", settings.twilio_inbound), ("Telegram", settings.telegram),
        ("console (a test channel: this machine only, never paid or mapped)", settings.console_channel)
    ) if on]
    url = f"http://{host}:{port}"
    click.echo(f"Retorno listens on {url}  ({database}, {queue})")
    click.echo(f"Channels: {', '.join(channels) or 'none'}")
    click.echo(f"Try it in another terminal:  retorno chat --url {url}")
    click.echo("Stop with Ctrl-C.")


@main.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8000, show_default=True, type=int)
@click.option("--workers", default=lambda: int(os.environ.get("WEB_CONCURRENCY", "2")), type=int)
@click.option("--server", type=click.Choice(["granian", "gunicorn"]), default="granian", show_default=True,
              help="granian (a Rust HTTP server, the Procfile's) or gunicorn (the earlier one).")
def web(host: str, port: int, workers: int, server: str) -> None:
    """The web app only (webhooks, API, dashboard), as the Procfile runs it."""
    from service import startup

    _setup_logging()
    rt = _runtime(_settings(port=port))
    startup.check(rt)  # each web process checks again (service.app)
    startup.warn_database_settings(rt)
    rt.engine.dispose()
    if server == "gunicorn":
        from gunicorn.app.wsgiapp import WSGIApplication

        sys.argv = ["gunicorn", "--bind", f"{host}:{port}", "--workers", str(workers), "--threads", "8",
                    "--worker-class", "gthread", "service.app:create_app()"]
        WSGIApplication("%(prog)s [OPTIONS] [APP_MODULE]").run()
        return
    from granian import Granian
    from granian.constants import Interfaces

    Granian("service.app:create_app", address=host, port=port, interface=Interfaces.WSGI, factory=True,
            workers=workers, blocking_threads=32, backlog=2048, workers_kill_timeout=30).serve()


@main.command()
@click.option("--burst", is_flag=True, help="Stop when the queue is empty.")
@click.option("--fork", is_flag=True, help="Run each job in a forked child (RQ's default Worker).")
@click.option("--queue", "only", multiple=True, type=click.Choice(QUEUE_NAMES),
              help="Serve only this queue (repeatable; default: all, sends first).")
def worker(burst: bool, fork: bool, only: tuple[str, ...]) -> None:
    """Queue worker for all of Retorno's queues (needs REDIS_URL)."""
    _setup_logging()
    settings = _settings()
    if settings.embedded_queue:
        raise click.ClickException("retorno worker needs REDIS_URL; on a single machine, `retorno run` has a worker")
    rt = _runtime(settings)
    _check_surveys(rt)
    _collect_less_garbage()
    from rq import SimpleWorker
    from rq import Worker as ForkingWorker

    from service import schedule

    stop = threading.Event()
    threading.Thread(target=schedule.leader_loop, args=(rt.dispatcher.redis, stop), daemon=True).start()
    kind = ForkingWorker if fork else SimpleWorker
    try:
        while True:
            try:
                connection, queues = rt.dispatcher.worker_queues(only)
                kind(queues, connection=connection).work(burst=burst, logging_level="INFO")
                return
            except Exception as error:  # noqa: BLE001 - Redis away: wait and reconnect
                if burst:
                    raise
                log.warning("worker stopped (%s); reconnecting in 2 s", type(error).__name__)
                stop.wait(2)
    finally:
        stop.set()


def _collect_less_garbage() -> None:
    """Workers' batches allocate many short-lived objects: the modules, definitions and mappings loaded so far are
    kept out of every garbage collection, and collections run after 20,000 new objects instead of 700 (in the
    processing benchmark, collections took about 15% of a worker's CPU)."""
    gc.freeze()
    gc.set_threshold(20_000, 20, 20)


@main.command()
def scheduler() -> None:
    """RQ's cron scheduler alone (workers also run it, one at a time, so this is optional)."""
    _setup_logging()
    settings = _settings()
    if settings.embedded_queue:
        raise click.ClickException("retorno scheduler needs REDIS_URL")
    rt = _runtime(settings)
    from service.schedule import cron_scheduler

    cron_scheduler(rt.dispatcher.redis).start()


# -- database and tokens ------------------------------------------------------------------------------------


@main.group()
def db() -> None:
    """Database schema."""


@db.command("upgrade")
def db_upgrade() -> None:
    """Apply database migrations."""
    settings = _settings()
    from service.db import upgrade

    upgrade(settings.database_url)
    click.echo("database is up to date")


@main.group()
def tokens() -> None:
    """API tokens."""


@tokens.command("create")
@click.option("--role", type=click.Choice(["staff", "analyst"]), required=True)
@click.option("--name", default="", help="Who or what the token is for (shown in the audit log).")
@click.option("--expires", default=None, metavar="DURATION", help="Expire after this long: 30m, 12h, 90d, 2w.")
def tokens_create(role: str, name: str, expires: str | None) -> None:
    """Create an API token; it is printed once, alone on the last line."""
    from service.auth import TokenError, create_token, duration

    try:
        lifetime = duration(expires) if expires is not None else None  # "" (an unset variable) is no "never"
    except TokenError as error:
        raise WrongValue("--expires", str(error)) from None
    if any(ord(c) < 32 or 127 <= ord(c) < 160 for c in name):
        raise WrongValue("--name", "a token name cannot hold control characters")
    settings = _settings()
    from service.db import upgrade

    upgrade(settings.database_url)
    token = create_token(_runtime(settings), role, name, lifetime)
    article = "an" if role[0] in "aeiou" else "a"
    until = f", valid for {expires}" if expires else ""
    click.echo(f"created {article} {role} token{' for ' + name if name else ''}{until}; keep it secret:", err=True)
    click.echo(token)


# -- surveys ------------------------------------------------------------------------------------------------


@main.group()
def surveys() -> None:
    """Survey definitions."""


@surveys.command("check")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--max-segments", type=click.IntRange(min=1), default=None,
              help="A message longer than this many SMS segments is an error (otherwise a warning over 1).")
@click.option("--json", "as_json", is_flag=True, help="Problems, warnings and SMS figures as JSON, for tools.")
def surveys_check(paths: tuple[Path, ...], max_segments: int | None, as_json: bool) -> None:
    """Validate survey YAML files (or folders of them): one FILE:LINE: message line per problem; for a valid
    survey, the SMS encoding, characters and segments of every message, per question and language."""
    import json

    from service.cli import _survey_report as report

    failed = False
    found = []
    checked: list[Definition] = []
    files = _survey_files(paths)
    for path in files:
        try:
            review = review_text(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError) as error:
            reason = f"cannot read the file: {getattr(error, 'strerror', None) or error}"
            found.append({"file": str(path), "valid": False, "problems": [{"line": 1, "message": reason}]})
            if not as_json:
                click.echo(f"{path}:1: {reason}")
            failed = True
            continue
        cost = report.costs(review) if review.definition is not None else None
        long = report.too_long(path, cost, max_segments or 1, max_segments is not None) if cost else []
        long += report.over_budget(path, review, cost) if cost else []
        too_long = max_segments is not None and bool(cost and cost.over(max_segments))
        failed = failed or bool(review.problems) or too_long
        if as_json:
            found.append(report.as_json(path, review, cost, max_segments))
            continue
        for problem in review.problems:
            click.echo(f"{path}:{problem.line}: {problem.message}")
        if review.definition is not None:
            checked.append(review.definition)
        if cost is not None:
            click.echo("\n".join(report.table(path, review, cost)))
        for line in [*(f"{path}:{w.line}: {w.message}" for w in review.warnings), *long]:
            click.echo(line)
    if not files:
        reason = "no survey files here (*.yaml, *.yml)"
        found.append({"file": str(paths[0]), "valid": False, "problems": [{"line": 1, "message": reason}]})
        if not as_json:
            click.echo(f"{paths[0]}:1: {reason}")
        failed = True
    if as_json:
        click.echo(json.dumps({"files": found}, ensure_ascii=False, indent=2))
    elif not failed:
        click.echo(_checked_summary(checked))
    sys.exit(1 if failed else 0)


def _checked_summary(checked: list[Definition]) -> str:
    """What a clean check covered: '2 surveys, 43 questions, no problems'."""
    questions = sum(len(definition.questions) - 1 for definition in checked)  # the consent question aside
    return f"{plural(len(checked), 'survey')}, {plural(questions, 'question')}, no problems"


def _survey_files(paths: tuple[Path, ...]) -> list[Path]:
    files: list[Path] = []
    for path in paths:
        if path.is_dir():
            files.extend(sorted([*path.glob("*.yaml"), *path.glob("*.yml")]))
        else:
            files.append(path)
    return files


# -- chat ---------------------------------------------------------------------------------------------------


@main.command()
@click.option("--url", default="http://127.0.0.1:8000", show_default=True, help="The running service.")
@click.option("--as", "address", default=None, help="Who you are (any name; the same name resumes).")
def chat(url: str, address: str | None) -> None:
    """Talk to the running service as a respondent; reads lines from standard input, so it can be piped."""
    from service.chat import run_chat

    sys.exit(run_chat(url, address))


def _register_subcommands() -> None:
    """Each feature's commands live in their own module of this package."""
    import importlib
    import pkgutil

    for module in pkgutil.iter_modules(__path__):
        if not module.name.startswith("_"):
            importlib.import_module(f"{__name__}.{module.name}")


_register_subcommands()
