"""Chunks and hits <-> LangChain ``Document``.

``Document.page_content`` is the chunk text (for an image: caption, alt text and OCR text), ``id``
the chunk id, and ``metadata`` the flat payload of ``mm_rag_plugin._payload``: ``kind`` is
``"text"`` or ``"image"``; images carry ``image_path``, ``mime_type``, ``ocr_text`` ...; hits add
``score``, ``ranks`` and ``list_scores``.
"""

from __future__ import annotations

from langchain_core.documents import Document

from ..._payload import chunk_to_payload, payload_to_chunk
from ...types import Chunk, Hit

__all__ = ["chunk_to_document", "document_to_chunk", "hit_to_document", "is_image_document"]


def chunk_to_document(chunk: Chunk) -> Document:
    return Document(id=chunk.id, page_content=chunk.text, metadata=chunk_to_payload(chunk))


def hit_to_document(hit: Hit) -> Document:
    doc = chunk_to_document(hit.chunk)
    doc.metadata.update(score=hit.score, ranks=dict(hit.ranks), list_scores=dict(hit.list_scores))
    return doc


def is_image_document(doc: Document) -> bool:
    return doc.metadata.get("kind") == "image"


def document_to_chunk(doc: Document) -> Chunk:
    """The chunk behind *doc* (also for Documents built by hand: ``kind`` defaults to text)."""
    meta = {k: v for k, v in doc.metadata.items() if k not in ("score", "ranks", "list_scores")}
    if meta.get("kind") == "image" and not meta.get("ocr_text") and not meta.get("caption") and doc.page_content:
        meta["caption"] = doc.page_content  # an image document's text describes the image
    ident = doc.id or meta.get("id")
    return payload_to_chunk(meta, id=None if ident is None else str(ident), text=doc.page_content)
