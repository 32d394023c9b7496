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

__all__ = ["DEFAULT_RRF_K", "Fused", "Fusion", "apply_quotas", "dedupe_near", "distinct", "qdrant_rrf_k", "rrf", "rrf_sort_key"]

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
    fusion = Fusion(lists, k=k, weights=weights)
    return [Fused(i, s, *fusion.detail(i)) for i, s in fusion.pairs]


class Fusion:
    """:func:`rrf` without an object per fused item (a query fuses a few hundred ids and reads
    about ten): ``pairs``, ``(id, score)`` best first, and each id's rank and raw score per list
    when asked (:meth:`detail`)."""

    __slots__ = ("_first", "_lists", "pairs")

    def __init__(
        self, lists: Mapping[str, Sequence[tuple[str, float]]], *, k: float = DEFAULT_RRF_K, weights: Mapping[str, float] | None = None
    ) -> None:
        if k < 0:
            raise ValueError(f"RRF k must be >= 0, got {k}")
        self._lists = lists
        self._first: dict[str, dict[str, int]] = {}
        scores: dict[str, float] = {}
        get = scores.get
        for name, items in lists.items():
            ids = [i for i, _ in items]
            # each id's first (best) place in the list: a list naming an id twice counts it once
            first = self._first[name] = dict(zip(reversed(ids), range(len(ids) - 1, -1, -1), strict=True))
            w = 1.0 if weights is None else float(weights.get(name, 1.0))
            if w > 0:
                for item_id, at in first.items():
                    scores[item_id] = get(item_id, 0.0) + w / (k + at + 1)
            else:
                for item_id in first:
                    scores.setdefault(item_id, 0.0)
        # the sort key of rrf_sort_key, built once per item (this runs on every query)
        order = sorted([(-round(s, _SCORE_DECIMALS), i) for i, s in scores.items()])
        self.pairs = [(i, scores[i]) for _, i in order]

    def detail(self, item_id: str) -> tuple[dict[str, int], dict[str, float]]:
        """*item_id*'s 1-based rank and raw score in each list that holds it."""
        ranks, raw = {}, {}
        for name, first in self._first.items():
            at = first.get(item_id)
            if at is not None:
                ranks[name] = at + 1
                raw[name] = float(self._lists[name][at][1])
        return ranks, raw


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
