"""Chunks and hits <-> LlamaIndex nodes and documents.

Text chunks become ``TextNode`` (``Document`` from readers), images ``ImageNode``
(``ImageDocument``) with ``image_path`` / ``image_mimetype`` set and the caption, alt and OCR text
as node text. Metadata is the flat payload of ``mm_rag_plugin._payload``; the technical keys are
excluded from what LlamaIndex embeds and shows the LLM. Neighbours become PREVIOUS/NEXT
relationships.
"""

from __future__ import annotations

import base64
import dataclasses
from typing import Any

from llama_index.core.schema import (
    BaseNode,
    Document,
    ImageDocument,
    ImageNode,
    NodeRelationship,
    NodeWithScore,
    RelatedNodeInfo,
    TextNode,
)

from ..._payload import chunk_to_payload, payload_to_chunk
from ...errors import InvalidInputError
from ...types import Chunk, Hit, ImageChunk
from .._framework import metadata_chunk

__all__ = ["chunk_to_document", "chunk_to_node", "hit_to_node_with_score", "node_to_chunk"]

#: Metadata the LLM may see: where the content came from.
_SHOWN = frozenset({"source", "page", "section", "caption", "alt_text"})


def _kwargs(chunk: Chunk) -> dict[str, Any]:
    meta = chunk_to_payload(chunk)
    hidden = [k for k, v in meta.items() if k not in _SHOWN or v in ("", None)]
    rel: dict[NodeRelationship, RelatedNodeInfo] = {}
    if chunk.prev_id:
        rel[NodeRelationship.PREVIOUS] = RelatedNodeInfo(node_id=chunk.prev_id)
    if chunk.next_id:
        rel[NodeRelationship.NEXT] = RelatedNodeInfo(node_id=chunk.next_id)
    kw: dict[str, Any] = dict(
        id_=chunk.id,
        text=chunk.text,
        metadata=meta,
        excluded_embed_metadata_keys=hidden,
        excluded_llm_metadata_keys=hidden,
        relationships=rel,
    )
    if isinstance(chunk, ImageChunk):
        kw.update(image_path=chunk.image_path, image_mimetype=chunk.mime_type)
    return kw


def chunk_to_node(chunk: Chunk) -> TextNode:
    """``ImageNode`` for an image chunk, ``TextNode`` otherwise."""
    return ImageNode(**_kwargs(chunk)) if isinstance(chunk, ImageChunk) else TextNode(**_kwargs(chunk))


def chunk_to_document(chunk: Chunk) -> Document:
    """``ImageDocument`` for an image chunk, ``Document`` otherwise (what readers return)."""
    return ImageDocument(**_kwargs(chunk)) if isinstance(chunk, ImageChunk) else Document(**_kwargs(chunk))


def hit_to_node_with_score(hit: Hit) -> NodeWithScore:
    node = chunk_to_node(hit.chunk)
    node.metadata.update(ranks=dict(hit.ranks), list_scores=dict(hit.list_scores))
    for keys in (node.excluded_embed_metadata_keys, node.excluded_llm_metadata_keys):
        keys.extend(["ranks", "list_scores"])
    return NodeWithScore(node=node, score=hit.score)


def node_to_chunk(node: BaseNode, *, keyed: bool = False, as_text: bool = False) -> Chunk:
    """The chunk behind *node*, with the node's id: the one converter of LlamaIndex nodes (indexing
    them with :meth:`MultiModalIndex.add`, storing them in the vector store, reading hits back).

    An ``ImageNode`` is an image chunk: its ``image_path``, or its base64 ``image`` kept as a
    ``data:`` URI (an ``image_url`` is refused: images are not fetched); its text is the caption
    unless the metadata holds caption or OCR text. Chunk fields (``source``, ``page`` ...) come
    from the metadata. The two uses differ in what the metadata is:

    * ``keyed=False`` (indexing, hits): the library's flat payload or metadata written by hand; a
      node's ``kind`` says what it is, and a chunk field of the wrong type is an error.
    * ``keyed=True`` (the vector store, which returns nodes as they were added): the metadata is
      the user's, kept verbatim as the chunk's metadata; a text node is text whatever its metadata
      says, fields of the wrong type are left to the metadata, and *as_text* makes an image node
      text too (the text store of a ``MultiModalVectorStoreIndex``).
    """
    if keyed:
        meta = dict(node.metadata)
        image_path = _image_path(node) if isinstance(node, ImageNode) and not as_text else None
        if image_path is None:
            chunk = metadata_chunk(node.node_id, node.get_content(), {k: v for k, v in meta.items() if k != "kind"})
        else:
            fields = {**meta, "kind": "image", "image_path": image_path}
            fields.setdefault("source", node.node_id if image_path.startswith("data:") else image_path)
            chunk = metadata_chunk(node.node_id, node.get_content(), fields)
        return dataclasses.replace(chunk, metadata=meta)
    meta = {k: v for k, v in node.metadata.items() if k not in ("ranks", "list_scores")}
    if isinstance(node, ImageNode) and meta.get("kind") is None:
        image_path = _image_path(node) or ""
        meta.update(kind="image", image_path=image_path)
        meta.setdefault("source", image_path if node.image_path else node.node_id)
        if node.text and not meta.get("caption") and not meta.get("ocr_text"):
            meta["caption"] = node.text
    text = node.get_content() if meta.get("kind", "text") == "text" else None
    return payload_to_chunk(meta, id=node.node_id, text=text)


def _image_path(node: ImageNode) -> str | None:
    """Where the image of *node* is read from: its path, or its bytes as a ``data:`` URI (``None``:
    the node holds no image)."""
    if node.image_path:
        return str(node.image_path)
    if node.image:  # base64 text (bytes are encoded here)
        data = node.image if isinstance(node.image, str) else base64.b64encode(node.image).decode("ascii")
        return f"data:{node.image_mimetype or 'image/png'};base64,{data}"
    if node.image_url:
        raise InvalidInputError(
            f"node {node.node_id}: images given by URL are not fetched; download {node.image_url} and pass image_path",
            source=str(node.image_url),
        )
    return None
