"""The staff console's pages in Chromium at 1280x800 and 390x844: tokens, surveys, contacts, campaigns, incentives;
who may use them; CSRF; and that the console's own doings never become data."""

from __future__ import annotations

import io
import re

from playwright.sync_api import expect

from service import campaigns
from service import runtime as runtimes
from service.contacts import Report, load, read
from surveys.loader import bundled_files
from workers import campaigns as sender

SURVEY = "reintegracion-mx"


def audited(h, action: str) -> int:
    return h.count("SELECT count(*) FROM audit_log WHERE action = :action", action=action)


def people(h, rows: list[str], tag: str) -> None:
    report = Report()
    load(h.rt, read(io.StringIO("\n".join(["phone,language", *rows]) + "\n"), "MX", [tag], report), report)
    assert not report.problems, report.problems


def test_only_staff_get_in_and_every_form_needs_its_csrf_token(console):
    h = console.h
    assert h.client.get("/staff").status_code == 401
    assert h.client.post("/staff/login", data={"token": h.analyst_token}).status_code == 403
    assert h.client.post("/staff/login", data={"token": "rt_nope"}).status_code == 401
    assert h.client.get("/staff", headers={"Authorization": f"Bearer {h.analyst_token}"}).status_code == 403
    client = h.app.test_client()
    logged_in = client.post("/staff/login", data={"token": h.staff_token})
    assert logged_in.status_code == 303
    cookie = logged_in.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/staff" in cookie
    assert h.staff_token not in cookie
    page = client.get("/staff/tokens")
    assert page.status_code == 200 and "connect-src 'self'" in page.headers["Content-Security-Policy"]
    csrf = re.search(r'name="csrf-token" content="([0-9a-f]+)"', page.get_data(as_text=True)).group(1)
    form = {"role": "analyst", "name": "forged"}
    assert client.post("/staff/tokens", data=form).status_code == 403  # no token
    assert client.post("/staff/tokens", data={**form, "csrf": "0" * 64}).status_code == 403
    assert client.post("/staff/tokens", data={**form, "csrf": csrf},
                       headers={"Origin": "https://evil.example"}).status_code == 403
    assert h.count("SELECT count(*) FROM api_tokens WHERE name = 'forged'") == 0
    assert client.post("/staff/tokens", data={**form, "csrf": csrf}).status_code == 200
    assert h.count("SELECT count(*) FROM api_tokens WHERE name = 'forged'") == 1
    assert client.get("/dashboard").status_code == 200  # the same session: no second login
    assert client.post("/staff/logout", data={"csrf": csrf}).status_code == 303
    assert client.get("/staff/tokens").status_code == 401


def test_a_token_created_in_the_console_is_shown_once_and_stops_working_when_revoked(console):
    h = console.h
    page = console.page("desktop", "en")
    page.goto(f"{console.base}/staff/tokens")
    page.fill("#t-name", "survey-bot")
    page.select_option("#t-role", "analyst")
    page.fill("#t-expires", "30d")
    with page.expect_navigation():
        page.click("form[action='/staff/tokens'] button[type=submit]")
    token = page.input_value("#new-token")
    assert token.startswith("rt_")
    assert h.api("/api/v1/surveys", token).status_code == 200
    console.shot(page, "tokens-created-desktop")
    page.goto(f"{console.base}/staff/tokens")
    assert token not in page.content()  # shown once
    row = page.locator("#token-list tr", has_text="survey-bot")
    with page.expect_navigation():
        row.locator("button", has_text="Revoke").click()
    expect(page.locator("#token-list tr", has_text="survey-bot")).to_contain_text("revoked")
    assert h.api("/api/v1/surveys", token).status_code == 401
    assert audited(h, "token.created") >= 1 and audited(h, "token.revoked") >= 1
    page.context.close()
    phone = console.page("phone", "es")
    phone.goto(f"{console.base}/staff/tokens")
    assert phone.evaluate("document.scrollingElement.scrollWidth") <= 390  # the table scrolls within itself
    console.shot(phone, "tokens-phone")
    phone.context.close()


BROKEN = """id: reintegracion-mx
version: 2
title: {es: Prueba}
languages: [es]
questions:
  - id: edad
    type: colour
    text: {es: "¿Edad?"}
  - id: edad
    type: integer
"""


