"""Pure fusion functions: weighted RRF, quotas, dedupe."""

from __future__ import annotations

import numpy as np
import pytest

from mm_rag_plugin.retrievers.fusion import apply_quotas, dedupe, dedupe_near, qdrant_rrf_k, rrf


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
    assert [i for i, _ in dedupe(items, lambda it: it[1])] == ["a", "c", "d", "e"]


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
