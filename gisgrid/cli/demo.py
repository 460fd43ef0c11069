"""``gisgrid demo``: load the demo city, validate it, draw its maps, then serve the web app."""

from __future__ import annotations

import time
from pathlib import Path

import click

from gisgrid.cli.db import hide_password
from gisgrid.config import Settings


@click.command("demo")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("out"), show_default=True, help="Where maps and reports are written.")
@click.option("--days", default=30, show_default=True, type=click.IntRange(0, 366),
              help="Days of patrols and hazards to generate (0: grids only).")
@click.option("--start", type=click.DateTime(["%Y-%m-%d"]), default=None,
              help="First day of the generated days (default: DAYS days before today).")
@click.option("--seed", type=int, default=None, help="Generator seed (default: the fixed demo seed).")
@click.option("--replace", is_flag=True,
              help="Empty a database that holds other data than an earlier demo.")
@click.option("--serve/--no-serve", default=True, show_default=True,
              help="Serve the web app when done.")
@click.option("--port", default=8080, show_default=True, type=click.IntRange(1, 65535))
def demo(out_dir: Path, days: int, start, seed, replace: bool, serve: bool, port: int) -> None:
    """Load the demo city (赤壁市) into the database and write its maps and reports to OUT."""
    from gisgrid.demo.run import run_demo

    settings = Settings.from_env()
    began = time.monotonic()

    def step(text: str) -> None:
        click.echo(f"[{time.monotonic() - began:6.1f}s] {text}", err=True)

    outcome = run_demo(settings, out_dir, seed=seed, days=days, replace=replace, step=step,
                       start=start.date() if start else None)
    _print_summary(outcome, settings)
    if serve:
        from gisgrid.cli.serve import serve_app

        serve_app(settings, host="127.0.0.1", port=port)


def _print_summary(outcome, settings: Settings) -> None:
    lines = ["", "The demo city is loaded (everything below the city outline is synthetic).",
             "  grids per level: " + ", ".join(f"L{k}={v}" for k, v in outcome.grids.items()),
             "  coverage findings: " + (", ".join(f"{k}={v}" for k, v in outcome.findings.items())
                                        or "none")]
    if outcome.field_counts:
        lines.append("  field data: " + ", ".join(f"{k}={v}" for k, v in
                                                  outcome.field_counts.items()))
    lines += ["", "Where to look:"]
    lines += [f"  {path.resolve()}" for path in outcome.files]
    where = (hide_password(settings.database_url) if settings.database_url
             else f"embedded PostGIS under {settings.home} (gisgrid db url)")
    lines += [f"  database: {where}", "  web app: gisgrid serve  (or gisgrid demo without --no-serve)"]
    click.echo("\n".join(lines))
