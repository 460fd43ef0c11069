"""Chinese / English labels for user-facing text (maps, legends, popups, pages).

Chinese is the default language; English is available everywhere with ``lang="en"``.

>>> label("name", "zh"), label("name", "en")
('名称', 'Name')
"""

from __future__ import annotations

from gisgrid.errors import InputError

LANGS = ("zh", "en")
DEFAULT_LANG = "zh"

# key -> (Chinese, English)
LABELS: dict[str, tuple[str, str]] = {
    # fields
    "name": ("名称", "Name"),
    "code": ("编码", "Code"),
    "level": ("层级", "Level"),
    "kind": ("类型", "Kind"),
    "org": ("责任单位", "Responsible organisation"),
    "parent_code": ("上级编码", "Parent code"),
    "finding_kind": ("问题类型", "Finding"),
    "finding_id": ("问题编号", "Finding id"),
    "codes": ("涉及网格编码", "Grid codes"),
    "area_m2": ("面积（平方米）", "Area (m²)"),
    "width_m": ("宽度（米）", "Width (m)"),
    # layers
    "grids": ("网格", "Grids"),
    "findings": ("网格覆盖问题", "Coverage findings"),
    # grid kinds
    "kind.city": ("市", "City"),
    "kind.township": ("乡镇", "Township"),
    "kind.street": ("街道", "Street"),
    "kind.village": ("行政村", "Village"),
    "kind.community": ("社区", "Community"),
    "kind.base": ("基础网格", "Base grid"),
    # validation finding kinds
    "finding.gap": ("空隙（盲区）", "Gap"),
    "finding.overlap": ("重叠", "Overlap"),
    "finding.outside_parent": ("超出上级网格", "Outside parent"),
    "finding.edge_mismatch": ("边界节点不吻合", "Edge mismatch"),
    "finding.sliver": ("狭长碎片", "Sliver"),
    "finding.invalid_geometry": ("无效几何", "Invalid geometry"),
    "finding.orphan": ("上级编码不存在", "Orphan (unknown parent)"),
    "finding.childless_parent": ("无下级网格", "Childless parent"),
    "finding.duplicate_code": ("编码重复", "Duplicate code"),
    "finding.straddles_parents": ("跨越多个上级网格", "Straddles parents"),
    # pages
    "app_title": ("安全生产网格化管理", "Safety-production grid management"),
    "grid_map": ("网格地图", "Grid map"),
    "home": ("首页", "Home"),
    "coverage_report": ("网格覆盖检查报告", "Grid coverage report"),
    "error": ("错误", "Error"),
}


def check_lang(lang: str) -> str:
    """Return ``lang`` if it is a supported language, else raise :class:`InputError`.

    >>> check_lang("en")
    'en'
    """
    if lang not in LANGS:
        raise InputError(f"unknown language {lang!r}: expected one of {', '.join(LANGS)}")
    return lang


def label(key: str, lang: str = DEFAULT_LANG, default: str | None = None) -> str:
    """The label of ``key`` in ``lang``; ``default`` (or the key itself) when there is none.

    >>> label("finding.gap", "en")
    'Gap'
    >>> label("finding.new_kind", "en")
    'finding.new_kind'
    """
    pair = LABELS.get(key)
    if pair is None:
        return key if default is None else default
    return pair[LANGS.index(check_lang(lang))]
