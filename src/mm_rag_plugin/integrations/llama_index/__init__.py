"""LlamaIndex adapters (``pip install 'mm-rag-plugin[llamaindex]'``)."""

from __future__ import annotations

import importlib
from typing import Any

# name -> submodule, imported on first access
_LAZY: dict[str, str] = {
    "MultiModalRetriever": ".retrievers",
    "create_multimodal_search_tool": ".tools",
    "create_multimodal_answer_tool": ".tools",
    "create_multimodal_query_engine_tool": ".tools",
    "MMRagReader": ".readers",
    "OpenCLIPEmbedding": ".embeddings",
    "MultimodalQueryEngine": ".query_engine",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)
