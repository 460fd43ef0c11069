"""The grid store: the only SQL touching ``grid`` and ``grid_history``.

Every function takes a SQLAlchemy ``Connection``; the caller owns the transaction, so the grids
and their history rows commit together or not at all.

Versions: ``grid`` holds one row per grid (its ``id`` never changes, so facts can point at it);
``grid_history`` holds every version of it, the current one with ``valid_to IS NULL``. Writing a
grid whose code is already current at the same level makes a new version: the history row of
the old version is closed (``valid_to``), ``version`` and ``row_version`` go up by one and a new
history row is added. A grid written again unchanged (same attributes, same stored coordinates)
keeps its version.

Tree paths: ``path`` is the parent's path, ``.`` and :func:`gisgrid.grids.path_segment` of the
code (a city grid's path is its code), so "everything under this grid" is one indexed prefix
match (:func:`read_grids` with ``under=``).

Bulk I/O: rows go in by binary ``COPY`` of WKB into a staging table and come out as WKB
(``ST_AsBinary`` read with :func:`shapely.from_wkb`).

Lookups for the stores of facts under grids (units, people, checklists, patrols):
:func:`read_grid` / :func:`read_city` by code (an unknown code is an :class:`InputError` naming
the field), :func:`read_base_grids` with the kind of their village/community,
:func:`under_params` ("the grid ``under`` and its descendants" as a SQL condition) and
:func:`read_grid_index` (a point-in-grid index of the current base grids).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
import sqlalchemy as sa
from tqdm import tqdm

from gisgrid.assign import GridIndex, build_grid_index
from gisgrid.crs import local_metric_crs
from gisgrid.db.audit import GridsWritten, record_audit, summarise_codes
from gisgrid.db.engine import storage_srid
from gisgrid.errors import CRSError, ImportRefused, InputError, NotFound
from gisgrid.grids import GEOMETRY_COLUMN, PreparedGrids, path_segment, snap_grid_geometries
from gisgrid.levels import Level

GRID_FRAME_COLUMNS = ["id", "code", "name", "level", "kind", "parent_code", "org", "version",
                     "path", "area_m2"]

_STAGE_COLUMNS = ("pos", "code", "name", "level", "kind", "parent_code", "segment", "org", "wkb",
                  "area_m2")
_STAGE_TYPES = ("int4", "text", "text", "int2", "text", "text", "text", "text", "bytea",
                "float8")


def write_grids(conn: sa.Connection, prepared: PreparedGrids, *, actor: str | None,
                change: str = "import", reason: str | None = None,
                progress: bool = False) -> list[int]:
    """Store prepared grids (new ones inserted, current ones with the same code versioned).

    Parameters
    ----------
    conn
        Connection inside the caller's transaction.
    prepared
        Grids of one level from :func:`gisgrid.grids.prepare_grids` (or built by editing and
        repair), in the storage CRS. Geometries are snapped again here (idempotent), so
        nothing reaches the table off the precision grid.
    actor, change, reason
        Recorded on every history row; ``change`` is one of ``import``, ``edit``, ``repair``,
        ``retire``, ``create``. The call leaves one audit event ``grids.<change>`` with the
        counts of new, versioned and unchanged grids and the codes of the first changed ones
        (:mod:`gisgrid.db.audit`).
    progress
        Show a progress bar on stderr while loading.

    Returns
    -------
    list of int
        The grid id of each row of ``prepared.frame``, in order. Rows named in errors are
        counted from 1 in that order (the source file's order when it comes from
        :func:`~gisgrid.grids.prepare_grids`).

    Raises
    ------
    ImportRefused
        A parent code is not a current grid one level up, a code is current at another level,
        or a tree path is taken by another grid; every such row is listed and nothing is
        written (the statements already run only touched a temporary table).
    CRSError
        ``prepared`` is not in the storage CRS of the database.
    """
    srid = storage_srid(conn)
    frame = prepared.frame
    if not pyproj.CRS.from_user_input(frame.crs).equals(pyproj.CRS.from_epsg(srid)):
        raise CRSError(f"the grids are in {frame.crs.to_string()} but the database stores "
                       f"EPSG:{srid}: prepare them with storage_crs={srid}")
    if frame.empty:
        return []
    geoms = snap_grid_geometries(frame.geometry.values, frame.crs)
    _refuse_empty(frame, geoms)
    now = conn.execute(sa.text("SELECT clock_timestamp()")).scalar_one()
    _stage(conn, frame, geoms, progress=progress)
    _resolve_stage(conn)
    _refuse_conflicts(conn)
    inserted, versioned, codes = conn.execute(sa.text(
        "SELECT count(*) FILTER (WHERE grid_id IS NULL), count(*) FILTER (WHERE changed), "
        "coalesce(array_agg(code) FILTER (WHERE grid_id IS NULL OR changed), '{}') "
        "FROM grid_stage")).one()
    _version_changed_grids(conn, now, srid)
    _insert_new_grids(conn, now, srid)
    conn.execute(sa.text("""
        INSERT INTO grid_history (grid_id, version, code, name, level, kind, parent_id, path,
                                  responsible_org, geom, area_m2, valid_from, valid_to,
                                  change, actor, reason)
        SELECT g.id, g.version, g.code, g.name, g.level, g.kind, g.parent_id, g.path,
               g.responsible_org, g.geom, g.area_m2, g.valid_from, NULL, :change, :actor, :reason
        FROM grid g JOIN grid_stage s ON s.grid_id = g.id
        WHERE s.changed
    """), {"change": change, "actor": actor, "reason": reason})
    ids = conn.execute(sa.text("SELECT grid_id FROM grid_stage ORDER BY pos")).scalars().all()
    conn.execute(sa.text("DROP TABLE grid_stage"))
    levels = set(frame["level"].astype(int))
    shown, more = summarise_codes(codes)
    record_audit(conn, GridsWritten(
        actor=actor, change=change, level=levels.pop() if len(levels) == 1 else None,
        inserted=inserted, versioned=versioned, unchanged=len(ids) - inserted - versioned,
        codes=shown, more_codes=more, reason=reason))
    return [int(i) for i in ids]


def read_grids(conn: sa.Connection, *, level: int | None = None, code: str | None = None,
               under: str | None = None, at: datetime | None = None) -> gpd.GeoDataFrame:
    """Read grids as a grid frame.

    Parameters
    ----------
    level, code
        Only grids of this level / with this code.
    under
        Only the grid with this code and every grid below it in the tree.
    at
        The grids as they were at this moment (from ``grid_history``); default: current.

    Returns
    -------
    GeoDataFrame
        Columns ``id, code, name, level, kind, parent_code, org, version, path, area_m2`` and
        geometry ``geom`` in the storage CRS, ordered by path. ``id`` is the grid's id.

    Raises
    ------
    NotFound
        ``under`` names no grid (current, or at ``at``).
    """
    srid = storage_srid(conn)
    if at is None:
        source = """
            SELECT g.id, g.code, g.name, g.level, g.kind, p.code AS parent_code,
                   g.responsible_org AS org, g.version, g.path, g.area_m2,
                   ST_AsBinary(g.geom) AS wkb
            FROM grid g LEFT JOIN grid p ON p.id = g.parent_id
            WHERE g.valid_to IS NULL"""
    else:
        source = """
            SELECT h.grid_id AS id, h.code, h.name, h.level, h.kind, p.code AS parent_code,
                   h.responsible_org AS org, h.version, h.path, h.area_m2,
                   ST_AsBinary(h.geom) AS wkb
            FROM grid_history h
            LEFT JOIN grid_history p ON p.grid_id = h.parent_id
                 AND p.valid_from <= :at AND (p.valid_to IS NULL OR p.valid_to > :at)
            WHERE h.valid_from <= :at AND (h.valid_to IS NULL OR h.valid_to > :at)"""
    alias = "g" if at is None else "h"
    conditions, params = [], {"at": at}
    if level is not None:
        conditions.append(f"{alias}.level = :level")
        params["level"] = int(level)
    if code is not None:
        conditions.append(f"{alias}.code = :code")
        params["code"] = code
    if under is not None:
        root = _path_of(conn, under, at)
        conditions.append(f"({alias}.path = :root OR {alias}.path LIKE :below ESCAPE '\\')")
        params.update(root=root, below=like_prefix(root + "."))
    where = "".join(f" AND {c}" for c in conditions)
    rows = conn.execute(sa.text(f"{source}{where} ORDER BY {alias}.path"), params).all()
    return _grid_frame(rows, srid)


def read_codes_of(conn: sa.Connection, grid_ids) -> dict[int, str]:
    """Code of each grid id (any version: a retired grid keeps its code)."""
    ids = sorted({int(i) for i in grid_ids if i is not None})
    if not ids:
        return {}
    rows = conn.execute(sa.text("SELECT id, code FROM grid WHERE id = ANY(:ids)"), {"ids": ids})
    return {int(grid_id): code for grid_id, code in rows}


def known_codes(conn: sa.Connection, level: int) -> set[str]:
    """Codes of the current grids of ``level``."""
    rows = conn.execute(sa.text(
        "SELECT code FROM grid WHERE valid_to IS NULL AND level = :level"), {"level": int(level)})
    return set(rows.scalars())


def codes_by_level(conn: sa.Connection, *, except_level: int | None = None) -> dict[str, int]:
    """Code -> level of every current grid (optionally leaving one level out)."""
    rows = conn.execute(sa.text(
        "SELECT code, level FROM grid WHERE valid_to IS NULL "
        "AND (CAST(:level AS int) IS NULL OR level <> :level)"),
        {"level": None if except_level is None else int(except_level)})
    return {code: int(lvl) for code, lvl in rows}


# --- writing ----------------------------------------------------------------------------------

def _refuse_empty(frame: gpd.GeoDataFrame, geoms: np.ndarray) -> None:
    empty = shapely.is_missing(geoms) | shapely.is_empty(geoms)
    if empty.any():
        raise ImportRefused(
            "refused, nothing was written: some grids have no area at the storage precision",
            [f"row {int(pos) + 1} (code {code}): empty geometry"
             for pos, code in zip(np.flatnonzero(empty), frame["code"].to_numpy()[empty])])


def _stage(conn: sa.Connection, frame: gpd.GeoDataFrame, geoms: np.ndarray, *,
           progress: bool) -> None:
    """Load the rows into the temporary table ``grid_stage`` by binary COPY."""
    metric = local_metric_crs(frame)
    areas = gpd.GeoSeries(geoms, crs=frame.crs).to_crs(metric).area.to_numpy()
    wkbs = shapely.to_wkb(geoms)
    conn.execute(sa.text("DROP TABLE IF EXISTS pg_temp.grid_stage"))
    conn.execute(sa.text("""
        CREATE TEMP TABLE grid_stage (
            pos int PRIMARY KEY, code text NOT NULL, name text NOT NULL, level smallint NOT NULL,
            kind text NOT NULL, parent_code text, segment text NOT NULL, org text,
            wkb bytea NOT NULL, area_m2 float8,
            parent_id bigint, path text, grid_id bigint, changed boolean NOT NULL DEFAULT false
        ) ON COMMIT DROP"""))
    rows = zip(range(len(frame)), frame["code"], frame["name"], frame["level"], frame["kind"],
               frame["parent_code"], frame["org"], wkbs, areas)
    cursor = conn.connection.driver_connection.cursor()
    with cursor, cursor.copy(f"COPY grid_stage ({', '.join(_STAGE_COLUMNS)}) "
                             "FROM STDIN (FORMAT BINARY)") as copy:
        copy.set_types(list(_STAGE_TYPES))
        for pos, code, name, level, kind, parent, org, wkb, area in tqdm(
                rows, total=len(frame), desc="writing grids", unit="grid",
                disable=not progress, leave=False):
            parent, org = _text_or_none(parent), _text_or_none(org)
            copy.write_row((int(pos), code, name, int(level), kind, parent,
                            path_segment(code, parent), org, wkb, float(area)))
    conn.execute(sa.text("ANALYZE grid_stage"))


def _resolve_stage(conn: sa.Connection) -> None:
    """Find each staged grid's parent, path, and current grid with the same code."""
    conn.execute(sa.text("""
        UPDATE grid_stage s SET parent_id = p.id, path = p.path || '.' || s.segment
        FROM grid p
        WHERE s.level > 1 AND p.valid_to IS NULL AND p.level = s.level - 1
          AND p.code = s.parent_code"""))
    conn.execute(sa.text("UPDATE grid_stage SET path = segment WHERE level = 1"))
    conn.execute(sa.text("""
        UPDATE grid_stage s SET grid_id = g.id,
            changed = (g.name IS DISTINCT FROM s.name OR g.kind IS DISTINCT FROM s.kind
                       OR g.parent_id IS DISTINCT FROM s.parent_id
                       OR g.path IS DISTINCT FROM s.path
                       OR g.responsible_org IS DISTINCT FROM s.org
                       OR ST_AsBinary(g.geom) <> s.wkb)
        FROM grid g
        WHERE g.valid_to IS NULL AND g.code = s.code AND g.level = s.level"""))


