"""What is drawn where on a PDF page: text, images and vector paths in page coordinates, the
text hidden under a scan, and the regions where paths draw a figure (a chart, a diagram).

PDFium reports an object inside a form XObject in the form's own space; :func:`collect` walks the
page and its forms and maps every object into page space (PDF points, origin bottom-left, before
the page's /Rotate); :class:`PageGeometry` maps page space to the displayed page (origin top-left,
after /Rotate and the crop box), which is what bounding boxes and renders use.

:func:`figure_regions` clusters the visible paths into figure regions and keeps the clusters that
draw something: curves, slanted lines, filled shapes with no text in them (bars, pie slices). It
leaves out page borders and backgrounds, rules (headers, footnotes, underlines, table lines),
tables (cell boxes aligned in rows and columns, text in the cells), boxes around text, icons
and logos too small to matter, and paths laid over raster images (the images are extracted
themselves).
"""

from __future__ import annotations

import ctypes
import re
from dataclasses import dataclass, field
from typing import Any

__all__ = [
    "Box",
    "PageGeometry",
    "PageLayout",
    "collect",
    "figure_regions",
    "find_caption",
]

#: (left, bottom, right, top) in page space (PDF points, origin bottom-left).
Box = tuple[float, float, float, float]
Matrix = tuple[float, float, float, float, float, float]

_IDENTITY: Matrix = (1.0, 0.0, 0.0, 1.0, 0.0, 0.0)

PAGEOBJ_TEXT, PAGEOBJ_PATH, PAGEOBJ_IMAGE, PAGEOBJ_FORM = 1, 2, 3, 5

#: A path no thicker than this (points) is a line: a rule, an axis, a table border.
THIN = 2.5
#: Paths this close (points) belong to one figure.
FIGURE_GAP = 12.0
#: A figure region is at least this wide and high (points) and covers this share of the page.
FIGURE_MIN_SIDE = 40.0
FIGURE_MIN_AREA = 0.015
#: Text objects reaching this close (points) to a figure are its labels and widen its region.
LABEL_MARGIN = 10.0
#: Blank margin (points) kept around a figure's ink when it is rendered.
FIGURE_PAD = 3.0
#: A cluster of more paths than this is taken for a figure without looking at each path.
DENSE_DRAWING = 2000
#: Paths segments looked at per path (a long curve is known to be one after a few).
_MAX_SEGMENTS = 96


def _compose(inner: Matrix, outer: Matrix) -> Matrix:
    """The matrix applying *inner* then *outer*."""
    a1, b1, c1, d1, e1, f1 = inner
    a2, b2, c2, d2, e2, f2 = outer
    return (
        a1 * a2 + b1 * c2,
        a1 * b2 + b1 * d2,
        c1 * a2 + d1 * c2,
        c1 * b2 + d1 * d2,
        e1 * a2 + f1 * c2 + e2,
        e1 * b2 + f1 * d2 + f2,
    )


def _apply_box(m: Matrix, box: Box) -> Box:
    if m == _IDENTITY:
        return box
    a, b, c, d, e, f = m
    xs, ys = [], []
    for x, y in ((box[0], box[1]), (box[2], box[1]), (box[0], box[3]), (box[2], box[3])):
        xs.append(a * x + c * y + e)
        ys.append(b * x + d * y + f)
    return (min(xs), min(ys), max(xs), max(ys))


def _area(box: Box) -> float:
    return max(0.0, box[2] - box[0]) * max(0.0, box[3] - box[1])


def _intersection(a: Box, b: Box) -> float:
    return _area((max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])))


def _union(a: Box, b: Box) -> Box:
    return (min(a[0], b[0]), min(a[1], b[1]), max(a[2], b[2]), max(a[3], b[3]))


def _near(a: Box, b: Box, gap: float) -> bool:
    return a[0] - gap <= b[2] and b[0] - gap <= a[2] and a[1] - gap <= b[3] and b[1] - gap <= a[3]


def _centre_in(inner: Box, outer: Box) -> bool:
    x, y = (inner[0] + inner[2]) / 2, (inner[1] + inner[3]) / 2
    return outer[0] <= x <= outer[2] and outer[1] <= y <= outer[3]


