"""Synthetic field data for the demo city: business units, people, a month of patrols, hazards.

Pure and seeded: every function takes a :class:`~gisgrid.demo.city.DemoCity` and a seed and
returns plain frames or frozen dataclasses; nothing is written anywhere. The write paths
(units import, people and assignments, patrol submissions, hazard reports and workflow
actions) belong to the field-operations modules; the demo loader feeds this output through
them, so the demo exercises the same code as real data.

Everything here is invented: names, phone numbers, places and events.

Columns (GeoDataFrames are EPSG:4490 with the active geometry column ``geom``):

- units (:func:`build_demo_units`): ``external_id, name, address, unit_class, fire_key_unit,
  high_risk, base_code, geom`` (Point). ``unit_class`` is one of
  :data:`gisgrid.units.UNIT_CLASSES`. ``base_code`` is the base grid the point falls in when
  generated (first by code if two overlap), None for the few deliberately outside every grid.
- people (:func:`build_demo_people`): ``people``: ``person_code, name, kind, phone,
  employment, gender``; ``assignments``: ``person_code, grid_code, role, valid_from,
  valid_to``, with kinds and roles of :mod:`gisgrid.people`.
- patrols (:func:`build_demo_patrols`): ``patrols``: ``client_uuid, grid_code, person_code,
  worker, day, started_at, ended_at, entered_at, late, checklist, geom`` (LineString track);
  ``results``: ``client_uuid, item_code, result`` (``ok | hazard_found | not_checked``);
  ``missed``: ``grid_code, day, reason`` (``no_worker | absent``): planned days with no patrol.
  :meth:`DemoPatrols.submissions` gives the mappings :func:`gisgrid.patrols.parse_submission`
  reads.
- hazards (:func:`build_demo_hazards`): ``hazards``: ``client_uuid, item_code, category,
  description, major, reported_at, reporter, unit_external_id, base_code, target_state,
  geom`` (Point); ``steps``: a list of :class:`HazardStep`, the workflow actions to replay in
  order after each report so that every hazard ends in ``target_state``.

Hazard categories are the stable checklist item codes of ``gisgrid/data/checklists.json``
(community ``C01``-``C13``: 十一查 C01-C11, 二到位 C12-C13; village ``V01``-``V10``: 九查
V01-V09, 一报告 V10) mapped to category keys by
:data:`gisgrid.hazards.categories.ITEM_CATEGORIES`; ``item_code`` None means category ``other``.
Times are timezone-aware, China Standard Time.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
import shapely

from gisgrid.checklists import read_builtin_checklists
from gisgrid.clock import CHINA_TZ
from gisgrid.crs import DEFAULT_SRID
from gisgrid.demo.city import DEFAULT_SEED, DemoCity, _allocate, _transform
from gisgrid.hazards.categories import ITEM_CATEGORIES
from gisgrid.hazards.workflow import TRANSITIONS, State
from gisgrid.levels import Level
from gisgrid.precision import snap

DEFAULT_START = date(2017, 11, 1)
"""First day of the demo month (the plan's implementation phase began in November 2017)."""

# Independent random streams per generator, so changing one never shifts another.
_STREAM_UNITS, _STREAM_PEOPLE, _STREAM_PATROLS, _STREAM_HAZARDS = 1, 2, 3, 4

# --- names -----------------------------------------------------------------------------------

_SURNAMES = tuple("王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘"
                  "蔡蒋余于杜叶程魏苏吕丁任沈姚卢熊雷游饶汪")
_GIVEN = tuple("伟芳娜敏静丽强磊军洋勇艳杰涛明超秀霞平刚桂英华建国文辉红梅志兵琴云峰丹玲斌"
               "波亮春燕海鹏晓萍林宏新德胜立成")

# --- business units ---------------------------------------------------------------------------

# class -> (share of the units, anchor sets the units cluster around, spread in metres)
_UNIT_MODEL: dict[str, tuple[int, tuple[str, ...], float]] = {
    "individual_business": (1300, ("community", "seat", "village"), 300.0),
    "other_micro": (800, ("community", "village", "industrial"), 450.0),
    "enterprise_above_scale": (180, ("industrial",), 700.0),
    "high_risk_micro": (220, ("industrial", "village"), 900.0),
    "fire_key_unit": (150, ("urban", "seat", "community"), 700.0),
    "school": (80, ("village", "community"), 250.0),
    "kindergarten": (70, ("community", "village"), 200.0),
    "hospital": (40, ("urban", "seat"), 500.0),
    "park": (20, ("urban", "seat"), 900.0),
    "public_institution": (140, ("seat", "community", "village"), 300.0),
}
_UNIT_NAME_SUFFIXES: dict[str, tuple[str, ...]] = {
    "individual_business": ("便利店", "小吃店", "五金店", "理发店", "餐馆", "副食店", "农资店",
                            "摩托车维修部", "烟酒店", "服装店", "早餐店", "水果店"),
    "other_micro": ("建材有限公司", "商贸有限公司", "竹木加工厂", "茶叶专业合作社", "物流有限公司",
                    "装饰工程有限公司", "农机修理厂", "米业有限公司"),
    "enterprise_above_scale": ("纺织有限公司", "机械制造有限公司", "新材料有限公司",
                               "电子科技有限公司", "食品有限公司", "青砖茶业有限公司",
                               "建材股份有限公司", "纸业有限公司"),
    "high_risk_micro": ("加油站", "液化气供应站", "烟花爆竹经营部", "采石场", "危险化学品经营部",
                        "页岩砖厂"),
    "fire_key_unit": ("宾馆", "购物商场", "网吧", "KTV", "超市", "大酒店", "养老院"),
    "school": ("小学", "中学", "中心小学"),
    "kindergarten": ("幼儿园", "中心幼儿园"),
    "hospital": ("卫生院", "医院", "中医院"),
    "park": ("公园", "湿地公园", "广场"),
    "public_institution": ("派出所", "供电所", "财政所", "水利站", "农技站", "文化站", "林业站"),
}

# --- hazards ----------------------------------------------------------------------------------

_HAZARD_STATE_SHARES: dict[str, float] = {
    "closed": 0.42, "handling": 0.10, "reported": 0.08, "voided": 0.08, "verifying": 0.06,
    "dispatched": 0.06, "accepted": 0.06, "postponed": 0.05, "suspended": 0.05,
    "returned": 0.04,
}
# target state -> alternative action paths (with weights) from ``reported``
_HAZARD_PATHS: dict[str, tuple[tuple[float, tuple[str, ...]], ...]] = {
    "reported": ((0.8, ()), (0.2, ("return", "resubmit"))),
    "accepted": ((1.0, ("accept",)),),
    "dispatched": ((0.9, ("accept", "dispatch")), (0.1, ("accept", "suspend", "dispatch"))),
    "handling": ((0.65, ("accept", "dispatch", "start")),
                 (0.2, ("accept", "dispatch", "start", "submit_for_verification", "reject")),
                 (0.15, ("accept", "dispatch", "start", "postpone", "resume"))),
    "verifying": ((1.0, ("accept", "dispatch", "start", "submit_for_verification")),),
    "closed": ((0.75, ("accept", "dispatch", "start", "submit_for_verification", "close")),
               (0.15, ("accept", "dispatch", "start", "submit_for_verification", "reject",
                       "submit_for_verification", "close")),
               (0.10, ("accept", "dispatch", "start", "postpone", "resume",
                       "submit_for_verification", "close"))),
    "returned": ((0.6, ("return",)), (0.4, ("accept", "dispatch", "return"))),
    "postponed": ((1.0, ("accept", "dispatch", "start", "postpone")),),
    "suspended": ((0.5, ("accept", "suspend")), (0.5, ("accept", "dispatch", "start", "suspend"))),
    "voided": ((0.5, ("void",)), (0.3, ("accept", "void")), (0.2, ("return", "void"))),
}
# action -> (role acting, delay range in hours after the previous step)
_ACTION_TIMING: dict[str, tuple[str, float, float]] = {
    "accept": ("village", 0.5, 24), "dispatch": ("township", 1, 36), "start": ("handler", 2, 72),
    "submit_for_verification": ("handler", 24, 240), "close": ("township", 4, 72),
    "reject": ("township", 4, 48), "return": ("village", 1, 48), "resubmit": ("grid_worker", 4, 96),
    "postpone": ("township", 12, 120), "suspend": ("township", 24, 240),
    "resume": ("township", 24, 120), "void": ("village", 1, 48),
}
# unit class -> checklist items its hazards usually fall under
_UNIT_ITEMS: dict[str, tuple[str, ...]] = {
    "individual_business": ("C02", "C05", "C11", "C12", "V02", "V10"),
    "other_micro": ("C05", "C12", "C08", "V07", "V08"),
    "enterprise_above_scale": ("C05", "C11", "C06", "C08", "V08"),
    "high_risk_micro": ("C01", "V01", "V02", "V03"),
    "fire_key_unit": ("C05", "C10", "C11", "C06", "V10"),
    "school": ("V09", "C05", "C13"),
    "kindergarten": ("V09", "C05", "C11"),
    "hospital": ("C05", "C06", "C11", "V08"),
    "park": ("C13", "C09", "C04", "V06"),
    "public_institution": ("C05", "C13", "C06", "V08"),
}
_ITEM_TEXT: dict[str, str] = {
    "C01": "{place}发现疑似烟花爆竹非法存储点，约{n}箱",
    "C02": "{place}个体餐饮店使用甲醇燃料，未设防护措施",
    "C03": "{place}门店装修拆改承重墙，破坏房屋结构",
    "C04": "{place}路段护栏损毁约{n}米，交通标志缺失",
    "C05": "{place}消防通道被杂物堵塞，{n}具灭火器过期失效",
    "C06": "{place}电梯维保超期{n}天未检",
    "C07": "{place}农机作业无防护，存在安全隐患",
    "C08": "{place}电力线路下堆放杂物、违章搭建",
    "C09": "{place}户外广告牌松动，玻璃幕墙破损",
    "C10": "{place}出租房私拉乱接电线，{n}辆电动车室内充电",
    "C11": "{place}安全出口上锁，疏散通道不畅",
    "C12": "{place}打包管理门店未落实安全自查",
    "C13": "{place}社区公共安全设施损坏{n}处",
    "V01": "{place}山体发现私挖盗采痕迹",
    "V02": "{place}民房内非法储存、销售烟花爆竹",
    "V03": "{place}烟花爆竹经营点超许可储量约{n}箱",
    "V04": "{place}路口有黑车揽客营运",
    "V05": "{place}农用车辆违法载客{n}人",
    "V06": "{place}农村公路护栏、警示桩损坏{n}处",
    "V07": "{place}农机带病作业，无安全防护",
    "V08": "{place}供电线路附近违规施工、堆物",
    "V09": "{place}发现非法接送学生车辆，超载{n}人",
    "V10": "{place}村民自建房施工，未报告备案",
}
_OTHER_TEXT = "{place}发现其他安全隐患，需核实处理"


@dataclass(frozen=True)
class DemoPeople:
    """People and their assignments; the deliberately unstaffed and double-staffed grids."""

    people: pd.DataFrame
    assignments: pd.DataFrame
    unstaffed: tuple[str, ...]
    double_staffed: tuple[str, ...]


@dataclass(frozen=True)
class DemoPatrols:
    """A month of patrols: one row per submitted patrol, its item results, missed days."""

    patrols: gpd.GeoDataFrame
    results: pd.DataFrame
    missed: pd.DataFrame

    def submissions(self) -> Iterator[dict]:
        """Each patrol as the mapping :func:`gisgrid.patrols.parse_submission` reads."""
        by_patrol = {key: dict(zip(group.item_code, group.result))
                     for key, group in self.results.groupby("client_uuid", sort=False)}
        for row in self.patrols.itertuples(index=False):
            yield {
                "client_uuid": row.client_uuid, "grid_code": row.grid_code,
                "worker": row.worker, "day": row.day.isoformat(),
                "started_at": row.started_at.isoformat(), "ended_at": row.ended_at.isoformat(),
                "entered_at": row.entered_at.isoformat(),
                "results": by_patrol.get(row.client_uuid, {}),
                "track": shapely.get_coordinates(row.geom).tolist(),
            }


@dataclass(frozen=True)
class HazardStep:
    """One workflow action to apply to a demo hazard, in order (``seq`` from 1)."""

    client_uuid: str
    seq: int
    action: str
    from_state: str
    to_state: str
    at: datetime
    role: str
    actor: str
    note: str = ""


@dataclass(frozen=True)
class DemoHazards:
    """Hazard reports and the workflow steps that bring each one to its target state."""

    hazards: gpd.GeoDataFrame
    steps: list[HazardStep]


# --- shared geometry --------------------------------------------------------------------------


class _Space:
    """The city in its metric CRS: anchors to cluster around, containment, base-grid lookup."""

    def __init__(self, city: DemoCity, rng: np.random.Generator):
        self.city = city
        self.to_metric = pyproj.Transformer.from_crs(DEFAULT_SRID, city.metric_crs,
                                                     always_xy=True)
        self.to_storage = pyproj.Transformer.from_crs(city.metric_crs, DEFAULT_SRID,
                                                      always_xy=True)
        self.outline = _transform(np.array([city.outline]), self.to_metric)[0]
        shapely.prepare(self.outline)
        centres = city.centres
        xy = shapely.get_coordinates(_transform(centres.geometry.values.to_numpy(),
                                                self.to_metric))
        villages = city.grids[Level.VILLAGE].set_index("code")
        kinds = villages.kind.reindex(centres.code).to_numpy()
        level = centres.level.to_numpy()
        seats = xy[level == int(Level.TOWNSHIP)]
        angles = rng.uniform(0, 2 * np.pi, len(seats))
        industrial = seats + 1800.0 * np.column_stack([np.cos(angles), np.sin(angles)])
        industrial = np.array([p if shapely.contains_xy(self.outline, *p) else s
                               for p, s in zip(industrial, seats)])
        self.anchors = {
            "urban": xy[level == int(Level.CITY)],
            "seat": seats,
            "industrial": industrial,
            "community": xy[(level == int(Level.VILLAGE)) & (kinds == "community")],
            "village": xy[(level == int(Level.VILLAGE)) & (kinds == "village")],
        }
        base = city.grids[Level.BASE]
        self.base_codes = base.code.to_numpy()
        self.base_tree = shapely.STRtree(base.geometry.values.to_numpy())
        self.village_kind = dict(zip(villages.index, villages.kind))
        self.village_name = dict(zip(villages.index, villages.name))
        base_parent = dict(zip(base.code, base.parent_code))
        self.base_parent = base_parent
        towns = city.grids[Level.TOWNSHIP].set_index("code")
        self.town_name = dict(zip(towns.index, towns.name))

    def scatter(self, anchors: np.ndarray, sigma: float, rng) -> np.ndarray:
        """Gaussian points around ``anchors`` (one each), pulled back inside the city."""
        xy = anchors + rng.normal(0, sigma, size=anchors.shape)
        for _ in range(4):
            outside = ~shapely.contains_xy(self.outline, xy[:, 0], xy[:, 1])
            if not outside.any():
                break
            xy[outside] = anchors[outside] + rng.normal(0, sigma, size=(outside.sum(), 2))
        outside = ~shapely.contains_xy(self.outline, xy[:, 0], xy[:, 1])
        xy[outside] = anchors[outside]
        return xy

    def outside_points(self, count: int, rng) -> np.ndarray:
        """``count`` points 300 m to 2 km beyond the city outline."""
        ring = self.outline.boundary
        points = []
        while len(points) < count:
            p = ring.interpolate(rng.uniform(0, ring.length))
            distance, angle = rng.uniform(300, 2000), rng.uniform(0, 2 * np.pi)
            q = (p.x + distance * np.cos(angle), p.y + distance * np.sin(angle))
            if shapely.distance(self.outline, shapely.Point(q)) > 200:
                points.append(q)
        return np.array(points)

    def to_points(self, xy: np.ndarray) -> np.ndarray:
        """Metric coordinates -> snapped EPSG:4490 points."""
        x, y = self.to_storage.transform(xy[:, 0], xy[:, 1])
        return snap(shapely.points(x, y), DEFAULT_SRID)

    def locate(self, points: np.ndarray) -> np.ndarray:
        """Base grid code of each EPSG:4490 point (lowest code on overlap), None outside."""
        point_idx, grid_idx = self.base_tree.query(points, predicate="intersects")
        codes = np.full(len(points), None, dtype=object)
        for p, g in sorted(zip(point_idx, grid_idx), key=lambda pg: (pg[0], -pg[1])):
            codes[p] = self.base_codes[g]
        return codes

    def place_name(self, base_code: str | None) -> str:
        if base_code is None:
            return "市界外"
        village = self.base_parent[base_code]
        return self.town_name[village.rsplit(".", 1)[0]] + self.village_name[village]


def _stream(seed: int, which: int) -> np.random.Generator:
    return np.random.default_rng([seed, which])


def _person_name(rng) -> str:
    given = "".join(rng.choice(_GIVEN, size=rng.choice([1, 2], p=[0.3, 0.7])))
    return str(rng.choice(_SURNAMES)) + given


def _uuid(rng) -> str:
    return str(uuid.UUID(bytes=rng.bytes(16), version=4))


def _local(day: date, hours: float) -> datetime:
    return datetime.combine(day, time(0), CHINA_TZ) + timedelta(seconds=round(hours * 3600))


# --- units ------------------------------------------------------------------------------------


def build_demo_units(city: DemoCity, seed: int = DEFAULT_SEED, *, count: int = 3000,
                     outside: int = 8) -> gpd.GeoDataFrame:
    """Synthetic business units clustered around the urban centre, town seats and villages.

    Parameters
    ----------
    city : DemoCity
    seed : int
    count : int
        Units inside the city, split across the classes in realistic proportions.
    outside : int
        Extra units placed 300 m to 2 km beyond the city outline (outside every grid).

    Returns
    -------
    GeoDataFrame
        ``external_id, name, address, unit_class, fire_key_unit, high_risk, base_code, geom``.
    """
    rng = _stream(seed, _STREAM_UNITS)
    space = _Space(city, rng)
    classes = list(_UNIT_MODEL)
    counts = _allocate(count, [_UNIT_MODEL[c][0] for c in classes], 0)
    xy_parts, class_parts = [], []
    for unit_class, n in zip(classes, counts):
        _, anchor_sets, sigma = _UNIT_MODEL[unit_class]
        chosen_sets = rng.integers(0, len(anchor_sets), size=n)
        anchors = np.empty((n, 2))
        for k, name in enumerate(anchor_sets):
            pool = space.anchors[name]
            mask = chosen_sets == k
            anchors[mask] = pool[rng.integers(0, len(pool), size=mask.sum())]
        xy_parts.append(space.scatter(anchors, sigma, rng))
        class_parts.extend([unit_class] * n)
    outside_classes = rng.choice(["individual_business", "other_micro", "high_risk_micro"],
                                 size=outside)
    xy_parts.append(space.outside_points(outside, rng))
    class_parts.extend(outside_classes.tolist())
    xy = np.vstack(xy_parts)
    points = space.to_points(xy)
    base_codes = space.locate(points)

    unit_class = np.array(class_parts, dtype=object)
    above = unit_class == "enterprise_above_scale"
    fire_key = (unit_class == "fire_key_unit") | (above & (rng.random(len(xy)) < 0.2))
    high_risk = (unit_class == "high_risk_micro") | (above & (rng.random(len(xy)) < 0.1))
    names, addresses = [], []
    for i, (cls, code) in enumerate(zip(unit_class, base_codes)):
        place = space.place_name(code)
        stem = space.village_name[space.base_parent[code]][:2] if code else "赤壁"
        if cls == "individual_business":
            names.append(f"{rng.choice(_SURNAMES)}记{rng.choice(_UNIT_NAME_SUFFIXES[cls])}")
        elif cls in ("other_micro", "enterprise_above_scale"):
            names.append(f"赤壁市{stem}{rng.choice(_UNIT_NAME_SUFFIXES[cls])}")
        else:
            names.append(f"{stem}{rng.choice(_UNIT_NAME_SUFFIXES[cls])}")
        addresses.append(f"赤壁市{place}{int(rng.integers(1, 300))}号")
    return gpd.GeoDataFrame(
        {"external_id": [f"DEMO-U{i + 1:05d}" for i in range(len(xy))], "name": names,
         "address": addresses, "unit_class": unit_class, "fire_key_unit": fire_key,
         "high_risk": high_risk, "base_code": base_codes,
         "geom": gpd.GeoSeries(points, crs=DEFAULT_SRID)},
        geometry="geom", crs=DEFAULT_SRID)


# --- people -----------------------------------------------------------------------------------


def build_demo_people(city: DemoCity, seed: int = DEFAULT_SEED, *, unstaffed: int = 4,
                      valid_from: date = date(2017, 10, 17)) -> DemoPeople:
    """Grid workers (one per base grid, a few grids left without, one with two) and officers.

    Per village/community: a safety officer (``safety_officer``, an officer) and a cadre who
    heads the grid and is the contact cadre (``contact_cadre``) of each of its base grids.
    Per township/street: a safety officer and a head. The city: a head.

    Returns
    -------
    DemoPeople
        ``people``: ``person_code, name, kind, phone, employment, gender``;
        ``assignments``: ``person_code, grid_code, role, valid_from, valid_to``.
    """
    rng = _stream(seed, _STREAM_PEOPLE)
    base = city.grids[Level.BASE]
    defect_codes = {code for d in city.defects for code in d.codes}
    eligible = np.array([c for c in base.code if c not in defect_codes], dtype=object)
    picked = rng.choice(eligible, size=unstaffed + 1, replace=False)
    no_worker, two_workers = tuple(sorted(picked[:unstaffed])), str(picked[unstaffed])
    village_kind = dict(zip(city.grids[Level.VILLAGE].code, city.grids[Level.VILLAGE].kind))
    phones = iter(_unique_phones(rng, len(base) + 2 * len(city.grids[Level.VILLAGE])
                                 + 2 * len(city.grids[Level.TOWNSHIP]) + 8))
    people, assignments = [], []

    def add(kind: str, employment: str | None, roles: list[tuple[str, str]],
            since: date = valid_from) -> str:
        code = f"DEMO-P{len(people) + 1:05d}"
        people.append({"person_code": code, "name": _person_name(rng), "kind": kind,
                       "phone": next(phones), "employment": employment,
                       "gender": str(rng.choice(["男", "女"]))})
        assignments.extend({"person_code": code, "grid_code": grid, "role": role,
                            "valid_from": since, "valid_to": None} for grid, role in roles)
        return code

    add("cadre", None, [(city.grids[Level.CITY].code.iloc[0], "head")])
    for code in city.grids[Level.TOWNSHIP].code:
        add("officer", "full_time", [(code, "safety_officer")])
        add("cadre", None, [(code, "head")])
    base_by_village = base.groupby("parent_code").code.apply(list)
    for code in city.grids[Level.VILLAGE].code:
        add("officer", "part_time", [(code, "safety_officer")])
        add("cadre", None, [(code, "head")]
            + [(b, "contact_cadre") for b in base_by_village.loc[code]])
    for code, parent in zip(base.code, base.parent_code):
        if code in no_worker:
            continue
        full_time = rng.random() < (0.4 if village_kind[parent] == "community" else 0.15)
        add("grid_worker", "full_time" if full_time else "part_time", [(code, "grid_worker")])
        if code == two_workers:
            add("grid_worker", "part_time", [(code, "grid_worker")],
                since=valid_from + timedelta(days=10))
    return DemoPeople(people=pd.DataFrame(people), assignments=pd.DataFrame(assignments),
                      unstaffed=no_worker, double_staffed=(two_workers,))


def _unique_phones(rng, count: int) -> list[str]:
    prefixes = np.array(["133", "135", "137", "139", "150", "151", "158", "177", "180", "187"])
    numbers = rng.choice(10 ** 8, size=count, replace=False)
    return [f"{rng.choice(prefixes)}{n:08d}" for n in numbers]


# --- patrols ----------------------------------------------------------------------------------


def build_demo_patrols(city: DemoCity, people: DemoPeople, start: date = DEFAULT_START,
                       days: int = 30, seed: int = DEFAULT_SEED) -> DemoPatrols:
    """Daily patrols of every staffed base grid for ``days`` days from ``start``.

    A worker misses about one day in twelve (more at weekends): the whole plan of that day
    carries over. On a patrolled day most items are ``ok``; some are ``not_checked`` (carried
    over), a few ``hazard_found``. About one entry in twenty is made on a later day (late).
    The GPS track wanders between random points inside the grid.
    """
    rng = _stream(seed, _STREAM_PATROLS)
    space = _Space(city, rng)
    items = {code: checklist.item_codes for code, checklist in read_builtin_checklists().items()}
    base = city.grids[Level.BASE]
    workers = people.assignments[people.assignments.role == "grid_worker"]
    phone = dict(zip(people.people.person_code, people.people.phone))
    first_worker = workers.sort_values(["grid_code", "valid_from", "person_code"]) \
        .groupby("grid_code").person_code.first()
    metric = _transform(base.geometry.values.to_numpy(), space.to_metric)
    day_list = [start + timedelta(days=d) for d in range(days)]

    rows, results, missed = [], [], []
    for g, (code, parent) in enumerate(zip(base.code, base.parent_code)):
        checklist = space.village_kind[parent]
        if code not in first_worker.index:
            missed.extend({"grid_code": code, "day": day, "reason": "no_worker"}
                          for day in day_list)
            continue
        worker = first_worker.loc[code]
        pool = _interior_pool(metric[g], rng)
        for day in day_list:
            absent = 0.14 if day.weekday() >= 5 else 0.06
            if rng.random() < absent:
                missed.append({"grid_code": code, "day": day, "reason": "absent"})
                continue
            client_uuid = _uuid(rng)
            begin = rng.uniform(8.0, 15.5)
            length = rng.uniform(0.6, 2.5)
            if rng.random() < 0.05:
                entered = _local(day + timedelta(days=int(rng.integers(1, 4))),
                                 rng.uniform(8.0, 20.0))
            else:
                entered = _local(day, min(begin + length + rng.uniform(0.1, 2.0), 23.9))
            rows.append({
                "client_uuid": client_uuid, "grid_code": code, "person_code": worker,
                "worker": phone[worker], "day": day,
                "started_at": _local(day, begin), "ended_at": _local(day, begin + length),
                "entered_at": entered, "late": entered.date() > day, "checklist": checklist,
                "geom": _track(pool, rng),
            })
            partial = rng.random() < 0.08
            for item in items[checklist]:
                roll = rng.random()
                if roll < (0.45 if partial else 0.03):
                    result = "not_checked"
                elif roll > 0.99:
                    result = "hazard_found"
                else:
                    result = "ok"
                results.append({"client_uuid": client_uuid, "item_code": item,
                                "result": result})
    patrols = gpd.GeoDataFrame(rows, geometry="geom", crs=city.metric_crs)
    tracks = _transform(patrols.geometry.values.to_numpy(), space.to_storage)
    patrols["geom"] = gpd.GeoSeries(snap(tracks, DEFAULT_SRID), crs=DEFAULT_SRID,
                                    index=patrols.index)
    patrols = patrols.set_crs(DEFAULT_SRID, allow_override=True)
    return DemoPatrols(patrols=patrols, results=pd.DataFrame(results),
                       missed=pd.DataFrame(missed, columns=["grid_code", "day", "reason"]))


def _interior_pool(polygon, rng, size: int = 200) -> np.ndarray:
    """Random points inside ``polygon`` (metric), kept slightly away from its edge."""
    inner = polygon.buffer(-20.0)
    if inner.is_empty or inner.area < 0.2 * polygon.area:
        inner = polygon
    shapely.prepare(inner)
    minx, miny, maxx, maxy = inner.bounds
    found = np.empty((0, 2))
    while len(found) < size:
        xy = rng.uniform((minx, miny), (maxx, maxy), size=(size * 2, 2))
        found = np.vstack([found, xy[shapely.contains_xy(inner, xy[:, 0], xy[:, 1])]])
    return found[:size]


def _track(pool: np.ndarray, rng) -> shapely.LineString:
    """A walk through 6-12 points of ``pool`` in angular order, densified with GPS noise."""
    stops = pool[rng.choice(len(pool), size=int(rng.integers(6, 13)), replace=False)]
    centre = stops.mean(axis=0)
    order = np.argsort(np.arctan2(stops[:, 1] - centre[1], stops[:, 0] - centre[0]))
    stops = stops[order]
    segments = np.diff(stops, axis=0)
    steps = np.maximum(np.hypot(segments[:, 0], segments[:, 1]) // 60.0, 1).astype(int)
    which = np.repeat(np.arange(len(segments)), steps)
    first = np.repeat(np.cumsum(steps) - steps, steps)
    t = ((np.arange(steps.sum()) - first) / np.repeat(steps, steps))[:, None]
    xy = np.vstack([stops[which] + t * segments[which], stops[-1:]])
    xy[1:-1] += rng.normal(0, 4.0, size=(len(xy) - 2, 2))
    return shapely.LineString(np.round(xy, 2))


# --- hazards ----------------------------------------------------------------------------------


def build_demo_hazards(city: DemoCity, units: gpd.GeoDataFrame, seed: int = DEFAULT_SEED,
                       start: date = DEFAULT_START, days: int = 30, *, count: int = 2000,
                       outside: int = 6, people: DemoPeople | None = None) -> DemoHazards:
    """Hazards reported over ``days`` days, clustered, with the workflow steps to replay.

    Half are reported at business units, a third in Gaussian hot spots around villages and
    communities (each with its dominant checklist item), the rest scattered; ``outside`` more
    lie beyond the city outline. About 2 % are major. Target final states follow
    ``_HAZARD_STATE_SHARES`` and cover every state of :class:`gisgrid.hazards.workflow.State`;
    every step is an allowed transition and happens before the end of the window.

    ``reporter`` is the phone of the base grid's worker when ``people`` is given (None for an
    unstaffed grid or outside every grid).
    """
    rng = _stream(seed, _STREAM_HAZARDS)
    space = _Space(city, rng)
    inside = count
    n_unit, n_hot = int(inside * 0.5), int(inside * 0.33)
    n_scatter = inside - n_unit - n_hot

    inside_units = units[units.base_code.notna()].reset_index(drop=True)
    unit_pick = rng.integers(0, len(inside_units), size=n_unit)
    unit_anchor = shapely.get_coordinates(_transform(
        inside_units.geometry.values.to_numpy()[unit_pick], space.to_metric))

    villages = np.vstack([space.anchors["community"], space.anchors["village"]])
    hot_count = min(30, len(villages))
    hot_villages = villages[rng.choice(len(villages), size=hot_count, replace=False)]
    hot_centres = space.scatter(hot_villages, 500.0, rng)
    hot_sigma = rng.uniform(150.0, 600.0, size=len(hot_centres))
    hot_items = rng.integers(0, 1000, size=len(hot_centres))
    which_hot = rng.integers(0, len(hot_centres), size=n_hot)

    xy = np.vstack([
        space.scatter(unit_anchor, 15.0, rng),
        _scatter_each(space, hot_centres[which_hot], hot_sigma[which_hot], rng),
        space.scatter(villages[rng.integers(0, len(villages), size=n_scatter)], 1200.0, rng),
        space.outside_points(outside, rng),
    ])
    points = space.to_points(xy)
    base_codes = space.locate(points)
    source = (["unit"] * n_unit + ["hot"] * n_hot + ["scatter"] * n_scatter
              + ["outside"] * outside)

    items = {code: checklist.item_codes for code, checklist in read_builtin_checklists().items()}
    worker_phone = _worker_phones(people)
    window_end = _local(start + timedelta(days=days), 0.0) - timedelta(minutes=1)
    states = list(_HAZARD_STATE_SHARES)
    state_counts = _allocate(len(xy), [_HAZARD_STATE_SHARES[s] for s in states], 1)
    targets = np.array([s for s, n in zip(states, state_counts) for _ in range(n)], dtype=object)
    targets = targets[rng.permutation(len(targets))]

    orgs = {code: org for level in (Level.CITY, Level.TOWNSHIP, Level.VILLAGE)
            for code, org in zip(city.grids[level].code, city.grids[level].org)}
    rows, steps = [], []
    for i, (point, code, how) in enumerate(zip(points, base_codes, source)):
        checklist = space.village_kind[space.base_parent[code]] if code else "village"
        unit_row = inside_units.iloc[unit_pick[i]] if how == "unit" else None
        item = _choose_item(rng, items[checklist], unit_row,
                            hot_items[which_hot[i - n_unit]] if how == "hot" else None)
        place = unit_row["name"] if unit_row is not None else space.place_name(code)
        text = (_ITEM_TEXT[item] if item else _OTHER_TEXT).format(
            place=place, n=int(rng.integers(2, 30)))
        client_uuid = _uuid(rng)
        major = bool(rng.random() < 0.02)
        reported_at = _local(start + timedelta(days=int(rng.integers(0, days))),
                             rng.uniform(8.0, 19.0))
        target = targets[i]
        rows.append({
            "client_uuid": client_uuid, "item_code": item,
            "category": ITEM_CATEGORIES[item] if item else "other", "description": text,
            "major": major, "reported_at": reported_at,
            "reporter": worker_phone.get(code) if code else None,
            "unit_external_id": unit_row["external_id"] if unit_row is not None else None,
            "base_code": code, "target_state": target, "geom": point,
        })
        steps.extend(_hazard_steps(rng, client_uuid, target, reported_at, window_end, major,
                                   _responsible_orgs(orgs, code)))
    hazards = gpd.GeoDataFrame(rows, geometry="geom", crs=DEFAULT_SRID)
    return DemoHazards(hazards=hazards, steps=steps)


def _scatter_each(space: _Space, anchors: np.ndarray, sigmas: np.ndarray, rng) -> np.ndarray:
    """Gaussian points around ``anchors`` with one spread each; outside the city -> anchor."""
    xy = anchors + rng.normal(0, 1.0, size=anchors.shape) * sigmas[:, None]
    outside = ~shapely.contains_xy(space.outline, xy[:, 0], xy[:, 1])
    xy[outside] = anchors[outside]
    return xy


def _worker_phones(people: DemoPeople | None) -> dict[str, str]:
    if people is None:
        return {}
    workers = people.assignments[people.assignments.role == "grid_worker"] \
        .sort_values(["grid_code", "valid_from", "person_code"]).drop_duplicates("grid_code")
    phone = people.people.set_index("person_code").phone
    return dict(zip(workers.grid_code, phone.loc[workers.person_code]))


def _choose_item(rng, checklist_items: tuple[str, ...], unit_row, hot_key) -> str | None:
    """A checklist item of the grid's list: the unit's usual ones, the hot spot's, or any."""
    if rng.random() < 0.06:
        return None                                          # "other"
    if unit_row is not None:
        usual = [c for c in _UNIT_ITEMS[unit_row["unit_class"]] if c in checklist_items]
        if usual and rng.random() < 0.7:
            return str(rng.choice(usual))
    if hot_key is not None and rng.random() < 0.7:
        return checklist_items[hot_key % len(checklist_items)]
    return str(rng.choice(checklist_items))


def _hazard_steps(rng, client_uuid: str, target: str, reported_at: datetime,
                  window_end: datetime, major: bool, orgs: dict[str, str]
                  ) -> list[HazardStep]:
    paths = _HAZARD_PATHS[target]
    weights = np.array([w for w, _ in paths])
    actions = paths[int(rng.choice(len(paths), p=weights / weights.sum()))][1]
    delays = np.array([rng.uniform(*_ACTION_TIMING[a][1:]) for a in actions])
    room = (window_end - reported_at).total_seconds() / 3600.0
    if delays.sum() > room:
        delays *= room / delays.sum()
    state = State.REPORTED
    at = reported_at
    out = []
    for seq, (action, delay) in enumerate(zip(actions, delays), start=1):
        role = _ACTION_TIMING[action][0]
        if major and role == "village":
            role = "township"                 # a major hazard goes straight to the township
        nxt = _NEXT[(state, action)]
        at = _office_hours(at + timedelta(seconds=max(int(delay * 3600), 60)), rng)
        out.append(HazardStep(client_uuid, seq, action, state.value, nxt.value,
                              min(at, window_end), role, orgs[role]))
        state = nxt
    return out


_NEXT = {(t.source, t.action.value): t.target for t in TRANSITIONS}


def _office_hours(moment: datetime, rng) -> datetime:
    """``moment``, or the next morning (8:00-10:00) when it falls outside 8:00-19:00."""
    if 8 <= moment.hour < 19:
        return moment
    day = moment.date() + timedelta(days=1 if moment.hour >= 19 else 0)
    return _local(day, rng.uniform(8.0, 10.0))


def _responsible_orgs(orgs: dict[str, str], base_code: str | None) -> dict[str, str]:
    """Who acts for each role at ``base_code``: the organisations of its chain.

    Outside every grid the city government (赤壁市人民政府) acts for village and township.
    """
    if base_code is None:
        city_org = orgs[min(orgs, key=len)]
        village_org = town_org = city_org
    else:
        village_code = base_code.rsplit(".", 1)[0]
        village_org = orgs[village_code]
        town_org = orgs[village_code.rsplit(".", 1)[0]]
    return {"grid_worker": "网格员", "village": village_org, "township": town_org,
            "handler": "责任单位"}
