"""Fixtures of the field-operation DB tests: a small grid tree and the plan's checklists.

The field grid tree, in degrees (CGCS2000), away from the other tests' grids, written through
the grid store like any import::

    114.50        114.51        114.52        114.53
    +-------------+-------------+-------------+  30.52
    |  FV-1       |  FV-2       |  FK-1       |
    |  village FV (村)            | community FK (社区)
    +-------------+-------------+-------------+  30.50
    township FT and city FC cover all three         x (114.60, 30.51) outside every grid
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

FIELD_TREE = [  # name, level, kind, parent, box
    ("FC", 1, "city", None, (114.50, 30.50, 114.53, 30.52)),
    ("FT", 2, "township", "FC", (114.50, 30.50, 114.53, 30.52)),
    ("FV", 3, "village", "FT", (114.50, 30.50, 114.52, 30.52)),
    ("FK", 3, "community", "FT", (114.52, 30.50, 114.53, 30.52)),
    ("FV-1", 4, "base", "FV", (114.50, 30.50, 114.51, 30.52)),
    ("FV-2", 4, "base", "FV", (114.51, 30.50, 114.52, 30.52)),
    ("FK-1", 4, "base", "FK", (114.52, 30.50, 114.53, 30.52)),
]
OUTSIDE = (114.60, 30.51)


def write_field_tree(connection: sa.Connection, prefix: str = "") -> dict[str, int]:
    """Store :data:`FIELD_TREE` (codes prefixed with ``prefix``) through the grid store, level
    by level (:func:`gisgrid.grids.prepare_grids`, :func:`gisgrid.db.grids.write_grids`);
    return grid ids by name."""
    import geopandas as gpd
    import shapely

    from gisgrid.db.engine import storage_srid
    from gisgrid.db.grids import write_grids
    from gisgrid.grids import prepare_grids

    ids: dict[str, int] = {}
    for level in (1, 2, 3, 4):
        rows = [r for r in FIELD_TREE if r[1] == level]
        layer = gpd.GeoDataFrame(
            {"code": [prefix + r[0] for r in rows], "name": [f"{r[0]} 网格" for r in rows],
             "kind": [r[2] for r in rows],
             "parent_code": [prefix + r[3] if r[3] else None for r in rows]},
            geometry=[shapely.box(*r[4]) for r in rows], crs=4490)
        prepared = prepare_grids(layer, level, storage_crs=storage_srid(connection))
        written = write_grids(connection, prepared, actor="tests", change="create")
        ids.update({r[0]: grid_id for r, grid_id in zip(rows, written)})
    return ids


@pytest.fixture(scope="session")
def field_tree_writer():
    """:func:`write_field_tree`, for fixtures that write the tree on their own connection."""
    return write_field_tree


@pytest.fixture(scope="session")
def migrated_database(make_database):
    """Factory: ``migrated_database(name, write=None)`` -> URL of a new database migrated to
    head, with ``write(connection)`` committed in it (for tests of commands that commit)."""
    from gisgrid.db import migrate

    def make(name: str, write=None) -> str:
        url = make_database(name)
        migrate.upgrade(url)
        if write is not None:
            engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
            with engine.begin() as connection:
                write(connection)
            engine.dispose()
        return url
    return make


@pytest.fixture
def field_grids(conn) -> dict[str, int]:
    """The field grid tree inside the test's rolled-back transaction; ids by name."""
    return write_field_tree(conn)


@pytest.fixture
def checklists_loaded(conn) -> dict[str, int]:
    """The plan's two checklists stored (version 1); ids by code."""
    from gisgrid.db.checklists import load_builtin_checklists

    return load_builtin_checklists(conn)


@pytest.fixture
def gisgrid_on(tmp_path, monkeypatch, capsys):
    """Factory: ``gisgrid_on(url)`` -> ``run(*args)`` running ``gisgrid ARGS...`` through
    :func:`gisgrid.cli.main` on the database at ``url``; ``run`` returns
    (exit code, stdout, stderr)."""
    from gisgrid.cli import main

    def on(url: str):
        monkeypatch.setenv("GISGRID_DATABASE_URL", url)
        monkeypatch.setenv("GISGRID_HOME", str(tmp_path / "home"))

        def run(*args):
            code = main([str(a) for a in args])
            out, err = capsys.readouterr()
            return code, out, err
        return run
    return on