def _refuse_conflicts(conn: sa.Connection) -> None:
    problems = conn.execute(sa.text("""
        SELECT pos, code, 'unknown parent ' || quote_literal(coalesce(parent_code, '')) ||
               ': no current level-' || (level - 1) || ' grid has this code' AS problem
        FROM grid_stage WHERE level > 1 AND parent_id IS NULL
        UNION ALL
        SELECT s.pos, s.code, 'duplicate code: already used by a current level-' || g.level
               || ' grid'
        FROM grid_stage s JOIN grid g ON g.code = s.code AND g.valid_to IS NULL
                                     AND g.level <> s.level
        UNION ALL
        SELECT s.pos, s.code, 'same place in the grid tree (' || s.path || ') as grid '
               || quote_literal(g.code)
        FROM grid_stage s JOIN grid g ON g.path = s.path AND g.valid_to IS NULL
                                     AND g.code <> s.code
        ORDER BY 1""")).all()
    if problems:
        conn.execute(sa.text("DROP TABLE grid_stage"))
        raise ImportRefused(
            f"refused, nothing was written: {len({p.pos for p in problems})} grids conflict "
            "with the stored grids",
            [f"row {p.pos + 1} (code {p.code}): {p.problem}" for p in problems])


def _version_changed_grids(conn: sa.Connection, now: datetime, srid: int) -> None:
    """Close the current version of every changed grid and write the new one in place."""
    moved = conn.execute(sa.text("""
        SELECT g.path AS old, s.path AS new FROM grid g JOIN grid_stage s ON s.grid_id = g.id
        WHERE s.changed AND g.path <> s.path""")).all()
    conn.execute(sa.text("""
        UPDATE grid_history h SET valid_to = :now
        FROM grid_stage s WHERE s.changed AND h.grid_id = s.grid_id AND h.valid_to IS NULL"""),
        {"now": now})
    conn.execute(sa.text("""
        UPDATE grid g SET name = s.name, kind = s.kind, parent_id = s.parent_id, path = s.path,
            responsible_org = s.org, geom = ST_GeomFromWKB(s.wkb, :srid), area_m2 = s.area_m2,
            version = g.version + 1, row_version = g.row_version + 1, valid_from = :now,
            updated_at = :now
        FROM grid_stage s WHERE s.changed AND g.id = s.grid_id"""), {"now": now, "srid": srid})
    for old, new in moved:  # a grid moved to another parent takes its subtree along
        conn.execute(sa.text("""
            UPDATE grid SET path = :new || substr(path, length(:old) + 1), updated_at = :now
            WHERE valid_to IS NULL AND path LIKE :below ESCAPE '\\'"""),
            {"old": old, "new": new, "below": like_prefix(old + "."), "now": now})


