"""A process killed in the middle of an ingest leaves a usable index with every committed batch."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import pytest

from mm_rag_plugin.retrievers import MultiModalIndex
from mm_rag_plugin.retrievers._engine import ListQuery

SCRIPT = textwrap.dedent(
    """
    import sys, time
    import numpy as np
    from mm_rag_plugin.ids import content_hash
    from mm_rag_plugin.retrievers import MultiModalIndex
    from mm_rag_plugin.types import TextChunk

    class SlowEmbedder:
        dim = 8
        def embed_texts(self, texts):
            print("batch", flush=True)
            time.sleep(0.05)
            return np.stack([np.random.default_rng(int(content_hash(t)[:8], 16)).normal(size=8) for t in texts])
        def embed_images(self, images):
            raise AssertionError("no images here")

    def chunks():
        for i in range(4000):
            yield TextChunk(id=f"c{i}", text=f"chunk number{i} about topic{i % 13}", source=f"s{i // 500}.txt")

    with MultiModalIndex(sys.argv[1], engine=sys.argv[2], embedder=SlowEmbedder(), batch_size=50,
                         show_progress=False) as ix:
        ix.add(chunks())
    """
)


@pytest.mark.parametrize("engine", ["qdrant", "numpy"])
def test_killed_ingest_keeps_committed_batches(tmp_path, engine):
    script = tmp_path / "ingest.py"
    script.write_text(SCRIPT)
    folder = tmp_path / "index"
    proc = subprocess.Popen([sys.executable, str(script), str(folder), engine], stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(6):  # wait until a few batches were embedded (5 committed, the 6th in flight)
            assert proc.stdout.readline().startswith("batch")
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL

    with MultiModalIndex(folder, engine=engine, show_progress=False) as ix:
        n = len(ix)
        assert 250 <= n < 4000 and n % 50 == 0  # whole batches only
        assert ix.dim == 8
        # the index answers queries (no embedder needed for BM25-only retrieval)
        (hits,) = ix.search_lists([ListQuery("bm25", 5, sparse=ix.bm25.encode_query("number3"))], ())
        assert len(hits) == 1
