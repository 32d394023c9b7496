"""What a user of the ``mm-rag`` command meets first: short options, usage errors, pipes, ``--help``.

Everything here runs without a model: a keyword-only index, and a dense index whose manifest names a
model that is never loaded (its vectors are written directly).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mm_rag_plugin import MultiModalIndex, TextChunk

from .._cli import run

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "mm_rag_plugin"

WORDS = ["inverter", "solar", "panel", "battery", "grid", "voltage", "fault", "meter", "cable", "roof"]


def _env(**extra: str) -> dict[str, str]:
    """The environment of a child process: a model that cannot load, no hub, no Gemini key."""
    env = {k: v for k, v in os.environ.items() if k not in ("GOOGLE_API_KEY", "GEMINI_API_KEY")}
    env.update(MM_RAG_MODEL="local-dir:/no/such/model", HF_HUB_OFFLINE="1", **extra)
    env.pop("PYTHONUNBUFFERED", None)  # stdout is block-buffered, as in a user's pipe
    return env


def _python(code: str, *args: str, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args], cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=120, **kwargs
    )


@pytest.fixture(scope="module")
def keyword_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A keyword-only index of 30 Markdown files, each long enough to make --json output large."""
    root = tmp_path_factory.mktemp("kw")
    docs = root / "docs"
    docs.mkdir()
    for i in range(30):
        words = [WORDS[(i + j) % len(WORDS)] for j in range(400)]
        (docs / f"note_{i:02d}.md").write_text(f"# Note {i}\n\nThe inverter note {i}. " + " ".join(words) + "\n")
    index = root / "ix"
    code, out, err = run("ingest", str(docs), "--index", str(index), "--keyword-only", "--no-ocr", "-q", "--workers", "1")
    assert code == 0, out + err
    return index


class _NamedEmbedder:
    """Stands for ViT-B-32: only its identity is recorded; nothing is ever embedded with it."""

    model_name = "ViT-B-32"
    pretrained = "laion2b_s34b_b79k"
    dim = 8

    def embed_texts(self, texts):  # pragma: no cover - never called
        raise AssertionError("the model must not be used")

    embed_images = embed_query = embed_texts


