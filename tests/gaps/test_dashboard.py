"""The analysts' dashboard: token login, filters, downloads; and the real page in headless Chromium."""

from __future__ import annotations

import shutil
import threading

import pytest

from tests.gaps import synthetic

SURVEY = "reintegracion-mx"
PLAN = [("01", True, 30), ("01", False, 25), ("19", True, 40), ("19", False, 12), ("14", True, 6),
        ("09", False, 20), ("15", True, 35), ("15", False, 33), ("20", True, 18), ("20", False, 4)]
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"]


@pytest.fixture
def h(sqlite_url, providers, tmp_path):
    from tests.support import Harness

    harness = Harness(sqlite_url, providers, tmp_path)
    definition = harness.rt.catalog.current(SURVEY)
    synthetic.insert(harness.rt.engine, definition, synthetic.crowd(definition, PLAN))
    yield harness
    harness.close()


def test_login_with_a_token_and_the_page_it_shows(h):
    refused = h.client.get("/dashboard")
    assert refused.status_code == 401 and b'name="token"' in refused.data
    assert h.client.post("/dashboard", data={"token": "rt_wrong"}).status_code == 401
    logged_in = h.client.post("/dashboard", data={"token": h.analyst_token})
    assert logged_in.status_code == 303
    cookie = logged_in.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert h.analyst_token not in cookie and "Secure" in cookie  # a session id, never the token; HTTPS public URL
    session_id = cookie.split(";")[0].split("=", 1)[1]
    page = h.client.get("/dashboard?dimension=economic&group=returned")
    assert page.status_code == 200
    html = page.get_data(as_text=True)
    assert "<svg" in html and html.count('class="region"') == 64 and 'id="cells"' in html
    assert "Dimensión económica" in html and "Nuevo León" in html
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert "+52" not in html and "syn0000" not in html  # no contact, no respondent
    download = h.client.get("/dashboard/export?survey=reintegracion-mx&format=csv&dimension=economic")
    assert download.status_code == 200 and download.mimetype == "text/csv"
    assert h.client.get("/dashboard/export?survey=reintegracion-mx&format=xls").status_code == 400
    assert h.client.post("/dashboard/logout").status_code == 303
    h.client.set_cookie("retorno_session", session_id, path="/dashboard")  # kept by a stolen copy: revoked
    assert h.client.get("/dashboard").status_code == 401
    assert h.client.get("/dashboard/export?survey=reintegracion-mx&format=csv").status_code == 401
    # a bearer token works too (scripts), staff as well as analysts
    assert h.client.get("/dashboard", headers={"Authorization": f"Bearer {h.staff_token}"}).status_code == 200


def test_dashboard_in_headless_chromium(h, tmp_path):
    if not shutil.which(CHROMIUM):
        pytest.fail("Debian's chromium is required (apt-get install -y chromium; .ci/run installs it)")
    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, h.app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    screenshot = tmp_path / "dashboard.png"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
            try:
                stranger = browser.new_page()
                response = stranger.goto(f"{base}/dashboard")
                assert response.status == 401
                assert stranger.locator("svg").count() == 0 and stranger.locator("input[name=token]").count() == 1
                stranger.fill("input[name=token]", "rt_not-a-token")
                stranger.click("button[type=submit]")
                assert stranger.locator(".error").is_visible()

                page = browser.new_page(viewport={"width": 1100, "height": 1400})
                page.goto(f"{base}/dashboard?lang=es")  # else the browser's language (English here)
                page.fill("input[name=token]", h.analyst_token)
                page.click("button[type=submit]")
                page.wait_for_selector("#map svg")
                assert page.locator("#map svg g.region").count() == 32
                assert "Reintegración en general" in page.locator("#map svg").inner_html()
                rows = page.locator("#cells tbody tr")
                assert rows.count() > 10
                # sort by n, descending: the national row (68+...) first among published cells
                n_header = page.locator("#cells thead th", has_text="n").first
                n_header.click()
                n_header.click()
                assert n_header.get_attribute("aria-sort") == "descending"
                first_n = int(rows.nth(0).locator("td").nth(3).inner_text())
                second_n = int(rows.nth(1).locator("td").nth(3).inner_text())
                assert first_n >= second_n
                # filters: a dimension, then a group
                with page.expect_navigation():
                    page.select_option("#f-dimension", "economic")
                assert "Dimensión económica" in page.locator("#map svg").inner_html()
                with page.expect_navigation():
                    page.select_option("#f-group", "returned")
                assert page.locator("#map svg g.region").count() == 64
                hatched = page.locator("#map svg g.region path[fill='url(#hatch)']").count()
                assert hatched > 0  # Oaxaca's 4 community members, and what protects them
                tooltip = page.locator("#map svg g.region[data-code='19'] title").first.text_content()
                assert "Nuevo León" in tooltip
                page.screenshot(path=str(screenshot), full_page=True)
            finally:
                browser.close()
    finally:
        server.shutdown()
    assert screenshot.stat().st_size > 20_000
    print(f"dashboard screenshot: {screenshot}")


