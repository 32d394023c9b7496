"""``FusedRetriever``: dense (text->text, text->image) and BM25 lists fused by weighted RRF.

Lists (each searched ``prefetch_k`` deep, deeper than the final ``k``):

* ``dense_text``: the query vector against text chunks;
* ``dense_image``: the query vector against images;
* ``bm25``: the query words against chunk text and image caption / alt / OCR text.

The query vector is the text embedding, the image embedding (``image=``), or both fused
(the embedder's ``embed_query``). Fusion is client-side by default (one batched request for the
three lists; every hit explains its ranks), or ``fusion="server"``: Qdrant's Query API (prefetch +
weighted RRF) in one request, whose hits carry no per-list ranks unless ``explain=True`` asks for
them (that searches the three lists a second time, in a second request). With equal weights both give the same ranking (test); with unequal
weights Qdrant scores ``1 / (rank / w + k)``, ours ``w / (k + rank)``.
After fusion: score threshold, exact and near-duplicate removal, per-kind quotas, top ``k``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from functools import partial
from itertools import islice
from typing import Any, Literal

import numpy as np

from .._payload import payload_to_chunk
from ..errors import ConfigurationError, InvalidInputError
from ..types import Embedder, Hit, ImageInput
from ._filters import matches_nothing, parse_filters
from .engine import Found, ListQuery
from .fusion import DEFAULT_RRF_K, Fused, apply_quotas, dedupe_near, distinct, rrf, rrf_sort_key
from .index import MultiModalIndex

logger = logging.getLogger(__name__)

__all__ = ["LIST_NAMES", "FusedRetriever"]

LIST_NAMES = ("dense_text", "dense_image", "bm25")


class FusedRetriever:
    """Hybrid multimodal retriever over a :class:`MultiModalIndex` (implements ``Retriever``).

    ``weights`` per list (missing lists weigh 1; 0 disables a list), ``rrf_k`` the RRF constant,
    ``quotas`` a minimum number of hits per kind (``{"image": 2}``), ``score_threshold`` a minimum
    fused score, ``min_similarity`` a minimum cosine for dense candidates, ``dedupe`` removes
    repeated content (same image bytes, same normalised text) and, with
    ``near_duplicate_threshold``, hits whose vectors are that similar to a better hit of the same kind.
    ``fusion`` is ``"client"`` (one batched request for the three lists, fused here) or ``"server"``
    (Qdrant fuses; one request). ``explain`` fills ``Hit.ranks`` / ``list_scores``: free with client
    fusion (the default there), a second search of the lists with server fusion (off by default).
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
        if k < 1 or (prefetch_k is not None and prefetch_k < 1):
            raise ConfigurationError(f"k and prefetch_k must be >= 1, got {k=}, {prefetch_k=}")
        self.weights = {name: 1.0 for name in LIST_NAMES}
        for name, w in (weights or {}).items():
            if name not in LIST_NAMES or w < 0:
                raise ConfigurationError(f"weights: unknown list {name!r} or negative weight; lists are {LIST_NAMES}")
            self.weights[name] = float(w)
        if keyword_only:
            self.weights["dense_text"] = self.weights["dense_image"] = 0.0
        if fusion not in ("client", "server"):
            raise ConfigurationError(f"fusion must be 'client' or 'server', got {fusion!r}")
        self.k, self.prefetch_k, self.rrf_k = k, prefetch_k, rrf_k
        self.quotas = {kind: int(n) for kind, n in (quotas or {}).items()}
        if any(kind not in ("text", "image") for kind in self.quotas):
            raise ConfigurationError(f"quotas are per kind ('text', 'image'), got {sorted(self.quotas)}")
        if any(n < 0 for n in self.quotas.values()):
            raise ConfigurationError(f"quotas must be >= 0, got {self.quotas}")
        self.score_threshold, self.min_similarity = score_threshold, min_similarity
        self.dedupe, self.near_duplicate_threshold = dedupe, near_duplicate_threshold
        self.fusion = fusion
        self.explain = fusion == "client" if explain is None else bool(explain)

    # ------------------------------------------------------------------ query
    def _lists(self, query: str | None, image: ImageInput | None, depth: int, kind_filter: Any) -> list[ListQuery]:
        dense = [
            (name, kind)
            for name, kind in (("dense_text", "text"), ("dense_image", "image"))
            if self.weights[name] > 0 and kind_filter in (None, kind)
        ]
        out = []
        if dense:
            if self.embedder is None:
                raise ConfigurationError("dense search needs the index's model; this index is open for keyword search only")
            vec = np.asarray(self.embedder.embed_query(query, image=image), np.float32)
            for name, kind in dense:
                out.append(ListQuery(name, depth, dense=vec, kind=kind, min_score=self.min_similarity))
        if query and self.weights["bm25"] > 0:
            sparse = self.index.bm25.encode_query(query)
            if len(sparse):
                out.append(ListQuery("bm25", depth, sparse=sparse))
        return out

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
        k = self.k if k is None else int(k)
        if k < 1:
            raise InvalidInputError(f"k must be >= 1, got {k}")
        conditions = parse_filters(filters)
        if matches_nothing(conditions):
            return []
        kind_filter = next((c.value for c in conditions if c.key == "kind" and c.op == "eq"), None)
        depth = self.prefetch_k or max(50, 4 * k + sum(self.quotas.values()))
        lists = self._lists(query, image, depth, kind_filter)
        if not lists:
            return []
        fused, found = self._fuse(lists, conditions, depth)
        if self.score_threshold is not None:
            fused = [f for f in fused if f.score >= self.score_threshold]
        return self._finish(fused, found, k)

    def _fuse(self, lists: list[ListQuery], conditions: tuple, depth: int) -> tuple[list[Fused], Found]:
        """The fused ranking, and what post-processing reads (payloads; vectors when near
        duplicates are removed), all from one engine call."""
        vectors = self.dedupe and self.near_duplicate_threshold is not None
        if self.fusion == "client":
            found = self.index.search(lists, conditions, vectors=vectors)  # each list ranked by the engine
            fused = rrf({q.name: r for q, r in zip(lists, found.lists, strict=True)}, k=self.rrf_k, weights=self.weights)
            return fused, found
        fuse = (self.rrf_k, depth * len(lists), [self.weights[q.name] for q in lists])
        found = self.index.search(lists, conditions, fuse=fuse, vectors=vectors)
        pairs = sorted(found.lists[0], key=lambda t: rrf_sort_key(t[1], t[0]))
        if not self.explain:
            return [Fused(i, s) for i, s in pairs], found
        results = self.index.search_lists(lists, conditions)
        ranks: dict[str, dict[str, int]] = {}
        raw: dict[str, dict[str, float]] = {}
        for q, r in zip(lists, results, strict=True):
            for rank, (pid, score) in enumerate(r, start=1):
                ranks.setdefault(pid, {})[q.name] = rank
                raw.setdefault(pid, {})[q.name] = score
        return [Fused(i, s, ranks.get(i, {}), raw.get(i, {})) for i, s in pairs], found

    def _finish(self, fused: list[Fused], found: Found, k: int) -> list[Hit]:
        # Lazy stages over the hits and the payloads that came with them (exact duplicates out ->
        # near duplicates out -> the head); chunks are built only for the hits returned.
        want = k + sum(self.quotas.values())
        room = 3 * want if self.quotas else want  # quotas promote hits from below the first k
        payloads = found.payloads
        stream: Iterator[tuple[Fused, dict[str, Any]]] = ((f, payloads[f.id]) for f in fused if f.id in payloads)
        if self.dedupe:
            stream = distinct(stream, lambda it: _content_key(it[1]))
            if self.near_duplicate_threshold is not None:
                stream = self._near_distinct(stream, room, found.vectors)
        items = self._head(stream, room)
        if self.quotas:
            items = apply_quotas(items, k, _kind, self.quotas)
        return [
            Hit(payload_to_chunk(payload), f.score, dict(f.ranks), dict(f.list_scores)) for f, payload in items[:k]
        ]

    def _near_distinct(
        self, items: Iterator[tuple[Fused, dict[str, Any]]], batch: int, vectors: Mapping[str, np.ndarray]
    ) -> Iterator[tuple[Fused, dict[str, Any]]]:
        """*items* without those whose vector is ``near_duplicate_threshold``-similar to a better
        kept item of the same kind (vectors came with the search), as far as the reader pulls."""
        threshold = float(self.near_duplicate_threshold or 1.0)
        kept: list[tuple[Fused, dict[str, Any]]] = []
        while part := list(islice(items, batch)):
            # greedy in rank order: the items kept so far stay kept, each new one is checked
            # against them and against the better new ones
            head = kept + part
            merged = dedupe_near(head, [vectors.get(f.id) for f, _ in head], threshold, _kind)
            yield from merged[len(kept) :]
            removed = len(head) - len(merged)
            kept = merged
            batch = max(4, 2 * removed)  # about as many as were dropped, to refill the head

    def _head(self, items: Iterable[tuple[Fused, dict[str, Any]]], room: int) -> list:
        """The first *room* items, and more until every quota can be met; nothing deeper is read."""
        out, counts = [], dict.fromkeys(self.quotas, 0)
        for it in items:
            out.append(it)
            kind = _kind(it)
            if kind in counts:
                counts[kind] += 1
            if len(out) >= room and all(counts[q] >= n for q, n in self.quotas.items()):
                break
        return out

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

    def retrieve_many(self, queries: Sequence[str], *, k: int | None = None) -> list[list[Hit]]:
        return [self.retrieve(q, k=k) for q in queries]


def _content_key(payload: Mapping[str, Any]) -> tuple[str, str] | None:
    """Exact-duplicate key: the image bytes' hash, or the normalised text."""
    if payload.get("kind") == "image":
        h = payload.get("content_hash")
        return ("image", h) if h else None
    norm = " ".join(str(payload.get("text", "")).lower().split())
    return ("text", norm) if norm else None


def _kind(item: tuple[Fused, Mapping[str, Any]]) -> str:
    return item[1].get("kind", "text")