def _insert_new_grids(conn: sa.Connection, now: datetime, srid: int) -> None:
    conn.execute(sa.text("""
        WITH inserted AS (
            INSERT INTO grid (code, name, level, kind, parent_id, path, responsible_org, geom,
                              area_m2, version, valid_from, row_version, created_at, updated_at)
            SELECT code, name, level, kind, parent_id, path, org, ST_GeomFromWKB(wkb, :srid),
                   area_m2, 1, :now, 1, :now, :now
            FROM grid_stage WHERE grid_id IS NULL ORDER BY pos
            RETURNING id, code)
        UPDATE grid_stage s SET grid_id = i.id, changed = true
        FROM inserted i WHERE i.code = s.code"""), {"now": now, "srid": srid})


# --- reading ----------------------------------------------------------------------------------

def _path_of(conn: sa.Connection, code: str, at: datetime | None) -> str:
    if at is None:
        path = conn.execute(sa.text(
            "SELECT path FROM grid WHERE code = :code AND valid_to IS NULL"),
            {"code": code}).scalar_one_or_none()
    else:
        path = conn.execute(sa.text("""
            SELECT path FROM grid_history WHERE code = :code AND valid_from <= :at
              AND (valid_to IS NULL OR valid_to > :at)"""),
            {"code": code, "at": at}).scalar_one_or_none()
    if path is None:
        when = "now" if at is None else f"at {at.isoformat()}"
        raise NotFound(f"no grid with code {code!r} {when}")
    return path


