"""The two hot webhooks (Twilio SMS, Telegram) answered straight from the WSGI environ, without Flask.

A valid request is verified, parsed and stored by the same functions as the Flask views (service.webhooks) and gets
the same answer as the view would give, without a request context, routing or werkzeug's form parser. Everything
else goes to Flask unchanged: other routes and methods, debug mode, bodies without a plain Content-Length or over
MAX_CONTENT_LENGTH, and every request the fast path refuses, which Flask then answers from the same body as it
always has (400, 403, 404, 413). `store` spools what the database cannot take; when storing fails anyway (the
spool full too), the request goes to Flask with the error, which a `before_request` hook raises, so Flask's
error handlers answer it (503) as if the view had failed. Only Flask's public API is used.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import parse_qsl

from flask import Flask, Response, request
from werkzeug.http import parse_options_header

from bots import WEBHOOKS
from bots.base import StatusUpdate, Webhook
from service.inbox import store, store_status

Environ = dict[str, Any]
StartResponse = Callable[..., Any]
WsgiApp = Callable[[Environ, StartResponse], Iterable[bytes]]
Answer = tuple[str, list[tuple[str, str]], bytes]
_FAILURE = "retorno.fastpath.failure"


class _EnvironDelivery:
    """A POST read straight from the WSGI environ, as a Delivery (as werkzeug's request reads it)."""

    __slots__ = ("environ", "body", "path", "query_string", "mimetype")

    def __init__(self, environ: Environ, body: bytes) -> None:
        self.environ, self.body = environ, body
        self.path = environ["PATH_INFO"]
        self.query_string = environ.get("QUERY_STRING", "").encode("latin1")
        self.mimetype = parse_options_header(environ.get("CONTENT_TYPE", ""))[0].lower()

    def header(self, name: str) -> str | None:
        return self.environ.get("HTTP_" + name.upper().replace("-", "_"))

    def form(self) -> list[tuple[str, str]]:
        """The form fields in order; a body that is not UTF-8 raises, and Flask answers it."""
        return parse_qsl(self.body.decode(), keep_blank_values=True, errors="werkzeug.url_quote")

    def data(self) -> bytes:
        return self.body


class FastWebhooks:
    """WSGI middleware in front of Flask's own WSGI app for the webhooks registered `fast` (Twilio SMS, Telegram)."""

    def __init__(self, app: Flask) -> None:
        self.app = app
        self.flask: WsgiApp = app.wsgi_app
        self.routes: dict[str, Webhook] = {"/webhooks" + hook.path: hook for hook in WEBHOOKS if hook.fast}
        self._answers: dict[str, Answer] = {}
        app.before_request(_raise_failure)

    def __call__(self, environ: Environ, start_response: StartResponse) -> Iterable[bytes]:
        hook = self.routes.get(environ.get("PATH_INFO", "")) if environ.get("REQUEST_METHOD") == "POST" else None
        body = None if hook is None or self.app.debug else _body(environ, self.app.config["MAX_CONTENT_LENGTH"])
        if hook is None or body is None:
            return self.flask(environ, start_response)
        runtime = self.app.extensions["retorno"]
        try:
            found = hook.read(runtime.settings, _EnvironDelivery(environ, body))
        except Exception:  # refused: Flask answers it from the same body, exactly as it always has
            environ["wsgi.input"] = io.BytesIO(body)
            return self.flask(environ, start_response)
        try:
            if isinstance(found, StatusUpdate):
                store_status(runtime, found)
            elif found is not None:
                store(runtime, [found])
        except Exception as error:
            environ["wsgi.input"] = io.BytesIO(body)
            environ[_FAILURE] = error
            return self.flask(environ, start_response)
        status, headers, payload = self._answers.get(hook.path) or self._made(hook)
        start_response(status, list(headers))
        return [payload]

    def _made(self, hook: Webhook) -> Answer:
        """The view's answer (service.webhooks) as status, headers and bytes, made once, on first use."""
        body, mimetype = hook.answer()
        response = Response(body, status=200, mimetype=mimetype)
        answer = self._answers[hook.path] = (response.status, response.headers.to_wsgi_list(), response.get_data())
        return answer


def _raise_failure() -> None:
    """First thing in Flask: a failure to store met on the fast path is raised, for Flask's error handlers."""
    error = request.environ.pop(_FAILURE, None)
    if error is not None:
        raise error


def _body(environ: Environ, limit: int | None) -> bytes | None:
    """The whole body when Content-Length is plain digits within `limit` and all of it arrives; else None."""
    length = environ.get("CONTENT_LENGTH", "")
    if not (length.isascii() and length.isdigit()) or "HTTP_TRANSFER_ENCODING" in environ:
        return None
    size = int(length)
    if limit is not None and size > limit:
        return None
    body = environ["wsgi.input"].read(size) if size else b""
    if len(body) != size:
        environ["wsgi.input"] = io.BytesIO(body)
        return None
    return body
