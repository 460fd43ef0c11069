"""``gisgrid export``: write stored data to files.

    gisgrid export grids [--level N] [--code C] -o FILE

The format follows the suffix of FILE (.geojson/.json, .gpkg, .shp, .parquet). The columns are
those ``gisgrid import grids`` reads (code, name, level, kind, parent_code, org) plus id,
version, path and area_m2, so an export imports back to the same geometries.
"""

from __future__ import annotations

from pathlib import Path

import click

from gisgrid.config import Settings


@click.group("export")
def export_group() -> None:
    """Export stored grids to GeoJSON, GeoPackage, Shapefile or GeoParquet files."""


@export_group.command("grids")
@click.option("--level", type=click.IntRange(1, 4), default=None,
              help="Only grids of this level [default: all levels].")
@click.option("--code", default=None, help="Only this grid and every grid under it.")
@click.option("-o", "--output", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="File to write; the format follows its suffix.")
@click.option("--layer", default=None, help="Layer name in a GeoPackage [default: file name].")
def export_grids(level: int | None, code: str | None, output: Path, layer: str | None) -> None:
    """Export the current grids to a file."""
    from gisgrid.db.engine import get_engine
    from gisgrid.db.grids import read_grids
    from gisgrid.io import format_for, write_layer

    format_for(output)  # refuse an unknown suffix before touching the database
    with get_engine(Settings.from_env()).connect() as conn:
        frame = read_grids(conn, level=level, under=code)
    write_layer(frame, output, layer=layer)
    click.echo(f"exported {len(frame)} grids to {output}")
