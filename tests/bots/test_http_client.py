"""The lean HTTP client of the senders: what it sends is what requests sends, and it fails the way requests does."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from bots._http import Client, json_object, transport_failure
from bots.twilio.sender import TwilioSender
from tests.bots.fakes import make_settings, outgoing

FORM = [("To", "+525512345678"), ("From", "+15005550006"), ("Body", "¿Tiene trabajo?\n1 Sí & 2 No"), ("Body", "x=y")]


class _Recorder(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.requests: list[dict] = []
        self.connections = 0
        self.reply: tuple[int, dict[str, str], bytes] = (201, {"Content-Type": "application/json"}, b'{"sid": "SM1"}')
        self.delay = 0.0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: _Recorder

    def setup(self) -> None:
        super().setup()
        self.server.connections += 1

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self.server.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
        time.sleep(self.server.delay)
        status, headers, content = self.server.reply
        self.send_response(status)
        for name, value in {**headers, "Content-Length": str(len(content))}.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(content)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server() -> Iterator[_Recorder]:
    recorder = _Recorder()
    thread = threading.Thread(target=recorder.serve_forever, daemon=True)
    thread.start()
    yield recorder
    recorder.shutdown()
    recorder.server_close()


def _plain_requests() -> requests.Session:
    session = requests.Session()
    session.trust_env = False
    return session


@pytest.mark.parametrize("kind", ["form", "json"])
def test_a_post_arrives_as_requests_would_send_it(server, kind):
    options = {"data": FORM} if kind == "form" else {"json": {"chat_id": 7, "text": "¿Sí?", "reply_markup": None}}
    url = f"{server.url}/2010-04-01/Accounts/AC1/Messages.json?x=1&y=%20"
    for http in (_plain_requests(), Client()):
        response = http.post(url, auth=("AC1", "token"), headers={"Accept": "application/json"}, timeout=(3, 5),
                             **options)
        assert (response.status_code, response.json(), response.headers.get("content-type")) == (
            201, {"sid": "SM1"}, "application/json")
    by_requests, by_client = server.requests
    assert by_client["path"] == by_requests["path"]
    for header in ("Content-Type", "Authorization", "Accept", "Content-Length"):
        assert by_client["headers"][header] == by_requests["headers"][header]
    assert by_client["body"] == by_requests["body"]


def test_one_connection_is_kept_for_many_posts_and_replaced_when_the_server_closes_it(server):
    client = Client()
    for _ in range(3):
        assert client.post(server.url + "/a", data=FORM).status_code == 201
    assert server.connections == 1
    server.reply = (200, {"Connection": "close"}, b"{}")
    client.post(server.url + "/a", data=FORM)
    server.reply = (200, {}, b"{}")
    client.post(server.url + "/a", data=FORM)
    assert server.connections == 2
    assert len(server.requests) == 5


def test_a_kept_connection_the_server_dropped_while_idle_is_replaced_without_sending_twice():
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    seen: list[bytes] = []

    def serve() -> None:
        for _ in range(2):
            conn, _ = listener.accept()
            seen.append(conn.recv(65536))
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
            conn.close()  # without saying Connection: close

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    client = Client()
    assert client.post(f"http://127.0.0.1:{port}/", data=FORM).status_code == 200
    time.sleep(0.2)
    assert client.post(f"http://127.0.0.1:{port}/", data=FORM).status_code == 200
    thread.join(5)
    listener.close()
    assert len(seen) == 2


def test_failures_are_requests_exceptions_that_senders_retry(server):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    with pytest.raises(requests.ConnectionError) as refused:
        Client().post(f"http://127.0.0.1:{closed_port}/", data=FORM)
    server.delay = 1.0
    with pytest.raises(requests.ReadTimeout) as slow:
        Client().post(server.url + "/", data=FORM, timeout=(1, 0.2))
    for error in (refused.value, slow.value):
        result = transport_failure(error)
        assert result.retry and not result.ok


def test_a_body_that_is_not_json_reads_as_no_object(server):
    server.reply = (502, {"Retry-After": "7"}, b"<html>Bad gateway</html>")
    response = Client().post(server.url + "/", data=FORM)
    assert json_object(response) == {}
    assert response.headers.get("retry-after") == "7" and "Bad gateway" in response.text


def test_the_twilio_sender_sends_through_the_client(server):
    settings = make_settings({"twilio_api_base": server.url, "twilio_account_sid": "AC1", "twilio_auth_token": "t",
                              "twilio_from_number": "+15005550006"})
    result = TwilioSender(settings, Client()).send(outgoing({"id": 1, "channel": "sms", "address": "+525512345678",
                                                             "body": "Hola"}))
    assert result.ok and result.provider_id == "SM1"
    [sent] = server.requests
    assert sent["path"].endswith("/Messages.json") and b"Body=Hola" in sent["body"]


def test_a_host_the_environment_sends_through_a_proxy_is_called_through_requests(server, monkeypatch):
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    monkeypatch.setenv("HTTP_PROXY", server.url)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    client = Client()
    assert client.post("http://provider.invalid/Messages.json", data=FORM).status_code == 201
    assert client.post(server.url + "/direct", data=FORM).status_code == 201
    assert [r["path"] for r in server.requests] == ["http://provider.invalid/Messages.json", "/direct"]
