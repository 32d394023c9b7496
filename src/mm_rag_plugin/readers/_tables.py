"""Tables on a PDF page, found from PDFium's character boxes and path objects (no second parser).

Two detectors, after pdfplumber's "lines" and "text" strategies and camelot's lattice/stream:

* **ruled** (:func:`_grid_tables`): horizontal and vertical rules (thin paths, the edges of cell
  rectangles) snapped together; a cluster of crossing rules with at least two rows and two
  columns is a grid, its cells the rectangles between the rules. Two neighbouring cells with no
  rule between them are one merged cell.
* **aligned text** (:func:`_text_tables`): consecutive lines cut into segments by wide gaps, whose
  segments line up in the same columns on at least three lines, with short cells (prose in two
  page columns is not a table). Horizontal rules only (booktabs, most journals) bound such a
  table: the lines above the second rule are its header, however many lines it takes.

A table is returned with its rows (header first), the merged-cell layout where cells merge, its
box, and the character ranges of its words in the page text (so that the page's text chunks can
leave them out).
"""

from __future__ import annotations

import bisect
import ctypes
import itertools
import re
import statistics
from dataclasses import dataclass, field
from typing import Any

from ._pdf_layout import Box, PageLayout

__all__ = ["TABLE_CAPTION", "Table", "Word", "find_tables", "page_words"]

#: Rules this close (points) are one rule; a rule reaching this close to another touches it.
SNAP = 3.0
#: A rule shorter than this (points) is not a table border (a tick, an underline of a letter).
MIN_RULE = 8.0
#: A gap wider than this many line heights between two words separates two cells.
COLUMN_GAP = 1.0
#: Lines further apart than this many line heights do not belong to one table.
ROW_GAP = 2.2
#: An aligned-text table has at least this many lines and columns.
MIN_ROWS, MIN_COLS = 3, 2
#: An aligned-text table's cells hold this many words on average at most (prose holds more).
MAX_CELL_WORDS = 4.0

TABLE_CAPTION = re.compile(
    r"(?m)^[ \t]*(?:Table|TABLE|Tab\.|Tabelle|Tableau|Tabla|Tabel|Tabella)[ \t]*"
    r"(?:\d+|[IVXLC]+\b)(?:[.\-–]\d+)*[a-z]?"
)


@dataclass(slots=True)
class Word:
    text: str
    box: Box  # page space
    start: int  # offsets in the raw page text
    end: int

    @property
    def cx(self) -> float:
        return (self.box[0] + self.box[2]) / 2

    @property
    def cy(self) -> float:
        return (self.box[1] + self.box[3]) / 2


@dataclass
class Line:
    words: list[Word]
    top: float
    bottom: float

    @property
    def height(self) -> float:
        return max(1.0, self.top - self.bottom)

    def segments(self) -> list[list[Word]]:
        """The words cut where the gap is wider than ``COLUMN_GAP`` line heights."""
        out: list[list[Word]] = [[self.words[0]]]
        for prev, w in zip(self.words, self.words[1:], strict=False):
            if w.box[0] - prev.box[2] > COLUMN_GAP * self.height:
                out.append([w])
            else:
                out[-1].append(w)
        return out


@dataclass
class Table:
    rows: list[list[str]]  # header first
    box: Box
    ranges: list[tuple[int, int]]  # raw-text ranges of its words
    columns: list[float]  # left edge of each column (pages joined across a break)
    ruled: bool
    #: per cell, the id of the merged cell covering it (``None``: not merged), or ``None`` when
    #: no cell is merged
    merged: list[list[int | None]] | None = None
    header_rows: int = 1
    extra: dict[str, Any] = field(default_factory=dict)


