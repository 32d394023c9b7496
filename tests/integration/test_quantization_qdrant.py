"""``quantization=`` with the qdrant-client engine (``url=`` / ``client=``).

Qdrant local mode (qdrant-client 1.20), the stand-in server of these tests, is an exact brute-force
search: it accepts ``quantization_config`` at collection creation and drops it, and warns when a
query carries quantization search parameters. The engine therefore sends those only to a server.
These tests run local mode for real (warnings are errors in this suite) and check the request a
server would get. (Quantization in Qdrant Edge, the folder engine: tests/unit/test_quantization.py.)
"""

from __future__ import annotations

import numpy as np
import pytest
from qdrant_client import QdrantClient

from mm_rag_plugin.retrievers import FusedRetriever, MultiModalIndex
from mm_rag_plugin.retrievers._remote import RemoteEngine
from mm_rag_plugin.retrievers.bm25 import BM25Encoder
from mm_rag_plugin.retrievers.engine import ListQuery
from mm_rag_plugin.types import TextChunk

DIM = 32


class Table:
    dim = DIM

    def __init__(self, table):
        self.table = table

    def embed_texts(self, texts):
        return np.stack([self.table[t] for t in texts])

    def embed_query(self, text=None, *, image=None):
        return self.table[text]


def corpus(n: int = 300):
    rng = np.random.default_rng(0)
    vecs = rng.normal(size=(n, DIM)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    chunks = [TextChunk(id=f"t{i}", text=f"word{i % 17} item{i}", source=f"doc{i % 5}.pdf") for i in range(n)]
    return chunks, vecs


@pytest.mark.parametrize("quantization", ["int8", "binary"])
def test_local_mode_accepts_and_ignores_quantization(quantization):
    chunks, vecs = corpus()
    qs = {f"word{j} q": vecs[j * 7] + 0.1 for j in range(10)}
    runs = {}
    for q in (None, quantization):
        client = QdrantClient(location=":memory:")
        with MultiModalIndex(client=client, dim=DIM, show_progress=False, quantization=q) as ix:
            assert ix.engine == "qdrant" and ix.quantization == q
            assert ix.add_embedded(chunks, vecs) == len(chunks)
            engine = ix._engine  # looks inside on purpose: what was sent
            assert engine.local and engine._search_params is None
            info = engine.client.get_collection(engine.collection)
            assert info.config.quantization_config is None  # local mode drops it (see module doc)
            assert ix.memory_bytes() == {}
            r = FusedRetriever(ix, Table(qs), k=5)
            runs[q] = [[(h.chunk.id, h.score) for h in r.retrieve(t)] for t in qs]
            runs[q, "server"] = [[h.chunk.id for h in FusedRetriever(ix, Table(qs), k=5, fusion="server").retrieve(t)]
                                 for t in qs]
        client.close()
    assert all(len(r) == 5 for r in runs[None])
    assert runs[quantization] == runs[None]  # exact search either way, and no warning raised
    assert runs[quantization, "server"] == runs[None, "server"]


def test_server_requests_carry_quantization_settings():
    """What a Qdrant server would receive (the client is built but never contacted)."""
    engine = RemoteEngine(collection="c", url="http://127.0.0.1:9", quantization="binary", oversampling=10.0,
                          check_compatibility=False)
    try:
        m = engine.models
        assert not engine.local
        dense = engine._request(ListQuery("dense_text", 50, dense=np.ones(DIM, np.float32), kind="text"), (), m.QueryRequest)
        assert dense.params.quantization.rescore is True
        assert dense.params.quantization.oversampling == 10.0
        sparse = BM25Encoder().encode_query("hello world")
        bm25 = engine._request(ListQuery("bm25", 50, sparse=sparse), (), m.Prefetch)
        assert bm25.params is None
        prefetch = engine._request(ListQuery("d", 5, dense=np.ones(DIM, np.float32)), (), m.Prefetch)
        assert prefetch.params.quantization.oversampling == 10.0
        cfg = engine._quantization_config()
        assert isinstance(cfg, m.BinaryQuantization) and cfg.binary.always_ram is True
    finally:
        engine.close()
    engine = RemoteEngine(collection="c", url="http://127.0.0.1:9", quantization="int8", oversampling=3.0,
                          check_compatibility=False)
    try:
        cfg = engine._quantization_config()
        m = engine.models
        assert isinstance(cfg, m.ScalarQuantization)
        assert cfg.scalar.type == m.ScalarType.INT8 and cfg.scalar.quantile == 0.99 and cfg.scalar.always_ram is True
    finally:
        engine.close()
    engine = RemoteEngine(collection="c", url="http://127.0.0.1:9", check_compatibility=False)
    try:
        assert engine._quantization_config() is None
        assert engine._request(ListQuery("d", 5, dense=np.ones(DIM, np.float32)), (), engine.models.QueryRequest).params is None
    finally:
        engine.close()
