"""The fine-tuning benchmark runs end to end (``--smoke``: the tiny model, batch 4, one step each)
and writes its table; the committed results hold every configuration it measures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.timeout(600)


def test_smoke_run_writes_every_configuration(tmp_path: Path) -> None:
    from mm_rag_plugin.finetune.train import native_bf16

    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.bench_finetune", "--smoke", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=600, env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    res = json.loads((tmp_path / "results.json").read_text())
    configs = {(r["train"], r["precision"]) for r in res["rows"]}
    precisions = {"fp32", "bf16"} if native_bf16("cpu") else {"fp32"}
    assert configs == {(t, p) for t in ("last", "all") for p in precisions}
    for r in res["rows"]:
        assert r["pairs_per_s"] > 0 and r["batch"] == 4 and r["steps"] == 1
        assert (r["trainable_params"] < r["total_params"]) == (r["train"] == "last")
    md = (tmp_path / "results.md").read_text()
    assert "--smoke" in md and "| projections + last block (default) |" in md and "| everything |" in md


def test_the_committed_results_are_a_full_run() -> None:
    res = json.loads((ROOT / "benchmarks" / "results" / "finetune" / "results.json").read_text())
    assert res["model"] == "ViT-B-32" and "--smoke" not in res["command"]
    assert {r["train"] for r in res["rows"]} == {"last", "all"} and all(r["batch"] == 32 for r in res["rows"])
