"""``gisgrid units``: import and list production and business units (生产经营单位).

Only parsing and presenting: classes, management and checks live in :mod:`gisgrid.units`, the
storage and grid assignment in :mod:`gisgrid.db.units`.
"""

from __future__ import annotations

import click

from gisgrid.cli import default_actor
from gisgrid.cli.checklists import FORMATS, echo_rows


@click.group("units")
def units() -> None:
    """Production and business units: import a ledger, list what is stored."""


@units.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--crs", help="CRS of the lon/lat columns (default EPSG:4490, CGCS2000).")
@click.option("--sheet", help="XLSX sheet name (default: the first).")
def import_units(file: str, crs: str | None, sheet: str | None) -> None:
    """Import units from a CSV, XLSX or GeoJSON FILE; all or nothing.

    Every unit gets its grid chain (base grid, village/community, township, city); a unit
    outside every grid is stored and flagged, never dropped.
    """
    from gisgrid.db.engine import begin
    from gisgrid.db.units import write_units
    from gisgrid.units import read_units

    frame = read_units(file, crs=crs, sheet=sheet)
    with begin() as conn:
        written = write_units(conn, frame, actor=default_actor())
    click.echo(f"units: {written.inserted} inserted, {written.updated} updated, "
               f"{written.outside} outside every grid (flagged)")
    counts = frame["management"].value_counts()
    click.echo(f"management: {int(counts.get('individual', 0))} individual (单独纳管), "
               f"{int(counts.get('packaged', 0))} packaged (打包管理)")


@units.command("list")
@click.option("--under", help="Only units in grids under this grid code.")
@click.option("--outside", is_flag=True, help="Only units outside every grid.")
@click.option("--format", "fmt", type=FORMATS, default="text", show_default=True)
def list_units(under: str | None, outside: bool, fmt: str) -> None:
    """List stored units with class, management and base grid."""
    from gisgrid.db.engine import begin
    from gisgrid.db.units import read_units

    with begin() as conn:
        frame = read_units(conn, under=under, outside_only=outside)
    rows = []
    for record, point in zip(frame.drop(columns=frame.geometry.name).to_dict("records"),
                             frame.geometry):
        record = {k: (None if _missing(v) else v) for k, v in record.items()}
        rows.append({**record, "lon": round(point.x, 7), "lat": round(point.y, 7)})
    echo_rows(rows, ["id", "external_id", "name", "unit_class", "management",
                     "base_grid_code", "outside_grids"], fmt)


def _missing(value) -> bool:
    import pandas as pd

    return pd.api.types.is_scalar(value) and bool(pd.isna(value))
