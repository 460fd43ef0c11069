"""The patrol store: the only SQL touching ``patrol_plan``, ``patrol_task``, ``patrol``,
``patrol_item_result`` and ``patrol_coverage``.

Every function takes a SQLAlchemy ``Connection``; the caller owns the transaction. The rules
(daily plans with carry-over, submissions, lateness, coverage) live in :mod:`gisgrid.patrols`.

Plans, patrols and coverage are written in bulk: :func:`build_plans` makes every plan of a day
in a handful of statements, :func:`record_patrols` records a batch with the rules of
:func:`record_patrol` (which is a batch of one), and large parameter lists travel as one
array literal (:func:`_array`) unnested in SQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timezone

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
import sqlalchemy as sa

from gisgrid.checklists import Checklist, checklist_code_for
from gisgrid.crs import DEFAULT_SRID as LONLAT_SRID
from gisgrid.db.checklists import find_checklist, read_checklist
from gisgrid.db.engine import storage_srid
from gisgrid.db.grids import GridRow, read_base_grids, read_grids, under_params
from gisgrid.db.people import person_not_found, read_assignments_of, read_workers, worker_key
from gisgrid.errors import Conflict, GisgridError, InputError
from gisgrid.levels import Level
from gisgrid.patrols import (DEFAULT_BUFFER_M, DONE_RESULTS, DailyPlan, ItemResult, OpenTask,
                             PatrolSubmission, build_daily_plan, check_results_against_plan,
                             diff_submissions, measure_patrol_coverage)
from gisgrid.people import AssignmentRecord, PersonRecord


def _array(values: Iterable) -> str:
    """A PostgreSQL array literal of ``values`` (None is NULL; dates and times in ISO 8601),
    sent as one text parameter and CAST to the array type in SQL: an order of magnitude
    cheaper to send than a list of Python objects (notably bytea and timestamps)."""
    def item(value) -> str:
        if value is None:
            return "NULL"
        if isinstance(value, bool):
            return "t" if value else "f"
        if isinstance(value, int):
            return str(value)
        text = value.isoformat() if isinstance(value, (date, datetime)) else str(value)
        return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
    values = list(values)
    kinds = set(map(type, values))
    if kinds <= {int, type(None)}:  # fast paths of the common columns: ids, and plain words
        return "{" + ",".join(["NULL" if v is None else str(v) for v in values]) + "}"
    if kinds == {str}:
        joined = '","'.join(values)
        if "\\" not in joined and '"' not in joined:
            return '{"' + joined + '"}'
    return "{" + ",".join(map(item, values)) + "}"


# ---------------------------------------------------------------------------- plans

@dataclass(frozen=True)
class PlanOutcome:
    """Plans made for a day: created, already there, and tasks carried over."""

    day: date
    created: tuple[str, ...] = ()
    existing: tuple[str, ...] = ()
    carried_tasks: int = 0
    skipped: tuple[str, ...] = field(default=())


def _open_tasks(conn: sa.Connection, grid_ids: list[int], day: date
                ) -> dict[int, list[OpenTask]]:
    """Tasks still open on plans before ``day`` of each of ``grid_ids``, by grid id."""
    rows = conn.execute(sa.text("""
        SELECT p.grid_id, i.code, t.first_planned_on, t.id, t.item_id
        FROM patrol_task t JOIN patrol_plan p ON p.id = t.plan_id
        JOIN checklist_item i ON i.id = t.item_id
        WHERE t.status = 'open' AND p.grid_id = ANY(:g) AND p.day < :day
        ORDER BY t.id
    """), {"g": grid_ids, "day": day}).all()
    found: dict[int, list[OpenTask]] = {}
    for grid_id, code, first, task_id, item_id in rows:
        found.setdefault(grid_id, []).append(OpenTask(code, first, task_id, item_id))
    return found


def _checklist_for(conn: sa.Connection, grid: Mapping, day: date, cache: dict
                   ) -> tuple[int, Checklist, dict[str, int]]:
    """The checklist (id, list, item ids by code) in force for base grid ``grid`` on ``day``."""
    key = (checklist_code_for(grid["village_kind"]), grid["city_id"], day)
    if key not in cache:
        checklist_id = find_checklist(conn, key[0], city_id=key[1], day=day)
        cache[key] = (checklist_id, *read_checklist(conn, checklist_id))
    return cache[key]


def _write_plans(conn: sa.Connection, day: date, grids: Iterable[Mapping], *,
                 checklists: dict | None = None) -> tuple[dict[int, int], dict[int, DailyPlan]]:
    """Make the plans of base grids ``grids`` (:func:`read_base_grids` rows) for ``day`` in bulk.

    Returns the plan id of every grid, and the :class:`DailyPlan` of those whose plan was made
    now (both by grid id). The rules are :func:`gisgrid.patrols.build_daily_plan`'s; the grids
    are locked (``FOR UPDATE``, in id order) so that concurrent planners of a grid serialise.
    A statement reads the open tasks of all grids, three write plans, tasks and the
    superseded tasks' status.
    """
    by_id = {g["id"]: g for g in grids}
    if not by_id:
        return {}, {}
    ids = sorted(by_id)
    conn.execute(sa.text("SELECT id FROM grid WHERE id = ANY(:ids) ORDER BY id FOR UPDATE"),
                 {"ids": ids})
    plan_ids = dict(conn.execute(sa.text(
        "SELECT grid_id, id FROM patrol_plan WHERE day = :d AND grid_id = ANY(:ids)"),
        {"d": day, "ids": ids}).all())
    todo = [by_id[i] for i in ids if i not in plan_ids]
    if not todo:
        return plan_ids, {}
    no_list = [g["code"] for g in todo if g["village_kind"] is None]
    if no_list:
        raise InputError(f"{len(no_list)} base grid(s) have no village/community parent, so no "
                         "checklist", [f"grid {c}: no village/community parent" for c in no_list])
    cache = {} if checklists is None else checklists
    open_tasks = _open_tasks(conn, [g["id"] for g in todo], day)
    plans, item_ids, checklist_ids = {}, {}, {}
    for grid in todo:
        checklist_id, checklist, items = _checklist_for(conn, grid, day, cache)
        plans[grid["id"]] = build_daily_plan(grid["code"], day, checklist,
                                             open_tasks.get(grid["id"], ()))
        item_ids[grid["id"]], checklist_ids[grid["id"]] = items, checklist_id
    made = dict(conn.execute(sa.text("""
        INSERT INTO patrol_plan (grid_id, day, checklist_id)
        SELECT g, :d, c FROM unnest(CAST(:g AS bigint[]), CAST(:c AS bigint[])) AS u(g, c)
        RETURNING grid_id, id"""),
        {"d": day, "g": _array(plans), "c": _array(checklist_ids[g] for g in plans)}).all())
    plan_ids.update(made)
    rows = [(made[g], t.item_id or item_ids[g][t.item_code], t.carried_from_id,
             t.first_planned_on) for g, plan in plans.items() for t in plan.tasks]
    plan_col, item_col, carried_col, first_col = zip(*rows)
    conn.execute(sa.text("""
        INSERT INTO patrol_task (plan_id, item_id, carried_from_id, first_planned_on, status)
        SELECT p, i, c, f, 'open' FROM unnest(CAST(:p AS bigint[]), CAST(:i AS bigint[]),
            CAST(:c AS bigint[]), CAST(:f AS date[])) WITH ORDINALITY AS u(p, i, c, f, n)
        ORDER BY n"""), {"p": _array(plan_col), "i": _array(item_col),
                         "c": _array(carried_col), "f": _array(first_col)})
    # every task still open on an earlier day now lives on in the new plan (an item open on
    # several days is carried once, from its oldest task; the others are superseded)
    superseded = [t.task_id for tasks in open_tasks.values() for t in tasks]
    if superseded:
        conn.execute(sa.text(
            "UPDATE patrol_task SET status = 'carried_over' "
            "WHERE id = ANY(CAST(:ids AS bigint[]))"), {"ids": _array(superseded)})
    return plan_ids, plans


def ensure_plan(conn: sa.Connection, grid: Mapping, day: date, *,
                checklists: dict | None = None) -> tuple[int, DailyPlan | None]:
    """The plan id of base grid ``grid`` (a :func:`read_base_grids` row) for ``day``, building
    and storing it when missing (then the :class:`DailyPlan` is returned too, else None).

    ``checklists`` is an optional cache of checklists read in this transaction, shared across
    calls.
    """
    if grid["village_kind"] is None:
        raise InputError(f"grid {grid['code']}: no village/community parent, so no checklist")
    plan_ids, made = _write_plans(conn, day, [grid], checklists=checklists)
    return plan_ids[grid["id"]], made.get(grid["id"])


def build_plans(conn: sa.Connection, day: date, *, under: str | None = None) -> PlanOutcome:
    """Make the plan of every current base grid (under ``under``) for ``day``.

    Idempotent: a grid that already has its plan for ``day`` is left alone. Items not done on
    earlier plans are carried into the new plan with their first-planned day. Base grids with
    no village/community parent have no checklist and are listed as skipped.

    Set-based: a handful of statements for all grids of the day, whatever their number.
    """
    grids = read_base_grids(conn, under=under)
    skipped = tuple(g["code"] for g in grids if g["village_kind"] is None)
    planned = [g for g in grids if g["village_kind"] is not None]
    _, made = _write_plans(conn, day, planned)
    created = tuple(g["code"] for g in planned if g["id"] in made)
    existing = tuple(g["code"] for g in planned if g["id"] not in made)
    carried = sum(plan.carried_count for plan in made.values())
    return PlanOutcome(day, created, existing, carried, skipped)


def read_plan_tasks(conn: sa.Connection, grid_code: str, day: date) -> list[dict]:
    """Tasks of a grid's plan for ``day``: item code, kind, texts, first planned, age, status."""
    rows = conn.execute(sa.text("""
        SELECT i.code AS item_code, i.item_kind, i.text_zh, i.text_en, t.first_planned_on,
               (p.day - t.first_planned_on) AS age_days, t.status, t.id AS task_id,
               t.carried_from_id
        FROM patrol_plan p JOIN grid g ON g.id = p.grid_id
        JOIN patrol_task t ON t.plan_id = p.id JOIN checklist_item i ON i.id = t.item_id
        WHERE g.code = :code AND g.valid_to IS NULL AND p.day = :day
        ORDER BY t.first_planned_on, i.position, i.code
    """), {"code": grid_code, "day": day}).mappings().all()
    return [dict(r) for r in rows]


