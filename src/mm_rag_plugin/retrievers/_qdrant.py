"""Qdrant engine: embedded local mode on disk (``path=``), in memory, or a server / cluster (``url=``).

One collection holds every point: the dense vector ``clip`` (cosine) and the sparse vector
``bm25`` with ``modifier=IDF``. The index settings are kept in the collection's ``metadata``.

Quantization (``quantization="int8" | "binary"``): a new collection gets Qdrant's scalar or binary
quantization (kept in RAM) and dense searches ask for rescoring with the originals and
``oversampling``; an existing collection keeps the quantization it was created with. Local mode
(``path=`` / in memory) is an exact brute-force search: qdrant-client 1.20 accepts
``quantization_config`` at creation and silently drops it, and warns that ``search_params`` have no
effect, so in local mode the search parameters are not sent at all.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from .._optional import require
from ..errors import StoreError
from ._engine import DENSE, SPARSE, ListQuery, Point
from ._filters import Condition, parse_filters, to_qdrant
from .fusion import qdrant_rrf_k, rrf_sort_key

logger = logging.getLogger(__name__)

__all__ = ["QdrantEngine"]

_META_KEY = "mm_rag"


def _tie_margin(limit: int) -> int:
    return max(8, limit // 2)


class QdrantEngine:
    name = "qdrant"
    supports_server_fusion = True

    def __init__(
        self,
        *,
        collection: str,
        path: str | None = None,
        url: str | None = None,
        api_key: str | None = None,
        client: Any = None,
        in_memory: bool = False,
        quantization: str | None = None,
        oversampling: float | None = None,
        **client_kwargs: Any,
    ) -> None:
        qc = require("qdrant_client", extra="index", package="qdrant-client")
        self.models = qc.models
        self.collection = collection
        self.quantization, self.oversampling = quantization, oversampling
        self._owns_client = client is None
        try:
            if client is not None:
                self.client = client
            elif url is not None:
                self.client = qc.QdrantClient(url=url, api_key=api_key, **client_kwargs)
            elif in_memory or path is None:
                self.client = qc.QdrantClient(location=":memory:", **client_kwargs)
            else:
                self.client = qc.QdrantClient(path=str(path), **client_kwargs)
        except Exception as exc:  # locked folder, unreachable server ...
            raise StoreError(f"cannot open Qdrant ({url or path or ':memory:'}): {exc}") from exc
        opts = getattr(self.client, "init_options", None) or {}
        self.local = opts.get("path") is not None or opts.get("location") == ":memory:"
        self._search_params = None
        if quantization is not None and not self.local:
            m = self.models
            self._search_params = m.SearchParams(
                quantization=m.QuantizationSearchParams(rescore=True, oversampling=oversampling)
            )
        elif quantization is not None:
            logger.info("Qdrant local mode searches exactly; quantization=%r has no effect there", quantization)

    # ------------------------------------------------------------------ collection
    def stored_config(self) -> dict[str, Any] | None:
        try:
            if not self.client.collection_exists(self.collection):
                return None
            meta = self.client.get_collection(self.collection).config.metadata or {}
        except Exception as exc:
            raise StoreError(f"cannot read collection {self.collection!r}: {exc}") from exc
        return dict(meta.get(_META_KEY) or {"dim": None})

    def create(self, config: dict[str, Any]) -> None:
        m = self.models
        try:
            self.client.create_collection(
                self.collection,
                vectors_config={DENSE: m.VectorParams(size=int(config["dim"]), distance=m.Distance.COSINE)},
                sparse_vectors_config={SPARSE: m.SparseVectorParams(modifier=m.Modifier.IDF)},
                metadata={_META_KEY: config},
                quantization_config=self._quantization_config(),  # local mode accepts and drops it
            )
            with warnings.catch_warnings():  # local mode warns that payload indexes do nothing
                warnings.simplefilter("ignore")
                for key in ("kind", "source"):
                    self.client.create_payload_index(self.collection, key, m.PayloadSchemaType.KEYWORD)
                self.client.create_payload_index(self.collection, "page", m.PayloadSchemaType.INTEGER)
        except Exception as exc:
            raise StoreError(f"cannot create collection {self.collection!r}: {exc}") from exc

    def _quantization_config(self) -> Any:
        m = self.models
        if self.quantization == "int8":
            cfg = m.ScalarQuantizationConfig(type=m.ScalarType.INT8, quantile=0.99, always_ram=True)
            return m.ScalarQuantization(scalar=cfg)
        if self.quantization == "binary":
            return m.BinaryQuantization(binary=m.BinaryQuantizationConfig(always_ram=True))
        return None

    # ------------------------------------------------------------------ writes
    def existing(self, ids: Sequence[str]) -> set[str]:
        if not ids:
            return set()
        recs = self.client.retrieve(self.collection, list(ids), with_payload=False, with_vectors=False)
        return {str(r.id) for r in recs}

    def upsert(self, points: Sequence[Point]) -> None:
        m = self.models
        structs = []
        for p in points:
            vec: dict[str, Any] = {DENSE: p.dense.tolist()}
            if len(p.sparse):
                vec[SPARSE] = m.SparseVector(indices=p.sparse.indices.tolist(), values=p.sparse.values.tolist())
            structs.append(m.PointStruct(id=p.id, vector=vec, payload=p.payload))
        try:
            self.client.upsert(self.collection, points=structs, wait=True)
        except Exception as exc:
            raise StoreError(f"upsert of {len(structs)} points into {self.collection!r} failed: {exc}") from exc

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            self.client.delete(self.collection, points_selector=self.models.PointIdsList(points=list(ids)), wait=True)

    def ids_for_source(self, source: str) -> set[str]:
        flt = to_qdrant(parse_filters({"source": source}), self.models)
        out: set[str] = set()
        offset = None
        while True:
            recs, offset = self.client.scroll(
                self.collection, scroll_filter=flt, limit=1024, offset=offset, with_payload=False, with_vectors=False
            )
            out.update(str(r.id) for r in recs)
            if offset is None:
                return out

    def count(self, kind: str | None = None) -> int:
        flt = to_qdrant(parse_filters({"kind": kind}), self.models) if kind else None
        return int(self.client.count(self.collection, count_filter=flt, exact=True).count)

    # ------------------------------------------------------------------ reads
    def _request(self, q: ListQuery, conditions: tuple[Condition, ...], cls: Any) -> Any:
        m = self.models
        conds = conditions + (tuple(parse_filters({"kind": q.kind})) if q.kind else ())
        if q.sparse is not None:
            query: Any = m.SparseVector(indices=q.sparse.indices.tolist(), values=q.sparse.values.tolist())
            using = SPARSE
        else:
            query, using = np.asarray(q.dense, dtype=np.float32).tolist(), DENSE
        kw: dict[str, Any] = dict(query=query, using=using, filter=to_qdrant(conds, m), limit=q.limit)
        if q.sparse is None and self._search_params is not None:
            kw["params"] = self._search_params
        if q.min_score is not None:
            kw["score_threshold"] = q.min_score
        if cls is m.QueryRequest:
            kw["with_payload"] = False
        return cls(**kw)

    def search(self, queries: Sequence[ListQuery], conditions: tuple[Condition, ...]) -> list[list[tuple[str, float]]]:
        if not queries:
            return []
        # fetch a margin more, so that equal scores at the cut are resolved by id as in every engine
        reqs = [
            self._request(replace(q, limit=q.limit + _tie_margin(q.limit)), conditions, self.models.QueryRequest)
            for q in queries
        ]
        try:
            responses = self.client.query_batch_points(self.collection, requests=reqs)
        except Exception as exc:
            raise StoreError(f"query on {self.collection!r} failed: {exc}") from exc
        out = [[(str(p.id), float(p.score)) for p in r.points] for r in responses]
        return [sorted(r, key=lambda t: rrf_sort_key(t[1], t[0]))[: q.limit] for q, r in zip(queries, out, strict=True)]

    def fused(
        self, queries: Sequence[ListQuery], conditions: tuple[Condition, ...], *, rrf_k: float, limit: int
    ) -> list[tuple[str, float]]:
        """Server-side fusion: Query API prefetch + RRF (equal weights)."""
        m = self.models
        prefetch = [self._request(q, conditions, m.Prefetch) for q in queries]
        try:
            res = self.client.query_points(
                self.collection,
                prefetch=prefetch,
                query=m.RrfQuery(rrf=m.Rrf(k=qdrant_rrf_k(rrf_k))),
                limit=limit,
                with_payload=False,
            )
        except Exception as exc:
            raise StoreError(f"fused query on {self.collection!r} failed: {exc}") from exc
        return [(str(p.id), float(p.score)) for p in res.points]

    def payloads(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        recs = self.client.retrieve(self.collection, list(ids), with_payload=True, with_vectors=False)
        return {str(r.id): dict(r.payload or {}) for r in recs}

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        if not ids:
            return {}
        recs = self.client.retrieve(self.collection, list(ids), with_payload=False, with_vectors=[DENSE])
        out = {}
        for r in recs:
            v = r.vector.get(DENSE) if isinstance(r.vector, dict) else r.vector
            if v is not None:
                out[str(r.id)] = np.asarray(v, dtype=np.float32)
        return out

    def memory_bytes(self) -> dict[str, int]:
        return {}  # Qdrant manages its own memory

    def close(self) -> None:
        if self._owns_client:
            self.client.close()
