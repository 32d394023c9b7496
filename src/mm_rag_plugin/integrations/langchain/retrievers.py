"""LangChain ``BaseRetriever`` over :class:`~mm_rag_plugin.retrievers.FusedRetriever`.

Only converts types: hits become ``Document``s through ``hit_to_document`` (``Document.id`` is the
chunk id; image hits carry ``image_path`` in their metadata; ``score``, ``ranks`` and
``list_scores`` explain each hit).
"""

from __future__ import annotations

from typing import Any

from ..._optional import require

require("langchain_core", extra="langchain")

from langchain_core.callbacks import (  # noqa: E402
    AsyncCallbackManagerForRetrieverRun,
    CallbackManagerForRetrieverRun,
)
from langchain_core.documents import Document  # noqa: E402
from langchain_core.retrievers import BaseRetriever  # noqa: E402
from pydantic import ConfigDict  # noqa: E402

from ...retrievers.retriever import FusedRetriever  # noqa: E402
from ._convert import hit_to_document  # noqa: E402

__all__ = ["MultiModalRetriever"]


class MultiModalRetriever(BaseRetriever):
    """Hybrid (dense CLIP + BM25, RRF-fused) retrieval of text chunks and images.

    ``MultiModalRetriever(retriever=FusedRetriever(index), k=4)``; ``invoke(query, k=2,
    filters={"kind": "image"}, image=...)`` overrides per call.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    retriever: FusedRetriever
    k: int = 4
    filters: dict[str, Any] | None = None

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        k: int | None = None,
        filters: dict[str, Any] | None = None,
        image: Any = None,
    ) -> list[Document]:
        hits = self.retriever.retrieve(
            query, image=image, k=k or self.k, filters=filters if filters is not None else self.filters
        )
        return [hit_to_document(h) for h in hits]

    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,
        k: int | None = None,
        filters: dict[str, Any] | None = None,
        image: Any = None,
    ) -> list[Document]:
        hits = await self.retriever.aretrieve(
            query, image=image, k=k or self.k, filters=filters if filters is not None else self.filters
        )
        return [hit_to_document(h) for h in hits]
