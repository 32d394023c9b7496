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

import contextlib
import logging
import warnings
from collections.abc import Iterator, Sequence, Set
from dataclasses import replace
from typing import Any

import numpy as np

from .._optional import require
from ..errors import StoreError
from ._filters import Condition, FilterKit, build
from .engine import (
    DENSE,
    INTEGER_FIELDS,
    KEYWORD_FIELDS,
    SPARSE,
    TEXT,
    WINDOWS,
    Found,
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


def client_kit(m: Any) -> FilterKit:
    """Filters as ``qdrant_client.models`` spells them."""
    return FilterKit(
        Filter=m.Filter,
        FieldCondition=m.FieldCondition,
        match_value=lambda v: m.MatchValue(value=v),
        range=m.Range,
        is_empty=lambda key: m.IsEmptyCondition(is_empty=m.PayloadField(key=key)),
        has_no_id=lambda: m.HasIdCondition(has_id=[]),
    )


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


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
        self.kit = client_kit(qc.models)
        self.collection = collection
        self.quantization, self.oversampling = quantization, oversampling
        self._owns_client = client is None
        if client is None and url is None:
            raise StoreError("a Qdrant server engine needs url= or client=")
        try:
            self.client = client if client is not None else qc.QdrantClient(url=url, api_key=api_key, **client_kwargs)
        except Exception as exc:  # bad URL, bad options
            raise StoreError(f"cannot connect to Qdrant at {url}: {_one_line(exc)}") from exc
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
        self.has_text = False
        self.has_windows = False

    @contextlib.contextmanager
    def _mapped(self, what: str) -> Iterator[None]:
        """Every call to the server goes through here: a failure of qdrant-client or the transport
        (HTTP error, dropped connection, timeout, bad response) becomes one :class:`StoreError`
        naming the collection and what was being done, on one line."""
        try:
            yield
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"{self.where}: {what} failed: {_one_line(exc)}") from exc

    # ------------------------------------------------------------------ manifest and lifecycle
    def read_manifest(self) -> dict[str, Any] | None:
        with self._mapped("reading the collection"):
            if not self.client.collection_exists(self.collection):
                return None
            info = self.client.get_collection(self.collection)
        vectors = info.config.params.vectors
        self.has_dense = isinstance(vectors, dict) and DENSE in vectors
        self.has_text = isinstance(vectors, dict) and TEXT in vectors
        self.has_windows = isinstance(vectors, dict) and WINDOWS in vectors
        meta = info.config.metadata or {}
        found = meta.get(_META_KEY)
        if not isinstance(found, dict):
            raise StoreError(f"collection {self.where} was not created by mm-rag-plugin (no manifest in its metadata)")
        return dict(found)

    def create(self, manifest: dict[str, Any]) -> None:
        m = self.models
        dim = manifest.get("dim")
        vectors = {DENSE: m.VectorParams(size=int(dim), distance=m.Distance.COSINE)} if dim else {}
        text_dim = (manifest.get("text_model") or {}).get("dim")
        if text_dim:
            vectors[TEXT] = m.VectorParams(size=int(text_dim), distance=m.Distance.COSINE)
        windows = bool(dim) and manifest.get("clip_windows") is not None
        if dim and windows:  # CLIP windows of text chunks: one multivector, MaxSim over its rows
            vectors[WINDOWS] = m.VectorParams(
                size=int(dim), distance=m.Distance.COSINE,
                multivector_config=m.MultiVectorConfig(comparator=m.MultiVectorComparator.MAX_SIM),
            )
        with self._mapped("creating the collection"):
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
        self.has_dense = bool(dim)
        self.has_text = bool(text_dim)
        self.has_windows = windows

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        with self._mapped("updating the manifest"):
            self.client.update_collection(self.collection, metadata={_META_KEY: manifest})

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

    def flush(self) -> None:
        """The server flushes on its own."""

    def close(self) -> None:
        if self._owns_client:
            with self._mapped("closing the client"):
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
            if p.text is not None:
                vec[TEXT] = p.text.tolist()
            if p.windows is not None:
                vec[WINDOWS] = p.windows.tolist()
            if len(p.sparse):
                vec[SPARSE] = m.SparseVector(indices=p.sparse.indices.tolist(), values=p.sparse.values.tolist())
            structs.append(m.PointStruct(id=p.id, vector=vec, payload=p.payload))
        with self._mapped(f"upsert of {len(structs)} points"):
            self.client.upsert(self.collection, points=structs, wait=True)

    def set_sources(self, updates: dict[str, list[str]], image_follows: Set[str] = frozenset()) -> None:
        with self._mapped("updating sources"):
            for pid, sources in updates.items():
                payload = sources_payload(sources, pid in image_follows)
                self.client.set_payload(self.collection, payload=payload, points=[pid], wait=True)

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            with self._mapped(f"deleting {len(ids)} points"):
                self.client.delete(self.collection, points_selector=self.models.PointIdsList(points=list(ids)), wait=True)

    # ------------------------------------------------------------------ reads
    def existing(self, ids: Sequence[str]) -> dict[str, list[str]]:
        if not ids:
            return {}
        with self._mapped("reading points"):
            recs = self.client.retrieve(self.collection, list(ids), with_payload=["sources"], with_vectors=False)
        return {str(r.id): list((r.payload or {}).get("sources") or []) for r in recs}

    def _scroll(self, flt: Any, with_payload: Any, batch: int = 1024, with_vectors: bool = False) -> Iterator[list[Any]]:
        offset = None
        while True:
            with self._mapped("reading points"):
                recs, offset = self.client.scroll(
                    self.collection, scroll_filter=flt, limit=batch, offset=offset, with_payload=with_payload, with_vectors=with_vectors
                )
            yield recs
            if offset is None:
                return

    def with_source(self, source: str) -> dict[str, list[str]]:
        flt = build((Condition("source", "eq", source),), self.kit)
        out: dict[str, list[str]] = {}
        for recs in self._scroll(flt, ["sources"]):
            out.update({str(r.id): list((r.payload or {}).get("sources") or []) for r in recs})
        return out

    def sources(self) -> list[str]:
        with self._mapped("listing sources"):
            res = self.client.facet(self.collection, key="sources", limit=1 << 30, exact=True)
        return sorted(str(h.value) for h in res.hits)

    def ids_where(self, conditions: tuple[Condition, ...]) -> list[str]:
        flt = build(conditions, self.kit)
        return [str(r.id) for recs in self._scroll(flt, False) for r in recs]

    def count(self, kind: str | None = None) -> int:
        flt = build((Condition("kind", "eq", kind),), self.kit) if kind else None
        with self._mapped("counting points"):
            return int(self.client.count(self.collection, count_filter=flt, exact=True).count)

    def _request(self, q: ListQuery, conditions: tuple[Condition, ...], cls: Any, **extra: Any) -> Any:
        m = self.models
        conds = conditions + ((Condition("kind", "eq", q.kind),) if q.kind else ())
        if q.sparse is not None:
            query: Any = m.SparseVector(indices=q.sparse.indices.tolist(), values=q.sparse.values.tolist())
            using = SPARSE
        else:
            query, using = np.asarray(q.dense, dtype=np.float32).tolist(), q.using
            if using == WINDOWS:  # one query vector against each point's windows: a one-row multivector
                query = [query]
        kw: dict[str, Any] = dict(query=query, using=using, filter=build(conds, self.kit), limit=q.limit, **extra)
        if q.sparse is None and self._search_params is not None:
            kw["params"] = self._search_params
        if q.min_score is not None:
            kw["score_threshold"] = q.min_score
        return cls(**kw)

    def _vector_selector(self, with_vector: bool) -> Any:
        return [DENSE] if with_vector and self.has_dense else False

    def search(
        self, queries: Sequence[ListQuery], conditions: tuple[Condition, ...], *, with_payload: bool = False, with_vector: bool = False
    ) -> Found:
        if not queries:
            return Found([])
        # fetch a margin more, so that equal scores at the cut are resolved by id as in every engine
        extra = dict(with_payload=with_payload, with_vector=self._vector_selector(with_vector))
        reqs = [
            self._request(replace(q, limit=q.limit + tie_margin(q.limit)), conditions, self.models.QueryRequest, **extra)
            for q in queries
        ]
        with self._mapped("query"):
            responses = self.client.query_batch_points(self.collection, requests=reqs)
        found = Found([
            ranked(((str(p.id), float(p.score)) for p in r.points), q.limit) for q, r in zip(queries, responses, strict=True)
        ])
        if with_payload or with_vector:
            for r in responses:
                _keep(found, r.points, with_payload, with_vector)
        return found

    def fused(
        self,
        queries: Sequence[ListQuery],
        conditions: tuple[Condition, ...],
        *,
        rrf_k: float,
        weights: Sequence[float],
        limit: int,
        with_payload: bool = False,
        with_vector: bool = False,
    ) -> Found:
        """Server-side fusion: Query API prefetch + weighted RRF, one request."""
        m = self.models
        prefetch = [self._request(q, conditions, m.Prefetch) for q in queries]
        with self._mapped("fused query"):
            res = self.client.query_points(
                self.collection,
                prefetch=prefetch,
                query=m.RrfQuery(rrf=m.Rrf(k=qdrant_rrf_k(rrf_k), weights=[float(w) for w in weights])),
                limit=limit,
                with_payload=with_payload,
                with_vectors=self._vector_selector(with_vector),
            )
        found = Found([[(str(p.id), float(p.score)) for p in res.points]])
        if with_payload or with_vector:
            _keep(found, res.points, with_payload, with_vector)
        return found

    def payloads(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        with self._mapped("reading payloads"):
            recs = self.client.retrieve(self.collection, list(ids), with_payload=True, with_vectors=False)
        return {str(r.id): dict(r.payload or {}) for r in recs}

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        if not ids or not self.has_dense:
            return {}
        with self._mapped("reading vectors"):
            recs = self.client.retrieve(self.collection, list(ids), with_payload=False, with_vectors=[DENSE])
        return dense_vectors(recs)

    def scan(self, batch: int = 256) -> Iterator[list[Point]]:
        for recs in self._scroll(None, True, batch, with_vectors=True):
            yield [record_to_point(str(r.id), r.vector, r.payload) for r in recs]

    def memory_bytes(self) -> dict[str, int]:
        return {}  # the server manages its own memory


def _keep(found: Found, points: Sequence[Any], with_payload: bool, with_vector: bool) -> None:
    for p in points:
        pid = str(p.id)
        if with_payload:
            found.payloads[pid] = dict(p.payload or {})
        if with_vector:
            v = p.vector.get(DENSE) if isinstance(p.vector, dict) else p.vector
            if v is not None:
                found.vectors[pid] = np.asarray(v, np.float32)
