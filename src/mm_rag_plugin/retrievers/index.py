"""``MultiModalIndex``: text chunks and images in one collection, dense CLIP plus BM25.

Dense layout: ONE shared vector ``clip`` per point. CLIP maps texts (text tower) and images (image
tower) into the same space, so a text chunk gets its text embedding and an image its image
embedding, in the same named vector. The lists "dense text->text" and "dense text->image" are the
same query vector searched with a ``kind`` filter (``text`` / ``image``); an image query or a
text+image query works the same way, and a cross-kind "all dense" search would need no extra
storage. Two named vectors (``text``, ``image``) would hold exactly the same numbers, each point
having only one of them, and would buy nothing but a second HNSW graph on a server; one vector
keeps every engine simple and the numpy engine to a single matrix product per query. A model
whose towers do NOT share a space cannot be used with this layout (nor with CLIP-style search).

Sparse: ``bm25`` over chunk text and, for images, caption + alt text + OCR text
(:attr:`ImageChunk.search_text`), so images are reachable by the words printed in them.

Engines (chosen at construction, same results on the same data):

* ``engine="auto"`` (default): the numpy engine for a folder (Qdrant if the folder already holds a
  Qdrant local index), Qdrant for ``url=`` / ``client=`` / no path (in-memory Qdrant).
* ``engine="qdrant"``: qdrant-client. ``MultiModalIndex("folder")`` runs Qdrant's
  embedded local mode on disk, ``MultiModalIndex(url="http://host:6333", api_key=...)`` a Qdrant
  server or cluster (the scale-out path: HNSW, payload indexes on ``kind``/``source``/``page``,
  server-side RRF), ``client=`` any ``QdrantClient`` you built.
* ``engine="numpy"``: the fast embedded engine (exact search in numpy, stored in one SQLite file in
  the folder); ~10-20x faster than Qdrant local mode at 50k points. See ``_numpy.py``.

Ids are content-derived (a hash of the whole payload), so re-adding the same chunks adds nothing,
and changed chunks get new ids while their old points are removed (``replace_sources``).
Payloads hold the chunk's fields and metadata and the image *path*, never image bytes.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .._payload import chunk_to_payload, payload_to_chunk
from ..errors import ConfigurationError, InvalidInputError, StoreError
from ..ids import content_hash, stable_id
from ..types import Chunk, Embedder, ImageChunk, ReadResult, TextChunk
from ._engine import Engine, ListQuery, Point, check_quantization
from ._filters import Condition
from .bm25 import BM25Encoder
from .ingest import IngestReport, ingest

logger = logging.getLogger(__name__)

__all__ = ["MultiModalIndex"]

_FORMAT = 1


def _pick_engine(path: str | None, url: str | None, client: Any) -> Literal["qdrant", "numpy"]:
    """``engine="auto"``: Qdrant for a server (``url=``/``client=``) or a folder Qdrant already
    holds; otherwise the fast embedded numpy engine (Qdrant's local mode measured ~2 s per fused
    query at 50k points, the numpy engine ~10 ms: ``python -m benchmarks.bench_retrieval``)."""
    if url is not None or client is not None or path is None:
        return "qdrant"
    folder = Path(path)
    if (folder / "meta.json").is_file() or (folder / "collection").is_dir():
        return "qdrant"
    return "numpy"


class MultiModalIndex:
    """A persistent multimodal index. Use as a context manager or call :meth:`close`.

    ``dim`` is taken from ``embedder.dim`` (or from the stored index when it exists). BM25 options
    (``bm25=BM25Encoder(...)``) are stored with a new index and must match when reopening.

    ``quantization="int8"`` or ``"binary"`` keeps the dense vectors in RAM as int8 rows (about 1/4
    of float32) or sign bits (1/32). Each dense list then takes ``limit * oversampling`` candidates
    (default oversampling 3 for int8, 10 for binary; at least 100) by the quantized score and
    rescores them with the float32 originals, which always stay on disk: returned scores are exact,
    and the cost is a read of the candidates per query and a small chance (larger for binary) of
    missing a neighbour the quantized score ranks too low. With the numpy engine it is chosen at
    open time, so a folder opens with or without it; on a Qdrant server it is set when the
    collection is created (an existing collection keeps its own); Qdrant local mode ignores it.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        embedder: Embedder | None = None,
        engine: Literal["auto", "qdrant", "numpy"] = "auto",
        url: str | None = None,
        api_key: str | None = None,
        client: Any = None,
        collection: str = "mm_rag",
        dim: int | None = None,
        bm25: BM25Encoder | None = None,
        batch_size: int = 64,
        show_progress: bool = True,
        quantization: Literal["int8", "binary"] | None = None,
        oversampling: float | None = None,
        **client_kwargs: Any,
    ) -> None:
        if batch_size < 1:
            raise ConfigurationError(f"batch_size must be >= 1, got {batch_size}")
        self.quantization, self.oversampling = check_quantization(quantization, oversampling)
        self.embedder = embedder
        self.batch_size = batch_size
        self.show_progress = show_progress
        self.path = None if path is None else os.fspath(path)
        self._engine: Engine
        if engine == "auto":
            engine = _pick_engine(self.path, url, client)
        if engine == "qdrant":
            from ._qdrant import QdrantEngine

            self._engine = QdrantEngine(
                collection=collection, path=self.path, url=url, api_key=api_key, client=client,
                quantization=quantization, oversampling=self.oversampling, **client_kwargs,
            )
        elif engine == "numpy":
            if url is not None or client is not None:
                raise ConfigurationError("engine='numpy' is embedded: pass a folder path, not url= or client=")
            from ._numpy import NumpyEngine

            self._engine = NumpyEngine(self.path, quantization=quantization, oversampling=oversampling)
        else:
            raise ConfigurationError(f"engine must be 'auto', 'qdrant' or 'numpy', got {engine!r}")
        try:
            self._open(embedder, dim, bm25)
        except BaseException:
            self._engine.close()
            raise

    def _open(self, embedder: Embedder | None, dim: int | None, bm25: BM25Encoder | None) -> None:
        want_dim = dim or (int(embedder.dim) if embedder is not None else None)
        stored = self._engine.stored_config()
        if stored is None:
            if want_dim is None:
                raise ConfigurationError("a new index needs its vector size: pass embedder= or dim=")
            self.bm25 = bm25 or BM25Encoder()
            self.dim = want_dim
            self._engine.create({"format": _FORMAT, "dim": want_dim, "bm25": self.bm25.config()})
            return
        if stored.get("dim") is None:
            raise StoreError("the collection exists but was not created by mm-rag-plugin (no settings stored)")
        self.dim = int(stored["dim"])
        if want_dim is not None and want_dim != self.dim:
            raise ConfigurationError(
                f"the index holds {self.dim}-d vectors but the embedder makes {want_dim}-d ones; "
                "use the embedder the index was built with, or a new folder/collection"
            )
        cfg = dict(stored.get("bm25") or {})
        if bm25 is not None and bm25.config() != cfg:
            raise ConfigurationError(f"the index was built with BM25 settings {cfg}, not {bm25.config()}")
        self.bm25 = bm25 or BM25Encoder(**cfg)

    # ------------------------------------------------------------------ properties
    @property
    def engine(self) -> str:
        return self._engine.name

    def __len__(self) -> int:
        return self._engine.count()

    def count(self, kind: Literal["text", "image"] | None = None) -> int:
        return self._engine.count(kind)

    # ------------------------------------------------------------------ writes
    def add(
        self,
        items: ReadResult | Iterable[Chunk],
        *,
        replace_sources: bool = True,
        batch_size: int | None = None,
        show_progress: bool | None = None,
    ) -> IngestReport:
        """Embed and store chunks (a reader's :class:`ReadResult` or any iterable of chunks).

        Work is committed batch by batch; one chunk that fails (unreadable image) is reported in
        :attr:`IngestReport.errors` and never stops the others. With ``replace_sources`` the points
        of every source seen that are not in this call are deleted at the end (each call should
        then hold whole sources); sources with errors keep their old points.
        """
        if self.embedder is None:
            raise ConfigurationError("add() embeds chunks: create the index with embedder=")
        return ingest(
            self,
            items,
            self.embedder,
            replace_sources=replace_sources,
            batch_size=batch_size or self.batch_size,
            show_progress=self.show_progress if show_progress is None else show_progress,
        )

    def add_embedded(self, chunks: Sequence[Chunk], vectors: np.ndarray) -> int:
        """Store chunks with precomputed dense vectors (one row each). Returns how many were new."""
        vectors = np.asarray(vectors, dtype=np.float32)
        if vectors.shape != (len(chunks), self.dim):
            raise InvalidInputError(f"expected vectors of shape ({len(chunks)}, {self.dim}), got {vectors.shape}")
        if len(chunks) and not np.isfinite(vectors).all():
            raise InvalidInputError("vectors contain NaN or infinite values")
        points: dict[str, Point] = {}
        for chunk, vec in zip(chunks, vectors, strict=True):
            p = self.make_point(chunk, vec)
            points.setdefault(p.id, p)
        present = self._engine.existing(list(points))
        new = [p for pid, p in points.items() if pid not in present]
        if new:
            self._engine.upsert(new)
        return len(new)

    def point_id(self, chunk: Chunk) -> tuple[str, dict[str, Any]]:
        """The content-derived point id of *chunk*, and its payload."""
        if not isinstance(chunk, (TextChunk, ImageChunk)):
            raise InvalidInputError(f"expected a TextChunk or ImageChunk, got {type(chunk).__name__}")
        payload = json.loads(json.dumps(chunk_to_payload(chunk, flat=False), default=str))
        return stable_id("mm-rag-point", content_hash(json.dumps(payload, sort_keys=True))), payload

    def make_point(self, chunk: Chunk, vector: np.ndarray) -> Point:
        pid, payload = self.point_id(chunk)
        sparse = self.bm25.encode_document(chunk.search_text)
        return Point(pid, chunk.kind, chunk.source, np.asarray(vector, np.float32), sparse, payload)

    def delete_source(self, source: str) -> int:
        """Delete every point of *source*; returns how many."""
        ids = self._engine.ids_for_source(source)
        self._engine.delete(sorted(ids))
        return len(ids)

    # ------------------------------------------------------------------ reads (used by retrievers)
    def search_lists(self, queries: Sequence[ListQuery], conditions: tuple[Condition, ...]) -> list[list[tuple[str, float]]]:
        return self._engine.search(queries, conditions)

    def search_fused(
        self, queries: Sequence[ListQuery], conditions: tuple[Condition, ...], *, rrf_k: float, limit: int
    ) -> list[tuple[str, float]]:
        if not self._engine.supports_server_fusion:
            raise ConfigurationError(f"the {self.engine!r} engine has no server-side fusion; use fusion='client'")
        return self._engine.fused(queries, conditions, rrf_k=rrf_k, limit=limit)  # type: ignore[attr-defined]

    def chunks(self, ids: Sequence[str]) -> dict[str, Chunk]:
        """Chunks by point id (ids not found are left out)."""
        return {pid: payload_to_chunk(p) for pid, p in self._engine.payloads(ids).items()}

    def payloads(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Stored payloads by point id (treat as read-only)."""
        return self._engine.payloads(ids)

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        return self._engine.vectors(ids)

    def memory_bytes(self) -> dict[str, int]:
        """RAM held by the engine's arrays (``"dense"``: the dense vectors); ``{}`` for Qdrant."""
        return self._engine.memory_bytes()

    # ------------------------------------------------------------------ internals for ingest
    @property
    def engine_impl(self) -> Engine:
        return self._engine

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Release the store (flushes and unlocks the folder)."""
        engine, self._engine = self._engine, _Closed()
        engine.close()

    def __enter__(self) -> MultiModalIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        where = self.path or ":memory:"
        return f"MultiModalIndex({where!r}, engine={self.engine!r}, dim={self.dim})"


class _Closed:
    name = "closed"
    supports_server_fusion = False

    def __getattr__(self, item: str) -> Any:
        raise StoreError("the index is closed")

    def close(self) -> None:
        pass
