"""Patrol checklists (网格员日常巡查清单) as versioned data.

The plan fixes two lists: the community list (附件1, "十一查二到位": 11 checks and 2 "in place"
items) and the village list (附件2, "九查一报告": 9 checks and 1 report item). They ship as
``gisgrid/data/checklists.json`` (version 1, Chinese text verbatim from the plan, English
translation by gisgrid). A city edits its own lists; every edit is a new version, never an
overwrite.

Everything here is pure: mappings in, frozen dataclasses out.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from importlib import resources

from gisgrid.errors import InputError

CHECKLIST_CODES = ("community", "village")
ITEM_KINDS = ("check", "in_place", "report")
ITEM_FIELDS = ("text_zh", "text_en", "due_workdays", "item_kind", "position")
_ITEM_CODE_PREFIX = {"community": "C", "village": "V"}

# grid kind at level 3 (village/community) -> the checklist its base grids patrol with
CHECKLIST_FOR_KIND = {"community": "community", "village": "village"}


@dataclass(frozen=True)
class ChecklistItem:
    """One line of a checklist: a check, an "in place" duty or a report duty."""

    position: int
    code: str
    item_kind: str
    text_zh: str
    text_en: str
    due_workdays: int


@dataclass(frozen=True)
class Checklist:
    """A version of the community or village checklist."""

    code: str
    version: int
    title_zh: str
    title_en: str
    items: tuple[ChecklistItem, ...]

    def item(self, code: str) -> ChecklistItem:
        """The item with stable code ``code`` (e.g. ``"C05"``), or :class:`InputError`."""
        for item in self.items:
            if item.code == code:
                return item
        known = ", ".join(i.code for i in self.items)
        raise InputError(f"checklist {self.code} v{self.version} has no item {code!r} "
                         f"(items: {known})")

    @property
    def item_codes(self) -> tuple[str, ...]:
        return tuple(i.code for i in self.items)

    def to_dict(self) -> dict:
        """A JSON-ready mapping; :func:`validate_checklist` reads it back."""
        return {"code": self.code, "version": self.version, "title_zh": self.title_zh,
                "title_en": self.title_en,
                "items": [{"position": i.position, "code": i.code, "item_kind": i.item_kind,
                           "text_zh": i.text_zh, "text_en": i.text_en,
                           "due_workdays": i.due_workdays} for i in self.items]}


def checklist_code_for(kind: str) -> str:
    """The checklist code used by grids of ``kind`` (the kind of the village/community grid).

    A base grid takes the kind of its village/community parent; pass that kind.

    >>> checklist_code_for("village")
    'village'
    """
    try:
        return CHECKLIST_FOR_KIND[kind]
    except KeyError:
        raise InputError(f"no checklist for grid kind {kind!r}: expected one of "
                         f"{', '.join(CHECKLIST_FOR_KIND)} (the kind of the village/community "
                         "grid a base grid belongs to)") from None


def validate_checklist(data: Mapping, *, where: str = "checklist") -> Checklist:
    """Check a checklist mapping and return it as a :class:`Checklist`.

    Every problem is collected and raised once as :class:`InputError` naming the item and field.
    Rules: code community/village; version a positive integer; titles non-empty; at least one
    item; positions 1..n without gaps or repeats; item codes unique and ``C``/``V`` + digits;
    item kind check/in_place/report; both texts non-empty; due_workdays an integer >= 1.
    """
    problems: list[str] = []
    code = data.get("code")
    if code not in CHECKLIST_CODES:
        problems.append(f"{where}: code {code!r} is not one of {', '.join(CHECKLIST_CODES)}")
    version = data.get("version")
    if not _is_int(version) or version < 1:
        problems.append(f"{where}: version {version!r} is not a positive integer")
    for field in ("title_zh", "title_en"):
        if not _is_text(data.get(field)):
            problems.append(f"{where}: {field} is missing or empty")
    raw_items = data.get("items")
    items: list[ChecklistItem] = []
    if not isinstance(raw_items, list) or not raw_items:
        problems.append(f"{where}: items must be a non-empty list")
        raw_items = []
    prefix = _ITEM_CODE_PREFIX.get(code, "")
    for n, raw in enumerate(raw_items, start=1):
        named = raw.get("code") if isinstance(raw, Mapping) else None
        label = f"{where} item {n}" + (f" ({named})" if isinstance(named, str) else "")
        item, item_problems = _validate_item(raw, label, prefix)
        problems.extend(item_problems)
        if item is not None:
            items.append(item)
    if items and len(items) == len(raw_items):
        positions = sorted(i.position for i in items)
        if positions != list(range(1, len(items) + 1)):
            problems.append(f"{where}: positions {positions} are not 1..{len(items)} "
                            "without gaps or repeats")
        seen: set[str] = set()
        for item in items:
            if item.code in seen:
                problems.append(f"{where}: item code {item.code} appears more than once")
            seen.add(item.code)
    if problems:
        raise InputError(f"{where} is not valid ({len(problems)} problem(s))", problems)
    return Checklist(code=code, version=version, title_zh=data["title_zh"].strip(),
                     title_en=data["title_en"].strip(),
                     items=tuple(sorted(items, key=lambda i: i.position)))


def _validate_item(raw, where: str, prefix: str) -> tuple[ChecklistItem | None, list[str]]:
    if not isinstance(raw, Mapping):
        return None, [f"{where}: must be an object with position, code, item_kind, text_zh, "
                      "text_en, due_workdays"]
    problems = []
    position, code, kind = raw.get("position"), raw.get("code"), raw.get("item_kind")
    due = raw.get("due_workdays")
    if not _is_int(position) or position < 1:
        problems.append(f"{where}: position {position!r} is not a positive integer")
    if (not isinstance(code, str) or not code.startswith(prefix) or len(code) < 2
            or not code[1:].isdigit()):
        problems.append(f"{where}: code {code!r} must be {prefix or 'C/V'} followed by digits "
                        f"(e.g. {prefix or 'C'}01)")
    if kind not in ITEM_KINDS:
        problems.append(f"{where}: item_kind {kind!r} is not one of {', '.join(ITEM_KINDS)}")
    for field in ("text_zh", "text_en"):
        if not _is_text(raw.get(field)):
            problems.append(f"{where}: {field} is missing or empty")
    if not _is_int(due) or due < 1:
        problems.append(f"{where}: due_workdays {due!r} is not an integer >= 1")
    if problems:
        return None, problems
    return ChecklistItem(position=position, code=code, item_kind=kind, text_zh=raw["text_zh"],
                         text_en=raw["text_en"].strip(), due_workdays=due), []


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_text(value) -> bool:
    return isinstance(value, str) and bool(value.strip())


def read_builtin_checklists() -> dict[str, Checklist]:
    """The plan's two lists (version 1) shipped with gisgrid, by code."""
    text = resources.files("gisgrid").joinpath("data/checklists.json").read_text("utf-8")
    return parse_checklists(json.loads(text))


