"""One Retorno (SQLite, fake providers), one app server and one Chromium for the whole module: the console's tests
share them, so each browser test costs a page, not a browser."""

from __future__ import annotations

import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"]
VIEWPORTS = {"desktop": {"width": 1280, "height": 800}, "phone": {"width": 390, "height": 844}}


@dataclass
class Console:
    h: Any
    base: str
    browser: Any
    shots: Path

    def page(self, viewport: str = "desktop", language: str = "es", token: str | None = None):
        """A new page logged in to /staff with the staff token (or `token`), in `language`."""
        locale = "es-MX" if language == "es" else "en-US"
        context = self.browser.new_context(viewport=VIEWPORTS[viewport], locale=locale)
        page = context.new_page()
        page.goto(f"{self.base}/staff/login?lang={language}")
        page.fill("#token", token or self.h.staff_token)
        with page.expect_navigation():
            page.click("button[type=submit]")
        return page

    def shot(self, page, name: str) -> Path:
        path = self.shots / f"{name}.png"
        page.screenshot(path=str(path), full_page=True)
        return path


@pytest.fixture(scope="module")
def console(request, sqlite_template, tmp_path_factory):
    """SQLite (the pages' SQL is the shared functions', tested on both); RETORNO_STAFF_DB=postgresql for PostgreSQL."""
    if not shutil.which(CHROMIUM):
        pytest.fail("Debian's chromium is required (apt-get install -y chromium; .ci/run installs it)")
    from playwright.sync_api import sync_playwright
    from werkzeug.serving import make_server

    from tests.fake_providers import FakeProviders
    from tests.support import Harness

    folder = tmp_path_factory.mktemp("staff")
    if os.environ.get("RETORNO_STAFF_DB") == "postgresql":
        from tests.support import truncate_all

        url = request.getfixturevalue("postgres_url")
        truncate_all(url)
    else:
        shutil.copy(sqlite_template, folder / "retorno.sqlite3")
        url = f"sqlite:///{folder / 'retorno.sqlite3'}"
    providers = FakeProviders().start()
    harness = Harness(url, providers, folder)
    server = make_server("127.0.0.1", 0, harness.app, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    shots = Path(os.environ.get("RETORNO_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    shots.mkdir(parents=True, exist_ok=True)
    try:
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
            try:
                yield Console(harness, f"http://127.0.0.1:{server.server_port}", browser, shots)
            finally:
                browser.close()
    finally:
        server.shutdown()
        harness.close()
        providers.stop()
    print(f"staff console screenshots: {shots}")


@pytest.fixture(autouse=True)
def _installed(request):
    """The shared runtime is the process's for each test that uses it (the suite's autouse fixture resets it)."""
    if "console" in request.fixturenames:
        from service import runtime

        runtime.install(request.getfixturevalue("console").h.rt)
    yield
