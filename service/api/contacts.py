"""A person's right to erasure, through the API (staff)."""

from __future__ import annotations

from flask import g, jsonify

from service.api.base import STAFF, ApiError, api
from service.auth import require
from service.rights import erase, find
from service.web import current_runtime as _runtime


@api.delete("/contacts/<respondent_id>")
@require(STAFF)
def erase_contact(respondent_id: str):
    """`{"erased": true, "records": N}`: everything about the respondent is deleted (see service.rights)."""
    rt = _runtime()
    with rt.sessions() as session:
        contacts = find(rt, session, respondent=respondent_id)
    if not contacts:
        raise ApiError(404, "unknown_respondent", f"no respondent {respondent_id}")
    erased = erase(rt, contacts, g.caller.actor, "api")
    return jsonify({"erased": True, "records": erased.records})