def parse_checklists(document: Mapping) -> dict[str, Checklist]:
    """Validate a document ``{"checklists": [...]}`` and return its lists by code."""
    raw = document.get("checklists") if isinstance(document, Mapping) else None
    if not isinstance(raw, list) or not raw:
        raise InputError('a checklist document needs a non-empty "checklists" list')
    problems: list[str] = []
    lists: dict[str, Checklist] = {}
    for n, data in enumerate(raw, start=1):
        try:
            checklist = validate_checklist(data, where=f"checklist {n}")
        except InputError as exc:
            problems.extend(exc.details)
            continue
        if checklist.code in lists:
            problems.append(f"checklist {n}: code {checklist.code} appears more than once")
        lists[checklist.code] = checklist
    if problems:
        raise InputError(f"checklist document is not valid ({len(problems)} problem(s))",
                         problems)
    return lists


def edit_checklist(current: Checklist, *, changes: Mapping[str, Mapping] | None = None,
                   remove: Iterable[str] = (), add: Iterable[Mapping] = (),
                   next_version: int | None = None) -> Checklist:
    """Return the next version of ``current`` with item changes applied.

    Parameters
    ----------
    current : the version being edited (never modified).
    changes : item code -> {field: new value} for fields in :data:`ITEM_FIELDS`.
    remove : item codes to drop; remaining positions are renumbered 1..n in order.
    add : new items (mappings as in the data file; position optional, default last).
    next_version : the version number to give the result (default ``current.version + 1``;
        the store passes one above the highest version of that code).

    Raises :class:`InputError` listing every unknown item, unknown field or invalid value.
    """
    problems: list[str] = []
    known = set(current.item_codes)
    changes, remove = dict(changes or {}), list(remove)
    for code in [*changes, *remove]:
        if code not in known:
            problems.append(f"item {code}: not in checklist {current.code} v{current.version}")
    for code, fields in dict(changes).items():
        for field in fields:
            if field not in ITEM_FIELDS:
                problems.append(f"item {code}: field {field!r} cannot be edited "
                                f"(editable: {', '.join(ITEM_FIELDS)})")
    if problems:
        raise InputError("checklist edit refused", problems)
    items = []
    for item in current.items:
        if item.code in remove:
            continue
        items.append({**current.to_dict()["items"][current.items.index(item)],
                      **dict(changes.get(item.code, {}))})
    moved = {code for code, fields in dict(changes).items() if "position" in fields}
    # a moved item goes before the item already at its new position
    items.sort(key=lambda i: (i["position"], i["code"] not in moved))
    for n, item in enumerate(items, start=1):
        item["position"] = n
    for new in add:
        new = dict(new)
        new.setdefault("position", len(items) + 1)
        items.append(new)
    version = current.version + 1 if next_version is None else next_version
    data = {**current.to_dict(), "version": version, "items": items}
    checklist = validate_checklist(data, where=f"checklist {current.code} v{version}")
    if checklist == replace(current, version=version):
        raise InputError(f"checklist edit changes nothing in {current.code} v{current.version}")
    return checklist
