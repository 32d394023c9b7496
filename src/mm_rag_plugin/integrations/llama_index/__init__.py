"""LlamaIndex adapters (``pip install 'mm-rag-plugin[llamaindex]'``)."""

from __future__ import annotations

from ..._lazy import lazy_exports

# name -> submodule, imported on first access
_LAZY: dict[str, str] = {
    "MultiModalRetriever": ".retrievers",
    "create_multimodal_search_tool": ".tools",
    "create_multimodal_answer_tool": ".tools",
    "create_multimodal_query_engine_tool": ".tools",
    "MMRagReader": ".readers",
    "OpenCLIPEmbedding": ".embeddings",
    "LlamaIndexTextModel": ".embeddings",
    "MultiModalQueryEngine": ".query_engine",
    "MultiModalVectorStore": ".vector_stores",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
