"""One mapping between chunks and flat dictionaries.

The vector store payload, LangChain ``Document.metadata`` and LlamaIndex node metadata all use
this mapping, so a chunk looks the same everywhere and round-trips exactly.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from typing import Any

from .errors import InvalidInputError
from .ids import stable_id
from .types import Chunk, ImageChunk, TextChunk

__all__ = ["RESERVED_KEYS", "STORE_KEYS", "chunk_to_payload", "payload_to_chunk"]

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
    it); with ``flat=False`` (store payloads) the text is kept and metadata stays under ``"metadata"``.
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
    if extra:
        out["metadata"] = extra
    return out


def payload_to_chunk(payload: Mapping[str, Any], *, id: str | None = None, text: str | None = None) -> Chunk:
    """Rebuild a chunk from :func:`chunk_to_payload` output (flat or nested), or from metadata a
    framework user wrote by hand (``kind`` defaults to text; ``id`` falls back to a content id)."""
    data = {k: v for k, v in payload.items() if k not in STORE_KEYS}
    kind = data.pop("kind", "text")
    extra = dict(data.pop("metadata", None) or {})
    if text is not None and kind == "text":
        data["text"] = text
    if id is not None:
        data["id"] = id
    names = _IMAGE_FIELDS if kind == "image" else _TEXT_FIELDS
    known = {k: data.pop(k) for k in list(data) if k in names}
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