@dataclass(slots=True)
class TextObj:
    box: Box
    index: int  # drawing order on the page
    chars: int
    invisible: bool  # render mode 3 (invisible) or 7 (clip only): an OCR layer over a scan


@dataclass(slots=True)
class ImageObj:
    box: Box
    index: int
    obj: Any  # pypdfium2 PdfImage


@dataclass(slots=True)
class PathObj:
    box: Box
    index: int
    kind: str  # "line" (thin), "rect" (one axis-aligned box), "ortho" (axis-aligned), "shape"
    filled: bool


@dataclass
class PageLayout:
    box: Box  # the page's crop box
    texts: list[TextObj] = field(default_factory=list)
    images: list[ImageObj] = field(default_factory=list)
    paths: list[PathObj] = field(default_factory=list)
    truncated: bool = False  # paths past the limit were not listed

    def text_over(self, region: Box, *, behind: int | None = None) -> tuple[int, int]:
        """Characters (hidden, visible) of the text whose centre lies in *region*; hidden: drawn
        invisible, or drawn before the object of drawing order *behind* (under an opaque scan)."""
        hidden = visible = 0
        for t in self.texts:
            if _centre_in(t.box, region):
                if t.invisible or (behind is not None and t.index < behind):
                    hidden += t.chars
                else:
                    visible += t.chars
        return hidden, visible

    @property
    def invisible_chars(self) -> int:
        return sum(t.chars for t in self.texts if t.invisible)


class PageGeometry:
    """Maps page space (PDF points, origin bottom-left, as PDFium reports object and text boxes)
    to the displayed page (points, origin top-left, after /Rotate and the crop box)."""

    _K = 16  # device units per point when asking PDFium for the mapping (1/16 pt precision)

    def __init__(self, page: Any, raw: Any) -> None:
        self.width, self.height = page.get_size()
        k = self._K
        size_x, size_y = max(1, round(self.width * k)), max(1, round(self.height * k))
        dx, dy = ctypes.c_int(), ctypes.c_int()

        def dev(x: float, y: float) -> tuple[float, float]:
            raw.FPDF_PageToDevice(page, 0, 0, size_x, size_y, 0, x, y, dx, dy)
            return dx.value / k, dy.value / k

        left, bottom, _right, _top = page.get_bbox()
        ox, oy = dev(left, bottom)
        ax, ay = dev(left + 1000.0, bottom)
        bx, by = dev(left, bottom + 1000.0)
        a, b = (ax - ox) / 1000.0, (ay - oy) / 1000.0
        c, d = (bx - ox) / 1000.0, (by - oy) / 1000.0
        self._m: Matrix = (a, b, c, d, ox - a * left - c * bottom, oy - b * left - d * bottom)

    def rect(self, box: Box) -> tuple[float, float, float, float]:
        """*box* in page space as (x0, y0, x1, y1) on the displayed page, clipped to it, rounded."""
        x0, y0, x1, y1 = _apply_box(self._m, box)
        x0, x1 = max(0.0, min(x0, self.width)), max(0.0, min(x1, self.width))
        y0, y1 = max(0.0, min(y0, self.height)), max(0.0, min(y1, self.height))
        return (round(x0, 2), round(y0, 2), round(x1, 2), round(y1, 2))


