"""Pure fusion functions: weighted RRF, quotas, dedupe."""

from __future__ import annotations

import numpy as np
import pytest

from mm_rag_plugin.retrievers.engine import ranked
from mm_rag_plugin.retrievers.fusion import (
    apply_quotas,
    dedupe_near,
    distinct,
    qdrant_rrf_k,
    rrf,
    rrf_sort_key,
)


def test_rrf_scores_follow_the_formula_and_explain_ranks():
    lists = {"a": [("x", 0.9), ("y", 0.8)], "b": [("y", 5.0), ("z", 1.0)]}
    out = rrf(lists, k=60, weights={"a": 1.0, "b": 2.0})
    by_id = {f.id: f for f in out}
    assert by_id["y"].score == pytest.approx(1 / 62 + 2 / 61)
    assert by_id["x"].score == pytest.approx(1 / 61)
    assert by_id["z"].score == pytest.approx(2 / 62)
    assert [f.id for f in out] == ["y", "z", "x"]
    assert by_id["y"].ranks == {"a": 2, "b": 1}
    assert by_id["y"].list_scores == {"a": 0.8, "b": 5.0}


def test_rrf_returns_the_union_once_and_breaks_ties_by_id():
    out = rrf({"a": [("q", 1.0), ("p", 0.5)], "b": [("p", 1.0), ("q", 0.5)]})
    assert [f.id for f in out] == ["p", "q"]  # equal scores: by id
    assert out[0].score == out[1].score


def test_rrf_weight_zero_reports_rank_but_adds_nothing():
    out = rrf({"a": [("x", 1.0)], "b": [("y", 1.0)]}, weights={"b": 0.0})
    assert [f.id for f in out] == ["x", "y"]
    assert out[1].score == 0.0 and out[1].ranks == {"b": 1}


def test_rrf_empty_lists():
    assert rrf({}) == []
    assert rrf({"a": []}) == []


def test_qdrant_rrf_k_shift():
    # Qdrant: 1 / (pos + k') with 0-based pos; ours: 1 / (k + rank) with 1-based rank
    assert qdrant_rrf_k(60) == 61


def test_quotas_promote_best_items_of_the_missing_kind():
    items = [("t1", "text"), ("t2", "text"), ("t3", "text"), ("i1", "image"), ("t4", "text"), ("i2", "image")]
    out = apply_quotas(items, 3, lambda it: it[1], {"image": 2})
    assert [i for i, _ in out] == ["t1", "i1", "i2"]
    # quota larger than what exists: as many as there are
    out = apply_quotas(items, 4, lambda it: it[1], {"image": 5})
    assert [i for i, _ in out] == ["t1", "t2", "i1", "i2"]
    assert apply_quotas(items, 2, lambda it: it[1], {}) == items[:2]


def test_dedupe_by_key_keeps_the_best_and_items_without_key():
    items = [("a", 1), ("b", 1), ("c", None), ("d", None), ("e", 2)]
    assert [i for i, _ in distinct(items, lambda it: it[1])] == ["a", "c", "d", "e"]


def test_dedupe_near_by_cosine_within_group():
    v = np.array([1.0, 0.0], np.float32)
    w = np.array([0.999, 0.0447], np.float32)
    w /= np.linalg.norm(w)
    u = np.array([0.0, 1.0], np.float32)
    items = ["a", "b", "c", "d"]
    kept = dedupe_near(items, [v, w, u, None], 0.99)
    assert kept == ["a", "c", "d"]
    kept = dedupe_near(items, [v, w, u, None], 0.99, group=lambda it: it)  # all different groups
    assert kept == items


def _ranked_reference(items, limit):
    return sorted(items, key=lambda t: rrf_sort_key(t[1], t[0]))[:limit]


def test_ranked_orders_like_the_sort_key_for_ties_near_ties_and_clean_lists():
    rng = np.random.default_rng(3)
    for trial in range(300):
        n = int(rng.integers(0, 60))
        scores = sorted(rng.random(n) * 30, reverse=True)  # best first, as stores answer
        if n > 3 and trial % 3 == 0:
            scores[1] = scores[2] = scores[0]  # exact ties
        if n > 5 and trial % 3 == 1:
            scores[4] = scores[3] - 4e-13  # equal at 12 decimals: a tie, broken by id
            scores[5] = scores[4] - 3e-11  # close, but ordered by score
        ids = [f"{int(x):08x}" for x in rng.integers(0, 2**31, n)]
        items = list(zip(ids, (float(s) for s in scores), strict=True))
        for limit in (n, 10):
            assert ranked(items, limit) == _ranked_reference(items, limit)


def _rrf_reference(lists, k, weights):
    scores, ranks, raw = {}, {}, {}
    for name, items in lists.items():
        w = weights.get(name, 1.0)
        for rank, (i, s) in enumerate(items, start=1):
            if name in ranks.get(i, {}):
                continue
            scores[i] = scores.get(i, 0.0) + (w / (k + rank) if w > 0 else 0.0)
            ranks.setdefault(i, {})[name] = rank
            raw.setdefault(i, {})[name] = s
    return [(i, scores[i], ranks[i], raw[i]) for i in sorted(scores, key=lambda i: rrf_sort_key(scores[i], i))]


def test_rrf_matches_the_definition_on_random_lists_with_repeats_and_zero_weights():
    rng = np.random.default_rng(4)
    for _ in range(200):
        lists = {
            name: [(f"p{int(rng.integers(0, 40))}", float(rng.random())) for _ in range(int(rng.integers(0, 30)))]
            for name in ("a", "b", "c")
        }
        weights = {"a": 1.0, "b": float(rng.choice([0.0, 0.5, 2.0])), "c": 1.0}
        got = [(f.id, f.score, dict(f.ranks), dict(f.list_scores)) for f in rrf(lists, k=60, weights=weights)]
        assert got == _rrf_reference(lists, 60, weights)


def test_dedupe_near_matches_the_greedy_definition():
    rng = np.random.default_rng(5)
    for _ in range(100):
        n = int(rng.integers(1, 30))
        base = rng.normal(size=(4, 8))
        vecs = [base[int(rng.integers(0, 4))] + rng.normal(size=8) * float(rng.choice([0.01, 0.5])) for _ in range(n)]
        vecs = [None if rng.random() < 0.1 else (v / np.linalg.norm(v)).astype(np.float32) for v in vecs]
        groups = [int(rng.integers(0, 2)) for _ in range(n)]
        kept_ref, seen = [], {}
        for i, v in enumerate(vecs):
            if v is not None:
                others = seen.setdefault(groups[i], [])
                if any(float(o @ v) >= 0.98 for o in others):
                    continue
                others.append(v)
            kept_ref.append(i)
        assert dedupe_near(list(range(n)), vecs, 0.98, group=groups.__getitem__) == kept_ref
    with pytest.raises(ValueError, match="2 items but 1 vectors"):
        dedupe_near(["a", "b"], [None], 0.9)
