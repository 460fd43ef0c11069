"""``gisgrid hazards``: report, advance, list, show and link hazards (隐患).

Only parsing and presenting: the rules live in :mod:`gisgrid.hazards` and the storage in
:mod:`gisgrid.db.hazards`. Bad input exits 2 naming the field; an illegal transition or a
conflicting resubmission exits 2 with the reason.
"""

from __future__ import annotations

import json
import warnings
from datetime import datetime, timezone

import click

from gisgrid.cli import default_actor
from gisgrid.errors import InputError
from gisgrid.clock import CHINA_TZ
from gisgrid.hazards.calendar import CalendarFallbackWarning, is_overdue
from gisgrid.hazards.categories import (
    CATEGORIES,
    ITEM_CATEGORIES,
    category_for_item,
    render_category_table,
)
from gisgrid.hazards.workflow import Action, State, render_transition_table

FORMATS = click.Choice(["text", "json"])


def _connect():
    from gisgrid.config import Settings
    from gisgrid.db.engine import get_engine

    settings = Settings.from_env()
    return settings, get_engine(settings).begin()


def _parse_time(value: str | None, field: str) -> datetime | None:
    """ISO 8601; a time without zone is China Standard Time."""
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InputError(f"{field}: {value!r} is not an ISO 8601 date-time "
                         "(e.g. 2025-10-09T09:30 or 2025-10-09T09:30+08:00)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=CHINA_TZ)


def _local(value: datetime | None) -> str:
    return value.astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M") if value else "-"


def _routed_codes(conn, hazards) -> dict[int, str]:
    from gisgrid.db.grids import read_codes_of

    return read_codes_of(conn, [h.routed_to_grid_id for h in hazards])


def _summary(hazard, now: datetime, codes: dict[int, str]) -> str:
    """One line per hazard; ``codes`` names the grid it is routed to (:func:`_routed_codes`)."""
    state = State(hazard.state)
    flags = []
    if hazard.major:
        flags.append("重大 major")
    if is_overdue(hazard, now):
        flags.append("逾期 overdue")
    if hazard.outside_grids:
        flags.append("网格外 outside grids")
    if hazard.duplicate_of_id:
        flags.append(f"重复 duplicate of #{hazard.duplicate_of_id}")
    routed = codes.get(hazard.routed_to_grid_id, hazard.routed_to_grid_id or "-")
    return (f"#{hazard.id}  {state.label}  {hazard.category}  "
            f"reported {_local(hazard.reported_at)}  due {_local(hazard.due_at)}  "
            f"routed to grid {routed}" + (f"  [{', '.join(flags)}]" if flags else ""))


def _emit(payload, text: str, fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(payload, ensure_ascii=False, indent=2, default=str))
    else:
        click.echo(text)


@click.group("hazards")
def hazards() -> None:
    """Hazards (隐患): report, move through the workflow, list, link duplicates."""


@hazards.command("report")
@click.option("--lon", type=float, required=True, help="Longitude, degrees (CGCS2000).")
@click.option("--lat", type=float, required=True, help="Latitude, degrees (CGCS2000).")
@click.option("--category", required=True,
              help="Category key (see `gisgrid hazards categories`) or checklist item code (C05, V08).")
@click.option("--description", required=True, help="What was found.")
@click.option("--major", is_flag=True, help="A major hazard (重大隐患): straight to the township.")
@click.option("--uuid", "client_uuid", default=None,
              help="Client-generated UUID; resubmitting the same one is idempotent.")
@click.option("--photo", "photos", multiple=True, type=click.Path(dir_okay=False),
              help="A photo file (JPEG, PNG, GIF, WebP, HEIC); repeat for more.")
@click.option("--reporter", "reporter_id", type=int, default=None, help="Person id of the reporter.")
@click.option("--unit", "unit_id", type=int, default=None, help="Business unit id, when known.")
@click.option("--at", "reported_at", default=None,
              help="When it was found (ISO 8601; default now; no zone = China time).")
@click.option("--actor", default=None, help="Who submits (default: $GISGRID_ACTOR or the OS user).")
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
def report(lon, lat, category, description, major, client_uuid, photos, reporter_id, unit_id,
           reported_at, actor, fmt) -> None:
    """Report a hazard. A point outside every grid is stored and flagged, never refused."""
    from gisgrid.db.hazards import record_hazard
    from gisgrid.hazards.photos import default_photo_dir
    from gisgrid.hazards.reports import HazardReport

    item_code = category if category in ITEM_CATEGORIES else None
    settings, transaction = _connect()
    with transaction as conn, warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", CalendarFallbackWarning)
        hazard = record_hazard(
            conn,
            HazardReport(lon=lon, lat=lat,
                         category=category_for_item(item_code) if item_code else category,
                         description=description, client_uuid=client_uuid,
                         reported_at=_parse_time(reported_at, "at"), major=major,
                         reporter_id=reporter_id, unit_id=unit_id, item_code=item_code,
                         photos=tuple(photos)),
            actor=actor or default_actor(), photo_dir=default_photo_dir(settings.home))
        codes = _routed_codes(conn, [hazard])
    for warning in caught:
        click.echo(f"warning: {warning.message}", err=True)
    now = datetime.now(timezone.utc)
    verb = "recorded" if hazard.created else "already recorded (same uuid), unchanged"
    lines = [f"hazard {verb}: {_summary(hazard, now, codes)}", f"uuid {hazard.client_uuid}"]
    lines += [f"possible duplicate: #{c.hazard_id} ({c.reason}, {c.distance_m:g} m)"
              for c in hazard.duplicates]
    _emit(hazard.to_dict(), "\n".join(lines), fmt)


@hazards.command("advance")
@click.argument("hazard_id", type=int)
@click.argument("action")
@click.option("--actor", required=True, help="Who acts.")
@click.option("--role", default=None, help="The actor's role (e.g. township, village).")
@click.option("--note", default="", help="Free text logged with the step.")
@click.option("--at", default=None, help="When (ISO 8601; default now; no zone = China time).")
@click.option("--extend-workdays", type=int, default=None,
              help="With postpone: workdays of extension (default: the category's allowance).")
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
def advance(hazard_id, action, actor, role, note, at, extend_workdays, fmt) -> None:
    """Move hazard HAZARD_ID one step: ACTION is an action key or its Chinese name.

    Actions: accept, dispatch, start, submit_for_verification, close, reject, return,
    resubmit, postpone, suspend, resume, void (`gisgrid hazards transitions` shows the table).
    """
    from gisgrid.db.hazards import advance_hazard

    if extend_workdays is not None and Action.parse(action) is not Action.POSTPONE:
        raise InputError("extend-workdays: only with the postpone action")
    _, transaction = _connect()
    with transaction as conn:
        hazard = advance_hazard(conn, hazard_id, action, actor=actor, role=role, note=note,
                                at=_parse_time(at, "at"), extend_workdays=extend_workdays)
        codes = _routed_codes(conn, [hazard])
    _emit(hazard.to_dict(), _summary(hazard, datetime.now(timezone.utc), codes), fmt)


@hazards.command("list")
@click.option("--state", default=None, help="Only this state (key or Chinese name).")
@click.option("--overdue", is_flag=True, help="Only hazards past their due date (逾期).")
@click.option("--under", default=None,
              help="Only hazards in or routed to the grid with this code (any level).")
@click.option("--limit", type=click.IntRange(min=1), default=None)
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
def list_(state, overdue, under, limit, fmt) -> None:
    """List hazards, newest first."""
    from gisgrid.db.grids import read_grid
    from gisgrid.db.hazards import list_hazards

    if state is not None:
        State.parse(state)
    _, transaction = _connect()
    now = datetime.now(timezone.utc)
    with transaction as conn:
        grid_id = read_grid(conn, under, field_name="--under").id if under else None
        found = list_hazards(conn, state=state, under=grid_id,
                             overdue=True if overdue else None, now=now, limit=limit)
        codes = _routed_codes(conn, found)
    text = "\n".join(_summary(h, now, codes) for h in found) or "no hazards"
    _emit([h.to_dict() for h in found], text, fmt)


@hazards.command("show")
@click.argument("hazard_id", type=int)
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
def show(hazard_id, fmt) -> None:
    """Show one hazard with its history, photos and duplicate suggestions."""
    from dataclasses import replace

    from gisgrid.db.hazards import find_duplicates, read_events, read_hazard, read_photos

    _, transaction = _connect()
    with transaction as conn:
        hazard = read_hazard(conn, hazard_id)
        hazard = replace(hazard, duplicates=tuple(find_duplicates(conn, hazard)))
        events, photos = read_events(conn, hazard_id), read_photos(conn, hazard_id)
        codes = _routed_codes(conn, [hazard])
    now = datetime.now(timezone.utc)
    lines = [_summary(hazard, now, codes), f"  {hazard.description}",
             f"  at {hazard.lon:.7f}, {hazard.lat:.7f}  uuid {hazard.client_uuid}", "history:"]
    for e in events:
        source = e.from_state.label if e.from_state else "-"
        lines.append(f"  {_local(e.at)}  {source} → {e.to_state.label}  {e.action}  "
                     f"by {e.actor}" + (f"  {e.note}" if e.note else ""))
    lines += [f"photo: {p.path}  sha256 {p.sha256}  {p.bytes} bytes" for p in photos]
    lines += [f"possible duplicate: #{c.hazard_id} ({c.reason}, {c.distance_m:g} m)"
              for c in hazard.duplicates]
    payload = hazard.to_dict() | {
        "events": [{"from_state": e.from_state.value if e.from_state else None,
                    "to_state": e.to_state.value, "action": e.action, "actor": e.actor,
                    "at": e.at.isoformat(), "note": e.note} for e in events],
        "photos": [vars(p) for p in photos]}
    _emit(payload, "\n".join(lines), fmt)


@hazards.command("link")
@click.argument("hazard_id", type=int)
@click.option("--duplicate-of", "duplicate_of", type=int, required=True,
              help="Id of the hazard this one repeats.")
@click.option("--actor", default=None, help="Who links (default: $GISGRID_ACTOR or the OS user).")
@click.option("--note", default="")
def link(hazard_id, duplicate_of, actor, note) -> None:
    """Mark HAZARD_ID as a duplicate of another hazard (logged; the state is unchanged)."""
    from gisgrid.db.hazards import link_duplicate

    _, transaction = _connect()
    with transaction as conn:
        hazard = link_duplicate(conn, hazard_id, duplicate_of, actor=actor or default_actor(),
                                note=note)
    click.echo(f"hazard #{hazard.id} linked as duplicate of #{hazard.duplicate_of_id}")


@hazards.command("transitions")
def transitions() -> None:
    """Print the workflow table (状态流转表) as Markdown."""
    click.echo(render_transition_table())


@hazards.command("categories")
def categories() -> None:
    """Print the categories with their due workdays and duplicate radius as Markdown."""
    click.echo(render_category_table())
    click.echo(f"\n{len(CATEGORIES)} categories; checklist items map as: "
               + ", ".join(f"{k}→{v}" for k, v in ITEM_CATEGORIES.items()))
