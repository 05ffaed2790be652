"""The simulator: the API for tools, the page in Chromium at 1280x800 and 390x844, and that nothing it does is data."""

from __future__ import annotations

from playwright.sync_api import expect

from surveys import sms

SURVEY = "reintegracion-mx"
TABLES = ("contacts", "survey_sessions", "answers", "incentives", "inbound_messages", "outbound_messages",
          "gap_snapshots", "incentive_reservations")


def answers_to_complete(definition, language: str, simulate_api) -> list[str]:
    """Typed answers that complete the bundled survey (1 for each choice, a state's name for the region)."""
    said = ["hola" if language == "es" else "hello"]
    for _ in range(60):
        result = simulate_api(said, language)
        if result["status"] != "in_progress" and len(said) > 1:
            return said
        question = definition.question(result["question"])
        said.append("Jalisco" if question.type == "region" else "2" if question.id == "age_band" else "1")
    raise AssertionError("the survey never ended")


def counts(h) -> dict[str, int]:
    return {table: h.count(f"SELECT count(*) FROM {table}") for table in TABLES}


def test_simulate_api_answers_with_segments_and_stores_nothing(console):
    h = console.h
    definition = h.rt.catalog.current(SURVEY)
    before = counts(h)
    audit_before = h.count("SELECT count(*) FROM audit_log")

    def call(messages, language, channel="sms", token=None):
        response = h.client.post(f"/api/v1/surveys/{SURVEY}/simulate",
                                 json={"language": language, "channel": channel, "messages": messages},
                                 headers={"Authorization": f"Bearer {token or h.staff_token}"})
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.get_json()

    for language, thanks in (("es", "Gracias"), ("en", "Thank you")):
        said = answers_to_complete(definition, language, call)
        result = call(said, language)
        assert result["status"] == "completed"
        assert thanks in result["replies"][-1]["text"]
        for reply in result["replies"]:
            assert reply["encoding"] in ("GSM-7", "UCS-2")
            assert (reply["characters"], reply["segments"]) == (sms.characters(reply["text"]),
                                                                sms.segments(reply["text"]))
        assert result["segments_total"] == sum(r["segments"] for r in result["replies"]) >= len(said)
        assert result["cost_estimate"]["amount"] > 0
    telegram = call(["hola"], "es", "telegram")
    assert telegram["replies"][0]["buttons"][0]["data"] == "consent=yes"
    pressed = call(["hola", {"button": "consent=yes"}], "es", "telegram")
    assert pressed["status"] == "in_progress" and len(pressed["replies"]) > 1

    assert counts(h) == before  # nothing stored, sent, paid or mapped
    assert h.count("SELECT count(*) FROM audit_log WHERE action = 'survey.simulated'") >= 3
    assert h.count("SELECT count(*) FROM audit_log") > audit_before

    refused = h.client.post(f"/api/v1/surveys/{SURVEY}/simulate", json={"messages": ["hola"]},
                            headers={"Authorization": f"Bearer {h.analyst_token}"})
    assert refused.status_code == 403
    assert h.client.post(f"/api/v1/surveys/{SURVEY}/simulate", json={"messages": ["hola"]}).status_code == 401
    bad = h.client.post(f"/api/v1/surveys/{SURVEY}/simulate", json={"channel": "fax", "messages": ["hola"]},
                        headers={"Authorization": f"Bearer {h.staff_token}"})
    assert bad.status_code == 400 and "channel" in bad.get_json()["error"]["message"]
    unknown = h.client.post("/api/v1/surveys/nope/simulate", json={"messages": ["hola"]},
                            headers={"Authorization": f"Bearer {h.staff_token}"})
    assert unknown.status_code == 404