def test_surveys_check_broken_yaml_preview_publish_and_diff(console):
    h = console.h
    page = console.page("desktop", "es")
    page.goto(f"{console.base}/staff/surveys")
    expect(page.locator("#survey-list")).to_contain_text("v2")
    page.fill("#yaml-source", BROKEN)
    with page.expect_navigation():
        page.click("form[action='/staff/surveys/check'] button[type=submit]")
    problems = page.locator("ol.problems li")
    assert problems.count() >= 1
    assert re.search(r"línea \d+", problems.first.inner_text())
    assert page.locator("table.source tr.bad").count() >= 1
    console.shot(page, "surveys-problems-desktop")

    source = bundled_files()[0].read_text(encoding="utf-8")
    edited = source.replace("¿Qué le hace falta a su comunidad?", "¿Qué necesita su comunidad?", 1)
    assert edited != source
    page.fill("#yaml-source", edited)
    with page.expect_navigation():
        page.click("form[action='/staff/surveys/check'] button[type=submit]")
    expect(page.locator("#review-heading")).to_have_text("La encuesta es válida.")
    with page.expect_navigation():
        page.click("form[action='/staff/simulator'] button[type=submit]")
    expect(page.locator("#simulator")).to_be_visible()
    page.fill("#sim-text", "hola")
    page.press("#sim-text", "Enter")
    expect(page.locator("#sim-log li.out").first).to_contain_text("Acepta")
    worker = runtimes.build(h.settings)  # another process (a worker) that read the catalog before the publication
    assert worker.catalog.current(SURVEY).version == 2
    page.goto(f"{console.base}/staff/surveys")
    page.fill("#yaml-source", edited)
    with page.expect_navigation():
        page.click("form[action='/staff/surveys/check'] button[type=submit]")
    with page.expect_navigation():
        page.click("#publish")
    expect(page.locator(".notice")).to_contain_text("reintegracion-mx versión 3")
    assert h.rt.catalog.current(SURVEY).version == 3
    worker.catalog.refresh(force=True)  # what it does by itself every REFRESH_SECONDS
    assert worker.catalog.current(SURVEY).version == worker.catalog.for_keyword("ENCUESTA").version == 3
    worker.engine.dispose()
    assert audited(h, "survey.published") >= 1
    with page.expect_navigation():
        page.click("#survey-list a:has-text('Diferencias')")
    diff = page.locator("#diff")
    expect(diff.locator(".added")).to_contain_text(["+version: 3", "¿Qué necesita su comunidad?"])
    expect(diff.locator(".removed")).to_contain_text(["-version: 2", "¿Qué le hace falta a su comunidad?"])
    console.shot(page, "surveys-diff-desktop")
    page.context.close()
    phone = console.page("phone", "es")
    phone.goto(f"{console.base}/staff/surveys")
    phone.fill("#yaml-source", BROKEN)
    with phone.expect_navigation():
        phone.click("form[action='/staff/surveys/check'] button[type=submit]")
    assert phone.locator("ol.problems li").count() >= 1
    assert phone.evaluate("document.scrollingElement.scrollWidth") <= 390
    console.shot(phone, "surveys-problems-phone")
    phone.context.close()


def test_contacts_upload_reports_bad_rows_then_look_up_and_erase(console, tmp_path):
    h = console.h
    csv_file = tmp_path / "contactos.csv"
    csv_file.write_text("teléfono,idioma,etiquetas\n+52 55 1234 0001,es,piloto\n5512340002,en,piloto\n"
                        "no es un número,es,piloto\n+52 55 1234 0003,xx,piloto\n", encoding="utf-8")
    page = console.page("desktop", "es")
    page.goto(f"{console.base}/staff/contacts")
    page.set_input_files("#csv-file", str(csv_file))
    page.fill("#csv-tags", "marzo")
    page.click("#csv-form button[type=submit]")
    report = page.locator("#import-report")
    expect(report).to_be_visible()
    expect(page.locator("#bad-rows li").first).to_contain_text("línea 4")
    assert page.locator("#csv-progress").get_attribute("value") == "100"
    expect(page.locator("#by-tag")).to_contain_text("marzo")
    expect(page.locator("#by-channel")).to_contain_text("sms")
    assert "1234 0001" not in page.content() and "551234" not in page.content()
    console.shot(page, "contacts-import-desktop")
    assert audited(h, "contacts.imported") >= 1

    page.fill("#l-phone", "55 1234 0001")
    with page.expect_navigation():
        page.click("form[action='/staff/contacts/lookup'] button[type=submit]")
    person = page.locator(".person")
    expect(person).to_have_count(1)
    respondent = person.locator("h3 code").inner_text()
    assert "1234" not in page.content()  # the pseudonymous id, never the number
    assert audited(h, "contact.looked_up") >= 1
    page.fill("#erase-confirm", "BORRAR")
    with page.expect_navigation():
        page.click("#erase-form button[type=submit]")
    expect(page.locator(".notice")).to_contain_text(respondent)
    assert h.count("SELECT count(*) FROM contacts WHERE public_id = :p", p=respondent) == 0
    assert audited(h, "contact.erased") >= 1
    page.context.close()
    phone = console.page("phone", "es")
    phone.goto(f"{console.base}/staff/contacts")
    assert phone.evaluate("document.scrollingElement.scrollWidth") <= 390
    console.shot(phone, "contacts-phone")
    phone.context.close()


