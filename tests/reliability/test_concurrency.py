"""Concurrent use of one embedded (Qdrant Edge) index: racing writer processes, a reader process
during a long write, and searching threads beside a writing thread in one process."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from mm_rag_plugin.retrievers import FusedRetriever, MultiModalIndex
from mm_rag_plugin.types import Hit, TextChunk

CLI = [sys.executable, "-m", "mm_rag_plugin.cli"]


def write_docs(folder: Path, n: int, prefix: str = "d") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (folder / f"{prefix}{i:05d}.txt").write_text(f"Document {i} about {prefix}topic{i} and the harbour ferry.\n")
    return folder


def start(*argv: str) -> subprocess.Popen:
    return subprocess.Popen([*CLI, *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> tuple[int, str, str]:
    out, err = proc.communicate(timeout=120)
    return proc.returncode, out, err


def run(*argv: str) -> tuple[int, str, str]:
    return finish(start(*argv))


def count(ix: Path) -> int:
    with MultiModalIndex(ix, keyword_only=True, create=False, show_progress=False) as index:
        return len(index)


def assert_in_use(code: int, out: str, err: str) -> None:
    assert code == 1, (code, out[-500:], err[-2000:])
    assert "in use by pid" in err and "Traceback" not in err + out, err[-2000:]


# ---------------------------------------------------------------------- (a) racing writers
@pytest.mark.parametrize("round_", range(3))
def test_two_writers_on_a_new_folder(tmp_path, round_):
    docs = write_docs(tmp_path / "docs", 300)
    clean = tmp_path / "clean"
    code, _, err = run("ingest", str(docs), "--index", str(clean), "--keyword-only", "--no-ocr", "-q")
    assert code == 0, err[-2000:]
    want = count(clean)
    assert want == 300

    ix = tmp_path / "ix"  # does not exist yet: both create it
    args = ("ingest", str(docs), "--index", str(ix), "--keyword-only", "--no-ocr", "-q")
    procs = [start(*args), start(*args)]
    results = [finish(p) for p in procs]
    codes = sorted(r[0] for r in results)
    assert codes in ([0, 0], [0, 1]), [(c, e[-1500:]) for c, _, e in results]
    for code, out, err in results:
        assert "Traceback" not in out + err, err[-2000:]
        if code == 1:
            assert_in_use(code, out, err)
    code, out, err = run("verify", "--index", str(ix), "--keyword-only")
    assert code == 0, (out[-1000:], err[-2000:])
    assert count(ix) == want


# ---------------------------------------------------------------------- (b) reader during a write
def _locked(ix: Path) -> bool:
    """Whether some process holds the index's lock (probed without taking it for long)."""
    import fcntl
    import os

    try:
        fd = os.open(ix / "lock", os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # also drops the probe's lock
    return False


def test_reader_during_a_long_write_gets_a_clear_error(tmp_path):
    ix = tmp_path / "ix"
    first = write_docs(tmp_path / "first", 1, prefix="zanzibar")
    code, _, err = run("ingest", str(first), "--index", str(ix), "--keyword-only", "--no-ocr", "-q")
    assert code == 0, err[-2000:]
    big = write_docs(tmp_path / "big", 4000)

    writer = start("ingest", str(big), "--index", str(ix), "--keyword-only", "--no-ocr", "-q")
    in_use = answered = 0
    deadline = time.monotonic() + 90
    try:
        while writer.poll() is None and time.monotonic() < deadline:
            if not _locked(ix):
                time.sleep(0.02)
                continue
            code, out, err = run("query", "zanzibartopic0", "--index", str(ix), "--keyword-only", "--k", "3")
            assert "Traceback" not in out + err, err[-2000:]
            if code == 0:  # the write ended before the reader opened the index: a right answer
                assert "zanzibar00000.txt" in out.splitlines()[0], out[:1000]
                answered += 1
            else:
                assert_in_use(code, out, err)
                assert str(ix) in err
                in_use += 1
    finally:
        code, out, err = finish(writer)
    assert code == 0, err[-2000:]
    assert in_use >= 1, "the write finished before a reader could meet it; make it longer"
    code, out, err = run("query", "zanzibartopic0", "--index", str(ix), "--keyword-only", "--k", "3")
    assert code == 0 and "zanzibar00000.txt" in out.splitlines()[0], (out[:1000], err[-1000:])
    assert count(ix) == 4001


# ---------------------------------------------------------------------- (c) threads of one process
def test_searching_threads_beside_a_writing_thread(tmp_path):
    base = [TextChunk(id=f"b{i}", text=f"harbour ferry timetable number {i}", source=f"base{i}.txt") for i in range(50)]
    batches = [
        [TextChunk(id=f"n{b}-{i}", text=f"new ferry note {b} {i} zanzibar", source=f"new{b}-{i}.txt") for i in range(20)]
        for b in range(15)
    ]
    queries = ["harbour ferry", "timetable number 7", "zanzibar note", "ferry", "nothing-matches-this"]
    errors: list[BaseException] = []
    bad: list[tuple] = []
    searches = [0] * 8
    done = threading.Event()
    with MultiModalIndex(tmp_path / "ix", keyword_only=True, show_progress=False) as index:
        index.add(base)
        retriever = FusedRetriever(index, k=5)
        start_all = threading.Barrier(9)

        def search(t: int) -> None:
            try:
                start_all.wait()
                j = 0
                while not done.is_set() or j < 5:
                    q = queries[(t + j) % len(queries)]
                    hits = retriever.retrieve(q)
                    ok = (
                        isinstance(hits, list)
                        and len(hits) <= 5
                        and all(isinstance(h, Hit) and isinstance(h.chunk, TextChunk) for h in hits)
                        and len({h.id for h in hits}) == len(hits)
                        and all(h.score == h.score for h in hits)  # no NaN
                        and [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
                        and all(set(q.split()) & set(h.chunk.text.split()) for h in hits)
                    )
                    if q == "nothing-matches-this":
                        ok = ok and hits == []
                    if not ok:
                        bad.append((t, q, [(h.id, h.score) for h in hits]))
                    j += 1
                    searches[t] += 1
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=search, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        try:
            start_all.wait()
            for batch in batches:
                report = index.add(batch, replace_sources=False)
                assert report.added == len(batch)
        finally:
            done.set()
            for th in threads:
                th.join(timeout=60)
        assert not any(th.is_alive() for th in threads)
        assert errors == [] and bad == [], (errors[:3], bad[:3])
        assert all(n >= 5 for n in searches)
        assert len(index) == 50 + 15 * 20
        hits = FusedRetriever(index, k=400).retrieve("zanzibar")
        assert {h.chunk.id for h in hits} == {c.id for b in batches for c in b}
