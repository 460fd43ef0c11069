"""Daily patrol rules (日常巡查): plans with carry-over, submissions, lateness, track coverage.

Pure: dataclasses, mappings and GeoSeries in, dataclasses and Series out. The store
(:mod:`gisgrid.db.patrols`) reads and writes them; the CLI and the web API share these rules.

- A plan is made per base grid per day from the checklist of its village/community kind.
- An item not done (no result, or ``not_checked``) on a day is carried into the next plan made
  for that grid, keeping the day it was first planned, so its age grows (日常巡检任务全完成: a
  patrol that cannot be done is reported and becomes part of the next day's plan). A plan with
  no patrol at all carries over entirely.
- An entry made after the patrol day (local date of ``entered_at`` later than ``day``) is late
  (巡查结果信息全记录: results are entered the same day).
- Coverage: the share of each grid's area within ``buffer_m`` metres of the day's tracks,
  measured in the local metric CRS.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gisgrid.checklists import Checklist
from gisgrid.clock import to_local
from gisgrid.crs import DEFAULT_SRID, local_metric_crs, require_crs
from gisgrid.errors import CRSError, InputError
from gisgrid.precision import snap

RESULTS = ("ok", "hazard_found", "not_checked")
DONE_RESULTS = frozenset({"ok", "hazard_found"})
TASK_STATUSES = ("open", "done", "carried_over")
DEFAULT_BUFFER_M = 50.0
SUBMISSION_FIELDS = ("client_uuid", "grid_code", "worker", "day", "started_at", "ended_at",
                     "entered_at", "results", "track")


# ---------------------------------------------------------------- plans and carry-over

@dataclass(frozen=True)
class OpenTask:
    """A task of an earlier plan that was not done: a candidate to carry over."""

    item_code: str
    first_planned_on: date
    task_id: int | None = None
    item_id: int | None = None


@dataclass(frozen=True)
class PlannedTask:
    """A task of a daily plan: one checklist item, fresh or carried over."""

    item_code: str
    first_planned_on: date
    carried_from_id: int | None = None
    item_id: int | None = None

    def age_on(self, day: date) -> int:
        """Days since the item was first planned (0 for a fresh item)."""
        return (day - self.first_planned_on).days


@dataclass(frozen=True)
class DailyPlan:
    """The plan of one base grid for one day."""

    grid_code: str
    day: date
    checklist_code: str
    checklist_version: int
    tasks: tuple[PlannedTask, ...]
    carried: tuple[OpenTask, ...] = ()

    @property
    def carried_count(self) -> int:
        return sum(1 for t in self.tasks if t.first_planned_on < self.day)


def build_daily_plan(grid_code: str, day: date, checklist: Checklist,
                     open_tasks: Iterable[OpenTask] = ()) -> DailyPlan:
    """Build the plan of ``grid_code`` for ``day``: every item of ``checklist``, plus carry-over.

    ``open_tasks`` are the tasks not done on earlier plans of the same grid. A carried task
    replaces the fresh task of the same item (one task per item per day) and keeps its
    ``first_planned_on``; a carried item the checklist no longer has (a new version dropped
    it) is kept as an extra task until done. When an item is open on several earlier days the
    oldest first-planned day wins.

    >>> from gisgrid.checklists import read_builtin_checklists
    >>> village = read_builtin_checklists()["village"]
    >>> plan = build_daily_plan("B1", date(2024, 5, 2), village,
    ...                         [OpenTask("V03", date(2024, 4, 30), task_id=7)])
    >>> [(t.item_code, t.age_on(plan.day)) for t in plan.tasks][:4]
    [('V01', 0), ('V02', 0), ('V03', 2), ('V04', 0)]
    """
    carried: dict[str, OpenTask] = {}
    for task in open_tasks:
        if task.first_planned_on >= day:
            raise InputError(f"grid {grid_code}: open task {task.item_code} was first planned on "
                             f"{task.first_planned_on}, not before the plan day {day}")
        kept = carried.get(task.item_code)
        if kept is None or task.first_planned_on < kept.first_planned_on:
            carried[task.item_code] = task
    tasks = []
    for item in checklist.items:
        old = carried.get(item.code)
        if old is None:
            tasks.append(PlannedTask(item.code, day))
        else:
            tasks.append(PlannedTask(item.code, old.first_planned_on, old.task_id, old.item_id))
    in_list = set(checklist.item_codes)
    for code, old in sorted(carried.items()):
        if code not in in_list:
            tasks.append(PlannedTask(code, old.first_planned_on, old.task_id, old.item_id))
    return DailyPlan(grid_code, day, checklist.code, checklist.version, tuple(tasks),
                     tuple(carried.values()))


def select_open_tasks(tasks: Iterable[OpenTask], statuses: Mapping[int, str]) -> list[OpenTask]:
    """Keep the tasks whose status (by ``task_id``) is ``open``."""
    return [t for t in tasks if statuses.get(t.task_id, "open") == "open"]


# ---------------------------------------------------------------- submissions

@dataclass(frozen=True)
class ItemResult:
    """The result of one checklist item in a patrol."""

    item_code: str
    result: str
    note: str | None = None


@dataclass(frozen=True)
class PatrolSubmission:
    """One patrol as sent by a field app or a file, checked and normalised.

    Times are timezone-aware (naive input is read as China Standard Time); ``track`` is a
    MultiLineString in CGCS2000 longitude/latitude, snapped to the storage precision, or None.
    ``entered_at_given`` is False when the sender gave no ``entered_at`` and the receipt time
    was used; a resubmission then does not compare it.
    """

    client_uuid: uuid.UUID
    grid_code: str
    worker: int | str
    day: date
    started_at: datetime
    ended_at: datetime
    entered_at: datetime
    results: tuple[ItemResult, ...] = ()
    track: shapely.MultiLineString | None = None
    entered_at_given: bool = field(default=True, compare=False)

    @property
    def late(self) -> bool:
        return is_late(self.day, self.entered_at)

    def result_of(self, item_code: str) -> str:
        """The result for ``item_code``; an item not reported is ``not_checked``."""
        for r in self.results:
            if r.item_code == item_code:
                return r.result
        return "not_checked"


def is_late(day: date, entered_at: datetime) -> bool:
    """True when the entry was made after the patrol day (local China date).

    >>> is_late(date(2024, 5, 1), datetime(2024, 5, 1, 23, 59))
    False
    >>> is_late(date(2024, 5, 1), datetime(2024, 5, 2, 0, 1))
    True
    """
    return to_local(entered_at).date() > day


def parse_submission(data: Mapping, *, received_at: datetime) -> PatrolSubmission:
    """Check one submission mapping and return a :class:`PatrolSubmission`.

    Fields: ``client_uuid`` (UUID), ``grid_code``, ``worker`` (person id or phone),
    ``day`` (YYYY-MM-DD), ``started_at``, ``ended_at``, optional ``entered_at`` (ISO 8601;
    default ``received_at``), ``results`` (list of ``{item_code, result, note}`` or a mapping
    item code -> result), ``track`` (a GeoJSON LineString/MultiLineString, a list of
    ``[lon, lat]`` or a list of such lists; longitude/latitude in CGCS2000).

    Every problem is listed in one :class:`InputError` naming the field.
    """
    if not isinstance(data, Mapping):
        raise InputError("a patrol submission must be a JSON object")
    problems: list[str] = []
    unknown = sorted(set(data) - set(SUBMISSION_FIELDS))
    if unknown:
        problems.append(f"unknown field(s) {', '.join(unknown)}; expected "
                        f"{', '.join(SUBMISSION_FIELDS)}")
    client_uuid = _parse_uuid(data.get("client_uuid"), problems)
    grid_code = data.get("grid_code")
    if not isinstance(grid_code, str) or not grid_code.strip():
        problems.append("grid_code: missing or empty")
    worker = data.get("worker")
    if isinstance(worker, bool) or not isinstance(worker, (int, str)) or worker == "":
        problems.append("worker: missing; give the person id or phone")
    day = _parse_day(data.get("day"), "day", problems)
    started = _parse_time(data.get("started_at"), "started_at", problems)
    ended = _parse_time(data.get("ended_at"), "ended_at", problems)
    given = data.get("entered_at") is not None
    entered = (_parse_time(data.get("entered_at"), "entered_at", problems) if given
               else to_local(received_at))
    if started and ended and ended < started:
        problems.append(f"ended_at {ended.isoformat()} is before started_at "
                        f"{started.isoformat()}")
    if started and day and started.date() != day:
        problems.append(f"started_at {started.isoformat()} is not on the patrol day {day}")
    if started and entered and entered < started:
        problems.append(f"entered_at {entered.isoformat()} is before started_at "
                        f"{started.isoformat()}")
    results = _parse_results(data.get("results"), problems)
    track = parse_track(data.get("track"), problems)
    if problems:
        raise InputError(f"patrol submission refused ({len(problems)} problem(s))", problems)
    return PatrolSubmission(client_uuid, grid_code.strip(), worker, day, started, ended, entered,
                            results, track, entered_at_given=given)


def parse_submissions(items: Iterable[Mapping], *, received_at: datetime,
                      numbered: bool = True) -> list[PatrolSubmission]:
    """:func:`parse_submission` of each of ``items``; one :class:`InputError` lists the
    problems of every refused item, prefixed ``submission N: `` when ``numbered``."""
    parsed, problems, message = [], [], ""
    for n, item in enumerate(items):
        try:
            parsed.append(parse_submission(item, received_at=received_at))
        except InputError as error:
            where = f"submission {n}: " if numbered else ""
            message = error.message
            problems.extend(f"{where}{line}" for line in (error.details or [error.message]))
    if problems:
        raise InputError(message if not numbered else
                         f"patrol submissions refused ({len(problems)} problem(s))", problems)
    return parsed


def _parse_uuid(value, problems: list[str]) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value is not None else _missing("client_uuid", problems)
    except ValueError:
        problems.append(f"client_uuid: {value!r} is not a UUID")
        return None


def _missing(name: str, problems: list[str]) -> None:
    problems.append(f"{name}: missing")
    return None


def _parse_day(value, name: str, problems: list[str]) -> date | None:
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if value is None:
        return _missing(name, problems)
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        problems.append(f"{name}: {value!r} is not a date (YYYY-MM-DD)")
        return None


def _parse_time(value, name: str, problems: list[str]) -> datetime | None:
    if value is None:
        return _missing(name, problems)
    if isinstance(value, datetime):
        return to_local(value)
    try:
        return to_local(datetime.fromisoformat(str(value)))
    except ValueError:
        problems.append(f"{name}: {value!r} is not an ISO 8601 date and time")
        return None


def _parse_results(value, problems: list[str]) -> tuple[ItemResult, ...]:
    if value is None:
        return ()
    if isinstance(value, Mapping):
        value = [{"item_code": k, "result": v} for k, v in value.items()]
    if not isinstance(value, list):
        problems.append("results: must be a list of {item_code, result, note} or a mapping "
                        "item code -> result")
        return ()
    out, seen = [], set()
    for n, raw in enumerate(value):
        where = f"results[{n}]"
        if not isinstance(raw, Mapping):
            problems.append(f"{where}: must be an object with item_code and result")
            continue
        code, result, note = raw.get("item_code"), raw.get("result"), raw.get("note")
        bad = False
        if not isinstance(code, str) or not code:
            problems.append(f"{where}.item_code: missing")
            bad = True
        elif code in seen:
            problems.append(f"{where}.item_code: {code} reported more than once")
            bad = True
        if result not in RESULTS:
            problems.append(f"{where}.result: {result!r} is not one of {', '.join(RESULTS)}")
            bad = True
        if note is not None and not isinstance(note, str):
            problems.append(f"{where}.note: must be text")
            bad = True
        if not bad:
            seen.add(code)
            out.append(ItemResult(code, result, note or None))
    return tuple(sorted(out, key=lambda r: r.item_code))


def parse_track(value, problems: list[str]) -> shapely.MultiLineString | None:
    """Read a track (GeoJSON line geometry or nested ``[lon, lat]`` lists) into a snapped
    CGCS2000 MultiLineString; problems are appended, naming ``track``."""
    if value is None:
        return None
    if isinstance(value, Mapping):
        kind, coords = value.get("type"), value.get("coordinates")
        if kind == "LineString":
            parts = [coords]
        elif kind == "MultiLineString":
            parts = coords
        else:
            problems.append(f"track: geometry type {kind!r} is not LineString or MultiLineString")
            return None
    elif isinstance(value, list) and value and _positions(value[:1]) is not None:
        parts = [value]
    else:
        parts = value
    if not isinstance(parts, list) or not parts:
        problems.append("track: must be a non-empty list of [lon, lat] positions or of lines")
        return None
    lines, before = [], len(problems)
    for n, part in enumerate(parts):
        xy = _positions(part)
        if xy is None:
            problems.append(f"track[{n}]: must be a list of [lon, lat] number pairs")
            continue
        if len(xy) < 2:
            problems.append(f"track[{n}]: a line needs at least 2 positions, got {len(xy)}")
            continue
        outside = ~((np.abs(xy[:, 0]) <= 180) & (np.abs(xy[:, 1]) <= 90))
        for k in np.flatnonzero(outside):
            problems.append(f"track[{n}][{k}]: ({part[k][0]}, {part[k][1]}) is not a "
                            "longitude/latitude")
        lines.append(xy)
    if len(problems) > before:
        return None
    line_geoms = shapely.linestrings(np.concatenate(lines), indices=np.repeat(
        np.arange(len(lines)), [len(xy) for xy in lines]))
    return snap(shapely.multilinestrings(line_geoms), DEFAULT_SRID)


def _positions(part) -> np.ndarray | None:
    """``part`` as an (n, 2) array of lon/lat when it is a list of ``[lon, lat]`` (or
    ``[lon, lat, z]``) finite numbers (not booleans), else None."""
    if not isinstance(part, list) or not all(
            isinstance(p, (list, tuple)) and len(p) in (2, 3) for p in part):
        return None
    kinds = {type(c) for p in part for c in p}
    if not all(issubclass(k, (int, float)) and not issubclass(k, bool) for k in kinds):
        return None
    xy = np.array([(p[0], p[1]) for p in part], dtype=float).reshape(-1, 2)
    z = [p[2] for p in part if len(p) == 3]
    if not (np.isfinite(xy).all() and np.isfinite(np.asarray(z, dtype=float)).all()):
        return None
    return xy


def check_results_against_plan(results: Iterable[ItemResult], item_codes: Iterable[str]) -> None:
    """Refuse results for items that are not tasks of the plan, naming every one."""
    allowed = set(item_codes)
    bad = [r.item_code for r in results if r.item_code not in allowed]
    if bad:
        raise InputError("results name items that are not in the day's plan",
                         [f"results: item {c} is not a task of the plan (tasks: "
                          f"{', '.join(sorted(allowed))})" for c in bad])


def diff_submissions(stored: PatrolSubmission, new: PatrolSubmission) -> list[str]:
    """Names of the fields in which ``new`` differs from ``stored`` (same client UUID).

    ``worker`` is compared as given (resolve it to the same form first). ``entered_at`` is
    compared only when the new submission gave it.
    """
    names = ["grid_code", "worker", "day", "started_at", "ended_at", "results"]
    if new.entered_at_given:
        names.append("entered_at")

    def value(sub: PatrolSubmission, name: str):
        return _reported(sub.results) if name == "results" else getattr(sub, name)

    differ = [n for n in names if value(stored, n) != value(new, n)]
    a, b = stored.track, new.track
    if (a is None) != (b is None) or (a is not None and not shapely.equals_exact(
            a, b, tolerance=2e-7)):
        differ.append("track")
    return differ


def _reported(results: Iterable[ItemResult]) -> dict[str, tuple[str, str | None]]:
    """Results that say something: an unreported item is the same as ``not_checked``."""
    return {r.item_code: (r.result, r.note) for r in results
            if r.result != "not_checked" or r.note}


# ---------------------------------------------------------------- coverage

def measure_patrol_coverage(grids: gpd.GeoSeries | gpd.GeoDataFrame,
                            tracks: gpd.GeoSeries | gpd.GeoDataFrame, *,
                            buffer_m: float = DEFAULT_BUFFER_M) -> pd.Series:
    """Share of each grid's area within ``buffer_m`` metres of any of ``tracks``.

    Parameters
    ----------
    grids : polygons (index kept in the result).
    tracks : the day's tracks (lines or points), in the same CRS as ``grids``.
    buffer_m : buffer distance in metres.

    Returns
    -------
    Series of floats in [0, 1] named ``covered_share``, indexed like ``grids``. Areas are
    measured in :func:`gisgrid.crs.local_metric_crs` of the grids.

    Raises :class:`CRSError` when the CRSs differ or are missing.
    """
    if not buffer_m > 0:
        raise InputError(f"buffer_m must be a positive number of metres, got {buffer_m!r}")
    grid_crs = require_crs(grids, "the grids")
    if len(tracks):
        track_crs = require_crs(tracks, "the tracks")
        if not pyproj.CRS.from_user_input(track_crs).equals(grid_crs):
            raise CRSError(f"tracks are in {track_crs.to_string()} but grids in "
                           f"{grid_crs.to_string()}: reproject one of them first")
    share = pd.Series(0.0, index=grids.index, name="covered_share")
    if not len(grids) or not len(tracks):
        return share
    metric = local_metric_crs(grids)
    grid_geoms = grids.geometry.to_crs(metric).values
    track_geoms = tracks.geometry.to_crs(metric).values
    track_geoms = track_geoms[~(shapely.is_missing(track_geoms) | shapely.is_empty(track_geoms))]
    buffers = shapely.buffer(track_geoms, buffer_m)
    tree = shapely.STRtree(buffers)
    grid_idx, buf_idx = tree.query(grid_geoms, predicate="intersects")
    # the covered part of a grid is the union of its pieces (grid ∩ one buffer): intersect
    # every pair at once, then union the pieces of each grid pairwise, halving per round
    pieces = shapely.intersection(grid_geoms[grid_idx], buffers[buf_idx])
    groups, covered = union_by_group(grid_idx, pieces)
    areas = shapely.area(grid_geoms)
    values = np.zeros(len(grid_geoms))
    values[groups] = shapely.area(covered)
    with np.errstate(divide="ignore", invalid="ignore"):
        values = np.where(areas > 0, values / np.where(areas > 0, areas, 1), 0.0)
    share[:] = np.clip(values, 0.0, 1.0)
    return share


def union_by_group(groups: np.ndarray, geoms: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Union ``geoms`` that share a group label, vectorised.

    Each round unions every other geometry of a group with its neighbour in one
    :func:`shapely.union` call, so a group of ``k`` geometries takes ``ceil(log2 k)`` rounds.

    Returns the sorted distinct labels and the union of each group's geometries.

    >>> import shapely
    >>> labels, unions = union_by_group(np.array([1, 0, 1]), np.array(
    ...     [shapely.box(0, 0, 2, 1), shapely.box(5, 5, 6, 6), shapely.box(1, 0, 3, 1)]))
    >>> labels.tolist(), shapely.area(unions).tolist()
    ([0, 1], [1.0, 3.0])
    """
    order = np.argsort(groups, kind="stable")
    groups, geoms = np.asarray(groups)[order], np.asarray(geoms, dtype=object)[order]
    while len(groups) > 1:
        same_as_next = groups[1:] == groups[:-1]
        if not same_as_next.any():
            break
        position = np.arange(len(groups))
        first = np.maximum.accumulate(np.where(np.r_[True, ~same_as_next], position, 0))
        even = (position - first) % 2 == 0
        left = np.flatnonzero(even & np.r_[same_as_next, False])
        geoms[left] = shapely.union(geoms[left], geoms[left + 1])
        groups, geoms = groups[even], geoms[even]
    return groups, geoms


def days_between(first: date, last: date) -> list[date]:
    """Every day from ``first`` to ``last`` inclusive (for plans over a period)."""
    if last < first:
        raise InputError(f"the period ends ({last}) before it starts ({first})")
    return [first + timedelta(days=n) for n in range((last - first).days + 1)]
