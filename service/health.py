"""Liveness for load balancers (`/healthz`) and numbers for Prometheus (`/metrics`)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import func, select, text

from service.inbox import committer
from service.models import InboundMessage, OutboundMessage
from service.runtime import Runtime

health = Blueprint("health", __name__)


def _runtime() -> Runtime:
    return current_app.extensions["retorno"]


@health.get("/healthz")
def healthz():
    rt = _runtime()
    checks = {"database": "ok", "queue": "ok"}
    try:
        with rt.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - any failure means unhealthy
        checks["database"] = "unavailable"
    if not rt.dispatcher.ping():
        checks["queue"] = "unavailable"
    ok = all(v == "ok" for v in checks.values())
    body = {"status": "ok" if ok else "unavailable", **checks}
    body["queue_backend"] = "embedded" if rt.settings.embedded_queue else "redis"
    body["database_backend"] = rt.engine.dialect.name
    return jsonify(body), 200 if ok else 503


@health.get("/metrics")
def metrics():
    rt = _runtime()
    lines: list[str] = []

    def gauge(name: str, help_text: str, value: float, labels: str = "") -> None:
        if not any(line.startswith(f"# HELP {name} ") for line in lines):
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} gauge")
        lines.append(f"{name}{labels} {value}")

    try:
        depth = rt.dispatcher.depth()
        for box, value in depth.items():
            gauge("retorno_queue_depth", "Ids waiting in the queue", value, f'{{box="{box}"}}')
        gauge("retorno_queue_up", "1 when the queue answers", 1)
    except Exception:  # noqa: BLE001
        gauge("retorno_queue_up", "1 when the queue answers", 0)
    gauge("retorno_queue_push_failures", "Failed pushes to the queue in this process", rt.dispatcher.failures)
    stored = committer(rt)
    gauge("retorno_group_commits", "Group commits of webhook messages by this process", stored.batches)
    gauge("retorno_group_commit_rows", "Webhook messages stored by this process's group commits", stored.rows)
    try:
        now = rt.now()
        with rt.sessions() as session:
            set_aside = 0
            for status, count in session.execute(
                select(InboundMessage.status, func.count()).group_by(InboundMessage.status)
            ):
                gauge("retorno_inbound_messages", "Inbound messages by status", count, f'{{status="{status}"}}')
                set_aside += count if status == "failed" else 0
            gauge("retorno_inbound_set_aside", "Inbound messages the workers could not process, set aside for "
                  "staff (retorno inbox failed)", set_aside)
            for status, count in session.execute(
                select(OutboundMessage.status, func.count()).group_by(OutboundMessage.status)
            ):
                gauge("retorno_outbound_messages", "Outbound messages by status", count, f'{{status="{status}"}}')
            oldest = session.scalar(
                select(func.min(InboundMessage.received_at)).where(InboundMessage.status == "pending")
            )
        lag = 0.0
        if oldest is not None:
            if oldest.tzinfo is None:
                oldest = oldest.replace(tzinfo=now.tzinfo)
            lag = max(0.0, (now - oldest).total_seconds())
        gauge("retorno_processing_lag_seconds", "Age of the oldest unprocessed inbound message", lag)
        gauge("retorno_database_up", "1 when the database answers", 1)
    except Exception:  # noqa: BLE001
        gauge("retorno_database_up", "1 when the database answers", 0)
    return Response("\n".join(lines) + "\n", mimetype="text/plain; version=0.0.4")
