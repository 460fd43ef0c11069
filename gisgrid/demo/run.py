"""The demo job: the one place that knows the order of the stages.

build the city → store it (import path) → validate it (findings stored) → field data through
the field code paths → maps and reports in ``out/``. Every stage is the same code a user's
command runs; nothing is written to tables directly.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import sqlalchemy as sa

from gisgrid import maps
from gisgrid.config import Settings
from gisgrid.coverage.render import context_grids, findings_frame
from gisgrid.coverage.render import render_html as render_coverage_html
from gisgrid.db import admin
from gisgrid.db.engine import get_engine
from gisgrid.db.findings import validate_stored
from gisgrid.db.grids import read_grids, write_grids
from gisgrid.demo.city import DemoCity, build_demo_city
from gisgrid.errors import Conflict
from gisgrid.grids import prepare_grids
from gisgrid.i18n import label
from gisgrid.layers import findings as findings_layer
from gisgrid.layers import grids as grids_layer
from gisgrid.levels import Level

DEMO_ACTOR = "gisgrid demo"

Step = Callable[[str], None]


@dataclass
class DemoOutcome:
    """What the demo loaded and where it wrote its files."""

    out_dir: Path
    grids: dict[int, int] = field(default_factory=dict)
    findings: dict[str, int] = field(default_factory=dict)
    field_counts: dict[str, int] = field(default_factory=dict)
    files: list[Path] = field(default_factory=list)


def run_demo(settings: Settings, out_dir: Path, *, seed: int | None = None,
             start: date | None = None, days: int = 30, replace: bool = False,
             step: Step = lambda _: None) -> DemoOutcome:
    """Load the demo city into the database of ``settings`` and write its maps and reports.

    The database may hold an earlier demo (it is replaced) but nothing else, unless
    ``replace`` is given: the demo never overwrites someone's data by surprise.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    outcome = DemoOutcome(out_dir=out_dir)
    step("starting the database")
    engine = get_engine(settings)
    step("building the demo city (real outline of 赤壁市, synthetic grids)")
    city = build_demo_city() if seed is None else build_demo_city(seed=seed)
    with engine.begin() as conn:
        _clear_previous_demo(conn, city, replace=replace)
        step("storing the four grid levels")
        outcome.grids = load_city(conn, city)
    with engine.begin() as conn:
        step("validating coverage of the stored hierarchy")
        _, report = validate_stored(conn, actor=DEMO_ACTOR)
        grids = read_grids(conn)
    outcome.findings = _count_by_kind(report.findings)
    outcome.files += _write_coverage(report, out_dir, context=context_grids(grids, report))
    if days > 0:
        from gisgrid.demo.fieldload import load_field_data  # the field stage, after the grids
        with engine.connect() as conn:   # the field stage commits day by day
            outcome.field_counts = load_field_data(conn, city, start=start, days=days, step=step,
                                                   photo_dir=settings.home / "photos")
    with engine.connect() as conn:
        step("drawing the maps")
        outcome.files += _write_maps(conn, out_dir, report)
    return outcome


def load_city(conn: sa.Connection, city: DemoCity) -> dict[int, int]:
    """Store the city level by level through the import path; return grids written per level."""
    written: dict[int, int] = {}
    known: set[str] = set()
    for level in Level:
        frame = city.grids[level]
        prepared = prepare_grids(frame, level, name_field="name", org_field="org",
                                 kind_field="kind", known_parent_codes=known)
        ids = write_grids(conn, prepared, actor=DEMO_ACTOR, reason="demo city")
        written[int(level)] = len(ids)
        known = set(frame["code"])
    return written


def _clear_previous_demo(conn: sa.Connection, city: DemoCity, *, replace: bool) -> None:
    cities = admin.read_city_codes(conn)
    demo_code = city.grids[Level.CITY]["code"].iloc[0]
    foreign = [c for c in cities if c != demo_code]
    if foreign and not replace:
        raise Conflict(
            "the database already holds grids that are not the demo city's; the demo will not "
            "overwrite them",
            [f"city grid {c}" for c in foreign]
            + ["use another GISGRID_HOME / GISGRID_DATABASE_URL, or pass --replace to empty it"])
    admin.clear_data(conn)


def _count_by_kind(findings) -> dict[str, int]:
    counts: dict[str, int] = {}
    for f in findings:
        counts[f.kind] = counts.get(f.kind, 0) + 1
    return dict(sorted(counts.items()))


def _write_coverage(report, out_dir: Path, *, context) -> list[Path]:
    files = {
        out_dir / "coverage.json": report.to_json(indent=2),
        out_dir / "coverage-gaps.geojson": json.dumps(report.to_geojson(), ensure_ascii=False),
        out_dir / "coverage.html": render_coverage_html(report, "zh", context=context),
        out_dir / "coverage.en.html": render_coverage_html(report, "en", context=context),
    }
    for path, text in files.items():
        path.write_text(text, encoding="utf-8")
    return list(files)


def _write_maps(conn: sa.Connection, out_dir: Path, report) -> list[Path]:
    """The grid map in both languages, with the coverage findings drawn over the grids."""
    grids = read_grids(conn)
    findings = findings_frame(report)
    written = []
    for lang, name in (("zh", "grids.html"), ("en", "grids.en.html")):
        title = "赤壁市安全生产网格" if lang == "zh" else "Chibi safety grids"
        fmap = maps.build_map(maps.bounds_of(grids), lang=lang, inline=True, title=title)
        grids_layer.render(grids, fmap, lang=lang)
        findings_layer.render(findings, fmap, lang=lang)
        report_page = "coverage.html" if lang == "zh" else "coverage.en.html"
        other = ("grids.en.html", "English") if lang == "zh" else ("grids.html", "中文")
        maps.TitleBox(title, [(report_page, label("coverage_report", lang)), other]).add_to(fmap)
        path = out_dir / name
        path.write_text(maps.render_html(fmap), encoding="utf-8")
        written.append(path)
    return written
