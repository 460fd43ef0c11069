"""Coordinate reference systems: the storage CRS and the local metric CRS used for measuring.

Geometry is stored in CGCS2000 (EPSG:4490) by default. Areas, lengths and widths are never
measured in degrees: they are measured in a local metric CRS chosen from the data's
longitude/latitude extent (:func:`local_metric_crs`), the first of these whose area scale
stays within :data:`MAX_AREA_SCALE_ERROR` of 1 everywhere on the extent:

1. the data's own CRS, when it is projected in metres (a planner's local CRS);
2. inside China, the CGCS2000 3-degree Gauss-Kruger zone whose central meridian is nearest the
   centre (EPSG:4534-4554, central meridians 75E-135E): city-sized data, e.g. EPSG:4547 for
   Chibi;
3. otherwise an Albers equal-area CRS centred on the data (:func:`albers_crs_for`), on
   CGCS2000 inside China and WGS 84 elsewhere: province-sized data, data far from a zone's
   meridian, and data outside China (UTM's scale factor 0.9996 shrinks areas by 0.08 %).

Gauss-Kruger is conformal but its area scale grows with the square of the distance from the
central meridian (about 0.05 % at 1.5 degrees, the zone's edge, at 30N); Albers keeps areas
exact at any extent and its shape distortion over a province is about 0.1 %.
"""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pyproj
import shapely
from pyproj.crs import ProjectedCRS
from pyproj.crs.coordinate_operation import AlbersEqualAreaConversion

from gisgrid.errors import CRSError

DEFAULT_SRID = 4490
WGS84 = 4326

# CGCS2000 / 3-degree Gauss-Kruger CM 75E is EPSG:4534; the following zones step by 3 degrees.
_GK3_FIRST_EPSG = 4534
_GK3_FIRST_CM = 75
_GK3_LAST_CM = 135
_CHINA_LAT = (3.0, 54.0)

MAX_AREA_SCALE_ERROR = 2e-4
"""Largest relative area error (0.02 %) a metric CRS may make anywhere on the data's extent."""
_SAMPLES = 5   # the extent is sampled on a 5 x 5 lattice of longitudes and latitudes


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


def local_metric_crs_for(lon: float, lat: float) -> pyproj.CRS:
    """The metric CRS to measure data centred on (lon, lat) in degrees (a point's extent).

    >>> local_metric_crs_for(113.9, 29.7).to_epsg()   # Chibi: CGCS2000 GK zone CM 114E
    4547
    """
    return local_metric_crs_for_bounds(lon, lat, lon, lat)


def local_metric_crs_for_bounds(minx: float, miny: float, maxx: float, maxy: float, *,
                                own_crs: pyproj.CRS | None = None) -> pyproj.CRS:
    """The metric CRS for data whose longitude/latitude extent is (minx, miny, maxx, maxy).

    The rule is the module's: ``own_crs`` (if projected in metres), else the Gauss-Kruger zone
    (in China), else Albers equal-area, taking the first whose area scale stays within
    :data:`MAX_AREA_SCALE_ERROR` of 1 on the extent.

    >>> local_metric_crs_for_bounds(113.5, 29.4, 114.3, 30.0).to_epsg()  # a city: GK zone
    4547
    >>> local_metric_crs_for_bounds(108.3, 29.0, 116.1, 33.3).name      # a province: Albers
    'CGCS2000 / Albers equal-area 108.3E-116.1E 29.0N-33.3N'
    """
    extent = (float(minx), float(miny), float(maxx), float(maxy))
    if not all(map(math.isfinite, extent)):
        raise CRSError("the layer is empty: cannot choose a CRS to measure it in")
    lon, lat = (extent[0] + extent[2]) / 2, (extent[1] + extent[3]) / 2
    candidates = []
    if own_crs is not None and own_crs.is_projected and _in_metres(own_crs):
        candidates.append(own_crs)
    if _in_china(lon, lat):
        candidates.append(pyproj.CRS.from_epsg(gk3_epsg_for_longitude(lon)))
    for crs in candidates:
        if area_scale_error(crs, extent) <= MAX_AREA_SCALE_ERROR:
            return crs
    return albers_crs_for(*extent)


