"""Decode an ECharts map script (``registerMap(NAME, {...})``) into plain GeoJSON.

A maintenance script, not part of the gisgrid package: it turned the map scripts shipped in the
PyPI packages ``echarts-china-provinces-pypkg``, ``echarts-china-cities-pypkg`` and
``echarts-countries-pypkg`` into the fixtures under ``tests/data/realworld/`` (provenance in
that folder's README.md).

The map scripts hold a FeatureCollection as a JavaScript object literal (bare keys, ``!0`` for
true) whose coordinates use ECharts' compressed encoding (``UTF8Encoding``): each ring is a
string of UTF-16 code-unit pairs; each code unit minus 64 is a zig-zag encoded delta
(``(v >> 1) ^ -(v & 1)``), accumulated from the ring's ``encodeOffsets`` pair and divided by
``UTF8Scale`` (1024 when absent). This mirrors ``decodePolygon`` in ECharts' ``parseGeoJson``.

Nothing is simplified or repaired. The one change: a ring whose last point differs from its
first is closed by repeating the first point, as GeoJSON requires (ECharts accepts open rings);
the README says how many rings were closed.

Usage::

    python data/boundaries/decode_echarts.py MAP.js OUT.geojson [--name 湖北 ...]
        [--parent-code CODE] [--source TEXT]

Each output feature has the properties ``code`` (the ECharts feature ``id``, an administrative
code), ``name``, ``parent_code`` (``--parent-code`` or null) and ``source``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?")
_IDENT = re.compile(r"[A-Za-z_$][A-Za-z0-9_$]*")
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "b": "\b", "f": "\f", "v": "\v", "0": "\0"}


class LiteralParser:
    """A parser for the JavaScript object literals in map scripts.

    Handles objects (bare or quoted keys), arrays, strings (JavaScript escapes), numbers,
    ``true``/``false``/``null`` and ``!0``/``!1``; nothing else. Strings come back as Python
    strings; :func:`code_units` turns an encoded ring into what ``charCodeAt`` sees.
    """

    def __init__(self, text: str, pos: int = 0):
        self.text = text
        self.pos = pos

    def _skip(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos] in " \t\r\n":
            self.pos += 1

    def _peek(self) -> str:
        self._skip()
        return self.text[self.pos]

    def _expect(self, char: str) -> None:
        if self._peek() != char:
            raise ValueError(f"expected {char!r} at offset {self.pos}, found "
                             f"{self.text[self.pos:self.pos + 20]!r}")
        self.pos += 1

    def parse_value(self):
        char = self._peek()
        if char == "{":
            return self._object()
        if char == "[":
            return self._array()
        if char in "\"'":
            return self._string()
        if char == "!":
            self.pos += 1
            return not self.parse_value()
        match = _NUMBER.match(self.text, self.pos)
        if match:
            self.pos = match.end()
            literal = match.group()
            return float(literal) if any(c in literal for c in ".eE") else int(literal)
        match = _IDENT.match(self.text, self.pos)
        if match and match.group() in ("true", "false", "null"):
            self.pos = match.end()
            return {"true": True, "false": False, "null": None}[match.group()]
        raise ValueError(f"unexpected {self.text[self.pos:self.pos + 20]!r} at offset {self.pos}")

    def _object(self) -> dict:
        self._expect("{")
        out = {}
        while self._peek() != "}":
            if self._peek() in "\"'":
                key = self._string()
            else:
                match = _IDENT.match(self.text, self.pos) or _NUMBER.match(self.text, self.pos)
                if not match:
                    raise ValueError(f"bad key at offset {self.pos}")
                key, self.pos = match.group(), match.end()
            self._expect(":")
            out[key] = self.parse_value()
            if self._peek() == ",":
                self.pos += 1
        self.pos += 1
        return out

    def _array(self) -> list:
        self._expect("[")
        out = []
        while self._peek() != "]":
            out.append(self.parse_value())
            if self._peek() == ",":
                self.pos += 1
        self.pos += 1
        return out

    def _string(self) -> str:
        quote = self._peek()
        self.pos += 1
        chars = []
        text = self.text
        while text[self.pos] != quote:
            char = text[self.pos]
            if char == "\\":
                nxt = text[self.pos + 1]
                if nxt == "x":
                    chars.append(chr(int(text[self.pos + 2:self.pos + 4], 16)))
                    self.pos += 4
                    continue
                if nxt == "u":
                    chars.append(chr(int(text[self.pos + 2:self.pos + 6], 16)))
                    self.pos += 6
                    continue
                if nxt == "\n":            # line continuation
                    self.pos += 2
                    continue
                chars.append(_ESCAPES.get(nxt, nxt))
                self.pos += 2
                continue
            chars.append(char)
            self.pos += 1
        self.pos += 1
        return "".join(chars)


def code_units(text: str) -> list[int]:
    """The UTF-16 code units of ``text`` (what JavaScript's ``charCodeAt`` sees)."""
    data = text.encode("utf-16-le", errors="surrogatepass")
    return [int.from_bytes(data[i:i + 2], "little") for i in range(0, len(data), 2)]


def decode_ring(encoded: str, offset: list[int], scale: float) -> list[list[float]]:
    """One ring: zig-zag delta pairs over ``offset``, divided by ``scale``."""
    units = code_units(encoded)
    if len(units) % 2:
        raise ValueError(f"odd number of code units ({len(units)}) in an encoded ring")
    x, y = offset
    ring = []
    for i in range(0, len(units), 2):
        dx, dy = units[i] - 64, units[i + 1] - 64
        x += (dx >> 1) ^ -(dx & 1)
        y += (dy >> 1) ^ -(dy & 1)
        ring.append([x / scale, y / scale])
    return ring


def decode_collection(collection: dict) -> tuple[dict, int]:
    """Decode a map's FeatureCollection in place; returns it and the number of rings closed."""
    closed = 0
    scale = collection.get("UTF8Scale") or 1024
    encoded = bool(collection.get("UTF8Encoding"))

    def finish(ring):
        nonlocal closed
        if ring and ring[0] != ring[-1]:
            ring.append(list(ring[0]))
            closed += 1
        return ring

    for feature in collection["features"]:
        geom = feature["geometry"]
        offsets = geom.pop("encodeOffsets", None)
        if geom["type"] == "Polygon":
            rings = geom["coordinates"]
            geom["coordinates"] = [finish(decode_ring(r, offsets[i], scale) if encoded else r)
                                   for i, r in enumerate(rings)]
        elif geom["type"] == "MultiPolygon":
            geom["coordinates"] = [
                [finish(decode_ring(r, offsets[p][i], scale) if encoded else r)
                 for i, r in enumerate(poly)]
                for p, poly in enumerate(geom["coordinates"])]
        else:
            raise ValueError(f"feature {feature.get('id')}: unexpected {geom['type']}")
    collection.pop("UTF8Encoding", None)
    collection.pop("UTF8Scale", None)
    return collection, closed


def read_map_script(path: Path) -> tuple[str, dict]:
    """The map name and the (still encoded) FeatureCollection registered by a map script."""
    text = path.read_text(encoding="utf-8")
    match = re.search(r"registerMap\(\s*([\"'])(.*?)\1\s*,", text)
    if not match:
        raise ValueError(f"{path}: no registerMap call")
    parser = LiteralParser(text, match.end())
    return match.group(2), parser.parse_value()


def build_geojson(path: Path, names: list[str] | None, parent_code: str | None,
                  source: str) -> tuple[dict, int]:
    """The decoded features of ``path`` (only those named in ``names`` when given)."""
    _, collection = read_map_script(path)
    collection, closed = decode_collection(collection)
    features = []
    for feature in collection["features"]:
        name = feature.get("properties", {}).get("name")
        if names and name not in names:
            continue
        features.append({
            "type": "Feature",
            "properties": {"code": str(feature.get("id")), "name": name,
                           "parent_code": parent_code, "source": source},
            "geometry": feature["geometry"]})
    if names:
        missing = sorted(set(names) - {f["properties"]["name"] for f in features})
        if missing:
            raise ValueError(f"{path}: no feature named {', '.join(missing)}")
    return {"type": "FeatureCollection", "features": features}, closed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("script", type=Path, help="ECharts map script (.js)")
    parser.add_argument("out", type=Path, help="GeoJSON file to write")
    parser.add_argument("--name", action="append", help="keep only features with this name")
    parser.add_argument("--parent-code", help="parent_code written on every feature")
    parser.add_argument("--source", default="", help="provenance written on every feature")
    args = parser.parse_args(argv)
    collection, closed = build_geojson(args.script, args.name, args.parent_code, args.source)
    # Coordinates are multiples of 1/1024 degree: their shortest repr is exact, nothing rounded.
    args.out.write_text(json.dumps(collection, ensure_ascii=False, separators=(",", ":")) + "\n",
                        encoding="utf-8")
    points = sum(len(ring) for f in collection["features"]
                 for ring in _rings(f["geometry"]))
    print(f"{args.out}: {len(collection['features'])} features, {points} points, "
          f"{closed} rings closed", file=sys.stderr)
    return 0


def _rings(geom: dict):
    if geom["type"] == "Polygon":
        yield from geom["coordinates"]
    else:
        for poly in geom["coordinates"]:
            yield from poly


if __name__ == "__main__":
    raise SystemExit(main())
