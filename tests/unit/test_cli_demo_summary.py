"""The demo's closing summary never prints a database password."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from gisgrid.cli.demo import _print_summary
from gisgrid.config import Settings


def test_the_summary_masks_the_database_password(capsys, tmp_path):
    outcome = SimpleNamespace(grids={1: 1}, findings={}, field_counts={},
                              files=[tmp_path / "grids.html"])
    settings = Settings(home=Path(tmp_path),
                        database_url="postgresql+psycopg://gisgrid:s3cret@db.example/gisgrid")
    _print_summary(outcome, settings)
    out = capsys.readouterr().out
    assert "s3cret" not in out
    assert "database: postgresql+psycopg://gisgrid:***@db.example/gisgrid" in out
