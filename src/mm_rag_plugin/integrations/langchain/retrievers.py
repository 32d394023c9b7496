"""LangChain ``BaseRetriever`` over :class:`~mm_rag_plugin.retrievers.FusedRetriever`.

Only converts types: hits become ``Document``s through ``hit_to_document`` (``Document.id`` is the
chunk id; image hits carry ``image_path`` in their metadata; ``score``, ``ranks`` and
``list_scores`` explain each hit). Unknown options (``search_kwargs=`` as on a vector store
retriever, a misspelled name), ``k`` below 1 and malformed filters raise
:class:`~mm_rag_plugin.errors.ConfigurationError` / ``InvalidInputError`` instead of being ignored.
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

from ...errors import ConfigurationError  # noqa: E402
from ...retrievers._filters import parse_filters  # noqa: E402
from ...retrievers.retriever import FusedRetriever  # noqa: E402
from ._convert import hit_to_document  # noqa: E402

__all__ = ["MultiModalRetriever"]


class MultiModalRetriever(BaseRetriever):
    """Hybrid (dense CLIP + BM25, RRF-fused) retrieval of text chunks and images.

    ``MultiModalRetriever(retriever=FusedRetriever(index), k=4, filters={"kind": "image"})``;
    ``invoke(query, k=2, filters={"kind": "image"}, image=...)`` overrides per call.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    retriever: FusedRetriever
    k: int = 4
    filters: dict[str, Any] | None = None

    def __init__(self, **data: Any) -> None:
        unknown = sorted(set(data) - set(type(self).model_fields))
        if unknown:
            raise ConfigurationError(_unknown_options(unknown, sorted(type(self).model_fields), _CONSTRUCTOR_HINTS))
        if "k" in data:
            _check_k(data["k"], "k")
        parse_filters(data.get("filters"))  # a malformed filter fails here, not at the first query
        super().__init__(**data)

    def _get_relevant_documents(
        self,
        query: str,
        *,
        run_manager: CallbackManagerForRetrieverRun,
        k: int | None = None,
        filters: dict[str, Any] | None = None,
        image: Any = None,
        **unknown: Any,
    ) -> list[Document]:
        hits = self.retriever.retrieve(query, **self._call_args(k, filters, image, unknown))
        return [hit_to_document(h) for h in hits]

    async def _aget_relevant_documents(
        self,
        query: str,
        *,
        run_manager: AsyncCallbackManagerForRetrieverRun,
        k: int | None = None,
        filters: dict[str, Any] | None = None,
        image: Any = None,
        **unknown: Any,
    ) -> list[Document]:
        hits = await self.retriever.aretrieve(query, **self._call_args(k, filters, image, unknown))
        return [hit_to_document(h) for h in hits]

    def _call_args(self, k: Any, filters: Any, image: Any, unknown: dict[str, Any]) -> dict[str, Any]:
        unknown.pop("verbose", None)  # LangChain's own invoke() option, passed on to here
        if unknown:
            raise ConfigurationError(_unknown_options(sorted(unknown), ["filters", "image", "k"], _CALL_HINTS))
        if k is not None:
            _check_k(k, "k")
        return {"image": image, "k": self.k if k is None else k, "filters": self.filters if filters is None else filters}


_CONSTRUCTOR_HINTS = {
    "search_kwargs": "pass k= and filters= directly: MultiModalRetriever(retriever=..., k=4, filters={...})",
    "search_type": "the search is always hybrid (dense + BM25, fused); tune it on the FusedRetriever",
    "top_k": "use k=",
    "similarity_top_k": "use k=",
    "filter": "use filters=",
}
_CALL_HINTS = {
    "search_kwargs": "pass k= and filters= to invoke() directly",
    "top_k": "use k=",
    "filter": "use filters=",
}


def _unknown_options(unknown: list[str], accepted: list[str], hints: dict[str, str]) -> str:
    advice = "; ".join(f"{name}: {hints[name]}" for name in unknown if name in hints)
    return (
        f"MultiModalRetriever: unknown option(s) {', '.join(map(repr, unknown))}"
        + (f" ({advice})" if advice else "")
        + f"; accepted: {', '.join(accepted)}"
    )


def _check_k(k: Any, name: str) -> None:
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ConfigurationError(f"{name} must be a whole number >= 1, got {k!r}")
