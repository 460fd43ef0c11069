"""The text tables of the field-operation commands line up, Chinese names included."""

from __future__ import annotations

from gisgrid.cli.checklists import echo_rows


def test_columns_line_up_with_wide_characters(capsys):
    rows = [{"id": 1, "name": "赤壁测试厂", "kind": "x"}, {"id": 22, "name": "ab", "kind": None}]
    echo_rows(rows, ["id", "name", "kind"], "text")
    lines = capsys.readouterr().out.splitlines()
    assert lines == ["id  name        kind",
                     "1   赤壁测试厂  x",
                     "22  ab          -"]
