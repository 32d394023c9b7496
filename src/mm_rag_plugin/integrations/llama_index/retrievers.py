"""LlamaIndex ``BaseRetriever`` over :class:`~mm_rag_plugin.retrievers.FusedRetriever`.

Only converts types: hits become ``NodeWithScore`` (``TextNode`` / ``ImageNode``) through
``hit_to_node_with_score``. A ``QueryBundle`` with ``image_path`` queries by text and image.
Works inside ``RetrieverQueryEngine``. Unknown options, ``similarity_top_k`` below 1 and malformed
filters raise :class:`~mm_rag_plugin.errors.ConfigurationError` / ``InvalidInputError``.
"""

from __future__ import annotations

from typing import Any

from ..._optional import require

require("llama_index.core", extra="llamaindex", package="llama-index-core")

from llama_index.core.base.base_retriever import BaseRetriever  # noqa: E402
from llama_index.core.callbacks import CallbackManager  # noqa: E402
from llama_index.core.schema import NodeWithScore, QueryBundle  # noqa: E402

from ...errors import ConfigurationError  # noqa: E402
from ...retrievers._filters import parse_filters  # noqa: E402
from ...retrievers.retriever import FusedRetriever  # noqa: E402
from ._convert import hit_to_node_with_score  # noqa: E402

__all__ = ["MultiModalRetriever"]

_HINTS = {
    "k": "use similarity_top_k=",
    "top_k": "use similarity_top_k=",
    "search_kwargs": "pass similarity_top_k= and filters= directly",
    "filter": "use filters=",
}


class MultiModalRetriever(BaseRetriever):
    """Hybrid (dense CLIP + BM25, RRF-fused) retrieval of text and image nodes.

    ``MultiModalRetriever(FusedRetriever(index), similarity_top_k=4, filters={"source": ...})``.
    """

    def __init__(
        self,
        retriever: FusedRetriever,
        *,
        similarity_top_k: int = 4,
        filters: dict[str, Any] | None = None,
        callback_manager: CallbackManager | None = None,
        verbose: bool = False,
        **unknown: Any,
    ) -> None:
        if unknown:
            names = sorted(unknown)
            advice = "; ".join(f"{n}: {_HINTS[n]}" for n in names if n in _HINTS)
            raise ConfigurationError(
                f"MultiModalRetriever: unknown option(s) {', '.join(map(repr, names))}"
                + (f" ({advice})" if advice else "")
                + "; accepted: retriever, similarity_top_k, filters, callback_manager, verbose"
            )
        if not callable(getattr(retriever, "retrieve", None)):
            raise ConfigurationError(
                f"MultiModalRetriever needs a FusedRetriever (FusedRetriever(index)), got {type(retriever).__name__}"
            )
        if isinstance(similarity_top_k, bool) or not isinstance(similarity_top_k, int) or similarity_top_k < 1:
            raise ConfigurationError(f"similarity_top_k must be a whole number >= 1, got {similarity_top_k!r}")
        parse_filters(filters)  # a malformed filter fails here, not at the first query
        self.retriever = retriever
        self.similarity_top_k = similarity_top_k
        self.filters = filters
        super().__init__(callback_manager=callback_manager, verbose=verbose)

    def _args(self, query_bundle: QueryBundle) -> dict[str, Any]:
        return dict(
            query=query_bundle.query_str or None,
            image=query_bundle.image_path or None,
            k=self.similarity_top_k,
            filters=self.filters,
        )

    def _retrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        args = self._args(query_bundle)
        return [hit_to_node_with_score(h) for h in self.retriever.retrieve(args.pop("query"), **args)]

    async def _aretrieve(self, query_bundle: QueryBundle) -> list[NodeWithScore]:
        args = self._args(query_bundle)
        hits = await self.retriever.aretrieve(args.pop("query"), **args)
        return [hit_to_node_with_score(h) for h in hits]
