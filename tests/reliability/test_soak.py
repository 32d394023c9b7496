"""kill -9 soak: ``mm-rag ingest`` and ``mm-rag query`` killed at random moments, again and again;
then a final ingest completes, the index holds exactly what a clean ingest holds, no id twice,
``verify`` passes, queries work and another ingest adds nothing."""

from __future__ import annotations

import contextlib
import os
import random
import re
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from mm_rag_plugin import MultiModalIndex

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="SIGKILL")

SEED = int(os.environ.get("MM_RAG_SOAK_SEED", "20240611"))
INGEST_KILLS = 8
QUERY_KILLS = 3
FILES = 60


def _corpus(folder: Path, round_: int = 0, which: range | list[int] = range(FILES)) -> None:
    folder.mkdir(exist_ok=True)
    for i in which:
        # several paragraphs per file: about 180 chunks in all, so ingest commits several batches
        paras = [
            f"Section {j} of report {i} (revision {round_}): " + " ".join(f"term{i}x{j}x{w} solar{i} output" for w in range(60))
            for j in range(3)
        ]
        (folder / f"doc{i:02d}.md").write_text(f"# Report {i}\n\n" + "\n\n".join(paras) + "\n")


def _cmd(*argv: str) -> list[str]:
    return [sys.executable, "-m", "mm_rag_plugin.cli", *argv]


def _ingest(corpus: Path, index: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        _cmd("ingest", str(corpus), "--index", str(index), "--keyword-only", "--no-ocr", "-q", "--workers", "0"),
        capture_output=True, text=True, timeout=120, check=False,
    )


def _points(index: Path) -> list[str]:
    with MultiModalIndex(index, create=False, keyword_only=True, show_progress=False) as ix:
        return [p.id for batch in ix.scan() for p in batch]


def _written(index: Path) -> int:
    """Bytes in the index's shard folder: grows whenever a batch reaches the engine's log."""
    total = 0
    for root, _, files in os.walk(index / "shard"):
        for name in files:
            with contextlib.suppress(OSError):  # replaced while we looked
                total += os.stat(os.path.join(root, name)).st_size
    return total


def _kill_at_random(proc: subprocess.Popen[bytes], rng: random.Random, index: Path, mid_batch: bool) -> None:
    """Kill *proc* after it wrote its first batch (or, *mid_batch*, its second), a few ms later:
    the kill waits for the ingest's own writes, not for a guess at how long it takes."""
    before = _written(index)
    for _ in range(2 if mid_batch else 1):
        deadline = time.monotonic() + 60  # a safety net only: the ingest writes or exits first
        while time.monotonic() < deadline and proc.poll() is None and _written(index) == before:
            time.sleep(0.001)
        before = _written(index)
    time.sleep(rng.uniform(0, 0.02))
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)


def test_kill_9_soak_converges(tmp_path: Path) -> None:
    rng = random.Random(SEED)
    corpus, index, clean = tmp_path / "corpus", tmp_path / "ix", tmp_path / "clean"
    _corpus(corpus)

    killed = 0
    for n in range(INGEST_KILLS):
        if n:  # a third of the files change each round: the next ingest has new points and stale ones to replace
            _corpus(corpus, n, rng.sample(range(FILES), FILES // 3))
        proc = subprocess.Popen(
            _cmd("ingest", str(corpus), "--index", str(index), "--keyword-only", "--no-ocr", "-q", "--workers", "0"),
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        _kill_at_random(proc, rng, index, mid_batch=n % 2 == 1)
        killed += proc.returncode == -signal.SIGKILL
        if n == INGEST_KILLS // 2 and index.exists():
            # queries killed mid-flight leave nothing behind either
            for _ in range(QUERY_KILLS):
                q = subprocess.Popen(
                    _cmd("query", "solar7 output", "--index", str(index), "--keyword-only", "-q"),
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )
                time.sleep(rng.uniform(0.05, 0.6))
                if q.poll() is None:
                    q.send_signal(signal.SIGKILL)
                q.wait(timeout=60)
    assert killed >= INGEST_KILLS // 2, f"only {killed} ingests were killed before they finished (seed {SEED})"

    r = _ingest(corpus, clean)
    assert r.returncode == 0, r.stderr
    want = _points(clean)
    assert len(want) > 64  # more than one batch

    final = _ingest(corpus, index)
    assert final.returncode == 0, final.stdout + final.stderr
    assert "Traceback" not in final.stderr

    got = _points(index)
    dupes = [pid for pid, c in Counter(got).items() if c > 1]
    assert not dupes, f"duplicate ids after the soak (seed {SEED}): {dupes[:5]}"
    assert sorted(got) == sorted(want), f"the soaked index differs from a clean ingest (seed {SEED})"

    v = subprocess.run(_cmd("verify", "--index", str(index)), capture_output=True, text=True, timeout=120, check=False)
    assert v.returncode == 0, v.stdout + v.stderr
    assert f"ok: {len(want)} items checked" in v.stdout

    q = subprocess.run(
        _cmd("query", "term7x1x5", "--index", str(index), "--keyword-only", "-q", "--k", "1"),
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert q.returncode == 0 and "doc07.md" in q.stdout, q.stdout + q.stderr

    again = _ingest(corpus, index)
    assert again.returncode == 0, again.stderr
    assert re.search(r"added to index\s+0\b", again.stdout), again.stdout
