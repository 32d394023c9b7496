"""``MultiModalIndex``: text chunks and images in one Qdrant collection, dense CLIP plus BM25.

Dense layout: ONE shared vector ``clip`` per point. CLIP maps texts (text tower) and images (image
tower) into the same space, so a text chunk gets its text embedding and an image its image
embedding, in the same named vector; the lists "dense text->text" and "dense text->image" are the
same query vector searched with a ``kind`` filter. Sparse: ``bm25`` over chunk text and, for
images, caption + alt text + OCR text, so images are found by the words printed in them.

Engines, chosen by the arguments only (see :mod:`.engine`):

* ``MultiModalIndex("folder")``: Qdrant Edge in this process, stored in the folder;
* ``MultiModalIndex()``: Qdrant Edge in a temporary folder (in memory, gone on close);
* ``MultiModalIndex(url="http://host:6333", api_key=...)`` or ``client=QdrantClient(...)``: a
  Qdrant server or cluster (``path=`` then only holds extracted images).

Every index has a manifest (:mod:`.manifest`) naming its model, vector size, BM25 settings and
whether it is keyword-only, checked on every open: a different model, vector size or BM25 setting
is refused with an error naming both. ``create=False`` opens an existing index only, creating
nothing. Zero, NaN and infinite vectors are refused.

Point ids are derived from the content, not from the path: byte-identical files at two paths give
one point listing both paths in ``sources`` (a ``{"source": path}`` filter matches either).
Images extracted into the index folder are stored relative to it and resolved on read, so answers
keep their images from any working directory and after the folder moves.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from .._payload import chunk_to_payload, payload_to_chunk
from ..errors import ConfigurationError, IndexNotFoundError, InvalidInputError, StoreError
from ..ids import content_hash, stable_id
from ..types import Chunk, Embedder, ImageChunk, ReadResult, TextChunk
from ._filters import Condition
from ._lock import FolderLock
from .bm25 import BM25Encoder
from .engine import Engine, ListQuery, Point, check_quantization
from .ingest import IngestReport, ingest
from .manifest import FORMAT, check_manifest, describe_model, model_identity, same_model

logger = logging.getLogger(__name__)

__all__ = ["MultiModalIndex", "key_point_id"]

#: Where extracted images go inside an index folder.
BLOB_DIR = "blobs"
#: Payload marker: ``image_path`` is relative to the index folder.
_IMAGE_ROOT = "image_root"
#: Entries a folder may hold before it has a manifest (an index being created, or a pipeline's).
_PRE_MANIFEST = {"lock", "shard", BLOB_DIR, "sources.json", "manifest.json.tmp"}
#: Payload keys that say where content was found, not what it is (left out of the point id).
_PLACE_KEYS = ("id", "source", "sources", "prev_id", "next_id")


class MultiModalIndex:
    """A persistent multimodal index. Use as a context manager or call :meth:`close`.

    *embedder*: the model that embeds what :meth:`add` gets; it must be the index's model (a new
    index records it). Without one, the index can still be searched with vectors you compute, or by
    keywords. ``dim=``: the vector size of a new index whose vectors you supply
    (:meth:`add_embedded`). ``keyword_only=True``: a new index without dense vectors, or keyword
    search of an existing dense index (its model is then not needed). ``bm25=``: BM25 settings of a
    new index (must match when reopening). ``create=False``: open an existing index or fail.

    ``quantization="int8"`` or ``"binary"`` (a new index): Qdrant's scalar or binary quantization of
    the dense vectors, kept in RAM, with rescoring by the originals (``oversampling``, default 3
    and 10). Other keyword arguments go to ``qdrant_client.QdrantClient`` with ``url=`` (``timeout=``,
    ``prefer_grpc=`` ...); anywhere else they are an error.
    """

    def __init__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        embedder: Embedder | None = None,
        url: str | None = None,
        api_key: str | None = None,
        client: Any = None,
        collection: str = "mm_rag",
        dim: int | None = None,
        bm25: BM25Encoder | None = None,
        keyword_only: bool = False,
        create: bool = True,
        batch_size: int = 64,
        show_progress: bool = False,
        quantization: Literal["int8", "binary"] | None = None,
        oversampling: float | None = None,
        **client_kwargs: Any,
    ) -> None:
        if batch_size < 1:
            raise ConfigurationError(f"batch_size must be >= 1, got {batch_size}")
        if client_kwargs and url is None:  # a misspelt option would otherwise be dropped unseen
            raise ConfigurationError(
                f"unexpected argument(s) {', '.join(sorted(client_kwargs))}: extra keyword arguments go to "
                "qdrant_client.QdrantClient and need url= (a folder, an in-memory index or client= takes none)"
            )
        if embedder is not None and keyword_only:
            raise ConfigurationError("keyword_only=True searches without a model: do not pass embedder=")
        self.quantization, self.oversampling = check_quantization(quantization, oversampling)
        self.embedder = embedder
        self.batch_size = batch_size
        self.show_progress = show_progress
        self.path = None if path is None else Path(os.path.abspath(Path(path).expanduser()))
        self.remote = url is not None or client is not None
        self._lock: FolderLock | None = None
        self._engine: Engine = _Closed()
        if not self.remote and self.path is not None:
            self._prepare_folder(create)
        try:
            if self.remote:
                from ._remote import RemoteEngine

                self._engine = RemoteEngine(
                    collection=collection, url=url, api_key=api_key, client=client,
                    quantization=quantization, oversampling=self.oversampling, **client_kwargs,
                )
            else:
                from ._edge import EdgeEngine

                self._engine = EdgeEngine(self.path, quantization=quantization, oversampling=self.oversampling)
            self._open(embedder, dim, bm25, keyword_only, create)
        except BaseException:
            self.close()
            raise
        # an existing shard keeps the quantization it was created with
        self.quantization = getattr(self._engine, "quantization", self.quantization)
        self.oversampling = getattr(self._engine, "oversampling", self.oversampling) or self.oversampling

    # ------------------------------------------------------------------ opening
    @property
    def where(self) -> str:
        if self.remote:
            return getattr(self._engine, "where", "qdrant")
        return str(self.path) if self.path else ":memory:"

    def _prepare_folder(self, create: bool) -> None:
        assert self.path is not None
        folder = self.path
        if not (folder / "manifest.json").is_file():
            # a read-only open creates nothing, not even the lock file: decide before locking
            if not folder.exists():
                if not create:
                    raise IndexNotFoundError(f"{folder}: no index here (the folder does not exist); run `mm-rag ingest` first")
            elif not folder.is_dir():
                raise StoreError(f"{folder}: not a folder")
            else:
                _refuse_foreign(folder)  # before the lock file is written into someone else's folder
                if not create and not (folder / "shard").exists():
                    raise IndexNotFoundError(f"{folder}: no index here (no manifest.json); run `mm-rag ingest` first")
        if create:
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise StoreError(f"{folder}: cannot create the index folder ({exc})") from exc
        self._lock = FolderLock(folder)
        self._lock.acquire()
        try:  # what the folder holds is decided under the lock: another writer may just have finished
            if (folder / "manifest.json").is_file():
                return
            _refuse_foreign(folder)
            if (folder / "shard").exists():
                from ._edge import EdgeEngine

                held = EdgeEngine.stray_shard_points(folder)
                if held:
                    raise StoreError(
                        f"{folder / 'manifest.json'}: damaged index: the manifest is missing but the shard holds {held} "
                        "items; restore manifest.json from a backup, or re-ingest into a new index folder"
                    )
                if not create:
                    raise IndexNotFoundError(f"{folder}: no index here (no manifest.json); run `mm-rag ingest` first")
                shutil.rmtree(folder / "shard")  # a create that died before writing its manifest (written last)
        except BaseException:
            self._lock.release()
            raise

    def _open(
        self, embedder: Embedder | None, dim: int | None, bm25: BM25Encoder | None, keyword_only: bool, create: bool
    ) -> None:
        stored = self._engine.read_manifest()
        if stored is None:
            if not create:
                raise IndexNotFoundError(f"{self.where}: no index here; run `mm-rag ingest` first")
            self._create(embedder, dim, bm25, keyword_only)
            return
        manifest = check_manifest(stored, self._manifest_where())
        self.manifest = manifest
        self.bm25 = BM25Encoder.from_config(manifest["bm25"], self._manifest_where())
        if bm25 is not None and bm25.config() != self.bm25.config():
            raise ConfigurationError(
                f"{self.where}: the index was built with BM25 settings {self.bm25.config()}, not {bm25.config()}"
            )
        self.dim = manifest["dim"]
        if manifest["keyword_only"]:
            if embedder is not None:
                raise ConfigurationError(
                    f"{self.where}: this index is keyword-only (built without a model), so it cannot take "
                    f"{describe_model(model_identity(embedder))}; ingest into a new index folder for dense search"
                )
        else:
            if dim is not None and dim != self.dim:
                raise ConfigurationError(f"{self.where}: the index holds {self.dim}-d vectors, not {dim}-d")
            if embedder is not None:
                self._check_model(embedder)
        self.keyword_search_only = keyword_only or manifest["keyword_only"]
        points = self._engine.count()
        if manifest.get("points", 0) > 0 and points == 0:
            raise StoreError(
                f"{self._manifest_where()}: damaged index: the manifest records {manifest['points']} items but the "
                "store holds none; restore the folder from a backup, or re-ingest into a new index folder"
            )

    def _check_model(self, embedder: Embedder) -> None:
        model = self.manifest["model"]
        given = model_identity(embedder, model)
        if not same_model(model, given):
            raise ConfigurationError(
                f"{self.where}: the index was built with {describe_model(model)}, not "
                f"{describe_model(given)}; an index never mixes models: use the index's model "
                "(or none, to load it), or ingest into a new index folder"
            )

    def attach(self, embedder: Embedder) -> None:
        """Use *embedder* for :meth:`add` and searches; it must be the index's model."""
        if self.keyword_only:
            raise ConfigurationError(f"{self.where}: this index is keyword-only (built without a model)")
        self._check_model(embedder)
        self.embedder = embedder
        self.keyword_search_only = False

    def _create(self, embedder: Embedder | None, dim: int | None, bm25: BM25Encoder | None, keyword_only: bool) -> None:
        self.bm25 = bm25 or BM25Encoder()
        if keyword_only:
            model, self.dim = None, None
        else:
            if embedder is None and dim is None:
                raise ConfigurationError(
                    "a new index needs its model (embedder=), or dim= for vectors you supply, or keyword_only=True"
                )
            if embedder is not None:
                model = model_identity(embedder)
                if dim is not None and dim != model["dim"]:
                    raise ConfigurationError(f"dim={dim} but the embedder makes {model['dim']}-d vectors")
            else:
                model = {"name": None, "pretrained": None, "dim": int(dim), "weights": None}  # type: ignore[arg-type]
            self.dim = int(model["dim"])
        self.manifest = {
            "format": FORMAT,
            "dim": self.dim,
            "keyword_only": keyword_only,
            "model": model,
            "bm25": self.bm25.config(),
            "points": 0,
        }
        self.keyword_search_only = keyword_only
        self._engine.create(self.manifest)

    def _manifest_where(self) -> str:
        return str(self.path / "manifest.json") if self.path is not None and not self.remote else self.where

    # ------------------------------------------------------------------ properties
    @property
    def engine(self) -> str:
        return self._engine.name

    @property
    def model(self) -> dict[str, Any] | None:
        """The identity of the model the index was built with (``None``: keyword-only)."""
        return self.manifest.get("model")

    @property
    def keyword_only(self) -> bool:
        """True when the index stores no dense vectors."""
        return bool(self.manifest["keyword_only"])

    @property
    def blob_dir(self) -> Path | None:
        """Where extracted images of this index live (inside the index folder)."""
        return None if self.path is None else self.path / BLOB_DIR

    def __len__(self) -> int:
        return self._engine.count()

    def count(self, kind: Literal["text", "image"] | None = None) -> int:
        return self._engine.count(kind)

    def sources(self) -> list[str]:
        """Every source path the index holds (from the payload index: no point is read)."""
        return self._engine.sources()

    # ------------------------------------------------------------------ writes
    def add(
        self,
        items: ReadResult | Iterable[Any],
        *,
        replace_sources: bool = True,
        batch_size: int | None = None,
        show_progress: bool | None = None,
    ) -> IngestReport:
        """Embed and store chunks (a reader's :class:`ReadResult` or any iterable of chunks, streamed;
        LangChain ``Document``s and LlamaIndex nodes, text or image, are converted with their metadata).

        Work is committed batch by batch; one chunk that fails (unreadable image) is reported in
        :attr:`IngestReport.errors` and never stops the others. With ``replace_sources`` the points
        of every source seen that are not in this call are deleted at the end (each call should
        then hold whole sources); sources with errors keep their old points.
        """
        if self.embedder is None and not self.keyword_only:
            raise ConfigurationError(
                f"{self.where}: add() embeds chunks with the index's model ({describe_model(self.model)}); "
                "open the index with embedder= that model"
            )
        report = ingest(
            self,
            items,
            self.embedder,
            replace_sources=replace_sources,
            batch_size=batch_size or self.batch_size,
            show_progress=self.show_progress if show_progress is None else show_progress,
        )
        self.optimize()
        return report

    def add_embedded(self, chunks: Sequence[Chunk], vectors: np.ndarray | None) -> int:
        """Store chunks with precomputed dense vectors (one row each; ``None`` for a keyword-only
        index). Returns how many were new."""
        if vectors is None:
            rows: list[np.ndarray | None] = [None] * len(chunks)
        else:
            vectors = np.asarray(vectors, dtype=np.float32)
            if vectors.shape != (len(chunks), self.dim):
                raise InvalidInputError(f"expected vectors of shape ({len(chunks)}, {self.dim}), got {vectors.shape}")
            rows = list(vectors)
        points: dict[str, Point] = {}
        for chunk, vec in zip(chunks, rows, strict=True):
            p = self.make_point(chunk, vec)
            if p.id in points:
                points[p.id].payload["sources"] = _merged(points[p.id].payload["sources"], [chunk.source])
            else:
                points[p.id] = p
        present = self._engine.existing(list(points))
        self._add_sources({pid: p.payload["sources"] for pid, p in points.items() if pid in present}, present)
        new = [p for pid, p in points.items() if pid not in present]
        self.write_points(new)
        return len(new)

    def write_points(self, points: Sequence[Point]) -> None:
        """Upsert *points* and record the new count in the manifest (one committed batch)."""
        if points:
            self._engine.upsert(points)
            self._committed()

    def _committed(self) -> None:
        self.manifest["points"] = self._engine.count()
        self._engine.write_manifest(self.manifest)

    def _add_sources(self, wanted: dict[str, list[str]], present: dict[str, list[str]]) -> None:
        updates = {}
        for pid, sources in wanted.items():
            have = present.get(pid, [])
            merged = _merged(have, sources)
            if merged != have:
                updates[pid] = merged
        if updates:
            self._engine.set_sources(updates)

    def point_id(self, chunk: Chunk) -> tuple[str, dict[str, Any]]:
        """The content-derived point id of *chunk*, and its payload (paths under the index folder
        made relative to it)."""
        if not isinstance(chunk, (TextChunk, ImageChunk)):
            raise InvalidInputError(f"expected a TextChunk or ImageChunk, got {type(chunk).__name__}")
        payload = json.loads(json.dumps(chunk_to_payload(chunk, flat=False), default=str))
        payload["sources"] = [chunk.source]
        what = {k: v for k, v in payload.items() if k not in _PLACE_KEYS}
        if isinstance(chunk, ImageChunk):
            rel = self._relative(chunk.image_path)
            if rel is not None:
                payload["image_path"], payload[_IMAGE_ROOT] = rel, "index"
                what["image_path"] = rel
            if chunk.image_path == chunk.source:
                what.pop("image_path", None)  # an image file: its bytes' hash says what it is
        meta = dict(what.get("metadata") or {})
        meta.pop("duplicate_of", None)
        what["metadata"] = meta
        return stable_id("mm-rag-point", content_hash(json.dumps(what, sort_keys=True))), payload

    def _relative(self, image_path: str) -> str | None:
        if self.path is None:
            return None
        try:
            return Path(os.path.abspath(image_path)).relative_to(self.path).as_posix()
        except ValueError:
            return None

    def make_point(
        self, chunk: Chunk, vector: np.ndarray | None, *, key: str | None = None, point_id: str | None = None
    ) -> Point:
        """A point for *chunk* with its dense *vector* (refused when not finite, zero, or of the
        wrong size; ``None`` only in a keyword-only index). With *key* (the framework vector
        stores) the point is addressed by that id (or *point_id*) instead of by its content."""
        pid, payload = self.point_id(chunk)
        if key is not None:
            pid = point_id or key_point_id(key)
            payload.update(id=key, key=key)
            if not chunk.source:
                payload["sources"] = []
        if self.keyword_only:
            dense = None
        else:
            if vector is None:
                raise InvalidInputError(f"{chunk.source}: no vector for a chunk of a dense index", source=chunk.source)
            dense = np.asarray(vector, np.float32).reshape(-1)
            if dense.shape != (self.dim,):
                raise InvalidInputError(f"{chunk.source}: vector of size {dense.size}, the index holds {self.dim}-d vectors", source=chunk.source)
            if not np.isfinite(dense).all():
                raise InvalidInputError(f"{chunk.source}: the vector holds NaN or infinite values; refusing to store it", source=chunk.source)
            norm = float(np.linalg.norm(dense))
            if norm < 1e-6:
                raise InvalidInputError(f"{chunk.source}: the vector is all zeros; refusing to store it", source=chunk.source)
        sparse = self.bm25.encode_document(chunk.search_text)
        return Point(pid, dense, sparse, payload)

    def delete_source(self, source: str) -> int:
        """Remove *source* from the index: points found only there are deleted, points also found
        at other paths just forget this one. Returns how many points were deleted."""
        return self.forget(source, keep=set())

    def forget(self, source: str, keep: set[str]) -> int:
        """Drop *source* from every point not in *keep*; returns how many points were deleted."""
        found = self._engine.with_source(source)
        doomed = [pid for pid, srcs in found.items() if pid not in keep and set(srcs) <= {source}]
        updates = {pid: [s for s in srcs if s != source] for pid, srcs in found.items() if pid not in keep and pid not in doomed}
        if updates:
            # an image file's own path: when that path goes, the image is read from a remaining one
            follow = {pid for pid, p in self._engine.payloads(list(updates)).items() if p.get("image_path") == source}
            self._engine.set_sources(updates, follow)
        if doomed:
            self._engine.delete(sorted(doomed))
        if updates or doomed:
            self._committed()
        return len(doomed)

    def optimize(self) -> None:
        """Build the search structures (HNSW graph, merged segments) for what was added."""
        self._engine.optimize()

    # ------------------------------------------------------------------ reads (used by retrievers)
    def search_lists(self, queries: Sequence[ListQuery], conditions: tuple[Condition, ...]) -> list[list[tuple[str, float]]]:
        return self._engine.search(queries, conditions)

    def search_fused(
        self,
        queries: Sequence[ListQuery],
        conditions: tuple[Condition, ...],
        *,
        rrf_k: float,
        limit: int,
        weights: Sequence[float] | None = None,
    ) -> list[tuple[str, float]]:
        """The lists fused by the engine in one call (Qdrant's weighted RRF)."""
        w = [1.0] * len(queries) if weights is None else list(weights)
        return self._engine.fused(queries, conditions, rrf_k=rrf_k, weights=w, limit=limit)

    def chunks(self, ids: Sequence[str]) -> dict[str, Chunk]:
        """Chunks by point id (ids not found are left out)."""
        return {pid: payload_to_chunk(p) for pid, p in self.payloads(ids).items()}

    def payloads(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Stored payloads by point id, image paths resolved against the index folder."""
        out = self._engine.payloads(ids)
        for p in out.values():
            if p.pop(_IMAGE_ROOT, None) == "index" and self.path is not None:
                p["image_path"] = str(self.path / p["image_path"])
        return out

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        return self._engine.vectors(ids)

    def memory_bytes(self) -> dict[str, int]:
        return self._engine.memory_bytes()

    def scan(self, batch: int = 256) -> Iterator[list[Point]]:
        """Every stored point (vectors and raw payloads), batch by batch."""
        return self._engine.scan(batch)

    # ------------------------------------------------------------------ checks
    def verify(self, *, batch_size: int = 512) -> list[str]:
        """Check the whole index; returns the problems found (empty: healthy).

        The manifest's item count against the store's; every point's dense vector present (unless
        keyword-only), of the index's size, finite and not zero; its kind and sources set; its
        image file present when the image lives in the index folder."""
        problems: list[str] = []
        stored = self._engine.count()
        if self.manifest.get("points") != stored:
            problems.append(f"{self._manifest_where()}: records {self.manifest.get('points')} items, the store holds {stored}")
        checked = 0
        for points in self.scan(batch_size):
            for p in points:
                checked += 1
                problems.extend(f"point {p.id}: {msg}" for msg in self._point_problems(p))
        if checked != stored:
            problems.append(f"counted {stored} items but read {checked}")
        return problems

    def _point_problems(self, p: Point) -> Iterator[str]:
        payload = p.payload
        where = payload.get("source") or "?"
        if payload.get("kind") not in ("text", "image"):
            yield f"unknown kind {payload.get('kind')!r} ({where})"
        if not payload.get("sources") and "key" not in payload:  # items added by id may have no file
            yield f"no sources recorded ({where})"
        if not self.keyword_only:
            if p.dense is None:
                yield f"no dense vector ({where})"
            elif p.dense.shape != (self.dim,):
                yield f"vector of size {p.dense.size}, not {self.dim} ({where})"
            elif not np.isfinite(p.dense).all():
                yield f"vector holds NaN or infinite values ({where})"
            elif float(np.linalg.norm(p.dense)) < 1e-6:
                yield f"zero vector ({where})"
        if not _same_sparse(p.sparse, self._expected_sparse(payload)):
            yield f"keyword (BM25) vector does not match the point's text ({where})"
        if payload.get(_IMAGE_ROOT) == "index" and self.path is not None:
            image = self.path / str(payload.get("image_path"))
            if not image.is_file():
                yield f"image file missing: {image} ({where})"

    def _expected_sparse(self, payload: dict[str, Any]) -> Any:
        try:
            text = payload_to_chunk(dict(payload)).search_text
        except Exception:  # a payload too damaged to read: its other problems are reported
            return None
        return self.bm25.encode_document(text)

    # ------------------------------------------------------------------ copies
    def copy_to(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        url: str | None = None,
        api_key: str | None = None,
        client: Any = None,
        collection: str = "mm_rag",
        batch_size: int = 256,
        show_progress: bool | None = None,
    ) -> MultiModalIndex:
        """Stream every point into another index (a Qdrant server by ``url=``/``client=``, or a
        folder) with the same manifest, and return it open. Resumable: points already there are
        skipped, so a copy that was interrupted is finished by running it again. Images extracted
        into this folder are copied along when the target is a folder."""
        from tqdm.auto import tqdm

        target = MultiModalIndex._for_copy(self, path, url=url, api_key=api_key, client=client, collection=collection)
        try:
            total = len(self)
            bar = tqdm(total=total, unit="point", desc="copying", disable=not (self.show_progress if show_progress is None else show_progress))
            with bar:
                for batch in self.scan(batch_size):
                    present = target._engine.existing([p.id for p in batch])
                    target._engine.upsert([p for p in batch if p.id not in present])
                    target._add_sources({p.id: p.payload.get("sources", []) for p in batch if p.id in present}, present)
                    bar.update(len(batch))
            if self.blob_dir is not None and self.blob_dir.is_dir() and target.blob_dir is not None:
                shutil.copytree(self.blob_dir, target.blob_dir, dirs_exist_ok=True)
            target._committed()
            target.optimize()
            if len(target) < total:
                raise StoreError(f"copy to {target.where} ended with {len(target)} of {total} points")
        except BaseException:
            target.close()
            raise
        return target

    @staticmethod
    def _for_copy(source: MultiModalIndex, path: Any, **remote: Any) -> MultiModalIndex:
        manifest = dict(source.manifest, points=0)
        ix = object.__new__(MultiModalIndex)
        ix.embedder, ix.batch_size, ix.show_progress = None, source.batch_size, source.show_progress
        ix.quantization, ix.oversampling = source.quantization, source.oversampling
        ix.remote = remote.get("url") is not None or remote.get("client") is not None
        ix.path = None if path is None else Path(os.path.abspath(Path(path).expanduser()))
        ix._lock = None
        ix._engine = _Closed()
        try:
            if ix.remote:
                from ._remote import RemoteEngine

                ix._engine = RemoteEngine(quantization=source.quantization, oversampling=source.oversampling, **remote)
            else:
                if ix.path is None:
                    raise ConfigurationError("copy_to needs a folder path, url= or client=")
                ix._prepare_folder(create=True)
                from ._edge import EdgeEngine

                ix._engine = EdgeEngine(ix.path, quantization=source.quantization, oversampling=source.oversampling)
            stored = ix._engine.read_manifest()
            if stored is None:
                ix._engine.create(manifest)
                stored = manifest
            check_manifest(stored, ix.where)
            if stored["bm25"] != manifest["bm25"]:
                raise ConfigurationError(
                    f"{ix.where} already holds an index with BM25 settings {stored['bm25']}; cannot copy an index "
                    f"with {manifest['bm25']} into it (copy into a new folder or collection)"
                )
            same = (
                stored["keyword_only"] == manifest["keyword_only"]
                and stored["bm25"] == manifest["bm25"]
                and (manifest["keyword_only"] or same_model(stored["model"], manifest["model"]))
            )
            if not same:
                raise ConfigurationError(
                    f"{ix.where} already holds an index of {describe_model(stored['model'])}; "
                    f"cannot copy an index of {describe_model(manifest['model'])} into it"
                )
            ix.manifest = dict(stored)
            ix.bm25 = BM25Encoder.from_config(stored["bm25"], ix.where)
            ix.dim = stored["dim"]
            ix.keyword_search_only = stored["keyword_only"]
        except BaseException:
            ix.close()
            raise
        return ix

    # ------------------------------------------------------------------ internals for ingest
    @property
    def engine_impl(self) -> Engine:
        return self._engine

    # ------------------------------------------------------------------ lifecycle
    def close(self) -> None:
        """Flush and release the store (and the folder's lock)."""
        engine, self._engine = self._engine, _Closed()
        try:
            engine.close()
        finally:
            if self._lock is not None:
                self._lock.release()
                self._lock = None

    def __enter__(self) -> MultiModalIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MultiModalIndex({self.where!r}, engine={self.engine!r}, dim={getattr(self, 'dim', None)})"


def key_point_id(key: str) -> str:
    """The point id of a caller's id: the id itself when it is a UUID (as Qdrant wants), else a
    UUID derived from it."""
    try:
        return str(uuid.UUID(key))
    except (ValueError, TypeError, AttributeError):
        return stable_id("mm-rag-key", key)


def _refuse_foreign(folder: Path) -> None:
    """A folder without a manifest may hold only what an index being created holds."""
    other = sorted(p.name for p in folder.iterdir() if p.name not in _PRE_MANIFEST)
    if other:
        old = {"meta.json", "collection", "index", "index.sqlite", "mm_rag.json"} & set(other)
        why = (
            "it was made by an older version of mm-rag-plugin (never opened: its format could run code)"
            if old
            else "it holds other files, and no manifest.json"
        )
        raise StoreError(f"{folder}: not an mm-rag index ({why}); ingest into a new, empty folder")


def _merged(have: Sequence[str], more: Sequence[str]) -> list[str]:
    out = list(have)
    out.extend(s for s in more if s not in out)
    return out


def _same_sparse(stored: Any, expected: Any) -> bool:
    """Whether a stored sparse vector is the one its text encodes to (order of entries aside)."""
    if expected is None:
        return True
    a, b = np.argsort(stored.indices), np.argsort(expected.indices)
    return bool(
        np.array_equal(np.asarray(stored.indices)[a], np.asarray(expected.indices)[b])
        and np.allclose(np.asarray(stored.values)[a], np.asarray(expected.values)[b], rtol=1e-4, atol=1e-6)
    )


class _Closed:
    name = "closed"

    def __getattr__(self, item: str) -> Any:
        raise StoreError("the index is closed")

    def close(self) -> None:
        pass
