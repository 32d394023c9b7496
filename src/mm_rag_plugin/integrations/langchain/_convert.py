"""Chunks and hits <-> LangChain ``Document``.

``Document.page_content`` is the chunk text (for an image: caption, alt text and OCR text), ``id``
the chunk id, and ``metadata`` the flat payload of ``mm_rag_plugin._payload``: ``kind`` is
``"text"`` or ``"image"``; images carry ``image_path``, ``mime_type``, ``ocr_text`` ...; hits add
``score``, ``ranks`` and ``list_scores``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from langchain_core.documents import Document

from ..._payload import chunk_to_payload, payload_to_chunk
from ...errors import InvalidInputError
from ...types import Chunk, Hit, ImageChunk
from .._framework import metadata_chunk

__all__ = ["chunk_to_document", "document_to_chunk", "hit_to_document", "image_to_chunk", "is_image_document"]


def chunk_to_document(chunk: Chunk) -> Document:
    return Document(id=chunk.id, page_content=chunk.text, metadata=chunk_to_payload(chunk))


def hit_to_document(hit: Hit) -> Document:
    doc = chunk_to_document(hit.chunk)
    doc.metadata.update(score=hit.score, ranks=dict(hit.ranks), list_scores=dict(hit.list_scores))
    return doc


def is_image_document(doc: Document) -> bool:
    return doc.metadata.get("kind") == "image"


def document_to_chunk(doc: Document, *, key: str | None = None) -> Chunk:
    """The chunk behind *doc*: the one converter of LangChain documents (indexing them with
    :meth:`MultiModalIndex.add`, storing them in the vector store, reading hits back).
    ``metadata["kind"] == "image"`` with an ``image_path`` makes an image chunk (the text is its
    caption unless the metadata holds caption or OCR text); otherwise text (the default for
    Documents built by hand). Chunk fields (``source``, ``page`` ...) come from the metadata.

    Without *key* (indexing, hits) the metadata is the library's flat payload or metadata written
    by hand: the id is ``doc.id`` (else ``metadata["id"]``, else a content id), and a chunk field
    of the wrong type is an error. With *key* (the vector store, which returns documents as they
    were added) the chunk has that id, its metadata is the document's verbatim, and fields of the
    wrong type are left to the metadata."""
    if key is not None:
        return metadata_chunk(key, doc.page_content, dict(doc.metadata))
    meta = {k: v for k, v in doc.metadata.items() if k not in ("score", "ranks", "list_scores")}
    if meta.get("kind") == "image" and not meta.get("ocr_text") and not meta.get("caption") and doc.page_content:
        meta["caption"] = doc.page_content  # an image document's text describes the image
    ident = doc.id or meta.get("id")
    return payload_to_chunk(meta, id=None if ident is None else str(ident), text=doc.page_content)


def image_to_chunk(key: str, uri: Any, metadata: Mapping[str, Any]) -> ImageChunk:
    """An image file (``add_images``, LangChain's OpenCLIP convention) as the image chunk of a
    document with id *key*; the metadata gains ``kind`` and ``image_path``."""
    if not isinstance(uri, (str, os.PathLike)):
        raise InvalidInputError(f"images are added by file path, got {type(uri).__name__}", source=f"image {key}")
    path = str(Path(uri).expanduser().resolve())
    meta = {**dict(metadata), "kind": "image", "image_path": path}
    meta.setdefault("source", path)
    chunk = document_to_chunk(Document(page_content="", metadata=meta), key=key)
    assert isinstance(chunk, ImageChunk)
    return chunk
