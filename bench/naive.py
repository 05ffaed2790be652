"""The naive durable webhook a team writes first: Flask, the Twilio SDK's signature check, INSERT + COMMIT, RPUSH.

The baseline of `bench.ingest`: what Retorno's web path is measured against, on the same machine in the same run.

    NAIVE_DATABASE_URL=postgresql://... NAIVE_REDIS_URL=redis://... NAIVE_PUBLIC_URL=http://... \
    TWILIO_AUTH_TOKEN=... granian --interface wsgi --factory bench.naive:create_app
"""

from __future__ import annotations

import os
import threading

import psycopg
from flask import Flask, abort, request
from redis import Redis
from twilio.request_validator import RequestValidator

TABLE = "naive_inbound"


def create_app() -> Flask:
    app = Flask(__name__)
    validator = RequestValidator(os.environ["TWILIO_AUTH_TOKEN"])
    public_url = os.environ["NAIVE_PUBLIC_URL"]
    database_url = os.environ["NAIVE_DATABASE_URL"]
    redis = Redis.from_url(os.environ["NAIVE_REDIS_URL"])
    local = threading.local()
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(f"CREATE TABLE IF NOT EXISTS {TABLE} (sid text PRIMARY KEY, sender text, body text)")

    def connection() -> psycopg.Connection:
        if getattr(local, "connection", None) is None:
            local.connection = psycopg.connect(database_url)
        return local.connection

    @app.post("/webhooks/twilio/sms")
    def sms():
        form = request.form
        signature = request.headers.get("X-Twilio-Signature", "")
        if not validator.validate(public_url + request.path, form.to_dict(), signature):
            abort(403)
        db = connection()
        with db.transaction():
            db.execute(f"INSERT INTO {TABLE} (sid, sender, body) VALUES (%s, %s, %s) ON CONFLICT DO NOTHING",
                       (form["MessageSid"], form["From"], form["Body"]))
        redis.rpush("naive", form["MessageSid"])
        return '<?xml version="1.0" encoding="UTF-8"?><Response></Response>', 200, {"Content-Type": "text/xml"}

    @app.get("/healthz")
    @app.get("/healthz/webhooks")
    def healthz():
        return {"status": "ok"}

    return app
