"""Benchmark: ``gisgrid ingest points`` end to end under two WAL settings of the server.

``wal_level = replica`` (PostgreSQL's default, max_wal_size 1 GB) against ``wal_level =
minimal`` (max_wal_senders 0, max_wal_size 4 GB), on one embedded cluster restarted between
runs, alternating settings so that the machine's load drifts across both alike. Each run
loads the same Parquet file into a ``gps_point`` without partitions (a new month: the
table is created in the loading transaction, which is what lets ``minimal`` skip the WAL).
Wall time includes the commit (file sync or WAL flush). Prints medians.

Usage::

    python bench/bench_ingest_wal.py --points 10000000 --repeats 2
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import sqlalchemy as sa
from bench_ingest import (drop_partitions, log, make_grids, run_ingest, write_gps_files,
                          write_grid_tree)

from gisgrid.db import migrate
from gisgrid.db.server import EmbeddedServer

SETTINGS = {
    "replica": ["wal_level = replica", "max_wal_senders = 10", "max_wal_size = '1GB'"],
    "minimal": ["wal_level = minimal", "max_wal_senders = 0", "max_wal_size = '4GB'"],
}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=10_000_000)
    parser.add_argument("--grids", type=int, default=10_000)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    runs: dict[str, list[dict]] = {name: [] for name in SETTINGS}
    with tempfile.TemporaryDirectory(prefix="gisgrid-walbench-") as tmp:
        tmp = Path(tmp)
        server = EmbeddedServer(tmp / "home")
        try:
            server.start()
            url = server.url()
            migrate.upgrade(url)
            engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
            ids = write_grid_tree(engine, make_grids(args.grids))
            path = write_gps_files(tmp, args.points, ids["people"], seed=7)["parquet"]
            for _ in range(args.repeats):
                for name, lines in SETTINGS.items():
                    (server.data_dir / "postgresql.auto.conf").write_text("\n".join(lines) + "\n")
                    server.stop()
                    server.start()
                    with engine.connect() as conn:
                        level = conn.execute(sa.text("SHOW wal_level")).scalar_one()
                    drop_partitions(engine)
                    with engine.connect() as conn:  # a checkpoint: each run starts alike
                        conn.execute(sa.text("CHECKPOINT"))
                    result = run_ingest(engine, url, path, tmp / "cli-home", drop=False)
                    result["wal_level"] = level
                    runs[name].append(result)
                    log(name, json.dumps(result))
            engine.dispose()
        finally:
            server.destroy()
    summary = {name: {"wall_pts_per_s": statistics.median(r["wall_pts_per_s"] for r in rs),
                      "index_s": statistics.median(r["index_s"] for r in rs),
                      "wall_s": [round(r["wall_s"], 1) for r in rs]}
               for name, rs in runs.items()}
    print(json.dumps({"points": args.points, "runs": summary}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
