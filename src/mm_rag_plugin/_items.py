"""Items a caller hands to :meth:`~.retrievers.index.MultiModalIndex.add`, as chunks.

The core (retrievers, readers, embeddings, generators) names no framework: a LangChain
``Document`` or a LlamaIndex node is converted by its adapter's converter, found here by the module
that defines the item's class. This table is the package's wiring of the adapters it ships (the
role entry points play for plugins); an adapter's module is imported only when an item of its
framework arrives, so a user who never holds one never imports a framework.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from .errors import InvalidInputError
from .types import Chunk, ImageChunk, TextChunk

__all__ = ["as_chunk"]

#: class module prefix -> "module:function" of the adapter that converts it
CONVERTERS: dict[str, str] = {
    "langchain_core.documents": "mm_rag_plugin.integrations.langchain._convert:document_to_chunk",
    "llama_index.core.schema": "mm_rag_plugin.integrations.llama_index._convert:node_to_chunk",
}


def _converter(item: object) -> Callable[[Any], Chunk] | None:
    for cls in type(item).__mro__:
        for prefix, target in CONVERTERS.items():
            if cls.__module__.startswith(prefix):
                module, _, name = target.partition(":")
                fn: Callable[[Any], Chunk] = getattr(importlib.import_module(module), name)
                return fn
    return None


def as_chunk(item: object) -> Chunk:
    """*item* as a chunk: chunks as they are; a LangChain ``Document`` or a LlamaIndex node
    (text or image) converted by its adapter, its metadata kept."""
    if isinstance(item, (TextChunk, ImageChunk)):
        return item
    convert = _converter(item)
    if convert is None:
        raise InvalidInputError(
            f"cannot index a {type(item).__name__}: expected a TextChunk, ImageChunk, LangChain Document or LlamaIndex node",
            source=f"<{type(item).__name__}>",
        )
    return convert(item)
