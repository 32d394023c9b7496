"""Qdrant Edge engine: Qdrant's own engine inside this process (``qdrant-edge-py``).

A folder holds one Edge shard (``shard/``: segments, WAL, HNSW, payload and sparse indexes) and the
index manifest (``manifest.json``, written by :mod:`.manifest`). Writes are acknowledged once the
WAL has them, so a killed process loses nothing it was told was written (the WAL's pages are in
the kernel's page cache once written; nothing is flushed per call). Edge runs no background
optimizer: :meth:`EdgeEngine.optimize` builds the HNSW graph and merges segments, and the index
calls it when enough new points wait for it (``index.OPTIMIZE_AFTER``), never on every write.

Tuned for small machines (two cores): points go to plain segments, searched exactly, until a
segment holds ``indexing_threshold_kb`` of vectors (about 8k 512-d points by default), then
``optimize()`` builds an HNSW graph (``m=16``, ``ef_construct=64``), whose search visits a small
part of the points where the exact scan reads them all. Searches ask for ``hnsw_ef`` 256, or 512
from 500k points (:func:`search_ef`), chosen by the recall sweeps of ``benchmarks/bench_engines.py``
(figures in ``benchmarks/results/engines/``).

In memory (``path=None``): the shard lives in a temporary folder removed on close.

The folder is untrusted input (:mod:`._folder`): the manifest is read and written without following
links. Opening a shard fills the holes of its memory-mapped files, so it needs that much free space
(:func:`_open_need`; on a full tmpfs the process would die by SIGBUS). What the engine writes to the
process's stderr (a Rust panic and its backtrace) is captured during every call (:class:`_EngineStderr`):
a failure is the one line of its :class:`StoreError`, the engine's text goes to the log.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shutil
import sys
import tempfile
import threading
import uuid
from collections.abc import Iterator, Sequence, Set
from pathlib import Path
from typing import Any

import numpy as np

from .._optional import require
from ..errors import StoreError
from ._filters import Condition, FilterKit, build
from ._folder import create_new, open_nofollow
from .engine import (
    DEFAULT_OVERSAMPLING,
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

logger = logging.getLogger(__name__)

__all__ = ["EdgeEngine"]

SHARD_DIR = "shard"
MANIFEST = "manifest.json"

#: HNSW settings for a 2-core machine: a 50k x 512 graph builds in well under a minute.
HNSW_M = 16
HNSW_EF_CONSTRUCT = 64
#: ``hnsw_ef`` of searches: ``None`` picks it by the index's size (:func:`search_ef`).
SEARCH_EF: int | None = None
#: (from this many points, hnsw_ef): measured in benchmarks/bench_engines.py on clustered 512-d data
SEARCH_EF_BY_SIZE = ((500_000, 512), (0, 256))
#: A dense list restricted to a kind with at most this many points is searched exactly: at that
#: size a scan costs little, and a graph search restricted to a small kind misses neighbours
#: (``tests/integration/test_kind_recall.py``, 2k images among 10k items: recall@10 0.84 at
#: hnsw_ef 256 without this, 1.0 with it).
EXACT_BELOW = 5_000
#: A kind holding more than this share of the points gets no HNSW links of its own: Qdrant builds
#: a payload value's graph only up to 4/m of a segment (m = 16). A dense list restricted to such
#: a kind, up to ACORN_BELOW of the points, and a list restricted by the caller's filters search
#: with ACORN (the neighbours' neighbours past the points the filter leaves out; Qdrant uses it
#: when the filter keeps at most ACORN_BELOW of the points). ``python -m benchmarks.bench_retrieval
#: --sizes 50000 --systems ours,ours-noacorn --quiet-only --rounds 2 --image-every 3``: a third of
#: the items images, the image list's recall@10 was 0.952 without ACORN and 0.995 with it, for a
#: fused p50 of 4.3 and 7.5 ms.
KIND_GRAPH_SHARE = 4 / HNSW_M
ACORN_BELOW = 0.6
#: The list of a kind holding more than ACORN_BELOW of the points, in an index of at least
#: WIDE_FROM points, searches WIDE_FACTOR times as wide: ``python -m benchmarks.bench_retrieval
#: --sizes 50000,200000 --systems ours --quiet-only --rounds 1 --ef-sweep 128,192,256,320,384,512``
#: (before the widening) measured the text list's
#: recall@10 (a fifth of the items images) at 0.985 / 0.983 at hnsw_ef 256 and 0.994 / 0.993 at
#: 512, the image list's at 0.994 / 0.993 at 256; at 10k items the text list had 0.994 at 256.
WIDE_FROM = 20_000
WIDE_FACTOR = 2
#: Threads of a new shard's search pool (recorded in its ``edge_config.json``; ``None``: Qdrant
#: Edge's default, one per CPU). A query is a few small lists; a pool of threads per shard
#: competes with the caller's own threads and with other processes, and on 2 busy cores it tripled
#: fused query latency (``python -m benchmarks.bench_retrieval --systems ours-defaults,ours-pool``).
SEARCH_THREADS: int | None = 1


#: Free space a shard needs before it is created / written: Qdrant Edge writes through memory-mapped
#: files, and a write fault on a full disk kills the process (SIGBUS) instead of raising an error.
MIN_FREE_CREATE = 16 << 20
MIN_FREE_WRITE = 4 << 20
#: Beside the holes an open fills (:func:`_open_need`): journals replayed, status files rewritten.
MIN_FREE_OPEN = 4 << 20
#: The folders whose memory-mapped files a segment's load fills (measured, qdrant-edge-py 0.9, on tmpfs).
_FILLED_ON_OPEN = "payload_index"

#: Qdrant Edge hands point ids back as ``uuid.UUID`` objects; a query turns a few hundred into text,
#: mostly the same ones as the query before, so their text is kept by value, up to this many (a
#: few MiB; the cache starts over when full).
ID_TEXT_CACHE = 1 << 14


def _check_space(folder: Path, need: int, what: str) -> None:
    try:
        st = os.statvfs(folder)
    except (OSError, AttributeError):  # pragma: no cover - no statvfs (Windows): the engine reports it
        return
    free = st.f_bavail * st.f_frsize
    if free < need:
        raise StoreError(
            f"{folder}: not enough free disk space to {what} ({free >> 20} MiB free, {need >> 20} MiB needed); "
            "free some space and run the command again: everything committed before is kept"
        )


def _open_need(shard: Path) -> int:
    """Free space an open of *shard* claims: Qdrant Edge's files are preallocated sparse
    (``page_0.dat`` of 2-4 MiB holding a few KiB) and memory-mapped, and loading a segment writes
    through the mappings of its payload indexes, filling their holes (about 30 MiB for a new
    2-point shard; the payload storage, vector storage and WAL stay sparse). The holes of every
    segment's ``payload_index/`` files count, plus :data:`MIN_FREE_OPEN`: a fault with no space
    left is a SIGBUS, not an error."""
    need = MIN_FREE_OPEN
    stack = [(shard, False)]
    while stack:
        folder, filled = stack.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:  # unreadable: the engine reports it
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    stack.append((Path(entry.path), filled or entry.name == _FILLED_ON_OPEN))
                elif filled and entry.is_file(follow_symlinks=False):
                    st = entry.stat(follow_symlinks=False)
                    need += max(0, st.st_size - getattr(st, "st_blocks", st.st_size // 512) * 512)
            except OSError:
                continue
    return need


class _EngineStderr:
    """What Qdrant Edge writes to file descriptor 2 during a call, held back: a Rust panic prints
    its message (and, with ``RUST_BACKTRACE=1``, some 95 lines of backtrace) before it is raised.

    A call that fails is reported by its one :class:`StoreError` line; the engine's text is logged
    (INFO: ``mm-rag --verbose`` shows it). The text of a call that succeeds goes on to the real
    stderr, as it would have. fd 2 belongs to the whole process: calls in several threads share one
    redirection, counted under a lock (fd 2 is restored when the last call ends, and always); one
    temporary file per process is reused, so a call costs a few system calls (``dup``/``dup2``)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._users = 0
        self._saved = -1
        self._fd = -1  # the temporary file (unlinked), kept open for the life of the process
        self._pid = 0
        self._read = 0  # bytes of the file already handed on

    @contextlib.contextmanager
    def capture(self) -> Iterator[None]:
        if os.name != "posix" or not self._start():  # Windows: Rust writes to the console handle, not fd 2
            yield
            return
        failed = True
        try:
            yield
            failed = False
        finally:
            self._stop(failed)

    def _start(self) -> bool:
        with self._lock:
            if self._users == 0:
                try:
                    if self._fd < 0 or self._pid != os.getpid():  # a forked child has its own
                        fd, name = tempfile.mkstemp(prefix="mm-rag-engine-")
                        os.unlink(name)
                        self._fd, self._pid, self._read = fd, os.getpid(), 0
                    _flush_stderr()  # what Python wrote before goes out first
                    self._saved = os.dup(2)
                except OSError:  # no temporary folder, or no fd 2 at all: nothing to hold back
                    return False
                try:
                    os.dup2(self._fd, 2)
                except OSError:
                    os.close(self._saved)
                    return False
            self._users += 1
            return True

    def _stop(self, failed: bool) -> None:
        text = b""
        with self._lock:
            fd = self._fd
            try:
                _flush_stderr()
                end = os.fstat(fd).st_size
                text = os.pread(fd, end - self._read, self._read) if end > self._read else b""
                self._read = end
                if text and not failed:
                    os.write(self._saved, text)
            except OSError:  # the text is lost, fd 2 is restored all the same
                pass
            finally:
                self._users -= 1
                if self._users == 0:
                    os.dup2(self._saved, 2)
                    os.close(self._saved)
                    if self._read:
                        with contextlib.suppress(OSError):
                            os.ftruncate(fd, 0)
                            os.lseek(fd, 0, os.SEEK_SET)
                        self._read = 0
        if text and failed:
            logger.info("Qdrant Edge wrote (its error is one line):\n%s", text.decode("utf-8", "replace").rstrip())


