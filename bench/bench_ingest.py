"""Benchmark: GPS point assignment and bulk ingest (issue 4, item 8).

Measured in one run, on synthetic Voronoi base grids (~7 vertices each) in lon/lat around
Chibi (113.6-114.2E, 29.5-29.9N), EPSG:4490:

1. assignment throughput: gisgrid.assign (lookup raster + exact test near edges) vs
   geopandas.sjoin(predicate="within") vs shapely STRtree.query, in memory;
2. a plain PostGIS ``ST_Contains`` join (the planner's default plan) on a sample;
3. end to end: ``gisgrid ingest points FILE`` (a subprocess) from CSV and Parquet into
   ``gps_point`` of an embedded PostgreSQL (gisgrid's configuration), points/s and peak RSS for
   two file sizes (memory must not grow with the file);
4. the server's own rate: binary COPY of ready rows from memory into a new month's
   partition, then its primary key and indexes built and the partition attached (what a
   load of a new month costs the server, client work excluded).

Usage::

    python bench/bench_ingest.py                 # 10 M points x 10,000 grids (~10 min)
    python bench/bench_ingest.py --points 1000000 --small-points 200000 --quick

Prints medians (over ``--repeats``) and ratios against the baselines measured in the same run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

import geopandas as gpd
import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import shapely
import sqlalchemy as sa

from gisgrid.assign import AssignedChain, GridIndex, assign_points
from gisgrid.db import migrate
from gisgrid.db.points import PointRows, count_points, encode_rows, load_points, read_partitions
from gisgrid.db.server import EmbeddedServer
from gisgrid.ingest import WorkerDirectory, read_gps_chunks

BOUNDS = (113.6, 29.5, 114.2, 29.9)
GISGRID = str(Path(sys.executable).with_name("gisgrid"))


def log(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


def median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def make_grids(n: int, seed: int = 1) -> gpd.GeoDataFrame:
    """``n`` Voronoi base grids over BOUNDS; villages of 50, townships of 1,000, one city."""
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = BOUNDS
    seeds = shapely.multipoints(np.c_[rng.uniform(minx, maxx, n), rng.uniform(miny, maxy, n)])
    box = shapely.box(*BOUNDS)
    cells = shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=box))
    cells = shapely.set_precision(shapely.intersection(cells, box), 1e-7)
    order = np.arange(n)
    return gpd.GeoDataFrame({"position": order, "village": order // 50,
                             "township": order // 1000}, geometry=cells, crs=4490)


def make_points(n: int, seed: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Uniform points over BOUNDS grown by 1 % on each side (about 4 % fall outside)."""
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = BOUNDS
    dx, dy = (maxx - minx) / 100, (maxy - miny) / 100
    return (rng.uniform(minx - dx, maxx + dx, n), rng.uniform(miny - dy, maxy + dy, n))


def base_with_chain(grids: gpd.GeoDataFrame, ids: dict) -> gpd.GeoDataFrame:
    return gpd.GeoDataFrame({
        "id": ids["base"], "village_grid_id": ids["village"][grids["village"]],
        "township_grid_id": ids["township"][grids["township"]],
        "city_grid_id": ids["city"]}, geometry=grids.geometry.values, crs=4490)


# --------------------------------------------------------------------- in-memory assignment
def bench_assignment(grids, base, x, y, small: int, repeats: int, sjoin_repeats: int) -> dict:
    out = {}
    started = time.perf_counter()
    index = GridIndex.build(base)
    out["index_build_s"] = time.perf_counter() - started
    out["edge_cell_share"] = index.edge_cell_share()
    n = len(x)
    t = median_time(lambda: assign_points(index, x, y), repeats)
    out["gisgrid_full_pts_per_s"] = n / t
    xs, ys = x[:small], y[:small]
    t = median_time(lambda: assign_points(index, xs, ys), repeats)
    out["gisgrid_small_pts_per_s"] = small / t

    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(xs, ys), crs=4490)
    frame = base[["id", "geometry"]]
    joined = {}

    def run_sjoin():
        joined["j"] = gpd.sjoin(points, frame, predicate="within", how="left")

    t = median_time(run_sjoin, sjoin_repeats)
    out["sjoin_small_pts_per_s"] = small / t
    tree = shapely.STRtree(base.geometry.values)
    geoms = points.geometry.values
    t = median_time(lambda: tree.query(geoms, predicate="within"), sjoin_repeats)
    out["strtree_small_pts_per_s"] = small / t

    mine = assign_points(index, xs, ys).base_grid_id
    ref = joined["j"]["id"].fillna(-1).to_numpy(dtype=np.int64)
    out["mismatches_vs_sjoin"] = int((mine != ref).sum()) if len(ref) == small else -1
    out["outside_share"] = float((mine < 0).mean())
    return out


