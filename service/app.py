"""The Flask application factory: webhooks, JSON API, dashboard, health and metrics."""

from __future__ import annotations

import logging
import sys

from flask import Flask, request
from sqlalchemy.exc import DBAPIError
from werkzeug.exceptions import HTTPException

from service import runtime as runtimes
from service import spool as spools
from service.config import ConfigError, Settings
from service.db import CONFLICT, INVALID, UNAVAILABLE, cause
from service.edge import BadInput, IdConverter
from service.runtime import Runtime
from service.web import error_response

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> Flask:
    """Build the web app; with no arguments, configuration comes from the environment."""
    if runtime is None:
        runtime = runtimes.build(settings or _settings_from_env())
        _refuse_unless_it_can_work(runtime)
    runtimes.install(runtime)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.config["JSON_SORT_KEYS"] = False
    app.extensions["retorno"] = runtime
    app.url_map.converters["id"] = IdConverter

    from service.api import api
    from service.dashboard import dashboard
    from service.health import health
    from service.staff import staff
    from service.webhooks import webhooks

    app.register_blueprint(webhooks)
    app.register_blueprint(api)
    app.register_blueprint(health)
    app.register_blueprint(dashboard)
    app.register_blueprint(staff)
    _register_errors(app)
    from service.fastpath import FastWebhooks

    app.wsgi_app = FastWebhooks(app)  # type: ignore[method-assign]
    if runtime.settings.access_log:
        from service.access_log import AccessLog

        app.wsgi_app = AccessLog(app.wsgi_app)  # type: ignore[method-assign]
    spools.of(runtime).start()  # what an earlier process spooled goes into the database once it answers
    return app


def _settings_from_env() -> Settings:
    """The environment's settings; a wrong one stops the process with one line (gunicorn: "App failed to load")."""
    try:
        return Settings.from_env()
    except ConfigError as error:
        print(f"retorno: {error}", file=sys.stderr)
        raise SystemExit(4) from None


def _refuse_unless_it_can_work(runtime: Runtime) -> None:
    """The startup checks (service.startup) of a web process built from the environment: one line, then exit."""
    from service import startup

    try:
        startup.check(runtime)
    except ConfigError as error:
        print(f"retorno: {error}", file=sys.stderr)
        raise SystemExit(4) from None


def _register_errors(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        code = (error.name or "error").lower().replace(" ", "_")
        return error_response(error.code or 500, code, error.description or error.name)

    @app.errorhandler(BadInput)
    def bad_input(error: BadInput):
        return error_response(400, "bad_request", str(error))

    @app.errorhandler(DBAPIError)
    @app.errorhandler(TimeoutError)
    @app.errorhandler(OverflowError)
    def database_error(error: Exception):
        """By cause: a value or a conflict the database refused is the request's fault; only an outage is 503."""
        why = cause(error)
        kind = type(getattr(error, "orig", None) or error).__name__
        if why == INVALID:
            log.warning("%s %s: the database refused a value (%s)", request.method, request.path, kind)
            return error_response(400, "bad_request", "the request holds a value that cannot be stored")
        if why == CONFLICT:
            log.warning("%s %s: the database refused a conflicting write (%s)", request.method, request.path, kind)
            return error_response(409, "conflict", "the request conflicts with what is stored")
        if why == UNAVAILABLE:
            log.error("database unavailable during %s %s: %s", request.method, request.path, kind)
            return _unavailable()
        log.error("database error during %s %s: %s", request.method, request.path, kind, exc_info=error)
        return error_response(500, "internal_error", "the server failed to handle this request")

    @app.errorhandler(spools.SpoolFull)
    def spool_full(error: Exception):
        log.error("database unavailable during %s %s and the spool is full: %s", request.method, request.path, error)
        return _unavailable()


def _unavailable():
    """503 with Retry-After: the provider should try again shortly."""
    response = error_response(503, "database_unavailable", "the database is unavailable; try again shortly")
    response.headers["Retry-After"] = "5"
    return response
