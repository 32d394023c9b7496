"""PDF reader on pypdfium2 (PDFium, Apache-2.0/BSD).

For each page:

* the text layer, chunked, with the page number and the bounding box (PDF points, origin top-left
  of the displayed page) of each chunk;
* every embedded raster image (also inside form XObjects) at least ``min_image_size`` pixels on its
  shorter side, stored in the blob folder and OCR'd;
* every vector figure (a chart or diagram drawn with path objects, most matplotlib, Excel and
  TikZ output): rendered, stored and OCR'd like an embedded image, captioned with the nearby
  "Figure n ..." text (metadata ``vector_figure``);
* tables (ruled, or aligned text; :mod:`._tables`) as table chunks: Markdown (HTML where cells
  merge) under their "Table n" caption, the header row repeated in every chunk, rows kept whole,
  ``metadata["table"]`` = ``{"header": [...], "rows": [[...], ...]}``; a table continued on the
  next page keeps its header (``metadata["continued"]``). The table's words are left out of the
  page's text chunks (indexed once);
* OCR of the rendered page where the text layer is missing, tiny (fewer than ``min_page_chars``
  characters: a scan) or garbled (a bad earlier OCR, a font without a usable encoding; see
  :mod:`._text_quality`): the OCR text replaces a garbled layer when it reads better.

A page's text is read once: an image covering most of the page is not OCR'd when the page text
already holds its text, either an OCR layer over the scan (invisible text, or text drawn under the
image) or a text layer drawn over a background picture; images that are not full-page (figures with
labels) are OCR'd unless an invisible OCR layer covers them.

PDFium is not thread-safe: use one reader per process (the directory loader runs files in worker
processes, never threads).
"""

from __future__ import annotations

import bisect
import dataclasses
import io
import logging
import math
from pathlib import Path
from typing import Any

from .._optional import require
from ..errors import DecompressionBombError, InvalidInputError
from ..types import BBox
from ._base import BaseReader, ChunkBuilder
from ._office import add_table
from ._pdf_layout import Box, PageGeometry, PageLayout, collect, figure_regions, find_caption
from ._tables import TABLE_CAPTION, Table, find_tables, page_words
from ._text_quality import TextQuality, assess

logger = logging.getLogger(__name__)

__all__ = ["PdfReader"]

#: An image covering this share of the page is a full-page image (a scan, a background).
FULL_PAGE = 0.5
#: Visible text-layer characters over a full-page image that make the page's text: the picture
#: is a background (its own text, if any, is what the layer says) and is not OCR'd.
COVERED_CHARS = 200
#: Render resolution of vector figures.
FIGURE_DPI = 150
#: Longest text-layer label text kept on a vector figure (metadata ``labels``).
MAX_LABEL_CHARS = 2000
#: Pages with more path objects than this are not searched for vector figures (hostile input).
MAX_FIGURE_PATHS = 50_000
#: A table ending in this bottom share of a page, and one starting in this top share of the
#: next with the same columns, are one table continued.
PAGE_EDGE = 0.3


