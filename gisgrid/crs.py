"""Coordinate reference systems: the storage CRS and the local metric CRS used for measuring.

Geometry is stored in CGCS2000 (EPSG:4490) by default. Areas, lengths and widths are never
measured in degrees: they are measured in a local metric CRS chosen from the data, a CGCS2000
3-degree Gauss-Kruger zone inside China (EPSG:4534-4554, central meridians 75E-135E) or the
UTM zone elsewhere.
"""

from __future__ import annotations

import math

import geopandas as gpd
import pyproj
from pyproj.aoi import AreaOfInterest  # noqa: F401  (documented companion of pyproj.CRS)

from gisgrid.errors import CRSError

DEFAULT_SRID = 4490
WGS84 = 4326

# CGCS2000 / 3-degree Gauss-Kruger CM 75E is EPSG:4534; the following zones step by 3 degrees.
_GK3_FIRST_EPSG = 4534
_GK3_FIRST_CM = 75
_GK3_LAST_CM = 135
_CHINA_LAT = (3.0, 54.0)


def require_crs(frame: gpd.GeoDataFrame, what: str) -> pyproj.CRS:
    """Return the CRS of ``frame`` or raise :class:`CRSError` naming ``what``."""
    if frame.crs is None:
        raise CRSError(
            f"{what} has no coordinate reference system: declare one in the file "
            "(e.g. a .prj beside a Shapefile) or reproject it to a known CRS first"
        )
    return pyproj.CRS.from_user_input(frame.crs)


def gk3_epsg_for_longitude(lon: float) -> int:
    """EPSG code of the CGCS2000 3-degree Gauss-Kruger zone whose meridian is nearest ``lon``.

    >>> gk3_epsg_for_longitude(113.9)   # Chibi, Hubei: CM 114E
    4547
    """
    cm = 3 * round(lon / 3)
    cm = min(max(cm, _GK3_FIRST_CM), _GK3_LAST_CM)
    return _GK3_FIRST_EPSG + (cm - _GK3_FIRST_CM) // 3


def utm_epsg_for(lon: float, lat: float) -> int:
    """EPSG code of the WGS 84 UTM zone holding (lon, lat).

    >>> utm_epsg_for(2.35, 48.85)
    32631
    """
    zone = int(math.floor((lon + 180) / 6)) % 60 + 1
    return (32600 if lat >= 0 else 32700) + zone


def local_metric_crs_for(lon: float, lat: float) -> pyproj.CRS:
    """The metric CRS to measure data centred on (lon, lat) in degrees."""
    in_china = (_GK3_FIRST_CM - 1.5 <= lon <= _GK3_LAST_CM + 1.5
                and _CHINA_LAT[0] <= lat <= _CHINA_LAT[1])
    epsg = gk3_epsg_for_longitude(lon) if in_china else utm_epsg_for(lon, lat)
    return pyproj.CRS.from_epsg(epsg)


def local_metric_crs(frame: gpd.GeoSeries | gpd.GeoDataFrame) -> pyproj.CRS:
    """Choose the local metric CRS for ``frame`` from the centre of its bounds."""
    crs = require_crs(frame, "the layer")
    if crs.is_projected and crs.axis_info[0].unit_name in ("metre", "meter"):
        return crs
    geographic = frame.to_crs(WGS84) if not crs.equals(pyproj.CRS.from_epsg(WGS84)) else frame
    minx, miny, maxx, maxy = geographic.total_bounds
    if not all(map(math.isfinite, (minx, miny, maxx, maxy))):
        raise CRSError("the layer is empty: cannot choose a CRS to measure it in")
    return local_metric_crs_for((minx + maxx) / 2, (miny + maxy) / 2)


def check_coordinates_in_range(frame: gpd.GeoDataFrame) -> "list[int]":
    """Positions of features whose coordinates fall outside the area of use of their CRS."""
    import numpy as np  # local: keep import light for the doctests above
    import shapely

    crs = require_crs(frame, "the layer")
    if crs.is_geographic:
        lon_lim, lat_lim = (-180.0, 180.0), (-90.0, 90.0)
        bounds = shapely.bounds(frame.geometry.values)
        bad = ((bounds[:, 0] < lon_lim[0]) | (bounds[:, 2] > lon_lim[1])
               | (bounds[:, 1] < lat_lim[0]) | (bounds[:, 3] > lat_lim[1]))
        return [int(i) for i in np.flatnonzero(bad & ~np.isnan(bounds[:, 0]))]
    area = crs.area_of_use
    if area is None:
        return []
    to_geo = frame.to_crs(WGS84)
    bounds = shapely.bounds(to_geo.geometry.values)
    # A projected coordinate far outside the CRS's area of use comes back as inf/nan or far away.
    margin = 5.0
    bad = (~np.isfinite(bounds).all(axis=1)
           | (bounds[:, 0] < area.west - margin) | (bounds[:, 2] > area.east + margin)
           | (bounds[:, 1] < area.south - margin) | (bounds[:, 3] > area.north + margin))
    empty = shapely.is_empty(frame.geometry.values) | frame.geometry.isna().to_numpy()
    return [int(i) for i in np.flatnonzero(bad & ~empty)]
