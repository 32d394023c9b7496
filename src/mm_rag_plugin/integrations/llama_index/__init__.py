"""LlamaIndex adapters (``pip install 'mm-rag-plugin[llamaindex]'``)."""

from __future__ import annotations

import importlib
from typing import Any

# name -> submodule, imported on first access
_LAZY: dict[str, str] = {
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
