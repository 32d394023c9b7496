"""``mm-rag`` frictions of issue 30: per-command --help, "did you mean", the model-load advice,
``ask`` listing only cited sources, ``eval`` reporting near-duplicate removal."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mm_rag_plugin.cli import main
from tests._cli import run

SRC = str(Path(__file__).resolve().parents[2] / "src")


def _help(command: str, capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as done:
        main([command, "--help"])
    assert done.value.code == 0
    out = capsys.readouterr().out
    return out[out.index("options:") : out.index("environment:")]  # the flags, not the shared epilog


def test_each_command_help_lists_only_its_own_flags(capsys) -> None:
    info = _help("info", capsys)
    assert "--json" in info and "--index" in info
    for flag in ("--quantization", "--precision", "--model", "--checkpoint", "training autocast"):
        assert flag not in info, flag
    verify = _help("verify", capsys)
    assert "--keyword-only" not in verify and "--model" not in verify
    query = _help("query", capsys)
    assert "--model" in query and "--quantization" not in query and "training autocast" not in query
    assert "--quantization" in _help("ingest", capsys)
    finetune = _help("finetune", capsys)
    assert "training autocast" in finetune and "--url" not in finetune and "--quantization" not in finetune
    assert "--no-dedupe" in _help("eval", capsys)
    with pytest.raises(SystemExit):
        main(["info", "--quantization", "int8"])
    assert "unrecognized arguments: --quantization int8" in capsys.readouterr().err


def test_a_misspelt_command_gets_a_suggestion(capsys) -> None:
    with pytest.raises(SystemExit) as done:
        main(["qurey", "solar"])
    assert done.value.code == 2
    assert "unknown command 'qurey' (did you mean 'query'?)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["zzzz"])
    assert "choose from ingest, query" in capsys.readouterr().err


def test_a_first_ingest_without_weights_names_the_cli_options(tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Notes\n\nSome text.\n")
    cache = tmp_path / "cache"  # empty: no weights anywhere, and the hub is not asked
    env = dict(os.environ, HF_HOME=str(cache), XDG_CACHE_HOME=str(cache), HF_HUB_OFFLINE="1",
               PYTHONPATH=SRC + os.pathsep + os.environ.get("PYTHONPATH", ""))
    for var in ("MM_RAG_MODEL", "MM_RAG_PRETRAINED", "MM_RAG_CHECKPOINT"):
        env.pop(var, None)
    r = subprocess.run([sys.executable, "-m", "mm_rag_plugin", "ingest", str(docs), "--index", str(tmp_path / "ix"), "-q"],
                       env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 3, r.stderr[-2000:]
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mm-rag ingest: error: could not load the model ("), r.stderr
    for option in ("--model local-dir:DIR", "--checkpoint FILE", "--keyword-only"):
        assert option in lines[0], option
    assert "OpenCLIPEmbedder(" not in lines[0] and "keyword_only=True" not in lines[0] and "chars>" not in lines[0]


def _keyword_index(tmp_path: Path, texts: dict[str, str]) -> str:
    docs = tmp_path / "docs"
    docs.mkdir()
    for name, text in texts.items():
        (docs / name).write_text(text)
    index = str(tmp_path / "ix")
    code, _, err = run("ingest", str(docs), "--index", index, "--keyword-only", "-q", "--workers", "0")
    assert code == 0, err
    return index


def test_ask_lists_only_the_sources_the_answer_cites(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    index = _keyword_index(tmp_path, {f"n{i}.md": f"# Note {i}\n\nThe harbour crane number {i} was inspected.\n" for i in range(6)})
    code, out, err = run("ask", "harbour crane inspected", "--index", index, "--keyword-only", "-k", "5")
    assert code == 0, err
    listed = out.split("\nsources:\n", 1)[1].splitlines()
    cited = sorted({int(n) for n in re.findall(r"^\[(\d)\] ", out, re.M)})
    assert [int(ln.split("]")[0].strip(" [")) for ln in listed] == cited == [1, 2, 3]  # 5 retrieved, 3 quoted
    code, out, err = run("ask", "harbour crane inspected", "--index", index, "--keyword-only", "-k", "5", "--json")
    assert len(json.loads(out)["sources"]) == 5  # --json still lists everything retrieved


def test_eval_reports_what_near_duplicate_removal_dropped(tmp_path: Path) -> None:
    index = _keyword_index(tmp_path, {
        "a.md": "Zebra crossing repainted on Monday.",
        "b.md": "zebra  crossing repainted on monday.",  # the same text but for case and spacing: one is dropped
        "c.md": "The zebra at the zoo crossed the road.",
    })
    qrels = tmp_path / "q.jsonl"
    qrels.write_text(json.dumps({"query": "zebra crossing repainted", "relevant": ["a.md"]}) + "\n")
    code, out, err = run("eval", str(qrels), "--index", index, "--keyword-only", "--k", "3", "--json")
    assert code == 0, err
    report = json.loads(out)
    assert report["dedupe"] is True and report["near_duplicates_dropped"] == {"bm25": 1}
    code, out, err = run("eval", str(qrels), "--index", index, "--keyword-only", "--k", "3")
    assert "near-duplicate removal dropped 1 hits from the top 3 (bm25 1); --no-dedupe keeps them" in out
    code, out, err = run("eval", str(qrels), "--index", index, "--keyword-only", "--k", "3", "--no-dedupe", "--json")
    report = json.loads(out)
    assert code == 0 and report["dedupe"] is False and "near_duplicates_dropped" not in report
