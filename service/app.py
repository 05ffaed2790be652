"""The Flask application factory: webhooks, JSON API, dashboard, health and metrics."""

from __future__ import annotations

import logging

from flask import Flask, jsonify, request
from sqlalchemy.exc import DBAPIError, OperationalError
from werkzeug.exceptions import HTTPException

from service import runtime as runtimes
from service import spool as spools
from service.config import Settings
from service.runtime import Runtime

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 1024 * 1024


def create_app(settings: Settings | None = None, runtime: Runtime | None = None) -> Flask:
    """Build the web app; with no arguments, configuration comes from the environment."""
    if runtime is None:
        runtime = runtimes.build(settings or Settings.from_env())
    runtimes.install(runtime)
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.config["JSON_SORT_KEYS"] = False
    app.extensions["retorno"] = runtime

    from service.api import api
    from service.dashboard import dashboard
    from service.health import health
    from service.webhooks import webhooks

    app.register_blueprint(webhooks)
    app.register_blueprint(api)
    app.register_blueprint(health)
    app.register_blueprint(dashboard)
    _register_errors(app)
    from service.fastpath import FastWebhooks

    app.wsgi_app = FastWebhooks(app)  # type: ignore[method-assign]
    spools.of(runtime).start()  # what an earlier process spooled goes into the database once it answers
    return app


def error_response(status: int, code: str, message: str):
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    return response


def _register_errors(app: Flask) -> None:
    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException):
        code = (error.name or "error").lower().replace(" ", "_")
        return error_response(error.code or 500, code, error.description or error.name)

    @app.errorhandler(OperationalError)
    @app.errorhandler(DBAPIError)
    @app.errorhandler(TimeoutError)
    @app.errorhandler(spools.SpoolFull)
    def database_down(error: Exception):
        detail = f"{type(error).__name__}: {error}" if isinstance(error, spools.SpoolFull) else type(error).__name__
        log.error("database unavailable during %s %s: %s", request.method, request.path, detail)
        response = error_response(503, "database_unavailable", "the database is unavailable; try again shortly")
        response.headers["Retry-After"] = "5"
        return response
