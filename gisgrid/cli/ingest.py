"""``gisgrid ingest``: bulk loads. ``gisgrid ingest points FILE`` streams GPS fixes into the
database (see :mod:`gisgrid.ingest` for the file's columns and rules).

Only parsing and presenting. A bad file exits 2 listing each bad row and field, and stores
nothing; points outside every grid are stored and counted, not refused.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from tqdm import tqdm

from gisgrid.ingest import (
    DEFAULT_CHUNK_SIZE,
    DEFAULT_TIMEZONE,
    FORMATS,
    count_rows_hint,
    detect_format,
    ingest_points,
)


@click.group("ingest")
def ingest() -> None:
    """Bulk-load field data (GPS points) into the database."""


@ingest.command("points")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--chunk-size", default=DEFAULT_CHUNK_SIZE, show_default=True,
              type=click.IntRange(min=1), help="Rows read, checked and written at a time.")
@click.option("--format", "file_format", type=click.Choice(FORMATS),
              help="File format (default: from the suffix, .csv or .parquet).")
@click.option("--timezone", default=DEFAULT_TIMEZONE, show_default=True,
              help="Time zone of times written without an offset.")
@click.option("--rebuild-indexes/--keep-indexes", default=None,
              help="For a month already in gps_point: load its partition detached, without "
                   "indexes, and build them after (default: only when the file is large next "
                   "to the partition; gps_point is locked against readers meanwhile). A new "
                   "month is always loaded that way.")
def points(file: Path, chunk_size: int, file_format: str | None, timezone: str,
           rebuild_indexes: bool | None) -> None:
    """Load GPS points from FILE (columns worker, time, lon, lat, accuracy).

    Each point is assigned to its base grid, village/community, township and city; the
    whole file is one transaction.
    """
    from gisgrid.config import Settings
    from gisgrid.db.engine import get_engine

    file_format = detect_format(file, file_format)
    engine = get_engine(Settings.from_env())
    with tqdm(total=count_rows_hint(file, file_format), unit=" points", unit_scale=True,
              file=sys.stderr, disable=None, desc=file.name) as bar:
        with engine.begin() as conn:
            summary = ingest_points(conn, file, chunk_size=chunk_size, file_format=file_format,
                                    timezone=timezone, rebuild_indexes=rebuild_indexes,
                                    progress=bar.update)
    click.echo(f"stored {summary.rows} points from {file.name} "
               f"({summary.outside} outside every grid) in {summary.seconds:.1f} s "
               f"({summary.rate:,.0f} points/s; indexes {summary.index_seconds:.1f} s)")