class PdfReader(BaseReader):
    """Read PDFs into text chunks and image chunks. Options: see :class:`ReaderConfig`
    (``password`` for encrypted files, ``min_image_size``, ``ocr``, ``scanned_dpi`` ...)."""

    kind = "pdf"

    def __init__(self, config: Any = None, **options: Any) -> None:
        super().__init__(config, **options)
        self._pdfium = require("pypdfium2", extra="readers")
        self._raw = require("pypdfium2.raw", extra="readers", package="pypdfium2")

    def _open(self, path: Path) -> Any:
        if path.stat().st_size == 0:
            raise InvalidInputError("PDF file is empty (0 bytes)", source=str(path))
        try:
            return self._pdfium.PdfDocument(str(path), password=self.config.password)
        except self._pdfium.PdfiumError as exc:
            msg = str(exc)
            if "password" in msg.lower():
                reason = (
                    "PDF is encrypted and the password is wrong"
                    if self.config.password
                    else "PDF is encrypted (password-protected); pass password=... to read it"
                )
                raise InvalidInputError(reason, source=str(path)) from exc
            raise InvalidInputError(f"not a readable PDF ({msg})", source=str(path)) from exc

    def _empty_reason(self, out: ChunkBuilder) -> str:
        hint = "" if self.ocr is not None else " (pages without a text layer need ocr=True)"
        return super()._empty_reason(out) + hint

    def _read(self, path: Path, out: ChunkBuilder) -> None:
        doc = self._open(path)
        self._last_table: tuple[int, Table, float] | None = None  # (page index, table, page height)
        try:
            n = len(doc)
            if n == 0:
                raise InvalidInputError("PDF has no pages", source=str(path))
            for i in range(n):
                try:
                    self._page(doc, i, out)
                except (self._pdfium.PdfiumError, InvalidInputError, ValueError, OSError) as exc:
                    out.error(f"page {i + 1}", exc)
        finally:
            doc.close()

    def _page(self, doc: Any, i: int, out: ChunkBuilder) -> None:
        cfg = self.config
        page = doc[i]
        try:
            geo = PageGeometry(page, self._raw)
            textpage = page.get_textpage()
            try:
                nchars = textpage.count_chars()
                raw_text = textpage.get_text_range() if nchars > 0 else ""
                text, offsets = _clean(raw_text)
                tabular = len(text.strip()) >= cfg.min_page_chars
                layout = self._layout(page, textpage, i, out) if cfg.extract_images or tabular else None
                boxes = _text_boxes(textpage, raw_text, nchars)

                def span_box(s: int, e: int) -> Box | None:
                    return boxes(offsets[s], offsets[max(s, e - 1)] + 1)

                regions = self._regions(layout, i, out) if layout is not None else []
                tables = self._tables(textpage, raw_text, layout, regions, i, geo, out) if tabular else []
                page_ocr = self._page_text(page, i, text, layout, geo, span_box, out, tables, raw_text)
                if layout is not None and cfg.extract_images:
                    self._images(i, layout, geo, page_ocr, out)
                    self._figures(page, textpage, i, layout, regions, geo, text, span_box, out)
            finally:
                textpage.close()
        finally:
            page.close()

    def _layout(self, page: Any, textpage: Any, i: int, out: ChunkBuilder) -> PageLayout | None:
        try:
            return collect(page, self._raw, textpage, max_paths=MAX_FIGURE_PATHS)
        except Exception as exc:  # PDFium raises many types on hostile content streams
            out.error(f"page {i + 1} layout", InvalidInputError(f"cannot list page objects ({exc})"[:300]))
            return None

    def _regions(self, layout: PageLayout, i: int, out: ChunkBuilder) -> list[Box]:
        if not layout.paths or layout.truncated:
            return []
        try:
            return figure_regions(layout)
        except Exception as exc:  # a nicety: never lose the page over it
            out.error(f"page {i + 1} figures", InvalidInputError(f"cannot find figures ({exc})"[:300]))
            return []

    # -- tables --------------------------------------------------------------------------------
    def _tables(
        self,
        textpage: Any,
        raw_text: str,
        layout: PageLayout | None,
        regions: list[Box],
        i: int,
        geo: PageGeometry,
        out: ChunkBuilder,
    ) -> list[Table]:
        """The page's tables, a table continued from the previous page joined to its header.
        A detector failure costs the tables, never the page's text (one warning)."""
        try:
            tables = find_tables(page_words(textpage, self._raw, raw_text), layout, regions)
        except Exception as exc:  # any bug or hostile geometry: the page is read as plain text
            out.error(
                f"page {i + 1} tables",
                InvalidInputError(f"cannot find tables ({type(exc).__name__}: {exc}); page read as plain text"[:300]),
            )
            return []
        last, self._last_table = self._last_table, None
        if tables and last is not None and last[0] == i - 1:
            _join_continued(last[1], last[2], tables[0], geo.height)
        if tables:
            self._last_table = (i, tables[-1], geo.height)
        return tables

    def _add_tables(
        self, i: int, tables: list[Table], text: str, span_box: Any, geo: PageGeometry, out: ChunkBuilder
    ) -> None:
        for table in tables:
            region = table.box

            def line_box(s: int, e: int, region: Box = region) -> Box | None:
                box = span_box(s, e)
                inside = box is not None and region[1] <= (box[1] + box[3]) / 2 <= region[3]
                return None if inside else box

            caption = table.extra.get("caption") or find_caption(
                region, text, line_box, pattern=TABLE_CAPTION, above_first=True
            )
            table.extra["caption"] = caption  # a continuation on the next page keeps it
            header, rows = table.rows[0], table.rows[1:]
            meta: dict[str, Any] = {"ruled": table.ruled}
            if table.extra.get("continued"):
                meta["continued"] = True
            add_table(
                out,
                header,
                rows,
                merged=table.merged,
                caption=caption,
                meta=meta,
                page=i + 1,
                bbox=geo.rect(region),
            )

    # -- text ----------------------------------------------------------------------------------
    def _page_text(
        self,
        page: Any,
        i: int,
        text: str,
        layout: PageLayout | None,
        geo: PageGeometry,
        span_box: Any,
        out: ChunkBuilder,
        tables: list[Table] | None = None,
        raw_text: str = "",
    ) -> bool:
        """Index the page's text: the text layer, or OCR of the rendered page where the layer is
        missing, tiny or garbled. Returns whether the page was OCR'd (its images then are not)."""
        cfg = self.config
        chars = len(text.strip())
        meta: dict[str, Any] = {}
        if layout is not None and chars and layout.invisible_chars >= 0.5 * chars:
            meta["ocr_layer"] = True  # invisible text: an earlier OCR over a scan
        if chars < cfg.min_page_chars:  # no text layer to speak of: a scan
            if self.ocr is not None:
                res, scale = self._ocr_page(page, i, geo, out)
                if res is not None:
                    self._add_ocr_text(res, scale, i, geo, out)
            return True
        kept, offsets = (_clean(raw_text, drop=_table_chars(raw_text, tables)) if tables else (text, []))
        # judged without the tables: cells of numbers and codes read as junk words to it; a page
        # that is all table is taken as it reads
        quality = assess(kept if len(kept.strip()) >= 50 else text)
        if tables and len(kept.strip()) < 50:
            quality = dataclasses.replace(quality, garbled=False)
        if quality.garbled:
            if self.ocr is not None:
                res, scale = self._ocr_page(page, i, geo, out)
                if res is not None and _reads_better(assess(res.text), quality):
                    logger.info(
                        "%s page %d: garbled text layer (%s) replaced by OCR",
                        out.source,
                        i + 1,
                        quality.reason,
                    )
                    self._add_ocr_text(res, scale, i, geo, out, replaced=quality)
                    return True
            meta["garbled_text_layer"] = quality.reason
            tables = None  # cells read from a garbled layer are garbled too
        if not tables:
            out.add_text(
                text, page=i + 1, bbox_of=lambda s, e: _display(geo, span_box(s, e)), metadata=meta or None
            )
            return False
        # the text around the tables, each table where it starts in the text; the tables' words
        # are left out of the text (indexed once, in the table chunks)
        _full, full_offsets = _clean(raw_text)
        back = {o: k for k, o in enumerate(full_offsets)}

        def full_box(s: int, e: int) -> Box | None:  # offsets in *kept* -> box
            return span_box(back.get(offsets[s], 0), back.get(offsets[max(s, e - 1)], 0) + 1)

        cuts = sorted(
            ((_bisect(offsets, min(r[0] for r in t.ranges)), k) for k, t in enumerate(tables)),
        )
        start = 0
        for cut, k in cuts:
            piece = kept[start:cut]
            if piece.strip():
                out.add_text(
                    piece,
                    page=i + 1,
                    bbox_of=lambda s, e, b=start: _display(geo, full_box(s + b, e + b)),
                    metadata=meta or None,
                )
            self._add_tables(i, [tables[k]], text, span_box, geo, out)
            start = max(start, cut)
        if kept[start:].strip():
            out.add_text(
                kept[start:],
                page=i + 1,
                bbox_of=lambda s, e, b=start: _display(geo, full_box(s + b, e + b)),
                metadata=meta or None,
            )
        return False

    def _ocr_page(self, page: Any, i: int, geo: PageGeometry, out: ChunkBuilder) -> tuple[Any, float]:
        cfg = self.config
        width, height = geo.width, geo.height
        scale = cfg.scanned_dpi / 72.0
        if width * height * scale * scale > cfg.max_render_pixels:
            scale = math.sqrt(cfg.max_render_pixels / (width * height))
        try:
            bitmap = page.render(scale=scale, grayscale=True)
            image = bitmap.to_pil()
            assert self.ocr is not None
            res = self.ocr.recognize(image, source=f"{out.source} (page {i + 1})")
        except InvalidInputError as exc:
            out.error(f"page {i + 1} OCR", exc)
            return None, scale
        except self._pdfium.PdfiumError as exc:
            out.error(f"page {i + 1} render", exc)
            return None, scale
        if res is None or not res.text.strip():
            return None, scale
        return res, scale

    def _add_ocr_text(
        self,
        res: Any,
        scale: float,
        i: int,
        geo: PageGeometry,
        out: ChunkBuilder,
        replaced: TextQuality | None = None,
    ) -> None:
        meta: dict[str, Any] = {
            "ocr": True,
            "ocr_confidence": res.confidence,
            "render_scale": round(scale, 4),
        }
        if replaced is not None:
            meta["replaced_text_layer"] = replaced.reason
        full = (0.0, 0.0, round(geo.width, 2), round(geo.height, 2))
        out.add_text(res.text, page=i + 1, bbox_of=lambda s, e: full, metadata=meta)

    # -- raster images -------------------------------------------------------------------------
    def _images(
        self, i: int, layout: PageLayout, geo: PageGeometry, page_ocr: bool, out: ChunkBuilder
    ) -> None:
        cfg = self.config
        page_area = geo.width * geo.height
        for k, img in enumerate(layout.images, start=1):
            obj = img.obj
            where = f"page {i + 1} image {k}"
            try:
                w, h = obj.get_px_size()
                if min(w, h) < cfg.min_image_size:
                    out.skipped_small += 1
                    continue
                if cfg.max_image_pixels is not None and w * h > cfg.max_image_pixels:
                    raise DecompressionBombError(
                        f"embedded image is {w}x{h} pixels, over the limit of {cfg.max_image_pixels:,}",
                        source=out.source,
                    )
                bbox = geo.rect(img.box)
                buf = io.BytesIO()
                obj.extract(buf, fb_format="png")
                filters = list(obj.get_filters())
            except InvalidInputError as exc:
                out.error(where, exc)
                continue
            except Exception as exc:  # PDFium/Pillow raise many types on hostile streams
                out.error(
                    where, InvalidInputError(f"cannot extract image ({type(exc).__name__}: {exc})"[:300])
                )
                continue
            meta: dict[str, Any] = {"pdf_filters": filters, "pixel_width": w, "pixel_height": h}
            full_page = (bbox[2] - bbox[0]) * (bbox[3] - bbox[1]) >= FULL_PAGE * page_area
            hidden, visible = layout.text_over(img.box, behind=img.index if full_page else None)
            ocr = True
            if full_page and page_ocr:
                ocr = False  # the page OCR read it
            elif hidden >= cfg.min_page_chars:
                ocr, meta["ocr_skipped"] = False, "an OCR text layer covers it"
            elif full_page and visible >= COVERED_CHARS:
                ocr, meta["ocr_skipped"] = False, "the page's text layer covers it"
            out.add_image(data=buf.getvalue(), where=where, page=i + 1, bbox=bbox, ocr=ocr, metadata=meta)

    # -- vector figures ------------------------------------------------------------------------
    def _figures(
        self,
        page: Any,
        textpage: Any,
        i: int,
        layout: PageLayout,
        regions: list[Box],
        geo: PageGeometry,
        text: str,
        span_box: Any,
        out: ChunkBuilder,
    ) -> None:
        cfg = self.config
        for k, region in enumerate(regions, start=1):
            where = f"page {i + 1} figure {k}"
            bbox = geo.rect(region)
            x0, y0, x1, y1 = bbox
            if x1 - x0 < 1 or y1 - y0 < 1:
                continue
            scale = FIGURE_DPI / 72.0
            if (x1 - x0) * (y1 - y0) * scale * scale > cfg.max_render_pixels:
                scale = math.sqrt(cfg.max_render_pixels / ((x1 - x0) * (y1 - y0)))
            try:
                bitmap = page.render(scale=scale, crop=(x0, geo.height - y1, geo.width - x1, y0))
                image = bitmap.to_pil().convert("RGB")
                extrema = image.getextrema()
                if max(hi for _lo, hi in extrema) - min(lo for lo, _hi in extrema) < 16:
                    continue  # nothing visible (clipped away, white on white)
                buf = io.BytesIO()
                image.save(buf, format="PNG", optimize=False, compress_level=3)
            except Exception as exc:  # PDFium/Pillow raise many types on hostile streams
                out.error(
                    where, InvalidInputError(f"cannot render figure ({type(exc).__name__}: {exc})"[:300])
                )
                continue
            caption = find_caption(region, text, span_box) if text else ""
            meta: dict[str, Any] = {
                "vector_figure": True,
                "render_scale": round(scale, 4),
                "pixel_width": image.width,
                "pixel_height": image.height,
            }
            # Labels drawn as text are read from the text layer, exactly and at no cost; only a
            # figure with no text there (labels drawn as outlines, or none) is OCR'd.
            labels = " ".join(_bounded_text(textpage, region).split())
            if labels:
                meta["labels"] = labels[:MAX_LABEL_CHARS]
                meta["ocr_skipped"] = "its labels are in the text layer"
            out.add_image(
                data=buf.getvalue(),
                where=where,
                page=i + 1,
                bbox=bbox,
                caption=caption,
                ocr=not labels,
                metadata=meta,
            )


