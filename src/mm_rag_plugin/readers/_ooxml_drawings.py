"""Pictures and charts of XLSX sheets, read from the package's parts directly (any workbook size):
``xl/workbook.xml`` and its rels name each sheet's part, the sheet's rels its drawing
(``xl/drawings/*.xml``), the drawing's anchors its pictures (``xl/media/*``) and charts
(``xl/charts/chart*.xml``). A chart is read from the values cached in its XML (``c:strCache`` /
``c:numCache`` under ``c:tx``, ``c:cat``/``c:xVal`` and ``c:val``/``c:yVal``), as Excel last drew it.

The package's declared sizes are checked before (``_office.check_package``), so no part read here
inflates past ``max_unpacked_bytes``; entities are never expanded.
"""

from __future__ import annotations

import posixpath
import zipfile
from dataclasses import dataclass, field
from typing import Any

__all__ = ["Chart", "Picture", "sheet_drawings"]

_NS = {
    "m": "http://schemas.openxmlformats.org/spreadsheetml/2006/main",
    "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
    "pr": "http://schemas.openxmlformats.org/package/2006/relationships",
    "xdr": "http://schemas.openxmlformats.org/drawingml/2006/spreadsheetDrawing",
    "a": "http://schemas.openxmlformats.org/drawingml/2006/main",
    "c": "http://schemas.openxmlformats.org/drawingml/2006/chart",
}
_R_ID = f"{{{_NS['r']}}}id"
_R_EMBED = f"{{{_NS['r']}}}embed"
#: Anchors read per drawing at most (a hostile drawing must not cost minutes).
MAX_ANCHORS = 1000


@dataclass
class Picture:
    data: bytes | None  # None: the image part is missing or external
    anchor: tuple[int, int] | None  # (row, column), 0-based
    alt: str = ""


@dataclass
class Chart:
    kind: str
    title: str
    categories: list[str]
    series: list[dict[str, Any]] = field(default_factory=list)  # {"name", "values"}
    anchor: tuple[int, int] | None = None


def _parse(zf: zipfile.ZipFile, name: str) -> Any:
    from lxml import etree

    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.fromstring(zf.read(name), parser)


def _rels(zf: zipfile.ZipFile, part: str) -> dict[str, str]:
    """``rId -> part name`` of the internal relationships of *part*."""
    folder, base = posixpath.split(part)
    name = posixpath.join(folder, "_rels", base + ".rels")
    if name not in zf.NameToInfo:
        return {}
    out: dict[str, str] = {}
    for rel in _parse(zf, name).iterfind("pr:Relationship", _NS):
        target, rid = rel.get("Target") or "", rel.get("Id") or ""
        if rel.get("TargetMode") == "External" or not target:
            continue
        path = target.lstrip("/") if target.startswith("/") else posixpath.normpath(posixpath.join(folder, target))
        out[rid] = path
    return out


def sheet_drawings(zf: zipfile.ZipFile) -> dict[str, list[Picture | Chart]]:
    """Per sheet name, its pictures and charts in anchor order (top to bottom, left to right)."""
    book = "xl/workbook.xml"
    rels = _rels(zf, book)
    out: dict[str, list[Picture | Chart]] = {}
    for sheet in _parse(zf, book).iterfind("m:sheets/m:sheet", _NS):
        part = rels.get(sheet.get(_R_ID) or "")
        if part is None or part not in zf.NameToInfo:
            continue
        items: list[Picture | Chart] = []
        sheet_rels = _rels(zf, part)
        for el in _parse(zf, part).iterfind("m:drawing", _NS):
            drawing = sheet_rels.get(el.get(_R_ID) or "")
            if drawing is not None and drawing in zf.NameToInfo:
                items += _drawing(zf, drawing)
        if items:
            items.sort(key=lambda it: it.anchor or (0, 0))
            out[sheet.get("name") or ""] = items
    return out


