"""Damage every file of an embedded index, one at a time, four ways; every CLI command then either
works (right counts and answers) or fails with exit code 1 and ONE line on stderr naming a path in
the index folder: never a traceback, a hang, a crash by signal, or a silently wrong count.

The pristine index (2 Markdown files, one image small enough to stay in place, one large enough to
be downscaled into ``blobs/``) is built once per session; its files are discovered when the tests
are collected. Sampling: ``payload_index/`` holds the same set of files for every indexed field
(kind, page, sources, file_sha); only the ``kind`` field's files (and the folder's config.json)
are damaged, since the others have the same format, and of the null index only ``has_values/``
(``is_null/`` has the same two files). Every other file is damaged, WAL included.

Each (file, damage) case runs ``info``, ``query``, ``verify`` and ``ingest`` (in that order) on its
own copy; each command runs in a child process forked from one driver process (imports paid once),
killed after a timeout, so a crash by signal or a hang is seen as such.
"""

from __future__ import annotations

import atexit
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest

TIMEOUT_S = 20
DAMAGES = ("truncate", "garble", "zero", "delete")
COMMANDS = ("info", "query", "verify", "ingest")
EXPECT_ITEMS, EXPECT_TEXTS, EXPECT_IMAGES = 4, 2, 2

#: Runs the commands of every case, each in a forked child; writes one JSON result per command.
_DRIVER = r"""
import io, json, os, signal, sys, time, traceback
from mm_rag_plugin.cli import main
import mm_rag_plugin.pipeline, mm_rag_plugin.retrievers.index, mm_rag_plugin.retrievers._edge  # noqa: F401
import qdrant_edge  # noqa: F401

plan = json.load(open(sys.argv[1]))
timeout = float(sys.argv[2])
results = {}
for case in plan:
    res = results[case["id"]] = {}
    for name, argv in case["commands"]:
        rfd, wfd = os.pipe()
        pid = os.fork()
        if pid == 0:
            os.close(rfd)
            out, err = io.StringIO(), io.StringIO()
            try:
                code = main(argv, out=out, err=err)
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:
                traceback.print_exc(file=err)
                code = 1
            with os.fdopen(wfd, "w") as fh:
                json.dump({"rc": code, "out": out.getvalue(), "err": err.getvalue()}, fh)
            os._exit(0)
        os.close(wfd)
        deadline = time.monotonic() + timeout
        status = None
        while time.monotonic() < deadline:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                break
            time.sleep(0.005)
        else:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(rfd)
            res[name] = {"rc": "timeout", "out": "", "err": ""}
            continue
        with os.fdopen(rfd) as fh:
            data = fh.read()
        if os.WIFSIGNALED(status):
            res[name] = {"rc": f"signal {os.WTERMSIG(status)}", "out": "", "err": data}
        else:
            res[name] = json.loads(data) if data else {"rc": f"exit {os.WEXITSTATUS(status)}", "out": "", "err": ""}
json.dump(results, open(sys.argv[3], "w"))
"""


def _make_corpus(folder: Path) -> None:
    from PIL import Image

    folder.mkdir(parents=True)
    for i in (1, 2):
        (folder / f"d{i}.md").write_text(
            f"# Doc {i}\n\nThis is document number {i} about topic alpha{i} and solar output.\n\nSecond part word{i}.\n"
        )
    rng = np.random.default_rng(0)
    Image.fromarray((rng.random((300, 2500, 3)) * 255).astype("uint8")).save(folder / "big.png")  # -> blobs/
    Image.fromarray((rng.random((64, 64, 3)) * 255).astype("uint8")).save(folder / "small.png")


def _cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mm_rag_plugin.cli", *argv], capture_output=True, text=True, timeout=120, check=False
    )


_STATE: dict[str, Path] = {}


def _pristine() -> tuple[Path, Path]:
    """(corpus, index) built once per process."""
    if not _STATE:
        root = Path(tempfile.mkdtemp(prefix="mm-rag-corrupt-"))
        atexit.register(shutil.rmtree, root, True)
        corpus, index = root / "corpus", root / "pristine"
        _make_corpus(corpus)
        r = _cli("ingest", str(corpus), "--index", str(index), "--keyword-only", "--no-ocr", "-q", "--workers", "0")
        assert r.returncode == 0, r.stderr
        _STATE.update(root=root, corpus=corpus, index=index)
    return _STATE["corpus"], _STATE["index"]


def _label(rel: str) -> str:
    rel = re.sub(r"segments/[0-9a-f-]{36}/", "segments/<seg>/", rel)
    rel = re.sub(r"payload_index/[0-9a-z]{24}-", "payload_index/<field>-", rel)
    return rel


def _sampled(rel: str) -> bool:
    m = re.search(r"payload_index/[0-9a-z]{24}-([a-z_]+)-", rel)
    return (m is None or m.group(1) == "kind") and "/is_null/" not in rel


def _cases() -> list[tuple[str, str]]:
    _, index = _pristine()
    files = sorted(p.relative_to(index).as_posix() for p in index.rglob("*") if p.is_file() and not p.is_symlink())
    cases = []
    for rel in files:
        if not _sampled(rel):
            continue
        empty = (index / rel).stat().st_size == 0
        cases.extend((rel, d) for d in DAMAGES if not (empty and d != "delete"))
    return cases


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "case" in metafunc.fixturenames:
        cases = _cases()
        metafunc.parametrize("case", cases, ids=[f"{d}:{_label(rel)}" for rel, d in cases])


