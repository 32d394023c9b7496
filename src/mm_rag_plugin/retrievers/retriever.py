"""``FusedRetriever``: dense (text->text, text->image) and BM25 lists fused by weighted RRF.

Lists (each searched ``prefetch_k`` deep, deeper than the final ``k``):

* ``dense_text``: the query vector against text chunks;
* ``dense_image``: the query vector against images;
* ``bm25``: the query words against chunk text and image caption / alt / OCR text;
* ``text_model`` (an index built with ``text_embedder=``): the query text by the index's text
  model against every chunk's ``text`` vector (text chunks, and images with caption / alt / OCR text).

The query vector is the text embedding, the image embedding (``image=``), or both fused
(the embedder's ``embed_query``). Fusion is client-side by default (one batched request for the
three lists; every hit explains its ranks), or ``fusion="server"``: Qdrant's Query API (prefetch +
weighted RRF) in one request, whose hits carry no per-list ranks unless ``explain=True`` asks for
them (that searches the three lists a second time, in a second request). With equal weights both give the same ranking (test); with unequal
weights Qdrant scores ``1 / (rank / w + k)``, ours ``w / (k + rank)``.
After fusion: score threshold, exact and near-duplicate removal, per-kind quotas, top ``k``.
``mode="dense"``, ``"keyword"`` and ``"mmr"`` search one list instead (see :mod:`.search`, the
searcher every entry point shares).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from functools import partial
from typing import Any, Literal

import numpy as np

from .._payload import payload_to_chunk
from ..errors import ConfigurationError, InvalidInputError
from ..types import Embedder, Hit, ImageInput
from ._filters import matches_nothing, parse_filters
from .fusion import DEFAULT_RRF_K
from .index import MultiModalIndex
from .search import LIST_NAMES, Mode, SearchOptions, search

logger = logging.getLogger(__name__)

__all__ = ["LIST_NAMES", "FusedRetriever"]


class FusedRetriever:
    """Hybrid multimodal retriever over a :class:`MultiModalIndex` (implements ``Retriever``).

    The options are :class:`~.search.SearchOptions`'s: ``mode`` (``"hybrid"`` by default;
    ``"dense"``, ``"keyword"``, ``"mmr"`` with ``lambda_mult``), ``weights`` per list (missing
    lists weigh 1; 0 disables a list), ``rrf_k`` the RRF constant, ``quotas`` a minimum number of
    hits per kind (``{"image": 2}``), ``score_threshold`` a minimum score, ``min_similarity`` a
    minimum cosine for dense candidates, ``dedupe`` removes repeated content (same image bytes,
    same normalised text) and, with ``near_duplicate_threshold``, hits whose vectors are that
    similar to a better hit of the same kind. ``fusion`` is ``"client"`` (one batched request for
    the three lists, fused here) or ``"server"`` (Qdrant fuses; one request). ``explain`` fills
    ``Hit.ranks`` / ``list_scores``: free with client fusion (the default there), a second search
    of the lists with server fusion (off by default). The same searcher serves both vector
    stores: the same options rank the same index the same way there.

    ``text_embedder``: the index's text model (a :class:`~mm_rag_plugin.types.TextEmbedder`), when
    it has one and the index was opened without it; a sentence-transformers model the index records
    is loaded by itself, any other must be given (or ``weights={"text_model": 0}``).
    """

    def __init__(
        self,
        index: MultiModalIndex,
        embedder: Embedder | None = None,
        *,
        k: int = 10,
        prefetch_k: int | None = None,
        weights: Mapping[str, float] | None = None,
        rrf_k: float = DEFAULT_RRF_K,
        quotas: Mapping[str, int] | None = None,
        score_threshold: float | None = None,
        min_similarity: float | None = None,
        dedupe: bool = True,
        near_duplicate_threshold: float | None = 0.98,
        fusion: Literal["client", "server"] = "client",
        explain: bool | None = None,
        mode: Mode = "hybrid",
        lambda_mult: float = 0.5,
        text_embedder: Any = None,
    ) -> None:
        self.index = index
        self.embedder = embedder or index.embedder
        keyword_only = getattr(index, "keyword_search_only", False)
        if self.embedder is None and not keyword_only:
            model = index.model
            if not model or model.get("name") is None:  # built from vectors the caller supplied (dim=)
                raise ConfigurationError(
                    "FusedRetriever needs the index's model (pass embedder= here or to the index), "
                    "or an index opened with keyword_only=True for keyword search"
                )
            # the index loads its own model (a ModelLoadError says how to get it, never a fallback)
            from .manifest import load_model

            index.attach(load_model(model))
            self.embedder = index.embedder
        options = SearchOptions(
            mode=mode, k=k, prefetch_k=prefetch_k, weights=weights, rrf_k=rrf_k, quotas=quotas,
            score_threshold=score_threshold, min_similarity=min_similarity, dedupe=dedupe,
            near_duplicate_threshold=near_duplicate_threshold, lambda_mult=lambda_mult, fusion=fusion, explain=explain,
        )
        if text_embedder is not None:
            index.attach_text(text_embedder)
        elif index.text_model is not None and index.text_embedder is None and not keyword_only and mode == "hybrid" and options.list_weights["text_model"] > 0:
            from ..embeddings.text_model import load_text_model

            index.attach_text(load_text_model(index.text_model))  # no fallback: a model it cannot load says why
        if keyword_only:
            if mode in ("dense", "mmr"):
                raise ConfigurationError(f"mode={mode!r} needs dense vectors; this index is searched by keywords only")
            options = options.replace(weights={**options.list_weights, "dense_text": 0.0, "dense_image": 0.0})
        self.options = options

    # the options, as attributes (read-only views of self.options)
    @property
    def k(self) -> int:
        return self.options.k

    @property
    def weights(self) -> Mapping[str, float]:
        return self.options.list_weights

    @property
    def quotas(self) -> Mapping[str, int]:
        return self.options.quotas or {}

    @property
    def fusion(self) -> str:
        return self.options.fusion

    @property
    def explain(self) -> bool:
        return self.options.explains

    def retrieve(
        self,
        query: str | None = None,
        *,
        image: ImageInput | None = None,
        k: int | None = None,
        filters: Mapping[str, Any] | None = None,
    ) -> list[Hit]:
        """The best *k* hits for a text query, an image (``image=``), or both; best first."""
        if query is not None and not isinstance(query, str):
            raise InvalidInputError(f"query must be a str, got {type(query).__name__}; pass images as image=")
        if query is not None and not query.strip():
            query = None
        if query is None and image is None:
            return []  # nothing to search for
        if image is not None and self.embedder is None:
            raise ConfigurationError("searching by image needs the index's model; this index is open for keyword search only")
        conditions = parse_filters(filters)
        if matches_nothing(conditions):
            return []
        matches = search(
            self.index, self.options, text=query, vector=self._vector(query, image), conditions=conditions, k=k
        )
        return [Hit(payload_to_chunk(m.payload, checked=True), m.score, dict(m.ranks), dict(m.list_scores)) for m in matches]

    def _vector(self, query: str | None, image: ImageInput | None) -> np.ndarray | None:
        """The query vector, when this search uses one (a keyword search embeds nothing)."""
        o = self.options
        if o.mode == "keyword" or (o.mode == "hybrid" and not (o.list_weights["dense_text"] or o.list_weights["dense_image"])):
            return None
        if self.embedder is None:
            raise ConfigurationError("dense search needs the index's model; this index is open for keyword search only")
        return np.asarray(self.embedder.embed_query(query, image=image), np.float32)

    async def aretrieve(
        self,
        query: str | None = None,
        *,
        image: ImageInput | None = None,
        k: int | None = None,
        filters: Mapping[str, Any] | None = None,
    ) -> list[Hit]:
        """:meth:`retrieve` in a worker thread (embedding is CPU/GPU work)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(None, partial(self.retrieve, query, image=image, k=k, filters=filters))


