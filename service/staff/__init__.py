"""The staff console at /staff: simulator, surveys, contacts, campaigns, incentives and tokens in the browser.

Server-rendered (Jinja) with a little plain JavaScript (static/staff.js), behind the dashboard's login with a staff
token; forms carry a CSRF token; every action goes to the audit log.
"""

from __future__ import annotations

from flask import Blueprint

from service.edge import refuse_control_characters

staff = Blueprint("staff", __name__, template_folder="templates", static_folder="static",
                  static_url_path="/staff/static")
staff.before_request(refuse_control_characters)

from service.staff import pages  # noqa: E402,F401  - registers the routes
