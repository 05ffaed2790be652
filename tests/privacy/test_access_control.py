"""Tokens (names, expiry, list, revoke), dashboard sessions, the audit log, and the console as a test channel."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
from click.testing import CliRunner

from service import runtime as runtimes
from service.auth import TokenError, create_token, duration, list_tokens, revoke_token
from tests.support import Harness


@pytest.fixture
def h(sqlite_url, providers, tmp_path):
    harness = Harness(sqlite_url, providers, tmp_path)
    yield harness
    harness.close()


def bearer(token: str) -> dict:
    return {"Authorization": f"Bearer {token}"}


def test_durations():
    assert duration("90d") == timedelta(days=90) and duration("12h") == timedelta(hours=12)
    assert duration("2w") == timedelta(weeks=2) and duration(" 30m ") == timedelta(minutes=30)
    for bad in ("", "0d", "90", "d", "1y", "-1d"):
        with pytest.raises(TokenError):
            duration(bad)


def test_a_token_expires_and_a_revoked_one_is_refused_at_once(h):
    brief = create_token(h.rt, "analyst", "visiting-analyst", timedelta(days=1))
    assert h.client.get("/api/v1/surveys", headers=bearer(brief)).status_code == 200
    h.clock.advance(days=1, seconds=1)
    assert h.client.get("/api/v1/surveys", headers=bearer(brief)).status_code == 401
    staff = create_token(h.rt, "staff", "ops")
    assert h.client.get("/api/v1/surveys", headers=bearer(staff)).status_code == 200
    assert revoke_token(h.rt, "ops", actor="tests") != []
    assert h.client.get("/api/v1/surveys", headers=bearer(staff)).status_code == 401
    states = {t["name"]: t["state"] for t in list_tokens(h.rt)}
    assert states == {"tests": "active", "visiting-analyst": "expired", "ops": "revoked"}
    with pytest.raises(TokenError, match="no active token"):
        revoke_token(h.rt, "ops")
    create_token(h.rt, "analyst", "twin")
    create_token(h.rt, "analyst", "twin")
    with pytest.raises(TokenError, match="revoke them by id"):
        revoke_token(h.rt, "twin")
    actions = [(e["action"], e["target"]) for e in h.api("/api/v1/audit").get_json()]
    assert ("token.revoked", "token #4") in actions and actions.count(("token.created", "token #6")) == 1


def test_tokens_and_audit_on_the_command_line(h, tmp_path):
    from service.cli import main

    env = {"DATABASE_URL": h.settings.database_url, "RETORNO_SECRET_KEY": h.settings.secret_key, "REDIS_URL": ""}
    runner = CliRunner()
    created = runner.invoke(main, ["tokens", "create", "--role", "analyst", "--name", "ana-lisis",
                                   "--expires", "90d"], env=env)
    assert created.exit_code == 0, created.output
    token = created.stdout.strip().splitlines()[-1]
    bad = runner.invoke(main, ["tokens", "create", "--role", "analyst", "--expires", "forever"], env=env)
    assert bad.exit_code == 2 and "not a duration" in bad.output
    listed = runner.invoke(main, ["tokens", "list"], env=env)
    assert "ana-lisis" in listed.output and "active" in listed.output and token not in listed.output
    as_json = json.loads(runner.invoke(main, ["tokens", "list", "--json"], env=env).output)
    [mine] = [t for t in as_json if t["name"] == "ana-lisis"]
    assert mine["expires_at"] and mine["role"] == "analyst"
    revoked = runner.invoke(main, ["tokens", "revoke", str(mine["id"])], env=env)
    assert revoked.exit_code == 0 and f"#{mine['id']}" in revoked.output
    assert runner.invoke(main, ["tokens", "revoke", "nobody"], env=env).exit_code == 1
    runtimes.install(h.rt)
    assert h.client.get("/api/v1/surveys", headers=bearer(token)).status_code == 401
    log = runner.invoke(main, ["audit", "--json"], env=env)
    actions = [e["action"] for e in json.loads(log.output)]
    assert actions.count("token.created") == 3 and actions.count("token.revoked") == 1
    text = runner.invoke(main, ["audit", "--since", "2000-01-01"], env=env).output
    assert "token.revoked" in text and "cli:" in text
    assert runner.invoke(main, ["audit", "--since", "yesterday"], env=env).exit_code == 2


def test_audit_records_exports_and_logins_and_is_append_only(h):
    h.sms("+525512345678", "Hola")
    h.settle()
    assert h.api("/api/v1/surveys/reintegracion-mx/responses?include_contact=true").status_code == 200
    assert h.api("/api/v1/surveys/reintegracion-mx/responses?format=csv").status_code == 200
    assert h.client.post("/dashboard", data={"token": h.analyst_token}).status_code == 303
    assert h.api("/api/v1/audit", token=h.analyst_token).status_code == 403
    entries = h.api("/api/v1/audit").get_json()
    exports = [e for e in entries if e["action"] == "responses.exported"]
    assert [e["detail"]["with_contacts"] for e in exports] == [True, False]
    assert all(e["actor"] == "tests" and e["target"] == "reintegracion-mx" for e in exports)
    assert [e["action"] for e in entries].count("dashboard.login") == 1
    assert set(entries[0]) == {"at", "actor", "action", "target", "detail"}
    assert "5512345678" not in json.dumps(entries)
    later = h.api("/api/v1/audit?since=2099-01-01T00:00:00+00:00").get_json()
    assert later == []
    assert h.api("/api/v1/audit?since=soon").status_code == 400
    from sqlalchemy import text
    from sqlalchemy.exc import DBAPIError

    for statement in ("UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log"):
        with pytest.raises(DBAPIError, match="append-only"), h.rt.engine.begin() as connection:
            connection.execute(text(statement))


def test_audit_log_is_append_only_on_postgresql(clean_postgres, providers, tmp_path):
    harness = Harness(clean_postgres, providers, tmp_path)
    try:
        from sqlalchemy import text
        from sqlalchemy.exc import DBAPIError

        assert harness.count("SELECT count(*) FROM audit_log") >= 2
        for statement in ("UPDATE audit_log SET actor = 'someone else'", "DELETE FROM audit_log"):
            with pytest.raises(DBAPIError, match="append-only"), harness.rt.engine.begin() as connection:
                connection.execute(text(statement))
    finally:
        harness.close()


def test_the_dashboard_cookie_is_a_short_lived_session_never_the_token(h):
    logged_in = h.client.post("/dashboard", data={"token": h.analyst_token})
    cookie = logged_in.headers["Set-Cookie"]
    assert h.analyst_token not in cookie and "Secure" in cookie and "Max-Age=28800" in cookie
    assert h.client.get("/dashboard").status_code == 200
    h.clock.advance(hours=8, seconds=1)
    assert h.client.get("/dashboard").status_code == 401  # the session ended; the token still works
    assert h.client.get("/dashboard", headers=bearer(h.analyst_token)).status_code == 200
    h.client.delete_cookie("retorno_session", path="/dashboard")
    h.client.post("/dashboard", data={"token": h.analyst_token})
    [analyst_id] = [t["id"] for t in list_tokens(h.rt) if t["role"] == "analyst"]
    revoke_token(h.rt, str(analyst_id))
    assert h.client.get("/dashboard").status_code == 401  # revoking the token ends its sessions


def test_over_plain_http_the_cookie_is_not_secure(sqlite_url, providers, tmp_path):
    harness = Harness(sqlite_url, providers, tmp_path, public_url="http://127.0.0.1:8000")
    try:
        cookie = harness.client.post("/dashboard", data={"token": harness.analyst_token}).headers["Set-Cookie"]
        assert "Secure" not in cookie and "HttpOnly" in cookie
    finally:
        harness.close()


# -- the console: a test channel -----------------------------------------------------------------------------


def console(h: Harness, address: str, text: str, **request) -> object:
    return h.client.post("/webhooks/console", json={"from": address, "text": text}, **request)


def test_the_console_answers_this_machine_only_unless_staff(h):
    far = {"environ_base": {"REMOTE_ADDR": "203.0.113.9"}}
    assert console(h, "ana", "hola", **far).status_code == 403
    assert console(h, "ana", "hola", headers={"X-Forwarded-For": "203.0.113.9"}).status_code == 403
    assert console(h, "ana", "hola", headers=bearer(h.analyst_token), **far).status_code == 403
    assert console(h, "ana", "hola", headers=bearer(h.staff_token), **far).status_code == 202
    assert console(h, "bob", "hola", environ_base={"REMOTE_ADDR": "::1"}).status_code == 202
    assert h.client.get("/webhooks/console/replies", **far).status_code == 403


def test_a_console_client_reads_only_its_own_replies(h):
    first = console(h, "ana", "hola")
    assert first.status_code == 202
    reader = first.get_json()["reader"]
    h.settle()
    mine = h.client.get("/webhooks/console/replies", headers={"X-Console-Reader": reader})
    assert "Acepta" in mine.get_json()[0]["text"]
    # another client cannot read ana's replies by naming her, nor write as her
    assert h.client.get("/webhooks/console/replies?address=ana").status_code == 400
    forged = h.client.get("/webhooks/console/replies", headers={"X-Console-Reader": reader[:-1] + "0"})
    assert forged.status_code == 403
    taken = console(h, "ana", "si")
    assert taken.status_code == 403 and taken.get_json()["error"]["code"] == "address_taken"
    assert console(h, "ana", "si", headers={"X-Console-Reader": reader}).status_code == 202
    other = console(h, "carla", "hola").get_json()["reader"]
    h.settle()
    theirs = h.client.get("/webhooks/console/replies", headers={"X-Console-Reader": other}).get_json()
    assert len(theirs) == 1 and {r["id"] for r in theirs}.isdisjoint(
        r["id"] for r in h.client.get("/webhooks/console/replies", headers={"X-Console-Reader": reader}).get_json())
    staff = h.client.get("/webhooks/console/replies?address=ana", headers=bearer(h.staff_token))
    assert len(staff.get_json()) == 2


def test_console_sessions_are_tests_never_paid_never_mapped_exported_only_when_asked(h):
    from tests.privacy.conftest import ANSWERS

    reader = None
    for text in ["Hola", *ANSWERS, "55 1234 5678"]:
        response = console(h, "tester", text, headers={"X-Console-Reader": reader} if reader else {})
        reader = response.get_json()["reader"]
        h.settle()
    assert h.count("SELECT count(*) FROM survey_sessions WHERE status = 'completed'") == 1
    assert h.count("SELECT count(*) FROM incentives") == 0
    assert h.count("SELECT count(*) FROM incentive_reservations") == 0
    assert h.count("SELECT count(*) FROM contacts WHERE phone_enc IS NOT NULL") == 0
    gaps = h.api("/api/v1/surveys/reintegracion-mx/gaps?refresh=true").get_json()
    assert not any(cell["n"] for cell in gaps["cells"])
    assert h.responses() == []
    asked = h.api("/api/v1/surveys/reintegracion-mx/responses?include_tests=true").get_json()
    assert [r["channel"] for r in asked] == ["console"] and asked[0]["status"] == "completed"