@pytest.fixture(scope="module")
def dense_index(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("dense") / "ix"
    rng = np.random.default_rng(0)
    chunks = [TextChunk(id=f"c{i}", text=f"chunk {i} about the {WORDS[i]}", source=f"doc{i}.md") for i in range(3)]
    vectors = rng.normal(size=(3, 8)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    with MultiModalIndex(path, embedder=_NamedEmbedder(), show_progress=False) as index:
        assert index.add_embedded(chunks, vectors) == 3
    return path


# ---------------------------------------------------------------------------------------- -k
def test_k_is_a_short_option_of_query_ask_and_eval(keyword_index: Path, tmp_path: Path) -> None:
    ix = ("--index", str(keyword_index), "--keyword-only")
    for option in ("-k", "--k", "--top-k"):
        code, out, err = run("query", "inverter", *ix, option, "3", "--json")
        assert code == 0, err
        assert len(json.loads(out)) == 3
    code, out, err = run("query", "inverter", *ix, "-k2", "--json")  # the attached short form too
    assert code == 0 and len(json.loads(out)) == 2, err

    code, out, err = run("ask", "What does the inverter note say?", *ix, "-k", "2", "--json")
    assert code == 0, err
    assert len(json.loads(out)["sources"]) == 2

    qrels = tmp_path / "q.jsonl"
    qrels.write_text(json.dumps({"query": "inverter note 3", "relevant": ["note_03.md"]}) + "\n")
    code, out, err = run("eval", str(qrels), *ix, "-k", "4", "--json")
    assert code == 0, err
    res = json.loads(out)
    assert res["k"] == 4 and "recall@4" in res["results"]["bm25"]


# ---------------------------------------------------------------------------------------- info
_RUN_AND_REPORT_IMPORTS = """
import json, sys
from mm_rag_plugin.cli import main
code = main(sys.argv[1:])
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"torch", "open_clip", "torchvision"})
print(json.dumps({"code": code, "heavy": heavy}), file=sys.stderr)
"""


def test_info_reads_the_manifest_and_never_loads_the_model(dense_index: Path) -> None:
    # $MM_RAG_MODEL names a model that cannot load, and the index's own (ViT-B-32) is not here
    # either: info answers all the same, from the index and its manifest
    out = _python(_RUN_AND_REPORT_IMPORTS, "info", "--index", str(dense_index), "--json")
    report = json.loads(out.stderr.strip().splitlines()[-1])
    assert report == {"code": 0, "heavy": []}, out.stderr
    info = json.loads(out.stdout)
    assert info["items"] == 3 and info["texts"] == 3 and info["images"] == 0
    assert info["model"] == "ViT-B-32 (laion2b_s34b_b79k), 8-d" and info["dim"] == 8
    assert info["model_identity"]["name"] == "ViT-B-32"
    assert info["keyword_only"] is False and info["search"] == "dense + keyword"
    assert info["index_dir"] == str(dense_index)

    out = _python(_RUN_AND_REPORT_IMPORTS, "info", "--index", str(dense_index))  # the plain table too
    assert json.loads(out.stderr.strip().splitlines()[-1]) == {"code": 0, "heavy": []}, out.stderr
    assert "items         3" in out.stdout and "ViT-B-32 (laion2b_s34b_b79k)" in out.stdout


def test_info_json_of_a_keyword_only_index(keyword_index: Path) -> None:
    code, out, err = run("info", "--index", str(keyword_index), "--json")
    assert code == 0, err
    info = json.loads(out)
    assert info["keyword_only"] is True and info["model"] is None and info["search"] == "keyword-only"
    assert info["items"] == info["texts"] > 0


def test_info_of_a_missing_index_is_an_error_naming_it(tmp_path: Path) -> None:
    code, out, err = run("info", "--index", str(tmp_path / "nothing"), "--json")
    assert code == 1 and not out and "nothing" in err and "Traceback" not in err
    assert not (tmp_path / "nothing").exists()


# ---------------------------------------------------------------------------------------- argument errors
_BAD_ARGS = [
    ("query", ["query", "inverter", "--bogus"], "unrecognized arguments: --bogus"),
    ("query", ["query"], "give a text query"),
    ("query", ["query", "x", "-k", "0"], "-k/--k/--top-k"),
    ("ask", ["ask", "why?", "-k", "many"], "not a whole number"),
    ("ask", ["ask"], "the following arguments are required: question"),
    ("eval", ["eval", "q.jsonl", "--top-k", "-3"], "--top-k"),
    ("info", ["info", "--jsn"], "unrecognized arguments: --jsn"),
    ("ingest", ["ingest", "docs", "--timeout", "-1"], "--timeout"),
    ("ingest", ["ingest", "docs", "--quantization", "int4"], "invalid choice"),
    ("copy", ["copy"], "one of the arguments --to --to-path is required"),
]

_PARSE_ALL = """
import contextlib, io, json, sys
from mm_rag_plugin.cli import main
results = []
for argv in json.loads(sys.argv[1]):
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:
            code = exc.code
    results.append({"code": code, "stderr": err.getvalue()})
heavy = sorted({m.split(".")[0] for m in sys.modules} & {"torch", "open_clip", "torchvision", "qdrant_edge"})
print(json.dumps({"results": results, "heavy": heavy}))
"""


def test_argument_errors_exit_2_with_the_commands_usage_before_anything_loads(tmp_path: Path) -> None:
    out = _python(_PARSE_ALL, json.dumps([argv for _, argv, _ in _BAD_ARGS]))
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["heavy"] == [], "an argument error must not load the model or open an index"
    for (command, argv, message), res in zip(_BAD_ARGS, report["results"], strict=True):
        assert res["code"] == 2, (argv, res)
        err = res["stderr"]
        assert err.startswith(f"usage: mm-rag {command} "), (argv, err)  # the command's usage, not the top level's
        assert f"mm-rag {command}: error:" in err and message in err, (argv, err)
        assert "Traceback" not in err
    assert not (ROOT / "docs").exists() and not (ROOT / ".mm_rag").exists()


def test_no_command_is_a_top_level_usage_error() -> None:
    out = subprocess.run([sys.executable, "-m", "mm_rag_plugin"], env=_env(), capture_output=True, text=True, timeout=60)
    assert out.returncode == 2 and out.stderr.startswith("usage: mm-rag ") and "COMMAND" in out.stderr


# ---------------------------------------------------------------------------------------- pipes
def _closed_stdout(argv: list[str]) -> subprocess.CompletedProcess[str]:
    """Run ``python -m mm_rag_plugin *argv`` with its stdout a pipe nobody reads (closed at once)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "mm_rag_plugin", *argv], env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # before the child writes anything: every write to stdout fails with EPIPE
    err = proc.stderr.read()
    proc.wait(timeout=120)
    return subprocess.CompletedProcess(proc.args, proc.returncode, "", err)


def test_a_closed_pipe_ends_the_command_quietly(keyword_index: Path) -> None:
    big = ["query", "inverter note", "--index", str(keyword_index), "--keyword-only", "--k", "30", "--json"]
    code, out, _ = run(*big)
    assert code == 0 and len(out) > 2 * 8192  # more than stdout's buffer: a write fails, not only the flush
    small = ["query", "inverter", "--index", str(keyword_index), "--keyword-only", "--k", "1"]  # fails at the flush
    for argv in (big, small, ["--help"], ["info", "--index", str(keyword_index)]):
        res = _closed_stdout(argv)
        assert res.stderr == "", (argv, res.stderr)  # no traceback, no "Exception ignored ... BrokenPipeError"
        assert res.returncode == 1, argv


def test_head_cuts_the_output_without_a_traceback(keyword_index: Path) -> None:
    exe = f"{sys.executable} -m mm_rag_plugin"
    cmd = f"{exe} query 'inverter note' --index {keyword_index} --keyword-only --k 30 --json | head -c1"
    out = subprocess.run(["bash", "-c", cmd], env=_env(), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0 and out.stdout == "[" and out.stderr == "", out.stderr


# ---------------------------------------------------------------------------------------- python -m
def test_python_dash_m_is_the_mm_rag_command(tmp_path: Path) -> None:
    exe = Path(sys.executable).with_name("mm-rag")
    for argv in (["--version"], ["info", "--index", str(tmp_path / "none")], ["query", "--bogus"]):
        a = subprocess.run([sys.executable, "-m", "mm_rag_plugin", *argv], env=_env(), capture_output=True, text=True, timeout=60)
        b = subprocess.run([str(exe), *argv], env=_env(), capture_output=True, text=True, timeout=60)
        assert (a.returncode, a.stdout, a.stderr) == (b.returncode, b.stdout, b.stderr), argv
    assert a.returncode == 2 and "usage: mm-rag query" in a.stderr


# ---------------------------------------------------------------------------------------- --help
#: Variables read in the package that the CLI does not depend on (it keeps images in the index folder).
_NOT_FOR_THE_CLI = {"MM_RAG_BLOB_DIR", "XDG_CACHE_HOME"}


def _environment_variables_read() -> set[str]:
    names: set[str] = set()
    for path in SRC.rglob("*.py"):
        text = path.read_text()
        names |= set(re.findall(r"\b(?:environ|env)(?:\.get)?[\(\[]\s*\"([A-Z][A-Z0-9_]+)\"", text))
        names |= set(re.findall(r"^ENV_[A-Z_]+\s*=\s*\"([A-Z][A-Z0-9_]+)\"", text, re.M))
        for group in re.findall(r"^_?[A-Z_]*VARS\s*=\s*\(([^)]*)\)", text, re.M):
            names |= set(re.findall(r"\"([A-Z][A-Z0-9_]+)\"", group))
    return names - _NOT_FOR_THE_CLI


def test_help_names_every_environment_variable_the_cli_reads() -> None:
    names = _environment_variables_read()
    assert {"MM_RAG_MODEL", "MM_RAG_INDEX", "GOOGLE_API_KEY", "GEMINI_API_KEY", "QDRANT_API_KEY"} <= names  # the scan works
    for argv in (["--help"], ["query", "--help"], ["ingest", "--help"]):
        out = subprocess.run([sys.executable, "-m", "mm_rag_plugin", *argv], env=_env(), capture_output=True, text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert "environment:" in out.stdout
        missing = sorted(n for n in names if n not in out.stdout)
        assert not missing, f"mm-rag {' '.join(argv)} does not name {missing}"


def test_progress_bars_only_on_a_terminal(tmp_path: Path) -> None:
    """Piped or logged, ``mm-rag ingest`` writes no progress bars (their carriage returns and cursor
    moves would litter the log); on a terminal it shows them, unless ``--quiet``."""
    import fcntl
    import pty
    import struct
    import termios

    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# Inverter\n\nThe inverter reports fault E-217 when the grid voltage is high.\n")
    argv = [sys.executable, "-m", "mm_rag_plugin", "ingest", str(docs), "--keyword-only"]

    piped = subprocess.run([*argv, "--index", str(tmp_path / "piped")], env=_env(), capture_output=True, text=True, timeout=120)
    assert piped.returncode == 0, piped.stderr
    assert "reading" not in piped.stderr and "\r" not in piped.stderr and "\x1b[" not in piped.stderr

    def on_terminal(*extra: str) -> str:
        main_fd, term_fd = pty.openpty()
        fcntl.ioctl(term_fd, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # a 100-column terminal
        proc = subprocess.Popen([*argv, *extra], env=_env(), stdout=subprocess.DEVNULL, stderr=term_fd)
        os.close(term_fd)
        seen = b""
        while True:
            try:
                block = os.read(main_fd, 4096)
            except OSError:  # the terminal closed: the command ended
                break
            if not block:
                break
            seen += block
        os.close(main_fd)
        assert proc.wait(timeout=120) == 0, seen
        return seen.decode("utf-8", "replace")

    assert "reading" in on_terminal("--index", str(tmp_path / "tty"))
    assert "reading" not in on_terminal("--index", str(tmp_path / "tty-quiet"), "--quiet")
