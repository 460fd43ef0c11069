"""Browser pages: the start page and the grid map.

Views only parse the request, call the core and present the result.
"""

from __future__ import annotations

from flask import Blueprint, current_app, render_template, request, url_for

from gisgrid.config import Settings
from gisgrid.errors import GisgridError
from gisgrid.i18n import DEFAULT_LANG, check_lang, label
from gisgrid.levels import Level

bp = Blueprint("pages", __name__)


def request_lang() -> str:
    """``?lang=zh|en`` (Chinese by default); :class:`InputError` (400) for another value."""
    return check_lang(request.args.get("lang", DEFAULT_LANG))


@bp.get("/")
def index():
    lang = request_lang()
    return render_template("index.html", lang=lang, title=label("app_title", lang),
                           links=[(url_for("pages.grid_map", lang=lang),
                                   label("grid_map", lang))])


@bp.get("/map/grids")
def grid_map():
    from gisgrid import maps
    from gisgrid.layers import grids

    lang = request_lang()
    level = request.args.get("level")
    frame = _read_grids(Level.parse(level) if level else None)
    fmap = maps.build_map(maps.bounds_of(frame), lang=lang,
                          asset_url=url_for("static", filename="vendor"),
                          title=f'{label("grid_map", lang)} · {label("app_title", lang)}')
    grids.render(frame, fmap)
    other = "en" if lang == "zh" else "zh"
    args = {**request.args.to_dict(), "lang": other}
    maps.TitleBox(label("grid_map", lang), [
        (url_for("pages.index", lang=lang), label("home", lang)),
        (url_for("pages.grid_map", **args), "English" if other == "en" else "中文"),
    ]).add_to(fmap)
    return maps.render_html(fmap)


def _read_grids(level: Level | None):
    try:
        from gisgrid.db.grids import read_grids
    except ImportError:
        raise GisgridError("the grid store (gisgrid.db.grids.read_grids) is not part of this "
                           "build yet") from None
    from gisgrid.db.engine import get_engine

    settings = current_app.config["GISGRID_SETTINGS"] or Settings.from_env()
    with get_engine(settings).connect() as conn:
        return read_grids(conn) if level is None else read_grids(conn, level=int(level))
