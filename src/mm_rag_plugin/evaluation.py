"""Ranking metrics shared by ``mm-rag eval`` and the fine-tuning report: recall@k, MRR and nDCG@k.

One function scores one ranked list against the items that are relevant to its query; the CLI
matches hits to file names or chunk ids, fine-tuning matches held-out images to their captions
(and back) by position. Both call :func:`ranking_metrics`, so a recall@k means the same thing
wherever it is printed.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

from ._jsonl import json_lines, kind_of
from .errors import InvalidInputError

__all__ = ["RankingMetrics", "load_queries", "ranking_metrics"]


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


def load_queries(path: str | os.PathLike[str]) -> list[tuple[str, list[str]]]:
    """``(query, relevant)`` pairs of a JSON Lines file, one ``{"query": "...", "relevant":
    ["file name or chunk id", ...]}`` per line (``mm-rag eval``). Raises :class:`InvalidInputError`
    naming the file and the line of the first problem."""
    file = Path(path)
    queries: list[tuple[str, list[str]]] = []
    for n, row in json_lines(file):
        if not isinstance(row, dict):
            raise InvalidInputError(
                f'line {n}: expected an object {{"query": "...", "relevant": [...]}}, got {kind_of(row)}',
                source=str(file),
            )
        query, relevant = row.get("query"), row.get("relevant")
        if not isinstance(query, str) or not query.strip():
            got = "nothing" if "query" not in row else kind_of(query) if query != "" else "an empty string"
            raise InvalidInputError(f'line {n}: "query" must be a non-empty string, got {got}', source=str(file))
        if not isinstance(relevant, list) or not relevant:
            got = "nothing" if "relevant" not in row else kind_of(relevant) if relevant != [] else "an empty list"
            raise InvalidInputError(
                f'line {n}: "relevant" must be a list of strings (file names or chunk ids), got {got}',
                source=str(file),
            )
        for i, item in enumerate(relevant, 1):
            if not isinstance(item, str) or not item.strip():
                got = kind_of(item) if item != "" else "an empty string"
                raise InvalidInputError(
                    f'line {n}: "relevant" must be a list of strings (file names or chunk ids); item {i} is {got}',
                    source=str(file),
                )
        queries.append((query, relevant))
    if not queries:
        raise InvalidInputError("no queries in the file", source=str(file))
    return queries
