"""LangChain adapters (``pip install 'mm-rag-plugin[langchain]'``)."""

from __future__ import annotations

import importlib
from typing import Any

# name -> submodule, imported on first access
_LAZY: dict[str, str] = {
    "MultiModalRetriever": ".retrievers",
    "MultimodalSearchTool": ".tools",
    "MultimodalAnswerTool": ".tools",
    "create_multimodal_search_tool": ".tools",
    "create_multimodal_answer_tool": ".tools",
    "MMRagLoader": ".loaders",
    "OpenCLIPEmbeddings": ".embeddings",
    "create_multimodal_rag_chain": ".chains",
    "documents_to_messages": ".chains",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module, __name__), name)