def _flush_stderr() -> None:
    with contextlib.suppress(AttributeError, ValueError, OSError):  # None (pythonw), or closed
        sys.stderr.flush()


_STDERR = _EngineStderr()
#: ``with _quiet():`` around every call into the engine (see :class:`_EngineStderr`).
_quiet = _STDERR.capture


def _engine_error(exc: BaseException) -> bool:
    """An error raised by Qdrant Edge: an ``Exception``, or a Rust panic (pyo3's ``PanicException``
    derives from ``BaseException``, so ``except Exception`` lets it through as a traceback)."""
    return isinstance(exc, Exception) or type(exc).__name__ == "PanicException"


def search_ef(points: int) -> int:
    """``hnsw_ef`` for an index of *points*: a larger graph needs a wider search to keep its
    recall@10 at the target of ``benchmarks/bench_engines.py`` (0.98), so the width steps up with
    the size (the sweep's figures are in ``benchmarks/results/engines/``)."""
    if SEARCH_EF is not None:
        return SEARCH_EF
    return next(ef for start, ef in SEARCH_EF_BY_SIZE if points >= start)


def edge_kit(qe: Any) -> FilterKit:
    """Filters as Qdrant Edge spells them."""
    return FilterKit(
        Filter=qe.Filter,
        FieldCondition=qe.FieldCondition,
        match_value=qe.MatchValue,
        range=qe.RangeFloat,
        is_empty=qe.IsEmptyCondition,
        has_no_id=lambda: qe.HasIdCondition(set()),
    )


