"""One mapping between chunks and flat dictionaries.

The vector store payload, LangChain ``Document.metadata`` and LlamaIndex node metadata all use
this mapping, so a chunk looks the same everywhere and round-trips exactly.

A payload read back from an index is untrusted input: :func:`payload_problem` checks the type and
range of every field the library reads (a few dictionary lookups per payload, run for every hit).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import fields
from typing import Any

from .errors import InvalidInputError, echo
from .ids import stable_id
from .types import Chunk, ImageChunk, TextChunk

__all__ = ["MAX_DEPTH", "RESERVED_KEYS", "STORE_KEYS", "chunk_to_payload", "payload_problem", "payload_to_chunk", "too_deep"]

#: Deepest nesting of objects and lists a chunk's metadata may hold (Qdrant reads back at most 128).
MAX_DEPTH = 64

_TEXT_FIELDS = tuple(f.name for f in fields(TextChunk) if f.name != "metadata")
_IMAGE_FIELDS = tuple(f.name for f in fields(ImageChunk) if f.name != "metadata")
#: Keys the library owns; a chunk's own ``metadata`` never overrides them.
RESERVED_KEYS = frozenset({"kind", *_TEXT_FIELDS, *_IMAGE_FIELDS})
#: Payload keys of items stored by id through a framework vector store (not part of the chunk).
STORE_KEYS = ("key", "framework", "ref_doc_id", "node")


def chunk_to_payload(chunk: Chunk, *, flat: bool = True) -> dict[str, Any]:
    """A JSON-friendly dict of *chunk*: its fields (``None`` left out), ``kind``, and its metadata.

    With ``flat=True`` (framework metadata) the chunk's ``metadata`` entries are merged in at the top
    level, library keys winning, and a text chunk's ``text`` is left out (the framework object holds
    it); with ``flat=False`` (store payloads) the text is kept and metadata stays under ``"metadata"``
    (refused, :class:`InvalidInputError`, when nested more than :data:`MAX_DEPTH` levels deep).
    """
    names = _IMAGE_FIELDS if isinstance(chunk, ImageChunk) else _TEXT_FIELDS
    out: dict[str, Any] = {"kind": chunk.kind}
    for name in names:
        value = getattr(chunk, name)
        if value is None or (flat and name == "text"):  # frameworks hold the text themselves
            continue
        out[name] = list(value) if name == "bbox" else value
    extra = dict(chunk.metadata)
    if flat:
        return {**{k: v for k, v in extra.items() if k not in RESERVED_KEYS}, **out}
    if too_deep(extra, MAX_DEPTH):
        raise InvalidInputError(f"metadata nested more than {MAX_DEPTH} levels deep; refusing to store it", source=chunk.source)
    if extra:
        out["metadata"] = extra
    return out


def payload_to_chunk(payload: Mapping[str, Any], *, id: str | None = None, text: str | None = None, checked: bool = False) -> Chunk:
    """Rebuild a chunk from :func:`chunk_to_payload` output (flat or nested), or from metadata a
    framework user wrote by hand (``kind`` defaults to text; ``id`` falls back to a content id).
    A field of the wrong type (``page: "3"``, ``metadata: "x"``) raises :class:`InvalidInputError`
    naming it (:func:`payload_problem`); *checked*: the whole payload passed that check already
    (an index's search hits), so it is not run again."""
    data = {k: v for k, v in payload.items() if k not in STORE_KEYS}
    kind = data.pop("kind", "text")
    meta = data.pop("metadata", None)
    if text is not None and kind == "text":
        data["text"] = text
    if id is not None:
        data["id"] = id
    names = _IMAGE_FIELDS if kind == "image" else _TEXT_FIELDS
    known = {k: data.pop(k) for k in list(data) if k in names}
    problem = None if checked else payload_problem({**known, "metadata": meta})
    if problem:
        raise InvalidInputError(problem, source=known["source"] if _str(known.get("source")) else None)
    extra = dict(meta or {})
    extra.update({k: v for k, v in data.items() if k not in RESERVED_KEYS})
    if known.get("bbox") is not None:
        known["bbox"] = tuple(known["bbox"])
    known.setdefault("source", "")
    if kind == "image":
        if not known.get("image_path"):
            raise InvalidInputError(f"image item has no image_path (source {known['source']!r})")
        known.setdefault("content_hash", "")
        if known.get("id") is None:
            known["id"] = stable_id(known["source"], known["image_path"])
        return ImageChunk(**known, metadata=extra)
    if kind != "text":
        raise InvalidInputError(f"unknown item kind {kind!r}; expected 'text' or 'image'")
    known.setdefault("text", "")
    if known.get("id") is None:
        known["id"] = stable_id(known["source"], known["text"])
    return TextChunk(**known, metadata=extra)


def too_deep(value: Any, limit: int) -> bool:
    """Whether *value* nests dicts, lists or tuples more than *limit* levels deep (no recursion:
    a hostile value may nest them thousands deep)."""
    level = [value] if isinstance(value, (dict, list, tuple)) else []
    depth = 0
    while level:
        depth += 1
        if depth > limit:
            return True
        level = [c for v in level for c in (v.values() if isinstance(v, dict) else v) if isinstance(c, (dict, list, tuple))]
    return False


def _str(v: Any) -> bool:
    return v.__class__ is str


def _str_or_null(v: Any) -> bool:
    return v is None or v.__class__ is str


def _count(v: Any) -> bool:
    return v.__class__ is int and v >= 0


def _finite(v: Any) -> bool:
    return v.__class__ is int or (v.__class__ is float and math.isfinite(v))


def _bbox(v: Any) -> bool:
    return v is None or ((v.__class__ is list or v.__class__ is tuple) and len(v) == 4 and all(map(_finite, v)))


#: Each payload field the library reads: its check, and what it must be (said in the error).
_CHECKS: dict[str, tuple[Callable[[Any], bool], str]] = {
    "kind": (lambda v: v == "text" or v == "image", "'text' or 'image'"),
    "sources": (lambda v: v.__class__ is list and all(map(_str, v)), "a list of strings"),
    "page": (lambda v: v is None or v.__class__ is int, "an integer or null"),
    "position": (lambda v: v.__class__ is int, "an integer"),
    "width": (_count, "an integer >= 0"),
    "height": (_count, "an integer >= 0"),
    "bbox": (_bbox, "a list of 4 finite numbers or null"),
    "ocr_confidence": (lambda v: v is None or _finite(v), "a finite number or null"),
    "metadata": (lambda v: v is None or v.__class__ is dict, "an object or null"),
    "image_root": (lambda v: v in ("index", "store"), "'index' or 'store'"),
    **dict.fromkeys(
        ("text", "source", "image_path", "content_hash", "mime_type", "alt_text", "caption", "ocr_text", "key", "framework"),
        (_str, "a string"),
    ),
    **dict.fromkeys(
        ("id", "section", "prev_id", "next_id", "file_hash", "ref_doc_id", "node"), (_str_or_null, "a string or null")
    ),
}


def payload_problem(payload: Mapping[str, Any]) -> str | None:
    """The first field of a stored *payload* with a wrong type or value, as ``"<field> must be ...,
    got ..."``; ``None`` when the payload can be read (fields the library does not know are the
    chunk's metadata, and are not checked)."""
    checks = _CHECKS
    for key, value in payload.items():
        check = checks.get(key)
        if check is not None and not check[0](value):
            return f"{key} must be {check[1]}, got {echo(value, 80)}"
    return None
