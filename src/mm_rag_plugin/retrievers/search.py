"""The one searcher: every entry point (``FusedRetriever``, both vector stores, the tools) plans
its query and post-processes the hits here, so the same index, query and options give the same
ranking through every door.

Modes (:class:`SearchOptions`):

* ``hybrid``: dense text, dense image and BM25 lists (and ``text_model``, the query text by the
  index's text model against every chunk's ``text`` vector, in an index built with one), each ``prefetch_k`` deep, fused by weighted
  RRF (client side, or ``fusion="server"``: Qdrant's Query API); the score is the fused score;
* ``dense``: one list by cosine similarity to the query vector over every kind; the score is the cosine;
* ``keyword``: one BM25 list; the score is BM25's;

The BM25 list's query also holds the OCR n-grams of the query's words (:mod:`.ocr_terms`),
weighing ``weights["ocr"]``: they match the OCR'd text of an index whose BM25 settings have
``ocr`` (new indexes), and nothing elsewhere. Unless ``weights`` names ``"ocr"``, they weigh
:data:`OCR_WEIGHT` when the BM25 list is searched alone (keyword mode, or a hybrid search without a
query vector or with the dense lists off) and 0 beside dense lists: RRF counts a hit by its rank,
so an image sharing only a few n-grams with the query (``circle`` and ``timetable`` end alike)
would gain as much from being the only BM25 hit as a real match, and dense search already
matches loosely.
* ``mmr``: ``prefetch_k`` dense candidates re-ordered by maximal marginal relevance
  (``lambda_mult``); the score is the cosine.

Then, in every mode, in this order: ``score_threshold``, exact duplicates out and near duplicates
out (``dedupe``, ``near_duplicate_threshold``), MMR (``mmr``), per-kind ``quotas``, the top ``k``.
A query is one engine search; payloads (and vectors, where near-duplicate removal or MMR needs
them) are read for the hits that post-processing reaches (:meth:`~.engine.Found.load`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any, Literal

import numpy as np

from ..errors import ConfigurationError, InvalidInputError
from ._filters import Condition, matches_nothing
from .bm25 import merge
from .engine import DENSE, TEXT, WINDOWS, Found, ListQuery
from .fusion import DEFAULT_RRF_K, Fusion, apply_quotas, dedupe_near, distinct, rrf_sort_key

__all__ = ["LIST_NAMES", "MODES", "Match", "SearchOptions", "mmr_select", "search"]

Mode = Literal["hybrid", "dense", "keyword", "mmr"]
MODES = ("hybrid", "dense", "keyword", "mmr")
LIST_NAMES = ("dense_text", "dense_image", "text_model", "bm25")
#: Weight of the OCR n-gram terms within the keyword (BM25) list, unless ``weights={"ocr": ...}``
#: says otherwise (chosen with ``python -m benchmarks.bench_ocr_variants``: weight 1, 2, 3 gave all 0.90, 0.92, 0.91).
OCR_WEIGHT = 2.0
#: What ``weights`` may name: the lists, and ``"ocr"``.
WEIGHT_NAMES = (*LIST_NAMES, "ocr")


def _whole(name: str, n: Any) -> int:
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1:
        raise InvalidInputError(f"{name} must be a whole number >= 1, got {n!r}")
    return int(n)


@dataclass(frozen=True)
class SearchOptions:
    """How to search and what to do with the hits (see the module docstring).

    ``weights`` per hybrid list (missing lists weigh 1; 0 disables a list) and ``"ocr"``, the weight
    of the OCR n-gram terms in the BM25 query (see the module), ``rrf_k`` the RRF
    constant, ``prefetch_k`` the depth of each list (hybrid, dense with post-processing) or the
    number of MMR candidates, ``quotas`` a minimum number of hits per kind (``{"image": 2}``),
    ``score_threshold`` a minimum score (fused, cosine or BM25 by mode), ``min_similarity`` a
    minimum cosine for dense candidates, ``dedupe`` removes repeated content (same image bytes,
    same normalised text) and, with ``near_duplicate_threshold``, hits whose vectors are that
    similar to a better hit of the same kind. ``fusion``: ``"client"`` or ``"server"``;
    ``explain`` fills per-list ranks (free client side; a second search with server fusion)."""

    mode: Mode = "hybrid"
    k: int = 10
    prefetch_k: int | None = None
    weights: Mapping[str, float] | None = None
    rrf_k: float = DEFAULT_RRF_K
    quotas: Mapping[str, int] | None = None
    score_threshold: float | None = None
    min_similarity: float | None = None
    dedupe: bool = True
    near_duplicate_threshold: float | None = 0.98
    lambda_mult: float = 0.5
    fusion: Literal["client", "server"] = "client"
    explain: bool | None = None

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ConfigurationError(f"mode must be one of {', '.join(MODES)}; got {self.mode!r}")
        for n in (self.k, self.prefetch_k):
            if n is not None and (isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 1):
                raise ConfigurationError(f"k and prefetch_k must be >= 1, got k={self.k!r}, prefetch_k={self.prefetch_k!r}")
        weights = {name: 1.0 for name in LIST_NAMES}
        for name, w in (self.weights or {}).items():
            if name not in WEIGHT_NAMES or not isinstance(w, int | float) or not w >= 0:
                raise ConfigurationError(f"weights: unknown list {name!r} or negative weight; lists are {LIST_NAMES}, and 'ocr' (OCR n-grams in bm25)")
            weights[name] = float(w)
        object.__setattr__(self, "weights", weights)
        quotas = {kind: n for kind, n in (self.quotas or {}).items()}
        if any(kind not in ("text", "image") for kind in quotas):
            raise ConfigurationError(f"quotas are per kind ('text', 'image'), got {sorted(quotas)}")
        if any(isinstance(n, bool) or not isinstance(n, int) or n < 0 for n in quotas.values()):
            raise ConfigurationError(f"quotas must be >= 0 (whole numbers), got {quotas}")
        object.__setattr__(self, "quotas", quotas)
        if self.fusion not in ("client", "server"):
            raise ConfigurationError(f"fusion must be 'client' or 'server', got {self.fusion!r}")
        if not isinstance(self.lambda_mult, int | float) or not 0.0 <= float(self.lambda_mult) <= 1.0:
            raise ConfigurationError(f"lambda_mult must be between 0 and 1, got {self.lambda_mult!r}")
        if self.near_duplicate_threshold is not None and not -1.0 <= float(self.near_duplicate_threshold) <= 1.0:
            raise ConfigurationError(f"near_duplicate_threshold must be a cosine in [-1, 1] or None, got {self.near_duplicate_threshold!r}")

    def replace(self, **changes: Any) -> SearchOptions:
        """These options with *changes* (checked as the constructor checks them); an unknown
        name is a :class:`ConfigurationError` naming the accepted ones."""
        unknown = sorted(set(changes) - OPTION_NAMES)
        if unknown:
            raise ConfigurationError(f"unknown search option(s) {unknown}; accepted: {sorted(OPTION_NAMES)}")
        return dataclasses.replace(self, **changes) if changes else self

    @property
    def list_weights(self) -> Mapping[str, float]:
        return self.weights or {}

    @property
    def explains(self) -> bool:
        return self.fusion == "client" if self.explain is None else bool(self.explain)

    def depth(self, k: int) -> int:
        """How deep each list is searched for *k* hits."""
        quotas = sum((self.quotas or {}).values())
        if self.prefetch_k is not None:
            return self.prefetch_k
        if self.mode == "mmr":
            return max(20, 4 * k)
        plain = not self.dedupe and not quotas and self.score_threshold is None
        if self.mode != "hybrid" and plain:
            return k  # nothing removes hits: the list is the answer
        return max(50, 4 * k + quotas)


OPTION_NAMES = frozenset(f.name for f in dataclasses.fields(SearchOptions))

#: What the framework vector stores use unless told otherwise: plain similarity, keyword and MMR
#: searches return what the lists hold (as every LangChain and LlamaIndex store does); hybrid
#: search is the retrievers' (``FusedRetriever``'s defaults).
STORE_DEFAULTS = {
    "dense": SearchOptions(mode="dense", dedupe=False, near_duplicate_threshold=None),
    "keyword": SearchOptions(mode="keyword", dedupe=False, near_duplicate_threshold=None),
    "mmr": SearchOptions(mode="mmr", dedupe=False, near_duplicate_threshold=None),
    "hybrid": SearchOptions(mode="hybrid"),
}


@dataclass(frozen=True, slots=True)
class Match:
    """One hit: the point id, its stored payload (checked and resolved), its score, and the
    rank and raw score it had in each list."""

    id: str
    payload: Mapping[str, Any]
    score: float
    ranks: Mapping[str, int]
    list_scores: Mapping[str, float]

    @property
    def kind(self) -> str:
        return str(self.payload.get("kind", "text"))


def search(
    index: Any,
    options: SearchOptions,
    *,
    text: str | None = None,
    vector: np.ndarray | None = None,
    conditions: tuple[Condition, ...] = (),
    k: int | None = None,
    text_vector: np.ndarray | None = None,
) -> list[Match]:
    """The best *k* (default ``options.k``) hits of *index* for *text* (BM25, and the text model's
    list of an index with one: *text_vector*, or *text* embedded by ``index.text_embedder``) and/or
    *vector* (dense), best first, as *options* say. *conditions* are parsed filters."""
    k = options.k if k is None else _whole("k", k)
    if text is not None and not text.strip():
        text = None
    if vector is not None:
        vector = _query_vector(index, vector)
    if matches_nothing(conditions):
        return []
    depth = options.depth(k)
    lists = _plan(index, options, text, vector, conditions, depth, text_vector)
    if not lists:
        return []
    vectors = options.mode == "mmr" or (options.dedupe and options.near_duplicate_threshold is not None)
    ranking, found = _ranked(index, options, lists, conditions, depth, vectors)
    return _finish(options, ranking, found, k, vector, vectors)


def _plan(
    index: Any, options: SearchOptions, text: str | None, vector: np.ndarray | None, conditions: tuple[Condition, ...], depth: int,
    text_vector: np.ndarray | None = None,
) -> list[ListQuery]:
    mode = options.mode
    if mode in ("dense", "mmr"):
        if vector is None:
            raise InvalidInputError(f"a {mode} search needs a query vector")
        return [ListQuery("dense", depth, dense=vector, min_score=options.min_similarity)]
    out = []
    if mode == "hybrid" and vector is not None:
        kind = next((c.value for c in conditions if c.key == "kind" and c.op == "eq"), None)
        for name, list_kind in (("dense_text", "text"), ("dense_image", "image")):
            if options.list_weights[name] > 0 and kind in (None, list_kind):
                # an index with CLIP windows: text chunks are searched by their best window (MaxSim)
                using = WINDOWS if list_kind == "text" and getattr(index, "has_windows", False) else DENSE
                out.append(ListQuery(name, depth, dense=vector, kind=list_kind, min_score=options.min_similarity, using=using))
    if mode == "hybrid" and text is not None and options.list_weights["text_model"] > 0 and _has_text_model(index):
        tv = _text_query(index, text) if text_vector is None else _checked_text_vector(index, text_vector)
        out.append(ListQuery("text_model", depth, dense=tv, using=TEXT, min_score=options.min_similarity))
    if text is not None and (mode == "keyword" or options.list_weights["bm25"] > 0):
        ocr = options.list_weights.get("ocr")
        if ocr is None:  # fused with dense lists, a weak n-gram match would count by its rank alone
            ocr = 0.0 if out else OCR_WEIGHT
        sparse = merge(index.bm25.encode_query(text), index.bm25.encode_ocr_query(text, ocr))
        if len(sparse):
            out.append(ListQuery("bm25", depth, sparse=sparse))
    return out


@dataclass(frozen=True, slots=True)
class _Ranking:
    """A query's ranking: ``(id, score)`` pairs best first, and each id's rank and raw score per
    list (from the :class:`Fusion` of the lists, or of the one list *single*, where the rank is
    the position; neither: no explanations). No object per ranked id: a query ranks a few
    hundred and reads about ten."""

    pairs: list[tuple[str, float]]
    single: str | None = None
    fusion: Fusion | None = None

    def match(self, pos: int, payload: Mapping[str, Any]) -> Match:
        pid, score = self.pairs[pos]
        if self.single is not None:
            return Match(pid, payload, score, {self.single: pos + 1}, {self.single: score})
        if self.fusion is not None:
            return Match(pid, payload, score, *self.fusion.detail(pid))
        return Match(pid, payload, score, {}, {})


def _ranked(
    index: Any, options: SearchOptions, lists: list[ListQuery], conditions: tuple[Condition, ...], depth: int, vectors: bool
) -> tuple[_Ranking, Found]:
    """The ranking (fused in hybrid mode) and the engine's answer post-processing reads, from
    one engine search."""
    if options.mode != "hybrid":
        found = index.search(lists, conditions, vectors=vectors)
        return _Ranking(found.lists[0], single=lists[0].name), found
    weights = options.list_weights
    if options.fusion == "client":
        found = index.search(lists, conditions, vectors=vectors)
        fusion = Fusion({q.name: r for q, r in zip(lists, found.lists, strict=True)}, k=options.rrf_k, weights=weights)
        return _Ranking(fusion.pairs, fusion=fusion), found
    fuse = (options.rrf_k, depth * len(lists), [weights[q.name] for q in lists])
    found = index.search(lists, conditions, fuse=fuse, vectors=vectors)
    pairs = sorted(found.lists[0], key=lambda t: rrf_sort_key(t[1], t[0]))
    if not options.explains:
        return _Ranking(pairs), found
    # the ranks and raw scores come from the lists searched again (Qdrant's fusion gives neither)
    explained = Fusion({q.name: r for q, r in zip(lists, index.search_lists(lists, conditions), strict=True)}, k=options.rrf_k)
    return _Ranking(pairs, fusion=explained), found


def _finish(
    options: SearchOptions, ranking: _Ranking, found: Found, k: int, query: np.ndarray | None, vectors: bool
) -> list[Match]:
    # Lazy stages over the ranking, reading payloads (and vectors) batch by batch as far as the
    # stages pull: threshold -> exact duplicates out -> near duplicates out -> the head.
    quotas = options.quotas or {}
    want = k + sum(quotas.values())
    room = 3 * want if quotas else want  # quotas promote hits from below the first k
    positions: Sequence[int] = range(len(ranking.pairs))
    if options.score_threshold is not None:
        threshold = options.score_threshold
        positions = [i for i in positions if ranking.pairs[i][1] >= threshold]
    stream = _read(ranking, positions, found, want, vectors)
    if options.dedupe:
        stream = distinct(stream, lambda m: _content_key(m.payload))
        if options.near_duplicate_threshold is not None:
            stream = _near_distinct(stream, room, found.vectors, float(options.near_duplicate_threshold))
    if options.mode == "mmr":
        candidates = [m for m in stream if m.id in found.vectors]
        if not candidates or query is None:
            return []
        rows = np.stack([found.vectors[m.id] for m in candidates])
        order = mmr_select(query, rows, len(candidates) if quotas else k, float(options.lambda_mult))
        items = [candidates[i] for i in order]
    else:
        items = _head(stream, room, quotas)
    if quotas:
        items = apply_quotas(items, k, lambda m: m.kind, quotas)
    return items[:k]


def _read(ranking: _Ranking, positions: Sequence[int], found: Found, batch: int, vectors: bool) -> Iterator[Match]:
    """The ranking (at *positions*) as matches, reading the payloads (and vectors) of each next
    *batch* in one fetch; a hit whose payload is gone or refused is left out."""
    payloads, pairs = found.payloads, ranking.pairs
    start = 0
    while start < len(positions):
        part = positions[start : start + batch]
        found.load([pairs[i][0] for i in part], vectors=vectors)
        for i in part:
            p = payloads.get(pairs[i][0])
            if p is not None:
                yield ranking.match(i, p)
        start += len(part)
        batch = max(batch, 16)


def _near_distinct(items: Iterator[Match], batch: int, vectors: Mapping[str, np.ndarray], threshold: float) -> Iterator[Match]:
    """*items* without those whose vector is *threshold*-similar to a better kept item of the
    same kind, as far as the reader pulls."""
    kept: list[Match] = []
    while part := list(islice(items, batch)):
        # greedy in rank order: the items kept so far stay kept, each new one is checked
        # against them and against the better new ones
        head = kept + part
        merged = dedupe_near(head, [vectors.get(m.id) for m in head], threshold, lambda m: m.kind)
        yield from merged[len(kept) :]
        removed = len(head) - len(merged)
        kept = merged
        batch = max(4, 2 * removed)  # about as many as were dropped, to refill the head


def _head(items: Iterable[Match], room: int, quotas: Mapping[str, int]) -> list[Match]:
    """The first *room* items, and more until every quota can be met; nothing deeper is read."""
    out: list[Match] = []
    counts = dict.fromkeys(quotas, 0)
    for m in items:
        out.append(m)
        if m.kind in counts:
            counts[m.kind] += 1
        if len(out) >= room and all(counts[q] >= n for q, n in quotas.items()):
            break
    return out


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


def _content_key(payload: Mapping[str, Any]) -> tuple[str, str] | None:
    """Exact-duplicate key: the image bytes' hash, or the normalised text."""
    if payload.get("kind") == "image":
        h = payload.get("content_hash")
        return ("image", h) if h else None
    norm = " ".join(str(payload.get("text", "")).lower().split())
    return ("text", norm) if norm else None


