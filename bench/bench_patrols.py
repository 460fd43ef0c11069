"""Benchmark: a month of daily patrol plans, patrols with GPS tracks and track coverage.

The demo city (:func:`gisgrid.demo.city.build_demo_city`, ~1,500 base grids under 150
villages/communities, 12 townships, one city) is written level by level through
``prepare_grids`` + ``write_grids`` into an :class:`~gisgrid.db.server.EmbeddedServer` in a
temporary directory, with the plan's checklists and one grid worker per base grid. Then, day
by day (plans in one transaction, then the day's patrols and coverage in another, as a loader
would run the commands):

* ``plans``     ``db.patrols.build_plans(conn, day)`` for every base grid (with carry-over)
* ``parse``     ``patrols.parse_submission`` of the day's submissions (JSON-like dicts)
* ``patrols``   ``db.patrols.record_patrols(conn, submissions)`` (~90% of the grids patrolled,
                ~50-vertex tracks, 5% of the items not checked, 3% entered the next day)
* ``coverage``  ``db.patrols.record_patrol_coverage(conn, day)`` for the base grids

Baselines, measured in the same run on the next ``--baseline-days`` days (rolled back), after
the month is in the database: plans grid by grid (``db.patrols.ensure_plan`` per grid) and
patrols one by one (``db.patrols.record_patrol``) against the batch functions on the same
days; coverage in PostGIS (``ST_Buffer`` in the metric CRS, ``ST_Intersection`` with
``ST_Union`` per grid) against the vectorised shapely path.

Usage: ``python bench/bench_patrols.py [--days 30] [--grids 1500] [--baseline-days 2]``
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import tempfile
import time
import uuid
from datetime import date, datetime, timedelta
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyproj
import shapely
import sqlalchemy as sa

from gisgrid.checklists import checklist_code_for, read_builtin_checklists
from gisgrid.clock import CHINA_TZ
from gisgrid.db import checklists as checklist_store
from gisgrid.db import grids as grid_store
from gisgrid.db import migrate
from gisgrid.db import patrols as patrol_store
from gisgrid.db import people as people_store
from gisgrid.db.engine import storage_srid
from gisgrid.db.grids import write_grids
from gisgrid.db.server import EmbeddedServer
from gisgrid.demo.city import build_demo_city
from gisgrid.grids import prepare_grids
from gisgrid.levels import Level
from gisgrid.patrols import parse_submission
from gisgrid.people import validate_person

FIRST_DAY = date(2024, 5, 1)
WAYPOINTS = 8
POOL = 48


def backend_cpu(conn) -> float:
    """CPU seconds used so far by the PostgreSQL backend serving ``conn`` (from /proc)."""
    pid = conn.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


class Timer:
    """Wall seconds per phase (one entry per day), and CPU seconds of this process plus the
    database backend: on a shared, loaded machine the CPU sum is what an idle one would take."""

    def __init__(self):
        self.times: dict[str, list[float]] = {}
        self.cpu: dict[str, list[float]] = {}

    def __call__(self, phase: str, conn=None):
        timer = self

        class _Span:
            def __enter__(self):
                self.server = backend_cpu(conn) if conn is not None else 0.0
                self.start, self.client = time.perf_counter(), time.process_time()

            def __exit__(self, *exc):
                wall = time.perf_counter() - self.start
                cpu = time.process_time() - self.client
                if conn is not None:
                    cpu += backend_cpu(conn) - self.server
                timer.times.setdefault(phase, []).append(wall)
                timer.cpu.setdefault(phase, []).append(cpu)
        return _Span()

    def total(self, phase: str) -> float:
        return sum(self.times.get(phase, []))

    def total_cpu(self, phase: str) -> float:
        return sum(self.cpu.get(phase, []))


def load_city(engine, grids: int, seed: int):
    """Write the demo city, checklists, workers; return the base grid table for generation."""
    city = build_demo_city(base_grids=grids, villages=max(24, grids // 10), defects=False,
                           seed=seed)
    with engine.begin() as conn:
        srid = storage_srid(conn)
        for level in Level:
            prepared = prepare_grids(city.grids[level], level, storage_crs=srid)
            write_grids(conn, prepared, actor="bench", change="create")
        checklist_store.load_builtin_checklists(conn)
        base = grid_store.read_base_grids(conn)
        workers = {}
        for n, grid in enumerate(base):
            person = validate_person({"name": f"网格员{n}", "kind": "grid_worker",
                                      "phone": f"139{n:08d}", "employment": "part_time"})
            workers[grid["code"]] = people_store.write_person(conn, person)
        conn.execute(sa.text(
            "INSERT INTO assignment (person_id, grid_id, role, valid_from) "
            "SELECT p, g, 'grid_worker', :d FROM unnest(CAST(:p AS bigint[]), "
            "CAST(:g AS bigint[])) AS u(p, g)"),
            {"d": FIRST_DAY, "p": [workers[g["code"]] for g in base],
             "g": [g["id"] for g in base]})
    frame = city.grids[Level.BASE].set_index("code").loc[[g["code"] for g in base]]
    metric = frame.geometry.to_crs(city.metric_crs)
    return base, workers, metric, city.metric_crs


def interior_pools(metric: gpd.GeoSeries, rng) -> np.ndarray:
    """``POOL`` random interior points (x, y) of each grid: shape (grids, POOL, 2)."""
    pools = np.empty((len(metric), POOL, 2))
    for n, poly in enumerate(metric.values):
        x0, y0, x1, y1 = poly.bounds
        got = np.empty((0, 2))
        while len(got) < POOL:
            xy = rng.uniform((x0, y0), (x1, y1), size=(POOL * 3, 2))
            inside = shapely.contains_xy(poly, xy[:, 0], xy[:, 1])
            got = np.vstack([got, xy[inside]])
        pools[n] = got[:POOL]
    return pools


def day_submissions(day: date, base, workers, pools, metric_crs, rng) -> list[dict]:
    """The day's submissions as a field app would send them."""
    patrolled = np.flatnonzero(rng.random(len(base)) < 0.9)
    picks = rng.integers(0, POOL, size=(len(patrolled), WAYPOINTS))
    lines = shapely.linestrings(pools[patrolled[:, None], picks].reshape(-1, 2),
                                indices=np.repeat(np.arange(len(patrolled)), WAYPOINTS))
    coords, index = shapely.get_coordinates(shapely.segmentize(lines, 60.0), return_index=True)
    coords = coords + rng.normal(0.0, 3.0, size=coords.shape)  # GPS noise, metres
    lon, lat = pyproj.Transformer.from_crs(metric_crs, 4490, always_xy=True).transform(
        coords[:, 0], coords[:, 1])
    cuts = np.flatnonzero(np.diff(index)) + 1
    tracks = np.split(np.round(np.column_stack([lon, lat]), 7), cuts)
    checklists = read_builtin_checklists()
    out = []
    for k, n in enumerate(patrolled):
        grid = base[n]
        codes = checklists[checklist_code_for(grid["village_kind"])].item_codes
        draw = rng.random(len(codes))
        results = {c: ("ok" if d < 0.93 else "not_checked" if d < 0.98 else "hazard_found")
                   for c, d in zip(codes, draw) if d < 0.99}  # 1% not reported at all
        start = datetime.combine(day, datetime.min.time(), CHINA_TZ) + timedelta(
            hours=8, minutes=int(rng.integers(0, 180)))
        end = start + timedelta(minutes=int(rng.integers(45, 150)))
        late = rng.random() < 0.03
        entered = (datetime.combine(day + timedelta(1), datetime.min.time(), CHINA_TZ)
                   + timedelta(hours=9)) if late else end + timedelta(minutes=10)
        out.append({"client_uuid": str(uuid.UUID(int=int(rng.integers(0, 2**63)) << 64 | k)),
                    "grid_code": grid["code"], "worker": workers[grid["code"]],
                    "day": day.isoformat(), "started_at": start.isoformat(),
                    "ended_at": end.isoformat(), "entered_at": entered.isoformat(),
                    "results": results, "track": tracks[k].tolist()})
    return out