class EdgeEngine:
    """One Edge shard in *folder* (``None``: a temporary folder, removed on :meth:`close`)."""

    name = "qdrant-edge"

    def __init__(
        self,
        folder: str | os.PathLike[str] | None,
        *,
        quantization: str | None = None,
        oversampling: float = 1.0,
        indexing_threshold_kb: int = 16_000,
        search_threads: int | None = None,
    ) -> None:
        self.qe = require("qdrant_edge", extra="index", package="qdrant-edge-py")
        self.kit = edge_kit(self.qe)
        self._tmp = folder is None
        self.folder = Path(tempfile.mkdtemp(prefix="mm-rag-edge-")) if folder is None else Path(folder)
        self.quantization = quantization
        self.oversampling = oversampling
        self.indexing_threshold_kb = indexing_threshold_kb
        self.search_threads = SEARCH_THREADS if search_threads is None else search_threads
        self.shard: Any = None
        self.has_dense = False
        self.has_text = False
        self.has_windows = False
        self._params: Any = None
        self._list_params: dict[str | None, Any] = {}
        self._filtered_params: dict[str | None, Any] = {}
        self._id_text: dict[int, str] = {}
        if (self.folder / MANIFEST).is_file():
            if not (self.folder / SHARD_DIR).is_dir():
                raise StoreError(
                    f"{self.folder / SHARD_DIR}: damaged index: the shard folder is missing beside manifest.json; "
                    "restore the folder from a backup, or re-ingest into a new index folder"
                )
            self._load()

    # ------------------------------------------------------------------ manifest and lifecycle
    @property
    def where(self) -> str:
        return str(self.folder)

    @property
    def manifest_path(self) -> Path:
        return self.folder / MANIFEST

    def read_manifest(self) -> Any:
        try:
            # never a file outside the folder
            with open(open_nofollow(self.manifest_path, os.O_RDONLY), "rb") as fh:
                text = fh.read().decode("utf-8", "replace")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"{self.manifest_path}: cannot read the index manifest ({exc})") from exc
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise StoreError(
                f"{self.manifest_path}: the index manifest is damaged ({exc}); restore it from a backup or re-ingest into a new folder"
            ) from exc
        return data  # its shape is checked by manifest.check_manifest

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        tmp = self.manifest_path.with_suffix(".json.tmp")
        try:
            with os.fdopen(create_new(tmp), "w", encoding="utf-8") as fh:  # not through a planted link
                json.dump(manifest, fh, indent=2, sort_keys=True)
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, self.manifest_path)
        except OSError as exc:  # a full disk: the old manifest stays in place
            tmp.unlink(missing_ok=True)
            raise StoreError(f"{self.manifest_path}: cannot write the index manifest ({exc.strerror or exc})") from exc

    def _config(self, dim: int | None, text_dim: int | None = None, windows: bool = False) -> Any:
        qe = self.qe
        vectors = {}
        if dim:
            vectors[DENSE] = qe.EdgeVectorParams(size=int(dim), distance=qe.Distance.Cosine)
        if text_dim:
            vectors[TEXT] = qe.EdgeVectorParams(size=int(text_dim), distance=qe.Distance.Cosine)
        if dim and windows:  # CLIP windows of text chunks: one multivector, MaxSim over its rows
            maxsim = qe.MultiVectorConfig(comparator=qe.MultiVectorComparator.MaxSim)
            vectors[WINDOWS] = qe.EdgeVectorParams(size=int(dim), distance=qe.Distance.Cosine, multivector_config=maxsim)
        return qe.EdgeConfig(
            vectors=vectors or None,
            sparse_vectors={SPARSE: qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
            hnsw_config=qe.HnswIndexConfig(m=HNSW_M, ef_construct=HNSW_EF_CONSTRUCT, full_scan_threshold=2_000),
            quantization_config=self._quantization_config(),
            optimizers=qe.EdgeOptimizersConfig(indexing_threshold=self.indexing_threshold_kb, default_segment_number=2),
            max_search_threads=self.search_threads,
        )

    def _field_indexes(self) -> list[tuple[str, Any]]:
        """The payload indexes of a new shard. Only ``kind`` gets HNSW links of its own (a graph per
        kind, so that a dense list restricted to images finds them): per-value graphs for pages,
        sources and file hashes would serve filters on them, at a cost to every build: without
        them a 50k build (points written and graph) took about 15 % less (``python -m
        benchmarks.bench_retrieval --sizes 50000 --systems ours,ours-defaults --quiet-only
        --rounds 2``, before and after, run alternately). Such a filter is searched by the payload
        index when it selects few points, else on the main graph with ACORN (:meth:`_query`)."""
        qe = self.qe
        out: list[tuple[str, Any]] = [
            (key, qe.KeywordIndexParams(enable_hnsw=key == "kind")) for key in KEYWORD_FIELDS
        ]
        out += [(key, qe.IntegerIndexParams(lookup=True, range=True, enable_hnsw=False)) for key in INTEGER_FIELDS]
        return out

    def _quantization_config(self) -> Any:
        qe = self.qe
        if self.quantization == "int8":
            return qe.ScalarQuantizationConfig(type=qe.ScalarType.Int8, quantile=0.99, always_ram=True)
        if self.quantization == "binary":
            return qe.BinaryQuantizationConfig(always_ram=True)
        return None

    def create(self, manifest: dict[str, Any]) -> None:
        dim = manifest.get("dim")
        text_dim = (manifest.get("text_model") or {}).get("dim")
        windows = manifest.get("clip_windows") is not None
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            _check_space(self.folder, MIN_FREE_CREATE, "create the index")
            with _quiet():
                self.shard = self.qe.EdgeShard.create(str(self.folder / SHARD_DIR), self._config(dim, text_dim, windows))
                for key, schema in self._field_indexes():
                    self.shard.update(self.qe.UpdateOperation.create_field_index(key, schema))
                self.shard.flush()
        except StoreError:
            raise
        except Exception as exc:
            raise StoreError(f"{self.folder}: cannot create the Qdrant Edge shard ({exc})") from exc
        self.has_dense = bool(dim)
        self.has_text = bool(text_dim)
        self.has_windows = bool(dim) and windows
        self._set_params()
        self.write_manifest(manifest)  # last: a folder with a manifest has a complete shard

    def _load(self) -> None:
        path = self.folder / SHARD_DIR
        _check_space(self.folder, _open_need(path), "open the index")
        try:
            with _quiet():
                self.shard = self.qe.EdgeShard.load(str(path))
        except BaseException as exc:
            if not _engine_error(exc):
                raise
            msg = str(exc)
            if "WouldBlock" in msg or "lock" in msg.lower():
                raise StoreError(f"{self.folder}: the index is open in another process") from exc
            raise StoreError(
                f"{path}: the Qdrant Edge shard cannot be opened ({msg[:300]}); "
                "run `mm-rag verify`, restore a backup, or re-ingest into a new folder"
            ) from exc
        try:
            config = json.loads((path / "edge_config.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            config = {}
        self.has_dense = DENSE in (config.get("vectors") or {})
        self.has_text = TEXT in (config.get("vectors") or {})
        self.has_windows = WINDOWS in (config.get("vectors") or {})
        stored = config.get("quantization_config") or {}
        if self.quantization is None and ("scalar" in stored or "binary" in stored):
            # a quantized shard keeps its quantization: search it with that kind's default oversampling
            self.quantization = "int8" if "scalar" in stored else "binary"
            self.oversampling = DEFAULT_OVERSAMPLING[self.quantization]
        self._set_params()

    def _set_params(self) -> None:
        qe = self.qe
        quant = None
        if self.quantization is not None:
            quant = qe.QuantizationSearchParams(rescore=True, oversampling=self.oversampling)
        counts = {None: 0, "text": 0, "image": 0}
        if self.shard is not None:
            with _quiet():
                for kind in counts:
                    flt = None if kind is None else qe.Filter(must=[qe.FieldCondition(key="kind", match=qe.MatchValue(kind))])
                    counts[kind] = int(self.shard.count(qe.CountRequest(exact=False, filter=flt)))
        ef = search_ef(counts[None])
        total = max(counts[None], 1)

        def at(width: int, acorn: bool = False) -> Any:
            return qe.SearchParams(
                hnsw_ef=width, quantization=quant,
                acorn=qe.AcornSearchParams(enable=True, max_selectivity=ACORN_BELOW) if acorn else None,
            )

        self._params = at(ef)
        exact = qe.SearchParams(exact=True, quantization=quant)

        def width(kind: str | None, n: int) -> int:
            # the kind of most points, in a large index: its list passes over the other kind's
            # points on a graph with no links of its own, so it searches wider
            big = kind is not None and n / total > ACORN_BELOW and counts[None] >= WIDE_FROM
            return WIDE_FACTOR * ef if big else ef

        def params(kind: str | None, n: int) -> Any:
            if kind is None:
                return self._params
            if n <= EXACT_BELOW:
                return exact
            # a kind too large for a graph of its own, and too small to be found without one
            return at(width(kind, n), acorn=KIND_GRAPH_SHARE < n / total <= ACORN_BELOW)

        # each dense list's parameters, by the kind it is restricted to (None: every kind)
        self._list_params = {kind: params(kind, n) for kind, n in counts.items()}
        # a list with the caller's filters (pages, sources ...: no graphs of their own) uses ACORN
        self._filtered_params = {
            kind: exact if self._list_params[kind] is exact else at(width(kind, n), acorn=True) for kind, n in counts.items()
        }

    @staticmethod
    def stray_shard_points(folder: Path) -> int:
        """Points in a shard left without a manifest (a create that died first holds none)."""
        qe = require("qdrant_edge", extra="index", package="qdrant-edge-py")
        _check_space(folder, _open_need(folder / SHARD_DIR), "open the index")
        try:
            with _quiet():
                shard = qe.EdgeShard.load(str(folder / SHARD_DIR))
        except BaseException as exc:
            if not _engine_error(exc):
                raise
            return 0  # not even a loadable shard: nothing to keep
        with _quiet():
            try:
                return int(shard.count(qe.CountRequest(exact=True)))
            finally:
                shard.close()

    def optimize(self) -> None:
        try:
            with _quiet():
                self.shard.optimize()
                self.shard.flush()
        except Exception as exc:
            raise StoreError(f"{self.folder}: optimizing the Qdrant Edge shard failed ({exc})") from exc
        self._set_params()  # the search depth follows the index's size

    def flush(self) -> None:
        """Write what the WAL holds into the segments (shortens the WAL an open replays); not
        needed for durability: an update is in the WAL when it returns."""
        try:
            with _quiet():
                self.shard.flush()
        except Exception as exc:
            raise StoreError(f"{self.folder}: flushing the Qdrant Edge shard failed ({exc})") from exc

    def close(self) -> None:
        shard, self.shard = self.shard, None
        if shard is not None:
            with _quiet():
                try:
                    shard.flush()
                finally:
                    shard.close()
        if self._tmp:
            shutil.rmtree(self.folder, ignore_errors=True)

    # ------------------------------------------------------------------ writes
    def upsert(self, points: Sequence[Point]) -> None:
        if not points:
            return
        _check_space(self.folder, MIN_FREE_WRITE, "write to the index")
        qe = self.qe
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
                vec[SPARSE] = qe.SparseVector(p.sparse.indices.tolist(), p.sparse.values.tolist())
            structs.append(qe.Point(p.id, vec, p.payload))
        try:
            with _quiet():
                self.shard.update(qe.UpdateOperation.upsert_points(structs))
        except Exception as exc:
            raise StoreError(f"{self.folder}: writing {len(structs)} points failed ({exc})") from exc

    def set_sources(self, updates: dict[str, list[str]], image_follows: Set[str] = frozenset()) -> None:
        with _quiet():
            for pid, sources in updates.items():
                self.shard.update(self.qe.UpdateOperation.set_payload([pid], sources_payload(sources, pid in image_follows)))

    def delete(self, ids: Sequence[str]) -> None:
        if ids:
            with _quiet():
                self.shard.update(self.qe.UpdateOperation.delete_points(list(ids)))

    # ------------------------------------------------------------------ reads
    @contextlib.contextmanager
    def _reading(self, what: str) -> Iterator[None]:
        """Turn an engine failure while reading (damaged segment data) into one :class:`StoreError`."""
        try:
            with _quiet():
                yield
        except BaseException as exc:
            if isinstance(exc, StoreError) or not _engine_error(exc):
                raise
            raise StoreError(
                f"{self.folder / SHARD_DIR}: {what} failed, the Qdrant Edge shard is damaged ({str(exc)[:300]}); "
                "run `mm-rag verify`, restore a backup, or re-ingest into a new folder"
            ) from exc

    def existing(self, ids: Sequence[str]) -> dict[str, list[str]]:
        if not ids:
            return {}
        with self._reading("reading points"):
            recs = self.shard.retrieve(list(ids), self.qe.PayloadSelector.Include(["sources"]), False)
        return {str(r.id): list((r.payload or {}).get("sources") or []) for r in recs}

    def with_source(self, source: str) -> dict[str, list[str]]:
        qe = self.qe
        flt = qe.Filter(must=[qe.FieldCondition(key="sources", match=qe.MatchValue(source))])
        out: dict[str, list[str]] = {}
        offset = None
        while True:
            with self._reading("reading points"):
                recs, offset = self.shard.scroll(
                    qe.ScrollRequest(offset=offset, limit=1024, filter=flt, with_payload=qe.PayloadSelector.Include(["sources"]), with_vector=False)
                )
            out.update({str(r.id): list((r.payload or {}).get("sources") or []) for r in recs})
            if offset is None:
                return out

    def sources(self) -> list[str]:
        qe = self.qe
        with self._reading("listing sources"):
            res = self.shard.facet(qe.FacetRequest("sources", limit=1 << 30, exact=True))
        return sorted(str(h.value) for h in res.hits)

    def ids_where(self, conditions: tuple[Condition, ...]) -> list[str]:
        qe = self.qe
        flt = build(conditions, self.kit)
        out: list[str] = []
        offset = None
        while True:
            with self._reading("reading points"):
                recs, offset = self.shard.scroll(qe.ScrollRequest(offset=offset, limit=1024, filter=flt, with_payload=False, with_vector=False))
            out.extend(str(r.id) for r in recs)
            if offset is None:
                return out

    def count(self, kind: str | None = None) -> int:
        qe = self.qe
        flt = qe.Filter(must=[qe.FieldCondition(key="kind", match=qe.MatchValue(kind))]) if kind else None
        with self._reading("counting points"):
            return int(self.shard.count(qe.CountRequest(exact=True, filter=flt)))

    def _filter(self, conditions: tuple[Condition, ...], kind: str | None) -> Any:
        qe = self.qe
        kind_match = [qe.FieldCondition(key="kind", match=qe.MatchValue(kind))] if kind else []
        return build(conditions, self.kit, extra=kind_match)

    def _query(self, q: ListQuery, filtered: bool = False) -> tuple[Any, Any]:
        """The engine's query for a list, and its search parameters (*filtered*: the caller's
        conditions restrict it)."""
        qe = self.qe
        if q.sparse is not None:
            vec: Any = qe.SparseVector(q.sparse.indices.tolist(), q.sparse.values.tolist())
            return qe.Query.Nearest(vec, using=SPARSE), None
        dense = np.asarray(q.dense, dtype=np.float32).tolist()
        if q.using == WINDOWS:  # one query vector against each point's windows: a one-row multivector
            dense = [dense]
        return qe.Query.Nearest(dense, using=q.using), (self._filtered_params if filtered else self._list_params).get(q.kind, self._params)

    def search(
        self, queries: Sequence[ListQuery], conditions: tuple[Condition, ...], *, with_payload: bool = False, with_vector: bool = False
    ) -> Found:
        """The lists in one ``query_batch`` call, ids and scores only; payloads and vectors are
        read on demand (:meth:`Found.load`) for the hits a query gets to."""
        qe = self.qe
        reqs = []
        for q in queries:
            query, params = self._query(q, bool(conditions))
            reqs.append(
                qe.QueryRequest(
                    limit=q.limit + tie_margin(q.limit),  # equal scores at the cut are resolved by id
                    query=query,
                    filter=self._filter(conditions, q.kind),
                    score_threshold=q.min_score,
                    params=params,
                    with_payload=False,
                    with_vector=False,
                )
            )
        if not reqs:
            return Found([])
        try:
            with _quiet():
                results = self.shard.query_batch(qe.QueryBatchRequest(reqs))
        except Exception as exc:
            raise StoreError(f"{self.folder}: search failed ({exc})") from exc
        lists = [ranked(self._scored(res), q.limit) for q, res in zip(queries, results, strict=True)]
        return Found(lists, fetch=self._fetch if with_payload or with_vector else None)

    def _fetch(self, payload_ids: Sequence[str], vector_ids: Sequence[str]) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray]]:
        """The payloads and dense vectors of a query's head in one read of the engine (it usually
        wants both of the same hits)."""
        vector_ids = vector_ids if self.has_dense else ()
        ids = list(dict.fromkeys([*payload_ids, *vector_ids]))
        if not ids:
            return {}, {}
        with self._reading("reading payloads"):
            recs = self.shard.retrieve(ids, bool(payload_ids), [DENSE] if vector_ids else False)
        want = set(payload_ids)
        payloads = {pid: dict(r.payload or {}) for r in recs if (pid := self._id(r.id)) in want}
        return payloads, dense_vectors(recs, self._id) if vector_ids else {}

    def _id(self, pid: Any) -> str:
        """A point id as text (the engine's ids are UUIDs; their text is cached by value)."""
        if not isinstance(pid, uuid.UUID):
            return str(pid)
        key = pid.int
        text = self._id_text.get(key)
        if text is None:
            if len(self._id_text) >= ID_TEXT_CACHE:
                self._id_text.clear()
            text = self._id_text[key] = str(pid)
        return text

    def _scored(self, points: Any) -> list[tuple[str, float]]:
        # _id inlined: this runs for every hit of every list of every query
        get, ident, out = self._id_text.get, self._id, []
        for p in points:
            pid = p.id
            try:
                text = get(pid.int) or ident(pid)
            except AttributeError:  # not a UUID
                text = ident(pid)
            out.append((text, p.score))
        return out

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
        """One call: every list as a prefetch, fused by Qdrant's weighted RRF."""
        from .fusion import qdrant_rrf_k

        qe = self.qe
        prefetch = []
        for q in queries:
            query, params = self._query(q, bool(conditions))
            prefetch.append(
                qe.Prefetch(limit=q.limit, query=query, filter=self._filter(conditions, q.kind), score_threshold=q.min_score, params=params)
            )
        try:
            with _quiet():
                res = self.shard.query(
                    qe.QueryRequest(
                        limit=limit,
                        prefetches=prefetch,
                        query=qe.Fusion.Rrf(k=qdrant_rrf_k(rrf_k), weights=[float(w) for w in weights]),
                        with_payload=False,
                        with_vector=False,
                    )
                )
        except Exception as exc:
            raise StoreError(f"{self.folder}: fused search failed ({exc})") from exc
        return Found([self._scored(res)], fetch=self._fetch if with_payload or with_vector else None)

    def payloads(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        with self._reading("reading payloads"):
            recs = self.shard.retrieve(list(ids), True, False)
        return {self._id(r.id): dict(r.payload or {}) for r in recs}

    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]:
        if not ids or not self.has_dense:
            return {}
        with self._reading("reading vectors"):
            return dense_vectors(self.shard.retrieve(list(ids), False, [DENSE]), self._id)

    def scan(self, batch: int = 256) -> Iterator[list[Point]]:
        """Every point with its vectors and payload, in id order (for copies)."""
        qe = self.qe
        offset = None
        while True:
            with self._reading("reading points"):
                recs, offset = self.shard.scroll(qe.ScrollRequest(offset=offset, limit=batch, with_payload=True, with_vector=True))
            yield [record_to_point(str(r.id), r.vector, r.payload) for r in recs]
            if offset is None:
                return

    def memory_bytes(self) -> dict[str, int]:
        return {}
