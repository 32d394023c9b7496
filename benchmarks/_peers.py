"""The peers' retrievers as a LangChain or LlamaIndex user wires them, shared by the retrieval and
cold-start benchmarks. Vectors are precomputed: the embedding models are lookup tables. Imports are
lazy, so a cold-start child imports only its own framework."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _vector(v: Any) -> list[float]:
    return v if isinstance(v, list) else v.tolist()


def langchain_lookup(queries: Mapping[str, Any], docs: Mapping[str, Any] | None = None) -> Any:
    """LangChain ``Embeddings`` answering from *queries* and *docs* (text -> vector). Without
    *docs*, documents must come embedded. A text that is not in *docs* gets the first document's
    vector: ``langchain_qdrant`` probes its embeddings with ``"dummy_text"``."""
    from langchain_core.embeddings import Embeddings

    class Lookup(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            if docs is None:
                raise AssertionError("documents come embedded")
            return [_vector(docs[t] if t in docs else next(iter(docs.values()))) for t in texts]

        def embed_query(self, text: str) -> list[float]:
            return _vector(queries[text])

    return Lookup()


def llamaindex_lookup(queries: Mapping[str, Any], docs: Mapping[str, Any] | None = None) -> Any:
    """LlamaIndex ``BaseEmbedding`` answering from *queries* and *docs* (text -> vector); without
    *docs*, nodes must come embedded."""
    from llama_index.core.base.embeddings.base import BaseEmbedding

    class Lookup(BaseEmbedding):
        def _get_query_embedding(self, query: str) -> list[float]:
            return _vector(queries[query])

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return _vector(queries[query])

        def _get_text_embedding(self, text: str) -> list[float]:
            if docs is None:
                raise AssertionError("nodes come embedded")
            return _vector(docs[text])

    return Lookup(model_name="lookup")


def langchain_ensemble(dense_store: Any, bm25: Any, depth: int) -> Any:
    """``EnsembleRetriever`` (weights 0.5/0.5) over *dense_store*'s retriever and *bm25*, both
    *depth* deep."""
    try:
        from langchain_classic.retrievers import EnsembleRetriever
    except ImportError:  # older layout
        from langchain.retrievers import EnsembleRetriever
    return EnsembleRetriever(
        retrievers=[dense_store.as_retriever(search_kwargs={"k": depth}), bm25], weights=[0.5, 0.5]
    )


def llamaindex_fusion(index: Any, bm25: Any, depth: int, k: int) -> Any:
    """``QueryFusionRetriever(mode="reciprocal_rerank")`` over *index*'s retriever and *bm25*, both
    *depth* deep, top *k*; ``num_queries=1``: no LLM query generation (the LLM is never called)."""
    from llama_index.core.llms import MockLLM
    from llama_index.core.retrievers import QueryFusionRetriever

    return QueryFusionRetriever(
        [index.as_retriever(similarity_top_k=depth), bm25],
        mode="reciprocal_rerank",
        similarity_top_k=k,
        num_queries=1,
        use_async=False,
        llm=MockLLM(),
    )
