"""Business units: reading CSV / XLSX / GeoJSON, classes, management, all-or-nothing refusal."""

import json

import openpyxl
import pandas as pd
import pytest

from gisgrid.errors import ImportRefused, InputError
from gisgrid.units import (UNIT_CLASS_LABELS_ZH, UNIT_CLASSES, derive_management,
                           normalise_units, parse_unit_class, read_units)

INDIVIDUAL = {"enterprise_above_scale", "high_risk_micro", "fire_key_unit", "school",
              "kindergarten", "hospital", "park", "public_institution"}


@pytest.mark.parametrize("unit_class", UNIT_CLASSES)
def test_management_follows_the_plan(unit_class):
    expected = "individual" if unit_class in INDIVIDUAL else "packaged"
    assert derive_management(unit_class) == expected
    # a micro enterprise or shop in a high-risk sector or a fire-safety key unit is individual
    assert derive_management(unit_class, high_risk=True) == "individual"
    assert derive_management(unit_class, fire_key_unit=True) == "individual"


@pytest.mark.parametrize("code, zh", sorted(UNIT_CLASS_LABELS_ZH.items()))
def test_chinese_class_names_are_accepted(code, zh):
    assert parse_unit_class(zh) == code
    assert parse_unit_class(code.upper()) == code


def test_unknown_class_names_the_allowed_set():
    with pytest.raises(InputError, match="kindergarten"):
        parse_unit_class("饭店")


def table(**overrides):
    rows = {
        "编号": ["U1", "U2", "U3"],
        "单位名称": ["赤壁化工厂", "红星幼儿园", "张记小吃"],
        "地址": ["赤马港", "蒲圻", "陆水湖"],
        "类别": ["规上企业", "幼儿园", "个体工商户"],
        "经度": ["113.90", "113.91", "113.92"],
        "纬度": ["29.70", "29.71", "29.72"],
    }
    rows.update(overrides)
    return pd.DataFrame(rows)


def test_normalise_reads_chinese_headers_and_derives_management():
    units = normalise_units(table(是否消防安全重点单位=["否", "", "是"]))
    assert units.crs.to_epsg() == 4490
    assert list(units["unit_class"]) == ["enterprise_above_scale", "kindergarten",
                                         "individual_business"]
    assert list(units["management"]) == ["individual", "individual", "individual"]
    assert list(units["fire_key_unit"]) == [False, False, True]
    assert units.geometry.iloc[1].x == pytest.approx(113.91)
    assert list(units["source_row"]) == ["row 2", "row 3", "row 4"]


def test_shop_without_flags_is_packaged():
    units = normalise_units(table())
    assert units.loc[2, "management"] == "packaged"


def test_every_bad_row_is_listed_and_nothing_returned():
    bad = table(单位名称=["赤壁化工厂", "", "张记小吃"], 类别=["规上企业", "幼儿园", "饭店"],
                经度=["113.90", "abc", "300"], 编号=["U1", "U1", "U3"])
    with pytest.raises(ImportRefused) as caught:
        normalise_units(bad)
    details = caught.value.details
    assert any(d.startswith("row 3: name is empty") for d in details)
    assert any(d.startswith("row 3: external_id 'U1' repeats row 2") for d in details)
    assert any(d.startswith("row 3: lon 'abc'") for d in details)
    assert any(d.startswith("row 4: class") for d in details)
    assert any(d.startswith("row 4: lon/lat (300.0") for d in details)
    assert not any(d.startswith("row 2") for d in details)
    assert caught.value.exit_code == 2


def test_missing_columns_are_named():
    with pytest.raises(ImportRefused) as caught:
        normalise_units(pd.DataFrame({"foo": [1]}))
    text = str(caught.value)
    assert "name" in text and "class" in text and "lon" in text


def test_lon_lat_in_another_crs_are_reprojected():
    frame = table(经度=["500000"] * 3, 纬度=["3290000"] * 3)
    units = normalise_units(frame, crs="EPSG:4547")
    assert units.geometry.iloc[0].x == pytest.approx(114.0, abs=1e-6)


def test_read_csv_utf8_and_gb18030(tmp_path):
    for encoding in ("utf-8-sig", "gb18030"):
        path = tmp_path / f"units-{encoding}.csv"
        table().to_csv(path, index=False, encoding=encoding)
        units = read_units(path)
        assert list(units["name"]) == ["赤壁化工厂", "红星幼儿园", "张记小吃"]
        assert list(units["external_id"]) == ["U1", "U2", "U3"]


def test_read_xlsx_with_numbers_and_blank_rows(tmp_path):
    path = tmp_path / "units.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["id", "name", "class", "lon", "lat", "high_risk"])
    sheet.append([101, "Chibi Chemicals", "other_micro", 113.9, 29.7, "yes"])
    sheet.append([None, None, None, None, None, None])
    sheet.append([102, "Corner shop", "individual_business", 113.91, 29.71, None])
    sheet.append([103, "", "school", 113.91, None, None])
    book.save(path)
    with pytest.raises(ImportRefused) as caught:
        read_units(path)
    assert [d.split(":")[0] for d in caught.value.details] == ["row 5", "row 5"]
    sheet.delete_rows(5)
    book.save(path)
    units = read_units(path)
    assert list(units["external_id"]) == ["101", "102"]
    assert list(units["management"]) == ["individual", "packaged"]


def test_read_geojson_points_and_refuse_polygons(tmp_path):
    def feature(name, geometry):
        return {"type": "Feature", "properties": {"name": name, "unit_class": "医院"},
                "geometry": geometry}

    path = tmp_path / "units.geojson"
    collection = {"type": "FeatureCollection", "features": [
        feature("市人民医院", {"type": "Point", "coordinates": [113.9, 29.7]}),
        feature("中医院", {"type": "Point", "coordinates": [113.95, 29.72]})]}
    path.write_text(json.dumps(collection, ensure_ascii=False), encoding="utf-8")
    units = read_units(path)
    assert units.crs.to_epsg() == 4490 and list(units["source_row"]) == ["feature 1",
                                                                        "feature 2"]
    assert units.geometry.iloc[1].x == pytest.approx(113.95)
    collection["features"][1]["geometry"] = {
        "type": "Polygon", "coordinates": [[[113, 29], [114, 29], [114, 30], [113, 29]]]}
    path.write_text(json.dumps(collection, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(ImportRefused, match="feature 2: geometry is a Polygon"):
        read_units(path)


def test_unsupported_file_is_refused(tmp_path):
    path = tmp_path / "units.txt"
    path.write_text("x")
    with pytest.raises(InputError, match="csv"):
        read_units(path)
