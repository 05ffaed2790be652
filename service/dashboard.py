"""The analysts' dashboard: gap maps and tables behind a token login.

Log in with an API token (analyst or staff): the cookie then holds a random session id that lasts SESSION_TTL
(never the token; only the id's hash is stored), HttpOnly, SameSite=Strict, and Secure whenever the service is
served over HTTPS (RETORNO_PUBLIC_URL https, as behind a load balancer). Logging out, or revoking the token,
ends the session at once. The page is
rendered on the server (map as inline SVG, table of every published cell of the selection); filters are a GET
form, the table sorts in the browser, downloads reuse the API's exports. Only published figures reach the page.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from flask import Blueprint, Response, make_response, redirect, render_template, request, url_for
from markupsafe import Markup
from sqlalchemy import select, update

from service import audit
from service.auth import Caller, authenticate, live
from service.campaigns.timing import format_duration
from service.catalog import UnknownSurvey
from service.edge import refuse_control_characters
from service.gaps import aggregate, maps, snapshot, views
from service.gaps.exports import FORMATS, geography_for, render
from service.gaps.geography import GeographyError
from service.models import ApiToken, DashboardSession
from service.web import current_runtime
from surveys.definition import DIMENSIONS

dashboard = Blueprint("dashboard", __name__, template_folder="templates", static_folder="static",
                      static_url_path="/dashboard/static")
dashboard.before_request(refuse_control_characters)
COOKIE = "retorno_session"
SESSION_TTL = timedelta(hours=8)
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
                               "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "private, no-store",
}

WORDS = {
    "es": {
        "title": "Mapas de brechas de reintegración", "login": "Entrar", "token": "Token de acceso",
        "login_help": "Use un token de analista o de personal (retorno tokens create --role analyst).",
        "bad_token": "Ese token no existe o fue revocado.", "logout": "Salir", "survey": "Encuesta",
        "dimension": "Dimensión", "indicator": "Indicador", "group": "Grupo", "metric": "Mapa de",
        "all_dimensions": "todas", "all_indicators": "todos", "no_group": "sin grupo", "show": "Mostrar",
        "gap_rate": "personas en brecha", "index": "índice de reintegración", "difference": "retornados − comunidad",
        "region": "Región", "group_value": "Grupo", "n": "n", "gap_n": "en brecha", "rate": "% en brecha",
        "ci": "IC 95 %", "index_mean": "índice medio", "diff": "retornados − comunidad", "pattern": "lectura",
        "suppressed": "menos de {min_cell}, o protegido", "computed": "calculado",
        "respondents": "respuestas completas", "fewer_than": "menos de {min_cell}",
        "suppression_note": "Celdas con menos de {min_cell} respuestas, y las que permitirían deducirlas, se suprimen. "
                            "Las cifras cambian sólo al publicarse (como mucho una vez cada {interval}), y una celda "
                            "sólo cuando al menos {min_cell} personas más respondieron.",
        "downloads": "Descargar", "national": "Nacional", "overall": "general",
        "returnees_behind": "retornados rezagados", "returnees_ahead": "retornados mejor", "shared": "compartida",
        "no_surveys": "No hay encuestas publicadas.", "rows": "celdas publicadas",
        "withheld": "Las regiones y grupos que faltan tienen menos de {min_cell} respuestas o están protegidos.",
        "automatic": "automático (brecha; índice en general)",
        "filter": "Filtrar la tabla", "filter_help": "región, grupo o pregunta", "previous": "Anterior",
        "next": "Siguiente", "showing": "Filas {first}–{last} de {total}", "columns_help": "Qué significa cada columna",
        "help_region": "Estado de residencia (Nacional: todo el país).",
        "help_group": "Grupo de personas según su respuesta a la pregunta del grupo.",
        "help_dimension": "Dimensión de la reintegración (económica, social, psicosocial).",
        "help_indicator": "La pregunta que mide la brecha.",
        "help_n": "Personas que respondieron en esta celda.",
        "help_gap_n": "Cuántas de ellas están en brecha (su respuesta indica una necesidad).",
        "help_rate": "Porcentaje de personas en brecha.",
        "help_ci": "Intervalo de confianza del 95 %: con tan pocas respuestas, la cifra real puede estar entre "
                   "estos valores.",
        "help_index_mean": "Índice de reintegración medio (0 a 1; más alto es mejor).",
        "help_diff": "Puntos de diferencia en el % en brecha entre retornados y el resto de la comunidad (con su IC).",
        "help_pattern": "Lectura: «retornados rezagados» si los retornados están claramente peor; «retornados mejor» "
                        "si claramente mejor; «compartida» si la diferencia no es clara: la brecha es de toda la "
                        "comunidad.",
    },
    "en": {
        "title": "Reintegration gap maps", "login": "Log in", "token": "Access token",
        "login_help": "Use an analyst or staff token (retorno tokens create --role analyst).",
        "bad_token": "That token does not exist or was revoked.", "logout": "Log out", "survey": "Survey",
        "dimension": "Dimension", "indicator": "Indicator", "group": "Group", "metric": "Map of",
        "all_dimensions": "all", "all_indicators": "all", "no_group": "no group", "show": "Show",
        "gap_rate": "people in gap", "index": "reintegration index", "difference": "returnees − community",
        "region": "Region", "group_value": "Group", "n": "n", "gap_n": "in gap", "rate": "% in gap",
        "ci": "95% CI", "index_mean": "mean index", "diff": "returnees − community", "pattern": "reading",
        "suppressed": "fewer than {min_cell}, or protected", "computed": "computed",
        "respondents": "completed responses", "fewer_than": "fewer than {min_cell}",
        "suppression_note": "Cells with fewer than {min_cell} responses, and those that would reveal them, are "
                            "suppressed. Figures change only when released (at most once every {interval}), and a "
                            "cell only once at least {min_cell} more people answered.",
        "downloads": "Download", "national": "National", "overall": "overall",
        "returnees_behind": "returnees left behind", "returnees_ahead": "returnees better off", "shared": "shared",
        "no_surveys": "No survey is published.", "rows": "published cells",
        "withheld": "Regions and groups not listed have fewer than {min_cell} responses or are protected.",
        "automatic": "automatic (gap; index overall)",
        "filter": "Filter the table", "filter_help": "region, group or question", "previous": "Previous",
        "next": "Next", "showing": "Rows {first}–{last} of {total}", "columns_help": "What each column means",
        "help_region": "State of residence (National: the whole country).",
        "help_group": "Group of people by their answer to the grouping question.",
        "help_dimension": "Dimension of reintegration (economic, social, psychosocial).",
        "help_indicator": "The question that measures the gap.",
        "help_n": "People who answered in this cell.",
        "help_gap_n": "How many of them are in gap (their answer shows a need).",
        "help_rate": "Share of people in gap.",
        "help_ci": "95% confidence interval: with few answers, the true figure may lie anywhere between these values.",
        "help_index_mean": "Mean reintegration index (0 to 1; higher is better).",
        "help_diff": "Percentage points between returnees' and the rest of the community's share in gap (with its CI).",
        "help_pattern": "Reading: 'returnees left behind' when returnees are clearly worse off; 'returnees better "
                        "off' when clearly better; 'shared' when the difference is not clear: the gap is the whole "
                        "community's.",
    },
}


def _secured(response: Response) -> Response:
    response.headers.update(SECURITY_HEADERS)
    return response


def _session_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def _caller(runtime) -> Caller | None:
    """Who is looking: the dashboard session in the cookie (its token still valid), or a bearer token."""
    session_id = request.cookies.get(COOKIE)
    if session_id:
        now = runtime.now()
        with runtime.sessions() as session:
            row = session.execute(
                select(ApiToken.id, ApiToken.name, ApiToken.role)
                .join(DashboardSession, DashboardSession.token_id == ApiToken.id)
                .where(DashboardSession.id_hash == _session_hash(session_id), DashboardSession.revoked_at.is_(None),
                       DashboardSession.expires_at > now, ApiToken.revoked_at.is_(None), live(ApiToken.expires_at, now))
            ).first()
        if row is not None:
            return Caller(row.id, row.name, row.role)
    scheme, _, value = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return authenticate(runtime, value.strip())
    return None


def _open_session(runtime, caller: Caller) -> str:
    """A new dashboard session for `caller`; its id (for the cookie)."""
    session_id = secrets.token_urlsafe(32)
    now = runtime.now()
    with runtime.sessions() as session, session.begin():
        session.add(DashboardSession(id_hash=_session_hash(session_id), token_id=caller.token_id, created_at=now,
                                     expires_at=now + SESSION_TTL))
        audit.add(session, now, caller.actor, "dashboard.login", f"token #{caller.token_id}")
    return session_id


def _secure(runtime) -> bool:
    return request.is_secure or runtime.settings.public_url.lower().startswith("https://")


def _language() -> str:
    language = request.args.get("lang", "")
    if language in WORDS:
        return language
    return request.accept_languages.best_match(list(WORDS), default="es") or "es"


def _login(language: str, error: str | None, status: int) -> Response:
    html = render_template("dashboard_login.html", words=WORDS[language], error=error, language=language)
    return _secured(make_response(html, status))


@dashboard.route("/dashboard", methods=["GET", "POST"])
def index():
    runtime = current_runtime()
    language = _language()
    if request.method == "POST":
        caller = authenticate(runtime, (request.form.get("token") or "").strip())
        if caller is None:
            return _login(language, WORDS[language]["bad_token"], 401)
        response = redirect(url_for("dashboard.index", lang=request.args.get("lang") or None), code=303)
        session_id = _open_session(runtime, caller)
        for path in ("/dashboard", "/staff") if caller.role == "staff" else ("/dashboard",):  # staff: the console too
            response.set_cookie(COOKIE, session_id, httponly=True, samesite="Strict", secure=_secure(runtime),
                                path=path, max_age=int(SESSION_TTL.total_seconds()))
        return _secured(response)
    caller = _caller(runtime)
    if caller is None:
        return _login(language, WORDS[language]["bad_token"] if request.cookies.get(COOKIE) else None, 401)
    return _secured(_page(runtime, caller.role, language))


@dashboard.post("/dashboard/logout")
def logout():
    runtime = current_runtime()
    session_id = request.cookies.get(COOKIE)
    if session_id:
        caller = _caller(runtime)
        now = runtime.now()
        with runtime.sessions() as session, session.begin():
            ended = session.execute(
                update(DashboardSession)
                .where(DashboardSession.id_hash == _session_hash(session_id), DashboardSession.revoked_at.is_(None))
                .values(revoked_at=now)
            ).rowcount
            if ended and caller is not None:
                audit.add(session, now, caller.actor, "dashboard.logout", f"token #{caller.token_id}")
    response = redirect(url_for("dashboard.index"), code=303)
    for path in ("/dashboard", "/staff"):
        response.delete_cookie(COOKIE, path=path, secure=_secure(runtime), httponly=True, samesite="Strict")
    return _secured(response)


@dashboard.get("/dashboard/export")
def export():
    runtime = current_runtime()
    if _caller(runtime) is None:
        return _login(_language(), None, 401)
    output_format = request.args.get("format", "csv")
    try:
        definition = runtime.catalog.current(request.args.get("survey", ""))
        selection = _selection(definition)
        if output_format not in FORMATS:
            raise views.SelectionError(f"format must be one of {', '.join(FORMATS)}")
        found = snapshot.current(runtime, definition)
        output = render(found.payload, definition, selection, output_format, geography_for(definition), _language())
    except UnknownSurvey:
        return _secured(make_response("unknown survey", 404))
    except (views.SelectionError, GeographyError) as error:
        return _secured(make_response(str(error), 400))
    response = Response(output.body, mimetype=output.mimetype)
    response.headers["Content-Disposition"] = f'attachment; filename="{output.filename}"'
    return _secured(response)


def _selection(definition, lenient: bool = False) -> views.Selection:
    args = request.args
    wanted = {
        "grouping": args.get("group") or None,
        "dimension": args.get("dimension") or None,
        "indicator": args.get("indicator") or None,
        "metric": args.get("metric") or None,
    }
    if lenient:
        indicators = {q.id: q.dimension for q in aggregate.indicators(definition)}
        if wanted["indicator"] not in indicators:
            wanted["indicator"] = None
        if wanted["indicator"] and wanted["dimension"] and indicators[wanted["indicator"]] != wanted["dimension"]:
            wanted["indicator"] = None
        if wanted["indicator"]:
            wanted["dimension"] = None
    return views.select(definition, **wanted)


def _page(runtime, role: str, language: str) -> Response:
    words = WORDS[language]
    surveys = runtime.catalog.all_current()
    if not surveys:
        return make_response(render_template("dashboard.html", words=words, surveys=[], language=language,
                                             role=role, error=words["no_surveys"]), 200)
    chosen = request.args.get("survey") or runtime.settings.default_survey
    definition = next((d for d in surveys if d.id == chosen), surveys[0])
    error, status = None, 200
    try:
        selection = _selection(definition, lenient=True)
    except views.SelectionError as problem:
        selection, error, status = views.Selection(), str(problem), 400
    found = snapshot.current(runtime, definition)
    payload = found.payload
    geography = geography_for(definition)
    drawing = maps.scene(payload, definition, selection, geography, language)
    rows = _rows(payload, definition, selection, words, language)
    indicators = aggregate.indicators(definition)
    context: dict[str, Any] = {
        "words": words,
        "language": language,
        "role": role,
        "surveys": surveys,
        "definition": definition,
        "selection": selection,
        "dimensions": sorted({q.dimension for q in indicators}, key=DIMENSIONS.index),
        "dimension_names": maps.TEXTS[language],
        "indicators": indicators,
        "groups": aggregate.group_questions(definition),
        "question_label": lambda q: _short(_text(definition, q, language)),
        "metrics": views.METRICS,
        "payload": payload,
        "generated": str(payload["generated_at"])[:16].replace("T", " "),
        "interval": format_duration(definition.release_interval),
        "map_svg": Markup(maps.to_svg(drawing)),  # built from escaped parts only (maps.to_svg escapes all text)
        "rows": rows,
        "formats": [f for f in FORMATS if f != "json"] + ["json"],
        "query": {k: v for k, v in request.args.items() if k != "format"},
        "error": error,
        "ungrouped": selection.grouping is None,
    }
    return make_response(render_template("dashboard.html", **context), status)


def _rows(payload: dict[str, Any], definition, selection: views.Selection, words: dict[str, str],
          language: str) -> list[dict[str, Any]]:
    """Table rows: every published cell of the selection, regional and national (withheld ones, empty or
    suppressed alike, are left out: the note above the table says so)."""
    rows = []
    for cell in snapshot.cells(payload):
        if cell["grouping"] != selection.grouping or cell["suppressed"]:
            continue
        if selection.indicator and cell["indicator"] != selection.indicator:
            continue
        if selection.dimension and cell["dimension"] != selection.dimension:
            continue
        if (selection.indicator or selection.dimension) and cell["overall"]:
            continue
        indicator = cell["indicator"]
        question_text = ""
        if indicator and definition.has_question(indicator):
            question_text = _text(definition, definition.question(indicator), language)
        rows.append({
            **cell,
            "region_label": cell["region_name"] or words["national"],
            "dimension_label": maps.TEXTS[language].get(cell["dimension"] or "", cell["dimension"] or "")
            or words["overall"],
            "indicator_label": _short(question_text) if question_text else indicator or "",
            "group_label": _choice_label(definition, cell.get("grouping"), cell.get("group"), language),
            "question_text": question_text,
            "pattern_label": words.get(cell.get("pattern") or "", ""),
        })
    rows.sort(key=lambda r: (r["region"] is None, r["region"] or "", r["group"] or "", not r["overall"],
                             r["dimension"] or "", r["indicator"] or ""))
    return rows


def _text(definition, question, language: str) -> str:
    """A question's text in the UI's language (else the survey's default), its first line."""
    text = question.text.get(language) or question.text.get(definition.default_language) or question.id
    return text.strip().splitlines()[0] if text.strip() else question.id


def _short(text: str, most: int = 60) -> str:
    return text if len(text) <= most else text[:most - 1].rstrip() + "…"


def _choice_label(definition, grouping: str | None, value: Any, language: str) -> str:
    """A group's value as its choice label in the UI's language (the value itself when it has none)."""
    if value is None:
        return ""
    if grouping and definition.has_question(grouping):
        choice = definition.question(grouping).choice(str(value))
        if choice is not None:
            return choice.label.get(language) or choice.label.get(definition.default_language) or str(value)
    return str(value)
