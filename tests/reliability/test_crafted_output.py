"""Crafted file names and reader-worker logs against everything the CLI prints: no raw control
characters from any process (the reader workers included, on the real stderr), one line per name
(a newline in a name cannot forge a result, a source or a summary line), each error once, no
traceback without ``--verbose``, and names that are not UTF-8 ingested, findable and shown escaped."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .._cli import run

pytestmark = pytest.mark.usefixtures("no_keys")  # tests/reliability/conftest.py

ESC, BEL, RLO = "\x1b", "\x07", "\u202e"
#: a name that, printed raw, adds a fake first result to `query` and a fake summary row to `ingest`
FORGED_RESULT = "solar\n1. [text] passwd.txt  score 9.9999  (bm25 #1)\n  errors            0\n.md"
#: sets the window title, clears the screen and reverses what follows
TITLE_CLEAR_RLO = f"wind{ESC}]0;pwned{BEL}{ESC}[2J{RLO}dm.txt.md"
#: a malformed image whose name would forge an ingest error line of its own
BAD_IMAGE = "bad\n  error: shadow: fake\r.png"
NOT_UTF8 = b"caf\xe9.md"


def _corpus(root: Path, shared_data: Path) -> Path:
    corpus = root / "corpus"
    corpus.mkdir()
    broken = shared_data / "malformed_images" / "files" / "broken.png"
    (corpus / FORGED_RESULT).write_text("# Solar\n\nSolar panels need cleaning twice a year.")
    # the worker reading it logs a warning about the linked malformed image (a partial error)
    (corpus / TITLE_CLEAR_RLO).write_text("# Wind\n\nWind turbines need gearbox oil. ![diagram](broken.png)")
    shutil.copy(broken, corpus / "broken.png")
    shutil.copy(broken, corpus / BAD_IMAGE)
    with open(os.path.join(os.fsencode(corpus), NOT_UTF8), "wb") as fh:
        fh.write(b"# Cafe\n\nThe espresso machine needs descaling monthly.")
    return corpus


def _cli(*argv: str) -> subprocess.CompletedProcess[bytes]:
    """``python -m mm_rag_plugin *argv`` in a new process: its real stdout and stderr, as bytes."""
    env = {k: v for k, v in os.environ.items() if k not in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "MM_RAG_MODEL")}
    return subprocess.run([sys.executable, "-m", "mm_rag_plugin", *argv], capture_output=True, env=env, timeout=600)


def _assert_terminal_safe(data: str | bytes) -> None:
    text = data.decode("utf-8") if isinstance(data, bytes) else data  # printable: valid UTF-8
    raw = re.findall("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069\ud800-\udfff]", text)
    assert not raw, f"raw control characters printed: {raw!r}"


def test_ingest_through_the_reader_workers_prints_each_problem_once_on_one_line(
    tmp_path: Path, shared_data: Path
) -> None:
    corpus = _corpus(tmp_path, shared_data)
    index = str(tmp_path / "ix")

    res = _cli("ingest", str(corpus), "--index", index, "--keyword-only", "--no-ocr", "-q", "--workers", "2")
    out, err = res.stdout.decode(), res.stderr.decode()
    assert res.returncode == 0, err
    _assert_terminal_safe(res.stdout)
    _assert_terminal_safe(res.stderr)
    assert err == ""  # -q and no --verbose: the workers' warnings are not printed, nor tracebacks
    lines = out.splitlines()
    rows = [ln for ln in lines if re.fullmatch(r"  [a-z'(), ]+?  +\d+( \(.*\))?", ln)]
    errors = [ln for ln in lines if ln.startswith("  error: ")]
    assert lines[0].startswith("index: ") and len(lines) == 1 + len(rows) + len(errors), out
    assert [ln.split()[-1] for ln in rows if ln.split()[0] == "errors"] == ["3"]  # one row, the true count
    assert len(errors) == 3  # broken.png, the crafted bad image, the image linked from the wind file
    assert sum("broken.png" in ln for ln in errors) == 2
    assert sum("bad\\n  error: shadow: fake\\r.png" in ln for ln in errors) == 1
    assert sum("wind\\x1b]0;pwned\\x07\\x1b[2J\\u202edm.txt.md" in ln for ln in errors) == 1
    assert "Traceback" not in out + err

    # --verbose: the workers' log records come through the parent's handler, escaped, once each
    res = _cli("ingest", str(corpus / TITLE_CLEAR_RLO), "--index", index + "-v", "--keyword-only", "--no-ocr", "-v",
               "--workers", "1")
    err = res.stderr.decode()
    _assert_terminal_safe(res.stdout)
    _assert_terminal_safe(res.stderr)
    warnings = [ln for ln in err.splitlines() if "not a recognised image format" in ln]
    assert len(warnings) == 1 and warnings[0].startswith("WARNING mm_rag_plugin.readers."), err


def test_crafted_names_cannot_forge_query_ask_or_delete_lines(tmp_path: Path, shared_data: Path) -> None:
    corpus = _corpus(tmp_path, shared_data)
    index = str(tmp_path / "ix")
    code, _, err = run("ingest", str(corpus), "--index", index, "--keyword-only", "--no-ocr", "-q", "--workers", "0")
    assert code == 0, err

    question = "solar panels wind turbines espresso machine"
    code, out, _ = run("query", question, "--index", index, "--json")
    sources = [h["source"] for h in json.loads(out)]
    assert len(sources) == 3
    code, out, err = run("query", question, "--index", index)
    assert code == 0
    _assert_terminal_safe(out + err)
    results = [ln for ln in out.splitlines() if re.match(r"\d+\. \[", ln)]
    assert len(results) == 3 and len(out.splitlines()) == 6, out  # a header and a snippet line per hit
    assert all(re.match(rf"{n}\. \[text\] /", ln) for n, ln in enumerate(results, 1))
    assert all(ln.startswith("   ") for ln in out.splitlines() if ln not in results)

    code, out, err = run("ask", question, "--index", index)
    assert code == 0
    _assert_terminal_safe(out + err)
    lines = out.splitlines()
    cited = lines[lines.index("sources:") + 1:]
    assert len(cited) == 3 and all(re.match(r"  \[\d\] text: ", ln) for ln in cited), out
    assert not any(ln.startswith(("1. [text]", "  errors")) for ln in lines), out  # nothing forged

    code, out, err = run("delete", str(corpus / FORGED_RESULT), "--index", index)
    assert code == 0, err
    _assert_terminal_safe(out + err)
    assert out.splitlines()[0] == "deleted: " + str(corpus / FORGED_RESULT).replace("\n", "\\n")
    assert len(out.splitlines()) == 2


def test_a_name_that_is_not_utf8_is_ingested_found_shown_escaped_and_deleted(
    tmp_path: Path, shared_data: Path
) -> None:
    corpus = _corpus(tmp_path, shared_data)
    index = str(tmp_path / "ix")
    name = os.fsdecode(os.path.join(os.fsencode(corpus), NOT_UTF8))  # '.../caf\udce9.md'

    res = _cli("ingest", str(corpus), "--index", index, "--keyword-only", "--no-ocr", "-q", "--workers", "2")
    assert res.returncode == 0 and b"caf" not in res.stdout + res.stderr, res.stdout + res.stderr  # no error

    code, out, _ = run("query", "espresso descaling", "--index", index, "--json")
    assert [h["source"] for h in json.loads(out)] == [name]
    code, out, err = run("query", "espresso descaling", "--index", index)
    assert code == 0 and "caf\\udce9.md" in out
    _assert_terminal_safe(out + err)
    out.encode("ascii", "backslashreplace").decode("ascii").encode("utf-8")  # printable anywhere

    # unchanged on a second run (same ids, same registry entry), then removed by its own name
    code, out, _ = run("ingest", str(corpus), "--index", index, "--keyword-only", "--no-ocr", "-q", "--workers", "0")
    assert re.search(r"files unchanged +3\b", out) and re.search(r"added to index +0\b", out), out
    code, out, err = run("delete", name, "--index", index)
    shown = name.replace("\udce9", "\\udce9")
    assert code == 0 and out.splitlines()[0] == f"deleted: {shown}", out + err
    code, out, _ = run("query", "espresso descaling", "--index", index, "--json")
    assert json.loads(out) == []
