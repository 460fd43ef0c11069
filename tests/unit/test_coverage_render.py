"""The self-contained HTML coverage report (:mod:`gisgrid.coverage.render`): what an auditor
reads. The layout: two base grids under one village, with a 10 m gap between them::

    +--------+  +--------+
    |   A    |  |   B    |     parent P = the whole 0..210 x 0..100 box
    +--------+  +--------+
    0      100  110     210
"""

from __future__ import annotations

import re

import pandas as pd
import pytest

from tests.unit.coverage_fixtures import box, grid_frame, parent_frame
from tests.unit.test_maps import legend_text
from gisgrid.coverage.hierarchy import validate_level
from gisgrid.coverage.render import context_grids, format_detail, render_html
from gisgrid.maps import find_remote_assets

HOSTILE = '<img src=x onerror="alert(1)">'


def gap_case(codes=("A", "B")):
    children = grid_frame([box(0, 0, 100, 100), box(110, 0, 210, 100)], codes)
    parent = parent_frame([box(0, 0, 210, 100)])
    return children, parent, validate_level(children, parent)


@pytest.mark.parametrize("lang, texts", [
    ("zh", ["网格覆盖检查报告", "空隙（盲区）", "问题类型说明", "盲区", "范围"]),
    ("en", ["Grid coverage report", "Gap", "What the findings mean", "blind spot", "Scope"]),
])
def test_report_explains_the_findings_in_its_language(lang, texts):
    _, _, report = gap_case()

    page = render_html(report, lang)

    assert all(t in page for t in texts), [t for t in texts if t not in page]
    assert find_remote_assets(page) == []
    assert "width_tolerance_m" not in page and '{"' not in page.split("<script>")[0]


def test_report_escapes_codes_in_tables_and_context_popups():
    children, parent, report = gap_case(codes=(HOSTILE, "B"))

    page = render_html(report, "zh", context=pd.concat([parent, children]))

    assert HOSTILE not in page
    assert "&lt;img src=x" in page


def test_context_grids_are_drawn_under_the_findings():
    children, parent, report = gap_case()

    without = render_html(report, "en")
    with_context = render_html(report, "en", context=pd.concat([parent, children]))

    assert "Level 3 (village/community)" not in legend_text(without)
    assert "Level 3 (village/community)" in legend_text(with_context)
    assert "Level 4 (base grid)" in legend_text(with_context)


def test_context_grids_keep_the_frame_and_the_partitions_with_findings():
    children, parent, report = gap_case()
    city = parent_frame([box(0, 0, 500, 500)], codes=("C",), level=1)
    elsewhere = grid_frame([box(300, 300, 400, 400)], ["Z"], ["Q"])
    grids = pd.concat([city, parent, children, elsewhere])

    kept = context_grids(grids, report)

    assert sorted(kept["code"]) == ["A", "B", "C", "P"]


@pytest.mark.parametrize("detail, lang, expected", [
    ({"length_m": 1374.129}, "en", "mismatched edge length 1,374.1 m"),
    ({"reason": "Self-intersection[1 2]"}, "zh", "原因：Self-intersection[1 2]"),
    ({"parts": 3, "sliver_width_m": 5.0}, "en", "3 part(s); sliver width 5 m"),
    ({"_metric": object(), "parts": 1}, "en", ""),
])
def test_details_read_as_sentences(detail, lang, expected):
    assert format_detail(detail, lang) == expected


def test_map_is_fitted_around_the_findings_with_a_margin():
    _, _, report = gap_case()

    page = render_html(report, "en")

    (south, west), (north, east) = [
        tuple(map(float, pair)) for pair in re.findall(
            r"\[\s*([-\d.]+),\s*([-\d.]+)\s*\]", page.split("fitBounds(")[1])[:2]]
    gap_west, gap_east = 114.0 + 100 / 96_000, 114.0 + 110 / 96_000  # roughly, near x=500 km
    assert west < gap_west and east > gap_east and north - south >= 0.01
