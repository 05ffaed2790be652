"""Liveness for load balancers (`/healthz`) and numbers for Prometheus (`/metrics`)."""

from __future__ import annotations

from flask import Blueprint, Response, current_app, jsonify
from sqlalchemy import func, select, text

from service import spool as spools
from service.inbox import committer
from service.models import InboundMessage, OutboundMessage
from service.runtime import Runtime

health = Blueprint("health", __name__)


def _runtime() -> Runtime:
    return current_app.extensions["retorno"]


def _checks(rt: Runtime) -> tuple[dict, dict, bool]:
    """(database and queue checks, this machine's spool numbers, whether the spool keeps webhooks now)."""
    checks = {"database": "ok", "queue": "ok"}
    try:
        with rt.engine.connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - any failure means unhealthy
        checks["database"] = "unavailable"
    if not rt.dispatcher.ping():
        checks["queue"] = "unavailable"
    spool = spools.of(rt)
    spooling = checks["database"] != "ok" and spool.writable()
    return checks, spool.stats(), spooling


def _body(rt: Runtime, status: str, checks: dict, stats: dict) -> dict:
    return {"status": status, **checks, "spool": stats,
            "queue_backend": "embedded" if rt.settings.embedded_queue else "redis",
            "database_backend": rt.engine.dialect.name}


@health.get("/healthz")
def healthz():
    """As CONTRACT.md says: `200 {"status": "ok"}` when the database and the queue answer (spooled records still
    waiting are in `spool`), `503` otherwise; while the database is down and this machine's spool keeps webhooks,
    the 503's status is `degraded` (see /healthz/webhooks for a load balancer in front of webhooks)."""
    rt = _runtime()
    checks, stats, spooling = _checks(rt)
    if checks["database"] == "ok" and checks["queue"] == "ok":
        return jsonify(_body(rt, "ok", checks, stats)), 200
    status = "degraded" if spooling and checks["queue"] == "ok" else "unavailable"
    return jsonify(_body(rt, status, checks, stats)), 503


@health.get("/healthz/webhooks")
def webhooks_health():
    """Whether this machine keeps webhooks durably now, for the load balancer in front of providers: `200` `ok`, or
    `200` `degraded` while they are spooled on disk (the database down) or stored without the queue (the sweeper
    queues them later); `503` only when a webhook could not be kept (the database down and the spool full)."""
    rt = _runtime()
    checks, stats, spooling = _checks(rt)
    if checks["database"] != "ok" and not spooling:
        return jsonify(_body(rt, "unavailable", checks, stats)), 503
    fine = checks["database"] == "ok" and checks["queue"] == "ok" and not stats["files"]
    return jsonify(_body(rt, "ok" if fine else "degraded", checks, stats)), 200


@health.get("/metrics")
def metrics():
    rt = _runtime()
    lines: list[str] = []

    def gauge(name: str, help_text: str, value: float, labels: str = "", kind: str = "gauge") -> None:
        if not any(line.startswith(f"# HELP {name} ") for line in lines):
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
        lines.append(f"{name}{labels} {value}")

    try:
        depth = rt.dispatcher.depth()
        for box, value in depth.items():
            gauge("retorno_queue_depth", "Ids waiting in the queue", value, f'{{box="{box}"}}')
        gauge("retorno_queue_up", "1 when the queue answers", 1)
    except Exception:  # noqa: BLE001
        gauge("retorno_queue_up", "1 when the queue answers", 0)
    gauge("retorno_queue_push_failures", "Failed pushes to the queue in this process", rt.dispatcher.failures)
    spooled = spools.of(rt).stats()
    gauge("retorno_spool_bytes", "Bytes of webhooks in this machine's spool, waiting for the database",
          spooled["bytes"])
    gauge("retorno_spool_files", "Files in this machine's spool", spooled["files"])
    gauge("retorno_spool_oldest_seconds", "Age of the oldest record in this machine's spool", spooled["oldest_seconds"])
    gauge("retorno_spool_rejected_records", "Spooled records the database refused, kept in rejected/ until the "
          "retention period ends", spooled["rejected_records"])
    for name, help_text in (
        ("appended", "Records this process spooled while the database could not take them"),
        ("replayed", "Spooled records this process moved into the database"),
        ("refused", "Records answered 503 because neither the database nor the spool could keep them"),
        ("rejected", "Spooled records the database refused on replay, kept in the spool's rejected/ folder"),
    ):
        gauge(f"retorno_spool_{name}_total", help_text, spooled[name], kind="counter")
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
