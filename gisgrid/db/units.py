"""The business-unit store: the only SQL touching ``unit``.

Every function takes a SQLAlchemy ``Connection``; the caller owns the transaction. The rules
(classes, management, normalisation of ledgers) live in :mod:`gisgrid.units`.

Grid chain at write time: the units are assigned in bulk with :mod:`gisgrid.assign`
(:func:`gisgrid.db.grids.read_grid_index` over the current base grids), not by a SQL join; a
unit outside every base grid is stored with null grid ids and ``outside_grids = true``, never
refused.
"""

from __future__ import annotations

from dataclasses import dataclass

import geopandas as gpd
import pandas as pd
import shapely
import sqlalchemy as sa

from gisgrid.assign import assign_frame
from gisgrid.crs import DEFAULT_SRID as LONLAT_SRID
from gisgrid.db.audit import UnitsImported, record_audit
from gisgrid.db.engine import storage_srid
from gisgrid.db.grids import read_grid_index, under_params
from gisgrid.errors import InputError


@dataclass(frozen=True)
class UnitsWritten:
    """What :func:`write_units` did."""

    inserted: int
    updated: int
    outside: int
    ids: tuple[int, ...] = ()



def write_units(conn: sa.Connection, units: gpd.GeoDataFrame, *,
                actor: str | None = None) -> UnitsWritten:
    """Store normalised units (:func:`gisgrid.units.normalise_units`) with their grid chain.

    A unit whose ``external_id`` is already stored updates that row (a re-import of a ledger);
    others are inserted. Units outside every current base grid are stored with
    ``outside_grids = true``. The call is audited (``units.import`` by ``actor``, with the
    counts).
    """
    if units.crs is None or units.crs.to_epsg() != LONLAT_SRID:
        raise InputError("units must be normalised to CGCS2000 longitude/latitude first")
    srid = storage_srid(conn)
    index = read_grid_index(conn)
    points = units.geometry.to_crs(srid) if srid != LONLAT_SRID else units.geometry
    if index is None:
        chain = pd.DataFrame({c: pd.array([None] * len(units), dtype="Int64") for c in
                              ("base_grid_id", "village_grid_id", "township_grid_id",
                               "city_grid_id")}, index=units.index)
        chain["outside_grids"] = True
    else:
        chain = assign_frame(index, gpd.GeoDataFrame(geometry=points.values, crs=srid,
                                                     index=units.index))
    inserted = updated = 0
    ids = []
    geom = f"ST_Transform(ST_SetSRID(ST_GeomFromWKB(:wkb), {LONLAT_SRID}), :srid)"
    # one statement per unit: a ledger re-imported concurrently updates, never collides
    # (xmax = 0 only on a row this statement inserted)
    upsert = sa.text(f"""
        INSERT INTO unit (external_id, name, address, unit_class, fire_key_unit,
            high_risk, management, geom, base_grid_id, village_grid_id,
            township_grid_id, city_grid_id, outside_grids)
        VALUES (:external_id, :name, :address, :unit_class, :fire_key_unit, :high_risk,
            :management, {geom}, :base_grid_id, :village_grid_id, :township_grid_id,
            :city_grid_id, :outside)
        ON CONFLICT (external_id) DO UPDATE SET name = EXCLUDED.name,
            address = EXCLUDED.address, unit_class = EXCLUDED.unit_class,
            fire_key_unit = EXCLUDED.fire_key_unit, high_risk = EXCLUDED.high_risk,
            management = EXCLUDED.management, geom = EXCLUDED.geom,
            base_grid_id = EXCLUDED.base_grid_id, village_grid_id = EXCLUDED.village_grid_id,
            township_grid_id = EXCLUDED.township_grid_id,
            city_grid_id = EXCLUDED.city_grid_id, outside_grids = EXCLUDED.outside_grids
        RETURNING id, xmax = 0""")
    records = units.drop(columns=units.geometry.name).to_dict("records")
    wkbs = shapely.to_wkb(units.geometry.values)
    for unit, wkb, grids in zip(records, wkbs, chain.to_dict("records")):
        params = {
            "external_id": unit["external_id"], "name": unit["name"],
            "address": unit["address"], "unit_class": unit["unit_class"],
            "fire_key_unit": bool(unit["fire_key_unit"]), "high_risk": bool(unit["high_risk"]),
            "management": unit["management"], "wkb": wkb,
            "srid": srid, "outside": bool(grids["outside_grids"]),
            **{c: (None if pd.isna(grids[c]) else int(grids[c])) for c in
               ("base_grid_id", "village_grid_id", "township_grid_id", "city_grid_id")},
        }
        unit_id, was_inserted = conn.execute(upsert, params).one()
        ids.append(unit_id)
        inserted += bool(was_inserted)
        updated += not was_inserted
    written = UnitsWritten(inserted, updated, int(chain["outside_grids"].sum()), tuple(ids))
    record_audit(conn, UnitsImported(actor=actor, inserted=written.inserted,
                                     updated=written.updated, outside=written.outside))
    return written


def read_units(conn: sa.Connection, *, under: str | None = None,
               outside_only: bool = False) -> gpd.GeoDataFrame:
    """Stored units (those whose base grid is under ``under``; or only those outside every
    grid), with the code of their base grid, as a GeoDataFrame in CGCS2000 lon/lat."""
    where, params = under_params(conn, under)
    if under is not None:
        where = f"u.base_grid_id IN (SELECT g.id FROM grid g WHERE {where})"
    if outside_only:
        where += " AND u.outside_grids"
    rows = conn.execute(sa.text(f"""
        SELECT u.id, u.external_id, u.name, u.address, u.unit_class, u.fire_key_unit,
               u.high_risk, u.management, b.code AS base_grid_code, u.base_grid_id,
               u.village_grid_id, u.township_grid_id, u.city_grid_id, u.outside_grids,
               ST_AsBinary(ST_Transform(u.geom, {LONLAT_SRID})) AS wkb
        FROM unit u LEFT JOIN grid b ON b.id = u.base_grid_id
        WHERE {where} ORDER BY u.id"""), params).mappings().all()
    frame = pd.DataFrame([{k: v for k, v in r.items() if k != "wkb"} for r in rows])
    geoms = shapely.from_wkb([bytes(r["wkb"]) for r in rows]) if rows else []
    return gpd.GeoDataFrame(frame, geometry=gpd.GeoSeries(geoms, crs=LONLAT_SRID).values,
                            crs=LONLAT_SRID)
