"""A full disk: ``mm-rag ingest`` into an index on a small tmpfs exits 1 with one clear line (no
traceback, no crash by signal), everything committed before stays readable, and an ingest after
space is freed converges to the whole corpus.

Qdrant Edge writes through memory-mapped files: a write fault on a full disk is a SIGBUS that kills
the process, so the engine checks free space before it creates or writes a shard (``_edge.py``,
``MIN_FREE_CREATE`` / ``MIN_FREE_WRITE``). Needs root (``mount -t tmpfs``); skipped otherwise.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="tmpfs mounts: Linux only")


def _mount(folder: Path, size: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)], capture_output=True, text=True, check=False)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip() or r.returncode})")


def _umount(folder: Path) -> None:
    subprocess.run(["umount", "-l", str(folder)], capture_output=True, check=False)


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    mnt = tmp_path / "mnt"
    _mount(mnt, "3m")
    try:
        yield mnt
    finally:
        _umount(mnt)


def _cli(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mm_rag_plugin.cli", *argv], capture_output=True, text=True, timeout=120, check=False
    )


def _ingest(corpus: Path, index: Path) -> subprocess.CompletedProcess[str]:
    return _cli("ingest", str(corpus), "--index", str(index), "--keyword-only", "--no-ocr", "-q", "--workers", "0")


def _one_clear_line(r: subprocess.CompletedProcess[str], index: Path) -> None:
    assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert "Traceback" not in r.stderr
    assert len(lines) == 1, r.stderr
    assert str(index) in lines[0] or str(index.parent) in lines[0], lines[0]


def _corpus(folder: Path, images: int) -> None:
    from PIL import Image

    folder.mkdir(exist_ok=True)
    for i in range(6):
        (folder / f"d{i}.md").write_text(f"# Doc {i}\n\nalpha{i} solar output report number {i}.\n")
    for k in range(images):  # large enough to be downscaled into blobs/ (about 1.8 MB each)
        rng = np.random.default_rng(k)
        Image.fromarray((rng.random((400, 2600, 3)) * 255).astype("uint8")).save(folder / f"big{k}.png")


def test_creating_an_index_on_a_full_disk_is_one_line(small_disk: Path, tmp_path: Path) -> None:
    corpus, index = tmp_path / "corpus", small_disk / "ix"
    _corpus(corpus, 0)
    r = _ingest(corpus, index)
    _one_clear_line(r, index)
    assert "free disk space" in r.stderr
    assert not (index / "manifest.json").exists()


@pytest.mark.parametrize("fill", ["blobs", "shard", "manifest", "sources"])
def test_disk_fills_during_ingest(tmp_path: Path, fill: str) -> None:
    """A 64 MiB disk holds the index (about 9 MiB of shard) and the first files; then the disk is
    filled (a ballast file) to leave room for exactly one kind of write to fail first."""
    mnt = tmp_path / "mnt"
    _mount(mnt, "64m")
    try:
        corpus, index = tmp_path / "corpus", mnt / "ix"
        _corpus(corpus, 0)
        first = _ingest(corpus, index)
        assert first.returncode == 0, first.stderr
        before = _cli("query", "alpha3", "--index", str(index), "--keyword-only", "-q", "--k", "1")
        assert before.returncode == 0 and "d3.md" in before.stdout

        ballast = mnt / "ballast"
        free = shutil.disk_usage(mnt).free
        leave = {"blobs": 5 << 20, "shard": 1 << 20, "manifest": 0, "sources": 0}[fill]
        with open(ballast, "wb") as fh:
            fh.write(b"\0" * max(0, free - leave))
        if fill == "blobs":
            _corpus(corpus, 6)  # about 11 MB of blobs: the blob writes fill the disk
        else:
            (corpus / "d0.md").write_text("# Doc 0\n\nchanged alpha0 text, new points to write.\n")
        r = _ingest(corpus, index)
        if r.returncode == 0:  # blobs of a file that failed are reported as its error, not the run's
            assert "Traceback" not in r.stdout + r.stderr
            assert re.search(r"errors\s+[1-9]", r.stdout) or fill != "blobs", r.stdout
        else:
            _one_clear_line(r, index)

        # with the disk still full: Qdrant Edge writes when it loads a shard, so a query either works
        # or says so in one line
        q = _cli("query", "alpha3", "--index", str(index), "--keyword-only", "-q", "--k", "1")
        if q.returncode == 0:
            assert "d3.md" in q.stdout, q.stdout
        else:
            _one_clear_line(q, index)

        ballast.unlink()  # space again: everything committed before is there, and the next ingest converges
        q = _cli("query", "alpha3", "--index", str(index), "--keyword-only", "-q", "--k", "1")
        assert q.returncode == 0 and "d3.md" in q.stdout, q.stdout + q.stderr
        again = _ingest(corpus, index)
        assert again.returncode == 0, again.stdout + again.stderr
        assert re.search(r"errors\s+0\b", again.stdout), again.stdout
        v = _cli("verify", "--index", str(index))
        assert v.returncode == 0, v.stdout + v.stderr
        last = _ingest(corpus, index)
        assert re.search(r"added to index\s+0\b", last.stdout), last.stdout
    finally:
        _umount(mnt)
