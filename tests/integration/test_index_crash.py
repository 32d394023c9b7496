"""A process killed (SIGKILL) in the middle of an ingest into a Qdrant Edge folder leaves a usable
index with every committed batch; running the ingest again completes it, duplicating nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

from mm_rag_plugin.retrievers import MultiModalIndex
from mm_rag_plugin.retrievers.engine import ListQuery
from mm_rag_plugin.types import TextChunk

TOTAL, BATCH = 4000, 50

SCRIPT = textwrap.dedent(
    """
    import json, sys, time
    import numpy as np
    from mm_rag_plugin.ids import content_hash
    from mm_rag_plugin.retrievers import MultiModalIndex
    from mm_rag_plugin.types import TextChunk

    PAUSE = float(sys.argv[2])

    class SlowEmbedder:
        dim = 8
        def embed_texts(self, texts):
            print("batch", flush=True)
            time.sleep(PAUSE)
            return np.stack([np.random.default_rng(int(content_hash(t)[:8], 16)).normal(size=8) for t in texts])
        def embed_images(self, images, **kw):
            raise AssertionError("no images here")

    def chunks():
        for i in range(4000):
            yield TextChunk(id=f"c{i}", text=f"chunk number{i} about topic{i % 13}", source=f"s{i // 500}.txt")

    with MultiModalIndex(sys.argv[1], embedder=SlowEmbedder(), batch_size=50, show_progress=False) as ix:
        r = ix.add(chunks())
        print("report", json.dumps({"added": r.added, "unchanged": r.unchanged, "deleted": r.deleted,
                                    "errors": len(r.errors), "count": len(ix)}), flush=True)
    """
)


def all_chunks() -> list[TextChunk]:
    return [TextChunk(id=f"c{i}", text=f"chunk number{i} about topic{i % 13}", source=f"s{i // 500}.txt")
            for i in range(TOTAL)]


def test_killed_ingest_keeps_committed_batches_and_a_rerun_completes_it(tmp_path):
    script = tmp_path / "ingest.py"
    script.write_text(SCRIPT)
    folder = tmp_path / "index"
    proc = subprocess.Popen([sys.executable, str(script), str(folder), "0.05"], stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(6):  # wait until a few batches were embedded (5 committed, the 6th in flight)
            assert proc.stdout.readline().startswith("batch")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL

    expected = {}
    with MultiModalIndex(folder, show_progress=False) as ix:  # the lock died with its holder
        for c in all_chunks():
            expected[ix.point_id(c)[0]] = c
        n = len(ix)
        assert 5 * BATCH <= n < TOTAL and n % BATCH == 0  # whole batches only
        assert ix.dim == 8 and ix.manifest["points"] in (n, n - BATCH)  # the manifest follows each batch
        stored = {p.id for batch in ix.scan() for p in batch}
        assert len(stored) == n and stored <= set(expected)
        order = list(expected)
        assert stored == set(order[:n])  # the first batches, in order: nothing from a batch in flight
        # the index answers queries (no embedder needed for BM25-only retrieval)
        (hits,) = ix.search_lists([ListQuery("bm25", 5, sparse=ix.bm25.encode_query("number3"))], ())
        top = hits[0][0]  # number3 whole; the others only share its part "number"
        assert ix.payloads([top])[top]["text"] == "chunk number3 about topic3" and hits[0][1] > 2 * hits[1][1]

    # run it again to the end: the committed points are kept, the rest added once
    out = subprocess.run([sys.executable, str(script), str(folder), "0"], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(next(line for line in out.stdout.splitlines() if line.startswith("report "))[len("report "):])
    assert report == {"added": TOTAL - n, "unchanged": n, "deleted": 0, "errors": 0, "count": TOTAL}
    with MultiModalIndex(folder, show_progress=False) as ix:
        assert len(ix) == ix.manifest["points"] == TOTAL
        points = [p for batch in ix.scan(1000) for p in batch]
        assert len(points) == TOTAL and {p.id for p in points} == set(expected)
        for p in points[:50]:
            assert p.payload["sources"] == [expected[p.id].source]