def test_a_campaign_is_created_started_and_paused_and_its_funnel_moves(console):
    from dataclasses import replace

    h = console.h
    h.rt.settings = replace(h.rt.settings, sender_rate=100.0)
    phones = [f"+5255{20000000 + i:08d}" for i in range(4)]
    people(h, [f"{p},es" for p in phones], "campana")
    page = console.page("desktop", "es")
    page.goto(f"{console.base}/staff/campaigns")
    page.select_option("#c-survey", SURVEY)
    page.fill("#c-tag", "campana")
    page.fill("#c-quiet", "none")
    page.fill("#c-rate", "50")
    with page.expect_navigation():
        page.click("form[action='/staff/campaigns'] button[type=submit]")
    assert "/staff/campaigns/" in page.url
    expect(page.locator("#campaign-status")).to_have_attribute("data-status", "draft")
    with page.expect_navigation():
        page.click("#campaign-actions button:has-text('Iniciar')")
    expect(page.locator("#campaign-status")).to_have_attribute("data-status", "running")
    for _ in range(6):
        sender.maintain()
        sender.tick(0)
        h.settle()
        if len([m for m in h.providers.messages if m.to in phones]) == 4:
            break
        h.clock.advance(seconds=2)
    assert len([m for m in h.providers.messages if m.to in phones]) == 4
    h.sms(phones[0], "si")
    h.sms(phones[0], "2")
    h.sms(phones[1], "no")
    lost = next(m for m in h.providers.messages if m.to == phones[3])
    assert h.status(lost.provider_id, "undelivered", "30003").status_code < 300  # Twilio: unreachable handset
    h.settle()
    invited = page.locator("#funnel-chart tr[data-key='invited'] td.value")
    expect(invited).to_have_text("4", timeout=8000)  # the live funnel caught up without a reload
    expect(page.locator("#funnel-chart tr[data-key='started'] td.value")).to_have_text("2")
    expect(page.locator("#drop-chart tbody tr").first).to_be_visible()
    expect(page.locator("#failure-list tbody tr").first).to_contain_text("30003")
    console.shot(page, "campaign-running-desktop")
    with page.expect_navigation():
        page.click("#campaign-actions button:has-text('Pausar')")
    expect(page.locator("#campaign-status")).to_have_attribute("data-status", "paused")
    assert audited(h, "campaign.created") >= 1 and audited(h, "campaign.started") >= 1
    assert audited(h, "campaign.paused") >= 1
    campaign_url = page.url.split("?")[0]
    page.context.close()
    phone = console.page("phone", "en")
    phone.goto(campaign_url)
    expect(phone.locator("#campaign-status")).to_have_attribute("data-status", "paused")
    assert phone.evaluate("document.scrollingElement.scrollWidth") <= 390
    console.shot(phone, "campaign-phone")
    with phone.expect_navigation():
        phone.click("#campaign-actions button:has-text('Cancel')")
    expect(phone.locator("#campaign-status")).to_have_attribute("data-status", "finished")
    assert audited(h, "campaign.cancelled") == 1
    phone.goto(f"{console.base}/staff/campaigns")
    assert phone.evaluate("document.scrollingElement.scrollWidth") <= 390
    console.shot(phone, "campaigns-phone")
    phone.context.close()
    assert campaigns.get(h.rt, int(campaign_url.rsplit("/", 1)[1])).status == "finished"


def complete_by_sms(h, phone: str) -> None:
    """A real respondent completes the bundled survey by SMS (so a credit is owed)."""
    definition = h.rt.catalog.current(SURVEY)
    h.sms(phone, "ENCUESTA")
    h.settle()
    for _ in range(40):
        with h.rt.sessions() as session:
            from sqlalchemy import text

            row = session.execute(text("SELECT s.status, s.question FROM survey_sessions s JOIN contacts c "
                                       "ON c.id = s.contact_id ORDER BY s.id DESC LIMIT 1")).first()
        if row.status != "in_progress":
            break
        question = definition.question(row.question)
        h.sms(phone, "Jalisco" if question.type == "region" else "2" if question.id == "age_band" else "1")
        h.settle()
    assert row.status == "completed", row


