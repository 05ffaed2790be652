"""The staff console's blueprint, on its own so that its pages can register on it without importing the package."""

from __future__ import annotations

from flask import Blueprint

from service.edge import refuse_control_characters

staff = Blueprint("staff", __name__, template_folder="templates", static_folder="static",
                  static_url_path="/staff/static")
staff.before_request(refuse_control_characters)