def page_words(textpage: Any, raw: Any, text: str) -> list[Word]:
    """The words of the page text *text* (PDFium's ``get_text_range``) with their boxes (page
    space) and offsets in *text*. Empty when the character list cannot be matched to the text."""
    n = textpage.count_chars()
    handle = getattr(textpage, "raw", textpage)  # the FPDF_TEXTPAGE: no wrapper lookup per call
    chars = _char_offsets(handle, raw, text, n)
    if chars is None:
        return []
    rect = raw.FS_RECTF()
    ref = ctypes.byref(rect)
    words: list[Word] = []
    # the word being built: its box so far, the last character's box, its first offset and
    # characters; kept in locals (this loop runs once per character of every page)
    chars_: list[str] = []
    wx0 = wy0 = wx1 = wy1 = 0.0
    px0 = py0 = px1 = py1 = 0.0
    first = last = 0
    get_box = raw.FPDFText_GetLooseCharBox  # font ascent to descent: one height for a line
    for i, j in chars:
        ch = text[j]
        if ch.isspace() or ch in "\ufffe\x02" or not get_box(handle, i, ref):
            if chars_:
                words.append(Word("".join(chars_), (wx0, wy0, wx1, wy1), first, last + 1))
                chars_ = []
            continue
        x0, x1, y0, y1 = rect.left, rect.right, rect.bottom, rect.top
        if x1 < x0:
            x0, x1 = x1, x0
        if y1 < y0:
            y0, y1 = y1, y0
        if chars_:
            h = max(1.0, py1 - py0, y1 - y0)
            cy = (y0 + y1) / 2
            if x0 - px1 > 0.25 * h or x0 < px0 - 0.5 * h or cy < py0 or cy > py1:
                # a gap with no space character, or a new line
                words.append(Word("".join(chars_), (wx0, wy0, wx1, wy1), first, last + 1))
                chars_ = []
        if chars_:
            chars_.append(ch)
            wx0, wy0, wx1, wy1 = min(wx0, x0), min(wy0, y0), max(wx1, x1), max(wy1, y1)
        else:
            chars_ = [ch]
            wx0, wy0, wx1, wy1 = x0, y0, x1, y1
            first = j
        px0, py0, px1, py1 = x0, y0, x1, y1
        last = j
    if chars_:
        words.append(Word("".join(chars_), (wx0, wy0, wx1, wy1), first, last + 1))
    return words


def _char_offsets(textpage: Any, raw: Any, text: str, n: int) -> list[tuple[int, int]] | None:
    """``(character index, offset in text)`` pairs. PDFium's text matches its character list one
    to one on almost every page; where it does not, it has left out control characters (NUL,
    ETX), matched here one by one."""
    if n == len(text):
        return list(enumerate(range(n)))
    out: list[tuple[int, int]] = []
    j = 0
    for i in range(n):
        u = raw.FPDFText_GetUnicode(textpage, i)
        if j < len(text) and ord(text[j]) == u:
            out.append((i, j))
            j += 1
        elif u < 0x20 and u not in (9, 10, 13):
            continue
        else:
            return None
    return out if j == len(text) else None


def _lines(words: list[Word]) -> list[Line]:
    """Words grouped into lines (vertical overlap), top to bottom, each left to right."""
    lines: list[Line] = []
    for w in sorted(words, key=lambda w: -w.cy):
        h = w.box[3] - w.box[1]
        for line in reversed(lines[-4:]):
            overlap = min(line.top, w.box[3]) - max(line.bottom, w.box[1])
            if overlap >= 0.5 * min(h, line.top - line.bottom):
                line.words.append(w)
                line.top, line.bottom = max(line.top, w.box[3]), min(line.bottom, w.box[1])
                break
        else:
            lines.append(Line([w], w.box[3], w.box[1]))
    for line in lines:
        line.words.sort(key=lambda w: w.box[0])
    lines.sort(key=lambda ln: -ln.top)
    return lines


# -- rules -----------------------------------------------------------------------------------


def _rules(layout: PageLayout, skip: list[Box]) -> tuple[list[list[float]], list[list[float]]]:
    """Horizontal rules ``[x0, x1, y]`` and vertical rules ``[y0, y1, x]``, snapped and joined."""
    hs: list[list[float]] = []
    vs: list[list[float]] = []
    for p in layout.paths:
        b = p.box
        if any(_inside(b, s) for s in skip):
            continue
        w, h = b[2] - b[0], b[3] - b[1]
        if p.kind == "line":
            if w >= h and w >= MIN_RULE:
                hs.append([b[0], b[2], (b[1] + b[3]) / 2])
            elif h > w and h >= MIN_RULE:
                vs.append([b[1], b[3], (b[0] + b[2]) / 2])
        elif (p.kind == "rect" or (p.kind == "ortho" and not p.filled)) and w >= MIN_RULE and h >= MIN_RULE:
            hs += [[b[0], b[2], b[1]], [b[0], b[2], b[3]]]  # a cell's box: its four sides
            vs += [[b[1], b[3], b[0]], [b[1], b[3], b[2]]]
    return _join(hs), _join(vs)


