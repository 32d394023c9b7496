"""Remote engine: a Qdrant server or cluster through qdrant-client (``url=`` or ``client=``).

One collection holds every point: the dense vector ``clip`` (cosine; absent in a keyword-only
index) and the sparse vector ``bm25`` with ``modifier=IDF``. The index manifest is kept in the
collection's ``metadata``, so every client of the collection sees what it holds.

Quantization (``quantization="int8" | "binary"``): a new collection gets Qdrant's scalar or binary
quantization (kept in RAM) and dense searches ask for rescoring with the originals and
``oversampling``; an existing collection keeps the quantization it was created with.

Folders are never opened with qdrant-client's local mode (it unpickles what it reads); a
``client=`` built on local mode works (the tests use it as a stand-in for a server), and then the
search parameters, which local mode ignores with a warning, are not sent.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator, Sequence, Set
from dataclasses import replace
from typing import Any

import numpy as np

from .._optional import require
from ..errors import StoreError
from ._filters import Condition, to_qdrant
from .engine import (
    DENSE,
    INTEGER_FIELDS,
    KEYWORD_FIELDS,
    SPARSE,
    ListQuery,
    Point,
    dense_vectors,
    ranked,
    record_to_point,
    sources_payload,
    tie_margin,
)
from .fusion import qdrant_rrf_k

logger = logging.getLogger(__name__)

__all__ = ["RemoteEngine"]

_META_KEY = "mm_rag"


class RemoteEngine:
    name = "qdrant"

    def __init__(
        self,
        *,
        collection: str,
        url: str | None = None,
        api_key: str | None = None,
        client: Any = None,
        quantization: str | None = None,
        oversampling: float | None = None,
        **client_kwargs: Any,
    ) -> None:
        qc = require("qdrant_client", extra="index", package="qdrant-client")
        self.models = qc.models
        self.collection = collection
        self.quantization, self.oversampling = quantization, oversampling
        self._owns_client = client is None
        if client is None and url is None:
            raise StoreError("a Qdrant server engine needs url= or client=")
        try:
            self.client = client if client is not None else qc.QdrantClient(url=url, api_key=api_key, **client_kwargs)
        except Exception as exc:  # bad URL, bad options
            raise StoreError(f"cannot connect to Qdrant at {url}: {exc}") from exc
        self.where = f"{url or 'client'}/{collection}"
        opts = getattr(self.client, "init_options", None) or {}
        self.local = opts.get("path") is not None or opts.get("location") == ":memory:"
        self._search_params = None
        if quantization is not None and not self.local:
            m = self.models
            self._search_params = m.SearchParams(
                quantization=m.QuantizationSearchParams(rescore=True, oversampling=oversampling)
            )
        self.has_dense = False

    # ------------------------------------------------------------------ manifest and lifecycle
    def read_manifest(self) -> dict[str, Any] | None:
        try:
            if not self.client.collection_exists(self.collection):
                return None
            info = self.client.get_collection(self.collection)
        except Exception as exc:
            raise StoreError(f"cannot read collection {self.where}: {exc}") from exc
        vectors = info.config.params.vectors
        self.has_dense = isinstance(vectors, dict) and DENSE in vectors
        meta = info.config.metadata or {}
        found = meta.get(_META_KEY)
        if not isinstance(found, dict):
            raise StoreError(f"collection {self.where} was not created by mm-rag-plugin (no manifest in its metadata)")
        return dict(found)

    def create(self, manifest: dict[str, Any]) -> None:
        m = self.models
        dim = manifest.get("dim")
        vectors = {DENSE: m.VectorParams(size=int(dim), distance=m.Distance.COSINE)} if dim else {}
        try:
            self.client.create_collection(
                self.collection,
                vectors_config=vectors,
                sparse_vectors_config={SPARSE: m.SparseVectorParams(modifier=m.Modifier.IDF)},
                metadata={_META_KEY: manifest},
                quantization_config=self._quantization_config() if dim else None,
            )
            with warnings.catch_warnings():  # local mode warns that payload indexes do nothing
                warnings.simplefilter("ignore")
                for key in KEYWORD_FIELDS:
                    self.client.create_payload_index(self.collection, key, m.PayloadSchemaType.KEYWORD)
                for key in INTEGER_FIELDS:
                    self.client.create_payload_index(self.collection, key, m.PayloadSchemaType.INTEGER)
        except Exception as exc:
            raise StoreError(f"cannot create collection {self.where}: {exc}") from exc
        self.has_dense = bool(dim)

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        try:
            self.client.update_collection(self.collection, metadata={_META_KEY: manifest})
        except Exception as exc:
            raise StoreError(f"cannot update the manifest of {self.where}: {exc}") from exc

    def _quantization_config(self) -> Any:
        m = self.models
        if self.quantization == "int8":
            cfg = m.ScalarQuantizationConfig(type=m.ScalarType.INT8, quantile=0.99, always_ram=True)
            return m.ScalarQuantization(scalar=cfg)
        if self.quantization == "binary":
            return m.BinaryQuantization(binary=m.BinaryQuantizationConfig(always_ram=True))
        return None

    def optimize(self) -> None:
        """The server optimizes in the background."""

    def close(self) -> None:
        if self._owns_client:
            self.client.close()

    # ------------------------------------------------------------------ writes
    def upsert(self, points: Sequence[Point]) -> None:
        if not points:
            return
        m = self.models
        structs = []
        for p in points:
            vec: dict[str, Any] = {}
            if p.dense is not None:
                vec[DENSE] = p.dense.tolist()
            if len(p.sparse):
                vec[SPARSE] = m.SparseVector(indices=p.sparse.indices.tolist(), values=p.sparse.values.tolist())
            structs.append(m.PointStruct(id=p.id, vector=vec, payload=p.payload))
        try:
            self.client.upsert(self.collection, points=structs, wait=True)
        except Exception as exc:
            raise StoreError(f"upsert of {len(structs)} points into {self.where} failed: {exc}") from exc

    def set_sources(self, updates: dict[str, list[str]], image_follows: Set[str] = frozenset()) -> None:
        for pid, sources in updates.items():
            payload = sources_payload(sources, pid in image_follows)
            self.client.set_payload(self.collection, payload=payload, points=[pid], wait=True)

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            self.client.delete(self.collection, points_selector=self.models.PointIdsList(points=list(ids)), wait=True)

    # ------------------------------------------------------------------ reads
    def existing(self, ids: Sequence[str]) -> dict[str, list[str]]:
        if not ids:
            return {}
        recs = self.client.retrieve(self.collection, list(ids), with_payload=["sources"], with_vectors=False)
        return {str(r.id): list((r.payload or {}).get("sources") or []) for r in recs}

    def with_source(self, source: str) -> dict[str, list[str]]:
        flt = to_qdrant((Condition("source", "eq", source),), self.models)
        out: dict[str, list[str]] = {}
        offset = None
        while True:
            recs, offset = self.client.scroll(
                self.collection, scroll_filter=flt, limit=1024, offset=offset, with_payload=["sources"], with_vectors=False
            )
            out.update({str(r.id): list((r.payload or {}).get("sources") or []) for r in recs})
            if offset is None:
                return out

    def sources(self) -> list[str]:
        res = self.client.facet(self.collection, key="sources", limit=1 << 30, exact=True)
        return sorted(str(h.value) for h in res.hits)

    def ids_where(self, conditions: tuple[Condition, ...]) -> list[str]:
        flt = to_qdrant(conditions, self.models)
        out: list[str] = []
        offset = None
        while True:
            recs, offset = self.client.scroll(
                self.collection, scroll_filter=flt, limit=1024, offset=offset, with_payload=False, with_vectors=False
            )
            out.extend(str(r.id) for r in recs)
            if offset is None:
                return out

    def count(self, kind: str | None = None) -> int:
        flt = to_qdrant((Condition("kind", "eq", kind),), self.models) if kind else None
        return int(self.client.count(self.collection, count_filter=flt, exact=True).count)

    def _request(self, q: ListQuery, conditions: tuple[Condition, ...], cls: Any) -> Any:
        m = self.models
        conds = conditions + ((Condition("kind", "eq", q.kind),) if q.kind else ())
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
            self._request(replace(q, limit=q.limit + tie_margin(q.limit)), conditions, self.models.QueryRequest)
            for q in queries
        ]
        try:
            responses = self.client.query_batch_points(self.collection, requests=reqs)
        except Exception as exc:
            raise StoreError(f"query on {self.where} failed: {exc}") from exc
        return [
            ranked(((str(p.id), float(p.score)) for p in r.points), q.limit) for q, r in zip(queries, responses, strict=True)
        ]

    def fused(
        self,
        queries: Sequence[ListQuery],
        conditions: tuple[Condition, ...],
        *,
        rrf_k: float,
        weights: Sequence[float],
        limit: int,
    ) -> list[tuple[str, float]]:
        """Server-side fusion: Query API prefetch + weighted RRF, one request."""
        m = self.models
        prefetch = [self._request(q, conditions, m.Prefetch) for q in queries]
        try:
            res = self.client.query_points(
                self.collection,
                prefetch=prefetch,
                query=m.RrfQuery(rrf=m.Rrf(k=qdrant_rrf_k(rrf_k), weights=[float(w) for w in weights])),
                limit=limit,
                with_payload=False,
            )
        except Exception as exc:
            raise StoreError(f"fused query on {self.where} failed: {exc}") from exc
        return [(str(p.id), float(p.score)) for p in res.points]

    def payloads(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        recs = self.client.retrieve(self.collection, list(ids), with_payload=True, with_vectors=False)
        return {str(r.id): dict(r.payload or {}) for r in recs}

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        if not ids or not self.has_dense:
            return {}
        return dense_vectors(self.client.retrieve(self.collection, list(ids), with_payload=False, with_vectors=[DENSE]))

    def scan(self, batch: int = 256) -> Iterator[list[Point]]:
        offset = None
        while True:
            recs, offset = self.client.scroll(self.collection, limit=batch, offset=offset, with_payload=True, with_vectors=True)
            yield [record_to_point(str(r.id), r.vector, r.payload) for r in recs]
            if offset is None:
                return

    def memory_bytes(self) -> dict[str, int]:
        return {}  # the server manages its own memory