# --------------------------------------------------------------------- database
def write_grid_tree(engine, grids: gpd.GeoDataFrame) -> dict:
    """City, townships, villages (geometry: the city box) and base grids; ids by level."""
    box = shapely.to_wkb(shapely.multipolygons([shapely.box(*BOUNDS)]), hex=True)
    base_wkb = shapely.to_wkb(np.array([shapely.MultiPolygon([g])
                                        for g in grids.geometry.values]), hex=True)
    insert = sa.text("""INSERT INTO grid (code, name, level, kind, parent_id, path, geom)
        VALUES (:code, :code, :level, :kind, :parent, :path,
                ST_GeomFromWKB(decode(:wkb, 'hex'), 4490)) RETURNING id""")
    ids = {}
    with engine.begin() as conn:
        ids["city"] = conn.execute(insert, dict(code="C", level=1, kind="city", parent=None,
                                                path="C", wkb=box)).scalar_one()
        ids["township"] = np.array([conn.execute(insert, dict(
            code=f"T{t}", level=2, kind="township", parent=ids["city"], path=f"C.T{t}",
            wkb=box)).scalar_one() for t in range(grids["township"].max() + 1)])
        ids["village"] = np.array([conn.execute(insert, dict(
            code=f"V{v}", level=3, kind="village", parent=int(ids["township"][v // 20]),
            path=f"C.V{v}", wkb=box)).scalar_one() for v in range(grids["village"].max() + 1)])
        rows = conn.execute(sa.text("""
            INSERT INTO grid (code, name, level, kind, parent_id, path, geom)
            SELECT 'B' || p, 'B' || p, 4, 'base', v, 'C.B' || p,
                   ST_GeomFromWKB(decode(w, 'hex'), 4490)
            FROM unnest(CAST(:p AS int[]), CAST(:v AS bigint[]), CAST(:w AS text[]))
                 AS u(p, v, w)
            ORDER BY p RETURNING id"""),
            dict(p=grids["position"].tolist(),
                 v=ids["village"][grids["village"]].tolist(),
                 w=list(base_wkb))).scalars().all()
        ids["base"] = np.array(rows)
        ids["people"] = np.array(conn.execute(sa.text("""
            INSERT INTO person (name, kind) SELECT 'worker ' || i, 'grid_worker'
            FROM generate_series(1, 200) i RETURNING id""")).scalars().all())
        conn.execute(sa.text("ANALYZE grid"))
    return ids


def bench_postgis_join(engine, x, y) -> dict:
    """Plain ST_Contains join of a point table with the base grids, default plan."""
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS bench_point"))
        conn.execute(sa.text("CREATE TABLE bench_point (id serial, geom geometry(Point, 4490))"))
        conn.execute(sa.text("""INSERT INTO bench_point (geom)
            SELECT ST_SetSRID(ST_MakePoint(a, b), 4490)
            FROM unnest(CAST(:x AS float8[]), CAST(:y AS float8[])) AS u(a, b)"""),
            dict(x=x.tolist(), y=y.tolist()))
        conn.execute(sa.text("CREATE INDEX ON bench_point USING gist (geom)"))
        conn.execute(sa.text("ANALYZE bench_point"))
    query = """SELECT count(*) FROM bench_point p JOIN grid g ON ST_Contains(g.geom, p.geom)
               WHERE g.level = 4 AND g.valid_to IS NULL"""
    with engine.connect() as conn:
        plan = [r[0] for r in conn.execute(sa.text("EXPLAIN " + query))]
        started = time.perf_counter()
        hits = conn.execute(sa.text(query)).scalar_one()
        seconds = time.perf_counter() - started
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE bench_point"))
    return {"postgis_points": len(x), "postgis_hits": hits,
            "postgis_pts_per_s": len(x) / seconds,
            "postgis_plan": " / ".join(p.strip() for p in plan[:4])}


def bench_copy_ceiling(engine, index, x, y, people) -> dict:
    """Binary COPY of ready, assigned rows from memory: the server's own limit."""
    n = len(x)
    chain = assign_points(index, x, y)
    rng = np.random.default_rng(5)
    rows = PointRows(person_id=rng.choice(people, n), lon=x, lat=y,
                     recorded_at_us=1_714_521_600_000_000 + np.arange(n) * 1000,
                     accuracy_m=rng.uniform(1, 30, n).astype(np.float32), chain=chain)
    step = 250_000
    parts = [PointRows(rows.person_id[i:i + step], rows.recorded_at_us[i:i + step],
                       x[i:i + step], y[i:i + step], rows.accuracy_m[i:i + step],
                       AssignedChain(*(a[i:i + step] for a in (
                           chain.base_grid_id, chain.village_grid_id, chain.township_grid_id,
                           chain.city_grid_id, chain.outside))))
             for i in range(0, n, step)]
    results = {}
    for label, rebuild in (("copy_into_new_partition_with_index_builds", True),):
        drop_partitions(engine)
        with engine.connect() as conn:
            tx = conn.begin()
            started = time.perf_counter()
            with load_points(conn, rebuild_indexes=rebuild) as load:
                for part in parts:
                    load.write(part)
            results[f"{label}_pts_per_s"] = n / (time.perf_counter() - started)
            tx.rollback()
    return results


def drop_partitions(engine) -> None:
    """An empty gps_point without partitions: the next load creates its month's table."""
    with engine.begin() as conn:
        for name in read_partitions(conn):
            conn.execute(sa.text(f'DROP TABLE "{name}"'))


MAY_2024_US = 1_714_521_600_000_000  # written as local times: 2024-05-01 00:00 (+08)
JUNE_2024_US = 1_717_200_000_000_000


def write_gps_files(workdir: Path, n: int, people: np.ndarray, seed: int, *,
                    start_us: int = MAY_2024_US, tag: str = "gps") -> dict:
    """CSV and Parquet files of ``n`` fixes one millisecond apart from ``start_us``, written
    in slices (bounded memory)."""
    csv_path, pq_path = workdir / f"{tag}_{n}.csv", workdir / f"{tag}_{n}.parquet"
    rng = np.random.default_rng(seed)
    step = 1_000_000
    schema = pa.schema([("worker", pa.int64()), ("time", pa.string()), ("lon", pa.float64()),
                        ("lat", pa.float64()), ("accuracy", pa.float32())])
    with pacsv.CSVWriter(csv_path, schema) as csv_out, \
            pq.ParquetWriter(pq_path, schema) as pq_out:
        for start in range(0, n, step):
            m = min(step, n - start)
            x, y = make_points(m, seed=seed + start)
            stamps = pa.array(start_us + (start + np.arange(m)) * 1_000,
                              type=pa.timestamp("us"))
            table = pa.table({
                "worker": rng.choice(people, m),
                "time": pc.strftime(stamps, format="%Y-%m-%d %H:%M:%S"),
                "lon": np.round(x, 7), "lat": np.round(y, 7),
                "accuracy": np.round(rng.uniform(1, 30, m), 1).astype(np.float32)},
                schema=schema)
            csv_out.write_table(table)
            pq_out.write_table(table)
    return {"csv": csv_path, "parquet": pq_path}


def bench_client_pipeline(path: Path, index: GridIndex, people: np.ndarray) -> dict:
    """Read + validate + assign + encode a file, without a database: our side's own rate."""
    started = time.perf_counter()
    rows = 0
    for chunk in read_gps_chunks(path, workers=WorkerDirectory(np.sort(people))):
        chain = assign_points(index, chunk.lon, chunk.lat)
        encode_rows(PointRows(chunk.worker, chunk.recorded_at_us, chunk.lon, chunk.lat,
                              chunk.accuracy_m, chain), 4490)
        rows += len(chunk)
    return {"file": path.name, "client_only_pts_per_s": rows / (time.perf_counter() - started)}


def run_ingest(engine, url: str, path: Path, home: Path, *, drop: bool = True,
               python_path: str | None = None) -> dict:
    """``gisgrid ingest points FILE`` in a subprocess into an empty gps_point (partitions
    dropped first unless ``drop`` is false); ``python_path`` puts another source tree of
    gisgrid first on the subprocess's ``PYTHONPATH``."""
    if drop:
        drop_partitions(engine)
    with engine.connect() as conn:
        before = count_points(conn)
    env = dict(os.environ, GISGRID_DATABASE_URL=url, GISGRID_HOME=str(home))
    if python_path:
        env["PYTHONPATH"] = python_path
    started = time.perf_counter()
    proc = subprocess.Popen([GISGRID, "ingest", "points", str(path)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    peak_kb = 0
    while proc.poll() is None:
        # VmHWM of the child's own address space; ru_maxrss would include this process's
        # RSS, inherited across fork/exec.
        peak_kb = max(peak_kb, peak_rss_kb(proc.pid))
        time.sleep(0.05)
    wall = time.perf_counter() - started
    out = proc.stdout.read()
    if proc.returncode != 0:
        raise RuntimeError(f"ingest of {path} failed: {out}")
    with engine.connect() as conn:
        stored = count_points(conn) - before
    rate = re.search(r"\(([\d,]+) points/s; indexes ([\d.]+) s\)", out)
    return {"file": path.name, "bytes": path.stat().st_size, "rows": stored,
            "wall_s": wall, "wall_pts_per_s": stored / wall,
            "command_pts_per_s": float(rate.group(1).replace(",", "")) if rate else None,
            "index_s": float(rate.group(2)) if rate else None,
            "peak_rss_mb": peak_kb / 1024}


def peak_rss_kb(pid: int) -> int:
    """High-water resident set size of process ``pid`` in kB (0 once it has gone)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return 0
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    return int(found.group(1)) if found else 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=10_000_000)
    parser.add_argument("--small-points", type=int, default=2_000_000,
                        help="points for sjoin/STRtree and the small ingest file")
    parser.add_argument("--postgis-points", type=int, default=200_000)
    parser.add_argument("--grids", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--sjoin-repeats", type=int, default=1)
    parser.add_argument("--skip-db", action="store_true")
    args = parser.parse_args(argv)

    result = {"date": date.today().isoformat(), "machine": platform.platform(),
              "cpus": os.cpu_count(), "points": args.points, "grids": args.grids}
    log("grids ..."); grids = make_grids(args.grids)
    log("points ..."); x, y = make_points(args.points)
    with tempfile.TemporaryDirectory(prefix="gisgrid-bench-") as tmp:
        tmp = Path(tmp)
        if args.skip_db:
            ids = {"base": np.arange(args.grids) + 1, "village": np.arange(10_000) + 20_000,
                   "township": np.arange(100) + 30_000, "city": 40_000,
                   "people": np.arange(1, 201)}
        else:
            log("embedded server ...")
            server = EmbeddedServer(tmp / "home")
            server.start()
            url = server.url()
            migrate.upgrade(url)
            engine = sa.create_engine(url)
            ids = write_grid_tree(engine, grids)
        base = base_with_chain(grids, ids)
        log("assignment ...")
        result.update(bench_assignment(grids, base, x, y, min(args.small_points, args.points),
                                       args.repeats, args.sjoin_repeats))
        log(json.dumps(result, indent=1))
        if not args.skip_db:
            try:
                log("postgis join ...")
                result.update(bench_postgis_join(engine, x[:args.postgis_points],
                                                 y[:args.postgis_points]))
                log("copy ceiling ...")
                index = GridIndex.build(base)
                small = min(args.small_points, args.points)
                result.update(bench_copy_ceiling(engine, index, x[:small], y[:small],
                                                 ids["people"]))
                del x, y
                log("files ...")
                files = {size: write_gps_files(tmp, size, ids["people"], seed=size)
                         for size in sorted({small, args.points})}
                runs = []
                for size, paths in files.items():
                    for kind in ("parquet", "csv"):
                        runs.append(bench_client_pipeline(paths[kind], index, ids["people"]))
                        log(json.dumps(runs[-1]))
                        log(f"ingest {paths[kind].name} ...")
                        runs.append(run_ingest(engine, url, paths[kind], tmp / "cli-home"))
                        log(json.dumps(runs[-1]))
                result["ingest"] = runs
                # gps_point now holds the big file's month (May 2024): a further file of a
                # new month gets its own partition, one of the same month is copied into the
                # existing partition with its indexes kept.
                extra = min(1_000_000, args.points)
                incremental = []
                for tag, start_us in (("june", JUNE_2024_US), ("may", MAY_2024_US)):
                    path = write_gps_files(tmp, extra, ids["people"], seed=extra + 1,
                                           start_us=start_us, tag=tag)["parquet"]
                    log(f"ingest {path.name} into the loaded table ...")
                    incremental.append(run_ingest(engine, url, path, tmp / "cli-home",
                                                  drop=False))
                    log(json.dumps(incremental[-1]))
                result["incremental"] = incremental
            finally:
                engine.dispose()
                server.destroy()
    result["ratio_gisgrid_vs_sjoin"] = (result["gisgrid_small_pts_per_s"]
                                        / result["sjoin_small_pts_per_s"])
    print(json.dumps(result, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
