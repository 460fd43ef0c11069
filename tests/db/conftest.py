"""Fixtures of the field-operation DB tests: a small grid tree and the plan's checklists.

The field grid tree, in degrees (CGCS2000), away from the other tests' grids::

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
    """Insert :data:`FIELD_TREE` (codes prefixed with ``prefix``); return grid ids by name."""
    ids: dict[str, int] = {}
    paths: dict[str, str] = {}
    srid = connection.execute(sa.text(
        "SELECT coalesce((SELECT value FROM setting WHERE key = 'storage_srid'), '4490')")
    ).scalar_one()
    for name, level, kind, parent, (x0, y0, x1, y1) in FIELD_TREE:
        code = prefix + name
        paths[name] = f"{paths[parent]}.{code}" if parent else code
        wkt = f"MULTIPOLYGON((({x0} {y0},{x1} {y0},{x1} {y1},{x0} {y1},{x0} {y0})))"
        ids[name] = connection.execute(sa.text("""
            INSERT INTO grid (code, name, level, kind, parent_id, path, geom)
            VALUES (:code, :name, :level, :kind, :parent, :path,
                    ST_Transform(ST_GeomFromText(:wkt, 4490), :srid)) RETURNING id"""),
            {"code": code, "name": f"{name} 网格", "level": level, "kind": kind,
             "parent": ids.get(parent), "path": paths[name], "wkt": wkt,
             "srid": int(srid)}).scalar_one()
    return ids


@pytest.fixture(scope="session")
def field_tree_writer():
    """:func:`write_field_tree`, for fixtures that write the tree on their own connection."""
    return write_field_tree


@pytest.fixture
def field_grids(conn) -> dict[str, int]:
    """The field grid tree inside the test's rolled-back transaction; ids by name."""
    return write_field_tree(conn)


@pytest.fixture
def checklists_loaded(conn) -> dict[str, int]:
    """The plan's two checklists stored (version 1); ids by code."""
    from gisgrid.db.field import load_builtin_checklists

    return load_builtin_checklists(conn)
