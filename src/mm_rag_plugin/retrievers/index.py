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

An index folder is untrusted input (folders get zipped and shared): an image is read back only
through :meth:`MultiModalIndex.image_file`, which checks where it is and that its bytes are the
ones indexed (see there); :meth:`payloads`, :meth:`verify` and :meth:`copy_to` all go through it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import stat
import tempfile
import time
import uuid
import weakref
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any, Literal

import numpy as np

from .._payload import chunk_to_payload, payload_problem, payload_to_chunk
from ..embeddings.batch import vector_problem
from ..errors import ConfigurationError, IndexNotFoundError, InvalidInputError, StoreError, echo
from ..ids import content_hash, stable_id
from ..types import Chunk, Embedder, ImageChunk, ReadResult, TextChunk, TextEmbedder
from ._filters import Condition
from ._lock import FolderLock
from ._shared import Hold, folder_key, join
from .bm25 import BM25Encoder
from .engine import Engine, Found, ListQuery, Point, TextSafeEngine, check_quantization
from .ingest import IngestReport, ingest
from .manifest import FORMAT, check_manifest, describe_model, model_identity, same_model
from .ocr_terms import ocr_words

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
#: Payload keys about how an image is stored, not what it is (left out of the point id too).
_STORAGE_KEYS = ("file_hash",)
#: Extensions a blob store key may end with.
_EXT = re.compile(r"[a-z0-9]{1,5}")
#: The largest image file an index reads back (the readers' own limit).
_MAX_IMAGE_BYTES = 256_000_000
#: How many checked image files :meth:`MultiModalIndex.payloads` remembers (by path and stat).
_HASH_CACHE = 4096
#: While writing, the manifest's point count is rewritten (and the shard flushed) at most this
#: often; :meth:`MultiModalIndex.flush`, :meth:`~MultiModalIndex.optimize` and ``close`` write it
#: at once. A write is durable when its call returns (the engine's write-ahead log), whatever the
#: manifest says.
COMMIT_EVERY_S = 5.0
#: The write path builds the search structures (HNSW graph) once this many points were written
#: since the last build, and at least as many as were there at it (so the builds of a growing
#: index cost at most about twice one build of the whole). Until then new points are searched
#: exactly, as Qdrant searches any segment without a graph.
OPTIMIZE_AFTER = 65_536
#: ``close`` builds them when at least this many points were written since the last build (fewer:
#: the engine would not index them, about ``indexing_threshold_kb`` of vectors).
OPTIMIZE_ON_CLOSE = 8_192


