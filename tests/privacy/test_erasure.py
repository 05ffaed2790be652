"""The right to erasure: by command, by API, by message (BORRAR). Afterwards nothing linked to the person is in
the database, the gap snapshots are recomputed without them, the audit log says so, and only they can start
again, by writing first: no campaign reaches them."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from service import runtime as runtimes
from tests.privacy.conftest import ANSWERS, find_numbers, pg_dump
from tests.support import Harness

ANA, BETO, CARLA = "+525511112222", "+525533334444", "+525577778888"


@pytest.fixture
def pg(clean_postgres, providers, tmp_path):
    harness = Harness(clean_postgres, providers, tmp_path)
    harness.database_url = clean_postgres
    yield harness
    harness.close()


def complete(h: Harness, phone: str) -> None:
    for text in ["Hola", *ANSWERS]:
        assert h.sms(phone, text).status_code == 200
        h.settle()


def cli(h: Harness, *args: str):
    """A `retorno` command against the harness's database and key, as staff would run it."""
    from service.cli import main

    env = {"DATABASE_URL": h.database_url, "RETORNO_SECRET_KEY": h.settings.secret_key, "REDIS_URL": ""}
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    runtimes.install(h.rt)  # the command installed its own runtime; the harness's jobs run on the harness's
    return result


def latest_snapshot(h: Harness) -> dict:
    with h.rt.engine.connect() as connection:
        from sqlalchemy import text

        row = connection.execute(text(
            "SELECT respondents, computed_at FROM gap_snapshots WHERE wave IS NULL ORDER BY id DESC LIMIT 1")).one()
    return {"respondents": row[0], "computed_at": row[1]}


def test_erase_by_command_leaves_nothing_linked_and_only_a_first_message_starts_again(pg):
    h = pg
    complete(h, ANA)
    complete(h, BETO)
    assert h.api("/api/v1/surveys/reintegracion-mx/gaps").status_code == 200
    assert latest_snapshot(h)["respondents"] == 2
    [ana] = [r for r in h.responses() if r["address"] == ANA]
    with h.rt.engine.connect() as connection:
        from sqlalchemy import text

        ana_hash = connection.execute(text("SELECT address_hash FROM contacts WHERE public_id = :p"),
                                      {"p": ana["respondent_id"]}).scalar_one()

    shown = cli(h, "contacts", "show", "--phone", "55 1111 2222")
    assert shown.exit_code == 0, shown.output
    person = json.loads(shown.output)["contacts"]
    assert [p["respondent_id"] for p in person] == [ana["respondent_id"]]
    assert person[0]["address"] == ANA and person[0]["sessions"][0]["answers"]["state"] == "19"
    assert any("Acepta" in m["text"] for m in person[0]["messages_sent"])

    erased = cli(h, "contacts", "erase", "--phone", "55-1111-2222", "--yes")
    assert erased.exit_code == 0, erased.output
    assert f"erased {ana['respondent_id']} (sms)" in erased.output

    dump = pg_dump(h.database_url)
    assert ana["respondent_id"] not in dump
    copies = [block for block in dump.split("\n\n") if ana_hash in block]
    assert len(copies) == 1 and copies[0].startswith("COPY public.opt_out_markers"), copies
    assert "5511112222" not in json.dumps(find_numbers(dump))
    assert [r["address"] for r in h.responses()] == [BETO]
    assert h.count("SELECT count(*) FROM answers") == h.count(
        "SELECT count(*) FROM answers a JOIN survey_sessions s ON s.id = a.session_id")
    assert latest_snapshot(h)["respondents"] == 1, "the gap snapshot was recomputed without her"

    entries = h.api("/api/v1/audit").get_json()
    [entry] = [e for e in entries if e["action"] == "contact.erased"]
    assert entry["actor"].startswith("cli:") and entry["detail"]["records"] > 20 and entry["target"] is None
    assert [e["action"] for e in entries if e["action"] == "contact.shown"] == ["contact.shown"]
    assert find_numbers(json.dumps(entries)) == {}
    assert cli(h, "contacts", "erase", "--phone", ANA, "--yes").exit_code == 1  # nobody left

    # no campaign reaches her: a list that holds her again does not store her, so no invitation can go
    from service import campaigns
    from service.contacts import Report, load, read

    report = Report()
    load(h.rt, read(["phone,tags", f"{ANA},wave2", f"{CARLA},wave2"], "MX", report=report), report)
    assert report.skipped_erased == 1 and report.created == 1
    campaign = campaigns.create(h.rt, campaigns.Plan(survey_id="reintegracion-mx", tag="wave2", wave=2,
                                                     quiet_hours=None))
    campaigns.start(h.rt, campaign.id, actor="tests")
    assert h.count("SELECT count(*) FROM campaign_messages") == 1, "Carla only"
    assert h.count("SELECT count(*) FROM contacts") == 2, "Beto and Carla"

    # unless she writes first: a new, unknown contact
    before = len(h.texts_to(ANA))
    h.sms(ANA, "Hola")
    h.settle()
    assert "¿Acepta? (SI/NO)" in h.texts_to(ANA)[before]
    respondents = {r["respondent_id"] for r in h.responses() if r["address"] == ANA}
    assert respondents and ana["respondent_id"] not in respondents