def _has_text_model(index: Any) -> bool:
    return getattr(index, "text_model", None) is not None and not getattr(index, "keyword_search_only", False)


def _text_query(index: Any, text: str) -> np.ndarray:
    """*text* embedded by the index's text model (its ``text_model`` list)."""
    model = getattr(index, "text_embedder", None)
    if model is None:
        from ..embeddings.text_model import describe_text_model

        raise ConfigurationError(
            f"{index.where}: the index carries a text model ({describe_text_model(index.text_model)}): open it with "
            "text_embedder= that model, or search with weights={'text_model': 0}"
        )
    return _checked_text_vector(index, model.embed_query(text))


def _checked_text_vector(index: Any, vector: Any) -> np.ndarray:
    vec = np.asarray(vector, dtype=np.float32).reshape(-1)
    if vec.shape != (index.text_dim,) or not np.isfinite(vec).all():
        raise InvalidInputError(f"text-model query vector must be {index.text_dim} finite numbers, got shape {vec.shape}")
    return vec


def _query_vector(index: Any, vector: Any) -> np.ndarray:
    if index.keyword_search_only:
        raise ConfigurationError(f"{index.where}: this index is searched by keywords only (no dense vectors)")
    vec = np.asarray(vector, dtype=np.float32).reshape(-1)
    if vec.shape != (index.dim,) or not np.isfinite(vec).all():
        raise InvalidInputError(f"query vector must be {index.dim} finite numbers, got shape {vec.shape}")
    return vec