def _grid_frame(rows, srid: int) -> gpd.GeoDataFrame:
    data = pd.DataFrame([r[:-1] for r in rows], columns=GRID_FRAME_COLUMNS)
    data = data.astype({"id": "int64", "level": "int64", "version": "int64",
                        "area_m2": "float64", "parent_code": object, "org": object})
    for column in ("parent_code", "org"):  # None, not NaN, for "no parent" / "no organisation"
        data[column] = data[column].where(data[column].notna(), None)
    geoms = shapely.from_wkb([bytes(r[-1]) for r in rows]) if rows else []
    return gpd.GeoDataFrame(data, geometry=gpd.GeoSeries(geoms, crs=srid, index=data.index),
                            crs=srid).rename_geometry(GEOMETRY_COLUMN)


def like_prefix(prefix: str) -> str:
    """A LIKE pattern (``ESCAPE '\\'``) matching strings that start with ``prefix``.

    >>> like_prefix("4212_81.")
    '4212\\\\_81.%'
    """
    escaped = prefix.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def _text_or_none(value) -> str | None:
    return None if value is None or pd.isna(value) else str(value)


# --- lookups for the facts stored under grids ------------------------------------------------

_UNDER = "(g.path = :under_path OR g.path LIKE :under_like ESCAPE '\\')"