def read_plans(conn: sa.Connection, day: date, *, under: str | None = None) -> list[dict]:
    """One row per plan of ``day``: grid, checklist, task counts by status, oldest open age."""
    where, params = under_params(conn, under)
    rows = conn.execute(sa.text(f"""
        SELECT g.code AS grid_code, c.code AS checklist, c.version,
               count(*) AS tasks,
               count(*) FILTER (WHERE t.status = 'done') AS done,
               count(*) FILTER (WHERE t.status = 'open') AS open,
               count(*) FILTER (WHERE t.first_planned_on < p.day) AS carried_in,
               max(p.day - t.first_planned_on) AS max_age_days
        FROM patrol_plan p JOIN grid g ON g.id = p.grid_id
        JOIN checklist c ON c.id = p.checklist_id JOIN patrol_task t ON t.plan_id = p.id
        WHERE p.day = :day AND {where}
        GROUP BY g.code, c.code, c.version ORDER BY g.code"""),
        {**params, "day": day}).mappings().all()
    return [dict(r) for r in rows]


# ---------------------------------------------------------------------------- patrols

@dataclass(frozen=True)
class PatrolOutcome:
    """What :func:`record_patrol` did: the patrol id, whether it is new, lateness, warnings."""

    patrol_id: int
    created: bool
    late: bool
    plan_id: int | None
    warnings: tuple[str, ...] = ()


