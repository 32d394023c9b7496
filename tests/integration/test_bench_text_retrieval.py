"""``python -m benchmarks.bench_text_retrieval`` end to end on a tiny generated BEIR folder, with
the tiny CLIP and a tiny sentence-transformers model: the metrics are right where the ranking is
known (BM25, whose queries share words only with their relevant documents) and the report is written."""

from __future__ import annotations

import json
import math

import pytest

pytest.importorskip("sentence_transformers")

from benchmarks import bench_text_retrieval as bench

from mm_rag_plugin.testing import make_tiny_text_model

SYLLABLES = ["ba", "ko", "ri", "mu", "te", "lo", "sa", "fi"]


def _word(doc: int, j: int) -> str:
    """A made-up word found in one document only."""
    return SYLLABLES[doc % 8] + SYLLABLES[(doc // 8) % 8] + SYLLABLES[j] + "n"


def _beir(folder):
    """30 documents of six words of their own (plus words all share); queries 0-6 use two words of
    document q; query 7 two words of document 7 and counts documents 7 and 29 as relevant."""
    docs = {f"doc{i}": " ".join(["the", "study", "of", *(_word(i, j) for j in range(6))]) for i in range(30)}
    (folder / "qrels").mkdir(parents=True)
    with (folder / "corpus.jsonl").open("w") as fh:
        for i, (doc_id, text) in enumerate(docs.items()):
            fh.write(json.dumps({"_id": doc_id, "title": f"paper {i}" if i % 2 else "", "text": text}) + "\n")
    queries = {f"q{i}": f"{_word(i, 1)} {_word(i, 4)}" for i in range(8)}
    queries["q-unjudged"] = "the study"
    with (folder / "queries.jsonl").open("w") as fh:
        for qid, text in queries.items():
            fh.write(json.dumps({"_id": qid, "text": text}) + "\n")
    lines = ["query-id\tcorpus-id\tscore", *(f"q{i}\tdoc{i}\t1" for i in range(8)), "q7\tdoc29\t2", "q3\tdoc5\t0"]
    (folder / "qrels" / "test.tsv").write_text("\n".join(lines) + "\n")
    return docs


@pytest.fixture(scope="module")
def text_model_dir(tmp_path_factory):
    folder = tmp_path_factory.mktemp("beir-st")
    words = [" ".join(_word(i, j) for j in range(6)) for i in range(30)]
    return make_tiny_text_model(folder, [*words, "the study of paper"], dim=32)


def test_command_scores_every_list_and_writes_the_report(tmp_path, tiny_clip_dir, text_model_dir, monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    data = tmp_path / "tinybeir"
    _beir(data)
    out = tmp_path / "res" / "tiny.json"
    code = bench.main([
        "--data", str(data), "--clip", f"local-dir:{tiny_clip_dir}", "--device", "cpu",
        "--text-model", str(text_model_dir), "--clip-windows", "2", "--out", str(out),
    ])
    assert code == 0, capsys.readouterr().err
    res = json.loads(out.read_text())
    assert res["documents"] == 30 and res["queries"] == 8  # the unjudged query and the 0 score are left out
    assert res["text_model"]["kind"] == "sentence-transformers" and res["text_model"]["dim"] == 32
    assert list(res["rows"]) == [
        "BM25", "CLIP dense", "text model", "fused", "fused + text model",
        "CLIP dense, windows", "fused, windows", "fused + text model, windows",
    ]
    # BM25 finds each query's document first; q7's second relevant document shares no word with it
    half = 1 / (1 + 1 / math.log2(3))  # nDCG@10 of one of two relevant documents, at rank 1
    bm25 = res["rows"]["BM25"]
    assert bm25["ndcg@10"] == pytest.approx((7 + half) / 8, abs=1e-4)
    assert bm25["recall@10"] == pytest.approx(7.5 / 8) and bm25["recall@100"] == pytest.approx(7.5 / 8)
    for name, row in res["rows"].items():
        assert 0.0 <= row["ndcg@10"] <= 1.0 and row["recall@10"] <= row["recall@100"], name
    # the dense lists rank all 30 documents: every relevant one is within the top 100
    assert res["rows"]["CLIP dense"]["recall@100"] == 1.0 and res["rows"]["text model"]["recall@100"] == 1.0
    assert res["indexes"]["one vector"]["documents"] == 30 and "windows (max 2)" in res["indexes"]
    assert res["command"].startswith("python -m benchmarks.bench_text_retrieval --data")
    md = out.with_suffix(".md").read_text()
    assert "| BM25 | 0.952 | 0.938 | 0.938 |" in md and "fused + text model, windows" in md


def test_bad_data_and_an_unreachable_download_are_one_line_errors(tmp_path, capsys):
    code = bench.main(["--data", str(tmp_path / "missing")])
    err = capsys.readouterr().err
    assert code == 2 and "missing: no such folder" in err and len(err.strip().splitlines()) == 1
    data = tmp_path / "bad"
    _beir(data)
    with (data / "qrels" / "test.tsv").open("a") as fh:
        fh.write("q1\tdoc1\n")
    assert bench.main(["--data", str(data)]) == 2
    err = capsys.readouterr().err
    assert "test.tsv: line 12 is not query-id, corpus-id, score" in err and len(err.strip().splitlines()) == 1
    # nothing listens on port 9 of 127.0.0.1: the download fails at once, and says where to get the data
    monkey_dest = tmp_path / "dl"
    with pytest.raises(bench.DataError, match=r"cannot download http://127\.0\.0\.1:9/scifact\.zip .*pass --data"):
        bench.download("scifact", monkey_dest, base_url="http://127.0.0.1:9/")
    assert not any(monkey_dest.iterdir())  # no partial file left behind
    code = bench.main(["--download", "scifact", "--mirror", "http://127.0.0.1:9/"])
    err = capsys.readouterr().err
    assert code == 2 and "cannot download" in err and len(err.strip().splitlines()) == 1