def test_dashboard_on_a_phone_shows_words_not_codes_and_pages_its_table(h, tmp_path):
    """390x844: the page is no wider than the phone (the table scrolls within itself), the map fits, question texts
    and choice labels replace codes, the table filters and pages, and each column is explained."""
    if not shutil.which(CHROMIUM):
        pytest.fail("Debian's chromium is required (apt-get install -y chromium; .ci/run installs it)")
    from playwright.sync_api import expect, sync_playwright
    from werkzeug.serving import make_server

    server = make_server("127.0.0.1", 0, h.app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
            try:
                for name, viewport in (("phone", {"width": 390, "height": 844}),
                                       ("desktop", {"width": 1280, "height": 800})):
                    page = browser.new_page(viewport=viewport)
                    page.goto(f"{base}/dashboard?lang=es")
                    page.fill("input[name=token]", h.analyst_token)
                    page.click("button[type=submit]")
                    page.wait_for_selector("#map svg")
                    with page.expect_navigation():
                        page.select_option("#f-group", "returned")
                    width = viewport["width"]
                    assert page.evaluate("document.scrollingElement.scrollWidth") <= width
                    assert page.locator("#map").bounding_box()["width"] <= width  # a wider map scrolls within
                    visible = page.locator("body").inner_text() + page.locator("#map svg").text_content()
                    for code in ("income_covers", "returnee", "community", "returned"):
                        assert code not in visible, code
                    assert "¿Retornó" in page.locator("#f-group option:checked").inner_text() or \
                        page.locator("#f-group option:checked").inner_text() != "returned"
                    rows = page.locator("#cells tbody tr")
                    total = rows.count()
                    assert total > 50
                    assert page.locator("#cells tbody tr:visible").count() == 50
                    expect(page.locator("#cells-showing")).to_contain_text(f"1–50 de {total}")
                    page.click("#cells-next")
                    expect(page.locator("#cells-showing")).to_contain_text(f"51–{min(100, total)} de {total}")
                    page.fill("#cells-filter", "nuevo leon")
                    shown = page.locator("#cells tbody tr:visible")
                    assert 0 < shown.count() < 50
                    assert all("Nuevo León" in text for text in shown.all_inner_texts())
                    page.fill("#cells-filter", "")
                    assert page.locator("#cells thead th[title]").count() == page.locator("#cells thead th").count()
                    regions = page.locator("#map svg g.region")
                    titled = page.locator("#map svg g.region > title")
                    assert regions.count() == titled.count() > 0  # each region says its figure in words too
                    page.click("#columns-help summary")
                    expect(page.locator("#columns-help dl")).to_contain_text("Intervalo de confianza")
                    if name == "phone":
                        scroller = page.locator("#cells-scroll")
                        assert scroller.evaluate("e => e.scrollWidth > e.clientWidth")  # scrolls within itself
                    page.screenshot(path=str(tmp_path / f"dashboard-{name}.png"), full_page=True)
                    page.close()
            finally:
                browser.close()
    finally:
        server.shutdown()
    print(f"dashboard screenshots: {tmp_path}")