def _bounded_text(textpage: Any, box: Box) -> str:
    try:
        return str(textpage.get_text_bounded(box[0], box[1], box[2], box[3]))
    except Exception:  # labels are a nicety
        return ""


def _reads_better(ocr: TextQuality, layer: TextQuality) -> bool:
    """Whether the OCR of a page whose text layer is garbled is worth replacing the layer with."""
    return ocr.tokens >= 3 and (not ocr.garbled or ocr.score > layer.score + 0.2)


def _display(geo: PageGeometry, box: Box | None) -> BBox | None:
    return None if box is None else geo.rect(box)


def _clean(raw: str, drop: bytearray | None = None) -> tuple[str, list[int]]:
    """Normalise PDFium text (CRLF line ends, U+FFFE soft-hyphen marks, control characters) and
    return it with, for each kept character, its offset in *raw* (for bounding boxes). *drop*
    marks characters of *raw* to leave out (the words of tables)."""
    chars: list[str] = []
    offsets: list[int] = []
    for j, ch in enumerate(raw):
        if drop is not None and drop[j]:
            continue
        if ch == "\r" or ch == "\ufffe" or ch == "\x02" or (ch < " " and ch not in "\n\t"):
            if ch == "\r" and not raw.startswith("\n", j + 1):
                chars.append("\n")
                offsets.append(j)
            continue
        chars.append(ch)
        offsets.append(j)
    offsets.append(len(raw))
    return "".join(chars), offsets


