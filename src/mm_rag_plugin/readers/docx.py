"""DOCX reader (python-docx): paragraphs and tables in body order, inline images.

Headings (``Heading N`` / ``Title`` styles) start a new section; tables become table chunks like
every reader's (Markdown, HTML where cells merge, the header row repeated in each chunk, rows kept
whole, the "Table n" caption paragraph just above or below, ``metadata["table"]`` with the rows,
a merged cell's text repeated over the cells it covers); inline pictures become image chunks (alt
text from the picture's description) placed where they occur.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .._optional import require
from ..errors import InvalidInputError
from ._base import BaseReader, ChunkBuilder, _ChunkLimitReached
from ._office import add_table, check_package
from ._tables import TABLE_CAPTION

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
        check_package(path, self.config.max_unpacked_bytes, "DOCX")
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
        n_images = n_tables = 0

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
                n_tables += 1
                caption = _caption(el.getprevious(), document, Paragraph) or _caption(
                    el.getnext(), document, Paragraph
                )
                flush()
                try:
                    _table(Table(el, document), caption, section(), out)
                except _ChunkLimitReached:
                    raise
                except Exception as exc:  # one broken table: the rest of the document is read
                    out.error(
                        f"table {n_tables}",
                        InvalidInputError(f"table not readable ({type(exc).__name__}: {exc})"[:300]),
                    )
        flush()

    def _image(
        self, document: Any, blip: Any, para_el: Any, n: int, section: str | None, out: ChunkBuilder
    ) -> None:
        rid = blip.get(_R_EMBED) or blip.get(f"{{{_NS['r']}}}link")
        rel = document.part.rels.get(rid) if rid else None
        if rel is None:
            what = f"a missing image part ({rid[:40]!r})" if rid else "no image part"
            out.error(f"image {n}", InvalidInputError(f"picture refers to {what}"))
            return
        where = f"image {n} {str(rel.target_ref)[:80]!r}"  # names the image part (or link) in errors
        if rel.is_external:
            out.error(where, InvalidInputError("picture links to an external image, which is not read"))
            return
        part = rel.target_part
        alt = ""
        for doc_pr in para_el.iter(f"{{{_NS['wp']}}}docPr"):
            alt = doc_pr.get("descr") or doc_pr.get("title") or ""
            break
        out.add_image(data=part.blob, where=where, section=section, alt_text=alt)


def _caption(el: Any, document: Any, paragraph: Any) -> str:
    """The text of *el* when it is a "Table n ..." caption paragraph."""
    if el is None or el.tag.rsplit("}", 1)[-1] != "p":
        return ""
    text = " ".join(paragraph(el, document).text.split())
    return text[:400] if TABLE_CAPTION.match(text) else ""


def _table(table: Any, caption: str, section: str | None, out: ChunkBuilder) -> None:
    """A table as table chunks; merged cells (``gridSpan``, ``vMerge``) become HTML spans."""
    ids: dict[Any, int] = {}
    grid: list[list[str]] = []
    keys: list[list[int]] = []
    for row in table.rows:
        texts, ks = [], []
        for cell in row.cells:
            k = ids.setdefault(cell._tc, len(ids))  # a merged cell: one element, met again
            texts.append(" ".join(cell.text.split()))
            ks.append(k)
        grid.append(texts)
        keys.append(ks)
    keep = [r for r, row in enumerate(grid) if any(row)]
    if not keep:
        return
    width = max(len(grid[r]) for r in keep)
    grid = [grid[r] + [""] * (width - len(grid[r])) for r in keep]
    keys = [keys[r] + [-1 - c for c in range(len(keys[r]), width)] for r in keep]
    counts: dict[int, int] = {}
    for row in keys:
        for k in row:
            counts[k] = counts.get(k, 0) + 1
    merged = [[k if counts[k] > 1 else None for k in row] for row in keys]
    has_merged = any(k is not None for row in merged for k in row)
    add_table(
        out,
        grid[0],
        grid[1:],
        merged=merged if has_merged else None,
        caption=caption,
        section=section,
    )