def _stored_submissions(conn: sa.Connection, client_uuids: Iterable[uuid.UUID]
                        ) -> dict[uuid.UUID, tuple[int, bool, PatrolSubmission]]:
    """The stored patrols with these client UUIDs: (id, late, submission) by UUID."""
    uuids = list(set(client_uuids))
    if not uuids:
        return {}
    rows = conn.execute(sa.text(f"""
        SELECT pa.client_uuid, pa.id, pa.late, g.code, pa.person_id, pa.day, pa.started_at,
               pa.ended_at, pa.entered_at,
               ST_AsBinary(ST_Transform(pa.track, {LONLAT_SRID})) AS track
        FROM patrol pa LEFT JOIN grid g ON g.id = pa.grid_id
        WHERE pa.client_uuid = ANY(:u)"""), {"u": uuids}).all()
    if not rows:
        return {}
    results: dict[int, list[ItemResult]] = {}
    for patrol_id, code, result, note in conn.execute(sa.text("""
            SELECT r.patrol_id, i.code, r.result, r.note FROM patrol_item_result r
            JOIN checklist_item i ON i.id = r.item_id
            WHERE r.patrol_id = ANY(:ids) AND (r.result <> 'not_checked' OR r.note IS NOT NULL)
            ORDER BY r.patrol_id, i.code"""), {"ids": [r.id for r in rows]}):
        results.setdefault(patrol_id, []).append(ItemResult(code, result, note))
    return {row.client_uuid: (row.id, row.late, PatrolSubmission(
        row.client_uuid, row.code, row.person_id, row.day, row.started_at, row.ended_at,
        row.entered_at, tuple(results.get(row.id, ())),
        shapely.from_wkb(bytes(row.track)) if row.track is not None else None))
        for row in rows}


