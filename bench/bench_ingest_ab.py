"""Benchmark: ``gisgrid ingest points`` of this tree against another revision, interleaved.

Both run in one embedded cluster (same server, same settings), each in its own database
migrated by its own code; the same Parquet file is loaded into an emptied ``gps_point``,
alternating baseline and current run by run so that the machine's load (it is shared)
falls on both alike. The baseline is a source tree of another revision, e.g.::

    git archive 1af31dc gisgrid migrations | tar -x -C /tmp/baseline
    python bench/bench_ingest_ab.py --baseline /tmp/baseline --points 10000000 --repeats 3

Prints the medians of wall-clock points/s and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import sqlalchemy as sa
from bench_ingest import log, make_grids, run_ingest, write_gps_files, write_grid_tree

from gisgrid.db.points import read_partitions
from gisgrid.db.server import EmbeddedServer


def make_database(admin_url: str, name: str, python_path: str | None) -> str:
    """A new database with PostGIS, migrated by the code on ``python_path`` (or ours)."""
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT",
                             poolclass=sa.pool.NullPool)
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    url = sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.execute(sa.text("CREATE EXTENSION IF NOT EXISTS postgis"))
    engine.dispose()
    env = dict(os.environ, **({"PYTHONPATH": python_path} if python_path else {}))
    subprocess.run([sys.executable, "-c", "import sys; from gisgrid.db import migrate; "
                    "migrate.upgrade(sys.argv[1])", url], env=env, check=True)
    return url


def empty_points(engine) -> None:
    with engine.begin() as conn:
        conn.execute(sa.text("TRUNCATE gps_point"))
        for name in read_partitions(conn):
            conn.execute(sa.text(f'DROP TABLE "{name}"'))
        conn.execute(sa.text("CHECKPOINT"))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", required=True, help="source tree of the other revision")
    parser.add_argument("--points", type=int, default=10_000_000)
    parser.add_argument("--grids", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args(argv)
    sides = {"baseline": str(Path(args.baseline).absolute()), "current": None}
    runs: dict[str, list[dict]] = {side: [] for side in sides}
    with tempfile.TemporaryDirectory(prefix="gisgrid-abbench-") as tmp:
        tmp = Path(tmp)
        server = EmbeddedServer(tmp / "home")
        try:
            server.start()
            urls, engines, people = {}, {}, None
            grids = make_grids(args.grids)
            for side, python_path in sides.items():
                urls[side] = make_database(server.url(), f"ab_{side}", python_path)
                engines[side] = sa.create_engine(urls[side], poolclass=sa.pool.NullPool)
                people = write_grid_tree(engines[side], grids)["people"]
            path = write_gps_files(tmp, args.points, people, seed=11)["parquet"]
            for _ in range(args.repeats):
                for side, python_path in sides.items():
                    empty_points(engines[side])
                    result = run_ingest(engines[side], urls[side], path, tmp / f"home-{side}",
                                        drop=False, python_path=python_path)
                    runs[side].append(result)
                    log(side, json.dumps(result))
            for engine in engines.values():
                engine.dispose()
        finally:
            server.destroy()
    summary = {side: {"wall_pts_per_s": statistics.median(r["wall_pts_per_s"] for r in rs),
                      "peak_rss_mb": statistics.median(r["peak_rss_mb"] for r in rs),
                      "wall_s": [round(r["wall_s"], 1) for r in rs]}
               for side, rs in runs.items()}
    summary["ratio"] = (summary["current"]["wall_pts_per_s"]
                        / summary["baseline"]["wall_pts_per_s"])
    print(json.dumps({"points": args.points, "file": "parquet", **summary}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