def albers_crs_for(minx: float, miny: float, maxx: float, maxy: float) -> pyproj.CRS:
    """An Albers equal-area CRS centred on a longitude/latitude extent.

    Central meridian and latitude of origin at the centre, standard parallels at one sixth and
    five sixths of the latitude span; on CGCS2000 inside China, WGS 84 elsewhere, so data in
    the storage CRS reaches it without a datum shift.

    >>> crs = albers_crs_for(108.3, 29.0, 116.1, 33.3)
    >>> [round(p.value, 3) for p in crs.coordinate_operation.params][:4]  # origin, parallels
    [31.15, 112.2, 29.717, 32.583]
    """
    lon, lat = (minx + maxx) / 2, (miny + maxy) / 2
    span = maxy - miny
    in_china = _in_china(lon, lat)
    datum = "CGCS2000" if in_china else "WGS 84"
    name = (f"{datum} / Albers equal-area {_deg(minx, 'E', 'W')}-{_deg(maxx, 'E', 'W')} "
            f"{_deg(miny, 'N', 'S')}-{_deg(maxy, 'N', 'S')}")
    return ProjectedCRS(
        conversion=AlbersEqualAreaConversion(
            latitude_first_parallel=miny + span / 6, latitude_second_parallel=maxy - span / 6,
            latitude_false_origin=lat, longitude_false_origin=lon),
        geodetic_crs=pyproj.CRS.from_epsg(DEFAULT_SRID if in_china else WGS84), name=name)


def area_scale_error(crs: pyproj.CRS, bounds) -> float:
    """Largest ``|area scale - 1|`` of the projected ``crs`` over a longitude/latitude extent.

    >>> round(area_scale_error(pyproj.CRS.from_epsg(4547), (115.4, 30.0, 115.5, 30.1)), 4)
    0.0005
    """
    minx, miny, maxx, maxy = bounds
    lons, lats = np.meshgrid(np.linspace(minx, maxx, _SAMPLES), np.linspace(miny, maxy, _SAMPLES))
    factors = pyproj.Proj(crs).get_factors(lons.ravel(), lats.ravel(), errcheck=False)
    scales = np.asarray(factors.areal_scale, dtype=float)
    if not np.isfinite(scales).all():
        return math.inf
    return float(np.abs(scales - 1.0).max())


def local_metric_crs(frame: gpd.GeoSeries | gpd.GeoDataFrame) -> pyproj.CRS:
    """Choose the metric CRS to measure ``frame`` in from its extent (see the module's rule).

    Longitude/latitude bounds on the Greenwich meridian are used as they are (a datum shift of
    a few metres cannot change the choice); other CRSs have their bounds transformed to
    WGS 84, never the whole frame.
    """
    crs = require_crs(frame, "the layer")
    if len(frame) == 0:
        raise CRSError("the layer is empty: cannot choose a CRS to measure it in")
    minx, miny, maxx, maxy = (float(v) for v in frame.total_bounds)
    if not all(map(math.isfinite, (minx, miny, maxx, maxy))):
        raise CRSError("the layer is empty: cannot choose a CRS to measure it in")
    if not (crs.is_geographic and crs.prime_meridian.longitude == 0):
        to_wgs84 = pyproj.Transformer.from_crs(crs, WGS84, always_xy=True)
        minx, miny, maxx, maxy = to_wgs84.transform_bounds(minx, miny, maxx, maxy,
                                                           densify_pts=21)
    return local_metric_crs_for_bounds(minx, miny, maxx, maxy, own_crs=crs)


def _in_china(lon: float, lat: float) -> bool:
    return (_GK3_FIRST_CM - 1.5 <= lon <= _GK3_LAST_CM + 1.5
            and _CHINA_LAT[0] <= lat <= _CHINA_LAT[1])


def _in_metres(crs: pyproj.CRS) -> bool:
    return crs.axis_info[0].unit_name in ("metre", "meter")


def _deg(value: float, positive: str, negative: str) -> str:
    return f"{abs(value):.1f}{positive if value >= 0 else negative}"


def check_coordinates_in_range(frame: gpd.GeoDataFrame) -> "list[int]":
    """Positions of features whose coordinates fall outside the area of use of their CRS."""
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