def record_patrol(conn: sa.Connection, submission: PatrolSubmission) -> PatrolOutcome:
    """Store one patrol submission and mark its plan's tasks done.

    - Idempotent on ``client_uuid``: the same content again returns the stored patrol
      (``created=False``); other content under the same UUID is a :class:`Conflict` naming
      the fields that differ.
    - The grid must be a current base grid and the worker a known person (id or phone), else
      :class:`InputError` naming the field.
    - The day's plan is made on the fly if missing (with carry-over). Results must name tasks of
      that plan; a task not reported is recorded ``not_checked`` and stays open (carried over).
    - A task done late, after it was carried to a later plan, closes the carried task too.

    The same code path as :func:`record_patrols` with a batch of one; a refused submission
    leaves nothing behind (not even the plan made on the fly).
    """
    outcome = _record_patrols(conn, [submission])[0]
    if isinstance(outcome, GisgridError):
        raise outcome
    return outcome


def record_patrols(conn: sa.Connection, submissions: Sequence[PatrolSubmission]
                   ) -> list[PatrolOutcome]:
    """Store many patrol submissions in bulk, with exactly the rules of :func:`record_patrol`.

    The outcomes are those of recording the submissions one by one in the given order
    (carry-over, late flags, idempotency on ``client_uuid`` against the database and within
    the batch, closing of carried tasks), but plans, patrols, item results and task updates
    are written a few statements at a time. The batch is split only where order matters: a
    plan to be made on the fly for a grid that an earlier submission of the batch touched.

    All or nothing: when any submission is refused nothing of the batch is written, and one
    error lists every refused submission by position and UUID (:class:`Conflict` when every
    refusal is a conflict, else :class:`InputError`).
    """
    outcomes = _record_patrols(conn, list(submissions))
    refused = [(n, o) for n, o in enumerate(outcomes) if isinstance(o, GisgridError)]
    if not refused:
        return outcomes
    details = []
    for n, error in refused:
        where = f"submission {n} ({submissions[n].client_uuid})"
        details.append(f"{where}: {error.message}")
        details.extend(f"{where}: {d}" for d in error.details)
    kind = Conflict if all(isinstance(e, Conflict) for _, e in refused) else InputError
    raise kind(f"{len(refused)} of {len(outcomes)} patrol submission(s) refused; none of the "
               "batch was recorded", details)


@dataclass
class _Fresh:
    """A submission to be written: normalised (worker = person id), its base grid and plan."""

    index: int
    submission: PatrolSubmission
    grid: Mapping
    person: PersonRecord
    plan_id: int | None = None