@dataclass(slots=True)
class _Writes:
    """Write bookkeeping of one open store, shared by every index object on it (see :mod:`._shared`).

    ``lagging``: the stored manifest says ``"clean": false`` (written before the first write since
    its count was exact), so whoever opens it after a crash counts the points instead of trusting
    it. ``pending``: points written since the count was last stored. ``unindexed``: points written
    since the last build of the search structures; ``indexed``: how many there were at it."""

    lagging: bool = False
    pending: bool = False
    last: float = 0.0
    unindexed: int = 0
    indexed: int = 0


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
    and 10). ``text_embedder=``: a text model beside CLIP (a
    :class:`~mm_rag_plugin.types.TextEmbedder`): a new index records it and stores a second dense
    vector, ``text``, for every chunk with text (an image's from its caption, alt and OCR text); an
    existing one must be opened with that model (or none, to search without its list: see
    :class:`~.retriever.FusedRetriever`). ``text_model=``: the identity of a new index's text model
    whose vectors you supply (copies, reindex). Other keyword arguments go to ``qdrant_client.QdrantClient`` with ``url=`` (``timeout=``,
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
        blobs: str | os.PathLike[str] | None = None,
        blob_options: Mapping[str, Any] | None = None,
        text_embedder: TextEmbedder | None = None,
        text_model: Mapping[str, Any] | None = None,
        clip_windows: Any = None,
        **client_kwargs: Any,
    ) -> None:
        from ..embeddings.windows import as_clip_windows
        from .blobstore import blob_url

        if batch_size < 1:
            raise ConfigurationError(f"batch_size must be >= 1, got {batch_size}")
        if client_kwargs and url is None:  # a misspelt option would otherwise be dropped unseen
            raise ConfigurationError(
                f"unexpected argument(s) {', '.join(sorted(client_kwargs))}: extra keyword arguments go to "
                "qdrant_client.QdrantClient and need url= (a folder, an in-memory index or client= takes none)"
            )
        if embedder is not None and keyword_only:
            raise ConfigurationError("keyword_only=True searches without a model: do not pass embedder=")
        if (text_embedder is not None or text_model is not None) and keyword_only:
            raise ConfigurationError("keyword_only=True searches without a model: do not pass text_embedder=")
        self.text_embedder = text_embedder
        given_text = None
        if text_embedder is not None:
            from ..embeddings.text_model import text_model_identity

            given_text = text_model_identity(text_embedder)
        elif text_model is not None:
            given_text = dict(text_model)
        self._new_text_model = given_text
        self._new_windows = as_clip_windows(clip_windows)
        if self._new_windows is not None and keyword_only:
            raise ConfigurationError("keyword_only=True searches without a model: do not pass clip_windows=")
        self.quantization, self.oversampling = check_quantization(quantization, oversampling)
        given_blobs = None if blobs is None else blob_url(blobs)  # a bad URL fails before anything is opened
        self._blob_options = dict(blob_options or {})  # may hold secrets: used, never recorded
        self._blob_store: Any = None
        self.embedder = embedder
        self.batch_size = batch_size
        self.show_progress = show_progress
        self.path = None if path is None else Path(os.path.abspath(Path(path).expanduser()))
        self.remote = url is not None or client is not None
        self._lock: FolderLock | None = None
        self._hold: Hold | None = None
        self._engine: Engine = _Closed()
        if not self.remote and self.path is not None:
            self._prepare_folder(create)
        try:
            if self.remote:
                from ._remote import RemoteEngine

                self._start(lambda: TextSafeEngine(RemoteEngine(
                    collection=collection, url=url, api_key=api_key, client=client,
                    quantization=quantization, oversampling=self.oversampling, **client_kwargs,
                )))
            else:
                from ._edge import EdgeEngine

                self._start(lambda: TextSafeEngine(EdgeEngine(self.path, quantization=quantization, oversampling=self.oversampling)))
            self._open(embedder, dim, bm25, keyword_only, create, given_blobs)
            self._check_text_model(given_text)
            self._check_windows(self._new_windows)
        except BaseException:
            self.close()
            raise
        # an existing shard keeps the quantization it was created with
        self.quantization = self._engine.quantization
        self.oversampling = self._engine.oversampling or self.oversampling

    # ------------------------------------------------------------------ opening
    @property
    def where(self) -> str:
        if self.remote:
            return self._engine.where
        return str(self.path) if self.path else ":memory:"

    def _prepare_folder(self, create: bool) -> None:
        from ._folder import check_own_entries

        assert self.path is not None
        folder = self.path
        if folder.is_dir():  # untrusted input: no link among its own files, before anything is opened
            check_own_entries(folder)
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
        self._hold = join(folder_key(folder))  # open in this process already (a re-run notebook cell): shared
        if self._hold is not None:
            self._finalizer = weakref.finalize(self, self._hold.release)
            return
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
        self, embedder: Embedder | None, dim: int | None, bm25: BM25Encoder | None, keyword_only: bool, create: bool,
        blobs: str | None = None,
    ) -> None:
        try:
            stored = self._engine.read_manifest()
        except RecursionError:  # JSON nested thousands deep
            raise StoreError(
                f"{self._manifest_where()}: damaged index: the manifest is nested too deeply to read; "
                "restore it from a backup, or re-ingest into a new index folder"
            ) from None
        if stored is None:
            if not create:
                raise IndexNotFoundError(f"{self.where}: no index here; run `mm-rag ingest` first")
            self._create(embedder, dim, bm25, keyword_only, blobs)
            return
        manifest = check_manifest(stored, self._manifest_where())
        if blobs is not None and blobs != manifest.get("blobs"):
            raise ConfigurationError(
                f"{self.where}: the index keeps its images in {manifest.get('blobs') or f'its folder ({BLOB_DIR}/)'}, "
                f"not in {blobs}; an index has one blob store: open it without blobs=, or copy it into a new index "
                "with copy_to(..., blobs=URL)"
            )
        has_dense = self._engine.has_dense  # how the store was created
        if has_dense == manifest["keyword_only"]:
            raise StoreError(
                f"{self._manifest_where()}: damaged index: keyword_only is {str(manifest['keyword_only']).lower()} but the "
                f"store was created {'with' if has_dense else 'without'} dense vectors; restore it from a backup, "
                "or re-ingest into a new index folder"
            )
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
        if self._writes.indexed == 0:
            self._writes.indexed = points
        if manifest.pop("clean", True) is False or self._writes.lagging:
            # written to since its count was last stored (a crash, or another object on this
            # folder is writing): the engine's count is the truth, the recorded one may lag
            manifest["points"] = points
            self._writes.lagging = True  # close stores the exact count, marked clean
        elif manifest.get("points", 0) > 0 and points == 0:
            raise StoreError(
                f"{self._manifest_where()}: damaged index: the manifest records {manifest['points']} items but the "
                "store holds none; restore the folder from a backup, or re-ingest into a new index folder"
            )

    def _store_agrees(self, stored: Any, engine_flag: str, what: str, vectors: str) -> None:
        """A manifest that records *what* (*stored* set) over a store created without its
        *vectors*, or the other way round, is a damaged index."""
        if bool(stored) != bool(getattr(self._engine, engine_flag, False)):
            raise StoreError(
                f"{self._manifest_where()}: damaged index: the manifest {'records' if stored else 'records no'} {what} but the "
                f"store was created {'without' if stored else 'with'} {vectors}; restore it from a backup, "
                "or re-ingest into a new index folder"
            )

    def _check_text_model(self, given: Mapping[str, Any] | None) -> None:
        """The text model given on open must be the one the index records (none: its list is
        searched only once one is attached); a store whose vectors disagree with the manifest is
        a damaged index."""
        from ..embeddings.text_model import describe_text_model, same_text_model

        stored = self.manifest.get("text_model")
        self._store_agrees(stored, "has_text", "text model", "text vectors")
        if given is None:
            return
        if stored is None:
            raise ConfigurationError(
                f"{self.where}: the index was built without a text model, so it cannot take {describe_text_model(given)}; "
                "open it without text_embedder=, or ingest into a new index folder"
            )
        if not same_text_model(stored, given):
            raise ConfigurationError(
                f"{self.where}: the index was built with text model {describe_text_model(stored)}, not "
                f"{describe_text_model(given)}; an index never mixes models: use the index's text model, "
                "or ingest into a new index folder"
            )

    def check_clip_windows(self, clip_windows: Any) -> None:
        """Refuse *clip_windows* (as ``clip_windows=`` takes it) unless it is what the index records."""
        from ..embeddings.windows import as_clip_windows

        self._check_windows(as_clip_windows(clip_windows))

    def _check_windows(self, given: Any) -> None:
        """The CLIP window settings given on open must be the ones the index records (none: it
        keeps its own); a store whose vectors disagree with the manifest is a damaged index."""
        stored = self.manifest.get("clip_windows")
        self._store_agrees(stored, "has_windows", "CLIP windows", "them")
        if given is None:
            return
        if stored is None:
            raise ConfigurationError(
                f"{self.where}: the index was built without CLIP windows, so it cannot take clip_windows={given.identity()}; "
                "open it without clip_windows=, or ingest into a new index folder (or copy it there with reindex)"
            )
        want = {k: stored[k] if v is None else v for k, v in given.identity().items()}  # unset: the index's own
        if want != stored:
            raise ConfigurationError(
                f"{self.where}: the index was built with CLIP windows {stored}, not {want}; open it without "
                "clip_windows= (it keeps its own), or ingest into a new index folder"
            )

    @property
    def has_windows(self) -> bool:
        """True when text chunks carry CLIP windows (searched by the ``dense_text`` list)."""
        return self.manifest.get("clip_windows") is not None and not self.manifest.get("keyword_only")

    def window_vectors(self, chunks: Sequence[Chunk], vectors: Sequence[np.ndarray | None]) -> Any:
        """The CLIP windows of *chunks* (their CLIP *vectors* first, the windows over the rest of a
        long text after: :func:`~..embeddings.windows.window_texts`), as
        :class:`~..embeddings.batch.Embedded` (``None`` rows: images, failed chunks), or ``None``
        when the index has no windows."""
        windows = self.clip_windows
        if windows is None:
            return None
        from ..embeddings.batch import ChunkError, Embedded
        from ..embeddings.windows import token_counter, window_texts

        embedder = self.embedder
        count = None if embedder is None else token_counter(embedder)
        if embedder is None or count is None:
            raise ConfigurationError(
                f"{self.where}: storing chunks in an index with CLIP windows embeds them with the index's model; "
                "open the index with embedder= that model"
            )
        parts: list[list[str]] = []
        for chunk, vec in zip(chunks, vectors, strict=True):
            parts.append(window_texts(chunk.text, count, windows) if isinstance(chunk, TextChunk) and vec is not None else [])
        flat = [t for p in parts for t in p]
        rows = embedder.embed_texts(flat) if flat else np.zeros((0, self.dim or 0), np.float32)
        out: list[np.ndarray | None] = []
        errors: list[ChunkError] = []
        at = 0
        for i, (chunk, vec, p) in enumerate(zip(chunks, vectors, parts, strict=True)):
            mine = np.asarray(rows[at : at + len(p)], np.float32).reshape(len(p), int(self.dim or 0))
            at += len(p)
            if not isinstance(chunk, TextChunk) or vec is None:
                out.append(None)
                continue
            problem = next((pr for r in mine if (pr := vector_problem(r, int(self.dim or 0))) is not None), None)
            if problem is not None:
                errors.append(ChunkError(i, chunk.source, f"CLIP window: {problem}"))
                out.append(None)
                continue
            mine = mine / np.linalg.norm(mine, axis=1, keepdims=True).astype(np.float32) if len(mine) else mine
            out.append(np.vstack([np.asarray(vec, np.float32).reshape(1, -1), mine]).astype(np.float32))
        return Embedded(out, tuple(errors))

    def attach_text(self, text_embedder: TextEmbedder) -> None:
        """Use *text_embedder* for :meth:`add` and the ``text_model`` list; it must be the index's text model."""
        from ..embeddings.text_model import text_model_identity

        self._check_text_model(text_model_identity(text_embedder))
        self.text_embedder = text_embedder

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

    def _create(
        self, embedder: Embedder | None, dim: int | None, bm25: BM25Encoder | None, keyword_only: bool, blobs: str | None = None
    ) -> None:
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
        if self._new_text_model is not None:
            self.manifest["text_model"] = self._new_text_model
        if self._new_windows is not None:
            from ..embeddings.windows import DEFAULT_CONTEXT, context_length, token_counter

            if embedder is not None and token_counter(embedder) is None:
                raise ConfigurationError("clip_windows= needs a model whose tokenizer counts tokens (encode()); this one cannot")
            context = DEFAULT_CONTEXT if embedder is None else context_length(embedder)
            self.manifest["clip_windows"] = self._new_windows.resolved(context).identity()
        if blobs is not None:
            self.manifest["blobs"] = blobs
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
    def text_model(self) -> dict[str, Any] | None:
        """The identity of the index's text model (``None``: the index has none)."""
        return self.manifest.get("text_model")

    @property
    def clip_windows(self) -> Any:
        """The index's CLIP windows (:class:`~mm_rag_plugin.embeddings.windows.ClipWindows`), or
        ``None``: one CLIP vector per chunk (what the model reads of its start)."""
        data = self.manifest.get("clip_windows")
        if data is None:
            return None
        from ..embeddings.windows import ClipWindows

        return ClipWindows.from_identity(data)

    @property
    def text_dim(self) -> int | None:
        tm = self.text_model
        return None if tm is None else int(tm["dim"])

    @property
    def keyword_only(self) -> bool:
        """True when the index stores no dense vectors."""
        return bool(self.manifest["keyword_only"])

    @property
    def blob_dir(self) -> Path | None:
        """Where extracted images of this index live (inside the index folder)."""
        return None if self.path is None else self.path / BLOB_DIR

    @property
    def blobs(self) -> str | None:
        """The URL of the blob store holding this index's images (``None``: its folder's ``blobs/``)."""
        url: str | None = self.manifest.get("blobs")
        return url

    @property
    def blob_store(self) -> Any:
        """The blob store at :attr:`blobs` (opened on first use), or ``None``."""
        if self._blob_store is None and self.blobs is not None:
            from .blobstore import open_blob_store

            self._blob_store = open_blob_store(self.blobs, self._blob_options)
        return self._blob_store

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
        self._need_text_model("add()")
        report = ingest(
            self,
            items,
            self.embedder,
            replace_sources=replace_sources,
            batch_size=batch_size or self.batch_size,
            show_progress=self.show_progress if show_progress is None else show_progress,
        )
        return report

    def _need_text_model(self, what: str) -> None:
        if self.text_model is not None and self.text_embedder is None:
            from ..embeddings.text_model import describe_text_model

            raise ConfigurationError(
                f"{self.where}: {what} embeds chunks with the index's text model ({describe_text_model(self.text_model)}) too; "
                "open the index with text_embedder= that model"
            )

    def text_vectors(self, chunks: Sequence[Chunk]) -> Any:
        """The text-model vectors of *chunks* (:func:`~..embeddings.batch.embed_chunk_texts`), or
        ``None`` when the index has no text model."""
        if self.text_model is None:
            return None
        self._need_text_model("storing chunks")
        from ..embeddings.batch import embed_chunk_texts

        return embed_chunk_texts(self.text_embedder, chunks)

    def add_embedded(self, chunks: Sequence[Chunk], vectors: np.ndarray | None) -> int:
        """Store chunks with precomputed dense vectors (one row each; ``None`` for a keyword-only
        index); an index with a text model embeds their text with it. Returns how many were new."""
        if vectors is None:
            rows: list[np.ndarray | None] = [None] * len(chunks)
        else:
            vectors = np.asarray(vectors, dtype=np.float32)
            if vectors.shape != (len(chunks), self.dim):
                raise InvalidInputError(f"expected vectors of shape ({len(chunks)}, {self.dim}), got {vectors.shape}")
            rows = list(vectors)
        texted = self.text_vectors(chunks)
        if texted is not None and texted.errors:
            raise InvalidInputError(str(texted.errors[0]), source=texted.errors[0].source)
        texts = [None] * len(chunks) if texted is None else texted.vectors
        windowed = self.window_vectors(chunks, rows)
        if windowed is not None and windowed.errors:
            raise InvalidInputError(str(windowed.errors[0]), source=windowed.errors[0].source)
        wins = [None] * len(chunks) if windowed is None else windowed.vectors
        points: dict[str, Point] = {}
        for chunk, vec, tv, wv in zip(chunks, rows, texts, wins, strict=True):
            p = self.make_point(chunk, vec, text=tv, windows=wv)
            if p.id in points:
                points[p.id].payload["sources"] = _merged(points[p.id].payload["sources"], [chunk.source])
            else:
                points[p.id] = p
        return self.store(list(points.values()))

    # ------------------------------------------------------------------ point operations
    # The only way in for callers (ingest, the keyed stores, reindexing, the pipeline, copies): each
    # operation commits what it must (the manifest's point count) before it returns.
    def store(self, points: Sequence[Point]) -> int:
        """The write sequence: points already stored (same id) get the new points' ``sources``
        merged into theirs, the others are written; committed. Returns how many were new."""
        present = self.merge_sources({p.id: p.payload.get("sources") or [] for p in points})
        new = [p for p in points if p.id not in present]
        self.write_points(new)
        return len(new)

    def merge_sources(self, wanted: Mapping[str, Sequence[str]]) -> set[str]:
        """Add the paths in *wanted* (point id -> paths) to the ``sources`` of those points the
        index holds; returns the ids it holds (the others are for the caller to write)."""
        present = self._engine.existing(list(wanted))
        updates = {}
        for pid, have in present.items():
            merged = _merged(have, wanted[pid])
            if merged != have:
                updates[pid] = merged
        if updates:
            self._will_write()
            self._engine.set_sources(updates)
        return set(present)

    def write_points(self, points: Sequence[Point]) -> None:
        """Upsert *points* as they are (replacing points with the same id); committed."""
        if points:
            self._will_write()
            self._engine.upsert(points)
            self._commit(len(points))

    def existing(self, ids: Sequence[str]) -> dict[str, list[str]]:
        """The ids among *ids* that the index holds, each with its ``sources``."""
        return self._engine.existing(list(ids))

    def with_source(self, source: str) -> dict[str, list[str]]:
        """The points found at *source* (point id -> all their sources)."""
        return self._engine.with_source(source)

    def ids_where(self, conditions: tuple[Condition, ...]) -> list[str]:
        """The ids of every point matching *conditions* (all of them for ``()``)."""
        return self._engine.ids_where(conditions)

    def delete(self, ids: Sequence[str]) -> int:
        """Delete the points with these ids (ids not stored are ignored); committed. Returns how
        many were stored."""
        present = self._engine.existing(list(ids))
        if present:
            self._will_write()
            self._engine.delete(sorted(present))
            self._commit()
        return len(present)

    def delete_where(self, conditions: tuple[Condition, ...]) -> int:
        """Delete every point matching *conditions*; committed. Returns how many."""
        pids = self._engine.ids_where(conditions)
        if pids:
            self._will_write()
            self._engine.delete(pids)
            self._commit()
        return len(pids)

    def fetch(self, ids: Sequence[str], *, vectors: bool = False) -> dict[str, Point]:
        """The stored points with these ids, payloads as stored (not resolved: see
        :meth:`payloads` for what answers read) and, with *vectors*, their dense vectors."""
        payloads = self._engine.payloads(list(ids))
        dense = self._engine.vectors(list(payloads)) if vectors and payloads else {}
        empty = _empty_sparse()
        return {pid: Point(pid, dense.get(pid), empty, p) for pid, p in payloads.items()}

    def _will_write(self) -> None:
        """Before the first write since the manifest's count was exact: mark the stored manifest
        ``"clean": false`` (once), so that an open after a crash counts the points itself."""
        w = self._writes
        if not w.lagging:
            self._engine.write_manifest({**self.manifest, "clean": False})
            w.lagging, w.last = True, time.monotonic()

    def _commit(self, written: int = 0) -> None:
        """After a write (durable already: the engine's log has it): the manifest's count is
        stored every :data:`COMMIT_EVERY_S` seconds at most, the search structures are built
        when they pay (:data:`OPTIMIZE_AFTER`), never on every call."""
        w = self._writes
        w.pending = True
        w.unindexed += written
        if w.unindexed >= max(OPTIMIZE_AFTER, w.indexed):
            self.optimize()
        elif time.monotonic() - w.last >= COMMIT_EVERY_S:
            self._engine.flush()
            self._store_count(clean=False)

    def _store_count(self, *, clean: bool) -> None:
        """Write the manifest with the exact point count (*clean*: no write may follow unmarked)."""
        w = self._writes
        self.manifest["points"] = self._engine.count()
        self._engine.write_manifest({**self.manifest, "clean": clean})
        w.pending, w.last, w.lagging = False, time.monotonic(), not clean

    def flush(self) -> None:
        """Flush the store and write the manifest's exact point count now (``close`` and
        :meth:`optimize` do it too; while writing it is written every :data:`COMMIT_EVERY_S`
        seconds). Not needed for durability: every write is kept once its call returns."""
        self._engine.flush()
        if self._writes.lagging:
            self._store_count(clean=True)

    def point_id(self, chunk: Chunk) -> tuple[str, dict[str, Any]]:
        """The content-derived point id of *chunk*, and its payload (paths under the index folder
        made relative to it)."""
        if not isinstance(chunk, (TextChunk, ImageChunk)):
            raise InvalidInputError(f"expected a TextChunk or ImageChunk, got {type(chunk).__name__}")
        payload = json.loads(json.dumps(chunk_to_payload(chunk, flat=False), default=str))
        payload["sources"] = [chunk.source]
        what = {k: v for k, v in payload.items() if k not in _PLACE_KEYS and k not in _STORAGE_KEYS}
        if isinstance(chunk, ImageChunk):
            key = self._store_key(chunk)
            if key is not None:  # kept in the blob store: the payload names its key, machine-independent
                payload["image_path"], payload[_IMAGE_ROOT] = key, "store"
                what["image_path"] = key
                payload.pop("file_hash", None)
                if not key.startswith(chunk.content_hash + "."):
                    payload["file_hash"] = key.partition(".")[0]
            rel = None if key is not None else self._relative(chunk.image_path)
            if rel is not None:
                payload["image_path"], payload[_IMAGE_ROOT] = rel, "index"
                what["image_path"] = rel
            if chunk.image_path == chunk.source:
                what.pop("image_path", None)  # an image file: its bytes' hash says what it is
            if not chunk.file_hash and key is None:
                # what image_file checks later (not in the id): the bytes as they are now, when the
                # chunk's content_hash is not their hash (an item added without one, as frameworks
                # add them, or a chunk built by hand with a hash of its own)
                digest = _readable_hash(chunk.image_path)
                if digest and digest != chunk.content_hash:
                    payload["file_hash"] = digest
        meta = dict(what.get("metadata") or {})
        meta.pop("duplicate_of", None)
        what["metadata"] = meta
        return stable_id("mm-rag-point", content_hash(json.dumps(what, sort_keys=True))), payload

    def _store_key(self, chunk: ImageChunk) -> str | None:
        """The blob store key of *chunk*'s image (the hash of its bytes and an extension), or
        ``None``: no store, or not a local file (a ``data:`` URI, a URL, a missing file)."""
        if self.blobs is None:
            return None
        digest = _readable_hash(chunk.image_path)
        if digest is None:
            return None
        from ..readers._detect import MIME_EXTENSIONS

        ext = MIME_EXTENSIONS.get(chunk.mime_type) or Path(chunk.image_path).suffix[1:].lower()
        return f"{digest}.{ext if _EXT.fullmatch(ext) else 'img'}"

    def _upload(self, chunk: ImageChunk, key: str) -> None:
        """Write *chunk*'s image into the blob store under *key* (once: a key there is kept)."""
        try:
            with open(chunk.image_path, "rb") as fh:
                data = fh.read(_MAX_IMAGE_BYTES + 1)
        except OSError as exc:
            raise InvalidInputError(f"{chunk.source}: image {chunk.image_path} cannot be read ({exc.strerror or exc})", source=chunk.source) from None
        if content_hash(data) != key.partition(".")[0]:
            raise InvalidInputError(f"{chunk.source}: image {chunk.image_path} changed while it was indexed", source=chunk.source)
        self.blob_store.put(key, data)

    def _relative(self, image_path: str) -> str | None:
        if self.path is None:
            return None
        try:
            return Path(os.path.abspath(image_path)).relative_to(self.path).as_posix()
        except ValueError:
            return None

    def make_point(
        self, chunk: Chunk, vector: np.ndarray | None, *, key: str | None = None, point_id: str | None = None,
        text: np.ndarray | None = None, windows: np.ndarray | None = None,
    ) -> Point:
        """A point for *chunk* with its dense *vector* (refused when not finite, zero, or of the
        wrong size; ``None`` only in a keyword-only index) and, in an index with a text model, its
        *text* vector (:meth:`text_vectors`; ``None`` only for a chunk without text). With *key*
        (the framework vector stores) the point is addressed by that id (or *point_id*) instead of
        by its content."""
        pid, payload = self.point_id(chunk)
        if payload.get(_IMAGE_ROOT) == "store":  # the bytes are in the store before a point names them
            assert isinstance(chunk, ImageChunk)
            self._upload(chunk, payload["image_path"])
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
            problem = vector_problem(dense, self.dim)
            if problem is not None:
                raise InvalidInputError(f"{chunk.source}: {problem}; refusing to store it", source=chunk.source)
        sparse = self.bm25.encode_document(chunk.search_text, ocr_words(chunk))
        return Point(pid, dense, sparse, payload, self._text_row(chunk, text), self._window_rows(chunk, windows))

    def _window_rows(self, chunk: Chunk, windows: np.ndarray | None) -> np.ndarray | None:
        if not self.has_windows or not isinstance(chunk, TextChunk):
            if windows is not None:
                raise InvalidInputError(f"{chunk.source}: CLIP windows for {'an image' if isinstance(chunk, ImageChunk) else 'an index without them'}", source=chunk.source)
            return None
        if windows is None:
            raise InvalidInputError(f"{chunk.source}: no CLIP windows for a text chunk of an index with windows", source=chunk.source)
        rows = np.asarray(windows, np.float32)
        most = int(self.manifest["clip_windows"]["max_windows"])
        if rows.ndim != 2 or not 1 <= len(rows) <= most:
            raise InvalidInputError(f"{chunk.source}: CLIP windows must be 1 to {most} rows, got shape {rows.shape}", source=chunk.source)
        for r in rows:
            problem = vector_problem(r, int(self.dim or 0))
            if problem is not None:
                raise InvalidInputError(f"{chunk.source}: CLIP window: {problem}; refusing to store it", source=chunk.source)
        return rows

    def _text_row(self, chunk: Chunk, text: np.ndarray | None) -> np.ndarray | None:
        if self.text_model is None:
            if text is not None:
                raise InvalidInputError(f"{chunk.source}: a text-model vector for an index without a text model", source=chunk.source)
            return None
        if text is None:
            if chunk.search_text.strip():
                raise InvalidInputError(f"{chunk.source}: no text-model vector for a chunk with text", source=chunk.source)
            return None
        row = np.asarray(text, np.float32).reshape(-1)
        problem = vector_problem(row, int(self.text_model["dim"]))
        if problem is not None:
            raise InvalidInputError(f"{chunk.source}: text model: {problem}; refusing to store it", source=chunk.source)
        return row

    def delete_source(self, source: str) -> int:
        """Remove *source* from the index: points found only there are deleted, points also found
        at other paths just forget this one. Returns how many points were deleted."""
        return self.forget(source, keep=set())

    def forget(self, source: str, keep: set[str]) -> int:
        """Drop *source* from every point not in *keep*; returns how many points were deleted."""
        found = self._engine.with_source(source)
        doomed = [pid for pid, srcs in found.items() if pid not in keep and set(srcs) <= {source}]
        updates = {pid: [s for s in srcs if s != source] for pid, srcs in found.items() if pid not in keep and pid not in doomed}
        if updates or doomed:
            self._will_write()
        if updates:
            # an image file's own path: when that path goes, the image is read from a remaining one
            follow = {pid for pid, p in self._engine.payloads(list(updates)).items() if p.get("image_path") == source}
            self._engine.set_sources(updates, follow)
        if doomed:
            self._engine.delete(sorted(doomed))
        if updates or doomed:
            self._commit()
        return len(doomed)

    def optimize(self) -> None:
        """Build the search structures (HNSW graph, merged segments) for what was added, flush the
        store and write the manifest's point count. Writes do it themselves when it pays
        (:data:`OPTIMIZE_AFTER` new points, or :data:`OPTIMIZE_ON_CLOSE` at ``close``); until then
        new points are found by an exact scan."""
        self._build()
        if self._writes.lagging:
            self._store_count(clean=True)

    def _build(self) -> None:
        self._engine.optimize()
        w = self._writes
        w.indexed += w.unindexed
        w.unindexed = 0

    # ------------------------------------------------------------------ reads (used by retrievers)
    def search_lists(self, queries: Sequence[ListQuery], conditions: tuple[Condition, ...]) -> list[list[tuple[str, float]]]:
        """Each list ranked by the engine (ids and scores only)."""
        return self._engine.search(queries, conditions).lists

    def search(
        self,
        queries: Sequence[ListQuery],
        conditions: tuple[Condition, ...],
        *,
        fuse: tuple[float, int, Sequence[float] | None] | None = None,
        payloads: bool = True,
        vectors: bool = False,
    ) -> Found:
        """One engine call for a query: the ranked lists (or, with ``fuse=(rrf_k, limit,
        weights)``, the one list Qdrant fuses), with the hits' payloads (checked and resolved as
        :meth:`payloads` gives them) and, with *vectors*, their dense vectors, in that same call."""
        if fuse is None:
            found = self._engine.search(queries, conditions, with_payload=payloads, with_vector=vectors)
        else:
            rrf_k, limit, weights = fuse
            w = [1.0] * len(queries) if weights is None else list(weights)
            found = self._engine.fused(
                queries, conditions, rrf_k=rrf_k, weights=w, limit=limit, with_payload=payloads, with_vector=vectors
            )
        if payloads:  # checked and resolved as read: a query reads few of the hits it gets
            found = Found(found.lists, _Resolving(self, found.payloads), found.vectors, found.fetch)
        return found

    def chunks(self, ids: Sequence[str]) -> dict[str, Chunk]:
        """Chunks by point id (ids not found are left out); a damaged payload raises
        :class:`StoreError` (see :meth:`payloads`)."""
        return {pid: payload_to_chunk(p) for pid, p in self.payloads(ids).items()}

    def _check_payloads(self, payloads: Mapping[str, Mapping[str, Any]]) -> None:
        """A stored payload with a field of the wrong type or value fails the read with one
        :class:`StoreError` naming the index, the point and the field: an answer is never built
        from a damaged item, and ``mm-rag verify`` lists every such point."""
        for pid, p in payloads.items():
            problem = payload_problem(p)
            if problem:
                raise StoreError(
                    f"{self.where}: damaged index: point {pid}: {problem}; run `mm-rag verify` to list the damage, "
                    "restore a backup, or re-ingest into a new index folder"
                )

    def payloads(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Stored payloads by point id, image paths resolved against the index folder. An image
        point whose file :meth:`image_file` refuses is left out (as if deleted), with one warning:
        no caller can read a path the index did not check."""
        return self._resolve(self._engine.payloads(ids))

    def _resolve(self, out: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        """Stored payloads made safe to answer with (see :meth:`payloads`), in place."""
        self._check_payloads(out)
        for pid, p in list(out.items()):
            if p.get("kind") != "image":
                p.pop(_IMAGE_ROOT, None)
                continue
            image = self._image(p, cached=True)
            if image.problem is not None and not image.missing:
                logger.warning("%s: image not read: %s", p.get("source") or f"point {pid}", image.problem)
                del out[pid]
                continue
            p.pop(_IMAGE_ROOT, None)
            p["image_path"] = image.path
        return out

    def image_file(self, payload: Mapping[str, Any]) -> Path | None:
        """The image file of an image point's *payload* (as stored, or as :meth:`payloads` gives
        it), or ``None`` (with one warning naming its source and the problem) when it must not be
        read. The one rule for every reader of an index's image files (answers, copies, verify):

        * where: in a folder index, a path stored relative to the folder must stay inside it
          (no ``../``, not absolute), and a file inside the folder is read only from ``blobs/``,
          reached through no symbolic link inside the index (its real path must be its path).
          A path outside the folder is the file the item was read from (an image file ingested
          directly, a Markdown/HTML image read in place, a framework item added by path): the
          index cannot tell a crafted one from those, so the next rule decides. An index without
          a folder (in memory, a server without ``path=``) has only the next rule.
        * what: the bytes must hash (:func:`~mm_rag_plugin.ids.content_hash`) to the point's
          ``content_hash`` (the original image) or ``file_hash`` (the bytes a blob store wrote,
          re-encoded or downscaled). A point from before ``file_hash`` existed whose blob was
          re-encoded is accepted by its name: a regular file ``blobs/<content_hash>.<ext>``
          (named by the hash, written by the blob store, and unable to point outside). An item
          added without any hash (a framework item) gets the ``file_hash`` of its file when it is
          written (:meth:`point_id`); a point with no hash at all is refused.

        A path that does not exist has nothing to read: it is returned (reading it fails later);
        ``data:`` URIs hold their bytes in the payload and are returned as they are."""
        image = self._image(payload, cached=False)
        if image.problem is not None and not image.missing:
            logger.warning("%s: image not read: %s", payload.get("source") or "?", image.problem)
            return None
        return None if image.path.startswith("data:") else Path(image.path)

    def _image(self, payload: Mapping[str, Any], *, cached: bool = False, read: bool = False) -> _Image:
        """Check an image point's file by the rule of :meth:`image_file`; with *read*, keep its bytes."""
        raw = payload.get("image_path")
        if not isinstance(raw, str) or not raw:
            return _Image("", f"image path {echo(raw, 120)} is not a path")
        if raw[:5].lower() == "data:":
            return _Image(raw, None)
        if payload.get(_IMAGE_ROOT) == "store":
            return self._stored_image(payload, raw, cached=cached and not read)
        shown = echo(raw, 200)
        in_index = payload.get(_IMAGE_ROOT) == "index"
        if in_index and self.path is None:  # a server index without path=: nothing to be inside
            in_index = False
        if in_index and (PurePosixPath(raw).is_absolute() or ".." in PurePosixPath(raw).parts or "\\" in raw):
            return _Image(raw, f"image path {shown} leaves the index folder")
        full = Path(os.path.abspath(self.path / raw if in_index else raw))  # type: ignore[operator]
        rel = _inside(full, self.path)
        where = str(full) if in_index or rel is not None else raw  # outside: as given (and as ingested)
        problem = None
        if rel is not None:
            if len(rel.parts) < 2 or rel.parts[0] != BLOB_DIR:
                problem = f"image path {shown} is inside the index folder but not in its {BLOB_DIR}/ folder"
            elif os.path.realpath(full) != os.path.join(os.path.realpath(self.path), *rel.parts):  # type: ignore[arg-type]
                problem = f"image path {shown} goes through a symbolic link inside the index"
        elif in_index:
            problem = f"image path {shown} leaves the index folder"
        if not os.path.lexists(full):  # nothing to read; only a missing blob is a damaged index
            missing = rel is not None and problem is None
            return _Image(where, f"image file missing: {full}" if missing else None, missing=True)
        if problem is not None:
            return _Image(where, problem)
        try:
            digest, data = self._hash_file(full, cached=cached and not read)
        except OSError as exc:
            return _Image(where, f"image file {shown} cannot be read ({exc.strerror or exc})")
        except _NotImage as exc:
            return _Image(where, f"image path {shown} {exc}")
        wanted = {h for h in (payload.get("content_hash"), payload.get("file_hash")) if isinstance(h, str) and h}
        if digest in wanted:
            return _Image(where, None, data=data)
        legacy = (
            not payload.get("file_hash")
            and rel is not None
            and len(rel.parts) == 2
            and PurePosixPath(rel.parts[1]).stem == payload.get("content_hash")
        )
        if legacy:
            return _Image(where, None, data=data)
        if not wanted:
            return _Image(where, f"image {shown} has no content hash recorded to check its bytes against")
        return _Image(where, f"image file {shown} is not the image indexed (its bytes changed or were replaced)")

    def _stored_image(self, payload: Mapping[str, Any], key: str, *, cached: bool) -> _Image:
        """An image in the blob store, by the rule of :meth:`image_file`: its key a hash name, its
        bytes hashing to the recorded hash. Checked bytes are kept in :func:`.blobstore.blob_cache_dir`
        (named by key) and given by that path; with *cached*, a cached copy (checked again) is used
        instead of reading the store, which :meth:`verify` and copies always read."""
        from .blobstore import KEY, blob_cache_dir, write_atomic

        shown = echo(key, 120)
        if self.blobs is None:
            return _Image(key, f"image {shown} is in a blob store, but the index records none")
        if not KEY.fullmatch(key):
            return _Image(key, f"image key {shown} is not a blob store key (<hash>.<ext>)")
        wanted = {h for h in (payload.get("content_hash"), payload.get("file_hash")) if isinstance(h, str) and h}
        local = blob_cache_dir() / key
        if cached and os.path.isfile(local) and not os.path.islink(local):
            try:
                if self._hash_file(local, cached=True)[0] in wanted:
                    return _Image(str(local), None)
            except (OSError, _NotImage):
                pass  # read from the store again
        where = self.blob_store.location(key)
        try:
            data = self.blob_store.get(key, _MAX_IMAGE_BYTES)
        except StoreError as exc:
            return _Image(where, str(exc))
        if data is None:
            return _Image(where, f"image missing from the blob store: {where}", missing=True)
        if len(data) > _MAX_IMAGE_BYTES:
            return _Image(where, f"image {where} is over the {_MAX_IMAGE_BYTES:,} byte limit for images")
        if content_hash(data) not in wanted:
            return _Image(where, f"image {where} in the blob store is not the image indexed (its bytes changed or were replaced)")
        try:
            write_atomic(local, data)
        except OSError as exc:
            return _Image(where, f"image {where} cannot be kept in the cache folder {local.parent} ({exc.strerror or exc})")
        return _Image(str(local), None, data=data)

    def _hash_file(self, path: Path, *, cached: bool) -> tuple[str, bytes | None]:
        """The content hash of a regular file (never through a final symbolic link), and its bytes
        unless *cached* (then a file unchanged since last time is not read again)."""
        real = os.path.realpath(path)
        st = os.stat(real)
        if not stat.S_ISREG(st.st_mode):
            raise _NotImage("is not a regular file")
        if st.st_size > _MAX_IMAGE_BYTES:
            raise _NotImage(f"is {st.st_size:,} bytes, over the {_MAX_IMAGE_BYTES:,} byte limit for images")
        key = (real, st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns)
        cache: dict[tuple[Any, ...], str] = self.__dict__.setdefault("_image_hashes", {})
        if cached and key in cache:
            return cache[key], None
        fd = os.open(real, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        with os.fdopen(fd, "rb") as fh:
            if not stat.S_ISREG(os.fstat(fh.fileno()).st_mode):
                raise _NotImage("is not a regular file")
            data = fh.read(_MAX_IMAGE_BYTES + 1)
        if len(data) > _MAX_IMAGE_BYTES:
            raise _NotImage(f"is over the {_MAX_IMAGE_BYTES:,} byte limit for images")
        digest = content_hash(data)
        if len(cache) >= _HASH_CACHE:
            cache.clear()
        cache[key] = digest
        return digest, data

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
        image file present when the image lives in the index folder, and readable by the rule of
        :meth:`image_file` (a path out of ``blobs/``, a link, changed bytes are problems)."""
        problems: list[str] = []
        stored = self._engine.count()
        if not self._writes.lagging and self.manifest.get("points") != stored:  # lagging: stored later, by design
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
        problem = payload_problem({k: v for k, v in payload.items() if k != "kind"})
        if problem:
            yield f"damaged payload: {problem} ({where})"
        if not payload.get("sources") and "key" not in payload:  # items added by id may have no file
            yield f"no sources recorded ({where})"
        if not self.keyword_only:
            if p.dense is None:
                yield f"no dense vector ({where})"
            elif (problem := vector_problem(p.dense, self.dim)) is not None:
                yield f"{problem} ({where})"
        elif p.dense is not None:
            yield f"holds a dense vector, but the manifest says the index is keyword-only ({where})"
        if p.text is not None:
            if self.text_model is None:
                yield f"holds a text-model vector, but the manifest records no text model ({where})"
            elif (problem := vector_problem(p.text, int(self.text_model["dim"]))) is not None:
                yield f"text model: {problem} ({where})"
        if p.windows is not None and not self.has_windows:
            yield f"holds CLIP windows, but the manifest records none ({where})"
        elif self.has_windows and payload.get("kind") != "image" and p.windows is None:
            yield f"a text chunk without CLIP windows in an index with them ({where})"
        if not _same_sparse(p.sparse, self._expected_sparse(payload)):
            yield f"keyword (BM25) vector does not match the point's text ({where})"
        if payload.get("kind") == "image":
            problem = self._image(payload).problem  # where it is and what its bytes are (image_file)
            if problem is not None:
                yield f"{problem} ({where})"

    def _expected_sparse(self, payload: dict[str, Any]) -> Any:
        try:
            chunk = payload_to_chunk(dict(payload))
        except Exception:  # a payload too damaged to read: its other problems are reported
            return None
        return self.bm25.encode_document(chunk.search_text, ocr_words(chunk))

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
        blobs: str | os.PathLike[str] | None = None,
        blob_options: Mapping[str, Any] | None = None,
    ) -> MultiModalIndex:
        """Stream every point into another index (a Qdrant server by ``url=``/``client=``, or a
        folder) with the same manifest, and return it open. Resumable: points already there are
        skipped, so a copy that was interrupted is finished by running it again. Images extracted
        into this folder are copied along when the target is a folder, file by file, each one only
        when :meth:`image_file` accepts it (no link is followed; a refused one is warned about).

        ``blobs=URL``: the new index keeps its images in that blob store (default: this index's
        store, if it has one); every image this index can read (checked by that same rule) is
        written there, so a copy to a server serves its images to any machine."""
        from .._progress import progress_bar as tqdm
        from .blobstore import blob_url

        given = None if blobs is None else blob_url(blobs)
        target = MultiModalIndex._for_copy(
            self, path, given, blob_options, url=url, api_key=api_key, client=client, collection=collection
        )
        try:
            total = len(self)
            bar = tqdm(total=total, unit="point", desc="copying", disable=not (self.show_progress if show_progress is None else show_progress))
            copied: set[str] = set()
            with bar:
                for batch in self.scan(batch_size):
                    if target.blobs is not None:
                        batch = [self._into_store(p, target, copied) for p in batch]
                    target.store(batch)
                    if target.blob_dir is not None and target.blobs is None:
                        for p in batch:
                            self._copy_image(p, target, copied)
                    bar.update(len(batch))
            target._commit()
            target.optimize()
            if len(target) < total:
                raise StoreError(f"copy to {target.where} ended with {len(target)} of {total} points")
        except BaseException:
            target.close()
            raise
        return target

    def _into_store(self, p: Point, target: MultiModalIndex, copied: set[str]) -> Point:
        """Point *p* as *target* stores it: its image (read by :meth:`image_file`'s rule) written
        into the target's blob store, the payload naming it there. An image that cannot be read
        is left as it is (a refused one is warned about)."""
        payload = p.payload
        if payload.get("kind") != "image" or (payload.get(_IMAGE_ROOT) == "store" and target.blobs == self.blobs):
            return p
        image = self._image(payload, read=True)
        if image.problem is not None and not image.missing:
            logger.warning("%s: image not copied: %s", payload.get("source") or f"point {p.id}", image.problem)
        if image.data is None:
            return p
        digest = content_hash(image.data)
        ext = PurePosixPath(str(payload.get("image_path"))).suffix[1:].lower()
        key = f"{digest}.{ext if _EXT.fullmatch(ext) else 'img'}"
        if key not in copied:
            target.blob_store.put(key, image.data)
            copied.add(key)
        moved = {k: v for k, v in payload.items() if k != "file_hash"}
        moved.update(image_path=key, image_root="store")
        if digest != payload.get("content_hash"):
            moved["file_hash"] = digest
        return Point(p.id, p.dense, p.sparse, moved, p.text, p.windows)

    def _copy_image(self, p: Point, target: MultiModalIndex, copied: set[str]) -> None:
        """Copy point *p*'s image file into *target*'s ``blobs/`` when it is one of this index's
        blobs and :meth:`image_file`'s rule accepts it (the bytes checked are the bytes written)."""
        if p.payload.get("kind") != "image" or target.path is None:
            return
        image = self._image(p.payload, read=True)
        if image.problem is not None and not image.missing:
            logger.warning("%s: image not copied: %s", p.payload.get("source") or f"point {p.id}", image.problem)
            return
        rel = _inside(Path(image.path), self.path) if image.data is not None else None
        if rel is None or image.path in copied:
            return
        copied.add(image.path)
        dest = target.path.joinpath(*rel.parts)
        if dest.is_file() and not dest.is_symlink() and dest.read_bytes() == image.data:
            return  # a resumed copy
        dest.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=".tmp-", suffix=dest.suffix)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(image.data)  # type: ignore[arg-type]
            os.replace(tmp, dest)  # replaces a link at dest, never writes through it
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    @staticmethod
    def _for_copy(
        source: MultiModalIndex, path: Any, blobs: str | None, blob_options: Mapping[str, Any] | None, **remote: Any
    ) -> MultiModalIndex:
        manifest = dict(source.manifest, points=0)
        if blobs is not None:
            manifest["blobs"] = blobs
        ix = object.__new__(MultiModalIndex)
        ix._blob_options = dict((blob_options or source._blob_options) if blobs is None else (blob_options or {}))
        ix._blob_store = None
        ix.embedder, ix.batch_size, ix.show_progress = None, source.batch_size, source.show_progress
        ix.text_embedder = None
        ix.quantization, ix.oversampling = source.quantization, source.oversampling
        ix.remote = remote.get("url") is not None or remote.get("client") is not None
        ix.path = None if path is None else Path(os.path.abspath(Path(path).expanduser()))
        ix._lock = None
        ix._hold = None
        ix._engine = _Closed()
        try:
            if ix.remote:
                from ._remote import RemoteEngine

                ix._start(lambda: TextSafeEngine(RemoteEngine(quantization=source.quantization, oversampling=source.oversampling, **remote)))
            else:
                if ix.path is None:
                    raise ConfigurationError("copy_to needs a folder path, url= or client=")
                ix._prepare_folder(create=True)
                from ._edge import EdgeEngine

                ix._start(lambda: TextSafeEngine(EdgeEngine(ix.path, quantization=source.quantization, oversampling=source.oversampling)))
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
                and stored.get("text_model") == manifest.get("text_model")
                and stored.get("clip_windows") == manifest.get("clip_windows")
            )
            if not same:
                raise ConfigurationError(
                    f"{ix.where} already holds an index of {describe_model(stored['model'])}; "
                    f"cannot copy an index of {describe_model(manifest['model'])} into it"
                )
            if blobs is not None and stored.get("blobs") != blobs:
                raise ConfigurationError(
                    f"{ix.where} already holds an index that keeps its images in "
                    f"{stored.get('blobs') or f'its folder ({BLOB_DIR}/)'}, not in {blobs}; copy into a new folder or collection"
                )
            ix.manifest = dict(stored)
            ix.manifest.pop("clean", None)
            ix.bm25 = BM25Encoder.from_config(stored["bm25"], ix.where)
            ix.dim = stored["dim"]
            ix.keyword_search_only = stored["keyword_only"]
        except BaseException:
            ix.close()
            raise
        return ix

    # ------------------------------------------------------------------ lifecycle
    def _start(self, make: Any) -> None:
        """Use the engine this process already has open on the folder, or open one with *make*.
        Either way the object lets it go when closed, dropped or collected (``weakref.finalize``)."""
        if self._hold is None:
            key = None if self.remote or self.path is None else folder_key(self.path)
            self._hold = Hold(make(), self._lock, key)
            self._lock = None  # the hold releases it
            self._finalizer = weakref.finalize(self, self._hold.release)
        if self._hold.writes is None:
            self._hold.writes = _Writes(last=time.monotonic())
        self._writes: _Writes = self._hold.writes
        self._engine = self._hold.engine

    def close(self) -> None:
        """Store the manifest's point count, build the search structures when enough points were
        written since the last build (:data:`OPTIMIZE_ON_CLOSE`), flush and release the store (and
        the folder's lock). Other index objects of this process on the same folder share its
        engine: the folder is let go (and its manifest marked clean) when the last one is closed."""
        hold = self._hold
        if hold is not None and hold.engine is not None and not isinstance(self._engine, _Closed) and self._writes.lagging:
            try:
                last = hold.refs <= 1
                if last and self._writes.unindexed >= max(OPTIMIZE_ON_CLOSE, self._writes.indexed):
                    self._build()
                self._store_count(clean=last)
            except StoreError as exc:  # the writes are in the engine's log: the next open counts them
                logger.warning("%s", exc)
        self._engine = _Closed()
        finalizer = getattr(self, "_finalizer", None)
        try:
            if finalizer is not None:
                finalizer()  # runs Hold.release once, however often close() is called
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


