"""Benchmark: full hierarchy validation vs the bare GEOS coverage check and a naive overlay.

A synthetic four-level hierarchy in CGCS2000 degrees (EPSG:4490) near Chibi: 1 city, 16
townships, 400 villages and ~100,000 base grids (Voronoi cells, each level the dissolve of the
one below), with defects injected in the base level (shifted cells, deleted cells, bow-ties).

Each method runs in its own subprocess (wall time, CPU time of the process, and peak RSS
from ``resource``). Every method is single-threaded, so on a shared machine the CPU time is
the steadier figure; both are printed.

* ``geos``    shapely.coverage_invalid_edges on the base level alone
* ``full``    gisgrid.coverage.validate_hierarchy on all four levels (every finding kind)
* ``naive``   pairwise intersections (STRtree) + parent.difference(union_all(children))

After timing, ``geos`` also runs one whole-level check on the structure-repaired base grids
(the geometry validate_hierarchy checks coverage on), and the features it flags are compared
with validate_hierarchy's per-feature ``edge_mismatch`` findings at the base level.

Usage: ``python bench/bench_coverage.py [--grids 100000] [--repeat 3]``
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np
import shapely

X0, Y0, SIZE = 113.7, 29.4, 0.5   # degrees


def build(n_base: int, seed: int = 0):
    """{level: (codes, parent_codes, geoms)} and the number of injected defects."""
    rng = np.random.default_rng(seed)
    extent = shapely.box(X0, Y0, X0 + SIZE, Y0 + SIZE)

    def cells(n):
        pts = rng.uniform((X0, Y0), (X0 + SIZE, Y0 + SIZE), (n, 2))
        vor = shapely.get_parts(shapely.voronoi_polygons(shapely.multipoints(pts), extend_to=extent))
        vor = shapely.intersection(vor, extent)
        return shapely.set_precision(vor, 1e-7)

    base = cells(n_base)
    villages = cells(400)
    townships = cells(16)
    # each base grid belongs to the village holding its centre; village = dissolve of its grids
    tree_v = shapely.STRtree(villages)
    centre = shapely.point_on_surface(base)
    b_idx, v_idx = tree_v.query(centre, predicate="intersects")
    base_parent = np.zeros(len(base), dtype=int)
    base_parent[b_idx] = v_idx
    village_geoms = np.array([shapely.coverage_union_all(base[base_parent == v])
                              for v in range(len(villages))], dtype=object)
    centre_v = shapely.point_on_surface(village_geoms)
    v_i, t_i = shapely.STRtree(townships).query(centre_v, predicate="intersects")
    village_parent = np.zeros(len(villages), dtype=int)
    village_parent[v_i] = t_i
    township_geoms = np.array([shapely.coverage_union_all(village_geoms[village_parent == t])
                               for t in range(len(townships))], dtype=object)
    city = np.array([shapely.coverage_union_all(township_geoms)], dtype=object)
    # defects in the base level
    picks = rng.choice(len(base), 60, replace=False)
    for i in picks[:20]:
        base[i] = shapely.affinity.translate(base[i], 2e-5, 1e-5)
    for i in picks[20:30]:
        coords = np.asarray(base[i].exterior.coords)[:-1]
        if len(coords) >= 4:
            coords[[0, 1]] = coords[[1, 0]]
            base[i] = shapely.Polygon(coords)
    keep = np.setdiff1d(np.arange(len(base)), picks[30:40])
    base, base_parent = base[keep], base_parent[keep]
    t_codes = [f"T{t:02d}" for t in range(len(townships))]
    v_codes = [f"V{v:03d}" for v in range(len(villages))]
    levels = {
        1: (["C"], [None], city),
        2: (t_codes, ["C"] * len(t_codes), township_geoms),
        3: (v_codes, [t_codes[p] for p in village_parent], village_geoms),
        4: ([f"B{i:06d}" for i in range(len(base))], [v_codes[p] for p in base_parent], base),
    }
    return levels, {"shifted": 20, "bow_ties_tried": 10, "deleted": 10}


def frames_of(levels):
    import geopandas as gpd

    return {lvl: gpd.GeoDataFrame({"code": codes, "parent_code": parents, "level": lvl},
                                  geometry=list(geoms), crs=4490)
            for lvl, (codes, parents, geoms) in levels.items()}


def run_method(method: str, path: str) -> dict:
    with open(path, "rb") as fh:
        levels = pickle.load(fh)
    if method == "full":
        from gisgrid.coverage import validate_hierarchy

        frames = frames_of(levels)
        start, cpu = time.perf_counter(), time.process_time()
        report = validate_hierarchy(frames)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        extra = {"summary": report.summary(),
                 "base": [e for e in report.level_summaries() if e["level"] == 4][0],
                 "mismatched": sorted(f.codes[0] for f in report.by_kind("edge_mismatch")
                                      if f.level == 4)}
        extra["base"].pop("parents")
    elif method == "geos":
        from gisgrid.coverage.checks import polygonal_fix

        geoms = np.asarray(levels[4][2], dtype=object)
        start, cpu = time.perf_counter(), time.process_time()
        edges = shapely.coverage_invalid_edges(geoms)
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        repaired = shapely.coverage_invalid_edges(polygonal_fix(geoms))
        codes = np.asarray(levels[4][0], dtype=object)
        extra = {"features_with_invalid_edges": int((~shapely.is_empty(edges)).sum()),
                 "mismatched_repaired": sorted(codes[~shapely.is_empty(repaired)].tolist())}
    elif method == "naive":
        geoms = shapely.make_valid(np.asarray(levels[4][2], dtype=object))
        parent = levels[1][2][0]
        start, cpu = time.perf_counter(), time.process_time()
        tree = shapely.STRtree(geoms)
        a, b = tree.query(geoms, predicate="overlaps")
        keep = a < b
        inter = shapely.intersection(geoms[a[keep]], geoms[b[keep]])
        overlap_area = shapely.area(inter)
        gaps = shapely.difference(parent, shapely.union_all(geoms))
        elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
        extra = {"overlaps": int((overlap_area > 0).sum()),
                 "gap_parts": int(shapely.get_num_geometries(gaps))}
    else:
        raise SystemExit(f"unknown method {method}")
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"method": method, "seconds": elapsed, "cpu_seconds": cpu,
            "peak_rss_mb": peak_kb / 1024, **extra}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--grids", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--method")
    parser.add_argument("--data")
    args = parser.parse_args()
    if args.method:
        print(json.dumps(run_method(args.method, args.data), default=str))
        return
    t0 = time.perf_counter()
    levels, injected = build(args.grids)
    print(f"built {len(levels[4][0])} base grids in {time.perf_counter() - t0:.1f} s; "
          f"injected {injected}", flush=True)
    with tempfile.NamedTemporaryFile(suffix=".pkl", delete=False) as fh:
        pickle.dump(levels, fh)
        path = fh.name
    results: dict[str, list[dict]] = {}
    try:
        for _ in range(args.repeat):
            for method in ("geos", "full", "naive"):
                out = subprocess.run([sys.executable, __file__, "--method", method, "--data", path],
                                     capture_output=True, text=True, check=True)
                last = out.stdout.strip().splitlines()[-1]
                results.setdefault(method, []).append(json.loads(last))
    finally:
        os.unlink(path)
    geos = statistics.median(r["seconds"] for r in results["geos"])
    geos_cpu = statistics.median(r["cpu_seconds"] for r in results["geos"])
    print(f"machine: {platform.platform()}, {os.cpu_count()} cores; "
          f"date {time.strftime('%Y-%m-%d')}; load average {os.getloadavg()[0]:.1f}")
    print("| method | median wall s | wall ratio | median CPU s | CPU ratio | peak RSS MB |")
    print("|---|---|---|---|---|---|")
    for method in ("geos", "full", "naive"):
        secs = statistics.median(r["seconds"] for r in results[method])
        cpu = statistics.median(r["cpu_seconds"] for r in results[method])
        rss = max(r["peak_rss_mb"] for r in results[method])
        print(f"| {method} | {secs:.2f} | {secs / geos:.2f} | {cpu:.2f} | {cpu / geos_cpu:.2f} "
              f"| {rss:.0f} |")
    print("runs (wall s):", {m: [round(r["seconds"], 2) for r in rs] for m, rs in results.items()})
    print("full base-level summary:", json.dumps(results["full"][0]["base"]))
    ours = set(results["full"][0]["mismatched"])
    whole = set(results["geos"][0]["mismatched_repaired"])
    print("geos:", results["geos"][0]["features_with_invalid_edges"],
          "features with invalid edges (raw input);", len(whole),
          "on the structure-repaired grids; validate_hierarchy flags", len(ours),
          "(same features)" if ours == whole else
          f"(only ours {sorted(ours - whole)}, only GEOS {sorted(whole - ours)})")
    print("naive:", results["naive"][0]["overlaps"], "overlaps,",
          results["naive"][0]["gap_parts"], "gap parts")

if __name__ == "__main__":
    main()
