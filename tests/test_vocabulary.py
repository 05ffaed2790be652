"""The named statuses are the strings stored before they had names (rows, JSON and docs/api.md stay the same)."""

from service import vocabulary as v
from service.models import CampaignMessage, InboundMessage, OutboundMessage, SurveySession
from surveys import engine


def test_members_equal_their_stored_strings():
    assert v.InboundStatus.PENDING == "pending" and f"{v.InboundStatus.FAILED}" == "failed"
    assert [*v.IncentiveState] == ["awaiting_phone", "pending", "submitted", "succeeded", "failed", "duplicate"]
    assert [*v.CampaignState] == ["draft", "running", "paused", "finished"]
    assert {v.OutboundStatus.SENT: 1}.get("sent") == 1


def test_the_engine_and_the_models_use_the_vocabularies():
    assert engine.IN_PROGRESS is v.SessionStatus.IN_PROGRESS and engine.Event("started").kind == "started"
    assert SurveySession.__table__.c.status.default.arg is v.SessionStatus.IN_PROGRESS
    assert InboundMessage.__table__.c.status.default.arg is v.InboundStatus.PENDING
    assert OutboundMessage.__table__.c.status.default.arg is v.OutboundStatus.QUEUED
    assert CampaignMessage.__table__.c.status.default.arg is v.CampaignMessageStatus.PENDING


def test_the_service_vocabulary_reexports_the_engine_one():
    from surveys.vocabulary import EventKind, SessionStatus

    assert v.EventKind is EventKind and v.SessionStatus is SessionStatus
