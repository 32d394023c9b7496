"""The mm-rag CLI and the MultiModalRAG facade, end to end on the bundled samples."""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from mm_rag_plugin import MultiModalRAG
from mm_rag_plugin.cli import main

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "samples"


def run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def model_env(tiny_clip_dir: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("MM_RAG_MODEL", f"local-dir:{tiny_clip_dir}")
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    return f"local-dir:{tiny_clip_dir}"


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

    code, out, _ = run("ingest", str(samples_copy), "--index", index, "-q")  # idempotent
    assert "added to index    0" in out and "already indexed   8" in out

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
    for q in ("int8", "binary"):
        code, out, err = run("query", "inverter fault screen", "--index", index, "--k", "5", "--json", "--quantization", q)
        assert code == 0, err
        assert [h["id"] for h in json.loads(out)] == [h["id"] for h in plain]  # 8 points: every one is rescored
    monkeypatch.setenv("MM_RAG_QUANTIZATION", "int4")
    code, _, err = run("query", "x", "--index", index)
    assert code == 1 and "int4" in err and "Traceback" not in err


def test_keyword_only_when_the_model_cannot_load(samples_copy: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MM_RAG_MODEL", "local-dir:/no/such/model")
    index = str(tmp_path / "kw")
    code, out, err = run("ingest", str(samples_copy), "--index", index, "-q")
    assert code == 0
    assert err.count("note: keyword-only search") == 1 and "MM_RAG_MODEL=local-dir:" in err  # once, with the fix
    assert len(err) < 500, "a plain note, not a traceback dump"
    assert "model: none: keyword-only" in out
    code, out, err = run("query", "FAULT E-217", "--index", index, "--json")
    top = json.loads(out)[0]
    assert set(top["found_by"]) == {"bm25"}
    code, _, err = run("query", "--image", str(samples_copy / "inverter_fault.png"), "--index", index)
    assert code == 1 and "needs the embedding model" in err and "Traceback" not in err


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