@dataclass(frozen=True, slots=True)
class _Image:
    """An image point's file as checked: the path callers read, why not (``None``: safe), whether
    it does not exist, and its bytes when they were read."""

    path: str
    problem: str | None
    missing: bool = False
    data: bytes | None = None


class _NotImage(Exception):
    """A path that is not a readable image file (a device, a folder, a huge file)."""


def _readable_hash(image_path: str) -> str | None:
    """The hash of a local image file's bytes, or ``None`` (a data: URI, missing, unreadable, huge)."""
    if image_path[:5].lower() == "data:":
        return None
    try:
        if not os.path.isfile(image_path) or os.path.getsize(image_path) > _MAX_IMAGE_BYTES:
            return None
        return content_hash(Path(image_path).read_bytes())
    except OSError:
        return None


def _inside(path: Path, folder: Path | None) -> PurePosixPath | None:
    """*path* (absolute, normalised) relative to *folder*, or ``None`` when outside it."""
    if folder is None:
        return None
    try:
        return PurePosixPath(path.relative_to(folder).as_posix())
    except ValueError:
        return None


def _merged(have: Sequence[str], more: Sequence[str]) -> list[str]:
    out = list(have)
    out.extend(s for s in more if s not in out)
    return out


def _empty_sparse() -> Any:
    from .bm25 import SparseVector

    return SparseVector(np.empty(0, np.uint32), np.empty(0, np.float32))


