"""Ranking metrics shared by ``mm-rag eval`` and the fine-tuning report: recall@k, MRR and nDCG@k.

One function scores one ranked list against the items that are relevant to its query; the CLI
matches hits to file names or chunk ids, fine-tuning matches held-out images to their captions
(and back) by position. Both call :func:`ranking_metrics`, so a recall@k means the same thing
wherever it is printed.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

__all__ = ["RankingMetrics", "ranking_metrics"]


class RankingMetrics(NamedTuple):
    recall: float  # share of the relevant items found in the top k
    mrr: float  # 1 / rank of the first relevant item in the top k (0 when none)
    ndcg: float  # binary-gain nDCG@k


def _equal(a: Any, b: Any) -> bool:
    return bool(a == b)


def ranking_metrics(
    ranked: Sequence[Any],
    relevant: Sequence[Any],
    k: int,
    match: Callable[[Any, Any], bool] = _equal,
) -> RankingMetrics:
    """recall@k, MRR@k and nDCG@k of *ranked* (best first) for a query whose relevant items are
    *relevant*; ``match(item, wanted)`` says whether a ranked item is a relevant one (default ``==``).
    Each relevant item (hashable) counts once, at the first rank that matches it."""
    if not relevant:
        raise ValueError("a query needs at least one relevant item")
    found_at: dict[Any, int] = {}
    for rank, item in enumerate(ranked[:k], 1):
        for wanted in relevant:
            if wanted not in found_at and match(item, wanted):
                found_at[wanted] = rank
    recall = len(found_at) / len(relevant)
    mrr = 1.0 / min(found_at.values()) if found_at else 0.0
    dcg = sum(1.0 / math.log2(rank + 1) for rank in found_at.values())
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(len(relevant), k) + 1))
    return RankingMetrics(recall, mrr, dcg / ideal)
