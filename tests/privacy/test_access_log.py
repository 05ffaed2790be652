"""The web process's access log (service.access_log), attacked: a phone number in a URL, a Referer or a User-Agent,
in every spelling a person, a form or a URL encoder writes it, never reaches the log in clear."""

from __future__ import annotations

import http.client
import re
import signal
import subprocess
from urllib.parse import quote, quote_plus, unquote, unquote_plus

import pytest

from service.logs import scrub
from tests.processes import ROOT, free_port, service_env, stop, wait_healthy, web_command

NATIONAL = "5587654321"
"""The respondent's ten digits; every spelling below writes them."""


def written(national: str = NATIONAL) -> list[str]:
    """The ways people write a Mexican mobile number: with the country code or not, the old 1, any separators."""
    area, first, last = national[:2], national[2:6], national[6:]
    forms = []
    for country in ("+52", "52", "+521", "", "0052"):
        for sep in (" ", "-", ".", "", "  ", " - ", "_"):
            head = f"{country}{sep}" if country else ""
            forms.append(f"{head}{area}{sep}{first}{sep}{last}")
    forms += [f"+52 ({area}) {first} {last}", f"({area}) {first}-{last}", f"+52\u00a0{area}\u00a0{first}\u00a0{last}",
              f"whatsapp:+52{national}", f"tel:+52{national}", f"{area}.{first}.{last[:2]}.{last[2:]}"]
    return forms


def encodings(text: str) -> list[str]:
    """`text` as it may appear in a URL: as typed (when that is legal), percent-encoded, form-encoded, encoded twice,
    in lower-case hex."""
    once = quote(text, safe="")
    found = [once, quote_plus(text, safe=""), quote(once, safe=""), once.lower(), quote(text, safe=":")]
    if not re.search(r"[\s\u00a0]", text):
        found.append(text)
    return list(dict.fromkeys(found))


def leaks(log: str) -> list[str]:
    """Lines of `log` that still hold the number, after undoing every URL encoding and dropping all separators."""
    found = []
    for line in log.splitlines():
        decoded = unquote(unquote(unquote_plus(line)))
        if NATIONAL[2:] in re.sub(r"\D", "", decoded) or NATIONAL[2:] in re.sub(r"\D", "", line):
            found.append(line)
    return found


@pytest.mark.parametrize("spelling", written())
def test_scrub_removes_every_spelling_in_every_url_encoding(spelling):
    for encoded in encodings(spelling):
        for context in ("GET /webhooks/twilio/sms?From={} HTTP/1.1", "GET /api/v1/contacts/{}/x HTTP/1.1",
                        "Referer: https://x.example/?q={}&a=1", "{}"):
            line = context.format(encoded)
            assert not leaks(scrub(line)), (line, scrub(line))


@pytest.mark.parametrize("server", ["granian", "gunicorn"])
def test_the_web_servers_access_log_never_shows_a_number(sqlite_url, tmp_path, server):
    """The Procfile's web process (granian; gunicorn, the earlier one), its access log on standard output: requests
    whose path, query string, Referer and User-Agent carry the number in every spelling and encoding; the log has
    every request and not one number."""
    port = free_port()
    log = tmp_path / "access.log"
    env = service_env(sqlite_url, "", "http://127.0.0.1:9", f"http://127.0.0.1:{port}", RETORNO_LOG_LEVEL="DEBUG",
                      RETORNO_DATA_DIR=str(tmp_path / "data"))
    command = web_command(port, workers=2, threads=4, server=server)
    output = open(log, "wb")  # noqa: SIM115 - closed below
    web = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.DEVNULL,
                           start_new_session=True)
    sent = 0
    try:
        wait_healthy(f"http://127.0.0.1:{port}")
        for spelling in written():
            for encoded in encodings(spelling):
                for path in (f"/webhooks/twilio/sms?From={encoded}&Body=hola", f"/api/v1/surveys/{encoded}",
                             f"/healthz?to={encoded}", f"/dashboard/{encoded}/x"):
                    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                    connection.request("GET", path, headers={"Referer": f"https://x.example/?from={encoded}",
                                                             "User-Agent": f"curl/8 {encoded}"})
                    connection.getresponse().read()
                    connection.close()
                    sent += 1
    finally:
        stop(web, signal.SIGTERM)
        output.close()
    text = log.read_text(encoding="utf-8", errors="replace")
    assert text.count('"GET ') >= sent, "every request is in the access log"
    assert "[number]" in text
    found = leaks(text)
    assert not found, f"{len(found)} lines show the number, e.g. {found[:3]}"