@dataclass(frozen=True)
class GridRow:
    """The few grid fields the stores of facts under grids need."""

    id: int
    code: str
    name: str
    level: int
    kind: str
    parent_id: int | None
    path: str


def read_grid(conn: sa.Connection, code: str, *, field_name: str = "grid") -> GridRow:
    """The current grid with ``code``; :class:`InputError` naming ``field_name`` if none."""
    row = conn.execute(sa.text(
        "SELECT id, code, name, level, kind, parent_id, path FROM grid "
        "WHERE code = :code AND valid_to IS NULL"), {"code": code}).first()
    if row is None:
        raise InputError(f"{field_name}: no current grid with code {code!r}")
    return GridRow(*row)


def read_city(conn: sa.Connection, code: str, *, field_name: str = "city") -> GridRow:
    """The current city (level-1) grid with ``code``; :class:`InputError` naming
    ``field_name`` if there is none or the grid is at another level."""
    city = read_grid(conn, code, field_name=field_name)
    if city.level != Level.CITY:
        raise InputError(f"{field_name}: grid {code} is at level {city.level}, not a city")
    return city


def under_params(conn: sa.Connection, under: str | None) -> tuple[str, dict]:
    """A SQL condition on the grid alias ``g`` and its parameters: "``g`` is the current grid
    ``under`` or below it" (``TRUE`` when ``under`` is None).

    :class:`InputError` naming ``--under`` when ``under`` is no current grid.
    """
    if under is None:
        return "TRUE", {}
    path = read_grid(conn, under, field_name="--under").path
    return _UNDER, {"under_path": path, "under_like": like_prefix(path + ".")}


def read_base_grids(conn: sa.Connection, *, under: str | None = None,
                    ids: Iterable[int] | None = None) -> list[dict]:
    """Current base grids (under ``under``; with these ``ids``) with the kind of their
    village/community and the id of their city: ``id, code, name, village_kind, city_id``."""
    where, params = under_params(conn, under)
    if ids is not None:
        where += " AND g.id = ANY(:ids)"
        params["ids"] = list(ids)
    rows = conn.execute(sa.text(f"""
        SELECT g.id, g.code, g.name, v.kind AS village_kind, c.id AS city_id
        FROM grid g
        LEFT JOIN grid v ON v.id = g.parent_id AND v.level = 3
        LEFT JOIN grid t ON t.id = v.parent_id AND t.level = 2
        LEFT JOIN grid c ON c.id = t.parent_id AND c.level = 1
        WHERE g.level = 4 AND g.valid_to IS NULL AND {where}
        ORDER BY g.code
    """), params).mappings().all()
    return [dict(r) for r in rows]


def read_grid_index(conn: sa.Connection) -> GridIndex | None:
    """A :class:`GridIndex` of the current base grids, or None when there are none."""
    grids = read_grids(conn)
    if not (grids["level"] == Level.BASE).any():
        return None
    return build_grid_index(grids)
