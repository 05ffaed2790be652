"""Retorno's web app without its fast path: every webhook through Flask's routing and views (service.webhooks).

    gunicorn 'bench.flask_only:create_app()'   (bench.ingest --servers granian-flask,gunicorn-flask)

What the fast path (service.fastpath) saves is the difference with the same server serving `service.app`.
"""

from __future__ import annotations

from flask import Flask

from service.app import create_app as create_retorno
from service.fastpath import FastWebhooks


def create_app() -> Flask:
    app = create_retorno()
    if isinstance(app.wsgi_app, FastWebhooks):
        app.wsgi_app = app.wsgi_app.flask  # type: ignore[method-assign]
    return app
