"""The gisgrid web app: ``create_app(config=None)`` builds it; nothing happens at import time.

Serves the vendored front-end assets under ``/static/vendor/`` (installed by
``scripts/install-assets.sh``), a start page ``/`` and the grid map ``/map/grids``. Every
:class:`~gisgrid.errors.GisgridError` (and every HTTP error) becomes one shape: JSON
``{"error": message, "details": [...]}`` for API clients (``/api/`` paths, or an ``Accept``
header preferring JSON), a small escaped HTML page for browsers, with the error's HTTP status.

Configuration keys (``config`` mapping, all optional):

``GISGRID_SETTINGS``
    a :class:`~gisgrid.config.Settings`; default ``Settings.from_env()`` at request time.
``GISGRID_CSP``
    the ``Content-Security-Policy`` header; the default allows nothing but this server (and
    inline scripts and ``data:`` images, which folium maps need), so a page can never load
    an asset from the internet.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Flask, jsonify, render_template, request
from werkzeug.exceptions import HTTPException

from gisgrid.errors import GisgridError

DEFAULT_CSP = ("default-src 'self'; script-src 'self' 'unsafe-inline'; "
               "style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self' data:; "
               "connect-src 'self'; frame-ancestors 'self'; base-uri 'self'")


def create_app(config: Mapping[str, Any] | None = None) -> Flask:
    """Build the Flask app.

    >>> app = create_app({"TESTING": True})
    >>> app.test_client().get("/static/vendor/leaflet/leaflet.js").status_code
    200
    """
    app = Flask(__name__)
    app.config.from_mapping(GISGRID_SETTINGS=None, GISGRID_CSP=DEFAULT_CSP)
    if config:
        app.config.update(config)
    app.json.ensure_ascii = False

    from gisgrid.web import pages

    app.register_blueprint(pages.bp)
    app.register_error_handler(GisgridError, render_error)
    app.register_error_handler(HTTPException, render_error)
    app.after_request(_add_security_headers)
    return app


def render_error(error: Exception):
    """One error shape for the whole app: JSON for API clients, an HTML page for browsers."""
    if isinstance(error, GisgridError):
        status, body = error.http_status, error.to_dict()
    elif isinstance(error, HTTPException):
        status = error.code or 500
        body = {"error": error.name, "details": [error.description] if error.description else []}
    else:  # pragma: no cover - Flask only routes the registered classes here
        raise error
    if _wants_json():
        return jsonify(body), status
    return render_template("error.html", status=status, **body), status


def _wants_json() -> bool:
    if request.path.startswith("/api/"):
        return True
    best = request.accept_mimetypes.best_match(["text/html", "application/json"])
    return best == "application/json"


def _add_security_headers(response):
    from flask import current_app

    response.headers.setdefault("Content-Security-Policy", current_app.config["GISGRID_CSP"])
    response.headers.setdefault("X-Content-Type-Options", "nosniff")
    return response