def _join(edges: list[list[float]]) -> list[list[float]]:
    """Rules on one line (within ``SNAP``) that overlap or touch, joined."""
    out: list[list[float]] = []
    for e in sorted(edges, key=lambda e: (e[2], e[0])):
        for o in reversed(out[-8:]):
            if abs(o[2] - e[2]) <= SNAP and e[0] <= o[1] + SNAP:
                o[1] = max(o[1], e[1])
                break
        else:
            out.append(list(e))
    return out


def _inside(b: Box, region: Box) -> bool:
    return b[0] >= region[0] - 1 and b[1] >= region[1] - 1 and b[2] <= region[2] + 1 and b[3] <= region[3] + 1


def _cluster_values(values: list[float], tol: float = SNAP) -> list[float]:
    out: list[float] = []
    for v in sorted(values):
        if out and v - out[-1] <= tol:
            continue
        out.append(v)
    return out


def _grid_tables(hs: list[list[float]], vs: list[list[float]], words: list[Word]) -> list[Table]:
    """Tables drawn as grids: clusters of crossing rules, at least 2 x 2 cells."""
    n = len(hs) + len(vs)
    parent = list(range(n))

    def find(i: int) -> int:
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    for i, h in enumerate(hs):
        for j, v in enumerate(vs):
            if h[0] - SNAP <= v[2] <= h[1] + SNAP and v[0] - SNAP <= h[2] <= v[1] + SNAP:
                a, b = find(i), find(len(hs) + j)
                if a != b:
                    parent[a] = b
    groups: dict[int, tuple[list[list[float]], list[list[float]]]] = {}
    for i in range(n):
        g = groups.setdefault(find(i), ([], []))
        if i < len(hs):
            g[0].append(hs[i])
        else:
            g[1].append(vs[i - len(hs)])
    tables = []
    for ghs, gvs in groups.values():
        if len(ghs) < 2 or len(gvs) < 2:
            continue
        table = _grid(ghs, gvs, words)
        if table is not None:
            tables.append(table)
    return tables


def _covered(edges: list[list[float]], at: float, lo: float, hi: float) -> bool:
    """Whether a rule on the line *at* covers most of ``[lo, hi]``."""
    return any(abs(e[2] - at) <= SNAP and min(e[1], hi) - max(e[0], lo) >= 0.5 * (hi - lo) for e in edges)


def _grid(hs: list[list[float]], vs: list[list[float]], words: list[Word]) -> Table | None:
    ys = _cluster_values([h[2] for h in hs])[::-1]  # top to bottom
    xs = _cluster_values([v[2] for v in vs])
    if (len(ys) < 3 and len(xs) < 3) or len(ys) < 2 or len(xs) < 2:
        return None  # one box: a frame around text, not a table
    nr, nc = len(ys) - 1, len(xs) - 1
    box = (xs[0], ys[-1], xs[-1], ys[0])
    inside = [w for w in words if box[0] <= w.cx <= box[2] and box[1] <= w.cy <= box[3]]
    if not inside:
        return None
    # cells with no rule between them are one (merged) cell
    ids = list(range(nr * nc))

    def find(i: int) -> int:
        while ids[i] != i:
            ids[i] = ids[ids[i]]
            i = ids[i]
        return i

    for r in range(nr):
        for c in range(nc):
            if c + 1 < nc and not _covered(vs, xs[c + 1], ys[r + 1], ys[r]):
                ids[find(r * nc + c + 1)] = find(r * nc + c)
            if r + 1 < nr and not _covered(hs, ys[r + 1], xs[c], xs[c + 1]):
                ids[find((r + 1) * nc + c)] = find(r * nc + c)
    texts: dict[int, list[Word]] = {}
    for w in inside:
        c = _index(xs, w.cx)
        r = _index([-y for y in ys], -w.cy)
        texts.setdefault(find(r * nc + c), []).append(w)
    cell_text = {k: _join_words(v) for k, v in texts.items()}
    roots = [[find(r * nc + c) for c in range(nc)] for r in range(nr)]
    rows = [[cell_text.get(k, "") for k in row] for row in roots]
    keep_r = [r for r in range(nr) if any(rows[r])]
    keep_c = [c for c in range(nc) if any(rows[r][c] for r in keep_r)]
    if len(keep_c) < 2 or len(keep_r) < 2:
        return None
    rows = [[rows[r][c] for c in keep_c] for r in keep_r]
    roots = [[roots[r][c] for c in keep_c] for r in keep_r]
    counts: dict[int, int] = {}
    for row in roots:
        for k in row:
            counts[k] = counts.get(k, 0) + 1
    merged = [[k if counts[k] > 1 else None for k in row] for row in roots]
    cells = len(rows) * len(keep_c)
    empty = sum(1 for k in counts if not cell_text.get(k))
    if sum(1 for row in merged for k in row if k is None) < 0.5 * cells or len(counts) < 3 or empty > 0.6 * len(counts):
        return None  # mostly one merged box: a page layout drawn with frames, not a table
    return Table(
        rows=rows,
        box=box,
        ranges=[(w.start, w.end) for w in inside],
        columns=[xs[c] for c in keep_c],
        ruled=True,
        merged=merged if any(k is not None for row in merged for k in row) else None,
    )


