"""Retrieval core (framework-free): multimodal index, BM25 sparse encoding, RRF fusion.

``MultiModalIndex`` stores text chunks and images (Qdrant local/server, or the fast numpy engine);
``FusedRetriever`` fuses dense and BM25 lists with weighted Reciprocal Rank Fusion.
"""

from __future__ import annotations

import importlib
from typing import Any

_LAZY: dict[str, str] = {
    "BM25Encoder": ".bm25",
    "SparseVector": ".bm25",
    "Fused": ".fusion",
    "rrf": ".fusion",
    "apply_quotas": ".fusion",
    "dedupe": ".fusion",
    "dedupe_near": ".fusion",
    "MultiModalIndex": ".index",
    "IngestReport": ".ingest",
    "FusedRetriever": ".retriever",
    "LIST_NAMES": ".retriever",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
