"""The OCR quality benchmark runs end to end against the peers' current APIs (``--smoke``: 6 receipts,
two shared images, no PDFs).

Quality is not asserted here (the benchmark reports it); what is asserted is that every contestant
answers every query, that the table has every row and column, and that the report is written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(300)  # OCR of ~8 images per contestant: under a minute when idle


@pytest.fixture(scope="module")
def smoke(tmp_path_factory, shared_data) -> tuple[dict, Path]:
    out = tmp_path_factory.mktemp("bench_ocr")
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_ocr_quality", "--smoke", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=300,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads((out / "results.json").read_text()), out


def test_every_contestant_has_every_column(smoke):
    from benchmarks.bench_ocr_quality import COLUMNS, RECEIPT_TYPES, SYSTEMS

    res, _ = smoke
    assert set(res["systems"]) == set(SYSTEMS)
    assert res["columns"] == list(COLUMNS)
    for name, s in res["systems"].items():
        r = s["recall_at_1"]
        assert set(r) == set(COLUMNS), name
        assert r["pdf pages"] is None, name  # the smoke run renders no PDF
        for col in (*RECEIPT_TYPES, "receipts", "ocr images", "all"):
            assert r[col] is not None and 0.0 <= r[col] <= 1.0, (name, col)
        assert s["ingest_s"] > 0 and s["read_ocr_cpu_s"] > 0 and s["query_ms"] > 0, name
    assert res["systems"]["ours"]["errors"] == []
    # the second pass: the same receipts photographed, every contestant, and the gap
    assert set(res["camera"]["systems"]) == set(SYSTEMS) == set(res["gap"])
    for name, s in res["camera"]["systems"].items():
        for col in (*RECEIPT_TYPES, "receipts", "ocr images"):
            assert 0.0 <= s["recall_at_1"][col] <= 1.0, (name, col)
        assert 0.0 <= s["ocr_word_recall"]["per_set"]["camera/thermal"] <= 1.0, name
        clean = res["systems"][name]["recall_at_1"]
        assert res["gap"][name]["receipts"] == round(clean["receipts"] - s["recall_at_1"]["receipts"], 3)


def test_queries_and_answers_are_recorded(smoke):
    res, _ = smoke
    assert res["corpus"]["documents"] == {"receipts": 6, "ocr images": 2}
    queries = [json.loads(line) for line in (smoke[1] / "queries.jsonl").read_text().splitlines()]
    assert len(queries) == sum(res["corpus"]["queries"].values()) >= 6 * 6 + 2
    assert {q["type"] for q in queries} >= {"company", "total", "date", "company+total", "address", "number"}
    assert res["peer_ocr_parser_check"]["identical"] == len(res["peer_ocr_parser_check"]["checked"]) > 0
    assert res["git"]["commit"]


def test_report_has_the_table(smoke):
    from benchmarks.bench_ocr_quality import COLUMNS, SYSTEMS

    res, out = smoke
    md = (out / "results.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| recall@1 |"))
    for col in COLUMNS:
        assert f" {col}" in header, col
    for label in SYSTEMS.values():
        assert f"| {label} |" in md, label
    assert res["command"] in md and res["git"]["commit"] in md
    assert "| ours (mm-rag-plugin), camera/thermal |" in md and "| ours (mm-rag-plugin), gap |" in md
    docs = [json.loads(line) for line in (out / "documents.jsonl").read_text().splitlines()]
    assert sum(d["set"] == "camera/thermal" for d in docs) == 6
    docs = [d for d in docs if d["set"] != "camera/thermal"]
    assert len(docs) == 8 and all(d["ocr_users"] is not None and d["ocr_ours"] is not None for d in docs)
    assert sum("truth" in d for d in docs) == 6
