"""The Dask assignment gives exactly the in-memory assignment, on a local cluster."""

from __future__ import annotations

import dask.dataframe as dd
import dask_geopandas
import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from distributed import Client, LocalCluster

from gisgrid.assign import CHAIN_COLUMNS, GridIndex, assign_points
from gisgrid.errors import InputError
from gisgrid.scaleout import assign_points_dask


def make_square_base(n_side: int) -> gpd.GeoDataFrame:
    """An ``n_side`` x ``n_side`` block of 0.01-degree squares near Chibi, with a chain."""
    geoms, ids = [], []
    for i in range(n_side):
        for j in range(n_side):
            x0, y0 = 113.9 + i * 0.01, 29.7 + j * 0.01
            geoms.append(shapely.box(x0, y0, x0 + 0.01, y0 + 0.01))
            ids.append(1000 + i * n_side + j)
    ids = np.array(ids)
    return gpd.GeoDataFrame(
        {"id": ids, "village_grid_id": ids // 4, "township_grid_id": ids // 16,
         "city_grid_id": 1}, geometry=geoms, crs=4490)


def make_points(n: int, seed: int) -> pd.DataFrame:
    """Points around (and some beyond) the block; a few NaN coordinates."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame({"worker": rng.integers(1, 9, n).astype(str),
                          "lon": rng.uniform(113.89, 113.97, n),
                          "lat": rng.uniform(29.69, 29.77, n)})
    frame.loc[::97, "lon"] = np.nan
    return frame


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False,
                      dashboard_address=":0") as cluster, Client(cluster) as c:
        yield c


def expected_chain(index, points):
    return assign_points(index, points["lon"].to_numpy(), points["lat"].to_numpy()).to_frame(
        index=points.index)


@pytest.mark.parametrize("broadcast", [False, True])
def test_dask_geopandas_partitions_match_in_memory(client, broadcast):
    base = make_square_base(6)
    index = GridIndex.build(base)
    points = make_points(3_000, seed=5)
    gdf = gpd.GeoDataFrame(points, geometry=gpd.points_from_xy(points["lon"], points["lat"]),
                           crs=4490)
    ddf = dask_geopandas.from_geopandas(gdf, npartitions=4)
    result = assign_points_dask(ddf, index, client=client if broadcast else None)
    got = result.compute()
    want = expected_chain(index, points)
    pd.testing.assert_frame_equal(got[[*CHAIN_COLUMNS, "outside_grids"]], want)
    assert got["outside_grids"].sum() > 0  # points beyond the block and NaN kept, flagged
    assert len(got) == len(points)


def test_plain_dask_frame_with_xy_columns(client):
    base = make_square_base(4)
    points = make_points(2_000, seed=9)
    ddf = dd.from_pandas(points, npartitions=3)
    got = assign_points_dask(ddf, base, xy=("lon", "lat")).compute()
    want = expected_chain(GridIndex.build(base), points)
    pd.testing.assert_frame_equal(got[list(want.columns)], want)
    assert got["worker"].tolist() == points["worker"].tolist()


def test_plain_frame_without_xy_is_refused():
    ddf = dd.from_pandas(make_points(10, seed=1), npartitions=1)
    with pytest.raises(InputError, match="xy"):
        assign_points_dask(ddf, make_square_base(1))
    with pytest.raises(InputError, match="x_missing"):
        assign_points_dask(ddf, make_square_base(1), xy=("x_missing", "lat"))


def test_worker_processes_get_the_pickled_index():
    """Separate worker processes: the index crosses a process boundary (pickle) once each."""
    base = make_square_base(3)
    points = make_points(600, seed=3)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0") as cluster, Client(cluster) as c:
        got = assign_points_dask(dd.from_pandas(points, npartitions=2), base, xy=("lon", "lat"),
                                 client=c).compute()
    want = expected_chain(GridIndex.build(base), points)
    pd.testing.assert_frame_equal(got[list(want.columns)], want)