def _index(bounds: list[float], v: float) -> int:
    """The interval of the ascending *bounds* holding *v* (clamped to the first and last)."""
    for i in range(len(bounds) - 1):
        if v < bounds[i + 1]:
            return i
    return len(bounds) - 2


def _join_words(words: list[Word]) -> str:
    return " ".join(ln_w.text for ln in _lines(words) for ln_w in ln.words)


# -- aligned text ----------------------------------------------------------------------------


def _text_table(lines: list[Line], header_lines: int = 0, *, ruled: bool = False) -> Table | None:
    """A table from consecutive *lines* whose segments line up in columns (``None`` when they do
    not). The first *header_lines* lines (at least one) make the header row."""
    header_lines = max(1, header_lines)
    if len(lines) < (2 if ruled else MIN_ROWS):
        return None
    body = lines[header_lines:] or lines
    spans: list[list[float]] = []
    for line in body:
        for seg in line.segments():
            spans.append([seg[0].box[0], seg[-1].box[2]])
    spans.sort()
    cols: list[list[float]] = []
    for s in spans:
        if cols and s[0] <= cols[-1][1]:
            cols[-1][1] = max(cols[-1][1], s[1])
        else:
            cols.append(s)
    if len(cols) < MIN_COLS:
        return None
    bounds = [c[0] for c in cols[1:]]

    def column(w: Word) -> int:
        for i, b in enumerate(bounds):
            if w.cx < b:
                return i
        return len(bounds)

    grid: list[list[list[Word]]] = []
    for k, line in enumerate(lines):
        if k < header_lines and grid:
            target = grid[0]
        else:
            target = [[] for _ in cols]
            grid.append(target)
        for w in line.words:
            target[column(w)].append(w)
    rows = [[_join_words(cell) for cell in row] for row in grid]
    body_rows = rows[1:] or rows
    filled = sum(1 for row in body_rows for cell in row if cell)
    if filled < 0.6 * len(body_rows) * len(cols):
        return None
    if sum(1 for row in body_rows if sum(1 for cell in row if cell) >= 2) < 0.7 * len(body_rows):
        return None  # mostly one cell per line: text, not rows
    sizes = [len(cell.split()) for row in body_rows for cell in row if cell]
    if sum(sizes) > MAX_CELL_WORDS * filled or sum(1 for n in sizes if n >= 6) > 0.2 * filled:
        return None  # prose in page columns
    letters = [cell for row in body_rows for cell in row if len(cell) == 1 and not cell.isdigit()]
    if len(letters) > 0.3 * filled:
        return None  # letters one above the other: vertical text
    words = [w for line in lines for w in line.words]
    return Table(
        rows=rows,
        box=(
            min(w.box[0] for w in words),
            min(w.box[1] for w in words),
            max(w.box[2] for w in words),
            max(w.box[3] for w in words),
        ),
        ranges=[(w.start, w.end) for w in words],
        columns=[c[0] for c in cols],
        ruled=ruled,
    )


