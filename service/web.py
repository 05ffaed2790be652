"""What the web blueprints share: the runtime of the app serving the request, and the JSON error body."""

from __future__ import annotations

from flask import Response, current_app, jsonify

from service.runtime import Runtime


def current_runtime() -> Runtime:
    """The runtime of the Flask app handling this request (set by `service.app.create_app`)."""
    return current_app.extensions["retorno"]


def error_response(status: int, code: str, message: str) -> Response:
    """`{"error": {"code": ..., "message": ...}}` with `status` (the error shape of docs/api.md)."""
    response = jsonify({"error": {"code": code, "message": message}})
    response.status_code = status
    return response
