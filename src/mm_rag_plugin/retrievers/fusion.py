"""Rank fusion and post-processing, as pure functions over ranked lists.

Weighted Reciprocal Rank Fusion: an item's score is ``Σ_i w_i / (k + rank_i)`` over the lists ``i``
that contain it, ``rank_i`` 1-based, ``k`` 60 by default (Cormack et al., 2009). Ties are broken by
id, so the order is total and the same wherever it is computed.

Qdrant's server-side RRF computes ``1 / (pos / w + k')`` with a 0-based ``pos``; with ``k' = k + 1``
and ``w = 1`` that is exactly ``1 / (k + rank)``, which is how the index asks Qdrant to fuse
(:func:`qdrant_rrf_k`). With unequal weights the two formulas differ: ``fusion="server"`` then
ranks by Qdrant's (``1 / (rank / w + k)``), the default client-side fusion by ours.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TypeVar

import numpy as np

__all__ = ["DEFAULT_RRF_K", "Fused", "apply_quotas", "dedupe_near", "distinct", "qdrant_rrf_k", "rrf", "rrf_parts", "rrf_sort_key"]

DEFAULT_RRF_K = 60
#: Fused scores are compared at this many decimals, so float summation order never reorders.
_SCORE_DECIMALS = 12

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class Fused:
    """One fused item: its id, fused score, and per list the 1-based rank and raw score."""

    id: str
    score: float
    ranks: Mapping[str, int] = field(default_factory=dict)
    list_scores: Mapping[str, float] = field(default_factory=dict)


def rrf_sort_key(score: float, id: str) -> tuple[float, str]:
    """Best first; equal scores (to 12 decimals) by id."""
    return (-round(score, _SCORE_DECIMALS), id)


def rrf(
    lists: Mapping[str, Sequence[tuple[str, float]]],
    *,
    k: float = DEFAULT_RRF_K,
    weights: Mapping[str, float] | None = None,
) -> list[Fused]:
    """Fuse ranked lists ``{name: [(id, raw_score), ...] best first}`` into one list, best first.

    Lists missing from *weights* weigh 1. A list with weight 0 still reports ranks but adds nothing
    to the score. Every id found by any list appears once in the result.
    """
    pairs, ranks, raw = rrf_parts(lists, k=k, weights=weights)
    return [Fused(i, s, ranks[i], raw[i]) for i, s in pairs]


def rrf_parts(
    lists: Mapping[str, Sequence[tuple[str, float]]],
    *,
    k: float = DEFAULT_RRF_K,
    weights: Mapping[str, float] | None = None,
) -> tuple[list[tuple[str, float]], dict[str, dict[str, int]], dict[str, dict[str, float]]]:
    """:func:`rrf` as ``(id, score)`` pairs best first, with each id's rank and raw score per list:
    no object per fused item (a query fuses a few hundred ids and reads about ten)."""
    if k < 0:
        raise ValueError(f"RRF k must be >= 0, got {k}")
    scores: dict[str, float] = {}
    ranks: dict[str, dict[str, int]] = {}
    raw: dict[str, dict[str, float]] = {}
    for name, items in lists.items():
        w = 1.0 if weights is None else float(weights.get(name, 1.0))
        for rank, (item_id, raw_score) in enumerate(items, start=1):
            seen = ranks.get(item_id)
            if seen is None:
                ranks[item_id] = {name: rank}
                raw[item_id] = {name: float(raw_score)}
                scores[item_id] = w / (k + rank) if w > 0 else 0.0
            elif name not in seen:  # a list naming an id twice counts its best rank only
                seen[name] = rank
                raw[item_id][name] = float(raw_score)
                if w > 0:
                    scores[item_id] += w / (k + rank)
    # the sort key of rrf_sort_key, built once per item (this runs on every query)
    order = sorted([(-round(s, _SCORE_DECIMALS), i) for i, s in scores.items()])
    return [(i, scores[i]) for _, i in order], ranks, raw


def qdrant_rrf_k(k: float) -> int:
    """The ``Rrf(k=...)`` that makes Qdrant's RRF equal ``1 / (k + rank)`` (rank 1-based)."""
    if k != int(k):
        raise ValueError(f"Qdrant's RRF takes an integer k, got {k}")
    return int(k) + 1


def apply_quotas(items: Sequence[T], k: int, kind_of: Callable[[T], str], quotas: Mapping[str, int]) -> list[T]:
    """The best *k* of *items* (best first) such that each kind has at least ``quotas[kind]`` items
    when that many exist. Promoted items replace the lowest-ranked items of kinds above their own
    quota; the result keeps the input order."""
    n = len(items)
    chosen = set(range(min(k, n)))
    kinds = [kind_of(it) for it in items]
    count: dict[str, int] = {}
    for i in chosen:
        count[kinds[i]] = count.get(kinds[i], 0) + 1
    for kind, want in quotas.items():
        missing = want - count.get(kind, 0)
        if missing <= 0:
            continue
        extra = [i for i in range(n) if i not in chosen and kinds[i] == kind][:missing]
        for i in extra:
            victim = next(
                (j for j in sorted(chosen, reverse=True) if kinds[j] != kind and count[kinds[j]] > quotas.get(kinds[j], 0)),
                None,
            )
            if victim is None:
                break  # the quotas together exceed k: keep what fits
            chosen.discard(victim)
            count[kinds[victim]] -= 1
            chosen.add(i)
            count[kind] = count.get(kind, 0) + 1
    return [items[i] for i in sorted(chosen)]


def distinct(items: Iterable[T], key: Callable[[T], Hashable | None]) -> Iterator[T]:
    """*items* without those whose ``key`` (when not None) equals that of a better item, lazily
    (nothing is read past what the caller takes)."""
    seen: set[Hashable] = set()
    for it in items:
        kk = key(it)
        if kk is not None:
            if kk in seen:
                continue
            seen.add(kk)
        yield it


def dedupe_near(
    items: Sequence[T], vectors: Sequence[np.ndarray | None], threshold: float, group: Callable[[T], Hashable] = lambda _: 0
) -> list[T]:
    """Drop every item whose (unit) vector has cosine >= *threshold* with a better kept item of the
    same ``group``. Items without a vector are kept."""
    if len(items) != len(vectors):
        raise ValueError(f"dedupe_near: {len(items)} items but {len(vectors)} vectors")
    present = [i for i, v in enumerate(vectors) if v is not None]
    row = {i: r for r, i in enumerate(present)}
    sims = None
    if present:
        matrix = np.stack([np.asarray(vectors[i], np.float32) for i in present])
        sims = matrix @ matrix.T  # every pair's cosine at once (a few dozen items)
    kept: list[T] = []
    kept_rows: dict[Hashable, list[int]] = {}
    for i, it in enumerate(items):
        if i in row:
            assert sims is not None
            r, others = row[i], kept_rows.setdefault(group(it), [])
            if others and float(sims[r, others].max()) >= threshold:
                continue
            others.append(r)
        kept.append(it)
    return kept
