"""``gisgrid serve``: the web app behind a production WSGI server (waitress), never Flask's own."""

from __future__ import annotations

import click

from gisgrid.config import Settings


def serve_app(settings: Settings, *, host: str, port: int, threads: int = 4) -> None:
    """Serve the app until interrupted."""
    import waitress

    from gisgrid.web import create_app

    app = create_app({"GISGRID_SETTINGS": settings})
    click.echo(f"serving gisgrid on http://{host}:{port}/  (Ctrl+C stops)", err=True)
    waitress.serve(app, host=host, port=port, threads=threads, ident="gisgrid")


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to listen on (loopback by default).")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
@click.option("--threads", default=4, show_default=True, type=click.IntRange(1, 64))
def serve(host: str, port: int, threads: int) -> None:
    """Serve the web app (maps and pages) with waitress."""
    serve_app(Settings.from_env(), host=host, port=port, threads=threads)
