"""The staff console at /staff: simulator, surveys, contacts, campaigns, incentives and tokens in the browser.

Server-rendered (Jinja) with a little plain JavaScript (static/staff.js), behind the dashboard's login with a staff
token; forms carry a CSRF token; every action goes to the audit log.
"""

from __future__ import annotations

from service.staff import pages  # noqa: F401 - registers the routes
from service.staff.blueprint import staff

__all__ = ["staff"]
