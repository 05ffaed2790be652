"""The JSON API's blueprint, roles and errors, which every resource module shares."""

from __future__ import annotations

from flask import Blueprint

from service.auth import AuthError
from service.catalog import UnknownSurvey
from service.edge import refuse_control_characters
from service.web import error_response

api = Blueprint("api", __name__, url_prefix="/api/v1")
api.before_request(refuse_control_characters)
STAFF, ANALYST = "staff", "analyst"


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