def _same_sparse(stored: Any, expected: Any) -> bool:
    """Whether a stored sparse vector is the one its text encodes to (order of entries aside)."""
    if expected is None:
        return True
    a, b = np.argsort(stored.indices), np.argsort(expected.indices)
    return bool(
        np.array_equal(np.asarray(stored.indices)[a], np.asarray(expected.indices)[b])
        and np.allclose(np.asarray(stored.values)[a], np.asarray(expected.values)[b], rtol=1e-4, atol=1e-6)
    )


class _Resolving(dict[str, Any]):
    """Payloads that come with search hits (``raw``, filled by the engine or by
    :meth:`Found.load`), each checked and resolved (:meth:`MultiModalIndex.payloads`'s rule) when
    first read; one the rule refuses reads as absent."""

    def __init__(self, index: MultiModalIndex, raw: dict[str, dict[str, Any]]) -> None:
        super().__init__()
        self._index, self.raw = index, raw

    def __contains__(self, pid: object) -> bool:
        return self._get(pid) is not None

    def __getitem__(self, pid: str) -> dict[str, Any]:
        p = self._get(pid)
        if p is None:
            raise KeyError(pid)
        return p

    def get(self, pid: str, default: Any = None) -> Any:
        p = self._get(pid)
        return default if p is None else p

    def _get(self, pid: Any) -> dict[str, Any] | None:
        if dict.__contains__(self, pid):
            got: dict[str, Any] | None = dict.__getitem__(self, pid)
            return got
        raw = self.raw.get(pid)
        if raw is None:
            return None  # not read (yet): Found.load reads it
        p = self._index._resolve({pid: raw}).get(pid)
        dict.__setitem__(self, pid, p)
        return p


class _Closed:
    name = "closed"

    def __getattr__(self, item: str) -> Any:
        raise StoreError("the index is closed")

    def close(self) -> None:
        pass
