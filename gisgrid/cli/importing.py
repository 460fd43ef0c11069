"""``gisgrid import``: bring grids into the store from a file.

    gisgrid import grids FILE --level N [--code-field F] [--name-field F] [--parent-field F]
                                        [--kind K] [--org-field F] [--layer L] [--repair]

The import is all-or-nothing: every feature is checked first and, when any is bad, every bad
feature is listed (row, code, problem), nothing is written and the exit status is 2. Otherwise
all grids are written in one transaction. A grid whose code is already current at the level is
updated as a new version (unchanged grids stay as they are).
"""

from __future__ import annotations

from pathlib import Path

import click

from gisgrid.cli import default_actor
from gisgrid.config import Settings
from gisgrid.errors import InputError
from gisgrid.levels import ALL_KINDS

PROGRESS_FROM = 1000
"""Show progress bars (stderr) for files with at least this many features."""


@click.group("import")
def import_group() -> None:
    """Import grids from GeoJSON, GeoPackage, Shapefile or GeoParquet files."""


@import_group.command("grids")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--level", required=True, type=click.IntRange(1, 4),
              help="Level of every grid in the file: 1 city, 2 township/street, "
                   "3 village/community, 4 base grid.")
@click.option("--code-field", default="code", show_default=True,
              help="Attribute holding the grid code.")
@click.option("--name-field", default=None,
              help="Attribute holding the grid name [default: name, if present; else the code].")
@click.option("--parent-field", default="parent_code", show_default=True,
              help="Attribute holding the parent grid's code (levels 2-4).")
@click.option("--kind", type=click.Choice(ALL_KINDS), default=None,
              help="Kind of every grid [default: the file's 'kind' attribute, else the level's "
                   "usual kind].")
@click.option("--org-field", default=None,
              help="Attribute holding the responsible organisation [default: org, if present].")
@click.option("--layer", default=None, help="Layer to read from a multi-layer file.")
@click.option("--repair", is_flag=True,
              help="Repair invalid geometries (self-intersections) instead of refusing them; "
                   "every repair is listed.")
@click.option("--actor", default=None,
              help="Who is importing, recorded in the grid history [default: $GISGRID_ACTOR, "
                   "else the login name].")
@click.option("--reason", default=None, help="Why, recorded in the grid history.")
def import_grids(file: Path, level: int, code_field: str, name_field: str | None,
                 parent_field: str, kind: str | None, org_field: str | None, layer: str | None,
                 repair: bool, actor: str | None, reason: str | None) -> None:
    """Import the grids of one level from FILE (GeoJSON, GeoPackage, Shapefile, GeoParquet)."""
    from gisgrid.db.engine import get_engine, storage_srid
    from gisgrid.db.grids import codes_by_level, known_codes, write_grids
    from gisgrid.grids import prepare_grids
    from gisgrid.io import read_layer

    frame = read_layer(file, layer=layer)
    if frame.empty:
        raise InputError(f"{file}: the layer has no features, nothing to import")
    progress = len(frame) >= PROGRESS_FROM
    with get_engine(Settings.from_env()).begin() as conn:
        prepared = prepare_grids(
            frame, level, code_field=code_field, name_field=name_field,
            parent_field=parent_field, kind=kind, org_field=org_field,
            storage_crs=storage_srid(conn),
            known_parent_codes=known_codes(conn, level - 1) if level > 1 else None,
            codes_at_other_levels=codes_by_level(conn, except_level=level),
            repair=repair, progress=progress)
        stored_before = known_codes(conn, level)
        ids = write_grids(conn, prepared, actor=actor or default_actor(), change="import",
                          reason=reason, progress=progress)
    if prepared.repairs:
        click.echo(f"repaired {len(prepared.repairs)} invalid geometr"
                   f"{'y' if len(prepared.repairs) == 1 else 'ies'}:")
        for line in prepared.repairs:
            click.echo(f"  - {line}")
    new = sum(code not in stored_before for code in prepared.frame["code"])
    click.echo(f"imported {len(ids)} level-{level} grids from {file} "
               f"({new} new, {len(ids) - new} already stored: new version where changed)")
