"""What the Office readers (PPTX, XLSX, CSV) share: package checks made before any part is
inflated, and tables rendered as Markdown chunks that repeat their header row (HTML where cells
merge; the PDF and DOCX readers render their tables the same way)."""

from __future__ import annotations

import html
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from ..errors import InvalidInputError
from .chunking import Span, TextSplitter

__all__ = [
    "KeepWhole",
    "add_table",
    "add_whole",
    "check_package",
    "html_table",
    "markdown_table",
    "pack_rows",
    "table_metadata",
]

OLE_MAGIC = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTED = "EncryptedPackage".encode("utf-16-le")
_SCAN_BYTES = 64_000_000  # OLE files up to this size are searched whole for the encryption stream


def check_package(path: Path, max_unpacked: int, label: str) -> list[zipfile.ZipInfo]:
    """The zip entries of the OOXML package at *path*, after refusing what must not be opened:
    an encrypted (password-protected) package, which is an OLE file, not a zip; a legacy binary
    Office file; a damaged zip; and zip bombs, from the declared sizes (a part over
    *max_unpacked* bytes, or parts summing to over four times that). The declared sizes cannot be
    understated: :mod:`zipfile` stops at the declared size (and the CRC check then fails)."""
    with path.open("rb") as fh:
        head = fh.read(len(OLE_MAGIC))
    if head == OLE_MAGIC:
        if _is_encrypted_ole(path):
            raise InvalidInputError(
                f"password-protected (encrypted {label}): remove the password and save it again to index it",
                source=str(path),
            )
        raise InvalidInputError(
            f"a legacy binary Office file (OLE), not {label}: save it as {label} to index it", source=str(path)
        )
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise InvalidInputError(
            f"not a readable {label} file (truncated or damaged zip: {exc})"[:300], source=str(path)
        ) from exc
    check_unpacked(path, infos, max_unpacked, label)
    return infos


def check_unpacked(path: Path, infos: Any, max_unpacked: int, label: str) -> None:
    """Refuse a zip bomb from its declared sizes: a part over *max_unpacked* bytes, or parts
    summing to over four times that (:mod:`zipfile` never inflates past a declared size)."""
    total = 0
    for info in infos:
        total += info.file_size
        if info.file_size > max_unpacked or total > 4 * max_unpacked:
            raise InvalidInputError(
                f"{label} part {info.filename[:100]!r} inflates to {info.file_size:,} bytes "
                f"({total:,} so far), over the limit of {max_unpacked:,} (max_unpacked_bytes): "
                "refused as a possible zip bomb",
                source=str(path),
            )


