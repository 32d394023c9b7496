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
    assert set(res["sections"]) == {"embeddings", "retrieval", "ingestion", "storage"}
    md = (out / "results.md").read_text()
    for heading in ("## embeddings", "## retrieval", "## ingestion", "## storage"):
        assert heading in md
    assert (out / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_retrieval_measures_every_system(smoke):
    by_size = smoke[0]["sections"]["retrieval"]["by_size"]["300"]
    assert set(by_size) == {"ours", "ours-int8", "ours-binary", "qdrant-local", "llamaindex", "langchain"}
    for name, r in by_size.items():
        assert r["p50_ms"] > 0 and r["p95_ms"] >= r["p50_ms"], name
        assert r["queries"] >= 4, name


def test_embeddings_sweep_and_peers(smoke):
    e = smoke[0]["sections"]["embeddings"]
    assert set(e["per_item"]) == {"langchain", "llamaindex"}
    for name in ("ours", "raw"):
        for kind in ("images", "texts"):
            assert set(e["batched"][name][kind]) == {"1", "4"}
            assert all(v > 0 for v in e["batched"][name][kind].values())


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
