"""PDF reader on pypdfium2 (PDFium, Apache-2.0/BSD).

For each page: the text layer, chunked, with the page number and the bounding box (PDF points,
origin top-left) of each chunk; every embedded raster image (also inside form XObjects) at least
``min_image_size`` pixels on its shorter side, stored in the blob folder and OCR'd; and, for pages
without a text layer (scans), the page rendered and OCR'd into text chunks.

PDFium is not thread-safe: use one reader per process (the directory loader runs files in worker
processes, never threads).
"""

from __future__ import annotations

import io
import logging
import math
from pathlib import Path
from typing import Any

from .._optional import require
from ..errors import DecompressionBombError, InvalidInputError
from ..types import BBox
from ._base import BaseReader, ChunkBuilder

logger = logging.getLogger(__name__)

__all__ = ["PdfReader"]


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
            width, height = page.get_size()
            textpage = page.get_textpage()
            try:
                nchars = textpage.count_chars()
                raw_text = textpage.get_text_range() if nchars > 0 else ""
                text, offsets = _clean(raw_text)
                scanned = len(text.strip()) < cfg.min_page_chars
                if not scanned:
                    mapper = _bbox_mapper(textpage, raw_text, nchars, height)
                    out.add_text(
                        text,
                        page=i + 1,
                        bbox_of=lambda s, e: mapper(offsets[s], offsets[max(s, e - 1)] + 1),
                    )
            finally:
                textpage.close()
            if scanned and self.ocr is not None:
                self._ocr_page(page, i, width, height, out)
            if cfg.extract_images:
                self._images(page, i, width, height, scanned, out)
        finally:
            page.close()

    def _ocr_page(self, page: Any, i: int, width: float, height: float, out: ChunkBuilder) -> None:
        cfg = self.config
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
            return
        except self._pdfium.PdfiumError as exc:
            out.error(f"page {i + 1} render", exc)
            return
        if res is not None and res.text.strip():
            meta = {"ocr": True, "ocr_confidence": res.confidence, "render_scale": round(scale, 4)}
            out.add_text(res.text, page=i + 1, bbox_of=lambda s, e: (0.0, 0.0, width, height), metadata=meta)

    def _images(
        self, page: Any, i: int, width: float, height: float, scanned: bool, out: ChunkBuilder
    ) -> None:
        cfg = self.config
        objs = page.get_objects(filter=[self._raw.FPDF_PAGEOBJ_IMAGE], max_depth=8)
        for k, obj in enumerate(objs, start=1):
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
                left, bottom, right, top = obj.get_bounds()
                bbox: BBox = (
                    round(left, 2),
                    round(height - top, 2),
                    round(right, 2),
                    round(height - bottom, 2),
                )
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
            # On a scanned page the page OCR already read a full-page scan: do not read it twice.
            area = max(0.0, bbox[2] - bbox[0]) * max(0.0, bbox[3] - bbox[1])
            covers_page = area >= 0.5 * width * height
            out.add_image(
                data=buf.getvalue(),
                where=where,
                page=i + 1,
                bbox=bbox,
                ocr=not (scanned and covers_page),
                metadata={"pdf_filters": filters, "pixel_width": w, "pixel_height": h},
            )


def _clean(raw: str) -> tuple[str, list[int]]:
    """Normalise PDFium text (CRLF line ends, U+FFFE soft-hyphen marks, control characters) and
    return it with, for each kept character, its offset in *raw* (for bounding boxes)."""
    chars: list[str] = []
    offsets: list[int] = []
    for j, ch in enumerate(raw):
        if ch == "\r" or ch == "\ufffe" or ch == "\x02" or (ch < " " and ch not in "\n\t"):
            if ch == "\r" and not raw.startswith("\n", j + 1):
                chars.append("\n")
                offsets.append(j)
            continue
        chars.append(ch)
        offsets.append(j)
    offsets.append(len(raw))
    return "".join(chars), offsets


def _bbox_mapper(textpage: Any, text: str, nchars: int, page_height: float) -> Any:
    """Map character offsets of the page text to the union of PDFium's text rectangles.

    PDFium's text and its character list match one to one for almost all PDFs; when they do not,
    offsets are mapped proportionally (an approximate box rather than none)."""
    exact = len(text) == nchars
    ratio = nchars / max(1, len(text))

    def bbox_of(start: int, end: int) -> BBox | None:
        a, b = (start, end) if exact else (int(start * ratio), max(int(start * ratio) + 1, int(end * ratio)))
        try:
            n = textpage.count_rects(a, max(1, b - a))
            rects = [textpage.get_rect(j) for j in range(n)]
        except Exception:  # a box is a nicety: never lose the text over it
            return None
        if not rects:
            return None
        x0 = min(r[0] for r in rects)
        x1 = max(r[2] for r in rects)
        y_top = max(r[3] for r in rects)
        y_bottom = min(r[1] for r in rects)
        return (round(x0, 2), round(page_height - y_top, 2), round(x1, 2), round(page_height - y_bottom, 2))

    return bbox_of
