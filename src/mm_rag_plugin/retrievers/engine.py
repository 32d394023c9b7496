"""The storage engine protocol: everything :class:`~.index.MultiModalIndex` asks of a store.

Two implementations, chosen by the index's arguments only (the split qdrant-client makes between
its local and remote clients):

* :class:`~._edge.EdgeEngine` - Qdrant Edge (``qdrant-edge-py``), Qdrant's own engine in this
  process: a folder on disk, or a temporary folder for in-memory use;
* :class:`~._remote.RemoteEngine` - a Qdrant server or cluster through ``qdrant-client`` (``url=``
  or ``client=``).

Both store one collection: the dense vector ``clip`` (cosine; absent in a keyword-only index), the
sparse vector ``bm25`` (IDF modifier), and the payload of each point; both keep the index
manifest with the data (a file beside the shard, or the collection's metadata), search the same
lists and fuse them with the same weighted RRF.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Callable, Iterable, Iterator, Sequence, Set
from dataclasses import dataclass
from itertools import chain, pairwise
from typing import Any, Protocol

import numpy as np

from ..errors import ConfigurationError
from ..ids import stored_text, unstored_text
from ._filters import Condition, FilterKit
from .bm25 import SparseVector

__all__ = [
    "DENSE", "QUANTIZATIONS", "SPARSE", "TEXT", "WINDOWS", "Engine", "Found", "ListQuery", "Point", "TextSafeEngine", "check_quantization",
    "dense_vectors", "ranked", "record_to_point", "sources_payload", "tie_margin",
]

#: Vector names in the store: one shared CLIP space, and BM25.
DENSE = "clip"
SPARSE = "bm25"
#: The optional text-model vector (an index built with ``text_embedder=``): absent from a point
#: without text (an image with no caption, alt or OCR text).
TEXT = "text"
#: The optional CLIP windows of a text chunk (an index built with ``clip_windows=``): a multivector
#: in CLIP's space scored by MaxSim, its first row the chunk's own CLIP vector; absent from images.
WINDOWS = "windows"

#: Accepted ``quantization`` values, and the default oversampling of each (both engines).
QUANTIZATIONS = (None, "int8", "binary")
DEFAULT_OVERSAMPLING = {"int8": 3.0, "binary": 10.0}

#: Payload fields with a payload index (filters on them use it).
KEYWORD_FIELDS = ("kind", "sources", "file_sha256")
INTEGER_FIELDS = ("page",)


@dataclass(frozen=True, slots=True)
class Point:
    id: str  # UUID, derived from the content (not from the file's path)
    dense: np.ndarray | None  # unit float32; None in a keyword-only index
    sparse: SparseVector  # may be empty
    payload: dict[str, Any]  # holds "kind" and "sources" (every path the content was found at)
    text: np.ndarray | None = None  # unit float32 from the index's text model; None: no text model, or no text
    windows: np.ndarray | None = None  # (n, dim) unit float32 CLIP windows of a text chunk; None: no windows


@dataclass(frozen=True, slots=True)
class ListQuery:
    """One ranked list: a dense search restricted to a kind, or a BM25 search."""

    name: str
    limit: int
    dense: np.ndarray | None = None
    sparse: SparseVector | None = None
    kind: str | None = None
    min_score: float | None = None
    using: str = DENSE  # the dense vector searched: CLIP's, or TEXT


#: ``fetch(payload_ids, vector_ids) -> (payloads, vectors)``: reads hits' payloads and vectors on demand.
Fetch = Callable[[Sequence[str], Sequence[str]], tuple[dict[str, dict[str, Any]], dict[str, np.ndarray]]]


@dataclass(slots=True)
class Found:
    """What one search call returns: the ranked lists (``(id, score)`` best first; one list for a
    fused search), and the hits' stored payloads and dense vectors when asked for.

    A remote engine returns them with the hits, in the same request. An in-process engine
    (Qdrant Edge) gives a *fetch* instead: copying a hit's payload or vector out of the engine
    costs per hit, not per call, and a query reads only the head of what its lists found
    (``benchmarks/bench_retrieval.py`` at 10k items, fused p50 with every hit's payload and vector
    in the search: 14.4 ms; reading those of the head only: 4.7 ms). :meth:`load` reads what is
    missing."""

    lists: list[list[tuple[str, float]]]
    payloads: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    vectors: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)
    fetch: Fetch | None = None

    def load(self, ids: Sequence[str], *, payloads: bool = True, vectors: bool = False) -> None:
        """Make sure the payloads (and, with *vectors*, the dense vectors) of these hits are in
        :attr:`payloads` / :attr:`vectors`, reading the missing ones in one fetch."""
        if self.fetch is None:
            return
        raw = getattr(self.payloads, "raw", self.payloads)  # the index's checking view keeps the raw dict
        want_p = [i for i in ids if i not in raw] if payloads else []
        want_v = [i for i in ids if i not in self.vectors] if vectors else []
        if want_p or want_v:
            got_p, got_v = self.fetch(want_p, want_v)
            raw.update(got_p)
            self.vectors.update(got_v)


class Engine(Protocol):
    """A store for the index's points. Ids are UUID strings; scores are Qdrant's.

    Every engine declares what it is (``name``, ``where``), whether its store holds dense vectors
    (``has_dense``, known once the manifest is read or created), the quantization it was created
    with, and how it spells filters (``kit``); a failure of the store is raised as
    :class:`~..errors.StoreError`."""

    name: str
    where: str
    has_dense: bool
    has_text: bool
    has_windows: bool
    quantization: str | None
    oversampling: float | None
    kit: FilterKit

    # manifest and lifecycle
    def read_manifest(self) -> dict[str, Any] | None: ...
    def create(self, manifest: dict[str, Any]) -> None: ...
    def write_manifest(self, manifest: dict[str, Any]) -> None: ...
    def optimize(self) -> None: ...
    def flush(self) -> None: ...
    def close(self) -> None: ...

    # writes
    def upsert(self, points: Sequence[Point]) -> None: ...
    def set_sources(self, updates: dict[str, list[str]], image_follows: Set[str] = frozenset()) -> None: ...
    def delete(self, ids: Sequence[str]) -> None: ...

    # reads
    def existing(self, ids: Sequence[str]) -> dict[str, list[str]]: ...
    def with_source(self, source: str) -> dict[str, list[str]]: ...
    def ids_where(self, conditions: tuple[Condition, ...]) -> list[str]: ...
    def sources(self) -> list[str]: ...
    def count(self, kind: str | None = None) -> int: ...
    def search(
        self, queries: Sequence[ListQuery], conditions: tuple[Condition, ...], *, with_payload: bool = False, with_vector: bool = False
    ) -> Found: ...
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
    ) -> Found: ...
    def payloads(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]: ...
    def vectors(self, ids: Sequence[str]) -> dict[str, np.ndarray]: ...
    def scan(self, batch: int = 256) -> Iterator[list[Point]]: ...
    def memory_bytes(self) -> dict[str, int]: ...


#: Payload fields that hold file names (the only strings a lone surrogate reaches: readers decode
#: document text, never with ``surrogateescape``).
_NAME_FIELDS = ("source", "sources", "image_path")


def _store_names(payload: dict[str, Any]) -> dict[str, Any]:
    if not any(k in payload for k in _NAME_FIELDS):
        return payload
    return {k: stored_text(v) if k in _NAME_FIELDS else v for k, v in payload.items()}


def _unstore_names(payload: dict[str, Any]) -> dict[str, Any]:
    for k in _NAME_FIELDS:
        v = payload.get(k)
        if v is not None:
            payload[k] = unstored_text(v)
    return payload


class TextSafeEngine:
    """*engine* with file names stored as Qdrant accepts them: a file name that is not UTF-8
    reaches Python as a str with lone surrogates, which no UTF-8 store takes;
    :func:`~..ids.stored_text` writes it in a reversible form and every read gives the str back as
    it was. Only the name fields (``source``, ``sources``, ``image_path``, and filters on them) are
    translated, so a query pays a few dictionary lookups per hit; names without surrogates are
    stored unchanged."""

    def __init__(self, engine: Any) -> None:
        self._inner = engine

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def upsert(self, points: Sequence[Point]) -> None:
        self._inner.upsert([dataclasses.replace(p, payload=_store_names(p.payload)) for p in points])

    def set_sources(self, updates: dict[str, list[str]], image_follows: Set[str] = frozenset()) -> None:
        self._inner.set_sources({pid: stored_text(s) for pid, s in updates.items()}, image_follows)

    def existing(self, ids: Sequence[str]) -> dict[str, list[str]]:
        return unstored_text(self._inner.existing(ids))

    def with_source(self, source: str) -> dict[str, list[str]]:
        return unstored_text(self._inner.with_source(stored_text(source)))

    def ids_where(self, conditions: tuple[Condition, ...]) -> list[str]:
        return self._inner.ids_where(_stored_conditions(conditions))

    def sources(self) -> list[str]:
        return unstored_text(self._inner.sources())

    def search(self, queries: Sequence[ListQuery], conditions: tuple[Condition, ...], **kwargs: Any) -> Found:
        return _unstore_found(self._inner.search(queries, _stored_conditions(conditions), **kwargs))

    def fused(self, queries: Sequence[ListQuery], conditions: tuple[Condition, ...], **kwargs: Any) -> Found:
        return _unstore_found(self._inner.fused(queries, _stored_conditions(conditions), **kwargs))

    def payloads(self, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        return {pid: _unstore_names(p) for pid, p in self._inner.payloads(ids).items()}

    def scan(self, batch: int = 256) -> Iterator[list[Point]]:
        for points in self._inner.scan(batch):
            yield [dataclasses.replace(p, payload=_unstore_names(p.payload)) for p in points]


def _unstore_found(found: Found) -> Found:
    for p in found.payloads.values():
        _unstore_names(p)
    inner = found.fetch
    if inner is not None:

        def fetch(payload_ids: Sequence[str], vector_ids: Sequence[str]) -> tuple[dict[str, dict[str, Any]], dict[str, np.ndarray]]:
            payloads, vectors = inner(payload_ids, vector_ids)
            return {pid: _unstore_names(p) for pid, p in payloads.items()}, vectors

        found.fetch = fetch
    return found


def _stored_conditions(conditions: tuple[Condition, ...]) -> tuple[Condition, ...]:
    if not conditions:
        return conditions
    out = []
    for c in conditions:
        if c.op in ("and", "or", "not"):
            out.append(dataclasses.replace(c, value=_stored_conditions(c.value)))
        elif c.key in _NAME_FIELDS:
            out.append(dataclasses.replace(c, value=stored_text(c.value)))
        else:
            out.append(c)
    return tuple(out)


def tie_margin(limit: int) -> int:
    """How many more hits a list asks the store for, so that equal scores at the cut are resolved
    by id (:func:`ranked`) the same way by every engine (a run of more equal scores than this
    across the cut is cut in the store's order). Every extra hit costs a query its conversion
    into Python, so the margin is small: 8 up to a list of 64, then an eighth."""
    return max(8, limit // 8)


def ranked(pairs: Iterable[tuple[str, float]], limit: int) -> list[tuple[str, float]]:
    """``(id, score)`` pairs best first, equal scores by id, cut to *limit*."""
    from .fusion import _SCORE_DECIMALS

    items = list(pairs)
    scores = [s for _, s in items]
    # Stores answer best first, so only ties need sorting. Neighbours more than 1e-11 apart stay
    # strictly ordered after rounding to 12 decimals (rounding moves each by at most 5e-13): the
    # cheap test settles almost every list, the exact one runs only when two scores are that close.
    if all(a - b > 1e-11 for a, b in pairwise(scores)):
        return items[:limit]
    keys = [-round(s, _SCORE_DECIMALS) for s in scores]  # rrf_sort_key's order, one key per item
    if all(a < b for a, b in pairwise(keys)):
        return items[:limit]
    order = sorted(zip(keys, [i for i, _ in items], range(len(items)), strict=True))
    return [items[j] for _, _, j in order[:limit]]


def record_to_point(pid: str, vector: Any, payload: Any) -> Point:
    """A :class:`Point` from a stored record (Qdrant Edge's or qdrant-client's: a dict of named
    vectors, the sparse one with ``indices`` and ``values``)."""
    vec = vector if isinstance(vector, dict) else {}
    dense, sp, text, win = vec.get(DENSE), vec.get(SPARSE), vec.get(TEXT), vec.get(WINDOWS)
    if sp is not None:
        sparse = SparseVector(np.asarray(sp.indices, np.uint32), np.asarray(sp.values, np.float32))
    else:
        sparse = SparseVector(np.empty(0, np.uint32), np.empty(0, np.float32))
    return Point(
        pid, None if dense is None else np.asarray(dense, np.float32), sparse, dict(payload or {}),
        None if text is None else np.asarray(text, np.float32),
        None if win is None else np.asarray(win, np.float32).reshape(len(win), -1),
    )


def dense_vectors(records: Iterable[Any], ident: Callable[[Any], str] = str) -> dict[str, np.ndarray]:
    """The dense vector of each stored record that has one, by id (``ident``: the id as text)."""
    ids, rows = [], []
    for r in records:
        v = r.vector  # read once: an engine's record may build it on every read
        v = v.get(DENSE) if isinstance(v, dict) else v
        if v is not None:
            ids.append(ident(r.id))
            rows.append(v)
    if not rows:
        return {}
    width = len(rows[0])
    if all(len(row) == width for row in rows):  # one conversion for all, each vector a row of it
        matrix = np.fromiter(chain.from_iterable(rows), np.float32, len(rows) * width).reshape(len(rows), width)
    else:  # ragged: numpy's conversion says what is wrong
        matrix = np.asarray(rows, dtype=np.float32)
    return dict(zip(ids, matrix, strict=True))


def sources_payload(sources: Sequence[str], image_follows: bool = False) -> dict[str, Any]:
    """The payload update for a point's new list of paths: ``source`` (what a hit cites) is kept
    one of them, the first, so a hit never names a path that no longer holds the content; with
    *image_follows* (an image file whose ``image_path`` was a removed source) so is ``image_path``."""
    out: dict[str, Any] = {"sources": list(sources)}
    if sources:
        out["source"] = sources[0]
        if image_follows:
            out["image_path"] = sources[0]
    return out


def check_quantization(quantization: str | None, oversampling: float | None) -> tuple[str | None, float]:
    """Validate ``quantization`` / ``oversampling``; returns them with the default oversampling filled in."""
    if quantization not in QUANTIZATIONS:
        raise ConfigurationError(f"quantization must be None, 'int8' or 'binary', got {quantization!r}")
    if oversampling is None:
        return quantization, DEFAULT_OVERSAMPLING.get(quantization or "", 1.0)
    if quantization is None:
        raise ConfigurationError("oversampling applies to a quantized index: pass quantization='int8' or 'binary'")
    if isinstance(oversampling, bool) or not isinstance(oversampling, numbers.Real) or not 1 <= oversampling < math.inf:
        raise ConfigurationError(f"oversampling must be a number >= 1, got {oversampling!r}")
    return quantization, float(oversampling)
