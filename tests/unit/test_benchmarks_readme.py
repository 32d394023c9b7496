"""The README's performance figures come from one place: benchmarks/results/full/results.json.

The section between the ``benchmarks:begin`` / ``benchmarks:end`` markers is what
``benchmarks.readme`` renders from those results; a hand edit of a figure, or results committed
without regenerating the README, fails here.
"""

from __future__ import annotations

import json
import re

import pytest
from benchmarks import readme


def test_readme_performance_section_is_generated_from_the_stored_full_run():
    assert readme.update(check=True), "run: python -m benchmarks.readme"


def test_the_stored_full_run_is_one_complete_full_run_of_the_new_suite():
    res = json.loads(readme.FULL.read_text())
    assert res["mode"] == "full" and not res["errors"] and res["command"] == "python -m benchmarks.run --full"
    assert set(res["sections"]) == {"embeddings", "retrieval", "cold", "ingestion", "storage", "writes"}
    retrieval = res["sections"]["retrieval"]  # each peer's strongest setup, quiet and loaded, up to 200k
    assert max(retrieval["sizes"]) >= 200_000
    first = retrieval["by_size"][str(retrieval["sizes"][0])]
    assert {"ours", "langchain-faiss", "llamaindex-faiss", "qdrant-client", "langchain-qdrant",
            "llamaindex-qdrant", "langchain-inmemory", "llamaindex-simple"} <= set(first)
    assert all("loaded" in r for by in retrieval["by_size"].values() for r in by.values())
    cold = res["sections"]["cold"]  # cold start at 200k and 1M, the peers beside ours, quiet and loaded
    assert {200_000, 1_000_000} <= {int(n) for n in cold["by_size"]}
    for sr in cold["by_size"].values():
        assert set(sr["by_contestant"]) == {"ours", "ours-cli", "langchain-faiss", "llamaindex-faiss"}
        assert all(set(m) == {"quiet", "loaded"} for m in sr["by_contestant"].values())
    assert set(res["sections"]["ingestion"]["by_mode"]) == {"quiet", "loaded"}
    emb = res["sections"]["embeddings"]
    assert emb.get("quiet") and emb.get("loaded") and "chunks" in emb["text_sets"]
    storage = res["sections"]["storage"]["by_system"]  # quantization: what it saves and the recall it keeps
    assert all(storage[q]["dense_recall_at_10"] > 0 for q in ("ours", "ours-int8", "ours-binary"))
    assert {"qdrant-local", "langchain", "llamaindex"} <= set(storage)
    writes = res["sections"]["writes"]  # one add per call, quiet and loaded; bulk builds at 50k, both vector kinds
    assert set(writes["one_at_a_time"]) == {"quiet", "loaded"}
    assert {(b["n"], b["vectors"]) for b in writes["bulk"]} >= {(50_000, "clustered"), (50_000, "isotropic")}


def test_the_fine_tuning_table_is_generated_from_its_results():
    res = json.loads(readme.FINETUNE.read_text())
    block = readme.render_finetune(res)
    assert block in readme.README.read_text()
    for row in res["rows"]:
        assert f"{row['pairs_per_s']:.1f} pairs/s ({row['s_per_step']:.1f} s/step)" in block


def test_no_docstring_or_readme_prose_quotes_the_retired_ratios():
    text = readme.README.read_text()
    outside = text.split(readme.BEGIN)[0] + text.split(readme.END)[1]
    for claim in ("479x", "332x", "208x", "199x", "~2 KB per item"):
        assert claim not in outside, claim
    # speed ratios in prose outside the generated section would drift from the results
    assert not re.search(r"\b\d+(\.\d+)?x (faster|slower)\b", outside)


def test_the_model_load_table_is_generated_from_a_complete_run():
    res = json.loads(readme.MODEL_LOAD.read_text())
    assert readme.render_model_load(res) in readme.README.read_text()
    assert res["rounds"] >= 3 and res["load"]  # interleaved rounds, quiet and under load
    for m in res["models"].values():
        by = m["by_contestant"]
        assert set(by) == {"ours", "open_clip", "langchain", "ours-cli"}
        assert all(set(v) == {"quiet", "loaded"} for v in by.values())


def test_a_rerun_replaces_its_sections_of_the_full_run_and_says_so(tmp_path, monkeypatch):
    from benchmarks import run

    stored = json.loads(readme.FULL.read_text())
    folder = tmp_path / "full"
    folder.mkdir()
    (folder / "results.json").write_text(json.dumps(stored))
    monkeypatch.setattr(run, "RESULTS", tmp_path)
    monkeypatch.setattr(run, "plot", lambda *a: None)
    monkeypatch.setattr(run, "commit", lambda: "abc1234")
    monkeypatch.setattr(run, "machine", lambda: {**stored["machine"], "cpu": "Other CPU"})
    new = {**stored["sections"]["ingestion"], "marker": 1}
    monkeypatch.setattr(run, "run_section", lambda name, mode, sizes: new)
    regenerated = []
    monkeypatch.setattr(readme, "update", lambda: regenerated.append(True))
    assert run.main(["--full", "--only", "ingestion", "--rerun"]) == 0
    got = json.loads((folder / "results.json").read_text())
    assert got["sections"]["ingestion"] == new  # replaced
    assert {k: v for k, v in got["sections"].items() if k != "ingestion"} == {
        k: v for k, v in stored["sections"].items() if k != "ingestion"
    }  # the others kept as measured
    assert got["command"] == stored["command"] and got["commit"] == stored["commit"]
    assert got["reruns"]["ingestion"]["commit"] == "abc1234"
    assert "--rerun" in got["reruns"]["ingestion"]["command"] and regenerated
    note = "Section `ingestion` measured again"
    assert f"{note} " in (folder / "results.md").read_text() and "at `abc1234` on Other CPU, " in (folder / "results.md").read_text()
    assert readme.render(got).count(note) == 1  # once, above the summary


def test_a_rerun_needs_a_full_run_and_some_sections(capsys):
    from benchmarks import run

    for argv in (["--quick", "--only", "ingestion", "--rerun"], ["--full", "--rerun"]):
        with pytest.raises(SystemExit):
            run.main(argv)
        assert "--rerun" in capsys.readouterr().err
