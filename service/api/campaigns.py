"""Campaigns and their funnels (staff): counts only, never a contact."""

from __future__ import annotations

from flask import jsonify

from service.api.base import STAFF, ApiError, api
from service.auth import require
from service.campaigns import UnknownCampaign, all_campaigns
from service.campaigns.funnel import report
from service.web import current_runtime as _runtime


@api.get("/campaigns")
@require(STAFF)
def list_campaigns():
    return jsonify([
        {"id": c.id, "survey_id": c.survey_id, "wave": c.wave, "tag": c.tag, "status": c.status}
        for c in all_campaigns(_runtime())
    ])


@api.get("/campaigns/<id:campaign_id>")
@require(STAFF)
def get_campaign(campaign_id: int):
    try:
        return jsonify(report(_runtime(), campaign_id))
    except UnknownCampaign:
        raise ApiError(404, "unknown_campaign", f"no campaign {campaign_id}") from None