def _is_encrypted_ole(path: Path) -> bool:
    """Whether the OLE file holds an ``EncryptedPackage`` stream (its name is in a directory
    sector, stored UTF-16; searched in the whole file, or its two ends when very large)."""
    size = path.stat().st_size
    with path.open("rb") as fh:
        if size <= _SCAN_BYTES:
            return _ENCRYPTED in fh.read()
        head = fh.read(_SCAN_BYTES // 2)
        fh.seek(size - _SCAN_BYTES // 2)
        return _ENCRYPTED in head or _ENCRYPTED in fh.read()


def _cell(text: str) -> str:
    return " ".join(text.split()).replace("|", "\\|")


def _line(cells: Sequence[str]) -> str:
    return "| " + " | ".join(_cell(c) for c in cells) + " |"


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table (each cell on one line, ``|`` escaped)."""
    return "\n".join([_line(header), "|" + " --- |" * len(header), *(_line(r) for r in rows)])


def html_table(
    header: Sequence[str], rows: Sequence[Sequence[str]], merged: Sequence[Sequence[Any]] | None = None
) -> str:
    """An HTML table whose merged cells span their rows and columns. *merged* gives, per cell of
    ``[header, *rows]``, the id of the merged cell covering it (``None``: a cell of its own);
    a merged cell is drawn once, at its top-left, with ``rowspan``/``colspan``."""
    grid = [list(header), *(list(r) for r in rows)]
    ids = [list(m) for m in merged] if merged is not None else [[None] * len(r) for r in grid]
    out = ["<table>"]
    done: set[tuple[int, int]] = set()
    for r, row in enumerate(grid):
        tag = "th" if r == 0 else "td"
        cells = []
        for c, text in enumerate(row):
            if (r, c) in done:
                continue
            key = ids[r][c] if c < len(ids[r]) else None
            cs = rs = 1
            if key is not None:
                while c + cs < len(row) and c + cs < len(ids[r]) and ids[r][c + cs] == key:
                    cs += 1
                while r + rs < len(grid) and c < len(ids[r + rs]) and ids[r + rs][c] == key:
                    rs += 1
                done.update((r + i, c + j) for i in range(rs) for j in range(cs))
            span = (f' rowspan="{rs}"' if rs > 1 else "") + (f' colspan="{cs}"' if cs > 1 else "")
            cells.append(f"<{tag}{span}>{html.escape(' '.join(text.split()))}</{tag}>")
        out.append("<tr>" + "".join(cells) + "</tr>")
    out.append("</table>")
    return "\n".join(out)


def pack_rows(
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    size: int,
    merged: Sequence[Sequence[Any]] | None = None,
) -> Iterator[tuple[int, int, str]]:
    """``(first, end, text)`` per chunk of ``rows[first:end]``: consecutive rows, each chunk
    under the header, up to *size* characters; a row is never cut (one row longer than *size*
    is a chunk of its own). Markdown, or HTML (:func:`html_table`) when *merged* is given."""

    def render(first: int, end: int) -> str:
        if merged is None:
            return markdown_table(header, rows[first:end])
        return html_table(header, rows[first:end], [merged[0], *merged[1 + first : 1 + end]])

    head = len(render(0, 0))
    first, used = 0, head
    for i, row in enumerate(rows):
        n = len(_line(row)) + 1 if merged is None else len(render(i, i + 1)) - head + 1
        if i > first and used + n > size:
            yield first, i, render(first, i)
            first, used = i, head
        used += n
    if first < len(rows):
        yield first, len(rows), render(first, len(rows))


def add_whole(out: Any, text: str, **fields: Any) -> None:
    """``out.add_text`` without splitting *text* (a table chunk already cut between rows)."""
    reader = out.reader
    splitter, reader.splitter = reader.splitter, KeepWhole()
    try:
        out.add_text(text, **fields)
    finally:
        reader.splitter = splitter


class KeepWhole(TextSplitter):
    """A splitter that keeps a text whole (for chunks already cut to size, such as tables)."""

    def __init__(self) -> None:
        super().__init__(chunk_size=1, chunk_overlap=0)

    def split_spans(self, text: str) -> list[Span]:
        stripped = text.strip()
        if not stripped:
            return []
        start = text.index(stripped[0])
        return [Span(stripped, start, start + len(stripped))]


def table_metadata(header: Sequence[str], rows: Sequence[Sequence[str]], **extra: Any) -> dict[str, Any]:
    return {"table": {"header": list(header), "rows": [list(r) for r in rows]}, **extra}


def add_table(
    out: Any,
    header: Sequence[str],
    rows: Sequence[Sequence[str]],
    *,
    merged: Sequence[Sequence[Any]] | None = None,
    caption: str = "",
    meta: dict[str, Any] | None = None,
    **fields: Any,
) -> None:
    """Add a table as chunks of whole rows under its header (and its caption, when it has one):
    Markdown, or HTML when cells merge; ``metadata["table"]`` holds each chunk's rows (a merged
    cell's text repeated over the cells it covers). *fields*: ``page``, ``section``, ``bbox``."""
    prefix = f"{caption}\n\n" if caption else ""
    extra = dict(meta or {})
    if caption:
        extra["caption"] = caption
    size = max(1, out.reader.config.chunk_size - len(prefix))
    bbox = fields.pop("bbox", None)
    if bbox is not None:
        fields["bbox_of"] = lambda s, e: bbox
    parts = list(pack_rows(header, rows, size, merged)) if rows else [(0, 0, "")]
    for first, end, text in parts:
        if not rows:
            text = markdown_table(header, []) if merged is None else html_table(header, [], merged[:1])
        add_whole(out, prefix + text, metadata=table_metadata(header, rows[first:end], **extra), **fields)
