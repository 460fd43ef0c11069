"""``gisgrid validate`` on files: exit status, the pinned JSON shape, GeoJSON and offline HTML."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner

from gisgrid.cli import main
from gisgrid.cli.validate import validate
from gisgrid.io import write_layer
from gisgrid.maps import find_remote_assets
from tests.unit.coverage_fixtures import two_squares


@pytest.fixture
def files(tmp_path):
    """Write (children, parents) layouts to GeoPackages; returns a factory."""
    def make(children, parents=None):
        child_path = write_layer(children, tmp_path / "grids.gpkg")
        parent_path = write_layer(parents, tmp_path / "parents.gpkg") if parents is not None else None
        return str(child_path), (str(parent_path) if parent_path else None)
    return make


def invoke(args):
    return CliRunner().invoke(validate, args, catch_exceptions=False)


SUMMARY_TYPES = {
    "features": int, "valid": bool, "invalid_geometries": int, "overlaps": dict, "gaps": dict,
    "outside_parent": dict, "edge_mismatches": int, "orphans": int, "duplicate_codes": int,
    "slivers": int,
}
FINDING_TYPES = {
    "id": (str,), "kind": (str,), "level": (int, type(None)), "codes": (list,),
    "parent_code": (str, type(None)), "area_m2": (float, type(None)),
    "width_m": (float, type(None)), "geometry": (dict, type(None)),
}


def check_summary_shape(summary):
    for key, typ in SUMMARY_TYPES.items():
        assert type(summary[key]) is typ, key
    for key in ("overlaps", "gaps", "outside_parent"):
        assert set(summary[key]) == {"count", "area_m2"}
        assert type(summary[key]["count"]) is int and type(summary[key]["area_m2"]) is float


def test_json_shape_is_the_contract(files):
    children, parents = two_squares(left_x1=90)
    grid_file, parent_file = files(children, parents)
    result = invoke([grid_file, "--parents", parent_file, "--format", "json"])
    assert result.exit_code == 1
    doc = json.loads(result.output)
    assert {"summary", "levels", "findings"} <= set(doc)
    check_summary_shape(doc["summary"])
    assert doc["summary"]["gaps"] == {"count": 1, "area_m2": 1000.0}
    assert doc["summary"]["valid"] is False
    assert isinstance(doc["levels"], list) and doc["levels"]
    for entry in doc["levels"] + doc["levels"][0]["parents"]:
        check_summary_shape(entry)
    (finding,) = doc["findings"]
    for key, types in FINDING_TYPES.items():
        assert isinstance(finding[key], types) and type(finding[key]) in types, key
    assert finding["kind"] == "gap" and finding["codes"] == ["A", "B"] and finding["level"] == 4
    assert finding["geometry"]["type"] == "Polygon"
    lon, lat = finding["geometry"]["coordinates"][0][0]
    assert 113 < lon < 115 and 29 < lat < 31      # EPSG:4326, near Chibi


def test_clean_file_exits_zero(files):
    grid_file, parent_file = files(*two_squares())
    result = invoke([grid_file, "--parents", parent_file, "--format", "text", "--lang", "en"])
    assert result.exit_code == 0
    assert "2 features: clean" in result.output


def test_geojson_is_the_gap_layer(files, tmp_path):
    grid_file, parent_file = files(*two_squares(left_x1=110))
    out = tmp_path / "findings.geojson"
    assert invoke([grid_file, "--parents", parent_file, "--format", "geojson", "-o", str(out)]
                  ).exit_code == 1
    doc = json.loads(out.read_text(encoding="utf-8"))
    assert doc["type"] == "FeatureCollection"
    assert sorted(f["properties"]["kind"] for f in doc["features"]) == [
        "edge_mismatch", "edge_mismatch", "overlap"]


def test_html_is_self_contained_and_escapes_user_text(files, tmp_path):
    children, parents = two_squares(left_x1=90, codes=("<b>A</b>", "B&amp;"))
    grid_file, parent_file = files(children, parents)
    out = tmp_path / "report.html"
    assert invoke([grid_file, "--parents", parent_file, "--format", "html", "-o", str(out)]
                  ).exit_code == 1
    page = out.read_text(encoding="utf-8")
    assert "网格覆盖检查报告" in page and "空隙（盲区）" in page
    assert "<b>A</b>" not in page and "&lt;b&gt;A&lt;/b&gt;" in page
    assert find_remote_assets(page) == []          # nothing is loaded from a CDN
    assert 'src="file:' not in page                # nor from beside the file
    assert "L.map(" in page                        # the Leaflet map is there
    assert "leafletjs.com" in page                 # Leaflet itself is inlined


def test_unusable_input_exits_two_with_reason(files, tmp_path, capsys):
    assert main(["validate", str(tmp_path / "missing.gpkg")]) == 2
    assert "no such file" in capsys.readouterr().err
    grid_file, _ = files(*two_squares())
    assert main(["validate", grid_file, "--code-field", "gid"]) == 2
    assert "no code field 'gid'" in capsys.readouterr().err
    assert main(["validate"]) == 2


def test_help_reads_as_the_validate_command(capsys):
    assert main(["validate", "--help"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Usage: gisgrid validate [OPTIONS] [FILE]")
    assert "validate run" not in out and "gisgrid validate accept FINDING_ID" in out
    assert main(["validate", "--no-such-option"]) == 2
    assert "Try 'gisgrid validate --help'" in capsys.readouterr().err


def test_html_of_files_draws_the_checked_grids_under_the_findings(files, tmp_path):
    children, parents = two_squares(left_x1=90)
    grid_file, parent_file = files(children, parents)
    out = tmp_path / "report.html"

    assert invoke([grid_file, "--parents", parent_file, "--format", "html", "-o", str(out),
                   "--lang", "en"]).exit_code == 1

    page = out.read_text(encoding="utf-8")
    legends = "".join(json.loads(m) for m in re.findall(r"div\.innerHTML = (\"[^\n]*\");", page))
    assert "Grids" in legends and "Coverage findings" in legends


def test_repair_names_every_misplaced_option(capsys):
    assert main(["repair", "grids.gpkg", "--apply", "--level", "3"]) == 2
    err = capsys.readouterr().err
    assert "--apply works only with --db" in err and "--level works only with --db" in err
    assert main(["repair", "--db", "--write-fixed", "fixed.gpkg"]) == 2
    assert "--write-fixed works only on files" in capsys.readouterr().err