def _rule_tables(hs: list[list[float]], words: list[Word]) -> tuple[list[Table], set[int]]:
    """Tables bounded by horizontal rules only (booktabs, most journals): from a rule down to the
    last of the rules below it (as wide) with only table lines between them, no wide gap; the
    lines above the second rule are the header. Returns the tables and the ids of their words."""
    tables: list[Table] = []
    used: set[int] = set()
    rules = sorted(hs, key=lambda h: -h[2])
    consumed: set[int] = set()
    by_y = sorted(words, key=lambda w: w.cy)
    ys = [w.cy for w in by_y]
    for k, top in enumerate(rules):
        if k in consumed:
            continue
        x0, x1 = top[0] - SNAP, top[1] + SNAP
        stack = [
            j
            for j in range(k + 1, len(rules))
            if min(rules[j][1], top[1]) - max(rules[j][0], top[0]) >= 0.5 * (top[1] - top[0])
        ]
        if not stack:
            continue
        # only the words between this rule and the lowest rule under it can be in its table
        band = by_y[bisect.bisect_right(ys, rules[stack[-1]][2]) : bisect.bisect_left(ys, top[2])]
        mine = [w for w in band if id(w) not in used and x0 <= w.box[0] and w.box[2] <= x1]
        ends: list[int] = []
        prev_y = top[2]
        for j in stack:
            y = rules[j][2]
            between = _lines([w for w in mine if y < w.cy < prev_y])
            if between:
                h = statistics.median(ln.height for ln in between)
                gaps = [prev_y - between[0].top, between[-1].bottom - y]
                gaps += [a.bottom - b.top for a, b in itertools.pairwise(between)]
                if max(gaps) > ROW_GAP * h + 2 * SNAP:
                    break
            ends.append(j)
            prev_y = y
        for n in range(len(ends), 0, -1):
            bottom = rules[ends[n - 1]][2]
            inner = [w for w in mine if bottom < w.cy < top[2]]
            lines = _lines(inner)
            if len(lines) < 2:
                continue
            second = rules[ends[0]][2] if n > 1 else None
            header = sum(1 for ln in lines if second is not None and (ln.top + ln.bottom) / 2 > second)
            table = _text_table(lines, header, ruled=True)
            if table is None:
                continue
            table.box = (top[0], bottom, top[1], top[2])
            table.header_rows = max(1, header)
            tables.append(table)
            used.update(id(w) for w in inner)
            consumed.update(ends[:n])
            break
    return tables, used


def _text_tables(lines: list[Line]) -> list[Table]:
    """Runs of consecutive lines of two or more segments, aligned in columns."""
    tables: list[Table] = []
    run: list[Line] = []

    def close() -> None:
        if len(run) >= MIN_ROWS:
            t = _text_table(list(run))
            if t is not None:
                tables.append(t)
        run.clear()

    for line in lines:
        multi = len(line.segments()) >= 2
        if run and run[-1].bottom - line.top > ROW_GAP * run[-1].height:
            close()
        if multi:
            run.append(line)
        else:
            close()
    close()
    return tables


def find_tables(words: list[Word], layout: PageLayout | None, skip: list[Box] | None = None) -> list[Table]:
    """The tables on a page, top to bottom. *skip*: regions (figures) whose rules and words are
    not looked at."""
    skip = skip or []
    page = layout.box if layout is not None else None
    words = [
        w
        for w in words
        if not any(_inside(w.box, s) for s in skip) and (page is None or _inside_pt(w.cx, w.cy, page))
    ]
    if not words:
        return []
    hs, vs = _rules(layout, skip) if layout is not None and not layout.truncated else ([], [])
    tables = _grid_tables(hs, vs, words) if hs and vs else []
    taken = [t.box for t in tables]
    rest = [w for w in words if not any(_inside_pt(w.cx, w.cy, b) for b in taken)]
    if hs:
        free = [h for h in hs if not any(_inside((h[0], h[2], h[1], h[2]), b) for b in taken)]
        ruled, used = _rule_tables(free, rest)
        tables += ruled
        rest = [w for w in rest if id(w) not in used]
    tables += _text_tables(_lines(rest))
    tables.sort(key=lambda t: -t.box[3])
    return tables


def _inside_pt(x: float, y: float, b: Box) -> bool:
    return b[0] - 1 <= x <= b[2] + 1 and b[1] - 1 <= y <= b[3] + 1

