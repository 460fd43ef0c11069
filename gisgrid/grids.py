"""Preparing grids for storage: check every feature of an imported layer, then normalise it.

:func:`prepare_grids` is pure (a GeoDataFrame in, :class:`PreparedGrids` out, no I/O). It checks
every feature and collects every problem before refusing, so one run names all bad features:

- missing code, duplicate code (within the layer, or already used at another level), a code
  that does not give a one-level tree path (see :func:`path_segment`),
- missing or unknown parent code (levels 2-4: the parent must be a current grid one level up),
- unknown kind for the level,
- no geometry / empty geometry, not a polygon, coordinates out of range for the CRS,
- invalid geometry (e.g. a self-intersecting "bow-tie"): refused, unless ``repair=True``, in
  which case it is repaired with ``make_valid(method="structure")``, its polygonal part kept,
  and the repair listed,
- a layer with no CRS.

Accepted features are reprojected to the storage CRS, promoted to MultiPolygon, snapped to the
storage precision (:mod:`gisgrid.precision`) and normalised (``shapely.normalize``), so the same
shape always yields the same stored coordinates whatever the file format it came through.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely
from tqdm import tqdm

from gisgrid.crs import DEFAULT_SRID, check_coordinates_in_range
from gisgrid.errors import ImportRefused, InputError
from gisgrid.levels import DEFAULT_KIND, Level
from gisgrid.precision import grid_size_for, snap

GRID_COLUMNS = ["code", "name", "level", "kind", "parent_code", "org"]
PATH_SEPARATOR = "."
GEOMETRY_COLUMN = "geom"
# Shapefile attribute names are cut to 10 characters (parent_code -> parent_cod).
_SHAPEFILE_NAME_LENGTH = 10
_CHUNK = 5_000
_POLYGONAL = (shapely.GeometryType.POLYGON, shapely.GeometryType.MULTIPOLYGON)


@dataclass(frozen=True)
class PreparedGrids:
    """Grids of one level, checked and ready to store.

    Attributes
    ----------
    frame
        Grid frame (``code, name, level, kind, parent_code, org`` and geometry ``geom``): every
        geometry a valid, snapped, normalised MultiPolygon in ``frame.crs`` (the storage CRS).
        The index is the 0-based position of the feature in the source layer.
    level
        The level of every grid in ``frame``.
    repairs
        One line per repaired geometry: ``"row N (code X): repaired <reason>"``.
    """

    frame: gpd.GeoDataFrame
    level: Level
    repairs: tuple[str, ...] = field(default=())

    def __len__(self) -> int:
        return len(self.frame)

    @property
    def srid(self) -> int:
        """EPSG code of the storage CRS of :attr:`frame`."""
        return int(pyproj.CRS.from_user_input(self.frame.crs).to_epsg())


def prepare_grids(
    frame: gpd.GeoDataFrame,
    level: int | Level,
    *,
    code_field: str = "code",
    name_field: str | None = None,
    parent_field: str | None = "parent_code",
    kind: str | None = None,
    kind_field: str | None = "kind",
    org_field: str | None = None,
    storage_crs=DEFAULT_SRID,
    known_parent_codes: Collection[str] | None = None,
    codes_at_other_levels: Mapping[str, int] | None = None,
    repair: bool = False,
    progress: bool = False,
) -> PreparedGrids:
    """Check every feature of ``frame`` as grids of ``level`` and prepare them for storage.

    Parameters
    ----------
    frame
        The layer as read (:func:`gisgrid.io.read_layer`), in any CRS.
    level
        Level of every feature (1 city ... 4 base grid).
    code_field, parent_field
        Attribute holding the grid code and the parent's code. ``parent_field`` is ignored at
        level 1 (a city grid has no parent) and required at levels 2-4. A Shapefile's truncated
        name (``parent_cod``) and a different letter case are accepted.
    name_field
        Attribute holding the grid name; ``None`` means ``name`` when the layer has it. A
        missing name falls back to the code.
    kind
        The kind of every grid (e.g. ``"street"`` at level 2). ``None`` reads ``kind_field``
        when the layer has it, else uses the level's default kind.
    org_field
        Attribute holding the responsible organisation; ``None`` means ``org`` if present.
    storage_crs
        CRS the grids are stored in (EPSG code or anything pyproj accepts).
    known_parent_codes
        Codes of the current grids one level up; ``None`` skips the unknown-parent check
        (e.g. checking a file with no database).
    codes_at_other_levels
        Code -> level of current grids at other levels; a feature reusing one is a duplicate.
    repair
        Repair invalid geometries instead of refusing them; each repair is listed.
    progress
        Show a progress bar on stderr.

    Returns
    -------
    PreparedGrids

    Raises
    ------
    ImportRefused
        One or more features are bad; ``details`` lists each as ``"row N (code X): problem"``
        (``N`` counts features from 1, in file order), plus layer-wide problems.
    InputError
        An option is unusable (unknown level or kind).

    Examples
    --------
    >>> from shapely import box
    >>> layer = gpd.GeoDataFrame({"code": ["421281"], "name": ["赤壁市"]},
    ...                          geometry=[box(113.7, 29.5, 114.2, 29.9)], crs=4490)
    >>> prepared = prepare_grids(layer, 1)
    >>> prepared.frame[["code", "name", "level", "kind"]].values.tolist()
    [['421281', '赤壁市', 1, 'city']]
    >>> prepared.frame.geometry.iloc[0].geom_type
    'MultiPolygon'
    """
    level = Level.parse(level)
    storage_crs = pyproj.CRS.from_user_input(storage_crs)
    if kind is not None and kind not in level.kinds:
        raise InputError(f"kind {kind!r} is not a kind of level {int(level)} grids: "
                         f"expected one of {', '.join(level.kinds)}")
    problems = _Problems(len(frame))
    columns = [c for c in frame.columns if c != frame.geometry.name]

    code_column = _field(frame, code_field, columns, problems, required=True)
    codes = _read_text(frame, code_column)
    problems.codes = codes
    if code_column is not None:  # else the layer-wide problem says it once, not per row
        _check_codes(codes, problems, codes_at_other_levels or {})
    parents = _read_parents(frame, level, parent_field, columns, problems, known_parent_codes)
    _check_path_segments(codes, parents, problems)
    kinds = _read_kinds(frame, level, kind, kind_field, columns, problems)
    names = _read_text(frame, _field(frame, name_field or "name", columns, problems,
                                     required=name_field is not None))
    names = [n if n is not None else c for n, c in zip(names, codes)]
    orgs = _read_text(frame, _field(frame, org_field or "org", columns, problems,
                                    required=org_field is not None))

    if frame.crs is None:
        problems.add_layer("the layer has no coordinate reference system: declare one in the "
                           "file (e.g. a .prj beside a Shapefile) or reproject it first")
    geoms, repairs = _check_geometries(frame, problems, storage_crs, repair=repair,
                                       progress=progress)
    problems.raise_if_any(len(frame))

    positions = pd.RangeIndex(len(frame))
    prepared = gpd.GeoDataFrame(
        {"code": codes, "name": names, "level": int(level), "kind": kinds,
         # object columns keep None (not NaN) for "no parent" / "no organisation"
         "parent_code": pd.Series(parents, dtype=object, index=positions),
         "org": pd.Series(orgs, dtype=object, index=positions), GEOMETRY_COLUMN: geoms},
        geometry=GEOMETRY_COLUMN, index=positions, crs=storage_crs,
    )
    return PreparedGrids(frame=prepared, level=level, repairs=tuple(repairs))


def path_segment(code: str, parent_code: str | None) -> str:
    """The part of ``code`` that extends the parent's tree path (``path``) by one level.

    A grid's path is its parent's path, a dot, and this segment; a city grid's path is its
    segment. Codes written as dotted paths (``421281.01.001``) lose their parent's prefix, so
    their path equals their code; any other code is its own segment.

    >>> path_segment("421281.01.001", "421281.01")
    '001'
    >>> path_segment("B7", "421281.01")
    'B7'
    >>> path_segment("421281", None)
    '421281'
    """
    prefix = f"{parent_code}{PATH_SEPARATOR}" if parent_code else None
    if prefix and code.startswith(prefix) and len(code) > len(prefix):
        return code[len(prefix):]
    return code


def snap_grid_geometries(geometries, crs) -> np.ndarray:
    """Snap, promote to MultiPolygon and normalise geometries already in the storage CRS.

    The one place that turns polygonal geometries into stored form; editing and repair use it
    too, so a shape always gets the same coordinates. Collapsed geometries come back empty.

    Each coordinate is rounded to the grid (:func:`gisgrid.precision.grid_size_for`) on its
    own, so neighbours that shared a vertex still share it, and vertices that fall together
    are merged. Only a geometry that this leaves invalid (a collapsed ring, a new
    self-touch) goes through the valid-output snap of :func:`gisgrid.precision.snap`, which
    is ten times slower. Snapping a snapped geometry changes nothing.
    """
    geoms = np.asarray(geometries, dtype=object)
    snapped = shapely.set_precision(geoms, grid_size_for(crs), mode="pointwise")
    invalid = ~shapely.is_valid(snapped) & ~shapely.is_missing(snapped)
    snapped[~invalid] = shapely.remove_repeated_points(snapped[~invalid], 0.0)
    if invalid.any():
        snapped[invalid] = snap(geoms[invalid], crs)
    return shapely.normalize(_to_multipolygons(_polygonal_parts(snapped)))


# --- problems ---------------------------------------------------------------------------------

class _Problems:
    """Problem lines per row (in row order) and for the layer as a whole."""

    def __init__(self, n: int):
        self.by_row: dict[int, list[str]] = defaultdict(list)
        self.layer: list[str] = []
        self.codes: list[str | None] = [None] * n

    def add(self, position: int, problem: str) -> None:
        self.by_row[position].append(problem)

    def add_layer(self, problem: str) -> None:
        self.layer.append(problem)

    def label(self, position: int) -> str:
        code = self.codes[position]
        return f"row {position + 1} ({'code ' + code if code is not None else 'no code'})"

    def raise_if_any(self, total: int) -> None:
        if not self.by_row and not self.layer:
            return
        details = [f"layer: {p}" for p in self.layer]
        for position in sorted(self.by_row):
            details.extend(f"{self.label(position)}: {p}" for p in self.by_row[position])
        parts = [f"{len(self.by_row)} of {total} features are bad"] if self.by_row else []
        if self.layer:
            parts.append(f"the layer has {len(self.layer)} problem(s)")
        raise ImportRefused(f"import refused, nothing was written: {' and '.join(parts)}",
                            details)


def _field(frame, name: str, columns: list[str], problems: _Problems, *,
           required: bool) -> str | None:
    """The column of ``frame`` matching ``name`` (exact, any case, or Shapefile-truncated)."""
    if name in columns:
        return name
    lowered = {c.lower(): c for c in columns}
    for candidate in (name.lower(), name.lower()[:_SHAPEFILE_NAME_LENGTH]):
        if candidate in lowered:
            return lowered[candidate]
    if required:
        problems.add_layer(f"no field {name!r}; the layer's fields are: "
                           f"{', '.join(map(str, columns)) or '(none)'}")
    return None


def _clean_text(value) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        value = int(value)  # codes read from a numeric column: 421281.0 -> "421281"
    text = str(value).strip()
    return text or None


def _read_text(frame, column: str | None) -> list[str | None]:
    if column is None:
        return [None] * len(frame)
    return [_clean_text(v) for v in frame[column].tolist()]


def _check_codes(codes: list[str | None], problems: _Problems,
                 codes_at_other_levels: Mapping[str, int]) -> None:
    rows_by_code: dict[str, list[int]] = defaultdict(list)
    for position, code in enumerate(codes):
        if code is None:
            problems.add(position, "missing code")
        else:
            rows_by_code[code].append(position)
    for code, positions in rows_by_code.items():
        if len(positions) > 1:
            for position in positions:
                others = ", ".join(str(p + 1) for p in positions if p != position)
                problems.add(position, f"duplicate code (also in row {others})")
        if code in codes_at_other_levels:
            for position in positions:
                problems.add(position, "duplicate code: already used by a current level-"
                                       f"{codes_at_other_levels[code]} grid")


def _read_parents(frame, level: Level, parent_field, columns, problems: _Problems,
                  known_parent_codes) -> list[str | None]:
    if level.parent is None:
        return [None] * len(frame)
    column = _field(frame, parent_field or "parent_code", columns, problems, required=True)
    if column is None:
        return [None] * len(frame)
    parents = _read_text(frame, column)
    known = None if known_parent_codes is None else set(known_parent_codes)
    for position, parent in enumerate(parents):
        if parent is None:
            problems.add(position, f"missing parent code (level {int(level)} grids need a "
                                   f"level-{int(level.parent)} parent)")
        elif known is not None and parent not in known:
            problems.add(position, f"unknown parent {parent!r}: no current level-"
                                   f"{int(level.parent)} grid has this code")
    return parents


def _check_path_segments(codes, parents, problems: _Problems) -> None:
    """Each code must give a one-level path segment, distinct among its siblings."""
    rows_by_path: dict[tuple, list[int]] = defaultdict(list)
    for position, (code, parent) in enumerate(zip(codes, parents)):
        if code is None:
            continue
        segment = path_segment(code, parent)
        if PATH_SEPARATOR in segment:
            problems.add(position, f"code contains {PATH_SEPARATOR!r}, which separates the "
                                   "levels of the grid tree: use a code without it, or the "
                                   f"parent's code, {PATH_SEPARATOR!r} and a part without it")
        else:
            rows_by_path[(parent, segment)].append(position)
    for positions in rows_by_path.values():
        for position in positions:  # same code twice is reported as a duplicate code
            others = ", ".join(str(p + 1) for p in positions if codes[p] != codes[position])
            if others:
                problems.add(position, f"same place in the grid tree as row {others}")


def _read_kinds(frame, level: Level, kind, kind_field, columns, problems) -> list[str]:
    if kind is not None:
        return [kind] * len(frame)
    column = _field(frame, kind_field, columns, problems, required=False) if kind_field else None
    values = _read_text(frame, column)
    kinds = []
    for position, value in enumerate(values):
        value = value.lower() if value else DEFAULT_KIND[level]
        if value not in level.kinds:
            problems.add(position, f"kind {value!r} is not a kind of level {int(level)} grids "
                                   f"(expected {', '.join(level.kinds)})")
        kinds.append(value)
    return kinds


# --- geometries -------------------------------------------------------------------------------

def _check_geometries(frame, problems: _Problems, storage_crs: pyproj.CRS, *, repair: bool,
                      progress: bool) -> tuple[np.ndarray, list[str]]:
    """Check, repair (if asked), reproject and snap every geometry; return them and repairs."""
    geoms = np.asarray(frame.geometry.array, dtype=object)
    n = len(geoms)
    missing = shapely.is_missing(geoms)
    empty = ~missing & shapely.is_empty(geoms)
    type_ids = shapely.get_type_id(geoms)
    polygonal = np.isin(type_ids, [int(t) for t in _POLYGONAL])
    out_of_range = np.zeros(n, dtype=bool)
    if frame.crs is not None:
        out_of_range[check_coordinates_in_range(frame)] = True
    for position in np.flatnonzero(missing):
        problems.add(position, "no geometry")
    for position in np.flatnonzero(empty):
        problems.add(position, "empty geometry")
    for position in np.flatnonzero(~missing & ~empty & ~polygonal):
        problems.add(position, f"not a polygon (got a {geoms[position].geom_type})")
    usable = ~missing & ~empty & polygonal
    for position in np.flatnonzero(usable & out_of_range):
        problems.add(position, f"coordinates out of range for {_crs_name(frame.crs)} "
                               f"(bounds {_bounds_text(geoms[position])})")
    usable &= ~out_of_range

    result = np.empty(n, dtype=object)
    repairs: list[str] = []
    grid_size = grid_size_for(storage_crs)
    bar = tqdm(total=n, desc="preparing grids", unit="grid", disable=not progress,
               file=None, leave=False)
    with bar:
        for start in range(0, n, _CHUNK):
            stop = min(start + _CHUNK, n)
            positions = np.arange(start, stop)[usable[start:stop]]
            if len(positions):
                fixed = _check_validity(geoms[positions], positions, problems, repairs,
                                        repair=repair)
                if frame.crs is not None:
                    stored = _to_storage(fixed, frame.crs, storage_crs)
                    collapsed = ~shapely.is_missing(fixed) & shapely.is_empty(stored)
                    for position in positions[collapsed]:
                        problems.add(position, "collapses to nothing when snapped to the "
                                               f"storage precision ({grid_size:g})")
                    result[positions] = stored
            bar.update(stop - start)
    return result, repairs


def _check_validity(geoms: np.ndarray, positions: np.ndarray, problems: _Problems,
                    repairs: list[str], *, repair: bool) -> np.ndarray:
    """Valid geometries unchanged; invalid ones repaired (or reported, as missing values)."""
    geoms = geoms.copy()
    invalid = ~shapely.is_valid(geoms)
    if not invalid.any():
        return geoms
    reasons = shapely.is_valid_reason(geoms[invalid])
    if not repair:
        for position, reason in zip(positions[invalid], reasons):
            problems.add(position, f"invalid geometry: {reason} (repair it, or import with "
                                   "--repair to repair it automatically)")
        geoms[invalid] = None
        return geoms
    fixed = _polygonal_parts(shapely.make_valid(geoms[invalid], method="structure",
                                                keep_collapsed=False))
    for position, reason, geom in zip(positions[invalid], reasons, fixed):
        if shapely.is_empty(geom):
            problems.add(position, f"invalid geometry: {reason}; repairing it leaves no polygon")
        else:
            parts = shapely.get_num_geometries(geom)
            repairs.append(f"{problems.label(position)}: repaired {reason} "
                           f"(kept {parts} polygon part{'s' if parts != 1 else ''})")
    fixed[shapely.is_empty(fixed)] = None
    geoms[invalid] = fixed
    return geoms


def _to_storage(geoms: np.ndarray, source_crs, storage_crs: pyproj.CRS) -> np.ndarray:
    series = gpd.GeoSeries(geoms, crs=source_crs)
    if not pyproj.CRS.from_user_input(source_crs).equals(storage_crs):
        series = series.to_crs(storage_crs)
    stored = snap_grid_geometries(series.array, storage_crs)
    stored[shapely.is_missing(geoms)] = None
    return stored


def _polygonal_parts(geoms: np.ndarray) -> np.ndarray:
    """The polygonal part of each geometry (collections filtered; others -> empty polygon)."""
    geoms = np.asarray(geoms, dtype=object).copy()
    type_ids = shapely.get_type_id(geoms)
    polygonal = np.isin(type_ids, [int(t) for t in _POLYGONAL]) | shapely.is_missing(geoms)
    for i in np.flatnonzero(~polygonal):
        parts = shapely.get_parts(geoms[i])
        keep = parts[np.isin(shapely.get_type_id(parts), [int(t) for t in _POLYGONAL])]
        geoms[i] = (shapely.union_all(keep) if len(keep) else shapely.Polygon())
    return geoms


def _to_multipolygons(geoms: np.ndarray) -> np.ndarray:
    geoms = np.asarray(geoms, dtype=object).copy()
    empty = ~shapely.is_missing(geoms) & shapely.is_empty(geoms)
    single = (shapely.get_type_id(geoms) == int(shapely.GeometryType.POLYGON)) & ~empty
    if single.any():
        geoms[single] = shapely.multipolygons(geoms[single],
                                              indices=np.arange(int(single.sum())))
    geoms[empty] = shapely.MultiPolygon()
    return geoms


def _crs_name(crs) -> str:
    crs = pyproj.CRS.from_user_input(crs)
    epsg = crs.to_epsg()
    return f"EPSG:{epsg}" if epsg else crs.name


def _bounds_text(geom) -> str:
    return ", ".join(f"{v:.6g}" for v in shapely.bounds(geom))
