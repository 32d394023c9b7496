"""The benchmark suite runs end to end against the peers' current APIs (tiny sizes, ``--smoke``).

Speed is not asserted here (benchmarks compare ratios in their own runs); what is asserted is that
every section produces its figures for every contestant, that quantized search keeps the exact
neighbours on this data, and that the report, JSON and plot are written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(900)  # the module fixture runs the whole suite once (~2-3 min)


@pytest.fixture(scope="module")
def smoke(tmp_path_factory, shared_data) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("bench")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.run", "--smoke", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=900,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads((out / "results.json").read_text()), out


def test_every_section_ran_without_errors(smoke):
    res, out = smoke
    assert res["errors"] == {}
    assert set(res["sections"]) == {"embeddings", "retrieval", "cold", "ingestion", "storage", "writes"}
    md = (out / "results.md").read_text()
    for heading in ("## embeddings", "## retrieval", "## cold", "## ingestion", "## storage", "## writes"):
        assert heading in md
    assert (out / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the smoke run's loaded halves run beside one lowest-priority spinner, not one per core: the
    # test machine is running other tests meanwhile (a full load there tripled the suite's setup)
    for name in ("embeddings", "retrieval", "cold"):
        assert "nice 19" in res["sections"][name]["load"], name


def test_retrieval_measures_every_system_quiet_and_loaded(smoke):
    from benchmarks.bench_retrieval import DEFAULT_SYSTEMS

    by_size = smoke[0]["sections"]["retrieval"]["by_size"]["300"]
    assert set(by_size) == set(DEFAULT_SYSTEMS)
    for name, r in by_size.items():
        for mode in ("quiet", "loaded"):
            m = r[mode]
            assert 0 < m["min"] <= m["median"] <= m["max"], (name, mode)
        assert r["p95_ms"] > 0 and r["queries"] >= 3, name
    # one Query API call per query, for the plain qdrant-client contestant and for ours on
    # qdrant-client alike (the hits' payloads come with the fused query)
    assert by_size["qdrant-client"]["calls_per_query"] == 1
    assert by_size["ours-qdrant-client"]["calls_per_query"] == 1
    # every system with a dense search of its own reports its recall against exact search (300
    # points: exact for all), and ours its latency and recall at each hnsw_ef of the sweep
    for name in ("langchain-faiss", "llamaindex-faiss", "qdrant-client", "ours-qdrant-client"):
        assert by_size[name]["dense_recall_at_10"] == 1.0, name
    assert by_size["ours"]["dense_recall_at_10"] >= 0.99 and by_size["ours-int8"]["dense_recall_at_10"] >= 0.99
    sweep = by_size["ours"]["ef_sweep"]
    assert list(sweep) == ["256"] and sweep["256"]["p50_ms"] > 0 and sweep["256"]["dense_recall_at_10"] >= 0.99


def test_benchmark_vectors_have_near_neighbours_like_embeddings():
    """The default vector model is clustered (a query's nearest stored vectors are close), unlike
    isotropic random vectors; exact_top is the exact top k."""
    import numpy as np
    from benchmarks import bench_retrieval as br

    nearest = {}
    for model in ("clustered", "isotropic"):
        _, _, vecs, _, qvecs = br.make_data(3000, 64, 40, vectors=model)
        assert np.allclose(np.linalg.norm(vecs, axis=1), 1, atol=1e-5)
        top = br.exact_top(vecs, qvecs, 10)
        scores = qvecs @ vecs.T
        assert (top == np.argsort(-scores, axis=1)[:, :10]).all()
        nearest[model] = float(np.mean(scores[np.arange(len(qvecs)), top[:, 0]]))
    assert nearest["clustered"] > 0.6 > 0.5 > nearest["isotropic"], nearest


def test_qdrant_contestant_makes_one_call_per_query(tmp_path):
    """Counted on the client itself: every request goes through the proxy, and the answer is the
    fused top 10 with payloads."""
    from benchmarks import bench_retrieval as br

    d = br.Data(200, 16, n_queries=12)
    system = br.QdrantPlain()
    system.build(d, tmp_path)
    for i in range(12):
        hits = system.query(i)
        assert len(hits) == br.K and all(h.payload["text"] for h in hits)
    assert dict(system.client.calls) == {"query_points": 12}
    assert system.calls_per_query() == 1


def test_cold_start_measures_every_contestant(smoke):
    cold = smoke[0]["sections"]["cold"]["by_size"]["1000"]
    assert set(cold["by_contestant"]) == {"ours", "ours-cli", "langchain-faiss", "llamaindex-faiss"}
    for name, by_mode in cold["by_contestant"].items():
        assert set(by_mode) == {"quiet", "loaded"}, name
        m = by_mode["quiet"]
        if name == "ours-cli":
            assert m["wall_s"]["median"] > 0 and m["peak_rss_bytes"]["median"] > 20 * 2**20
        else:
            assert m["open_s"]["median"] > 0 and m["first_query_ms"]["median"] > 0
            assert 0 < m["rss_steady_bytes"]["median"] < m["peak_rss_bytes"]["median"], name
    for name, b in cold["builds"].items():
        assert b["disk_allocated_bytes"] > 0 and b["peak_rss_build_bytes"] > 0, name


def test_embeddings_sweep_and_peers(smoke):
    e = smoke[0]["sections"]["embeddings"]
    quiet, loaded = e["quiet"], e["loaded"]
    assert e["loaded_batches"] == [1, 4] and e["rounds"] >= 1
    assert set(quiet["per_item"]) == set(loaded["per_item"]) == {"langchain", "llamaindex"}
    assert {"ours", "raw", "raw-trim"} <= set(quiet["batched"]) == set(loaded["batched"])

    def check(f):  # one figure: positive, one value per round, min <= median <= max
        assert len(f["rounds"]) == e["rounds"]
        assert 0 < f["min"] <= f["median"] <= f["max"]

    for mode, batches in ((quiet, {"1", "4"}), (loaded, {"1", "4"})):
        for name, kinds in mode["batched"].items():
            want = {"texts", "chunks"} if name.startswith("raw-trim") else {"images", "texts", "chunks"}
            assert set(kinds) == want, name
            for figures in kinds.values():
                assert set(figures) == batches, name
                for f in figures.values():
                    check(f)
        for name, kinds in mode["per_item"].items():
            assert set(kinds) == {"images", "texts", "chunks"}, name
            for f in kinds.values():
                check(f)
    # the top-level figures (plot) are the quiet medians
    assert e["batched"]["ours"]["texts"]["4"] == quiet["batched"]["ours"]["texts"]["4"]["median"]
    assert e["per_item"]["langchain"]["chunks"] == quiet["per_item"]["langchain"]["chunks"]["median"]
    # raw-trim is raw with the padding cut: the same vectors
    for name, sets in e["raw_trim_agreement"].items():
        assert name in quiet["batched"]
        assert sets["texts"]["min_cosine"] > 0.999 and sets["chunks"]["min_cosine"] > 0.999, name
    short, chunks = e["text_sets"]["texts"], e["text_sets"]["chunks"]
    assert short["truncated_fraction"] == 0 and short["median_tokens"] < 77
    assert chunks["pdfs"] >= 1 and chunks["chunks_read"] >= 1
    assert chunks["median_tokens"] > short["median_tokens"] and 0 <= chunks["truncated_fraction"] <= 1
    assert f"median {chunks['median_tokens']:g} tokens" in chunks["label"]


def test_ingestion_counts_pages_images_and_memory(smoke):
    rows = smoke[0]["sections"]["ingestion"]["by_system"]
    assert set(rows) == {"ours", "ours-no-ocr", "ours-text", "llamaindex", "langchain"}
    assert rows["ours"]["images"] >= 1 and rows["ours"]["errors"] == 0
    assert rows["ours-text"]["images"] == 0 and rows["ours-text"]["texts"] >= 1
    for name, r in rows.items():
        assert r["pages"] == 1 and r["stored"] >= 1, name
        assert r["peak_tree_rss_bytes"] > 100 * 2**20, name  # at least the model: sampled, not inherited


def test_storage_quantization_keeps_neighbours(smoke):
    # Qdrant Edge manages its own memory (no per-array figures); quantized search must stay exact enough
    rows = smoke[0]["sections"]["storage"]["by_system"]
    assert {"ours", "ours-int8", "ours-binary"} <= set(rows)
    # disk counts the blocks in use: Qdrant's preallocated, sparse files are larger than what they hold
    assert rows["ours"]["disk_bytes"] < rows["ours"]["disk_apparent_bytes"]
    assert rows["ours"]["dense_recall_at_10"] >= 0.99 and rows["ours-int8"]["dense_recall_at_10"] >= 0.99
    for name, r in rows.items():
        assert r["disk_bytes"] > 0, name


def test_gpu_sweep_code_path_runs_on_the_cpu(tmp_path):
    """The GPU part cannot run here; its code runs on the CPU (fp32/bf16) so it cannot rot unseen."""
    from benchmarks.bench_embeddings import _gpu, make_inputs

    paths, texts = make_inputs(2, 2, tmp_path)
    out = _gpu("ViT-B-32", paths, texts, (1, 2), 2, 2, 1, device="cpu")
    assert set(out["batched"]) == {"ours-fp32", "ours-bf16", "raw-fp32", "raw-bf16"}
    assert all(v > 0 for c in out["batched"].values() for kind in c.values() for v in kind.values())


def test_writes_measure_every_contestant_one_at_a_time_and_in_bulk(smoke):
    writes = smoke[0]["sections"]["writes"]
    quiet = writes["one_at_a_time"]["quiet"]
    assert set(quiet) == {"ours-add", "ours-add_embedded", "ours-langchain", "ours-llamaindex", "qdrant-edge-raw", "langchain-faiss-1t",
                          "langchain-faiss", "llamaindex-faiss-1t", "llamaindex-faiss"}
    assert all(r["median_ms"] > 0 and r["vs_langchain_faiss_1t"] > 0 for r in quiet.values())
    assert [b["vectors"] for b in writes["bulk"]] == ["clustered", "isotropic"]
    for bulk in writes["bulk"]:
        assert bulk["n"] == 500 and bulk["ours_points_per_s"] > 0
        assert bulk["langchain_faiss_bm25_points_per_s"] > 0 and bulk["llamaindex_faiss_bm25_points_per_s"] > 0
