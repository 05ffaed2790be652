"""The web process's access log (service.access_log): one line per request, granian's format, nothing a client
wrote beyond the scrubbed request line, and never a reason for a request to fail."""

from __future__ import annotations

import os
import re

import pytest
from werkzeug.test import Client

from service.access_log import MAX_REQUEST_CHARS, AccessLog
from service.config import Settings

LINE = re.compile(r'\[\d{4}-\d\d-\d\d \d\d:\d\d:\d\d [+-]\d{4}\] (\S+) - "(.*)" (\d{3}) (\d+\.\d{3})')


def hello(environ, start_response):
    start_response("201 Created", [("Content-Type", "text/plain")])
    return [b"ok"]


def failing(environ, start_response):
    raise RuntimeError("the app failed")


@pytest.fixture
def pipe():
    read, write = os.pipe()
    yield read, write
    for fd in (read, write):
        try:
            os.close(fd)
        except OSError:
            pass


def lines(read: int) -> list[str]:
    os.set_blocking(read, False)
    try:
        return os.read(read, 1 << 20).decode().splitlines()
    except BlockingIOError:
        return []


def test_one_line_per_request_in_granians_format(pipe):
    read, write = pipe
    client = Client(AccessLog(hello, fd=write))
    response = client.post("/webhooks/twilio/sms?From=%2B5215512345678", data={"Body": "55 1234 5678"},
                           headers={"User-Agent": "x 5512345678", "Referer": "https://x/?n=5512345678"},
                           environ_base={"REMOTE_ADDR": "127.0.0.1"})
    assert response.status_code == 201
    [line] = lines(read)
    address, request, status, _ms = LINE.fullmatch(line).groups()
    assert (address, request, status) == ("127.0.0.1", "POST /webhooks/twilio/sms HTTP/1.1", "201")
    assert "5678" not in line, "no query string, header or body is written"


def test_the_request_line_is_scrubbed(pipe):
    read, write = pipe
    client = Client(AccessLog(hello, fd=write))
    client.get("/api/v1/contacts/+52%2055%201234%205678/x")
    client.get("/bot123456789:" + "A" * 35 + "/x")
    client.get("/" + "a" * 5000 + "/55 1234 5678")
    first, second, third = lines(read)
    assert "[number]" in first and "1234" not in first
    assert "[secret]" in second and "AAAA" not in second
    assert len(third) < MAX_REQUEST_CHARS + 100


def test_a_failing_app_is_logged_as_500_and_still_raises(pipe):
    read, write = pipe
    client = Client(AccessLog(failing, fd=write))
    with pytest.raises(RuntimeError):
        client.get("/x")
    [line] = lines(read)
    assert LINE.fullmatch(line).group(3) == "500"


def test_a_closed_log_never_fails_a_request(pipe):
    read, write = pipe
    os.close(read)  # a reader gone: writing raises BrokenPipeError
    assert Client(AccessLog(hello, fd=write)).get("/x").status_code == 201
    os.close(write)  # the descriptor itself gone
    assert Client(AccessLog(hello, fd=write)).get("/x").status_code == 201


@pytest.mark.parametrize(("value", "on"), [(None, True), ("on", True), ("1", True), ("off", False),
                                           ("false", False), ("0", False), ("no", False)])
def test_retorno_access_log_turns_it_off(tmp_path, value, on):
    env = {"RETORNO_DATA_DIR": str(tmp_path)}
    if value is not None:
        env["RETORNO_ACCESS_LOG"] = value
    assert Settings.from_env(env).access_log is on


def test_the_app_logs_its_webhooks_and_pages_when_asked(sqlite_url, providers, tmp_path, pipe):
    """RETORNO_ACCESS_LOG on (a web process's default): the fast path's webhooks and Flask's routes alike."""
    from tests.support import Harness

    read, write = pipe
    harness = Harness(sqlite_url, providers, tmp_path, access_log=True)
    try:
        assert isinstance(harness.app.wsgi_app, AccessLog)
        harness.app.wsgi_app.fd = write
        assert harness.sms("+5215512345678", "hola").status_code == 200
        assert harness.client.get("/healthz").status_code == 200
        assert [LINE.fullmatch(line).group(2, 3) for line in lines(read)] == [
            ("POST /webhooks/twilio/sms HTTP/1.1", "200"), ("GET /healthz HTTP/1.1", "200")]
    finally:
        harness.close()


def test_in_process_apps_write_none_by_default(sqlite_url, providers, tmp_path):
    from tests.support import Harness

    harness = Harness(sqlite_url, providers, tmp_path)
    try:
        assert not isinstance(harness.app.wsgi_app, AccessLog)
    finally:
        harness.close()
