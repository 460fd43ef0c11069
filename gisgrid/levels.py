"""The four levels of the grid hierarchy (网格等级) and the kinds of grid at each level."""

from __future__ import annotations

from enum import IntEnum

from gisgrid.errors import InputError


class Level(IntEnum):
    """A level of the hierarchy: 1 city, 2 township/street, 3 village/community, 4 base grid."""

    CITY = 1
    TOWNSHIP = 2
    VILLAGE = 3
    BASE = 4

    @classmethod
    def parse(cls, value) -> "Level":
        """Return the level for ``value`` (1-4 or a name), or raise :class:`InputError`.

        >>> Level.parse("2")
        <Level.TOWNSHIP: 2>
        """
        try:
            return cls(int(value))
        except (TypeError, ValueError):
            try:
                return cls[str(value).upper()]
            except KeyError:
                raise InputError(
                    f"unknown grid level {value!r}: expected 1 (city), 2 (township/street), "
                    "3 (village/community) or 4 (base grid)"
                ) from None

    @property
    def parent(self) -> "Level | None":
        return Level(self - 1) if self > Level.CITY else None

    @property
    def kinds(self) -> tuple[str, ...]:
        return KINDS_BY_LEVEL[self]

    @property
    def label_zh(self) -> str:
        return LEVEL_LABELS_ZH[self]

    @property
    def label_en(self) -> str:
        return LEVEL_LABELS_EN[self]


KINDS_BY_LEVEL = {
    Level.CITY: ("city",),
    Level.TOWNSHIP: ("township", "street"),
    Level.VILLAGE: ("village", "community"),
    Level.BASE: ("base",),
}
ALL_KINDS = tuple(k for kinds in KINDS_BY_LEVEL.values() for k in kinds)
DEFAULT_KIND = {Level.CITY: "city", Level.TOWNSHIP: "township", Level.VILLAGE: "village",
                Level.BASE: "base"}

LEVEL_LABELS_ZH = {Level.CITY: "一级网格（市级）", Level.TOWNSHIP: "二级网格（乡镇/街道）",
                   Level.VILLAGE: "三级网格（社区/村）", Level.BASE: "四级网格（基础网格）"}
LEVEL_LABELS_EN = {Level.CITY: "Level 1 (city)", Level.TOWNSHIP: "Level 2 (township/street)",
                   Level.VILLAGE: "Level 3 (village/community)", Level.BASE: "Level 4 (base grid)"}
