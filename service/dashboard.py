"""The analysts' dashboard: gap maps and tables behind a token login."""

from __future__ import annotations

from flask import Blueprint, current_app, make_response, request

from service.auth import role_of

dashboard = Blueprint("dashboard", __name__)
COOKIE = "retorno_token"


@dashboard.route("/dashboard", methods=["GET", "POST"])
def index():
    runtime = current_app.extensions["retorno"]
    token = request.form.get("token") if request.method == "POST" else None
    token = token or request.cookies.get(COOKIE) or _bearer()
    role = role_of(runtime, token)
    if role is None:
        status = 401 if request.method == "GET" or token else 401
        return make_response(_LOGIN, status)
    response = make_response(_PAGE, 200)
    if request.method == "POST":
        response.set_cookie(COOKIE, token, httponly=True, samesite="Strict", secure=request.is_secure)
    return response


def _bearer() -> str | None:
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


_LOGIN = """<!doctype html><html lang="es"><head><meta charset="utf-8"><title>Retorno</title></head>
<body><h1>Retorno</h1><form method="post"><label>Token <input name="token" type="password"></label>
<button>Entrar</button></form></body></html>"""
_PAGE = """<!doctype html><html lang="es"><head><meta charset="utf-8"><title>Retorno</title></head>
<body><h1>Retorno</h1><p>Gap maps arrive with the aggregation work.</p></body></html>"""
