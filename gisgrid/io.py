"""Reading and writing layers: the only module of gisgrid that touches files.

Vector files are read and written with pyogrio (GDAL), using Arrow where it can; GeoParquet
goes through geopandas and pyarrow. The format follows the file's suffix:

============================  ==============
suffix                        format
============================  ==============
``.geojson``, ``.json``       GeoJSON
``.gpkg``                     GeoPackage
``.shp`` (or ``.shp.zip`` to read)  ESRI Shapefile
``.parquet``, ``.geoparquet``  GeoParquet
============================  ==============

Frames come back with their active geometry column named ``geom`` (the grid-frame contract),
unless the file already has an attribute of that name.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import geopandas as gpd
import pyogrio
import pyogrio.errors

from gisgrid.errors import InputError

GEOMETRY_COLUMN = "geom"

# suffix -> GDAL driver; None means GeoParquet (through pyarrow, not GDAL)
DRIVERS: dict[str, str | None] = {
    ".geojson": "GeoJSON",
    ".json": "GeoJSON",
    ".gpkg": "GPKG",
    ".shp": "ESRI Shapefile",
    ".parquet": None,
    ".geoparquet": None,
}
_SHAPEFILE_SIDECARS = (".shp", ".shx", ".dbf", ".prj", ".cpg", ".qix", ".sbn", ".sbx")


def format_for(path: str | os.PathLike) -> str | None:
    """Return the GDAL driver for ``path`` from its suffix (``None`` for GeoParquet).

    >>> format_for("grids.gpkg")
    'GPKG'
    >>> format_for("grids.csv")
    Traceback (most recent call last):
    ...
    gisgrid.errors.InputError: cannot tell the format of 'grids.csv' from its suffix '.csv': expected one of .geojson, .json, .gpkg, .shp, .parquet, .geoparquet
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".zip" and path.stem.lower().endswith(".shp"):
        suffix = ".shp"
    if suffix not in DRIVERS:
        raise InputError(
            f"cannot tell the format of {str(path)!r} from its suffix {suffix!r}: "
            f"expected one of {', '.join(DRIVERS)}"
        )
    return DRIVERS[suffix]


def read_layer(path: str | os.PathLike, *, layer: str | int | None = None) -> gpd.GeoDataFrame:
    """Read one layer of a vector file into a GeoDataFrame.

    Parameters
    ----------
    path
        A GeoJSON, GeoPackage, Shapefile or GeoParquet file (format from the suffix).
    layer
        Name or index of the layer in a multi-layer file (GeoPackage). A file with several
        layers and no ``layer`` given is refused, naming its layers.

    Returns
    -------
    GeoDataFrame
        The features in file order, with the file's CRS (``None`` when the file declares
        none) and the active geometry column named ``geom``.

    Raises
    ------
    InputError
        The file does not exist, has an unknown suffix, cannot be read, or the layer is
        missing or ambiguous.
    """
    path = Path(path)
    driver = format_for(path)
    if not path.exists():
        raise InputError(f"no such file: {str(path)!r}")
    if driver is None:
        frame = _read_parquet(path)
    else:
        frame = _read_with_gdal(path, layer)
    return _name_geometry(frame)


def write_layer(frame: gpd.GeoDataFrame, path: str | os.PathLike, *,
                layer: str | None = None) -> Path:
    """Write ``frame`` to ``path`` in the format given by the suffix, replacing what was there.

    A GeoPackage keeps its other layers; the layer written (``layer``, default the file's stem)
    is replaced. GeoJSON, Shapefile (with all its sidecar files) and GeoParquet files are
    replaced whole. Shapefile attribute names longer than 10 characters are truncated by
    the format (``parent_code`` becomes ``parent_cod``).

    Returns
    -------
    Path
        The path written.

    Raises
    ------
    InputError
        Unknown suffix, no CRS, or the file cannot be written (the reason is given).
    """
    path = Path(path)
    driver = format_for(path)
    if frame.crs is None:
        raise InputError(f"refusing to write {str(path)!r}: the layer has no CRS")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        if driver is None:
            frame.to_parquet(path, index=False)
            return path
        _remove_single_layer_file(path, driver)
        kwargs = {"layer": layer or path.stem} if driver == "GPKG" else {}
        if driver == "ESRI Shapefile":
            kwargs["encoding"] = "UTF-8"
        with warnings.catch_warnings():
            # GDAL warns when it truncates Shapefile field names; that is documented above.
            warnings.filterwarnings("ignore", message=".*truncated.*", category=RuntimeWarning)
            warnings.filterwarnings("ignore", message=".*Normalized/laundered.*")
            pyogrio.write_dataframe(frame, path, driver=driver, **kwargs)
    except (OSError, pyogrio.errors.DataSourceError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else exc
        raise InputError(f"cannot write {str(path)!r}: {reason}") from exc
    return path


def write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path``, creating its folder; a report or a diff.

    Raises
    ------
    InputError
        The file cannot be written (the reason is given).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"cannot write {str(path)!r}: {exc.strerror or exc}") from exc
    return path


def list_layers(path: str | os.PathLike) -> list[str]:
    """Names of the layers in a vector file (one name for single-layer formats)."""
    path = Path(path)
    if format_for(path) is None:
        return [path.stem]
    return [str(name) for name, _geometry_type in pyogrio.list_layers(path)]


def _read_with_gdal(path: Path, layer: str | int | None) -> gpd.GeoDataFrame:
    try:
        layers = [str(name) for name, _ in pyogrio.list_layers(path)]
    except pyogrio.errors.DataSourceError as exc:
        raise InputError(f"cannot read {str(path)!r}: {exc}") from exc
    if layer is None and len(layers) > 1:
        raise InputError(
            f"{str(path)!r} holds {len(layers)} layers: choose one with --layer",
            details=[f"layer {name!r}" for name in layers],
        )
    if isinstance(layer, str) and layer not in layers:
        raise InputError(
            f"{str(path)!r} has no layer {layer!r}",
            details=[f"layer {name!r}" for name in layers],
        )
    try:
        return pyogrio.read_dataframe(path, layer=layer, use_arrow=True)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError) as exc:
        raise InputError(f"cannot read {str(path)!r}: {exc}") from exc


def _read_parquet(path: Path) -> gpd.GeoDataFrame:
    try:
        return gpd.read_parquet(path)
    except (ValueError, OSError) as exc:
        raise InputError(f"cannot read {str(path)!r} as GeoParquet: {exc}") from exc


def _name_geometry(frame: gpd.GeoDataFrame) -> gpd.GeoDataFrame:
    name = frame.geometry.name
    if name != GEOMETRY_COLUMN and GEOMETRY_COLUMN not in frame.columns:
        frame = frame.rename_geometry(GEOMETRY_COLUMN)
    return frame


def _remove_single_layer_file(path: Path, driver: str) -> None:
    if driver == "GPKG" or not path.exists():
        return
    if driver == "ESRI Shapefile":
        for suffix in _SHAPEFILE_SIDECARS:
            path.with_suffix(suffix).unlink(missing_ok=True)
    else:
        path.unlink()
