"""Point-to-grid assignment: hand-made edge cases and agreement with geopandas.sjoin."""

from __future__ import annotations

import pickle

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from gisgrid.assign import (
    CHAIN_COLUMNS,
    GridIndex,
    assign_frame,
    assign_points,
    assign_points_at,
    build_base_chain,
    build_grid_index,
    find_epochs,
)
from gisgrid.errors import CRSError, InputError


def make_base(geoms, ids, *, village=None, township=None, city=None, crs=4490):
    """Base grids with a chain: village = id // 10, township = id // 100, city = 1 by default."""
    ids = np.asarray(ids)
    return gpd.GeoDataFrame(
        {
            "id": ids,
            "village_grid_id": ids // 10 + 10_000 if village is None else village,
            "township_grid_id": ids // 100 + 20_000 if township is None else township,
            "city_grid_id": 30_000 if city is None else city,
        },
        geometry=list(geoms), crs=crs,
    )


def make_voronoi_base(n: int, seed: int, bounds=(113.6, 29.5, 114.2, 29.9)):
    """``n`` Voronoi base grids tiling ``bounds`` (lon/lat), snapped to 1e-7 degree."""
    rng = np.random.default_rng(seed)
    minx, miny, maxx, maxy = bounds
    seeds = shapely.multipoints(np.c_[rng.uniform(minx, maxx, n), rng.uniform(miny, maxy, n)])
    box = shapely.box(*bounds)
    cells = shapely.get_parts(shapely.voronoi_polygons(seeds, extend_to=box))
    cells = shapely.set_precision(shapely.intersection(cells, box), 1e-7)
    ids = rng.permutation(n) + 1  # ids unrelated to position, so the tie rule is exercised
    return make_base(cells, ids)


@pytest.fixture
def four_squares():
    """Four unit squares and a square ring with a hole (ids in brackets)::

        2 +----+----+---------+
          | [2]| [1]|  [5]    |
        1 +----+----+  +--+   |   the hole (2.5..3.5, 0.5..1.5) is no grid
          | [4]| [3]|  +--+   |
        0 +----+----+---------+
          0    1    2         4
    """
    ring = shapely.box(2, 0, 4, 2).difference(shapely.box(2.5, 0.5, 3.5, 1.5))
    geoms = [shapely.box(0, 0, 1, 1), shapely.box(1, 0, 2, 1), shapely.box(0, 1, 1, 2),
             shapely.box(1, 1, 2, 2), ring]
    return make_base(geoms, [4, 3, 2, 1, 5])


