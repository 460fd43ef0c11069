"""``gisgrid patrols``: daily plans, submissions, listing and track coverage (日常巡查).

Only parsing and presenting: the rules live in :mod:`gisgrid.patrols`, the storage in
:mod:`gisgrid.db.patrols`.
"""

from __future__ import annotations

import json
from datetime import date, datetime, timezone

import click

from gisgrid.cli.checklists import FORMATS, echo_rows, parse_day
from gisgrid.errors import InputError
from gisgrid.levels import Level
from gisgrid.patrols import DEFAULT_BUFFER_M, days_between


@click.group("patrols")
def patrols() -> None:
    """Daily patrol plans and patrols of base grids."""


@patrols.command("plan")
@click.option("--day", required=True, help="Day to plan (YYYY-MM-DD).")
@click.option("--until", help="Plan every day from --day to this day (inclusive).")
@click.option("--under", help="Only base grids under this grid code.")
@click.option("--show", "show_grid", help="Print the tasks of this base grid's plan.")
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
def plan(day: str, until: str | None, under: str | None, show_grid: str | None,
         fmt: str) -> None:
    """Make the day's plan of every base grid, carrying over items not done before."""
    from gisgrid.db.engine import begin
    from gisgrid.db.grids import read_grid
    from gisgrid.db.patrols import build_plans, read_plan_tasks

    first = parse_day(day, "--day")
    days = days_between(first, parse_day(until, "--until") or first)
    with begin() as conn:
        if show_grid is not None:  # refused before any plan is made
            shown = read_grid(conn, show_grid, field_name="--show")
            if shown.level != Level.BASE:
                raise InputError(f"--show: {shown.code} is a level-{shown.level} grid; plans "
                                 "are made per base grid (level 4)")
        outcomes = [build_plans(conn, d, under=under) for d in days]
        tasks = read_plan_tasks(conn, show_grid, days[-1]) if show_grid else None
    for outcome in outcomes:
        click.echo(f"{outcome.day}: {len(outcome.created)} plans made, "
                   f"{len(outcome.existing)} already there, {outcome.carried_tasks} tasks "
                   "carried over" + (f", {len(outcome.skipped)} grids without a "
                                     "village/community skipped" if outcome.skipped else ""),
                   err=fmt == "json")
    if tasks is not None:
        echo_rows(tasks, ["item_code", "item_kind", "first_planned_on", "age_days", "status",
                          "text_zh"], fmt)


@patrols.command("submit")
@click.argument("file", type=click.File("r", encoding="utf-8"))
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
def submit(file, fmt: str) -> None:
    """Record the patrol in FILE (JSON object), or every patrol of a JSON array as one batch
    (all or nothing; '-' for stdin).

    Fields: client_uuid, grid_code, worker (person id or phone), day, started_at, ended_at,
    entered_at (default now), results ([{item_code, result, note}], result ok / hazard_found /
    not_checked), track (GeoJSON LineString/MultiLineString or [[lon, lat], ...]).
    Sending the same file again returns the same patrols.
    """
    from gisgrid.db.engine import begin
    from gisgrid.db.patrols import record_patrol, record_patrols
    from gisgrid.patrols import parse_submissions

    try:
        data = json.load(file)
    except json.JSONDecodeError as exc:
        raise InputError(f"{file.name}: not JSON ({exc})") from None
    batch = isinstance(data, list)
    submissions = parse_submissions(data if batch else [data],
                                    received_at=datetime.now(timezone.utc), numbered=batch)
    with begin() as conn:
        outcomes = record_patrols(conn, submissions) if batch else [
            record_patrol(conn, submissions[0])]
    payload = [{"patrol_id": o.patrol_id, "created": o.created, "late": o.late,
                "warnings": list(o.warnings)} for o in outcomes]
    if fmt == "json":
        click.echo(json.dumps(payload if batch else payload[0], ensure_ascii=False))
    else:
        for outcome in outcomes:
            state = "recorded" if outcome.created else "already recorded (same client_uuid)"
            click.echo(f"patrol {outcome.patrol_id} {state}"
                       + (" — late entry (补录)" if outcome.late else ""))
    for outcome in outcomes:
        for warning in outcome.warnings:
            click.echo(f"warning: {warning}", err=True)


@patrols.command("list")
@click.option("--day", help="Only patrols of this day (YYYY-MM-DD).")
@click.option("--under", help="Only patrols of grids under this grid code.")
@click.option("--plans", is_flag=True, help="List the day's plans instead (needs --day).")
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
def list_patrols(day: str | None, under: str | None, plans: bool, fmt: str) -> None:
    """List patrols (or, with --plans, the day's plans and their open and carried tasks)."""
    from gisgrid.db.engine import begin
    from gisgrid.db.patrols import read_patrols, read_plans

    the_day = parse_day(day, "--day")
    if plans and the_day is None:
        raise InputError("--plans: give the --day whose plans to list")
    with begin() as conn:
        if plans:
            rows = read_plans(conn, the_day, under=under)
            columns = ["grid_code", "checklist", "version", "tasks", "done", "open",
                       "carried_in", "max_age_days"]
        else:
            rows = read_patrols(conn, day=the_day, under=under)
            columns = ["id", "grid_code", "worker", "day", "late", "ok", "hazard_found",
                       "not_checked", "track_m"]
    for row in rows:
        if "track_m" in row:
            row["track_m"] = round(float(row["track_m"]), 1)
    echo_rows(rows, columns, fmt)


@patrols.command("coverage")
@click.option("--day", required=True, help="Day whose tracks to measure (YYYY-MM-DD).")
@click.option("--buffer", "buffer_m", type=float, default=DEFAULT_BUFFER_M, show_default=True,
              help="Buffer around the tracks, in metres.")
@click.option("--under", help="Only grids under this grid code.")
@click.option("--level", "levels", type=click.IntRange(1, 4), multiple=True,
              help="Grid levels to measure (repeatable; default 4, base grids).")
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
def coverage(day: str, buffer_m: float, under: str | None, levels: tuple[int, ...],
             fmt: str) -> None:
    """Measure and store each grid's share of area within the buffer of the day's tracks."""
    from gisgrid.db.engine import begin
    from gisgrid.db.patrols import record_patrol_coverage

    the_day: date = parse_day(day, "--day")
    with begin() as conn:
        result = record_patrol_coverage(conn, the_day, buffer_m=buffer_m, under=under,
                                        levels=levels or (4,))
    rows = [{"code": r.code, "level": int(r.level), "covered_share": round(r.covered_share, 4)}
            for r in result.itertuples()]
    echo_rows(rows, ["code", "level", "covered_share"], fmt)