def _record_patrols(conn: sa.Connection, subs: list[PatrolSubmission]
                    ) -> list[PatrolOutcome | GisgridError]:
    """The outcome or the refusal of every submission; refusals roll back the whole batch."""
    out: list = [None] * len(subs)
    if not subs:
        return out
    people = read_workers(conn, [s.worker for s in subs])
    stored = _stored_submissions(conn, [s.client_uuid for s in subs])
    grids, base = _read_patrol_grids(conn, {s.grid_code for s in subs})
    normalised: list[PatrolSubmission | None] = [None] * len(subs)
    first_of: dict[uuid.UUID, int] = {}
    fresh: list[_Fresh] = []
    for n, sub in enumerate(subs):
        person = people.get(worker_key(sub.worker))
        if person is None:
            out[n] = person_not_found("worker", sub.worker)
            continue
        normalised[n] = new = _with_worker(sub, person.id)
        if sub.client_uuid in stored:
            out[n] = _same_or_conflict(stored[sub.client_uuid], new)
            continue
        if sub.client_uuid in first_of:
            continue  # compared with the first of the batch once that one is written
        first_of[sub.client_uuid] = n
        grid = grids.get(sub.grid_code)
        if grid is None:
            out[n] = InputError(f"grid_code: no current grid with code {sub.grid_code!r}")
        elif grid.level != Level.BASE:
            out[n] = InputError(f"grid_code: {grid.code} is a level-{grid.level} grid; patrols "
                                "are planned per base grid (level 4)")
        else:
            fresh.append(_Fresh(n, new, base[grid.id], person))
    savepoint = conn.begin_nested()
    try:
        _write_patrols(conn, fresh, out)
        for n, sub in enumerate(normalised):
            if sub is not None and out[n] is None:
                out[n] = _same_as_first(out[first_of[sub.client_uuid]],
                                        normalised[first_of[sub.client_uuid]], sub)
    except BaseException:
        savepoint.rollback()
        raise
    if any(isinstance(o, GisgridError) for o in out):
        savepoint.rollback()
    else:
        savepoint.commit()
    return out


def _read_patrol_grids(conn: sa.Connection, codes: Iterable[str]
                       ) -> tuple[dict[str, GridRow], dict[int, dict]]:
    """Current grids by code, and the :func:`read_base_grids` rows of the base ones by id."""
    grids = {row[1]: GridRow(*row) for row in conn.execute(sa.text(
        "SELECT id, code, name, level, kind, parent_id, path FROM grid "
        "WHERE code = ANY(:codes) AND valid_to IS NULL"), {"codes": list(codes)})}
    base_ids = [g.id for g in grids.values() if g.level == Level.BASE]
    base = {g["id"]: g for g in read_base_grids(conn, ids=base_ids)} if base_ids else {}
    return grids, base


def _split_runs(fresh: list[_Fresh], planned: set[tuple[int, date]]) -> list[list[_Fresh]]:
    """Cut the batch where recording one by one would see an earlier submission's effect.

    Making a plan reads the grid's open tasks, which earlier patrols of the same grid change:
    a run ends before a submission that needs a new plan for a grid already in the run.
    ``planned`` holds the (grid id, day) whose plan exists; it is updated.
    """
    runs: list[list[_Fresh]] = [[]]
    grids_in_run: set[int] = set()
    for item in fresh:
        key = (item.grid["id"], item.submission.day)
        if key not in planned:
            if key[0] in grids_in_run:
                runs.append([])
                grids_in_run = set()
            planned.add(key)
        runs[-1].append(item)
        grids_in_run.add(key[0])
    return [run for run in runs if run]


def _write_patrols(conn: sa.Connection, fresh: list[_Fresh], out: list) -> None:
    """Write the new submissions run by run; outcomes and refusals go to ``out``."""
    if not fresh:
        return
    pairs = {(f.grid["id"], f.submission.day) for f in fresh}
    grid_col, day_col = (list(c) for c in zip(*pairs))
    plan_of = {(g, d): p for g, d, p in conn.execute(sa.text("""
        SELECT p.grid_id, p.day, p.id FROM patrol_plan p
        JOIN unnest(CAST(:g AS bigint[]), CAST(:d AS date[])) AS u(g, d)
          ON p.grid_id = u.g AND p.day = u.d"""), {"g": grid_col, "d": day_col})}
    assignments = read_assignments_of(conn, {f.person.id for f in fresh})
    checklists: dict = {}
    for run in _split_runs(fresh, set(plan_of)):
        to_make: dict[date, dict[int, Mapping]] = {}
        for f in run:
            if (f.grid["id"], f.submission.day) in plan_of:
                continue
            if f.grid["village_kind"] is None:
                out[f.index] = InputError(f"grid {f.grid['code']}: no village/community "
                                          "parent, so no checklist")
            else:
                to_make.setdefault(f.submission.day, {})[f.grid["id"]] = f.grid
        for day, rows in to_make.items():
            made, _ = _write_plans(conn, day, rows.values(), checklists=checklists)
            plan_of.update({(g, day): p for g, p in made.items()})
        writable = []
        for f in run:
            f.plan_id = plan_of.get((f.grid["id"], f.submission.day))
            if f.plan_id is not None:
                writable.append(f)
        tasks = _read_tasks(conn, {f.plan_id for f in writable})
        checked = []
        for f in writable:
            try:
                check_results_against_plan(f.submission.results,
                                           [code for _, _, code in tasks[f.plan_id]])
            except InputError as error:
                out[f.index] = error
                continue
            checked.append(f)
        _insert_patrols(conn, checked, tasks, out)
        for f in checked:
            outcome = out[f.index]
            if isinstance(outcome, PatrolOutcome) and outcome.created:
                out[f.index] = replace(outcome, warnings=_worker_warnings(
                    assignments, f.person, f.grid, f.submission.day))


