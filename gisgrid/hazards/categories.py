"""Hazard categories (隐患类别): the vocabulary, due workdays and duplicate radius of each.

A hazard's category is a key of :data:`CATEGORIES`. The keys follow the patrol checklists of
the plan (附件1 "十一查二到位" for communities, 附件2 "九查一报告" for villages), with ``other``
for anything the checklists do not name. A hazard reported from a checklist item also stores
that item's id (``category_item_id``); the category key is what the rules below read.

Two numbers per category drive the rules:

``due_workdays``
    How many workdays (official holidays skipped, make-up working days counted, see
    :mod:`gisgrid.hazards.calendar`) the grid has to close an ordinary hazard of this kind.
    Fire-related categories get 5, the rest 10. A major hazard (重大隐患) gets
    :data:`MAJOR_DUE_WORKDAYS` whatever its category.
``duplicate_radius_m``
    How close (in metres, measured in the local metric CRS) another open hazard of the same
    category must be to be suggested as a duplicate. 50 m by default; larger for hazards on
    lines or large sites (roads, power lines, mining) and for vehicles that move.
"""

from __future__ import annotations

from dataclasses import dataclass

from gisgrid.errors import InputError

MAJOR_DUE_WORKDAYS = 3
"""Workdays to close a major hazard (重大隐患), whatever its category."""

DEFAULT_DUE_WORKDAYS = 10
"""Workdays to close an ordinary hazard whose category sets nothing else."""

FIRE_DUE_WORKDAYS = 5
"""Workdays to close an ordinary fire-related hazard (fireworks, fuel, fire passages, exits)."""

DEFAULT_DUPLICATE_RADIUS_M = 50.0
"""Radius for duplicate suggestions when a category sets nothing else."""


@dataclass(frozen=True)
class HazardCategory:
    """One category of hazard: its key, Chinese and English labels and its rule numbers."""

    key: str
    zh: str
    en: str
    due_workdays: int = DEFAULT_DUE_WORKDAYS
    duplicate_radius_m: float = DEFAULT_DUPLICATE_RADIUS_M
    fire_related: bool = False


def _fire(key: str, zh: str, en: str, radius: float = DEFAULT_DUPLICATE_RADIUS_M):
    return HazardCategory(key, zh, en, FIRE_DUE_WORKDAYS, radius, fire_related=True)


_ALL = (
    _fire("fireworks", "烟花爆竹非法储存、生产、经营", "illegal fireworks storage, making or selling"),
    _fire("methanol_fuel", "餐饮场所使用醇基燃料", "methanol-based fuel in restaurants"),
    HazardCategory("structure_damage", "装修破坏房屋承重结构", "renovation damaging load-bearing structure"),
    HazardCategory("road_facility", "道路交通设施损坏", "damaged road facilities",
                   duplicate_radius_m=200.0),
    _fire("fire_passage", "消防通道堵塞、灭火器材过期", "blocked fire passage or expired extinguishers"),
    HazardCategory("elevator", "电梯超期未维保", "elevator maintenance overdue"),
    HazardCategory("farm_machinery", "农机作业安全隐患", "farm machinery hazard", duplicate_radius_m=100.0),
    HazardCategory("power_line", "电力线路受人、物影响", "power lines endangered by people or objects",
                   duplicate_radius_m=200.0),
    HazardCategory("billboard_curtain_wall", "户外广告、玻璃幕墙", "outdoor billboard or glass curtain wall"),
    _fire("rental_housing_fire", "出租房火灾隐患", "rental-housing fire hazard"),
    _fire("safety_exit", "安全出口锁闭", "locked safety exit"),
    HazardCategory("illegal_mining", "非法采矿", "illegal mining", duplicate_radius_m=300.0),
    HazardCategory("illegal_taxi", "非法营运车辆", "illegal taxi", duplicate_radius_m=200.0),
    HazardCategory("farm_vehicle_passengers", "农用车辆违法载人", "farm vehicle carrying passengers",
                   duplicate_radius_m=200.0),
    HazardCategory("school_shuttle", "非法接送学生车辆", "illegal school shuttle", duplicate_radius_m=200.0),
    HazardCategory("self_built_house", "居民自建(改、扩、装)房屋", "self-built or altered house"),
    HazardCategory("gathering", "红白喜事等公众聚集活动", "wedding, funeral or other public gathering",
                   due_workdays=FIRE_DUE_WORKDAYS),
    HazardCategory("packaged_shop", "打包管理小店安全", "packaged shop safety"),
    HazardCategory("public_facility", "社区公共安全设施", "community public safety facility"),
    HazardCategory("other", "其他", "other"),
)

CATEGORIES: dict[str, HazardCategory] = {c.key: c for c in _ALL}
"""Every category by key, in checklist order."""


ITEM_CATEGORIES: dict[str, str] = {
    "C01": "fireworks", "C02": "methanol_fuel", "C03": "structure_damage", "C04": "road_facility",
    "C05": "fire_passage", "C06": "elevator", "C07": "farm_machinery", "C08": "power_line",
    "C09": "billboard_curtain_wall", "C10": "rental_housing_fire", "C11": "safety_exit",
    "C12": "packaged_shop", "C13": "public_facility",
    "V01": "illegal_mining", "V02": "fireworks", "V03": "fireworks", "V04": "illegal_taxi",
    "V05": "farm_vehicle_passengers", "V06": "road_facility", "V07": "farm_machinery",
    "V08": "power_line", "V09": "school_shuttle", "V10": "self_built_house",
}
"""Category of each item of the plan's checklists (stable item codes of
``gisgrid/data/checklists.json``: C01-C13 community, V01-V10 village)."""


def category_for_item(item_code: str) -> str:
    """The category key of checklist item ``item_code`` (``other`` for an item added later).

    >>> category_for_item("V08")
    'power_line'
    """
    return ITEM_CATEGORIES.get(item_code, "other")


def get_category(key: str) -> HazardCategory:
    """Return the category ``key`` or raise :class:`InputError` listing the allowed keys.

    >>> get_category("power_line").duplicate_radius_m
    200.0
    """
    try:
        return CATEGORIES[key]
    except (KeyError, TypeError):
        raise InputError(
            f"category: unknown hazard category {key!r}",
            [f"allowed: {', '.join(CATEGORIES)}"],
        ) from None


def render_category_table() -> str:
    """The categories as a Markdown table (key, labels, due workdays, duplicate radius)."""
    lines = ["| key | 类别 | category | due workdays | duplicate radius (m) |",
             "|---|---|---|---|---|"]
    for c in CATEGORIES.values():
        lines.append(f"| `{c.key}` | {c.zh} | {c.en} | {c.due_workdays} | {c.duplicate_radius_m:g} |")
    lines.append(f"| (major) | 重大隐患 | major hazard, any category | {MAJOR_DUE_WORKDAYS} | |")
    return "\n".join(lines)
