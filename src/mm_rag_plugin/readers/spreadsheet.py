"""Spreadsheets: XLSX/XLSM (openpyxl) and CSV/TSV (:mod:`csv`), each sheet read as a table.

A sheet's empty rows and columns are dropped; its first row is the header (with the rows below a
merged header cell folded into it while they hold only text), and its rows are chunked as Markdown
tables that repeat the header, rows kept whole. Each chunk's ``metadata["table"]`` holds
``{"header": [...], "rows": [[...], ...]}``; ``section`` is the sheet name. Cells read as Excel
displays them: formulas as their cached values (a formula saved without one reads empty), dates
as ISO dates, numbers without float noise (``3.0`` -> ``3``), percentages when the number format
says so; merged cells repeat their value over the merged range.

Before any cell is read, a workbook is refused from its declared sizes: a zip part inflating past
``max_unpacked_bytes`` (zip bomb), a sheet declaring more than ``max_sheet_cells`` cells. Small
workbooks (worksheet XML up to ``FULL_MODE_BYTES``) are opened in openpyxl's full mode, which
knows merged ranges; larger ones in read-only mode (streamed, about half the time and a fraction
of the memory), merged ranges found by a scan of the sheet XML. Pictures (image chunks) and charts
(their data as a table: a category column, one column per series, ``metadata["chart"]``) are read
from the drawing parts of the package in either mode (:mod:`._ooxml_drawings`).
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import re
import warnings
import zipfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from .._optional import require
from ..errors import InvalidInputError
from ._base import BaseReader, ChunkBuilder
from ._office import KeepWhole, add_whole, check_package, markdown_table, pack_rows, table_metadata
from ._ooxml_drawings import Picture, chart_rows, sheet_drawings

__all__ = ["CsvReader", "XlsxReader"]

#: Worksheet XML (declared, inflated bytes, all sheets) up to which a workbook is opened in full
#: mode. Measured on 10-column sheets: 2,000 rows (0.85 MB) read in 0.27 s read-only and 0.35 s
#: full; 20,000 rows (8.8 MB) in 2.9 s and 5.0 s.
FULL_MODE_BYTES = 5_000_000
#: Rows below a merged header cell folded into the header at most.
MAX_HEADER_ROWS = 3
_MERGE = re.compile(rb"<(?:\w+:)?mergeCell\s+ref=\"([A-Z]{1,3}\d{1,7}):([A-Z]{1,3}\d{1,7})\"")
_PERCENT_DECIMALS = re.compile(r"0\.(0+)\s*%")


class _SheetTooBig(Exception):
    pass


def _cells_reason(name: str, cells: int, limit: int, declared: bool) -> str:
    what = "declares" if declared else "holds over"
    return (
        f"sheet {name[:100]!r} {what} {cells:,} cells, over the limit of {limit:,} (max_sheet_cells): "
        "sheet not read"
    )


def format_number(value: float) -> str:
    """A float as a person would write it: ``3.0`` -> ``"3"``, ``0.1 + 0.2`` -> ``"0.3"``."""
    if value != value or value in (float("inf"), float("-inf")):
        return str(value)
    if value.is_integer() and abs(value) < 1e16:
        return str(int(value))
    return f"{value:.15g}"


def display(value: Any, number_format: str | None = None) -> str:
    """A cell value as text, as Excel shows it (ISO dates, no float noise, percentages)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, dt.datetime):
        if value.time() == dt.time(0):
            return value.date().isoformat()
        return value.isoformat(sep=" ", timespec="minutes" if value.second == 0 else "seconds")
    if isinstance(value, (dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, (int, float)):
        if number_format and "%" in number_format:
            m = _PERCENT_DECIMALS.search(number_format)
            return f"{value * 100:.{len(m.group(1)) if m else 0}f}%"
        return str(value) if isinstance(value, int) else format_number(value)
    return " ".join(str(value).split())


def _col(letters: bytes) -> int:
    n = 0
    for ch in letters:
        n = n * 26 + ch - 64
    return n


def _ref(ref: bytes) -> tuple[int, int]:
    """``(row, column)`` of a cell reference such as ``b"B12"``."""
    m = re.match(rb"([A-Z]+)(\d+)", ref)
    assert m is not None
    return int(m.group(2)), _col(m.group(1))


class _Table:
    """A sheet's cells as text, with the sheet row number of each row (1-based) and its merged
    ranges ``(min_row, min_col, max_row, max_col)``."""

    def __init__(self, rows: list[list[str]], merged: Iterable[tuple[int, int, int, int]] = ()) -> None:
        self.rows = rows
        self.merged = list(merged)

    def resolve(self) -> tuple[list[str], list[list[str]], list[int]] | None:
        """``(header, rows, sheet row numbers of rows)`` with merged values spread, empty rows
        and columns dropped; ``None`` for an empty sheet."""
        grid = self.rows
        h_merged_rows: set[int] = set()
        width = max((len(row) for row in grid), default=0)
        for r0, c0, r1, c1 in self.merged:
            if r0 > len(grid) or r0 < 1 or c0 < 1 or c0 > width:
                continue
            c1 = min(c1, width)  # a range declared far past the cells spreads no further than them
            top = grid[r0 - 1]
            value = top[c0 - 1] if c0 - 1 < len(top) else ""
            if c1 > c0:
                h_merged_rows.add(r0)
            for r in range(r0, min(r1, len(grid)) + 1):
                row = grid[r - 1]
                if len(row) < c1:
                    row.extend([""] * (c1 - len(row)))
                for c in range(c0, c1 + 1):
                    row[c - 1] = value
        keep = [i for i, row in enumerate(grid) if any(row)]
        if not keep:
            return None
        width = max(len(grid[i]) for i in keep)
        cols = [c for c in range(width) if any(c < len(grid[i]) and grid[i][c] for i in keep)]
        table = [[grid[i][c] if c < len(grid[i]) else "" for c in cols] for i in keep]
        numbers = [i + 1 for i in keep]
        header, n = list(table[0]), 1
        # a merged group header over sub-headers ("Sales" over "Q1 | Q2"): fold the text rows below
        while n < min(len(table), MAX_HEADER_ROWS) and numbers[n - 1] in h_merged_rows and _all_text(table[n]):
            header = [a if a == b or not b else f"{a} {b}".strip() for a, b in zip(header, table[n], strict=True)]
            n += 1
        return header, table[n:], numbers[n:]


def _all_text(row: Sequence[str]) -> bool:
    return all(not c or not re.fullmatch(r"[-+]?[\d.,%\s]+", c) for c in row)


def _add_table(
    out: ChunkBuilder, table: _Table, size: int, *, section: str | None, meta: dict[str, Any]
) -> None:
    resolved = table.resolve()
    if resolved is None:
        return
    header, rows, numbers = resolved
    if not rows:
        out.add_text(markdown_table(header, []), section=section, metadata=table_metadata(header, [], **meta))
        return
    for first, end, text in pack_rows(header, rows, size):
        out.add_text(
            text,
            section=section,
            metadata=table_metadata(header, rows[first:end], first_row=numbers[first], last_row=numbers[end - 1], **meta),
        )


class XlsxReader(BaseReader):
    kind = "xlsx"

    def __init__(self, config: Any = None, **options: Any) -> None:
        super().__init__(config, **options)
        self._openpyxl = require("openpyxl", extra="readers")
        self.splitter = KeepWhole()  # chunks are cut between rows here, never inside one

    def _read(self, path: Path, out: ChunkBuilder) -> None:
        infos = check_package(path, self.config.max_unpacked_bytes, "XLSX")
        sheet_bytes = sum(i.file_size for i in infos if i.filename.startswith("xl/worksheets/"))
        limit = self.config.max_sheet_cells
        try:
            with zipfile.ZipFile(path) as zf:
                self._drawings = sheet_drawings(zf)
        except Exception as exc:  # a damaged drawing or chart part: the cells are still read
            self._drawings = {}
            out.error("drawings", InvalidInputError(f"pictures and charts not readable ({type(exc).__name__}: {exc})"[:300]))
        with warnings.catch_warnings(), path.open("rb") as fh:  # openpyxl warns of what it drops
            warnings.simplefilter("ignore")
            wb = self._open(fh, path, read_only=True)
            try:
                too_big: set[str] = set()
                for ws in wb.worksheets:  # the declared dimension, read before any cell
                    if ws.max_row and ws.max_column and ws.max_row * ws.max_column > limit:
                        too_big.add(ws.title)
                        out.error(
                            f"sheet {ws.title[:100]!r}",
                            InvalidInputError(_cells_reason(ws.title, ws.max_row * ws.max_column, limit, True)),
                        )
                if sheet_bytes > FULL_MODE_BYTES:
                    for ws in wb.worksheets:
                        if ws.title not in too_big:
                            ws.reset_dimensions()  # a wrong declared size must not cut the sheet
                            self._sheet(ws, out, lambda ws=ws: self._scan_merges(path, ws._worksheet_path))
                    return
            finally:
                wb.close()
            fh.seek(0)
            wb = self._open(fh, path, read_only=False)
            try:
                for ws in wb.worksheets:
                    if ws.title not in too_big:
                        self._sheet(ws, out, lambda ws=ws: [(r.min_row, r.min_col, r.max_row, r.max_col) for r in ws.merged_cells.ranges])
            finally:
                wb.close()

    def _open(self, fh: Any, path: Path, *, read_only: bool) -> Any:
        try:  # a file object: openpyxl refuses names without an Excel extension
            return self._openpyxl.load_workbook(fh, read_only=read_only, data_only=True)
        except Exception as exc:  # KeyError, lxml/ElementTree errors, InvalidFileException ...
            raise InvalidInputError(
                f"not a readable XLSX file ({type(exc).__name__}: {exc})"[:300], source=str(path)
            ) from exc

    def _sheet(self, ws: Any, out: ChunkBuilder, merges: Any) -> None:
        name = ws.title
        limit = self.config.max_sheet_cells
        rows: list[list[str]] = []
        cells = 0
        try:
            for row in ws.iter_rows(min_row=1, min_col=1):
                cells += len(row)
                if cells > limit:
                    raise _SheetTooBig
                rows.append([display(c.value, getattr(c, "number_format", None)) for c in row])
            table = _Table(rows, merges())
        except _SheetTooBig:
            out.error(f"sheet {name[:100]!r}", InvalidInputError(_cells_reason(name, limit, limit, False)))
            return
        except Exception as exc:  # a damaged sheet part: the other sheets are still read
            out.error(
                f"sheet {name[:100]!r}",
                InvalidInputError(f"sheet {name[:100]!r} is not readable ({type(exc).__name__}: {exc})"[:300]),
            )
            return
        meta: dict[str, Any] = {"sheet": name}
        if getattr(ws, "sheet_state", "visible") != "visible":
            meta["hidden"] = True
        _add_table(out, table, self.config.chunk_size, section=name, meta=meta)
        self._drawn(name, meta, out)

    def _drawn(self, name: str, meta: dict[str, Any], out: ChunkBuilder) -> None:
        """The sheet's pictures as image chunks and its charts as tables of their data."""
        n_pic = n_chart = 0
        for item in self._drawings.get(name, []):
            anchor = (
                {"anchor": f"{self._openpyxl.utils.get_column_letter(item.anchor[1] + 1)}{item.anchor[0] + 1}"}
                if item.anchor is not None
                else {}
            )
            if isinstance(item, Picture):
                n_pic += 1
                where = f"sheet {name[:100]!r} image {n_pic}"
                if item.data is None:
                    out.error(where, InvalidInputError("picture refers to a missing or external image part"))
                    continue
                out.add_image(data=item.data, where=where, section=name, alt_text=item.alt, metadata={**meta, **anchor})
                continue
            n_chart += 1
            header, rows = chart_rows(item)
            head = f"Chart ({item.kind})" + (f": {item.title}" if item.title else "")
            chart = {"type": item.kind, "title": item.title, "categories": item.categories, "series": item.series}
            size = max(1, self.config.chunk_size - len(head) - 2)
            for first, end, text in pack_rows(header, rows, size) if rows else [(0, 0, markdown_table(header, []))]:
                add_whole(
                    out,
                    f"{head}\n\n{text}",
                    section=name,
                    metadata=table_metadata(header, rows[first:end], **meta, **anchor, chart=chart),
                )

    @staticmethod
    def _scan_merges(path: Path, part: str) -> list[tuple[int, int, int, int]]:
        """Merged ranges of a sheet, found in its XML (read-only mode does not parse them)."""
        found: set[tuple[int, int, int, int]] = set()
        with zipfile.ZipFile(path) as zf, zf.open(part.lstrip("/")) as fh:
            tail = b""
            while piece := fh.read(1 << 20):
                window = tail + piece
                for m in _MERGE.finditer(window):
                    (r0, c0), (r1, c1) = _ref(m.group(1)), _ref(m.group(2))
                    found.add((r0, c0, r1, c1))
                tail = window[-200:]
        return sorted(found)


class CsvReader(BaseReader):
    """CSV and TSV: decoded by BOM, else UTF-8, else Windows-1252; the dialect sniffed."""

    kind = "csv"

    def __init__(self, config: Any = None, **options: Any) -> None:
        super().__init__(config, **options)
        self.splitter = KeepWhole()

    def _read(self, path: Path, out: ChunkBuilder) -> None:
        size = path.stat().st_size
        if size > self.config.max_unpacked_bytes:
            raise InvalidInputError(
                f"CSV file is {size:,} bytes, over the limit of {self.config.max_unpacked_bytes:,} "
                "(max_unpacked_bytes)",
                source=str(path),
            )
        try:
            text = decode(path.read_bytes())
        except InvalidInputError as exc:
            raise InvalidInputError(exc.reason, source=str(path)) from None
        sample = text[:16384]  # the sniffer's regular expressions are slow on long samples
        if "\n" in sample:
            sample = sample[: sample.rindex("\n")]  # whole lines only
        try:
            dialect: Any = csv.Sniffer().sniff(sample, delimiters=",;\t|")
        except csv.Error:
            dialect = "excel-tab" if path.suffix.lower() == ".tsv" else "excel"
        if path.suffix.lower() == ".tsv" and "\t" in sample.split("\n", 1)[0]:
            dialect = "excel-tab"
        limit = self.config.max_sheet_cells
        rows: list[list[str]] = []
        cells = 0
        reader = csv.reader(io.StringIO(text, newline=""), dialect)
        try:
            for row in reader:
                cells += len(row)
                if cells > limit:
                    raise InvalidInputError(_cells_reason(path.name, limit, limit, False), source=str(path))
                rows.append([" ".join(c.split()) for c in row])
        except csv.Error as exc:
            raise InvalidInputError(f"malformed CSV at line {reader.line_num}: {exc}"[:300], source=str(path)) from exc
        _add_table(out, _Table(rows), self.config.chunk_size, section=None, meta={})


def decode(data: bytes) -> str:
    """Text of a CSV file: by its BOM (UTF-8, UTF-16), else UTF-8, else Windows-1252 (Excel's
    export on Western Windows), else Latin-1."""
    for bom, codec in ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            try:
                return data.decode(codec)
            except UnicodeDecodeError as exc:
                raise InvalidInputError(f"not valid {codec.upper()} text after its byte-order mark ({exc.reason})") from exc
    if b"\x00" in data[:8192]:
        raise InvalidInputError("file looks binary (NUL bytes), not CSV text")
    for codec in ("utf-8", "cp1252"):
        try:
            return data.decode(codec)
        except UnicodeDecodeError:
            continue
    return data.decode("latin-1")
