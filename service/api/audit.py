"""The audit log (staff): who did what with people's data, and when."""

from __future__ import annotations

from flask import jsonify, request

from service import audit
from service.api.base import STAFF, ApiError, api
from service.auth import require
from service.web import current_runtime as _runtime


@api.get("/audit")
@require(STAFF)
def audit_log():
    """`[{at, actor, action, target, detail}]`, oldest first; `?since=ISO` for the entries from then on."""
    since = request.args.get("since")
    try:
        moment = audit.moment(since) if since else None
    except ValueError:
        raise ApiError(400, "bad_request", "since must be an ISO date or time, e.g. 2026-03-01") from None
    return jsonify(audit.entries(_runtime(), moment))
