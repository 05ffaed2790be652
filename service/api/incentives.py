"""Incentives as staff see them: one record per earned credit, without phone numbers."""

from __future__ import annotations

from flask import jsonify, request
from sqlalchemy import select

from service.api.base import STAFF, ApiError, api
from service.auth import require
from service.catalog import is_survey_id
from service.edge import INT32_MAX, whole
from service.incentives import STATUSES, amount
from service.models import Contact, Incentive, SurveyVersion
from service.web import current_runtime as _runtime


@api.get("/incentives")
@require(STAFF)
def list_incentives():
    """`[{respondent_id, survey_id, wave, amount, currency, status, provider, attempts, created_at, updated_at}]`."""
    rt = _runtime()
    survey_id = request.args.get("survey")
    wave = whole(request.args.get("wave"), "wave", high=INT32_MAX)
    status = request.args.get("status")
    if status is not None and status not in STATUSES:
        raise ApiError(400, "bad_request", f"status must be one of {', '.join(STATUSES)}")
    query = (
        select(Incentive, Contact.public_id)
        .join(Contact, Contact.id == Incentive.contact_id)
        .order_by(Incentive.id)
    )
    with rt.sessions() as session:
        if survey_id is not None:
            known = is_survey_id(survey_id) and session.scalar(
                select(SurveyVersion.survey_id).where(SurveyVersion.survey_id == survey_id).limit(1)
            )
            if known is None:
                raise ApiError(404, "unknown_survey", f"no survey {survey_id}")
            query = query.where(Incentive.survey_id == survey_id)
        if wave is not None:
            query = query.where(Incentive.wave == wave)
        if status is not None:
            query = query.where(Incentive.status == status)
        rows = session.execute(query).all()
    return jsonify([_record(record, public_id) for record, public_id in rows])


def _record(record: Incentive, public_id: str) -> dict:
    return {
        "respondent_id": public_id,
        "survey_id": record.survey_id,
        "wave": record.wave,
        "amount": amount(record.amount_cents),
        "currency": record.currency,
        "status": record.status,
        "provider": record.provider,
        "attempts": record.attempts,
        "created_at": record.created_at.isoformat(),
        "updated_at": record.updated_at.isoformat(),
    }
