"""DOCX reader (python-docx): paragraphs and tables in body order, inline images.

Headings (``Heading N`` / ``Title`` styles) start a new section; tables become text, one row per
line with cells joined by `` | ``; inline pictures become image chunks (alt text from the
picture's description) placed where they occur.
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path
from typing import Any

from .._optional import require
from ..errors import InvalidInputError
from ._base import BaseReader, ChunkBuilder

__all__ = ["DocxReader"]

_NS = {
    "w": "http://schemas.openxmlformats.org/wordprocessingml/2006/main",
    "a": "http://schemas.openxmlformats.org/drawingml/2006/main",
    "r": "http://schemas.openxmlformats.org/officeDocument/2006/relationships",
    "wp": "http://schemas.openxmlformats.org/drawingml/2006/wordprocessingDrawing",
}
_R_EMBED = f"{{{_NS['r']}}}embed"
_HEADING = re.compile(r"^(?:heading\s*(\d)|title)$", re.I)


class DocxReader(BaseReader):
    kind = "docx"

    def __init__(self, config: Any = None, **options: Any) -> None:
        super().__init__(config, **options)
        self._docx = require("docx", extra="readers", package="python-docx")

    def _read(self, path: Path, out: ChunkBuilder) -> None:
        self._check_sizes(path)
        try:
            document = self._docx.Document(str(path))
        except Exception as exc:  # BadZipFile, KeyError, lxml errors, PackageNotFoundError ...
            raise InvalidInputError(
                f"not a readable DOCX file ({type(exc).__name__}: {exc})"[:300], source=str(path)
            ) from exc
        from docx.table import Table
        from docx.text.paragraph import Paragraph

        headings: list[tuple[int, str]] = []
        buf: list[str] = []
        n_images = 0

        def section() -> str | None:
            return " > ".join(t for _, t in headings) or None

        def flush() -> None:
            text = "\n".join(buf).strip()
            buf.clear()
            if text:
                out.add_text(text, section=section())

        body = document.element.body
        for el in body.iterchildren():
            tag = el.tag.rsplit("}", 1)[-1]
            if tag == "p":
                para = Paragraph(el, document)
                style = (para.style.name if para.style is not None else "") or ""
                m = _HEADING.match(style.strip())
                text = para.text
                if m and text.strip():
                    flush()
                    level = int(m.group(1)) if m.group(1) else 0
                    while headings and headings[-1][0] >= level:
                        headings.pop()
                    headings.append((level, text.strip()[:200]))
                    buf.append(text.strip() + "\n")
                else:
                    buf.append(text)
                for blip in el.iter(f"{{{_NS['a']}}}blip"):
                    n_images += 1
                    flush()
                    self._image(document, blip, el, n_images, section(), out)
            elif tag == "tbl":
                table = Table(el, document)
                rows = []
                for row in table.rows:
                    cells: list[str] = []
                    for cell in row.cells:
                        t = cell.text.strip()
                        if not cells or cells[-1] != t:  # merged cells repeat their text
                            cells.append(t)
                    rows.append(" | ".join(cells))
                buf.append("\n" + "\n".join(rows) + "\n")
        flush()

    def _check_sizes(self, path: Path) -> None:
        """Refuse zip bombs before anything is inflated: a part (``word/document.xml`` ...) whose
        declared size is over ``max_unpacked_bytes``, or parts summing to over four times that.
        The sizes cannot be understated: :mod:`zipfile` stops at the declared size (and the CRC
        check then fails)."""
        limit = self.config.max_unpacked_bytes
        try:
            with zipfile.ZipFile(path) as zf:
                infos = zf.infolist()
        except (zipfile.BadZipFile, OSError, ValueError) as exc:
            raise InvalidInputError(f"not a readable DOCX file ({type(exc).__name__}: {exc})"[:300], source=str(path)) from exc
        total = 0
        for info in infos:
            total += info.file_size
            if info.file_size > limit or total > 4 * limit:
                raise InvalidInputError(
                    f"DOCX part {info.filename[:100]!r} inflates to {info.file_size:,} bytes "
                    f"({total:,} so far), over the limit of {limit:,} (max_unpacked_bytes): "
                    "refused as a possible zip bomb",
                    source=str(path),
                )

    def _image(
        self, document: Any, blip: Any, para_el: Any, n: int, section: str | None, out: ChunkBuilder
    ) -> None:
        rid = blip.get(_R_EMBED)
        where = f"image {n}"
        part = document.part.related_parts.get(rid) if rid else None
        if part is None:
            out.error(where, InvalidInputError("picture refers to a missing or external image part"))
            return
        alt = ""
        for doc_pr in para_el.iter(f"{{{_NS['wp']}}}docPr"):
            alt = doc_pr.get("descr") or doc_pr.get("title") or ""
            break
        out.add_image(data=part.blob, where=where, section=section, alt_text=alt)