def collect(
    page: Any, raw: Any, textpage: Any | None = None, *, max_depth: int = 8, max_paths: int = 50_000
) -> PageLayout:
    """Every text, image and path object of *page* (inside forms too) in page space. Paths past
    *max_paths* are not looked at (``layout.truncated``): a hostile page must not cost minutes."""
    layout = PageLayout(box=tuple(page.get_bbox()))
    stack: list[Matrix] = [_IDENTITY]  # stack[k]: level-k form space -> page space
    fill, stroke = ctypes.c_int(), ctypes.c_int()
    r, g, b, a = (ctypes.c_uint() for _ in range(4))
    for index, obj in enumerate(page.get_objects(max_depth=max_depth)):
        level = min(obj.level, len(stack) - 1)
        del stack[level + 1 :]
        m = stack[level]
        kind = obj.type
        if kind == PAGEOBJ_FORM:
            try:
                stack.append(_compose(tuple(obj.get_matrix().get()), m))
            except Exception:  # no matrix: take the form's content where it stands
                stack.append(m)
            continue
        if kind == PAGEOBJ_PATH and len(layout.paths) >= max_paths:
            layout.truncated = True
            continue
        if kind not in (PAGEOBJ_TEXT, PAGEOBJ_IMAGE, PAGEOBJ_PATH):
            continue
        try:
            box = _apply_box(m, obj.get_bounds())
        except Exception:  # an object PDFium cannot bound is not drawn either
            continue
        if kind == PAGEOBJ_TEXT:
            mode = raw.FPDFTextObj_GetTextRenderMode(obj)
            n = raw.FPDFTextObj_GetText(obj, textpage, None, 0) if textpage is not None else 2
            layout.texts.append(TextObj(box, index, max(0, n // 2 - 1), mode in (3, 7)))
        elif kind == PAGEOBJ_IMAGE:
            layout.images.append(ImageObj(box, index, obj))
        else:
            if not raw.FPDFPath_GetDrawMode(obj, fill, stroke):
                continue
            filled, stroked = fill.value != 0, bool(stroke.value)
            if (
                filled
                and raw.FPDFPageObj_GetFillColor(obj, r, g, b, a)
                and (a.value == 0 or min(r.value, g.value, b.value) >= 250)
            ):
                filled = False  # white or transparent fill: a background, not ink
            if stroked and raw.FPDFPageObj_GetStrokeColor(obj, r, g, b, a) and a.value == 0:
                stroked = False
            if not (filled or stroked):
                continue
            clip = _clip_box(obj, raw)
            if clip is not None:
                clip = _apply_box(m, clip)
                box = (max(box[0], clip[0]), max(box[1], clip[1]), min(box[2], clip[2]), min(box[3], clip[3]))
                if box[0] >= box[2] or box[1] >= box[3]:
                    continue  # clipped away
            layout.paths.append(PathObj(box, index, _path_kind(obj, raw, m, box), filled))
    return layout


def _clip_box(obj: Any, raw: Any, max_segments: int = 64) -> Box | None:
    """The box of the clip path of *obj* (in the space of its bounds), ``None`` when it has none
    (or one too long to bound cheaply)."""
    clip = raw.FPDFPageObj_GetClipPath(obj)
    if not clip:
        return None
    out: Box | None = None
    x, y = ctypes.c_float(), ctypes.c_float()
    for k in range(raw.FPDFClipPath_CountPaths(clip)):
        n = raw.FPDFClipPath_CountPathSegments(clip, k)
        if n <= 0 or n > max_segments:
            continue
        xs, ys = [], []
        for j in range(n):
            seg = raw.FPDFClipPath_GetPathSegment(clip, k, j)
            if seg and raw.FPDFPathSegment_GetPoint(seg, x, y):
                xs.append(x.value)
                ys.append(y.value)
        if xs:
            b = (min(xs), min(ys), max(xs), max(ys))
            out = (
                b
                if out is None
                else (max(out[0], b[0]), max(out[1], b[1]), min(out[2], b[2]), min(out[3], b[3]))
            )
    return out


def _path_kind(obj: Any, raw: Any, m: Matrix, box: Box) -> str:
    if min(box[2] - box[0], box[3] - box[1]) <= THIN:
        return "line"
    pm = _compose(tuple(obj.get_matrix().get()), m)
    a, b, c, d = pm[:4]
    if not ((abs(b) < 1e-6 and abs(c) < 1e-6) or (abs(a) < 1e-6 and abs(d) < 1e-6)):
        return "shape"  # rotated or skewed: nothing stays axis-aligned
    n = raw.FPDFPath_CountSegments(obj)
    x, y = ctypes.c_float(), ctypes.c_float()
    px = py = 0.0
    moves = points = 0
    for j in range(min(n, _MAX_SEGMENTS)):
        seg = raw.FPDFPath_GetPathSegment(obj, j)
        typ = raw.FPDFPathSegment_GetType(seg)
        if typ == 1:  # Bézier: a curve
            return "shape"
        raw.FPDFPathSegment_GetPoint(seg, x, y)
        if typ == 2:  # move
            moves += 1
        elif abs(x.value - px) > 0.01 and abs(y.value - py) > 0.01:
            return "shape"  # a slanted line
        px, py = x.value, y.value
        points += 1
    if n > _MAX_SEGMENTS:
        return "ortho"
    return "rect" if moves <= 1 and points <= 5 else "ortho"


# -- figures -------------------------------------------------------------------------------


@dataclass
class _Cluster:
    box: Box
    paths: list[PathObj]


def _cluster(items: list[tuple[Box, PathObj]], gap: float) -> list[_Cluster]:
    """Group boxes lying about *gap* apart or closer (transitively), then merge the groups whose
    boxes come that close. Each box, grown by half the gap, claims the cells of a *gap*-sized grid
    it covers, and boxes claiming one cell join: linear in the cells covered, so a page of
    thousands of paths (a meshed surface) stays fast."""
    parent = list(range(len(items)))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    cells: dict[tuple[int, int], int] = {}
    half = gap / 2
    for i, (b, _p) in enumerate(items):
        x0, y0 = int((b[0] - half) // gap), int((b[1] - half) // gap)
        x1, y1 = int((b[2] + half) // gap), int((b[3] + half) // gap)
        for gx in range(x0, x1 + 1):
            for gy in range(y0, y1 + 1):
                j = cells.setdefault((gx, gy), i)
                if j != i:
                    ri, rj = find(i), find(j)
                    if ri != rj:
                        parent[ri] = rj
    groups: dict[int, _Cluster] = {}
    for i, (b, p) in enumerate(items):
        root = find(i)
        g = groups.get(root)
        if g is None:
            groups[root] = _Cluster(b, [p])
        else:
            g.box = _union(g.box, b)
            g.paths.append(p)
    clusters = list(groups.values())
    merged = True
    while merged:  # a group's box can reach another group that none of its members reached
        merged = False
        out: list[_Cluster] = []
        for c in clusters:
            for o in out:
                if _near(o.box, c.box, gap):
                    o.box = _union(o.box, c.box)
                    o.paths.extend(c.paths)
                    merged = True
                    break
            else:
                out.append(c)
        clusters = out
    return clusters


def _is_table(rects: list[PathObj], texts: list[TextObj]) -> bool:
    """Boxes that line up in rows (same top and bottom) or columns (same left and right), most of
    them with text inside: the cells of a table (bars of a chart share one edge, not two)."""
    if len(rects) < 3:
        return False

    rows: dict[tuple[int, int], int] = {}
    cols: dict[tuple[int, int], int] = {}
    for r in rects:  # edges matched to the nearest point
        rk, ck = (round(r.box[1]), round(r.box[3])), (round(r.box[0]), round(r.box[2]))
        rows[rk] = rows.get(rk, 0) + 1
        cols[ck] = cols.get(ck, 0) + 1
    aligned = sum(
        1
        for r in rects
        if rows[(round(r.box[1]), round(r.box[3]))] > 1 or cols[(round(r.box[0]), round(r.box[2]))] > 1
    )
    with_text = sum(1 for r in rects if any(_centre_in(t.box, r.box) for t in texts))
    return aligned >= 0.6 * len(rects) and with_text >= 0.6 * len(rects)


def figure_regions(layout: PageLayout) -> list[Box]:
    """Regions (page space) where paths draw figures; labels next to them included."""
    page = layout.box
    page_area = _area(page)
    if page_area <= 0 or not layout.paths or layout.truncated:
        return []
    items: list[tuple[Box, PathObj]] = []
    page_w = page[2] - page[0]
    for p in layout.paths:
        clipped = (
            max(p.box[0], page[0]),
            max(p.box[1], page[1]),
            min(p.box[2], page[2]),
            min(p.box[3], page[3]),
        )
        if clipped[0] > clipped[2] or clipped[1] > clipped[3]:
            continue  # off the page
        if _area(clipped) >= 0.6 * page_area:
            continue  # a page background or border
        if p.kind == "line" and max(clipped[2] - clipped[0], clipped[3] - clipped[1]) >= 0.6 * page_w:
            continue  # a header or footer rule, a column rule
        items.append((clipped, p))
    # lines (axes, grid lines, ticks) join figures; a cluster of lines alone is never one
    clusters = [c for c in _cluster(items, FIGURE_GAP) if any(p.kind != "line" for p in c.paths)]
    regions: list[Box] = []
    for c in clusters:
        w, h = c.box[2] - c.box[0], c.box[3] - c.box[1]
        if w < FIGURE_MIN_SIDE or h < FIGURE_MIN_SIDE or w * h < FIGURE_MIN_AREA * page_area:
            continue  # an icon, a logo, a bullet
        if not _draws_figure(c, layout):
            continue
        region = c.box
        for _ in range(2):  # axis labels, legends, titles next to the drawing, and their titles
            grown = region
            for t in layout.texts:
                if (
                    not t.invisible
                    and _near(t.box, region, LABEL_MARGIN)
                    and (t.box[2] - t.box[0]) < min(1.5 * (c.box[2] - c.box[0]), 0.6 * page_w)
                ):
                    grown = _union(grown, t.box)
            region = grown
        region = _grow(region, FIGURE_PAD)
        region = (
            max(region[0], page[0]),
            max(region[1], page[1]),
            min(region[2], page[2]),
            min(region[3], page[3]),
        )
        if any(_intersection(region, i.box) >= 0.6 * _area(region) for i in layout.images):
            continue  # drawn over a photo (frames, icons): the photo is extracted itself
        regions.append(region)
    # a region inside another (a legend box inside its chart) is part of it
    regions.sort(key=_area, reverse=True)
    kept: list[Box] = []
    for r in regions:
        for i, k in enumerate(kept):
            if _intersection(r, k) >= 0.5 * _area(r):
                kept[i] = _union(k, r)
                break
        else:
            kept.append(r)
    kept.sort(key=lambda r: (-r[3], r[0]))  # reading order: top to bottom
    return kept


def _grow(box: Box, by: float) -> Box:
    return (box[0] - by, box[1] - by, box[2] + by, box[3] + by)


def _under_image(p: PathObj, images: list[ImageObj]) -> bool:
    """Whether an image drawn after *p* covers much of it: *p* is a panel or frame laid under a
    photo (page layout), not ink of its own."""
    area = _area(p.box)
    return any(i.index > p.index and _intersection(p.box, i.box) >= 0.3 * area for i in images)


def _draws_figure(c: _Cluster, layout: PageLayout) -> bool:
    """Whether the paths of *c* draw a figure rather than decorate text."""
    c_area = _area(c.box)
    texts = [t.box for t in layout.texts if not t.invisible and _centre_in(t.box, c.box)]
    if sum(_area(t) for t in texts) >= 0.5 * c_area:
        return False  # mostly text: a text box with a border or a background

    def text_in(box: Box) -> float:
        return sum(_area(t) for t in texts if _centre_in(t, box))

    if len(c.paths) > DENSE_DRAWING:
        return True  # thousands of paths in one place: a meshed surface, a map, a heat map
    drawn: list[PathObj] = []
    for p in c.paths:
        if p.kind == "line":
            continue
        area = _area(p.box)
        if area < 2500 and (p.kind == "shape" or area < 400) and text_in(p.box) >= 0.5 * area:
            continue  # the outline of a glyph drawn over its text
        drawn.append(p)
    rects = [p for p in drawn if p.kind in ("rect", "ortho")]
    shapes_area = sum(_area(p.box) for p in drawn if p.kind == "shape")
    if shapes_area < 0.1 * c_area and _is_table(rects, [t for t in layout.texts if t.box in texts]):
        return False
    ink = shapes = boxes = 0
    ink_area = 0.0
    images = [i for i in layout.images if _intersection(i.box, c.box) > 0]
    for p in drawn:
        area = _area(p.box)
        if area >= 0.005 * c_area and _under_image(p, images):
            continue  # a panel under a photo, a photo's frame: page layout
        if p.kind != "shape":
            inside = text_in(p.box)
            boxes += inside > 0
            if area >= 0.005 * c_area and any(
                o is not p and _intersection(o.box, p.box) >= 0.9 * _area(o.box) for o in drawn
            ):
                continue  # a frame, a plot area, a background: says nothing either way
            if inside >= 0.25 * area:
                continue  # a box around text: a table cell, a callout, a class in a diagram
        ink += 1
        shapes += p.kind == "shape"
        ink_area += area
    if ink < 2:
        return False
    if ink_area >= 0.05 * c_area:
        return True
    # a diagram: boxes of text joined by arrows (not a layout of photos with captions and icons)
    raster = sum(_intersection(i.box, c.box) for i in layout.images)
    return shapes >= 4 and boxes >= 6 and raster < 0.3 * c_area


# -- captions ------------------------------------------------------------------------------

CAPTION = re.compile(
    r"(?m)^[ \t]*(?:Figure|FIGURE|Fig\.|FIG\.|Figura|Figuur|Abbildung|Abb\.|Bild|Grafik|Graphique|"
    r"Gráfico|Graph|Chart|Diagram|Diagramme|Exhibit|Plate|Schéma|Carte|Map)[ \t]*"
    r"(?:\d+|[IVXLC]+\b)(?:[.\-–]\d+)*[a-z]?"
)
#: How far below / above a figure (points) its caption may start.
CAPTION_BELOW = 60.0
CAPTION_ABOVE = 40.0


def find_caption(
    region: Box, text: str, line_box: Any, pattern: re.Pattern[str] = CAPTION, above_first: bool = False
) -> str:
    """The caption of the figure in *region*: the "Figure n ..." / "Fig. n" paragraph starting
    nearest below it (or inside its lower part, or above it). *text* is the page text;
    ``line_box(start, end)`` gives the page-space box of ``text[start:end]`` (or ``None``).
    Tables pass their own *pattern* ("Table n") and look above first (``above_first``)."""
    best: tuple[float, int] | None = None
    for m in pattern.finditer(text):
        start = m.start() + len(m.group(0)) - len(m.group(0).lstrip())
        box = line_box(start, m.end())
        if box is None or box[0] > region[2] or box[2] < region[0] - 0.25 * (region[2] - region[0]):
            continue
        if box[3] <= region[1]:  # below
            dist = region[1] - box[3]
            if dist > CAPTION_BELOW:
                continue
            dist += 10.0 if above_first else 0.0
        elif box[1] >= region[3]:  # above
            dist = box[1] - region[3]
            if dist > (CAPTION_BELOW if above_first else CAPTION_ABOVE):
                continue
            dist += 0.0 if above_first else 10.0  # prefer a caption below at the same distance
        else:
            dist = 0.0  # inside the region (a caption in the figure's frame)
        if best is None or dist < best[0]:
            best = (dist, start)
    if best is None:
        return ""
    return _paragraph(text, best[1], line_box)


def _paragraph(text: str, start: int, line_box: Any, max_chars: int = 400) -> str:
    """The caption's lines: from *start* while the next line follows closely below."""
    lines: list[str] = []
    pos = start
    prev: Box | None = None
    while pos < len(text) and sum(len(x) for x in lines) < max_chars:
        end = text.find("\n", pos)
        end = len(text) if end < 0 else end
        line = text[pos:end].strip()
        if line:
            box = line_box(pos, end)
            if prev is not None:
                if box is None:
                    break
                height = max(1.0, prev[3] - prev[1])
                if (
                    prev[1] - box[3] > 0.8 * height
                    or box[3] > prev[3]
                    or box[0] > prev[2]
                    or box[2] < prev[0]
                ):
                    break
            lines.append(line)
            prev = box if box is not None else prev
        elif lines:
            break
        pos = end + 1
    caption = " ".join(lines)
    return caption[:max_chars].rstrip()