def _drawing(zf: zipfile.ZipFile, part: str) -> list[Picture | Chart]:
    rels = _rels(zf, part)
    root = _parse(zf, part)
    items: list[Picture | Chart] = []
    anchors = [el for el in root if isinstance(el.tag, str) and el.tag.endswith("Anchor")][:MAX_ANCHORS]
    for anchor in anchors:
        frm = anchor.find("xdr:from", _NS)
        where = None
        if frm is not None:
            try:
                where = (int(frm.findtext("xdr:row", "0", _NS)), int(frm.findtext("xdr:col", "0", _NS)))
            except ValueError:
                where = None
        for pic in anchor.iter(f"{{{_NS['xdr']}}}pic"):
            blip = pic.find(".//a:blip", _NS)
            target = rels.get(blip.get(_R_EMBED) or "") if blip is not None else None
            data = zf.read(target) if target is not None and target in zf.NameToInfo else None
            nv = pic.find("xdr:nvPicPr/xdr:cNvPr", _NS)
            alt = (nv.get("descr") or nv.get("title") or "") if nv is not None else ""
            items.append(Picture(data, where, alt))
        for ref in anchor.iter(f"{{{_NS['c']}}}chart"):
            target = rels.get(ref.get(_R_ID) or "")
            if target is not None and target in zf.NameToInfo:
                chart = _chart(_parse(zf, target))
                chart.anchor = where
                items.append(chart)
    return items


def _texts(el: Any) -> str:
    return " ".join(" ".join(t.text.split()) for t in el.iter(f"{{{_NS['a']}}}t") if t.text and t.text.strip())


def _cache(el: Any) -> list[str]:
    """The cached points of a ``c:cat``/``c:val``/``c:tx`` element, by index (gaps left empty)."""
    if el is None:
        return []
    points: dict[int, str] = {}
    count = 0
    for cache in el.iter(f"{{{_NS['c']}}}strCache", f"{{{_NS['c']}}}numCache", f"{{{_NS['c']}}}lvl"):
        n = cache.find("c:ptCount", _NS)
        if n is not None and (n.get("val") or "").isdigit():
            count = max(count, int(n.get("val") or 0))
        for pt in cache.iterfind("c:pt", _NS):
            try:
                idx = int(pt.get("idx") or 0)
            except ValueError:
                continue
            v = pt.findtext("c:v", "", _NS)
            if idx not in points and 0 <= idx < 100_000:
                points[idx] = _number(v)
        if points:
            break  # the first level of a multi-level category axis: the innermost labels
    if not points:
        literal = el.findtext("c:v", None, _NS)  # a series name given as a literal
        return [literal] if literal else []
    size = min(max(count, max(points) + 1), 100_000)
    return [points.get(i, "") for i in range(size)]


def _number(v: str) -> str:
    """A cached value as Excel would show it without its number format: ``3.0`` -> ``3``."""
    from .spreadsheet import format_number

    try:
        f = float(v)
    except ValueError:
        return " ".join(v.split())
    return format_number(f) if "e" not in v.lower() or abs(f) < 1e16 else v


def _chart(root: Any) -> Chart:
    chart = root.find("c:chart", _NS)
    title_el = chart.find("c:title", _NS) if chart is not None else None
    title = _texts(title_el) if title_el is not None else ""
    kinds: list[str] = []
    categories: list[str] = []
    series: list[dict[str, Any]] = []
    plot = chart.find("c:plotArea", _NS) if chart is not None else None
    for group in plot if plot is not None else []:
        if not isinstance(group.tag, str) or not group.tag.endswith("Chart"):
            continue
        kinds.append(group.tag.rsplit("}", 1)[-1][: -len("Chart")].lower())
        for ser in group.iterfind("c:ser", _NS):
            name = " ".join(_cache(ser.find("c:tx", _NS))).strip()
            cats = _cache(ser.find("c:cat", _NS)) or _cache(ser.find("c:xVal", _NS))
            values = _cache(ser.find("c:val", _NS)) or _cache(ser.find("c:yVal", _NS))
            if cats and not categories:
                categories = cats
            series.append({"name": name or f"series {len(series) + 1}", "values": values})
    return Chart(" / ".join(dict.fromkeys(kinds)) or "chart", title, categories, series)


def chart_rows(chart: Chart) -> tuple[list[str], list[list[str]]]:
    """The chart as a table: a category column, then one column per series."""
    categories = list(chart.categories)
    length = max([len(categories), *(len(s["values"]) for s in chart.series)], default=0)
    categories += [str(i + 1) for i in range(len(categories), length)]
    header = ["category", *(s["name"] for s in chart.series)]
    rows = [
        [cat, *(s["values"][i] if i < len(s["values"]) else "" for s in chart.series)] for i, cat in enumerate(categories)
    ]
    return header, rows
