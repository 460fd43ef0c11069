"""The plan's two patrol checklists as versioned data, and city edits."""

import copy

import pytest

from gisgrid.checklists import (Checklist, checklist_code_for, edit_checklist,
                                parse_checklists, read_builtin_checklists, validate_checklist)
from gisgrid.errors import InputError

# 附件1 and 附件2 of the plan, copied line by line from the seed document (blank lines removed):
# the data file must reproduce them verbatim.
ATTACHMENT_1 = """\
网格员日常巡查清单(社区)
十一查二到位
1.有无烟花爆竹非法存储点;
2.有无个体餐饮违规使用甲醇燃料;
3.有无门店装修破坏房屋结构;
4.道路交通设施有无损毁;
5.消防通道有无堵塞以及消防器材有无过期失效;
6.电梯维保有无超期未检;
7.农机作业有无安全隐患;
8.有无电力供电线路受到人、物等影响的安全隐患;
9.有无户外广告、玻璃幕墙等公共安全隐患;
10.有无出租房火灾隐患;
11.有无锁闭安全出口。
对网格内商铺门店等打包管理单位、社区公共安全设施巡查到位。"""
ATTACHMENT_2 = """\
网格员日常巡查清单(村)
九查一报告
1.有无矿山私挖盗采;
2.有无非法制造、储存、销售烟花爆竹;
3.有无按照《烟花爆竹经营许可证》中储量规定超量储存烟花爆竹;
4.有无黑车营运;
5.有无农用车辆载客;
6.农村道路交通设施有无损坏;
7.农机作业有无安全隐患;
8.有无电力供电线路受到人、物等影响的安全隐患;
9.有无非法接送学生车辆。
对居民自建(改、扩、装)房屋、 村民操办“红白喜事”等公众聚集活动及时报告。"""


@pytest.fixture(scope="module")
def builtin() -> dict[str, Checklist]:
    return read_builtin_checklists()


def test_community_list_has_eleven_checks_and_two_in_place_items(builtin):
    community = builtin["community"]
    kinds = [i.item_kind for i in community.items]
    assert community.version == 1
    assert kinds == ["check"] * 11 + ["in_place"] * 2
    assert community.item_codes == tuple(f"C{n:02d}" for n in range(1, 14))
    assert [i.position for i in community.items] == list(range(1, 14))


def test_village_list_has_nine_checks_and_one_report_item(builtin):
    village = builtin["village"]
    assert [i.item_kind for i in village.items] == ["check"] * 9 + ["report"]
    assert village.item_codes == tuple(f"V{n:02d}" for n in range(1, 11))


@pytest.mark.parametrize("code, attachment", [("community", ATTACHMENT_1),
                                              ("village", ATTACHMENT_2)])
def test_chinese_text_is_verbatim_from_the_plan(builtin, code, attachment):
    lines = attachment.splitlines()
    checklist = builtin[code]
    assert checklist.title_zh == lines[0]
    checks = [i for i in checklist.items if i.item_kind == "check"]
    assert [f"{i.position}.{i.text_zh}" for i in checks] == lines[2:2 + len(checks)]
    last_line = lines[-1]
    others = [i for i in checklist.items if i.item_kind != "check"]
    # the plan words the in-place / report duty as one sentence; each item is a verbatim piece
    for item in others:
        assert item.text_zh in last_line
    if code == "village":
        assert others[0].text_zh == last_line


def test_every_item_has_an_english_translation_and_a_due_period(builtin):
    for checklist in builtin.values():
        assert checklist.title_en
        for item in checklist.items:
            assert item.text_en.strip() and item.text_en.isascii()
            assert item.due_workdays >= 1


def test_grid_kind_chooses_the_list():
    assert checklist_code_for("community") == "community"
    assert checklist_code_for("village") == "village"
    with pytest.raises(InputError, match="township"):
        checklist_code_for("township")


def test_a_city_edit_makes_a_new_version_and_keeps_the_old(builtin):
    old = builtin["community"]
    new = edit_checklist(old, changes={"C05": {"due_workdays": 2, "text_en": "Fire passages?"}},
                         remove=["C07"])
    assert new.version == 2 and old.version == 1
    assert new.item("C05").due_workdays == 2 and old.item("C05").due_workdays == 1
    assert "C07" not in new.item_codes and "C07" in old.item_codes
    assert [i.position for i in new.items] == list(range(1, 13))
    assert new.item("C05").text_zh == old.item("C05").text_zh


def test_edit_can_move_and_add_items(builtin):
    new = edit_checklist(builtin["village"], changes={"V09": {"position": 1}},
                         add=[{"code": "V11", "item_kind": "check", "text_zh": "有无燃气泄漏;",
                               "text_en": "Any gas leaks?", "due_workdays": 1}],
                         next_version=7)
    assert new.version == 7
    assert new.items[0].code == "V09" and new.items[1].code == "V01"
    assert new.items[-1].code == "V11" and new.items[-1].position == 11


def test_edit_lists_every_problem(builtin):
    with pytest.raises(InputError) as caught:
        edit_checklist(builtin["village"], changes={"V99": {"due_workdays": 2},
                                                    "V01": {"colour": "red"}}, remove=["X1"])
    text = str(caught.value)
    assert "V99" in text and "colour" in text and "X1" in text


def test_edit_that_changes_nothing_is_refused(builtin):
    with pytest.raises(InputError, match="changes nothing"):
        edit_checklist(builtin["village"], changes={"V01": {"due_workdays": 1}})


def test_validation_names_item_and_field(builtin):
    data = copy.deepcopy(builtin["community"].to_dict())
    data["items"][2]["item_kind"] = "maybe"
    data["items"][4]["due_workdays"] = 0
    data["items"][5]["code"] = "V06"
    data["items"][6]["text_zh"] = " "
    with pytest.raises(InputError) as caught:
        validate_checklist(data)
    details = caught.value.details
    assert any("item 3" in d and "item_kind" in d for d in details)
    assert any("item 5 (C05): due_workdays 0" in d for d in details)  # named by its code
    assert any("item 6" in d and "V06" in d for d in details)
    assert any("item 7" in d and "text_zh" in d for d in details)


def test_positions_and_codes_must_be_unique(builtin):
    data = copy.deepcopy(builtin["village"].to_dict())
    data["items"][1]["position"] = 1
    data["items"][3]["code"] = "V01"
    with pytest.raises(InputError) as caught:
        validate_checklist(data)
    assert any("positions" in d for d in caught.value.details)
    assert any("V01 appears more than once" in d for d in caught.value.details)


def test_round_trip_through_a_document(builtin):
    document = {"checklists": [c.to_dict() for c in builtin.values()]}
    assert parse_checklists(document) == builtin