def _damage(path: Path, how: str) -> None:
    size = path.stat().st_size
    if how == "delete":
        path.unlink()
    elif how == "truncate":
        os.truncate(path, size // 2)
    elif how == "zero":  # same size, all zeros (sparse: fast for the big preallocated files)
        os.truncate(path, 0)
        os.truncate(path, size)
    elif how == "garble":
        n = max(1, min(64, size // 4))
        with open(path, "r+b") as fh:
            fh.seek((size - n) // 2)
            chunk = fh.read(n)
            fh.seek((size - n) // 2)
            fh.write(bytes(b ^ 0xA5 for b in chunk) if any(chunk) else bytes(range(7, 7 + n)))


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory) -> dict[str, dict[str, dict[str, object]]]:
    corpus, pristine = _pristine()
    work = tmp_path_factory.mktemp("matrix")
    plan = []
    for rel, how in _cases():
        cid = f"{how}:{rel}"
        folder = work / f"c{len(plan)}"
        subprocess.run(["cp", "-a", "--sparse=always", str(pristine), str(folder)], check=True)
        _damage(folder / rel, how)
        common = ["--index", str(folder), "--keyword-only", "-q"]
        plan.append({
            "id": cid,
            "folder": str(folder),
            "commands": [
                ["info", ["info", *common]],
                ["query", ["query", "alpha1", "--k", "2", *common]],
                ["verify", ["verify", *common]],
                ["ingest", ["ingest", str(corpus), "--no-ocr", "--workers", "0", *common]],
            ],
        })
    (work / "plan.json").write_text(json.dumps(plan))
    proc = subprocess.run(
        [sys.executable, "-c", _DRIVER, str(work / "plan.json"), str(TIMEOUT_S), str(work / "results.json")],
        capture_output=True, text=True, timeout=600, check=False,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads((work / "results.json").read_text())
    for case in plan:
        out[case["id"]]["_folder"] = case["folder"]  # type: ignore[assignment]
    return out


#: Cases where Qdrant Edge itself fails in a way the library cannot turn into one line; filled in
#: from what the matrix found (see the report), as ``{(damage, label): reason}``.
KNOWN_ENGINE_FAILURES: dict[tuple[str, str], str] = {
    ("garble", "shard/segments/<seg>/mutable_id_tracker.mappings"): (
        "Qdrant Edge aborts the process (SIGABRT, a Rust panic that cannot unwind) in EdgeShard.load() "
        "when the id tracker's mappings file is garbled; no Python code runs, so no one-line error is possible"
    ),
}


def _verify_damaged(out: str) -> bool:
    last = out.rstrip().splitlines()[-1:]
    return bool(last) and last[0].startswith("damaged:")


def _problems(name: str, r: dict[str, object], folder: str) -> list[str]:
    rc, out, err = r["rc"], str(r["out"]), str(r["err"])
    where = f"{name}: rc={rc} stderr={err[-600:]!r} stdout={out[-300:]!r}"
    if not isinstance(rc, int):
        return [f"{where}: crashed or hung"]
    if "Traceback" in err or "Traceback" in out:
        return [f"{where}: traceback"]
    lines = [ln for ln in err.splitlines() if ln.strip()]
    if rc == 1:
        if name == "verify" and _verify_damaged(out):
            return [] if folder in out else [f"{where}: verify report names no path in the index"]
        if len(lines) != 1:
            return [f"{where}: expected exactly one error line"]
        if folder not in lines[0]:
            return [f"{where}: the error line names no path inside the index folder"]
        return []
    if rc != 0:
        return [f"{where}: unexpected exit code"]
    if name == "info":
        fields = dict(ln.split(None, 1) for ln in out.splitlines() if len(ln.split(None, 1)) == 2)
        got = (fields.get("items"), fields.get("texts"), fields.get("images"))
        if got != (str(EXPECT_ITEMS), str(EXPECT_TEXTS), str(EXPECT_IMAGES)):
            return [f"{where}: info exits 0 with wrong counts {got}"]
    elif name == "query":
        first = out.splitlines()[0] if out.strip() else ""
        if not first.startswith("1. [text]") or not first.split()[2].endswith("/d1.md"):
            return [f"{where}: query exits 0 with a wrong answer"]
    elif name == "verify" and f"ok: {EXPECT_ITEMS} items checked" not in out:
        return [f"{where}: verify exits 0 with a wrong count"]
    elif name == "ingest" and (f"{EXPECT_ITEMS} items" not in out or not re.search(r"errors\s+0\b", out)):
        return [f"{where}: ingest exits 0 but the index does not hold the corpus"]
    return []


def test_damaged_file(case: tuple[str, str], results: dict[str, dict[str, dict[str, object]]]) -> None:
    rel, how = case
    known = KNOWN_ENGINE_FAILURES.get((how, _label(rel)))
    r = results[f"{how}:{rel}"]
    folder = str(r["_folder"])
    problems = [p for name in COMMANDS for p in _problems(name, r[name], folder)]  # type: ignore[arg-type]
    if _verify_damaged(str(r["verify"]["out"])):  # type: ignore[index]
        # damage verify reports is not silent: a wrong query answer or an unrepaired ingest is allowed then
        problems = [p for p in problems if "wrong answer" not in p and "does not hold" not in p]
    if problems and known:
        pytest.xfail(known)
    assert not problems, "\n".join(problems)