@pytest.mark.parametrize("cells_per_grid", [1, 16, 1024])
@pytest.mark.parametrize(
    ("x", "y", "expected"),
    [
        (0.5, 0.5, 4),  # interior
        (1.0, 0.5, 3),  # shared edge of 4 and 3: smallest id
        (1.0, 1.0, 1),  # vertex shared by all four squares
        (0.0, 0.5, 4),  # outer edge: covered, so inside
        (3.0, 1.0, -1),  # in the hole
        (2.5, 1.0, 5),  # on the hole's edge
        (2.0, 1.5, 1),  # edge between square 1 and the ring 5
        (10.0, 10.0, -1),  # outside everything
        (np.nan, 0.5, -1),  # NaN coordinate: outside, not dropped
        (0.5, np.inf, -1),
    ],
)
def test_hand_made_points(four_squares, cells_per_grid, x, y, expected):
    index = GridIndex.build(four_squares, cells_per_grid=cells_per_grid)
    chain = assign_points(index, np.array([x]), np.array([y]))
    assert chain.base_grid_id.tolist() == [expected]
    assert chain.outside.tolist() == [expected == -1]
    if expected == -1:
        assert chain.village_grid_id.tolist() == chain.city_grid_id.tolist() == [-1]
    else:
        assert chain.village_grid_id.tolist() == [expected // 10 + 10_000]
        assert chain.township_grid_id.tolist() == [expected // 100 + 20_000]
        assert chain.city_grid_id.tolist() == [30_000]


def test_agrees_with_sjoin_on_random_points():
    base = make_voronoi_base(400, seed=7)
    index = GridIndex.build(base)
    rng = np.random.default_rng(3)
    x = rng.uniform(113.55, 114.25, 50_000)
    y = rng.uniform(29.45, 29.95, 50_000)
    chain = assign_points(index, x, y)

    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(x, y), crs=4490)
    joined = gpd.sjoin(points, base, predicate="within", how="left")
    assert not joined.index.duplicated().any()  # random points never hit an edge exactly
    expected = joined["id"].fillna(-1).to_numpy(dtype=np.int64)
    np.testing.assert_array_equal(chain.base_grid_id, expected)
    np.testing.assert_array_equal(chain.outside, expected == -1)
    village = joined["village_grid_id"].fillna(-1).to_numpy(dtype=np.int64)
    np.testing.assert_array_equal(chain.village_grid_id, village)
    assert 0 < chain.outside.sum() < len(x)  # the sample straddles the city's edge


def brute_force(base, x, y):
    """Reference assignment: every grid tested; the smallest id among covering grids wins."""
    geoms = np.asarray(base.geometry.values)
    covers = shapely.intersects_xy(geoms[None, :], x[:, None], y[:, None])
    ids = np.where(covers, base["id"].to_numpy()[None, :], np.iinfo(np.int64).max)
    best = ids.min(axis=1)
    return np.where(covers.any(axis=1), best, -1)


def test_ties_on_vertices_and_edges_follow_the_smallest_id_rule():
    base = make_voronoi_base(60, seed=11)
    index = GridIndex.build(base, cells_per_grid=64)
    coords = shapely.get_coordinates(base.geometry.values)
    # every vertex, and the midpoint of every edge (exactly representable or not)
    mids = (coords[:-1] + coords[1:]) / 2
    pts = np.concatenate([coords, mids])
    chain = assign_points(index, pts[:, 0], pts[:, 1])
    expected = brute_force(base, pts[:, 0], pts[:, 1])
    np.testing.assert_array_equal(chain.base_grid_id, expected)
    assert (chain.base_grid_id[: len(coords)] != -1).all()  # every vertex gets a grid


@settings(max_examples=30, deadline=None)
@given(
    nx=st.integers(1, 5), ny=st.integers(1, 5), cells=st.sampled_from([1, 4, 64, 1024]),
    data=st.data(),
)
def test_square_lattice_with_points_on_lines(nx, ny, cells, data):
    """Squares of side 1; points on a half-unit lattice, so many sit on edges and vertices."""
    geoms = [shapely.box(i, j, i + 1, j + 1) for i in range(nx) for j in range(ny)]
    ids = data.draw(st.permutations(list(range(1, nx * ny + 1))))
    base = make_base(geoms, ids)
    half = data.draw(st.lists(st.tuples(st.integers(-2, 2 * nx + 2), st.integers(-2, 2 * ny + 2)),
                              min_size=1, max_size=60))
    pts = np.array(half, dtype=np.float64) / 2
    chain = assign_points(GridIndex.build(base, cells_per_grid=cells), pts[:, 0], pts[:, 1])
    np.testing.assert_array_equal(chain.base_grid_id, brute_force(base, pts[:, 0], pts[:, 1]))


def test_multipolygon_grid_and_empty_inputs():
    parts = shapely.multipolygons([shapely.box(0, 0, 1, 1), shapely.box(5, 5, 6, 6)])
    index = GridIndex.build(make_base([parts, shapely.box(1, 0, 2, 1)], [7, 8]))
    chain = assign_points(index, np.array([5.5, 0.5, 3.0]), np.array([5.5, 0.5, 3.0]))
    assert chain.base_grid_id.tolist() == [7, 7, -1]
    empty = assign_points(index, np.array([]), np.array([]))
    assert len(empty) == 0 and empty.outside.dtype == bool
    no_grids = GridIndex.build(make_base([], np.array([], dtype=np.int64)))
    assert assign_points(no_grids, np.array([0.5]), np.array([0.5])).outside.tolist() == [True]


def test_index_pickles_for_dask_workers(four_squares):
    index = GridIndex.build(four_squares)
    clone = pickle.loads(pickle.dumps(index))
    x, y = np.array([0.5, 1.0, 3.0]), np.array([0.5, 1.0, 1.0])
    assert assign_points(clone, x, y).base_grid_id.tolist() == [4, 1, -1]


def test_null_ancestors_stay_null(four_squares):
    base = four_squares.copy()
    base["village_grid_id"] = pd.array([None, 11, 11, 11, 11], dtype="Int64")
    frame = assign_points(GridIndex.build(base), np.array([0.5, 1.5]),
                          np.array([0.5, 0.5])).to_frame()
    assert list(frame.columns) == [*CHAIN_COLUMNS, "outside_grids"]
    assert frame["village_grid_id"].isna().tolist() == [True, False]
    assert frame["base_grid_id"].tolist() == [4, 3]


def test_build_refuses_bad_base_grids(four_squares):
    bad = four_squares.drop(columns=["township_grid_id"])
    bad.loc[1, "id"] = 4
    bad.loc[2, "geometry"] = shapely.Point(0, 0)
    with pytest.raises(InputError) as info:
        GridIndex.build(bad)
    assert any("township_grid_id" in d for d in info.value.details)
    with pytest.raises(InputError) as info:
        GridIndex.build(four_squares.assign(id=[4, 4, 2, 1, 5]))
    assert info.value.details == ["duplicate ids: 4"]
    with pytest.raises(CRSError):
        GridIndex.build(four_squares.set_crs(None, allow_override=True))


def test_assign_frame_checks_crs_and_geometry_type(four_squares):
    index = GridIndex.build(four_squares)
    points = gpd.GeoSeries([shapely.Point(0.5, 0.5), None, shapely.Point()], crs=4490,
                           index=["a", "b", "c"])
    frame = assign_frame(index, points)
    assert frame.index.tolist() == ["a", "b", "c"]
    assert frame["base_grid_id"].tolist()[0] == 4
    assert frame["outside_grids"].tolist() == [False, True, True]
    with pytest.raises(CRSError):
        assign_frame(index, points.set_crs(4326, allow_override=True))
    with pytest.raises(InputError, match="point") as info:
        assign_frame(index, gpd.GeoSeries([shapely.box(0, 0, 1, 1)], crs=4490, index=["z"]))
    assert "feature 'z'" in info.value.details[0]


def test_build_base_chain_walks_parent_codes():
    box = shapely.box(0, 0, 1, 1)
    grids = gpd.GeoDataFrame(
        {"id": [1, 2, 3, 4, 5], "code": ["C", "T", "V", "B1", "B2"], "level": [1, 2, 3, 4, 4],
         "parent_code": [None, "C", "T", "V", "missing"]},
        geometry=[box] * 4 + [shapely.box(1, 0, 2, 1)], crs=4490)
    chain = build_base_chain(grids)
    assert chain["id"].tolist() == [4, 5]
    assert chain["village_grid_id"].tolist() == [3, pd.NA]
    assert chain["city_grid_id"].tolist() == [1, pd.NA]
    index = build_grid_index(grids)
    got = assign_points(index, np.array([0.5, 1.5]), np.array([0.5, 0.5]))
    assert got.township_grid_id.tolist() == [2, -1]
    assert got.base_grid_id.tolist() == [4, 5]


# ------------------------------------------------------------------ grid versions in time
def test_find_epochs_puts_each_time_in_the_version_valid_then():
    epochs = np.array([100, 200, 300], dtype=np.int64)
    got = find_epochs(epochs, np.array([99, 100, 199, 200, 300, 10**9]))
    assert got.tolist() == [-1, 0, 0, 1, 2, 2]


def test_points_are_assigned_with_the_grids_of_their_time_in_input_order():
    square = shapely.box(0, 0, 1, 1)
    by_epoch = {0: GridIndex.build(make_base([square], [11])),
                1: GridIndex.build(make_base([square], [22])),
                2: GridIndex.build(make_base([shapely.box(5, 5, 6, 6)], [33]))}
    asked = []

    def index_at(epoch):
        asked.append(epoch)
        return by_epoch[epoch]

    epochs = np.array([10, 20, 30], dtype=np.int64)
    times = np.array([25, 5, 15, 35, 12, 21])
    x = np.array([0.5, 0.5, 0.5, 0.5, 0.5, 9.0])
    chain = assign_points_at(index_at, epochs, times, x, np.full(6, 0.5))
    assert chain.base_grid_id.tolist() == [22, -1, 11, -1, 11, -1]
    assert chain.outside.tolist() == [False, True, False, True, False, True]
    assert chain.village_grid_id.tolist()[:3] == [10_002, -1, 10_001]
    assert sorted(asked) == [0, 1, 2]  # each epoch used asked for once


def test_points_after_the_last_change_use_the_current_index_only():
    asked = []

    def index_at(epoch):
        asked.append(epoch)
        return GridIndex.build(make_base([shapely.box(0, 0, 1, 1)], [7]))

    chain = assign_points_at(index_at, np.array([10, 20]), np.array([20, 50]),
                             np.array([0.5, 3.0]), np.array([0.5, 0.5]))
    assert asked == [1] and chain.base_grid_id.tolist() == [7, -1]
    no_versions = assign_points_at(index_at, np.array([], dtype=np.int64), np.array([5]),
                                   np.array([0.5]), np.array([0.5]))
    assert no_versions.outside.tolist() == [True] and asked == [1]
