"""Test support for the channel adapters: settings, the JSON case tables and a fake provider behind requests."""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

import requests
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict

from bots.base import Outgoing, SendResult
from service.config import Settings

BOTS = Path(__file__).resolve().parents[2] / "bots"


def load_table(relative: str) -> dict[str, Any]:
    """One of bots/*/testdata/*.json."""
    return json.loads((BOTS / relative).read_text(encoding="utf-8"))


def case_ids(table: dict[str, Any]) -> list[str]:
    return [case["label"] for case in table["cases"]]


def make_settings(*layers: dict[str, Any] | None) -> Settings:
    """Settings for tests: bare defaults, then each layer of overrides (a table's, then a case's)."""
    settings = Settings(
        database_url="sqlite://",
        redis_url=None,
        secret_key="test-secret-key-0123456789",
        data_dir=Path("/nonexistent/retorno-test"),
        public_url="https://retorno.example.org",
    )
    for layer in layers:
        if layer:
            settings = replace(settings, **layer)
    return settings


def outgoing(fields: dict[str, Any]) -> Outgoing:
    return Outgoing(**fields)


def check_result(result: SendResult, expected: dict[str, Any]) -> None:
    """The SendResult has every field the case lists."""
    assert isinstance(result, SendResult)
    actual = {name: getattr(result, name) for name in expected}
    assert actual == expected


@dataclass
class Recorded:
    request: requests.PreparedRequest
    timeout: Any

    def decoded(self) -> dict[str, Any]:
        """method, url and the body as form or JSON, plus basic auth: what the case tables describe."""
        request = self.request
        out: dict[str, Any] = {"method": request.method, "url": request.url}
        body = request.body or b""
        if isinstance(body, str):
            body = body.encode("utf-8")
        content_type = request.headers.get("Content-Type", "")
        if content_type.startswith("application/x-www-form-urlencoded"):
            pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, strict_parsing=True)
            assert len({name for name, _ in pairs}) == len(pairs), "repeated form fields"
            out["form"] = dict(pairs)
        elif content_type.startswith("application/json"):
            out["json"] = json.loads(body)
        authorization = request.headers.get("Authorization", "")
        if authorization.startswith("Basic "):
            out["auth"] = base64.b64decode(authorization[6:]).decode("utf-8").split(":", 1)
        return out


class FakeProvider(BaseAdapter):
    """A transport adapter that answers from a list of canned responses and records the requests."""

    def __init__(self, responses: list[dict[str, Any]]):
        super().__init__()
        self.responses = list(responses)
        self.requests: list[Recorded] = []

    def send(self, request, stream=False, timeout=None, verify=True, cert=None, proxies=None):
        self.requests.append(Recorded(request, timeout))
        assert self.responses, f"unexpected request {request.method} {request.url}"
        spec = self.responses.pop(0)
        if "exception" in spec:
            raise {
                "connection": requests.ConnectionError(
                    f"HTTPSConnectionPool: Max retries exceeded with url: {request.path_url} "
                    "(Caused by NewConnectionError: [Errno 111] Connection refused)"
                ),
                "timeout": requests.ReadTimeout("Read timed out. (read timeout=10)"),
            }[spec["exception"]]
        return self._response(request, spec)

    def close(self) -> None:
        pass

    @staticmethod
    def _response(request: requests.PreparedRequest, spec: dict[str, Any]) -> requests.Response:
        response = requests.Response()
        response.status_code = spec["status"]
        headers = CaseInsensitiveDict(spec.get("headers", {}))
        if "json" in spec:
            content = json.dumps(spec["json"]).encode("utf-8")
            headers.setdefault("Content-Type", "application/json")
        else:
            content = spec.get("text", "").encode("utf-8")
        response.headers = headers
        response._content = content
        response.encoding = "utf-8"
        response.url = request.url
        response.request = request
        return response


def fake_session(responses: list[dict[str, Any]]) -> tuple[requests.Session, FakeProvider]:
    """A real requests.Session whose every call goes to a FakeProvider."""
    session = requests.Session()
    session.trust_env = False
    provider = FakeProvider(responses)
    session.mount("https://", provider)
    session.mount("http://", provider)
    return session, provider


def check_requests(provider: FakeProvider, expected: list[dict[str, Any]]) -> None:
    """The provider got exactly the expected calls, each with the listed parts, and all responses were used."""
    actual = [recorded.decoded() for recorded in provider.requests]
    assert len(actual) == len(expected), actual
    for got, want in zip(actual, expected, strict=True):
        assert {name: got.get(name) for name in want} == want
    assert not provider.responses, "some canned responses were not used"