def _read_tasks(conn: sa.Connection, plan_ids: Iterable[int]
                ) -> dict[int, list[tuple[int, int, str]]]:
    """(task id, item id, item code) of each plan, in checklist order, by plan id."""
    rows = conn.execute(sa.text("""
        SELECT t.plan_id, array_agg(t.id ORDER BY i.position, t.id),
               array_agg(t.item_id ORDER BY i.position, t.id),
               array_agg(i.code ORDER BY i.position, t.id)
        FROM patrol_task t JOIN checklist_item i ON i.id = t.item_id
        WHERE t.plan_id = ANY(CAST(:p AS bigint[])) GROUP BY t.plan_id"""),
        {"p": _array(plan_ids)}).all()
    return {plan_id: list(zip(ids, items, codes)) for plan_id, ids, items, codes in rows}


def _insert_patrols(conn: sa.Connection, checked: list[_Fresh],
                    tasks: Mapping[int, list[tuple[int, int, str]]], out: list) -> None:
    """Insert patrols, their item results and the done tasks (with the tasks they were
    carried into) in three statements; a UUID stored concurrently is compared instead."""
    if not checked:
        return
    srid = storage_srid(conn)
    subs = [f.submission for f in checked]
    ids = dict(conn.execute(sa.text(f"""
        INSERT INTO patrol (client_uuid, plan_id, person_id, grid_id, day, started_at,
            ended_at, entered_at, late, track)
        SELECT u, p, pe, g, d, s, e, en, l, CASE WHEN t IS NULL THEN NULL ELSE ST_Multi(
            ST_Transform(ST_SetSRID(ST_GeomFromWKB(decode(t, 'hex')), {LONLAT_SRID}), :srid)) END
        FROM unnest(CAST(:u AS uuid[]), CAST(:p AS bigint[]), CAST(:pe AS bigint[]),
            CAST(:g AS bigint[]), CAST(:d AS date[]), CAST(:s AS timestamptz[]),
            CAST(:e AS timestamptz[]), CAST(:en AS timestamptz[]), CAST(:l AS boolean[]),
            CAST(:t AS text[])) WITH ORDINALITY AS x(u, p, pe, g, d, s, e, en, l, t, n)
        ORDER BY n
        ON CONFLICT (client_uuid) DO NOTHING
        RETURNING client_uuid, id"""), {
        "srid": srid, "u": _array(s.client_uuid for s in subs),
        "p": _array(f.plan_id for f in checked), "pe": _array(f.person.id for f in checked),
        "g": _array(f.grid["id"] for f in checked), "d": _array(s.day for s in subs),
        "s": _array(s.started_at for s in subs), "e": _array(s.ended_at for s in subs),
        "en": _array(s.entered_at for s in subs), "l": _array(s.late for s in subs),
        "t": _array(shapely.to_wkb(np.array([s.track for s in subs], dtype=object),
                                   hex=True))}).all())
    lost = [f for f in checked if f.submission.client_uuid not in ids]
    if lost:  # the same UUIDs were stored concurrently
        stored = _stored_submissions(conn, [f.submission.client_uuid for f in lost])
        for f in lost:
            out[f.index] = _same_or_conflict(stored[f.submission.client_uuid], f.submission)
    rows, done = [], []
    for f in checked:
        patrol_id = ids.get(f.submission.client_uuid)
        if patrol_id is None:
            continue
        reported = {r.item_code: r for r in f.submission.results}
        for task_id, item_id, code in tasks[f.plan_id]:
            result = reported.get(code)
            value = result.result if result is not None else "not_checked"
            rows.append((patrol_id, task_id, item_id, value,
                         result.note if result is not None else None))
            if value in DONE_RESULTS:
                done.append(task_id)
        out[f.index] = PatrolOutcome(patrol_id, True, f.submission.late, f.plan_id)
    if rows:
        patrol_col, task_col, item_col, result_col, note_col = zip(*rows)
        conn.execute(sa.text("""
            INSERT INTO patrol_item_result (patrol_id, task_id, item_id, result, note)
            SELECT * FROM unnest(CAST(:p AS bigint[]), CAST(:t AS bigint[]),
                CAST(:i AS bigint[]), CAST(:r AS text[]), CAST(:n AS text[]))"""),
            {"p": _array(patrol_col), "t": _array(task_col), "i": _array(item_col),
             "r": _array(result_col), "n": _array(note_col)})
    if done:
        _close_tasks(conn, done)