def test_incentives_by_state_failures_retry_owed_export_and_mark_paid(console, tmp_path):
    h = console.h
    complete_by_sms(h, "+525530000001")
    complete_by_sms(h, "+525530000002")
    with h.rt.engine.connect() as connection:
        ids = [row[0] for row in connection.exec_driver_sql("SELECT id FROM incentives ORDER BY id")]
    assert len(ids) >= 2
    with h.rt.engine.begin() as connection:  # the provider refused the first one (as Reloadly does, with a reason)
        connection.exec_driver_sql("UPDATE incentives SET status = 'failed', error = 'INSUFFICIENT_BALANCE' "
                                   f"WHERE id = {ids[0]}")
    page = console.page("desktop", "es")
    page.goto(f"{console.base}/staff/incentives")
    expect(page.locator("#by-state")).to_contain_text("failed")
    expect(page.locator("#failures")).to_contain_text("INSUFFICIENT_BALANCE")
    assert "+52" not in page.content()
    console.shot(page, "incentives-desktop")
    page.check(f"#retry-{ids[0]}")
    with page.expect_navigation():
        page.click("form[action='/staff/incentives/retry'] .row button:not([name])")
    expect(page.locator(".notice")).to_contain_text("1")
    assert h.count(f"SELECT count(*) FROM incentives WHERE id = {ids[0]} AND attempts = 0 "
                   "AND next_attempt_at IS NOT NULL") == 1  # tried again from its first attempt
    with page.expect_download() as download:
        page.click("a[href='/staff/incentives/owed.csv']")
    owed = download.value.path().read_text(encoding="utf-8")
    assert owed.startswith("incentive_id,") and "+525530000002" in owed
    assert audited(h, "incentives.exported") >= 1
    paid = tmp_path / "pagados.csv"
    paid.write_text(f"incentive_id,reference\n{ids[1]},RECARGA-77\nabc,\n", encoding="utf-8")
    page.set_input_files("#paid-file", str(paid))
    with page.expect_navigation():
        page.click("form[action='/staff/incentives/paid'] button[type=submit]")
    expect(page.locator(".notice")).to_contain_text("1 paid")
    expect(page.locator("ul.problems")).to_contain_text("line 3")
    assert h.count(f"SELECT count(*) FROM incentives WHERE id = {ids[1]} AND status = 'succeeded'") == 1
    assert audited(h, "incentives.retried") >= 1 and audited(h, "incentives.marked_paid") >= 1
    page.context.close()
    phone = console.page("phone", "es")
    phone.goto(f"{console.base}/staff/incentives")
    assert phone.evaluate("document.scrollingElement.scrollWidth") <= 390
    console.shot(phone, "incentives-phone")
    phone.context.close()


UNLABELLED = """() => Array.from(document.querySelectorAll('input, select, textarea, button'))
  .filter(e => e.type !== 'hidden' && !e.hidden && e.getAttribute('aria-hidden') !== 'true')
  .filter(e => !((e.labels && e.labels.length) || e.getAttribute('aria-label') || e.getAttribute('aria-labelledby')
                 || (e.tagName === 'BUTTON' && e.textContent.trim())))
  .map(e => e.outerHTML.slice(0, 120))"""


def test_accessibility_labels_keyboard_and_not_colour_alone(console):
    pages = ["/staff", "/staff/simulator?channel=telegram", "/staff/surveys", "/staff/contacts", "/staff/campaigns",
             "/staff/incentives", "/staff/tokens", "/staff/audit"]
    page = console.page("phone", "es")
    for path in pages:
        page.goto(f"{console.base}{path}")
        assert page.evaluate(UNLABELLED) == [], path
        assert page.evaluate("document.scrollingElement.scrollWidth") <= 390, path
        assert page.locator("h1").count() == 1, path
    # keyboard alone: the skip link first, then into the simulator; Telegram's buttons take Enter
    page.goto(f"{console.base}/staff/simulator?channel=telegram&survey_language=es")
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.className") == "skip"
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "sim-text":
            break
    assert page.evaluate("document.activeElement.id") == "sim-text"
    page.keyboard.type("hola")
    page.keyboard.press("Enter")
    expect(page.locator("#sim-log button.choice").first).to_be_visible()
    page.keyboard.press("Shift+Tab")
    for _ in range(10):
        if page.evaluate("document.activeElement.getAttribute('data-button')"):
            break
        page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.getAttribute('data-button')")
    page.keyboard.press("Enter")
    expect(page.locator("#sim-log li.in")).to_have_count(2)
    page.goto(f"{console.base}/staff/audit")  # what staff did, the simulation included, and never a number
    expect(page.locator("#audit-list")).to_contain_text("survey.simulated")
    expect(page.locator("#audit-list")).to_contain_text("contact.erased")
    assert not re.search(r"\+52\d{6,}", page.content())
    console.shot(page, "audit-phone")
    # colour never alone: every bar has its number, every bad line its mark, every diff line its sign
    campaign = page.context.new_page()
    campaign.goto(f"{console.base}/staff/campaigns")
    links = campaign.locator("#campaign-list a")
    if links.count():
        with campaign.expect_navigation():
            links.first.click()
        for row in campaign.locator("table.chart tbody tr").all():
            assert re.search(r"\d", row.locator("td.value").inner_text())
    page.context.close()