def _table_chars(raw: str, tables: list[Table]) -> bytearray:
    """A mask of the characters of *raw* that belong to the tables: their words, and the spaces
    and line breaks between two of their words."""
    drop = bytearray(len(raw))
    for t in tables:
        for a, b in t.ranges:
            drop[a:b] = b"\x01" * (b - a)
    j = 0
    n = len(raw)
    while j < n:
        if raw[j].isspace() and j > 0 and drop[j - 1]:
            k = j
            while k < n and raw[k].isspace():
                k += 1
            if k < n and drop[k]:
                drop[j:k] = b"\x01" * (k - j)
            j = k
        else:
            j += 1
    return drop


def _bisect(offsets: list[int], raw_pos: int) -> int:
    """The index in the cleaned text of the first kept character at or after *raw_pos*."""
    return min(bisect.bisect_left(offsets, raw_pos), max(0, len(offsets) - 1))


def _join_continued(prev: Table, prev_height: float, table: Table, height: float) -> None:
    """Join *table*, first on its page, to *prev*, last on the page before, when it continues it:
    *prev* ends low on its page, *table* starts high on its own, with the same columns. A
    continued table whose first row is not the header again gets *prev*'s header."""
    if prev.box[1] > PAGE_EDGE * prev_height or table.box[3] < (1 - PAGE_EDGE) * height:
        return
    if len(table.rows[0]) != len(prev.rows[0]) or len(table.columns) != len(prev.columns):
        return
    if any(abs(a - b) > 15.0 for a, b in zip(table.columns, prev.columns, strict=False)):
        return
    table.extra["continued"] = True
    if table.rows[0] != prev.rows[0]:
        table.rows = [list(prev.rows[0]), *table.rows]
        if table.merged is not None:
            table.merged = [[None] * len(prev.rows[0]), *table.merged]
    caption = prev.extra.get("caption")
    if caption:
        table.extra["caption"] = caption


def _text_boxes(textpage: Any, text: str, nchars: int) -> Any:
    """Map character offsets of the page text to the union of PDFium's text rectangles (page
    space: PDF points, origin bottom-left).

    PDFium's text and its character list match one to one for almost all PDFs; when they do not,
    offsets are mapped proportionally (an approximate box rather than none)."""
    exact = len(text) == nchars
    ratio = nchars / max(1, len(text))

    def box_of(start: int, end: int) -> Box | None:
        a, b = (start, end) if exact else (int(start * ratio), max(int(start * ratio) + 1, int(end * ratio)))
        try:
            n = textpage.count_rects(a, max(1, b - a))
            rects = [textpage.get_rect(j) for j in range(n)]
        except Exception:  # a box is a nicety: never lose the text over it
            return None
        if not rects:
            return None
        return (
            min(r[0] for r in rects),
            min(r[1] for r in rects),
            max(r[2] for r in rects),
            max(r[3] for r in rects),
        )

    return box_of
