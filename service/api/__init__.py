"""The JSON API (see CONTRACT.md): one module per resource, all under /api/v1 on one blueprint."""

from __future__ import annotations

from flask import Blueprint, current_app

from service.app import error_response
from service.auth import AuthError
from service.catalog import UnknownSurvey
from service.edge import refuse_control_characters
from service.runtime import Runtime

api = Blueprint("api", __name__, url_prefix="/api/v1")
api.before_request(refuse_control_characters)
STAFF, ANALYST = "staff", "analyst"


def runtime() -> Runtime:
    return current_app.extensions["retorno"]


class ApiError(Exception):
    """An error the client can act on: `{"error": {"code": ..., "message": ...}}` with `status`."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@api.errorhandler(AuthError)
@api.errorhandler(ApiError)
def _error(error):
    return error_response(error.status, error.code, error.message)


@api.errorhandler(UnknownSurvey)
def _unknown_survey(error: UnknownSurvey):
    return error_response(404, "unknown_survey", f"no survey {error.args[0]}")


from service.api import audit, campaigns, contacts, gaps, incentives, surveys  # noqa: E402,F401  - registers the routes