def _close_tasks(conn: sa.Connection, task_ids: list[int]) -> None:
    """Mark tasks done, with every task they were carried into (the carry-over chain).

    The chain is followed step by step (usually one step finds nothing: a task done on its
    own day was not carried yet) rather than with a recursive CTE, whose row estimate is so
    far off that PostgreSQL JIT-compiles the update (~0.1-0.2 s per call).
    """
    chain, step = list(task_ids), list(task_ids)
    while step:
        step = conn.execute(sa.text(
            "SELECT id FROM patrol_task WHERE carried_from_id = ANY(CAST(:ids AS bigint[]))"),
            {"ids": _array(step)}).scalars().all()
        chain.extend(step)
    conn.execute(sa.text(
        "UPDATE patrol_task SET status = 'done' "
        "WHERE id = ANY(CAST(:ids AS bigint[])) AND status <> 'done'"), {"ids": _array(chain)})


def _with_worker(submission: PatrolSubmission, person_id: int) -> PatrolSubmission:
    return replace(submission, worker=person_id)


def _same_or_conflict(stored: tuple[int, bool, PatrolSubmission],
                      new: PatrolSubmission) -> PatrolOutcome | Conflict:
    """The stored patrol's outcome when ``new`` says the same, else the :class:`Conflict`."""
    patrol_id, late, old = stored
    differ = diff_submissions(old, new)
    if differ:
        return Conflict(f"client_uuid {new.client_uuid} is already patrol {patrol_id} with "
                        f"other content", [f"{name} differs" for name in differ])
    return PatrolOutcome(patrol_id, False, late, None)


def _same_as_first(first: PatrolOutcome | GisgridError, first_sub: PatrolSubmission,
                   new: PatrolSubmission) -> PatrolOutcome | GisgridError:
    """The outcome of a repeat, within one batch, of the submission ``first_sub``."""
    if isinstance(first, GisgridError):
        return first if not diff_submissions(first_sub, new) else Conflict(
            f"client_uuid {new.client_uuid} appears twice in the batch with other content",
            [f"{name} differs" for name in diff_submissions(first_sub, new)])
    return _same_or_conflict((first.patrol_id, first.late, first_sub), new)

def _worker_warnings(assignments: Mapping[int, list[AssignmentRecord]], person: PersonRecord,
                     grid: Mapping, day: date) -> tuple[str, ...]:
    if any(a.grid_id == grid["id"] and a.active_on(day) for a in assignments.get(person.id, ())):
        return ()
    return (f"worker {person.id} ({person.name}) is not assigned to grid {grid['code']} "
            f"on {day}",)


