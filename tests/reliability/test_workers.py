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

# In every process of the test (parent and spawned workers), reading a file named hang* starts a
# child that stands in for tesseract and then hangs, as a parser stuck on a hostile file does; with
# MM_RAG_TEST_FREEZE_PARENT the worker first stops its parent (SIGSTOP), which from then on can do
# nothing about it. Other files are read as usual (a first one warms the worker up).
SITECUSTOMIZE = textwrap.dedent(
    """
    import os, signal, subprocess, time
    if os.environ.get("MM_RAG_TEST_HANG"):
        import mm_rag_plugin.readers.loader as loader

        read = loader._safe_read

        def hang(path, config, cache):
            if not os.path.basename(path).startswith("hang"):
                return read(path, config, cache)
            if os.environ.get("MM_RAG_TEST_FREEZE_PARENT"):
                os.kill(os.getppid(), signal.SIGSTOP)
            child = subprocess.Popen(["sleep", "300"])
            pids = os.environ["MM_RAG_TEST_HANG"]
            with open(pids + ".tmp", "w") as fh:
                fh.write(f"{os.getpid()} {child.pid}\\n")
            os.replace(pids + ".tmp", pids)  # seen whole or not at all
            time.sleep(300)

        loader._safe_read = hang
    """
)

PARENT = textwrap.dedent(
    """
    import sys
    from mm_rag_plugin.readers import DocumentLoader

    files = sys.argv[1:-1]
    loader = DocumentLoader(files, workers=1, timeout=float(sys.argv[-1]), show_progress=False, ocr=False)
    for _ in loader.lazy_load():
        pass
    """
)

#: Upper bounds for events that come within seconds on an idle machine: generous, so that a loaded
#: machine never fails a test by waiting too little; a passing test waits only for the event.
STARTUP_S = 300.0
CLEANUP_S = 120.0


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as fh:
            return fh.read().split(") ")[1][0] != "Z"  # a zombie has exited
    except FileNotFoundError:
        return False


def _start(tmp_path: Path, timeout: float, *, freeze_parent: bool = False) -> tuple[subprocess.Popen, list[int]] | None:
    """Start a parent reading a warm-up file, then a file its worker hangs on; returns the parent
    and the worker's and its child's pids once the worker is stuck, or ``None`` when the parent
    ended first (its own time limit stopped the worker before it could freeze the parent)."""
    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / "sitecustomize.py").write_text(SITECUSTOMIZE)
    warm, doc = tmp_path / "warm.md", tmp_path / "hang.md"
    warm.write_text("# a document read first")
    doc.write_text("# a document")
    pids_file = tmp_path / "pids.txt"
    pids_file.unlink(missing_ok=True)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), *sys.path]),
        "MM_RAG_TEST_HANG": str(pids_file),
        **({"MM_RAG_TEST_FREEZE_PARENT": "1"} if freeze_parent else {}),
    }
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(warm), str(doc), str(timeout)], env=env)
    deadline = time.monotonic() + STARTUP_S
    while not pids_file.exists() and parent.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    if not pids_file.exists():
        parent.kill()
        code = parent.wait()
        assert freeze_parent and code == 0, f"the worker never started reading (parent exit code {code})"
        return None
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
    started = _start(tmp_path, timeout=600)
    assert started is not None
    parent, pids = started
    try:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert _gone_within(pids, CLEANUP_S), "a reader worker (or its child) outlived its SIGKILLed parent"
    finally:
        for p in pids:
            if _alive(p):
                os.kill(p, signal.SIGKILL)


def test_a_worker_enforces_its_own_time_limit_when_the_parent_cannot(tmp_path: Path) -> None:
    # The worker freezes its parent as it starts the file, so only the worker's own guard can end
    # it: at the time limit + 5 s. Should the parent's limit (counted from when it handed the file
    # over) pass before that on a loaded machine, the parent stops the worker itself: retry longer.
    for limit in (5.0, 20.0, 80.0):
        started = _start(tmp_path, timeout=limit, freeze_parent=True)
        if started is not None:
            break
    else:
        pytest.fail("the parent's own time limit stopped the worker every time before it could be frozen")
    parent, pids = started
    try:
        assert _gone_within(pids, limit + 5 + CLEANUP_S), "a stuck reader ran past its time limit"
    finally:
        parent.kill()  # frozen or not: it never runs again (so it starts no new worker)
        parent.wait()
        for p in pids:
            if _alive(p):
                os.kill(p, signal.SIGKILL)