def test_simulator_page_completes_the_survey_in_both_languages(console):
    h = console.h
    definition = h.rt.catalog.current(SURVEY)
    before = counts(h)

    def call(messages, language):
        response = h.client.post(f"/api/v1/surveys/{SURVEY}/simulate",
                                 json={"language": language, "channel": "sms", "messages": messages},
                                 headers={"Authorization": f"Bearer {h.staff_token}"})
        return response.get_json()

    # Spanish, SMS look, on a desktop: typed answers only
    page = console.page("desktop", "es")
    page.goto(f"{console.base}/staff/simulator?survey={SURVEY}&survey_language=es&channel=sms")
    for text in answers_to_complete(definition, "es", call):
        before_bubbles = page.locator("#sim-log li").count()
        page.fill("#sim-text", text)
        page.press("#sim-text", "Enter")
        page.locator("#sim-log li").nth(before_bubbles).wait_for()
    expect(page.locator("#sim-status")).to_have_attribute("data-status", "completed")
    assert "Gracias" in page.locator("#sim-log li.out").last.inner_text()
    metas = page.locator("#sim-log .meta")
    assert metas.count() >= 22 and "segmentos" in metas.first.inner_text() and "GSM-7" in metas.first.inner_text()
    assert int(page.locator("#sim-segments").inner_text()) >= 22
    console.shot(page, "simulator-es-desktop")
    page.context.close()

    # English, Telegram look, on a phone: the buttons are pressed, the rest typed
    page = console.page("phone", "en")
    page.goto(f"{console.base}/staff/simulator?survey={SURVEY}&survey_language=en&channel=telegram")
    page.fill("#sim-text", "hello")
    page.press("#sim-text", "Enter")
    for _ in range(40):
        page.locator("#sim-log li.out").first.wait_for()
        if page.locator("#sim-status").get_attribute("data-status") == "completed":
            break
        bubbles = page.locator("#sim-log li").count()
        last = page.locator("#sim-log li.out").last
        buttons = last.locator("button.choice")
        if buttons.count():
            (buttons.nth(1) if "18" in buttons.nth(1).inner_text() else buttons.first).click()
        else:
            page.fill("#sim-text", "Jalisco" if "state" in last.inner_text().lower() else "1")
            page.press("#sim-text", "Enter")
        page.locator("#sim-log li").nth(bubbles).wait_for()
    assert page.locator("#sim-status").get_attribute("data-status") == "completed"
    assert page.locator("#simulator.look-telegram").count() == 1
    assert "segments" in page.locator("#sim-log .meta").first.inner_text()
    assert page.evaluate("document.scrollingElement.scrollWidth") <= 390
    console.shot(page, "simulator-en-phone")
    page.context.close()
    assert counts(h) == before


def test_console_and_simulator_sessions_never_reach_exports_maps_or_incentives(console):
    """`retorno chat` (the console channel: test contacts) and the simulator (nothing stored at all) leave the
    responses export, the gap maps' counts and the incentives as they were."""
    from sqlalchemy import text

    from service.gaps import aggregate

    h = console.h
    definition = h.rt.catalog.current(SURVEY)

    def published() -> tuple[int, int, int]:
        export = h.api(f"/api/v1/surveys/{SURVEY}/responses").get_json()
        with h.rt.engine.connect() as connection:
            mapped = aggregate.count(connection, definition).respondents
        return len(export), mapped, h.count("SELECT count(*) FROM incentives")

    before = published()
    for language in ("es", "en"):
        result = h.client.post(f"/api/v1/surveys/{SURVEY}/simulate",
                               json={"language": language, "channel": "telegram",
                                     "messages": answers_to_complete(definition, language, lambda said, lang: (
                                         h.client.post(f"/api/v1/surveys/{SURVEY}/simulate",
                                                       json={"language": lang, "messages": said},
                                                       headers={"Authorization": f"Bearer {h.staff_token}"})
                                         .get_json()))},
                               headers={"Authorization": f"Bearer {h.staff_token}"}).get_json()
        assert result["status"] == "completed"

    reader = None

    def say(words: str) -> None:
        nonlocal reader
        response = h.client.post("/webhooks/console", json={"from": "ana@laptop", "text": words},
                                 headers={"X-Console-Reader": reader} if reader else {})
        assert response.status_code == 202, response.get_data(as_text=True)
        reader = response.get_json().get("reader") or reader
        h.settle()

    say("ENCUESTA")
    status = "in_progress"
    for _ in range(40):
        with h.rt.engine.connect() as connection:
            status, question = connection.execute(text(
                "SELECT s.status, s.question FROM survey_sessions s JOIN contacts c ON c.id = s.contact_id "
                "WHERE c.channel = 'console' ORDER BY s.id DESC LIMIT 1")).one()
        if status != "in_progress":
            break
        asked = definition.question(question)
        say("Jalisco" if asked.type == "region" else "2" if asked.id == "age_band" else "1")
    assert status == "completed"
    assert h.count("SELECT count(*) FROM contacts WHERE channel = 'console' AND test") == 1
    assert published() == before
    with_tests = h.api(f"/api/v1/surveys/{SURVEY}/responses?include_tests=true").get_json()
    assert len(with_tests) == before[0] + 1  # kept, for whoever asks for test data by name
