"""PPTX reader (python-pptx): each slide's text in reading order, tables, pictures, charts, notes.

Per slide (its number is the chunks' ``page``, its title their ``section``): the text frames in
reading order (top to bottom, then left to right; grouped shapes are recursed in their own order),
tables as Markdown table chunks with their header row (``metadata["table"]`` =
``{"header": [...], "rows": [[...], ...]}``), pictures as image chunks (OCR through the gate; alt
text from the shape's description), charts as their data (type, title, series, categories and
values as a table, ``metadata["chart"]``); content python-pptx does not know (newer chart types,
3D models) through the fallback text and picture the file holds for it
(``metadata["fallback_picture"] = True``); SmartArt diagrams as their text (the diagram's data
part, one node a line, where the diagram stands on the slide); then the speaker notes (``metadata["notes"] = True``).
Chunks of a hidden slide carry ``metadata["hidden"] = True``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .._optional import require
from ..errors import InvalidInputError
from ._base import BaseReader, ChunkBuilder, _ChunkLimitReached
from ._office import add_whole, check_package, markdown_table, pack_rows, table_metadata
from .spreadsheet import display

__all__ = ["PptxReader"]

_A = "http://schemas.openxmlformats.org/drawingml/2006/main"
_MC = "http://schemas.openxmlformats.org/markup-compatibility/2006"
_R = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_R_EMBED = f"{{{_R}}}embed"
_DGM = "http://schemas.openxmlformats.org/drawingml/2006/diagram"
_MAX_DEPTH = 50  # group nesting followed at most


class PptxReader(BaseReader):
    kind = "pptx"

    def __init__(self, config: Any = None, **options: Any) -> None:
        super().__init__(config, **options)
        self._pptx = require("pptx", extra="readers", package="python-pptx")

    def _read(self, path: Path, out: ChunkBuilder) -> None:
        check_package(path, self.config.max_unpacked_bytes, "PPTX")
        try:
            prs = self._pptx.Presentation(str(path))
            slides = list(prs.slides)
        except Exception as exc:  # KeyError, lxml errors, PackageNotFoundError ...
            raise InvalidInputError(
                f"not a readable PPTX file ({type(exc).__name__}: {exc})"[:300], source=str(path)
            ) from exc
        for n, slide in enumerate(slides, start=1):
            try:
                _Slide(self, slide, n, out).read()
            except _ChunkLimitReached:
                raise
            except Exception as exc:  # one broken slide: the others are still read
                out.error(f"slide {n}", InvalidInputError(f"slide {n} is not readable ({type(exc).__name__}: {exc})"[:300]))


def _order(shapes: Any) -> list[Any]:
    """Shapes top to bottom, then left to right (shapes without a position keep their order)."""
    return sorted(shapes, key=lambda s: (s.top if s.top is not None else 0, s.left if s.left is not None else 0))


class _Slide:
    def __init__(self, reader: PptxReader, slide: Any, number: int, out: ChunkBuilder) -> None:
        self.reader, self.slide, self.n, self.out = reader, slide, number, out
        title = slide.shapes.title
        self.title = " ".join(title.text_frame.text.split())[:200] if title is not None and title.has_text_frame else ""
        self.meta: dict[str, Any] = {"slide": number}
        if slide._element.get("show") in ("0", "false"):
            self.meta["hidden"] = True
        self.buf: list[str] = []
        self.n_pictures = 0

    def read(self) -> None:
        self._shapes(self.slide.shapes, 0)
        self.flush()
        if self.slide.has_notes_slide:
            frame = self.slide.notes_slide.notes_text_frame
            notes = frame.text.strip() if frame is not None else ""
            if notes:
                self.out.add_text(notes, page=self.n, section=self.title or None, metadata={**self.meta, "notes": True})

    def flush(self) -> None:
        text = "\n".join(self.buf).strip()
        self.buf.clear()
        if text:
            self.out.add_text(text, page=self.n, section=self.title or None, metadata=dict(self.meta))

    def _shapes(self, shapes: Any, depth: int) -> None:
        from pptx.enum.shapes import MSO_SHAPE_TYPE
        from pptx.shapes.picture import Picture

        for shape in _order(shapes):
            if shape.shape_type == MSO_SHAPE_TYPE.GROUP:
                if depth < _MAX_DEPTH:
                    self._shapes(shape.shapes, depth + 1)
            elif getattr(shape, "has_table", False) and shape.has_table:
                self.flush()
                self._table(shape.table)
            elif getattr(shape, "has_chart", False) and shape.has_chart:
                self.flush()
                self._chart(shape)
            elif isinstance(shape, Picture):
                self.flush()
                self._picture(shape)
            elif (text := self._smartart(shape)) is not None:
                if text:
                    self.buf.append(text)
            elif shape.has_text_frame:
                text = shape.text_frame.text.strip()
                if text:
                    self.buf.append(text)
        # content newer than python-pptx knows (charts such as waterfall, 3D models, ink) comes
        # wrapped in mc:AlternateContent, which it skips: read the fallback the producer stored
        for alt in shapes._spTree.iterchildren(f"{{{_MC}}}AlternateContent"):
            fallback = alt.find(f"{{{_MC}}}Fallback")
            if fallback is None:
                continue
            text = " ".join(t.text.strip() for t in fallback.iter(f"{{{_A}}}t") if t.text and t.text.strip())
            if text:
                self.buf.append(text)
            described = next((el for el in fallback.iter() if el.tag.endswith("}cNvPr")), None)
            for blip in fallback.iter(f"{{{_A}}}blip"):
                self.flush()
                alt_text = (described.get("descr") or described.get("title") or "") if described is not None else ""
                self._blip(blip, alt=alt_text, extra={"fallback_picture": True})

    def _smartart(self, shape: Any) -> str | None:
        """The text of a SmartArt diagram (its data part, related to the slide), one node a line
        in the diagram's order; ``None`` when *shape* is not one."""
        rel_ids = next(shape._element.iter(f"{{{_DGM}}}relIds"), None)
        if rel_ids is None:
            return None
        try:
            blob = self.slide.part.related_part(rel_ids.get(f"{{{_R}}}dm")).blob
            from lxml import etree

            root = etree.fromstring(blob, etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False))
        except Exception as exc:  # a missing or damaged diagram part: the slide's other text stays
            self.out.error(f"slide {self.n} diagram", InvalidInputError(f"SmartArt not readable ({type(exc).__name__})"))
            return ""
        lines = []
        for pt in root.iter(f"{{{_DGM}}}pt"):
            if pt.get("type") not in (None, "node"):
                continue  # transitions, parent/sibling bookkeeping points
            for p in pt.iter(f"{{{_A}}}p"):
                line = " ".join(" ".join(t.text.split()) for t in p.iter(f"{{{_A}}}t") if t.text and t.text.strip())
                if line:
                    lines.append(line)
        return "\n".join(lines)

    def _add_table(self, header: list[str], rows: list[list[str]], meta: dict[str, Any], title: str = "") -> None:
        prefix = f"{title}\n\n" if title else ""
        size = max(1, self.reader.config.chunk_size - len(prefix))
        for first, end, text in pack_rows(header, rows, size) if rows else [(0, 0, markdown_table(header, []))]:
            add_whole(
                self.out,
                prefix + text,
                page=self.n,
                section=self.title or None,
                metadata=table_metadata(header, rows[first:end], **meta),
            )

    def _table(self, table: Any) -> None:
        grid: list[list[str]] = []
        for r, row in enumerate(table.rows):
            cells: list[str] = []
            for c, cell in enumerate(row.cells):
                if cell.is_spanned:  # covered by a merged cell: repeat its value
                    cells.append(_origin_text(table, r, c, grid))
                else:
                    cells.append(" ".join(cell.text.split()))
            grid.append(cells)
        grid = [row for row in grid if any(row)]
        if grid:
            self._add_table(grid[0], grid[1:], dict(self.meta))

    def _chart(self, shape: Any) -> None:
        chart = shape.chart
        title = ""
        if chart.has_title and chart.chart_title.has_text_frame:
            title = " ".join(chart.chart_title.text_frame.text.split())
        kind = getattr(chart.chart_type, "name", None) or str(chart.chart_type)
        kind = kind.lower().replace("_", " ")
        categories: list[str] = []
        series: list[dict[str, Any]] = []
        for plot in chart.plots:
            if not categories:
                categories = [display(c) for c in plot.categories]
            for s in plot.series:
                series.append({"name": s.name or f"series {len(series) + 1}", "values": [display(v) for v in s.values]})
        length = max([len(categories), *(len(s["values"]) for s in series)], default=0)
        categories += [str(i + 1) for i in range(len(categories), length)]
        header = ["category", *(s["name"] for s in series)]
        rows = [[cat, *(s["values"][i] if i < len(s["values"]) else "" for s in series)] for i, cat in enumerate(categories)]
        head = f"Chart ({kind})" + (f": {title}" if title else "")
        meta = {**self.meta, "chart": {"type": kind, "title": title, "categories": categories, "series": series}}
        self._add_table(header, rows, meta, head)

    def _picture(self, shape: Any) -> None:
        self.n_pictures += 1
        where = f"slide {self.n} picture {self.n_pictures}"
        try:
            blob = shape.image.blob
        except Exception as exc:  # a linked (external) or missing picture
            self.out.error(where, InvalidInputError(f"picture not readable ({type(exc).__name__}: {exc})"[:200]))
            return
        self.out.add_image(
            data=blob, where=where, page=self.n, section=self.title or None, alt_text=_alt(shape), metadata=dict(self.meta)
        )

    def _blip(self, blip: Any, *, alt: str, extra: dict[str, Any]) -> None:
        self.n_pictures += 1
        where = f"slide {self.n} picture {self.n_pictures}"
        rid = blip.get(_R_EMBED)
        try:
            blob = self.slide.part.related_part(rid).blob if rid else None
        except (KeyError, AttributeError):
            blob = None
        if blob is None:
            self.out.error(where, InvalidInputError("picture refers to a missing or external image part"))
            return
        self.out.add_image(
            data=blob, where=where, page=self.n, section=self.title or None, alt_text=alt, metadata={**self.meta, **extra}
        )


def _alt(shape: Any) -> str:
    """The shape's description (alt text), else its title attribute."""
    for el in shape._element.iter():
        if el.tag.endswith("}cNvPr"):
            return el.get("descr") or el.get("title") or ""
    return ""


def _origin_text(table: Any, r: int, c: int, grid: list[list[str]]) -> str:
    """Text of the merged cell that covers ``(r, c)``: the nearest origin up or to the left."""
    for rr in range(r, -1, -1):
        for cc in range(c, -1, -1):
            cell = table.cell(rr, cc)
            if cell.is_merge_origin and rr + cell.span_height > r and cc + cell.span_width > c:
                return " ".join(cell.text.split())
    return ""
