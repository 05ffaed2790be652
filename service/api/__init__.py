"""The JSON API (docs/api.md): one module per resource, all under /api/v1 on one blueprint (`base.api`)."""

from service.api import audit, campaigns, contacts, gaps, incentives, surveys  # noqa: F401  - registers the routes
from service.api.base import ANALYST, STAFF, ApiError, api
from service.web import current_runtime as runtime

__all__ = ["ANALYST", "STAFF", "ApiError", "api", "runtime"]
