"""Retrieval core (framework-free): multimodal index, BM25 sparse encoding, RRF fusion.

``MultiModalIndex`` stores text chunks and images (Qdrant Edge in a folder, or a Qdrant server);
``FusedRetriever`` fuses dense and BM25 lists with weighted Reciprocal Rank Fusion.
"""

from __future__ import annotations

from .._lazy import lazy_exports

_LAZY: dict[str, str] = {
    "BM25Encoder": ".bm25",
    "SparseVector": ".bm25",
    "Fused": ".fusion",
    "rrf": ".fusion",
    "apply_quotas": ".fusion",
    "dedupe_near": ".fusion",
    "MultiModalIndex": ".index",
    "IngestReport": ".ingest",
    "FusedRetriever": ".retriever",
    "LIST_NAMES": ".retriever",
}

__all__ = sorted(_LAZY)


__getattr__, __dir__ = lazy_exports(__name__, _LAZY)
