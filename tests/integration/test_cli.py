"""The mm-rag CLI and the MultiModalRAG facade, end to end on the bundled samples."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mm_rag_plugin import MultiModalRAG

from .._cli import run

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"






@pytest.fixture(scope="module")
def samples_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    dst = tmp_path_factory.mktemp("samples") / "samples"
    shutil.copytree(SAMPLES, dst)
    return dst


def test_ingest_query_ask_info_eval(model_env: str, samples_copy: Path, tmp_path: Path) -> None:
    index = str(tmp_path / "ix")
    code, out, err = run("ingest", str(samples_copy), "--index", index, "-q")
    assert code == 0, err
    assert "files read        4" in out and "images            4" in out and "errors            0" in out
    assert "duplicate images  1" in out  # the Markdown page links the same PNG that is in images/

    code, out, _ = run("ingest", str(samples_copy), "--index", index, "-q")  # idempotent: nothing read again
    assert code == 0
    assert "files read        0" in out and "files unchanged   4" in out and "added to index    0" in out
    assert "(qdrant-edge, 8 items," in out

    code, out, _ = run("query", "fault E-217 grid voltage", "--index", index, "--k", "3", "--json")
    hits = json.loads(out)
    assert code == 0 and len(hits) == 3
    assert {h["kind"] for h in hits} == {"text", "image"}
    shot = next(h for h in hits if h["kind"] == "image")
    assert shot["image_path"].endswith("inverter_fault.png") and "bm25" in shot["found_by"]

    code, out, _ = run("query", "--image", str(samples_copy / "inverter_fault.png"), "--index", index, "--json")
    assert any(h.get("image_path", "").endswith("inverter_fault.png") and h["found_by"]["dense_image"]["rank"] == 1 for h in json.loads(out))

    code, out, _ = run("ask", "What does fault E-217 mean?", "--index", index)
    assert code == 0 and "[extractive answer: no generator was used" in out
    assert "inverter_fault.png" in out and "sources:" in out

    code, out, _ = run("info", "--index", index)
    assert "items         8" in out and model_env in out and "keyword_only  False" in out

    qrels = tmp_path / "q.jsonl"
    qrels.write_text(
        json.dumps({"query": "fault E-217 grid voltage", "relevant": ["inverter_fault.png", "maintenance.md"]})
        + "\n"
        + json.dumps({"query": "monthly solar output chart", "relevant": ["solar_report.pdf"]})
        + "\n"
    )
    code, out, _ = run("eval", str(qrels), "--index", index, "--k", "3", "--json")
    res = json.loads(out)["results"]
    assert code == 0 and set(res) == {"dense", "bm25", "fused"}
    assert all(0.0 <= v <= 1.0 for row in res.values() for v in row.values())
    assert res["fused"]["recall@3"] == 1.0


def test_quantized_query_returns_the_exact_ranking(
    model_env: str, samples_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = str(tmp_path / "ix")
    assert run("ingest", str(samples_copy), "--index", index, "-q")[0] == 0
    plain = json.loads(run("query", "inverter fault screen", "--index", index, "--k", "5", "--json")[1])
    assert len(plain) == 5
    for q in ("int8", "binary"):  # quantization is chosen when an index is built
        qindex = str(tmp_path / f"ix-{q}")
        code, _, err = run("ingest", str(samples_copy), "--index", qindex, "-q", "--quantization", q)
        assert code == 0, err
        code, out, err = run("query", "inverter fault screen", "--index", qindex, "--k", "5", "--json")
        assert code == 0, err
        assert [h["id"] for h in json.loads(out)] == [h["id"] for h in plain]  # 8 points: every one is rescored
    monkeypatch.setenv("MM_RAG_QUANTIZATION", "int4")
    code, _, err = run("query", "x", "--index", index)
    assert code == 1 and "int4" in err and "Traceback" not in err


def test_an_unloadable_model_is_an_error_with_the_fix_never_a_silent_fallback(
    samples_copy: Path, tiny_clip_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    # a NEW index with a model that cannot load: exit 3, the fix in one short message, nothing created
    monkeypatch.setenv("MM_RAG_MODEL", "local-dir:/no/such/model")
    new = tmp_path / "new"
    code, out, err = run("ingest", str(samples_copy), "--index", str(new), "-q")
    assert code == 3, err
    assert err.startswith("mm-rag ingest: error:") and "/no/such/model" in err and "--keyword-only" in err
    assert "Traceback" not in err and len(err) < 1500
    assert not new.exists()

    # --keyword-only: a keyword-only index, said so by ingest and info; keyword queries work
    kw = str(tmp_path / "kw")
    code, out, err = run("ingest", str(samples_copy), "--index", kw, "-q", "--keyword-only")
    assert code == 0, err
    assert "model: none: keyword-only" in out and "files read        4" in out
    code, out, _ = run("info", "--index", kw)
    assert code == 0 and "keyword_only  True" in out and "search        keyword-only" in out
    code, out, err = run("query", "FAULT E-217", "--index", kw, "--json")  # MM_RAG_MODEL is not needed here
    hits = json.loads(out)
    assert code == 0 and hits and set(hits[0]["found_by"]) == {"bm25"}
    assert any(h["source"].endswith(("maintenance.md", "inverter_fault.png")) for h in hits[:2])
    code, _, err = run("query", "--image", str(samples_copy / "inverter_fault.png"), "--index", kw)
    assert code == 1 and "needs the embedding model" in err and "Traceback" not in err
    code, _, err = run("query", "x", "--index", kw, "--model", f"local-dir:{tiny_clip_dir}")
    assert code == 1 and "keyword-only index" in err

    # an existing DENSE index whose model became unloadable: exit 3 naming its model, never keyword-only
    model = tmp_path / "model"
    shutil.copytree(tiny_clip_dir, model)
    dense = tmp_path / "dense"
    monkeypatch.setenv("MM_RAG_MODEL", f"local-dir:{model}")
    assert run("ingest", str(samples_copy), "--index", str(dense), "-q")[0] == 0
    manifest = (dense / "manifest.json").read_text()
    shutil.rmtree(model)
    monkeypatch.delenv("MM_RAG_MODEL")
    for argv in (("query", "fault E-217"), ("ask", "What does fault E-217 mean?"), ("ingest", str(samples_copy), "-q")):
        code, out, err = run(*argv, "--index", str(dense))
        assert code == 3, (argv, out, err)
        assert str(model.resolve()) in err and "--keyword-only" in err and "Traceback" not in err
        assert "note: keyword-only" not in err and not out
    assert (dense / "manifest.json").read_text() == manifest  # the index was not touched
    code, out, err = run("query", "FAULT E-217", "--index", str(dense), "--json", "--keyword-only")  # only when asked
    assert code == 0 and "note: keyword-only search, as asked" in err and str(model.resolve()) in err
    assert set(json.loads(out)[0]["found_by"]) == {"bm25"}
    code, out, _ = run("info", "--index", str(dense), "--keyword-only")
    assert code == 0 and "keyword_only  False" in out and str(model.resolve()) in out


def test_errors_are_one_line_and_exit_codes_mean_something(model_env: str, tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "broken.pdf").write_bytes(b"%PDF-1.4 garbage")
    code, out, err = run("ingest", str(bad), "--index", str(tmp_path / "ix"), "-q")
    assert code == 1 and "broken.pdf" in out and "nothing could be ingested" in err
    code, _, err = run("eval", str(tmp_path / "missing.jsonl"), "--index", str(tmp_path / "ix"))
    assert code == 1 and err.startswith("mm-rag eval: error:") and "Traceback" not in err
    code, _, err = run("eval", str(tmp_path / "missing.jsonl"), "--index", str(tmp_path / "ix"), "--verbose")
    assert code == 1 and "Traceback" in err


def test_one_bad_file_never_stops_the_batch(model_env: str, samples_copy: Path, tmp_path: Path, shared_data: Path) -> None:
    mixed = tmp_path / "mixed"
    shutil.copytree(samples_copy, mixed)
    shutil.copy(shared_data / "malformed_images" / "files" / "truncated_jpeg.jpg", mixed)
    shutil.copy(shared_data / "pdfs" / "malformed" / "plumber__empty.pdf", mixed)
    with MultiModalRAG(tmp_path / "ix", show_progress=False) as rag:
        summary = rag.ingest([mixed])
        assert summary.files == 4 and summary.ok
        failed = {Path(e.source).name for e in summary.errors}
        assert {"truncated_jpeg.jpg", "plumber__empty.pdf"} <= failed
        assert rag.info()["items"] == 8


def test_console_script_is_installed(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("mm-rag")
    out = subprocess.run([str(exe), "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.startswith("mm-rag ")