def parse_all(raw: list[dict]):
    now = datetime.now(CHINA_TZ)
    return [parse_submission(r, received_at=now) for r in raw]


def coverage_in_postgis(conn, day: date, metric_epsg: int, buffer_m: float = 50.0) -> dict:
    """The baseline: buffer, union and intersect in PostGIS in the metric CRS."""
    rows = conn.execute(sa.text("""
        WITH b AS MATERIALIZED (SELECT ST_Buffer(ST_Transform(track, :m), :buf) AS geom FROM patrol
                   WHERE day = :day AND track IS NOT NULL),
             g AS MATERIALIZED (SELECT id, ST_Transform(geom, :m) AS geom FROM grid
                   WHERE level = 4 AND valid_to IS NULL)
        SELECT g.id, ST_Area(ST_Intersection(g.geom, ST_Union(b.geom))) / ST_Area(g.geom)
        FROM g JOIN b ON ST_Intersects(g.geom, b.geom) GROUP BY g.id, g.geom"""),
        {"m": metric_epsg, "buf": buffer_m, "day": day}).all()
    return dict(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--grids", type=int, default=1500)
    parser.add_argument("--baseline-days", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory(prefix="bench-patrols-") as tmp:
        server = EmbeddedServer(Path(tmp) / "home", fast=True)
        server.start()
        try:
            run(server.url(), args, rng)
        finally:
            server.destroy()


def run(url: str, args, rng) -> None:
    migrate.upgrade(url)
    engine = sa.create_engine(url)
    t0 = time.perf_counter()
    base, workers, metric, metric_crs = load_city(engine, args.grids, args.seed)
    pools = interior_pools(metric, rng)
    print(f"setup: {len(base)} base grids, workers, checklists in "
          f"{time.perf_counter() - t0:.1f} s")
    timer = Timer()
    days = [FIRST_DAY + timedelta(n) for n in range(args.days)]
    submissions = 0
    for day in days:
        raw = day_submissions(day, base, workers, pools, metric_crs, rng)
        with engine.begin() as conn:  # the day's plans: one command, one transaction
            with timer("plans", conn):
                plans = patrol_store.build_plans(conn, day)
        with engine.begin() as conn:  # the day's submissions and coverage
            with timer("parse", conn):
                parsed = parse_all(raw)
            with timer("patrols", conn):
                outcomes = patrol_store.record_patrols(conn, parsed)
            with timer("coverage", conn):
                cover = patrol_store.record_patrol_coverage(conn, day)
        submissions += len(outcomes)
        print(f"{day}: {len(plans.created)} plans, {plans.carried_tasks} tasks carried, "
              f"{len(outcomes)} patrols ({sum(o.late for o in outcomes)} late), mean coverage "
              f"{cover['covered_share'].mean():.3f}; "
              + ", ".join(f"{p} {timer.times[p][-1]:.2f} s" for p in timer.times), flush=True)
    with engine.connect() as conn:
        counts = {t: conn.execute(sa.text(f"SELECT count(*) FROM {t}")).scalar_one()
                  for t in ("patrol_plan", "patrol_task", "patrol", "patrol_item_result",
                            "patrol_coverage")}
    month = sum(timer.total(p) for p in ("plans", "patrols", "coverage"))
    month_cpu = sum(timer.total_cpu(p) for p in ("plans", "patrols", "coverage"))
    print(f"\nmonth: {args.days} days x {len(base)} base grids, {submissions} patrols; "
          f"rows {counts}")
    for phase in timer.times:
        print(f"  {phase:9s} total {timer.total(phase):6.2f} s, median/day "
              f"{statistics.median(timer.times[phase]):.3f} s; CPU (client + database) "
              f"{timer.total_cpu(phase):6.2f} s")
    print(f"  plans + patrols + coverage: {month:.1f} s wall, {month_cpu:.1f} s CPU "
          f"(parse: {timer.total('parse'):.1f} s)")
    print(f"  load average after the month: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    baselines(engine, args, base, workers, pools, metric_crs, rng, days[-1], timer)
    print(f"\n{platform.node()} {platform.python_version()} {date.today()}")
    engine.dispose()


def baselines(engine, args, base, workers, pools, metric_crs, rng, last: date, month) -> None:
    """Grid-by-grid and one-by-one paths vs the batch ones, on the days after the month."""
    days = [last + timedelta(n + 1) for n in range(args.baseline_days)]
    raws = {d: parse_all(day_submissions(d, base, workers, pools, metric_crs, rng))
            for d in days}
    results = {}
    for label in ("batch", "one by one"):
        timer = Timer()
        with engine.connect() as conn:
            outer = conn.begin()
            for day in days:
                with timer("plans"):
                    if label == "batch":
                        patrol_store.build_plans(conn, day)
                    else:
                        checklists: dict = {}
                        for grid in grid_store.read_base_grids(conn):
                            patrol_store.ensure_plan(conn, grid, day, checklists=checklists)
                with timer("patrols"):
                    if label == "batch":
                        patrol_store.record_patrols(conn, raws[day])
                    else:
                        for sub in raws[day]:
                            patrol_store.record_patrol(conn, sub)
                if label == "batch":
                    with timer("coverage"):
                        shapely_share = patrol_store.record_patrol_coverage(conn, day)
                    with timer("coverage in PostGIS"):
                        sql_share = coverage_in_postgis(conn, day, metric_crs.to_epsg())
                    by_id = dict(zip(shapely_share["grid_id"], shapely_share["covered_share"]))
                    worst = max(abs(by_id[g] - s) for g, s in sql_share.items())
                    print(f"  {day}: shapely vs PostGIS coverage, max difference {worst:.2e}")
            outer.rollback()
        results[label] = timer
    print(f"\nbaselines on {len(days)} more days (median s/day; ratio = baseline / batch):")
    batch = results["batch"]
    for phase, base_timer, base_phase in (
            ("plans", results["one by one"], "plans"),
            ("patrols", results["one by one"], "patrols"),
            ("coverage", batch, "coverage in PostGIS")):
        new = statistics.median(batch.times[phase])
        old = statistics.median(base_timer.times[base_phase])
        name = "grid by grid" if phase == "plans" else (
            "one by one" if phase == "patrols" else "PostGIS")
        print(f"  {phase:9s} batch {new:.3f}   {name} {old:.3f}   ratio {old / new:.1f}x")


if __name__ == "__main__":
    main()
