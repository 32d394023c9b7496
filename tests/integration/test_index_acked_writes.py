"""Every write acknowledged before ``kill -9`` is found after reopening: one-at-a-time adds neither
flush the shard nor rewrite the manifest on every call (its count is stored lazily), and the
engine's write-ahead log keeps what each call returned from."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap

import numpy as np

from mm_rag_plugin.retrievers import MultiModalIndex
from mm_rag_plugin.types import TextChunk

DIM = 8
AT_LEAST = 40  # acknowledged adds before the kill

CHILD = textwrap.dedent(
    """
    import sys
    import numpy as np
    from mm_rag_plugin.retrievers import MultiModalIndex
    from mm_rag_plugin.types import TextChunk

    ix = MultiModalIndex(sys.argv[1], dim=8)
    ix.add_embedded([TextChunk(id="seed", text="seed", source="seed.txt")], np.ones((1, 8), np.float32))
    ix.flush()  # the manifest now says clean: the adds below mark it lagging once
    print("ready", flush=True)
    n = 0
    while True:  # one add per call until killed
        vec = np.zeros((1, 8), np.float32)
        vec[0, n % 8], vec[0, (n + 1) % 8] = 1.0, 0.5 + n
        ix.add_embedded([TextChunk(id=f"c{n}", text=f"acknowledged item {n}", source=f"f{n}.txt")], vec)
        print("acked", n, flush=True)
        n += 1
    """
)


def test_every_acknowledged_add_survives_kill_9(tmp_path):
    folder = tmp_path / "ix"
    proc = subprocess.Popen([sys.executable, "-c", CHILD, str(folder)], stdout=subprocess.PIPE, text=True)
    acked = -1
    try:
        assert proc.stdout.readline().strip() == "ready"
        while acked < AT_LEAST:  # the child says so after each add returned
            line = proc.stdout.readline()
            assert line.startswith("acked"), line
            acked = int(line.split()[1])
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
    # what the child printed before it died, unread by us: acknowledged too
    acked = max([acked, *(int(line.split()[1]) for line in proc.stdout.read().splitlines() if line.startswith("acked"))])
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL

    manifest = json.loads((folder / "manifest.json").read_text())
    assert manifest["clean"] is False  # marked before the first add: its count may lag
    with MultiModalIndex(folder) as ix:
        n = len(ix)
        assert n >= acked + 2  # the seed and items 0..acked (one more may have landed unacknowledged)
        assert ix.manifest["points"] == n  # counted on open, not taken from the lagging manifest
        pids = [ix.point_id(TextChunk(id=f"c{i}", text=f"acknowledged item {i}", source=f"f{i}.txt"))[0] for i in range(acked + 1)]
        found = ix.fetch(pids, vectors=True)
        assert set(found) == set(pids)
        for i, pid in enumerate(pids):
            assert found[pid].payload["text"] == f"acknowledged item {i}"
            want = np.zeros(DIM, np.float32)
            want[i % 8], want[(i + 1) % 8] = 1.0, 0.5 + i
            assert np.allclose(found[pid].dense, want / np.linalg.norm(want), atol=1e-5)
        assert ix.verify() == []
    stored = json.loads((folder / "manifest.json").read_text())  # closed: the count is stored, exact
    assert stored["clean"] is True and stored["points"] == n
