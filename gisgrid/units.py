"""Production and business units (生产经营单位): reading, classing and management.

The plan registers every unit in a grid (底数清). Small-and-above enterprises (小型以上企业),
micro enterprises in high-risk sectors or that are fire-safety key units, schools,
kindergartens, hospitals, parks and public institutions are each managed individually in the
hazard self-inspection system ("两化"); other micro enterprises and individual businesses are
managed "packaged" (打包) by their grid.

:func:`normalise_units` is pure (a frame in, a checked frame out); :func:`read_units` reads a
CSV, XLSX or GeoJSON file first. An import is all or nothing: every bad row is listed in one
:class:`~gisgrid.errors.ImportRefused`.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gisgrid.crs import DEFAULT_SRID
from gisgrid.errors import ImportRefused, InputError
from gisgrid.precision import snap

UNIT_CLASSES = ("enterprise_above_scale", "high_risk_micro", "fire_key_unit", "school",
                "kindergarten", "hospital", "park", "public_institution", "other_micro",
                "individual_business")
UNIT_CLASS_LABELS_ZH = {
    "enterprise_above_scale": "规上企业", "high_risk_micro": "高危小微企业",
    "fire_key_unit": "消防安全重点单位", "school": "学校", "kindergarten": "幼儿园",
    "hospital": "医院", "park": "公园", "public_institution": "机关事业单位",
    "other_micro": "其他小微企业", "individual_business": "个体工商户",
}
UNIT_CLASS_LABELS_EN = {
    "enterprise_above_scale": "small-and-above enterprise", "high_risk_micro":
    "high-risk micro enterprise", "fire_key_unit": "fire-safety key unit", "school": "school",
    "kindergarten": "kindergarten", "hospital": "hospital", "park": "park",
    "public_institution": "public institution", "other_micro": "other micro enterprise",
    "individual_business": "individual business",
}
# extra spellings met in ledgers (the plan's own wording included)
_CLASS_ALIASES = {
    "规模以上企业": "enterprise_above_scale", "小型以上企业": "enterprise_above_scale",
    "规上": "enterprise_above_scale", "高危微型企业": "high_risk_micro",
    "高危行业微型企业": "high_risk_micro", "消防重点单位": "fire_key_unit",
    "事业单位": "public_institution", "机关": "public_institution",
    "企业化管理的事业单位": "public_institution", "其他微型企业": "other_micro",
    "微型企业": "other_micro", "小微企业": "other_micro", "个体户": "individual_business",
}
MANAGEMENTS = ("individual", "packaged")
MANAGEMENT_LABELS_ZH = {"individual": "单独纳管（两化）", "packaged": "打包管理"}
PACKAGED_CLASSES = frozenset({"other_micro", "individual_business"})

# normalised column -> accepted header names (compared case-insensitively, spaces trimmed)
COLUMN_ALIASES = {
    "external_id": ("external_id", "id", "unit_id", "code", "编号", "单位编号", "统一社会信用代码",
                    "credit_code"),
    "name": ("name", "unit_name", "名称", "单位名称"),
    "address": ("address", "地址", "单位地址"),
    "unit_class": ("unit_class", "class", "category", "类别", "单位类别", "分类", "单位类型"),
    "fire_key_unit": ("fire_key_unit", "fire_key", "消防安全重点单位", "是否消防安全重点单位"),
    "high_risk": ("high_risk", "高危", "高危行业", "是否高危行业"),
    "lon": ("lon", "lng", "long", "longitude", "x", "经度"),
    "lat": ("lat", "latitude", "y", "纬度"),
}
UNIT_COLUMNS = ("external_id", "name", "address", "unit_class", "fire_key_unit", "high_risk",
                "management", "source_row")
_TRUE = {"1", "true", "t", "yes", "y", "是", "√"}
_FALSE = {"0", "false", "f", "no", "n", "否", ""}


def parse_unit_class(value) -> str:
    """The unit class code for ``value`` (a code, a Chinese name or a known alias).

    >>> parse_unit_class("幼儿园"), parse_unit_class("Other_Micro")
    ('kindergarten', 'other_micro')
    """
    text = "" if _is_blank(value) else str(value).strip()
    code = text.lower().replace(" ", "_").replace("-", "_")
    if code in UNIT_CLASSES:
        return code
    for table in (_ZH_TO_CLASS, _CLASS_ALIASES):
        if text in table:
            return table[text]
    raise InputError(f"unknown unit class {text!r}: expected one of "
                     + ", ".join(f"{c} ({UNIT_CLASS_LABELS_ZH[c]})" for c in UNIT_CLASSES))


_ZH_TO_CLASS = {zh: code for code, zh in UNIT_CLASS_LABELS_ZH.items()}


def derive_management(unit_class: str, *, fire_key_unit: bool = False,
                      high_risk: bool = False) -> str:
    """``"individual"`` or ``"packaged"`` for a unit, per the plan.

    Other micro enterprises and individual businesses are packaged, unless they are in a
    high-risk sector or a fire-safety key unit, which the plan registers individually. Every
    other class is managed individually.

    >>> derive_management("other_micro"), derive_management("other_micro", high_risk=True)
    ('packaged', 'individual')
    """
    if unit_class not in UNIT_CLASSES:
        raise InputError(f"unknown unit class {unit_class!r}")
    if unit_class in PACKAGED_CLASSES and not (fire_key_unit or high_risk):
        return "packaged"
    return "individual"


def normalise_units(frame: pd.DataFrame, *, crs=None, row_labels=None,
                    srid: int = DEFAULT_SRID) -> gpd.GeoDataFrame:
    """Check and normalise a table of units into a unit frame.

    Parameters
    ----------
    frame : DataFrame or GeoDataFrame
        Headers as in :data:`COLUMN_ALIASES` (English or Chinese). Location from ``lon``/``lat``
        columns or, for a GeoDataFrame, point geometries (lon/lat columns win when both exist
        and are filled).
    crs : CRS of the lon/lat columns (default: the storage CRS, CGCS2000 longitude/latitude);
        a GeoDataFrame's geometry uses its own CRS.
    row_labels : how to name each row in errors (default ``row 2``, ``row 3``, ... as in a
        spreadsheet with one header line).
    srid : storage SRID of the result.

    Returns
    -------
    GeoDataFrame with :data:`UNIT_COLUMNS` and point geometry ``geom`` in ``srid``, snapped.

    Raises
    ------
    ImportRefused
        Listing every row with a missing name, unknown class, bad yes/no value, missing or
        out-of-range coordinates, non-point geometry, or a repeated ``external_id``.
    """
    labels = list(row_labels) if row_labels is not None else [f"row {i + 2}"
                                                               for i in range(len(frame))]
    columns = _match_columns(frame)
    problems: list[str] = []
    if "name" not in columns:
        problems.append("no name column (name / 名称 / 单位名称)")
    if "unit_class" not in columns:
        problems.append("no class column (unit_class / 类别 / 单位类别)")
    has_geometry = isinstance(frame, gpd.GeoDataFrame) and frame.geometry.name in frame
    if not has_geometry and not {"lon", "lat"} <= set(columns):
        problems.append("no location: give lon and lat columns (经度 / 纬度) or point geometry")
    if problems:
        raise ImportRefused(f"units refused: {'; '.join(problems)}", problems)

    storage = pyproj.CRS.from_epsg(srid)
    lonlat_crs = pyproj.CRS.from_user_input(crs) if crs is not None else storage
    to_storage = pyproj.Transformer.from_crs(lonlat_crs, storage, always_xy=True)
    geom_to_storage = None
    if has_geometry and frame.crs is not None:
        geom_to_storage = pyproj.Transformer.from_crs(frame.crs, storage, always_xy=True)

    geometries = frame.geometry.values if has_geometry else None
    records, seen_ids = [], {}
    for pos in range(len(frame)):
        row = frame.iloc[pos]
        where = labels[pos]
        row_problems: list[str] = []
        get = (lambda key, _row=row: _row[columns[key]] if key in columns else None)
        name = _text(get("name"))
        if name is None:
            row_problems.append("name is empty")
        external_id = _text(get("external_id"))
        if external_id is not None:
            if external_id in seen_ids:
                row_problems.append(f"external_id {external_id!r} repeats {seen_ids[external_id]}")
            else:
                seen_ids[external_id] = where
        unit_class = None
        try:
            unit_class = parse_unit_class(get("unit_class"))
        except InputError as exc:
            row_problems.append(f"class: {exc.message}")
        flags = {}
        for key in ("fire_key_unit", "high_risk"):
            try:
                flags[key] = _yes_no(get(key))
            except InputError as exc:
                row_problems.append(f"{key}: {exc.message}")
        point = _locate(get("lon"), get("lat"), geometries[pos] if has_geometry else None,
                        to_storage, geom_to_storage, has_geometry and frame.crs is None,
                        row_problems)
        if row_problems:
            problems.extend(f"{where}: {p}" for p in row_problems)
            continue
        fire_key = flags["fire_key_unit"] or unit_class == "fire_key_unit"
        high_risk = flags["high_risk"] or unit_class == "high_risk_micro"
        records.append({
            "external_id": external_id, "name": name, "address": _text(get("address")),
            "unit_class": unit_class, "fire_key_unit": fire_key, "high_risk": high_risk,
            "management": derive_management(unit_class, fire_key_unit=fire_key,
                                             high_risk=high_risk),
            "source_row": where, "geom": point,
        })
    if problems:
        raise ImportRefused(f"units refused: {len(problems)} problem(s) in "
                            f"{len({p.split(':')[0] for p in problems})} row(s); nothing written",
                            problems)
    result = gpd.GeoDataFrame(records, columns=[*UNIT_COLUMNS, "geom"], geometry="geom",
                              crs=storage)
    result["geom"] = snap(result.geometry.values, storage)
    for key in ("fire_key_unit", "high_risk"):
        result[key] = result[key].astype(bool)
    return result


def _match_columns(frame: pd.DataFrame) -> dict[str, str]:
    by_key = {str(c).strip().lower(): c for c in frame.columns}
    found = {}
    for name, aliases in COLUMN_ALIASES.items():
        for alias in aliases:
            if alias.lower() in by_key:
                found[name] = by_key[alias.lower()]
                break
    return found


def _is_blank(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value)) or (
        isinstance(value, str) and not value.strip()) or value is pd.NA


def _text(value) -> str | None:
    if _is_blank(value):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # an id read as a number from a spreadsheet
    return str(value).strip()


def _yes_no(value) -> bool:
    if _is_blank(value):
        return False
    if isinstance(value, (bool, np.bool_)):
        return bool(value)
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise InputError(f"{value!r} is not yes/no (是/否, true/false, 1/0)")


def _number(value, name: str, problems: list[str]) -> float | None:
    if _is_blank(value):
        return None
    try:
        number = float(str(value).strip())
    except ValueError:
        problems.append(f"{name} {value!r} is not a number")
        return None
    if not math.isfinite(number):
        problems.append(f"{name} {value!r} is not a finite number")
        return None
    return number


def _locate(lon, lat, geometry, to_storage, geom_to_storage, geometry_without_crs: bool,
            problems: list[str]) -> shapely.Point | None:
    before = len(problems)
    x, y = _number(lon, "lon", problems), _number(lat, "lat", problems)
    if len(problems) > before:
        return None
    if x is not None and y is not None:
        if not (-180 <= x <= 180 and -90 <= y <= 90) and to_storage.source_crs.is_geographic:
            problems.append(f"lon/lat ({x}, {y}) is outside -180..180 / -90..90")
            return None
        return shapely.Point(*to_storage.transform(x, y))
    if (x is None) != (y is None):
        problems.append("lon and lat must both be given")
        return None
    if geometry is None or shapely.is_missing(geometry) or geometry.is_empty:
        problems.append("no location: lon/lat empty and no geometry")
        return None
    if geometry.geom_type != "Point":
        problems.append(f"geometry is a {geometry.geom_type}, not a point")
        return None
    if geometry_without_crs:
        problems.append("the file declares no CRS for its geometry")
        return None
    gx, gy = (geom_to_storage.transform(geometry.x, geometry.y) if geom_to_storage
              else (geometry.x, geometry.y))
    if not (math.isfinite(gx) and math.isfinite(gy) and -180 <= gx <= 180 and -90 <= gy <= 90):
        problems.append(f"geometry ({geometry.x}, {geometry.y}) is outside the storage CRS range")
        return None
    return shapely.Point(gx, gy)


def read_units(path: str | os.PathLike, *, crs=None, sheet: str | None = None,
               srid: int = DEFAULT_SRID) -> gpd.GeoDataFrame:
    """Read units from a CSV, XLSX or GeoJSON file and normalise them (:func:`normalise_units`).

    CSV: UTF-8 (with or without BOM) or GB18030, one header line. XLSX: the first sheet unless
    ``sheet`` is given, one header line (read with openpyxl). GeoJSON: point geometries, or
    lon/lat properties. Rows are named as a spreadsheet would (``row 2`` is the first data
    row); GeoJSON features as ``feature 1``, ``feature 2``...
    """
    path = Path(path)
    if not path.exists():
        raise InputError(f"no such file: {str(path)!r}")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        frame = _read_csv(path)
        labels = None
    elif suffix in (".xlsx", ".xlsm"):
        frame, labels = _read_xlsx(path, sheet)
    elif suffix in (".geojson", ".json"):
        from gisgrid.io import read_layer

        frame = read_layer(path)
        labels = [f"feature {i + 1}" for i in range(len(frame))]
    else:
        raise InputError(f"cannot read units from {str(path)!r}: expected a .csv, .xlsx or "
                         ".geojson file")
    return normalise_units(frame, crs=crs, row_labels=labels, srid=srid)


def _read_csv(path: Path) -> pd.DataFrame:
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            return pd.read_csv(path, dtype=str, keep_default_na=False, encoding=encoding)
        except UnicodeDecodeError:
            continue
        except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
            raise InputError(f"cannot read {str(path)!r} as CSV: {exc}") from None
    raise InputError(f"cannot read {str(path)!r}: neither UTF-8 nor GB18030 text")


def _read_xlsx(path: Path, sheet: str | None) -> tuple[pd.DataFrame, list[str]]:
    import openpyxl

    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl raises several unrelated types for a bad file
        raise InputError(f"cannot read {str(path)!r} as XLSX: {exc}") from None
    try:
        if sheet is not None and sheet not in book.sheetnames:
            raise InputError(f"{str(path)!r} has no sheet {sheet!r} (sheets: "
                             f"{', '.join(book.sheetnames)})")
        rows = list((book[sheet] if sheet else book.worksheets[0]).iter_rows(values_only=True))
    finally:
        book.close()
    if not rows:
        raise InputError(f"{str(path)!r}: the sheet is empty")
    header = [("" if h is None else str(h)) for h in rows[0]]
    width = len(header)
    kept = [(n, (list(r) + [None] * width)[:width]) for n, r in enumerate(rows[1:], start=2)
            if any(not _is_blank(v) for v in r)]  # blank rows (often trailing) are not units
    frame = pd.DataFrame([r for _, r in kept], columns=header, dtype=object)
    return frame, [f"row {n}" for n, _ in kept]
