"""Items addressed by the caller's ids: the core of the LangChain and LlamaIndex vector stores.

The index proper addresses points by content (re-reading a file adds nothing). Framework vector
stores address them by the ids their users pass: ``add(..., ids=["1"])`` twice replaces item
``"1"``, ``delete(["1"])`` removes it, ``get(["1"])`` reads it back. :class:`KeyedStore` gives those
semantics over a :class:`~.index.MultiModalIndex` (Qdrant Edge or a Qdrant server), with the same
manifest checks, vector checks and BM25 vectors as every other write, so the framework stores can
be searched densely, by keywords, fused (RRF), or with maximal marginal relevance.

An item added through a framework keeps that framework's metadata verbatim (``framework`` in its
payload says which); items ingested from files answer with the library's flat chunk metadata.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .._payload import chunk_to_payload, payload_to_chunk
from ..errors import ConfigurationError, InvalidInputError
from ..types import Chunk
from ._filters import Condition, matches_nothing
from .engine import ListQuery, Point
from .fusion import DEFAULT_RRF_K, rrf
from .index import MultiModalIndex, key_point_id

__all__ = ["KeyedStore", "Stored", "mmr_select"]

Mode = Literal["dense", "keyword", "hybrid"]


@dataclass(frozen=True, slots=True)
class Stored:
    """One stored item: the caller's id, the chunk, its raw payload, and a search score."""

    key: str
    chunk: Chunk
    payload: Mapping[str, Any]
    score: float | None = None
    pid: str = ""  # the point id in the store

    @property
    def framework(self) -> str | None:
        """The framework that added the item (``"langchain"``, ``"llama_index"``), or None."""
        return self.payload.get("framework")

    @property
    def user_metadata(self) -> dict[str, Any]:
        """The metadata to show a framework user: verbatim for items a framework added, the flat
        chunk metadata for items ingested from files."""
        if self.framework:
            return dict(self.payload.get("metadata") or {})
        return chunk_to_payload(self.chunk)