def test_erase_through_the_api(pg):
    h = pg
    complete(h, ANA)
    [ana] = h.responses()
    path = f"/api/v1/contacts/{ana['respondent_id']}"
    analyst = h.client.delete(path, headers={"Authorization": f"Bearer {h.analyst_token}"})
    assert analyst.status_code == 403
    response = h.client.delete(path, headers={"Authorization": f"Bearer {h.staff_token}"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["erased"] is True and body["records"] > 20
    again = h.client.delete(path, headers={"Authorization": f"Bearer {h.staff_token}"})
    assert again.status_code == 404 and again.get_json()["error"]["code"] == "unknown_respondent"
    assert h.responses() == []
    [entry] = [e for e in h.api("/api/v1/audit").get_json() if e["action"] == "contact.erased"]
    assert entry["actor"] == "tests" and entry["detail"]["how"] == "api"


def test_a_respondent_erases_themselves_by_message_confirmed_once(pg):
    h = pg
    complete(h, BETO)
    for text in ["Hola", *ANSWERS[:5]]:
        h.telegram_text(4242, text)
        h.settle()
    h.telegram_text(4242, "BORRAR")
    h.settle()
    assert h.texts_to("4242")[-1].startswith("¿Borrar todos sus datos")
    h.telegram_text(4242, "no, sigo")  # anything else goes on where they were
    h.settle()
    assert h.count("SELECT count(*) FROM contacts WHERE erase_requested_at IS NOT NULL") == 0
    h.telegram_text(4242, "/borrar")
    h.settle()
    h.telegram_text(4242, "Borrar")
    h.settle()
    assert h.texts_to("4242")[-1].startswith("Listo: borramos sus datos")
    from workers.privacy import purge

    assert purge()["erased"] == 1
    assert h.count("SELECT count(*) FROM contacts WHERE channel = 'telegram'") == 0
    assert h.count("SELECT count(*) FROM opt_out_markers WHERE kind = 'telegram'") == 1
    assert [r["channel"] for r in h.responses()] == ["sms"]
    [entry] = [e for e in h.api("/api/v1/audit").get_json() if e["action"] == "contact.erased"]
    assert entry["actor"] == "respondent" and entry["detail"]["how"] == "message"


def test_an_opted_out_respondent_can_still_ask_to_be_erased(pg):
    h = pg
    for text in ("Hola", "si", "STOP", "BORRAR", "BORRAR"):
        h.sms(ANA, text)
        h.settle()
    assert h.texts_to(ANA)[-1].startswith("Listo: borramos sus datos")
    from workers.privacy import purge

    purge()
    assert h.count("SELECT count(*) FROM contacts") == 0
    assert h.count("SELECT count(*) FROM opt_out_markers") == 2  # the sms address and the phone number


def test_a_list_that_holds_an_erased_person_in_any_spelling_skips_them(pg, tmp_path):
    """Re-importing the old contact list after an erasure: every spelling of her number, on SMS and WhatsApp, is
    skipped and reported ("n skipped: erased"); nothing of her is stored again, not even encrypted."""
    h = pg
    complete(h, ANA)
    assert cli(h, "contacts", "erase", "--phone", ANA, "--yes").exit_code == 0
    spellings = ["+52 55 1111 2222", "55-1111-2222", "5511112222", "+5215511112222", "044 55 1111 2222",
                 "(55) 1111 2222", "52 55 1111 2222", "+52.55.1111.2222"]
    lines = ["phone,channel,tags"]
    lines += [f'"{spelling}",sms,wave2' for spelling in spellings]
    lines += [f'"{ANA}",whatsapp,wave2', f'"{CARLA}",sms,wave2']
    listed = tmp_path / "old-list.csv"
    listed.write_text("\n".join(lines) + "\n", encoding="utf-8")
    imported = cli(h, "contacts", "import", str(listed))
    assert imported.exit_code == 0, imported.output
    assert "2 skipped: erased" in imported.output, imported.output  # her SMS and her WhatsApp contact
    assert "1 new contact" in imported.output
    assert h.count("SELECT count(*) FROM contacts") == 1, "Carla only"
    dump = pg_dump(h.database_url)
    assert "5511112222" not in json.dumps(find_numbers(dump))
    again = cli(h, "contacts", "import", str(listed))
    assert "2 skipped: erased" in again.output and h.count("SELECT count(*) FROM contacts") == 1