def read_patrols(conn: sa.Connection, *, day: date | None = None,
                 under: str | None = None) -> list[dict]:
    """Stored patrols (of ``day``, of grids under ``under``) with result counts."""
    where, params = under_params(conn, under)
    rows = conn.execute(sa.text(f"""
        SELECT pa.id, pa.client_uuid::text AS client_uuid, g.code AS grid_code,
               pe.name AS worker, pa.day, pa.started_at, pa.ended_at, pa.entered_at, pa.late,
               count(r.id) FILTER (WHERE r.result = 'ok') AS ok,
               count(r.id) FILTER (WHERE r.result = 'hazard_found') AS hazard_found,
               count(r.id) FILTER (WHERE r.result = 'not_checked') AS not_checked,
               coalesce(ST_Length(ST_Transform(pa.track, {LONLAT_SRID})::geography), 0)
                   AS track_m
        FROM patrol pa JOIN grid g ON g.id = pa.grid_id
        LEFT JOIN person pe ON pe.id = pa.person_id
        LEFT JOIN patrol_item_result r ON r.patrol_id = pa.id
        WHERE (CAST(:day AS date) IS NULL OR pa.day = :day) AND {where}
        GROUP BY pa.id, g.code, pe.name ORDER BY pa.day, g.code, pa.id"""),
        {**params, "day": day}).mappings().all()
    return [dict(r) for r in rows]


# ---------------------------------------------------------------------------- coverage

def record_patrol_coverage(conn: sa.Connection, day: date, *, buffer_m: float = DEFAULT_BUFFER_M,
                           under: str | None = None,
                           levels: Iterable[int] = (Level.BASE,)) -> pd.DataFrame:
    """Measure and store the patrol coverage of ``day`` for current grids (under ``under``, at
    ``levels``): the share of each grid's area within ``buffer_m`` m of that day's tracks.

    Every track of the day counts for every grid it comes near (a worker crossing a neighbour's
    grid covers it too). Grids with no track get 0. Rows are replaced on recomputation.
    Returns ``grid_id, code, level, covered_share``.
    """
    wanted = sorted({int(level) for level in levels})
    grids = read_grids(conn, under=under, level=wanted[0] if len(wanted) == 1 else None)
    grids = grids[grids["level"].isin(wanted)]
    tracks = read_tracks(conn, day)
    share = measure_patrol_coverage(grids, tracks, buffer_m=buffer_m)
    result = pd.DataFrame({"grid_id": grids["id"].to_numpy(), "code": grids["code"].to_numpy(),
                           "level": grids["level"].to_numpy(),
                           "covered_share": share.to_numpy()})
    if len(result):
        conn.execute(sa.text("""
            INSERT INTO patrol_coverage (grid_id, day, buffer_m, covered_share, computed_at)
            SELECT g, :day, :buffer, s, :now
            FROM unnest(CAST(:g AS bigint[]), CAST(:s AS double precision[])) AS u(g, s)
            ON CONFLICT (grid_id, day, buffer_m) DO UPDATE
            SET covered_share = EXCLUDED.covered_share, computed_at = EXCLUDED.computed_at"""),
            {"day": day, "buffer": float(buffer_m), "now": datetime.now(timezone.utc),
             "g": _array(int(g) for g in result["grid_id"]),
             "s": _array(repr(float(v)) for v in result["covered_share"])})
    return result


def read_tracks(conn: sa.Connection, day: date) -> gpd.GeoDataFrame:
    """The tracks of every patrol of ``day`` (``patrol_id``, ``grid_id``), in the storage CRS."""
    srid = storage_srid(conn)
    rows = conn.execute(sa.text(
        "SELECT id, grid_id, ST_AsBinary(track) FROM patrol "
        "WHERE day = :day AND track IS NOT NULL ORDER BY id"), {"day": day}).all()
    geoms = shapely.from_wkb([bytes(r[2]) for r in rows]) if rows else []
    return gpd.GeoDataFrame({"patrol_id": [r[0] for r in rows], "grid_id": [r[1] for r in rows]},
                            geometry=gpd.GeoSeries(geoms, crs=srid).values, crs=srid)


def read_patrol_coverage(conn: sa.Connection, day: date, *,
                         buffer_m: float = DEFAULT_BUFFER_M) -> pd.DataFrame:
    """Stored coverage of ``day``: ``code, level, covered_share, computed_at``."""
    rows = conn.execute(sa.text("""
        SELECT g.code, g.level, c.covered_share, c.computed_at FROM patrol_coverage c
        JOIN grid g ON g.id = c.grid_id WHERE c.day = :day AND c.buffer_m = :b
        ORDER BY g.level, g.code"""), {"day": day, "b": float(buffer_m)}).all()
    return pd.DataFrame(rows, columns=["code", "level", "covered_share", "computed_at"])
