"""(image, text) pairs to fine-tune on: from a JSONL or CSV file, or from an existing index.

A pairs file holds one pair per line (JSONL: ``{"image": "imgs/a.png", "text": "..."}``) or per
row (CSV/TSV with a header naming an image column, ``image`` / ``image_path`` / ``filepath``, and
a text column, ``text`` / ``caption`` / ``title``). Relative image paths are relative to the file.

From an index, every image chunk gives pairs with its own words: its caption (figure captions of
PDFs), its alt text, and optionally its OCR text; an image with none of those is paired with the
text chunk next to it in the same document (before it, else after it): weak supervision, marked
``origin="context"``. :func:`dump_pairs` writes any pairs as JSONL, the format :func:`load_pairs`
reads, so they can be looked at (and edited) before training.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .._jsonl import json_lines, kind_of, parse_json, read_text
from ..errors import InvalidInputError
from ..ids import file_sha256

__all__ = ["ORIGINS", "Pair", "dump_pairs", "load_pairs", "pairs_from_index", "pairs_hash"]

#: Where a pair's text came from.
ORIGINS = ("file", "caption", "alt_text", "ocr_text", "context")

_IMAGE_KEYS = ("image", "image_path", "filepath", "path")
_TEXT_KEYS = ("text", "caption", "title")
#: Missing image files named in an error before the rest are counted.
_SHOWN = 5


@dataclass(frozen=True, slots=True)
class Pair:
    """An image (a file path) and a text that describes it."""

    image: str
    text: str
    origin: str = "file"  # one of ORIGINS
    source: str = ""  # the document the image came from (pairs from an index)


def _pick(row: dict[str, Any], keys: Sequence[str]) -> Any:
    for k in keys:
        if row.get(k) not in (None, ""):
            return row[k]
    return None


def load_pairs(path: str | os.PathLike[str]) -> list[Pair]:
    """Read pairs from a JSONL file (or one JSON array of the same objects) or a CSV/TSV file
    (``.csv``, ``.tsv``). Raises :class:`InvalidInputError` naming the file and the line of a
    malformed row (or of the first byte that is not UTF-8), and naming the image files that do not
    exist."""
    file = Path(path)
    if not file.is_file():
        raise InvalidInputError("pairs file not found", source=str(file))
    rows = _csv_rows(file) if file.suffix.lower() in (".csv", ".tsv") else _json_rows(file)
    return _resolve(file, rows)


def _csv_rows(file: Path) -> list[tuple[str, dict[str, Any]]]:
    content = read_text(file)
    sample = content[:4096]
    delimiter = "\t" if file.suffix.lower() == ".tsv" or sample.count("\t") > sample.count(",") else ","
    reader = csv.DictReader(io.StringIO(content, newline=""), delimiter=delimiter)
    rows: list[tuple[str, dict[str, Any]]] = []
    try:
        header = [h.strip().lower() for h in reader.fieldnames or []]
        if not any(k in header for k in _IMAGE_KEYS) or not any(k in header for k in _TEXT_KEYS):
            raise InvalidInputError(
                f"the header must name an image column ({', '.join(_IMAGE_KEYS)}) and a text column "
                f"({', '.join(_TEXT_KEYS)}); got {header}"[:300],
                source=str(file),
            )
        for raw in reader:  # line_num: the line the row ends on (a quoted field may span lines)
            rows.append((f"line {reader.line_num}", {(k or "").strip().lower(): v for k, v in raw.items()}))
    except csv.Error as exc:  # a field over the size limit, a NUL byte ...
        raise InvalidInputError(f"line {reader.line_num}: not a readable CSV row ({exc})", source=str(file)) from None
    return rows


def _json_rows(file: Path) -> list[tuple[str, dict[str, Any]]]:
    content = read_text(file)
    rows: list[tuple[str, dict[str, Any]]] = []
    expected = '{"image": "...", "text": "..."}'
    if content.lstrip().startswith("["):  # one JSON array of the same objects
        data = parse_json(content, None, file)
        if not isinstance(data, list):
            raise InvalidInputError(f"expected a list of {expected}, got {kind_of(data)}", source=str(file))
        for n, row in enumerate(data, 1):
            if not isinstance(row, dict):
                raise InvalidInputError(f"item {n}: expected {expected}, got {kind_of(row)}", source=str(file))
            rows.append((f"item {n}", row))
    else:
        for n, row in json_lines(file, content):
            if not isinstance(row, dict):
                raise InvalidInputError(f"line {n}: expected {expected}, got {kind_of(row)}", source=str(file))
            rows.append((f"line {n}", row))
    return rows


def _resolve(file: Path, rows: list[tuple[str, dict[str, Any]]]) -> list[Pair]:
    base = file.resolve().parent
    pairs: list[Pair] = []
    missing: list[str] = []
    for where, row in rows:
        image, text = _pick(row, _IMAGE_KEYS), _pick(row, _TEXT_KEYS)
        if not isinstance(image, str) or not isinstance(text, str) or not text.strip():
            raise InvalidInputError(
                f"{where}: needs an image path and a non-empty text (got {kind_of(image)} and {kind_of(text)})",
                source=str(file),
            )
        try:
            image_path = Path(image).expanduser()
            if not image_path.is_absolute():
                image_path = base / image_path
            found = image_path.is_file()
        except (OSError, ValueError, RuntimeError) as exc:  # a NUL byte, a name too long, an unknown ~user
            raise InvalidInputError(f"{where}: unusable image path ({exc})"[:300], source=str(file)) from None
        if not found:
            missing.append(str(image_path)[:300])
        origin = row.get("origin") if row.get("origin") in ORIGINS else "file"
        source = row.get("source")
        pairs.append(Pair(str(image_path), text.strip(), str(origin), source if isinstance(source, str) else ""))
    if missing:
        more = f" and {len(missing) - _SHOWN} more" if len(missing) > _SHOWN else ""
        raise InvalidInputError(
            f"{len(missing)} image files not found: {', '.join(missing[:_SHOWN])}{more}", source=str(file)
        )
    if not pairs:
        raise InvalidInputError("no pairs in the file", source=str(file))
    return pairs


def dump_pairs(pairs: Iterable[Pair], path: str | os.PathLike[str]) -> int:
    """Write *pairs* as JSONL (absolute image paths), the format :func:`load_pairs` reads; returns
    how many were written."""
    n = 0
    tmp = Path(f"{os.fspath(path)}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        for p in pairs:
            row = asdict(p)
            row["image"] = os.path.abspath(p.image)
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
            n += 1
    os.replace(tmp, path)
    return n


def pairs_hash(pairs: Iterable[Pair]) -> str:
    """SHA-256 of the pairs' contents (image bytes and texts, in any order): the same data gives
    the same hash wherever the files are."""
    rows = sorted(f"{file_sha256(p.image)}\x1f{p.text}" for p in pairs)
    h = hashlib.sha256()
    for r in rows:
        h.update(r.encode("utf-8", "surrogatepass") + b"\n")
    return h.hexdigest()


def pairs_from_index(
    index: Any,
    *,
    captions: bool = True,
    alt_text: bool = True,
    ocr_text: bool = False,
    context: bool = True,
) -> list[Pair]:
    """Pairs from the image chunks of *index* (a :class:`~mm_rag_plugin.MultiModalIndex` or an
    index folder, opened without its model): one per caption, alt text and (``ocr_text=True``) OCR
    text of each image; with ``context`` an image that has none of those is paired with the text
    chunk just before it in its document (else just after it)."""
    from ..retrievers.index import MultiModalIndex

    if isinstance(index, MultiModalIndex):
        return _pairs(index, captions, alt_text, ocr_text, context)
    with MultiModalIndex(index, keyword_only=True, create=False) as ix:
        return _pairs(ix, captions, alt_text, ocr_text, context)


def _pairs(index: Any, captions: bool, alt_text: bool, ocr_text: bool, context: bool) -> list[Pair]:
    fields = [f for f, on in (("caption", captions), ("alt_text", alt_text), ("ocr_text", ocr_text)) if on]
    pairs: list[Pair] = []
    # images without words of their own: the chunks next to them, looked up in a second pass
    wanted: list[tuple[str, str, str | None, str | None]] = []  # (image, source, prev id, next id)
    neighbours: set[str] = set()
    for batch in index.scan(256):
        images = [p.id for p in batch if p.payload.get("kind") == "image"]
        if not images:
            continue
        for payload in index.payloads(images).values():
            image, source = str(payload.get("image_path") or ""), str(payload.get("source") or "")
            if not image:
                continue
            own: list[str] = []
            for f in fields:
                text = " ".join(str(payload.get(f) or "").split())
                if text and text not in own:
                    own.append(text)
                    pairs.append(Pair(image, text, f, source))
            prev_id, next_id = payload.get("prev_id"), payload.get("next_id")
            if not own and context and (prev_id or next_id):
                wanted.append((image, source, prev_id, next_id))
                neighbours.update(i for i in (prev_id, next_id) if i)
    if not wanted:
        return pairs
    texts: dict[str, str] = {}
    for batch in index.scan(256):
        for p in batch:
            cid = p.payload.get("id")
            if p.payload.get("kind") == "text" and cid in neighbours:
                words = " ".join(str(p.payload.get("text") or "").split())
                if words:
                    texts[cid] = words
    for image, source, prev_id, next_id in wanted:
        near = texts.get(prev_id or "") or texts.get(next_id or "")
        if near:
            pairs.append(Pair(image, near, "context", source))
    return pairs
