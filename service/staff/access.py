"""Who may use the staff console: the dashboard's login and sessions (a staff token), CSRF on every form.

The session cookie is the dashboard's (same table, same lifetime, revoked with its token), scoped to /staff. Every
POST carries a CSRF token (a hidden field, or the X-CSRF-Token header from JavaScript) that is an HMAC of the
session id under the service's secret key, and a request whose Origin is another site is refused.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable
from functools import wraps
from typing import Any
from urllib.parse import urlsplit

from flask import Response, current_app, g, make_response, render_template, request

from service.auth import Caller
from service.dashboard import COOKIE, SECURITY_HEADERS, _caller, _secure
from service.staff.words import WORDS

STAFF_COOKIE_PATH = "/staff"
CSRF_FIELD, CSRF_HEADER = "csrf", "X-CSRF-Token"
HEADERS = {**SECURITY_HEADERS, "Content-Security-Policy": SECURITY_HEADERS["Content-Security-Policy"]
           + "; connect-src 'self'"}
"""The dashboard's headers; the simulator, the upload and the live funnel also fetch from this site."""


def secured(response):
    response.headers.update(HEADERS)
    return response


UPLOADS = frozenset({"staff.contacts_import", "staff.incentives_paid"})
UPLOAD_LIMIT = 32 * 1024 * 1024
"""Contact lists and payment files may be larger than the app's 1 MB request limit."""


def runtime():
    return current_app.extensions["retorno"]


def csrf_token(session_id: str) -> str:
    key = runtime().settings.secret_key.encode()
    return hmac.new(key, b"staff-csrf:" + session_id.encode(), hashlib.sha256).hexdigest()


def same_origin() -> bool:
    """No Origin, or this site's; "null" is what a browser sends under Referrer-Policy: no-referrer."""
    origin = request.headers.get("Origin")
    if not origin or origin == "null":
        return True
    return urlsplit(origin).netloc == request.host


def refused(reason: str):
    """A 403 page that says why, in the UI's language."""
    return secured(page("message.html", 403, message=WORDS[language()][reason]))


def staff_only(view: Callable) -> Callable:
    """The caller must hold a staff session (or bearer token): a login page otherwise, 403 for analysts; a POST
    must carry the session's CSRF token and come from this site."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any):

        caller: Caller | None = _caller(runtime())
        if caller is None:
            return login_page(401)
        if caller.role != "staff":
            return refused("forbidden")
        session_id = request.cookies.get(COOKIE, "")
        g.caller = caller
        g.csrf = csrf_token(session_id) if session_id else ""
        if request.method == "POST":
            if request.endpoint in UPLOADS:
                request.max_content_length = UPLOAD_LIMIT
            sent = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD) or ""
            bearer_only = not session_id and request.headers.get("Authorization")
            if not same_origin() or not (bearer_only or (g.csrf and hmac.compare_digest(sent, g.csrf))):
                return refused("stale_form")
        return secured(current_app.make_response(view(*args, **kwargs)))

    return wrapper


LANG_COOKIE = "retorno_lang"


def language() -> str:
    wanted = request.args.get("lang") or request.cookies.get(LANG_COOKIE, "")
    if wanted in WORDS:
        return wanted
    return request.accept_languages.best_match(list(WORDS), default="es") or "es"


def page(template: str, status: int = 200, **context: Any) -> Response:
    lang = language()
    html = render_template(f"staff/{template}", words=WORDS[lang], language=lang, caller=getattr(g, "caller", None),
                           csrf=getattr(g, "csrf", ""), endpoint=request.endpoint, **context)
    response = make_response(html, status)
    if request.args.get("lang") in WORDS:
        response.set_cookie(LANG_COOKIE, request.args["lang"], samesite="Strict", path=STAFF_COOKIE_PATH,
                            secure=_secure(runtime()))
    return response


def login_page(status: int = 401, error: str | None = None) -> Response:
    return secured(page("login.html", status, error=error))