class KeyedStore:
    """Id-addressed writes and reads, and searches, over *index*.

    ``kind="text"`` or ``"image"`` restricts every read to that kind, and gives the store ids of
    its own (LlamaIndex keeps text and images in two stores of one multimodal index)."""

    def __init__(self, index: MultiModalIndex, *, kind: Literal["text", "image"] | None = None) -> None:
        if kind not in (None, "text", "image"):
            raise ConfigurationError(f"kind must be None, 'text' or 'image', got {kind!r}")
        self.index = index
        self.kind = kind

    def point_id(self, key: str) -> str:
        """Where the item *key* lives: a store of one kind keeps its own ids (LlamaIndex stores an
        image node's text in the text store and its image in the image store, under one node id)."""
        return key_point_id(key if self.kind is None else f"{self.kind}\x1f{key}")

    # ------------------------------------------------------------------ writes
    def put(
        self,
        items: Sequence[tuple[str, Chunk, np.ndarray | None]],
        *,
        framework: str,
        extra: Sequence[Mapping[str, Any]] | None = None,
    ) -> list[str]:
        """Store ``(id, chunk, vector)`` items, replacing items with the same id (the last of
        repeated ids wins). *extra*: payload fields per item (``ref_doc_id``). Returns the ids.
        The whole call is checked before anything is written."""
        points: dict[str, Point] = {}
        for n, (key, chunk, vector) in enumerate(items):
            if not isinstance(key, str) or not key:
                raise InvalidInputError(f"ids must be non-empty strings, got {key!r}", source=f"ids[{n}]")
            point = self.index.make_point(chunk, vector, key=key, point_id=self.point_id(key))
            point.payload["framework"] = framework
            if extra is not None:
                point.payload.update(extra[n])
            points[point.id] = point
        self.index.write_points(list(points.values()))
        return [key for key, _, _ in items]

    def delete(self, keys: Sequence[str]) -> int:
        """Remove the items with these ids (ids not stored are ignored); returns how many were."""
        return self.index.delete([self.point_id(k) for k in keys])

    def delete_where(self, conditions: tuple[Condition, ...]) -> int:
        """Remove every item matching *conditions* (at least one condition is required)."""
        if not conditions:
            raise InvalidInputError("delete_where needs a filter (refusing to delete everything)", source="filters")
        return self.index.delete_where(self._conditions(conditions))

    def clear(self) -> int:
        """Remove every item (of this store's kind)."""
        return self.index.delete_where(self._conditions(()))

    # ------------------------------------------------------------------ reads
    def get(self, keys: Sequence[str]) -> list[Stored]:
        """The stored items with these ids, in the order asked (ids not stored are left out)."""
        pids = [self.point_id(k) for k in keys]
        payloads = self.index.payloads(pids)
        out = []
        for pid in pids:
            p = payloads.get(pid)
            if p is not None and (self.kind is None or p.get("kind") == self.kind):
                out.append(self._stored(pid, p))
        return out

    def get_where(self, conditions: tuple[Condition, ...]) -> list[Stored]:
        """Every stored item matching *conditions* (of this store's kind)."""
        pids = self.index.ids_where(self._conditions(conditions))
        payloads = self.index.payloads(pids)
        return [self._stored(pid, payloads[pid]) for pid in pids if pid in payloads]

    def _stored(self, pid: str, payload: dict[str, Any], score: float | None = None) -> Stored:
        return Stored(str(payload.get("key") or pid), payload_to_chunk(payload), payload, score, pid)

    def _conditions(self, conditions: tuple[Condition, ...]) -> tuple[Condition, ...]:
        if self.kind is None:
            return conditions
        return (*conditions, Condition("kind", "eq", self.kind))

    def search(
        self,
        *,
        vector: np.ndarray | None = None,
        text: str | None = None,
        k: int = 4,
        conditions: tuple[Condition, ...] = (),
        mode: Mode = "dense",
        rrf_k: float = DEFAULT_RRF_K,
        weights: Mapping[str, float] | None = None,
        prefetch_k: int | None = None,
        vectors_into: dict[str, np.ndarray] | None = None,
    ) -> list[Stored]:
        """The best *k* items, best first.

        ``dense``: cosine similarity to *vector* (score in [-1, 1]); ``keyword``: BM25 on *text*;
        ``hybrid``: dense text, dense image and BM25 lists fused by weighted RRF (the retrievers'
        fusion; score is the fused score)."""
        if not isinstance(k, int) or isinstance(k, bool) or k < 1:
            raise InvalidInputError(f"k must be an integer >= 1, got {k!r}")
        if matches_nothing(conditions):
            return []
        conditions = self._conditions(conditions)
        depth = prefetch_k or max(50, 4 * k)
        if mode == "dense":
            lists = [ListQuery("dense", k, dense=self._vector(vector))]
        elif mode == "keyword":
            lists = self._keyword(text, k)
        elif mode == "hybrid":
            lists = self._keyword(text, depth)
            if vector is not None:
                vec = self._vector(vector)
                kinds = [self.kind] if self.kind else ["text", "image"]
                lists += [ListQuery(f"dense_{kind}", depth, dense=vec, kind=kind) for kind in kinds]
        else:
            raise ConfigurationError(f"mode must be 'dense', 'keyword' or 'hybrid', got {mode!r}")
        if not lists:
            return []
        found = self.index.search(lists, conditions, vectors=vectors_into is not None)  # payloads come with the hits
        if mode == "hybrid":
            fused = rrf({q.name: r for q, r in zip(lists, found.lists, strict=True)}, k=rrf_k, weights=weights)
            ranked = [(f.id, f.score) for f in fused[:k]]
        else:
            ranked = found.lists[0][:k]
        payloads = found.payloads
        out = [self._stored(pid, payloads[pid], score) for pid, score in ranked if pid in payloads]
        if vectors_into is not None:  # the hits' dense vectors, from the same call (MMR)
            vectors_into.update(found.vectors)
        return out

    def _vector(self, vector: Any) -> np.ndarray:
        if self.index.keyword_search_only:
            raise ConfigurationError(f"{self.index.where}: this index is searched by keywords only (no dense vectors)")
        vec = np.asarray(vector, dtype=np.float32).reshape(-1)
        if vec.shape != (self.index.dim,) or not np.isfinite(vec).all():
            raise InvalidInputError(f"query vector must be {self.index.dim} finite numbers, got shape {vec.shape}")
        return vec

    def _keyword(self, text: str | None, depth: int) -> list[ListQuery]:
        if not text or not text.strip():
            return []
        sparse = self.index.bm25.encode_query(text)
        return [ListQuery("bm25", depth, sparse=sparse)] if len(sparse) else []

    def mmr(
        self,
        vector: np.ndarray,
        *,
        k: int = 4,
        fetch_k: int = 20,
        lambda_mult: float = 0.5,
        conditions: tuple[Condition, ...] = (),
    ) -> list[Stored]:
        """Maximal marginal relevance: *fetch_k* nearest items, then *k* of them chosen one by one
        for similarity to the query minus ``1 - lambda_mult`` times similarity to those already
        chosen (``lambda_mult=1``: plain similarity; 0: maximal diversity)."""
        if not 0.0 <= float(lambda_mult) <= 1.0:
            raise InvalidInputError(f"lambda_mult must be between 0 and 1, got {lambda_mult!r}")
        if not isinstance(fetch_k, int) or fetch_k < 1:
            raise InvalidInputError(f"fetch_k must be an integer >= 1, got {fetch_k!r}")
        vecs: dict[str, np.ndarray] = {}
        candidates = self.search(vector=vector, k=max(fetch_k, k), conditions=conditions, mode="dense", vectors_into=vecs)
        if not candidates:
            return []
        rows = [vecs.get(s.pid) for s in candidates]
        usable = [(s, v) for s, v in zip(candidates, rows, strict=True) if v is not None]
        chosen = mmr_select(self._vector(vector), np.stack([v for _, v in usable]), k, float(lambda_mult)) if usable else []
        return [usable[i][0] for i in chosen]


def mmr_select(query: np.ndarray, vectors: np.ndarray, k: int, lambda_mult: float) -> list[int]:
    """Indices of *k* rows of *vectors* chosen by maximal marginal relevance to *query* (cosine)."""
    q = query / max(float(np.linalg.norm(query)), 1e-12)
    v = vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    relevance = v @ q
    chosen: list[int] = []
    redundancy = np.full(len(v), -np.inf)
    for _ in range(min(k, len(v))):
        penalty = np.where(np.isinf(redundancy), 0.0, redundancy)
        score = lambda_mult * relevance - (1.0 - lambda_mult) * penalty
        score[chosen] = -np.inf
        best = int(np.argmax(score))
        chosen.append(best)
        redundancy = np.maximum(redundancy, v @ v[best])
    return chosen
