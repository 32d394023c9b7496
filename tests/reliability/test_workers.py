"""Reader workers never outlive their parent, nor their time limit, and take their children along."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not hasattr(os, "killpg"), reason="process groups are POSIX")

# In every process of the test (parent and spawned workers), reading a file starts a child that
# stands in for tesseract and then hangs, as a parser stuck on a hostile file does.
SITECUSTOMIZE = textwrap.dedent(
    """
    import os, subprocess, time
    if os.environ.get("MM_RAG_TEST_HANG"):
        import mm_rag_plugin.readers.loader as loader

        def hang(path, config, cache):
            child = subprocess.Popen(["sleep", "300"])
            with open(os.environ["MM_RAG_TEST_HANG"], "a") as fh:
                fh.write(f"{os.getpid()} {child.pid}\\n")
            time.sleep(300)

        loader._safe_read = hang
    """
)

PARENT = textwrap.dedent(
    """
    import sys
    from mm_rag_plugin.readers import DocumentLoader

    loader = DocumentLoader([sys.argv[1]], workers=1, timeout=float(sys.argv[2]), show_progress=False, ocr=False)
    for _ in loader.lazy_load():
        pass
    """
)


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[1][0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


def _start(tmp_path: Path, timeout: float) -> tuple[subprocess.Popen, list[int]]:
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "sitecustomize.py").write_text(SITECUSTOMIZE)
    doc = tmp_path / "doc.md"
    doc.write_text("# a document")
    pids_file = tmp_path / "pids.txt"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), *sys.path]),
        "MM_RAG_TEST_HANG": str(pids_file),
    }
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(doc), str(timeout)], env=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (pids_file.exists() and pids_file.read_text().strip()):
        time.sleep(0.1)
    assert pids_file.exists(), "the worker never started reading"
    worker, child = (int(x) for x in pids_file.read_text().split()[:2])
    assert _alive(worker) and _alive(child)
    return parent, [worker, child]


def _gone_within(pids: list[int], seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if not any(_alive(p) for p in pids):
            return True
        time.sleep(0.1)
    return False


def test_workers_and_their_children_die_with_a_killed_parent(tmp_path: Path) -> None:
    parent, pids = _start(tmp_path, timeout=600)
    try:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert _gone_within(pids, 10), "a reader worker (or its child) outlived its SIGKILLed parent"
    finally:
        for p in pids:
            if _alive(p):
                os.kill(p, signal.SIGKILL)


def test_a_worker_enforces_its_own_time_limit_when_the_parent_cannot(tmp_path: Path) -> None:
    parent, pids = _start(tmp_path, timeout=1)
    parent.send_signal(signal.SIGSTOP)  # alive but frozen: it cannot stop the worker
    try:
        assert _gone_within(pids, 20), "a stuck reader ran past its time limit"
    finally:
        parent.send_signal(signal.SIGCONT)
        parent.kill()
        parent.wait()
        for p in pids:
            if _alive(p):
                os.kill(p, signal.SIGKILL)
