"""Fused retrieval latency as the index grows: mm-rag-plugin vs LangChain, LlamaIndex and Qdrant,
each peer in the strongest setup that runs offline, plus the frameworks' default stores.

Same synthetic data for everyone: N chunks (80 % text of 20-120 Zipf-distributed words, 20 %
"images" with 3-20 OCR words), each with a precomputed unit vector drawn around gaussian cluster
centres like embeddings are (``clustered_vectors``; ``--vectors isotropic`` draws them uniformly
instead, the worst case for a graph index); queries are 3 words plus a held-out vector near a
centre. Embedding is a table lookup for every system, so latency excludes model time. Every system
returns the top 10 of a reciprocal-rank fusion of dense and keyword lists, each list 50 deep:

* ``ours``: ``FusedRetriever`` over ``MultiModalIndex(folder)`` (Qdrant Edge in this process, HNSW
  built by ``optimize()``, reopened before querying): three lists (dense over texts, dense over
  images, BM25), fused here; near-duplicate removal off (no peer has it). ``ours-defaults``: the
  retriever's defaults, near-duplicate removal on (it reads the hits' vectors). ``ours-pool``:
  ``ours-defaults`` on a shard built with Qdrant Edge's own search thread pool (a thread per CPU)
  instead of the library's one search thread.
  ``ours-int8``: the same index created with ``quantization="int8"``. ``ours-noacorn``: ``ours`` with its
  kind lists searched without ACORN (see ``_edge.KIND_GRAPH_SHARE``; compare with ``--image-every 3``).
* ``ours-qdrant-client``: the same retriever over the qdrant-client engine
  (``MultiModalIndex(client=...)``) with ``fusion="server"``: Qdrant's Query API fuses, and the
  hits' payloads come back in that same request (one request per query).
* ``qdrant-client``: what a user writes with qdrant-client alone: one collection with a dense
  vector and a sparse vector with Qdrant's IDF modifier, documents encoded as hashed term counts
  (the offline stand-in for fastembed's BM25 model, which needs a download), one ``query_points``
  call per query (two prefetches, RRF, payloads returned). The benchmark counts the calls.
* ``langchain-faiss``: ``EnsembleRetriever`` (weights 0.5/0.5) over a ``FAISS`` store
  (inner product over the unit vectors, exact) and ``BM25Retriever`` (rank_bm25).
* ``langchain-faiss-1t`` / ``llamaindex-faiss-1t``: the same with FAISS on one thread (the plain
  rows run FAISS on its default threads, every core).
* ``langchain-qdrant``: ``QdrantVectorStore`` in ``RetrievalMode.HYBRID`` with the same hashed
  sparse encoder (``similarity_search(k=50)``, first 10: its prefetch depth is ``k``).
* ``llamaindex-faiss``: ``QueryFusionRetriever(mode="reciprocal_rerank")`` over a
  ``VectorStoreIndex`` on ``FaissVectorStore`` (exact inner product) and ``BM25Retriever`` (bm25s);
  no LLM query generation.
* ``llamaindex-qdrant``: ``QdrantVectorStore(enable_hybrid=True)`` with the hashed sparse encoder,
  queried in hybrid mode (its own relative-score fusion of the two lists).
* ``langchain-inmemory`` / ``llamaindex-simple``: the frameworks' default in-memory stores in the
  same two retrievers, labelled as defaults (a user who has not picked a vector store).

The Qdrant-based systems run on qdrant-client's local mode (``location=":memory:"``), a Python
implementation of Qdrant's API: their latency says what local mode costs, not what a Qdrant
server would. They are run up to ``qdrant_max`` items; the default stores up to ``default_max``.

Timing: all systems are built for a size, then measured in interleaved rounds; in each round
every system answers a block of queries (about one second's worth) quiet, and again under the
background load of ``benchmarks/_load.py``. A figure is the median over rounds of the block p50,
with the rounds' min and max. p95 pools the quiet samples.

Ours searches an approximate HNSW graph, the FAISS and Qdrant-local rows scan every vector: so
every system with a dense search of its own also reports dense recall@10 against exact search on
the same queries, and ``--ef-sweep`` measures ours' fused p50 and recall at each search width
(``hnsw_ef``), for comparing at matched recall.

    .venv/bin/python -m benchmarks.bench_retrieval --sizes 1000,10000,50000,200000
    .venv/bin/python -m benchmarks.bench_retrieval --sizes 50000 --systems ours --quiet-only \
        --ef-sweep 64,128,256,512,1024 [--vectors isotropic]
    .venv/bin/python -m benchmarks.run --only retrieval [--quick]

Needs (benchmark only): the ``bench`` dependency group (FAISS, langchain-qdrant, LlamaIndex's
FAISS and Qdrant stores, BM25 retrievers).
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import re
import statistics
import tempfile
import time
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import RESULTS, edge_engine, save, spread
from benchmarks._load import BackgroundLoad
from benchmarks._peers import langchain_ensemble, langchain_lookup, llamaindex_fusion, llamaindex_lookup
from mm_rag_plugin.retrievers import FusedRetriever, MultiModalIndex
from mm_rag_plugin.retrievers.engine import ListQuery
from mm_rag_plugin.types import ImageChunk, TextChunk

K = 10
TOP = 50  # per-list depth for every system (mm-rag's default prefetch for k=10)
BLOCK_SECONDS = 1.0  # each system answers about this long per round and mode


# ---------------------------------------------------------------------- data
def vocabulary(size: int, rng: np.random.Generator) -> np.ndarray:
    """*size* distinct pronounceable words of 2-4 syllables, letters only: a word like ``term12``
    is split by a BM25 analyser into ``term`` + ``12``, and a token every document shares makes
    every document match every query (no real corpus looks like that)."""
    onsets = [*"bcdfghjklmnprstvz", "br", "ch", "st", "tr", "sh", "pl", "gr", "kr"]
    vowels = ["a", "e", "i", "o", "u", "ai", "ou", "ea"]
    codas = ["", "", "", "n", "r", "s", "l", "m", "t"]
    words: dict[str, None] = {}
    while len(words) < size:
        syllables = rng.integers(2, 5)
        word = "".join(
            onsets[rng.integers(len(onsets))] + vowels[rng.integers(len(vowels))] + codas[rng.integers(len(codas))]
            for _ in range(syllables)
        )
        words.setdefault(word)
    return np.array(list(words))


def make_data(n: int, dim: int, n_queries: int, seed: int = 0, vectors: str = "clustered", image_every: int = 5):
    rng = np.random.default_rng(seed)
    vocab = vocabulary(20000, rng)
    p = 1.0 / np.arange(101, len(vocab) + 101) ** 1.1  # Zipf from rank 101: the stop words a BM25 analyser drops are not drawn
    p /= p.sum()
    lengths = np.where(np.arange(n) % image_every == image_every - 1, rng.integers(3, 20, n), rng.integers(20, 120, n))
    words = vocab[rng.choice(len(vocab), size=int(lengths.sum()), p=p)]
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    chunks, texts = [], []
    for i in range(n):
        text = " ".join(words[bounds[i] : bounds[i + 1]])
        if i % image_every == image_every - 1:
            chunks.append(
                ImageChunk(
                    id=f"img{i}",
                    source=f"doc{i // 50}.pdf",
                    image_path=f"/images/{i}.png",
                    content_hash=f"h{i}",
                    ocr_text=text,
                    page=i % 20 + 1,
                )
            )
        else:
            chunks.append(
                TextChunk(id=f"txt{i}", text=text, source=f"doc{i // 50}.pdf", page=i % 20 + 1, position=i)
            )
        texts.append(text)
    if vectors == "clustered":
        vecs, qvecs = clustered_vectors(rng, n, dim, n_queries)
    else:  # "isotropic": no near neighbours, the worst case for a graph index
        vecs, qvecs = (unit(rng.normal(size=(m, dim)).astype(np.float32)) for m in (n, n_queries))
    distinct: dict[str, None] = {}  # distinct 3-word queries over the commoner words
    while len(distinct) < n_queries:
        distinct.setdefault(" ".join(rng.choice(vocab[:3000], size=3, replace=False)))
    return chunks, texts, vecs, list(distinct), qvecs


def clustered_vectors(rng: np.random.Generator, n: int, dim: int, n_queries: int) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around gaussian centres, the model of ``bench_engines`` (CLIP-like: a vector's
    neighbours are much closer than a random pair): uneven cluster sizes, per cluster a spread
    that puts its vectors at cosine ~0.74-0.89 to the centre; held-out queries near the centres
    of clusters drawn by size. Isotropic random vectors would have no near neighbours at all,
    the one case an approximate (graph) index handles worst and no embedding model produces."""
    c = min(5_000, max(1_000, n // 200))  # bench_engines' count
    centres = rng.normal(size=(c, dim)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    size = rng.zipf(1.6, c).clip(1, 50).astype(np.float64)
    spread = rng.uniform(0.5, 0.9, c).astype(np.float32)

    def around(cl: np.ndarray) -> np.ndarray:
        return unit(centres[cl] + rng.normal(size=(len(cl), dim)).astype(np.float32) * (spread[cl, None] / np.sqrt(dim)))

    vecs = around(rng.choice(c, size=n, p=size / size.sum()))
    return vecs, around(rng.choice(c, size=n_queries, p=size / size.sum()))


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def exact_top(vecs: np.ndarray, qvecs: np.ndarray, k: int) -> np.ndarray:
    """Rows of the k nearest vectors (inner product over unit vectors) of each query, exactly."""
    out = np.empty((len(qvecs), k), dtype=np.int64)
    for s in range(0, len(qvecs), 50):
        scores = qvecs[s : s + 50] @ vecs.T
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        order = np.argsort(-np.take_along_axis(scores, top, 1), axis=1)
        out[s : s + 50] = np.take_along_axis(top, order, 1)
    return out


class Data:
    def __init__(self, n: int, dim: int, n_queries: int = 200, vectors: str = "clustered", image_every: int = 5) -> None:
        self.n, self.dim = n, dim
        self.chunks, self.texts, self.vecs, self.queries, self.qvecs = make_data(
            n, dim, n_queries, vectors=vectors, image_every=image_every
        )
        self.table = {q: self.qvecs[i] for i, q in enumerate(self.queries)}
        self.by_text = {t: self.vecs[i] for i, t in enumerate(self.texts)}
        self.metas = [{"source": c.source, "kind": c.kind} for c in self.chunks]


class LookupEmbedder:
    """mm-rag Embedder answering from precomputed vectors (no model time)."""

    def __init__(self, table: dict[str, np.ndarray], dim: int) -> None:
        self.table, self.dim = table, dim

    def embed_texts(self, texts):
        return np.stack([self.table[t] for t in texts])

    def embed_images(self, images, *, on_error="raise"):
        return np.stack([self.table[str(i)] for i in images])

    def embed_query(self, text=None, *, image=None):
        return self.table[text if image is None else str(image)]


_WORD = re.compile(r"\w+")


def hashed_tf(text: str) -> tuple[list[int], list[float]]:
    """A user's offline sparse encoder for Qdrant: term counts under 31-bit hashes of the lowercased
    words (Qdrant's IDF modifier supplies the inverse document frequency)."""
    counts: Counter[int] = Counter(zlib.crc32(w.encode()) & 0x7FFFFFFF for w in _WORD.findall(text.lower()))
    return list(counts), [float(c) for c in counts.values()]


def hashed_query(text: str) -> tuple[list[int], list[float]]:
    ids = sorted({zlib.crc32(w.encode()) & 0x7FFFFFFF for w in _WORD.findall(text.lower())})
    return ids, [1.0] * len(ids)


class CountingClient:
    """A qdrant-client proxy that counts the calls made through it (requests to the engine)."""

    def __init__(self, client: Any) -> None:
        self._client, self.calls = client, Counter()

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._client, name)
        if not callable(attr) or name.startswith("_"):
            return attr

        def counted(*a: Any, **kw: Any) -> Any:
            self.calls[name] += 1
            return attr(*a, **kw)

        return counted


def local_client() -> Any:
    """qdrant-client's local mode in memory (the stand-in for a server)."""
    from qdrant_client import QdrantClient

    return QdrantClient(location=":memory:")


# ---------------------------------------------------------------------- systems
class System:
    """One contestant: ``build`` (timed by the caller), ``query(i)`` answers query *i*, ``close``."""

    name = ""
    group = ""

    def build(self, d: Data, tmp: Path) -> None:
        raise NotImplementedError

    def query(self, i: int) -> list:
        raise NotImplementedError

    def calls_per_query(self) -> float | None:
        return None

    def dense_rows(self, i: int) -> list[int] | None:
        """Rows of the dense top K of query *i* as this system's vector search finds them (for
        recall against exact search); None where the system exposes no dense search apart."""
        return None

    def close(self) -> None:
        return None


def index_dense_rows(index: MultiModalIndex, qvec: np.ndarray) -> list[int]:
    """Rows of the dense top K of *qvec* in a ``MultiModalIndex`` built from ``make_data``."""
    got = index.search_lists([ListQuery("dense", K, dense=qvec)], ())[0]
    return [int(c.id[3:]) for c in index.chunks([pid for pid, _ in got]).values()]


def build_mm(folder: Path | None, chunks, vecs, dim: int, **options: Any) -> MultiModalIndex:
    """A Qdrant Edge index in *folder* (or, with ``client=``, a qdrant-client collection), loaded in
    batches of 1024 and optimized (HNSW built)."""
    index = MultiModalIndex(folder, dim=dim, show_progress=False, **options)
    for s in range(0, len(chunks), 1024):
        index.add_embedded(chunks[s : s + 1024], vecs[s : s + 1024])
    index.optimize()
    return index


class Ours(System):
    group = "ours"

    def __init__(self, quantization: str | None = None, *, defaults: bool = False, pool: bool = False, acorn: bool = True) -> None:
        self.options = {"quantization": quantization} if quantization else {}
        self.name = "ours" if quantization is None else f"ours-{quantization}"
        # the retriever as a user gets it, near-duplicate removal included (it reads the hits'
        # vectors); the other rows turn that off, as the peers have nothing like it
        self.retriever_options: dict[str, Any] = {} if defaults else {"near_duplicate_threshold": None}
        if defaults:
            self.name += "-defaults"
        # pool: the shard built with Qdrant Edge's own search pool (a thread per CPU) instead of
        # the library's one search thread (_edge.SEARCH_THREADS), recorded in the shard
        self.pool = pool
        if pool:
            self.name = "ours-pool"
        # acorn=False: kind lists searched without ACORN, as before it was used (no filter-aware
        # search for a kind too large for its own graph links)
        self.acorn = acorn
        if not acorn:
            self.name = "ours-noacorn"

    def build(self, d: Data, tmp: Path) -> None:
        from mm_rag_plugin.retrievers import _edge

        folder = tmp / self.name
        before = _edge.SEARCH_THREADS
        _edge.SEARCH_THREADS = None if self.pool else before
        try:
            build_mm(folder, d.chunks, d.vecs, d.dim, **self.options).close()
        finally:
            _edge.SEARCH_THREADS = before
        share = _edge.KIND_GRAPH_SHARE
        _edge.KIND_GRAPH_SHARE = share if self.acorn else 1.0
        try:
            t = time.perf_counter()
            self.index = MultiModalIndex(folder, show_progress=False, **self.options)
            self.reopen_s = time.perf_counter() - t
        finally:
            _edge.KIND_GRAPH_SHARE = share
        self.d = d
        self.r = FusedRetriever(self.index, LookupEmbedder(d.table, d.dim), k=K, prefetch_k=TOP, **self.retriever_options)

    def query(self, i: int) -> list:
        return self.r.retrieve(self.d.queries[i])

    def dense_rows(self, i: int) -> list[int] | None:
        return index_dense_rows(self.index, self.d.qvecs[i])

    def close(self) -> None:
        self.index.close()


class OursServer(System):
    name, group = "ours-qdrant-client", "qdrant (local mode)"

    def build(self, d: Data, tmp: Path) -> None:
        self.client = CountingClient(local_client())
        self.index = build_mm(None, d.chunks, d.vecs, d.dim, client=self.client)
        self.d = d
        self.r = FusedRetriever(
            self.index,
            LookupEmbedder(d.table, d.dim),
            k=K,
            prefetch_k=TOP,
            near_duplicate_threshold=None,
            fusion="server",
        )
        self.client.calls.clear()
        self.queries = 0

    def query(self, i: int) -> list:
        self.queries += 1
        return self.r.retrieve(self.d.queries[i])

    def calls_per_query(self) -> float | None:
        return sum(self.client.calls.values()) / self.queries if self.queries else None

    def dense_rows(self, i: int) -> list[int] | None:
        return index_dense_rows(self.index, self.d.qvecs[i])

    def close(self) -> None:
        self.index.close()


class QdrantPlain(System):
    """qdrant-client alone, the way its docs build hybrid search: one Query API call per query."""

    name, group = "qdrant-client", "qdrant (local mode)"
    collection = "docs"

    def build(self, d: Data, tmp: Path) -> None:
        from qdrant_client import models

        client = local_client()
        client.create_collection(
            self.collection,
            vectors_config={"dense": models.VectorParams(size=d.dim, distance=models.Distance.COSINE)},
            sparse_vectors_config={"bm25": models.SparseVectorParams(modifier=models.Modifier.IDF)},
        )
        for s in range(0, d.n, 256):
            points = []
            for i in range(s, min(d.n, s + 256)):
                idx, val = hashed_tf(d.texts[i])
                points.append(
                    models.PointStruct(
                        id=i,
                        vector={
                            "dense": d.vecs[i].tolist(),
                            "bm25": models.SparseVector(indices=idx, values=val),
                        },
                        payload={"text": d.texts[i], **d.metas[i]},
                    )
                )
            client.upsert(self.collection, points=points, wait=True)
        self.client = CountingClient(client)
        self.models, self.d, self.queries = models, d, 0

    def query(self, i: int) -> list:
        m, d = self.models, self.d
        self.queries += 1
        idx, val = hashed_query(d.queries[i])
        return self.client.query_points(
            self.collection,
            prefetch=[
                m.Prefetch(query=d.qvecs[i].tolist(), using="dense", limit=TOP),
                m.Prefetch(query=m.SparseVector(indices=idx, values=val), using="bm25", limit=TOP),
            ],
            query=m.FusionQuery(fusion=m.Fusion.RRF),
            limit=K,
            with_payload=True,
        ).points

    def calls_per_query(self) -> float | None:
        return sum(self.client.calls.values()) / self.queries if self.queries else None

    def dense_rows(self, i: int) -> list[int] | None:
        got = self.client.query_points(self.collection, query=self.d.qvecs[i].tolist(), using="dense", limit=K)
        return [int(p.id) for p in got.points]


class _Ensemble(System):
    group = "langchain"

    def _ensemble(self, d: Data, dense: Any) -> None:
        from langchain_community.retrievers import BM25Retriever

        self.ens = langchain_ensemble(dense, BM25Retriever.from_documents(self.docs, k=TOP), TOP)
        self.d = d

    def _docs(self, d: Data) -> None:
        from langchain_core.documents import Document

        self.docs = [Document(id=f"d{i}", page_content=t, metadata=d.metas[i]) for i, t in enumerate(d.texts)]

    def query(self, i: int) -> list:
        return self.ens.invoke(self.d.queries[i])[:K]


class LangchainFaiss(_Ensemble):
    name = "langchain-faiss"

    def build(self, d: Data, tmp: Path) -> None:
        from langchain_community.vectorstores import FAISS
        from langchain_community.vectorstores.utils import DistanceStrategy

        self._docs(d)
        store = FAISS.from_embeddings(
            list(zip(d.texts, d.vecs.tolist(), strict=True)),
            langchain_lookup(d.table, d.by_text),
            metadatas=d.metas,
            ids=[f"d{i}" for i in range(d.n)],
            distance_strategy=DistanceStrategy.MAX_INNER_PRODUCT,
        )
        self.store = store
        self._ensemble(d, store)

    def dense_rows(self, i: int) -> list[int] | None:
        _, pos = self.store.index.search(self.d.qvecs[i][None, :], K)
        return [int(self.store.index_to_docstore_id[int(p)][1:]) for p in pos[0]]


class LangchainInMemory(_Ensemble):
    name, group = "langchain-inmemory", "defaults"

    def build(self, d: Data, tmp: Path) -> None:
        from langchain_core.vectorstores import InMemoryVectorStore

        self._docs(d)
        store = InMemoryVectorStore(langchain_lookup(d.table, d.by_text))
        store.add_documents(self.docs)
        self._ensemble(d, store)


class LangchainQdrant(System):
    name, group = "langchain-qdrant", "qdrant (local mode)"

    def build(self, d: Data, tmp: Path) -> None:
        from langchain_qdrant import QdrantVectorStore, RetrievalMode, SparseEmbeddings, SparseVector
        from qdrant_client import models

        class HashedSparse(SparseEmbeddings):
            def embed_documents(self, texts):
                return [SparseVector(indices=i, values=v) for i, v in map(hashed_tf, texts)]

            def embed_query(self, text):
                i, v = hashed_query(text)
                return SparseVector(indices=i, values=v)

        client = local_client()
        client.create_collection(
            "lc",
            vectors_config={"dense": models.VectorParams(size=d.dim, distance=models.Distance.COSINE)},
            sparse_vectors_config={"bm25": models.SparseVectorParams(modifier=models.Modifier.IDF)},
        )
        self.store = QdrantVectorStore(
            client,
            "lc",
            embedding=langchain_lookup(d.table, d.by_text),
            retrieval_mode=RetrievalMode.HYBRID,
            sparse_embedding=HashedSparse(),
            vector_name="dense",
            sparse_vector_name="bm25",
        )
        self.store.add_texts(d.texts, metadatas=d.metas, batch_size=256)
        self.d = d

    def query(self, i: int) -> list:
        return self.store.similarity_search(self.d.queries[i], k=TOP)[:K]


class _Fusion(System):
    group = "llamaindex"

    def _nodes(self, d: Data) -> list:
        from llama_index.core.schema import TextNode

        return [
            TextNode(id_=f"n{i}", text=t, embedding=d.vecs[i].tolist(), metadata=d.metas[i])
            for i, t in enumerate(d.texts)
        ]

    def _fusion(self, d: Data, index: Any, nodes: list) -> None:
        from llama_index.retrievers.bm25 import BM25Retriever

        self.r = llamaindex_fusion(
            index, BM25Retriever.from_defaults(nodes=nodes, similarity_top_k=TOP), TOP, K
        )
        self.d = d

    def query(self, i: int) -> list:
        return self.r.retrieve(self.d.queries[i])


class LlamaFaiss(_Fusion):
    name = "llamaindex-faiss"

    def build(self, d: Data, tmp: Path) -> None:
        import faiss
        from llama_index.core import StorageContext, VectorStoreIndex
        from llama_index.vector_stores.faiss import FaissVectorStore

        nodes = self._nodes(d)
        self.faiss = faiss.IndexFlatIP(d.dim)
        ctx = StorageContext.from_defaults(vector_store=FaissVectorStore(faiss_index=self.faiss))
        index = VectorStoreIndex(
            nodes, storage_context=ctx, embed_model=llamaindex_lookup(d.table, d.by_text), show_progress=False
        )
        self._fusion(d, index, nodes)

    def dense_rows(self, i: int) -> list[int] | None:
        _, pos = self.faiss.search(self.d.qvecs[i][None, :], K)  # nodes were added in row order
        return [int(p) for p in pos[0]]


class LlamaSimple(_Fusion):
    name, group = "llamaindex-simple", "defaults"

    def build(self, d: Data, tmp: Path) -> None:
        from llama_index.core import VectorStoreIndex

        nodes = self._nodes(d)
        index = VectorStoreIndex(
            nodes, embed_model=llamaindex_lookup(d.table, d.by_text), show_progress=False
        )
        self._fusion(d, index, nodes)


class LlamaQdrant(System):
    name, group = "llamaindex-qdrant", "qdrant (local mode)"

    def build(self, d: Data, tmp: Path) -> None:
        from llama_index.core import StorageContext, VectorStoreIndex
        from llama_index.core.schema import TextNode
        from llama_index.vector_stores.qdrant import QdrantVectorStore
        from qdrant_client import models

        def docs(texts: list[str]) -> tuple[list[list[int]], list[list[float]]]:
            enc = [hashed_tf(t) for t in texts]
            return [i for i, _ in enc], [v for _, v in enc]

        def queries(texts: list[str]) -> tuple[list[list[int]], list[list[float]]]:
            enc = [hashed_query(t) for t in texts]
            return [i for i, _ in enc], [v for _, v in enc]

        store = QdrantVectorStore(
            "li",
            client=local_client(),
            enable_hybrid=True,
            sparse_doc_fn=docs,
            sparse_query_fn=queries,
            sparse_config=models.SparseVectorParams(modifier=models.Modifier.IDF),
            batch_size=256,
        )
        nodes = [
            TextNode(
                id_=f"00000000-0000-0000-0000-{i:012d}",
                text=t,
                embedding=d.vecs[i].tolist(),
                metadata=d.metas[i],
            )
            for i, t in enumerate(d.texts)
        ]
        index = VectorStoreIndex(
            nodes,
            storage_context=StorageContext.from_defaults(vector_store=store),
            embed_model=llamaindex_lookup(d.table, d.by_text),
            show_progress=False,
        )
        self.r = index.as_retriever(
            vector_store_query_mode="hybrid", similarity_top_k=TOP, sparse_top_k=TOP, hybrid_top_k=K
        )
        self.d = d

    def query(self, i: int) -> list:
        return self.r.retrieve(self.d.queries[i])[:K]


class _OneThread:
    """A FAISS peer with FAISS on one thread (``omp_set_num_threads(1)`` around each query; the
    plain row runs on FAISS's default threads, every core)."""

    name: str

    def query(self, i: int) -> list:
        import faiss

        default = faiss.omp_get_max_threads()
        faiss.omp_set_num_threads(1)
        try:
            return super().query(i)  # type: ignore[misc]
        finally:
            faiss.omp_set_num_threads(default)


class LangchainFaiss1T(_OneThread, LangchainFaiss):
    name = "langchain-faiss-1t"


class LlamaFaiss1T(_OneThread, LlamaFaiss):
    name = "llamaindex-faiss-1t"


SYSTEMS: dict[str, Callable[[], System]] = {
    "ours": Ours,
    "ours-defaults": lambda: Ours(defaults=True),
    "ours-pool": lambda: Ours(defaults=True, pool=True),
    "ours-noacorn": lambda: Ours(acorn=False),
    "ours-int8": lambda: Ours("int8"),
    "ours-qdrant-client": OursServer,
    "qdrant-client": QdrantPlain,
    "langchain-faiss": LangchainFaiss,
    "langchain-faiss-1t": LangchainFaiss1T,
    "langchain-qdrant": LangchainQdrant,
    "llamaindex-faiss": LlamaFaiss,
    "llamaindex-faiss-1t": LlamaFaiss1T,
    "llamaindex-qdrant": LlamaQdrant,
    "langchain-inmemory": LangchainInMemory,
    "llamaindex-simple": LlamaSimple,
}
#: What a run measures unless told otherwise (``ours-noacorn`` is for the comparison it names).
DEFAULT_SYSTEMS = tuple(name for name in SYSTEMS if name != "ours-noacorn")
LOCAL_MODE = {"ours-qdrant-client", "qdrant-client", "langchain-qdrant", "llamaindex-qdrant"}
DEFAULT_STORES = {"langchain-inmemory", "llamaindex-simple"}


# ---------------------------------------------------------------------- measurement
def _block(system: System, start: int, n_queries: int, size: int) -> tuple[list[float], int]:
    out = []
    i = start
    for _ in range(size):
        t = time.perf_counter()
        got = system.query(i % n_queries)
        out.append((time.perf_counter() - t) * 1000)
        if not got:
            raise AssertionError(f"{system.name}: query {i % n_queries} found nothing")
        i += 1
    return out, i


def dense_recall(system: System, truth: np.ndarray) -> float | None:
    """Share of the exact dense top K that *system*'s vector search finds, over the queries."""
    found = [system.dense_rows(i) for i in range(len(truth))]
    if found[0] is None:
        return None
    hits = sum(len(set(rows) & set(truth[i].tolist())) for i, rows in enumerate(found))
    return round(hits / truth.size, 4)


def kind_recall(system: Ours, d: Data, n_queries: int = 100) -> dict[str, float]:
    """Recall@10 of the dense lists a fused query runs, each restricted to a kind (``dense_text``,
    ``dense_image``), against exact search among that kind's vectors; by kind."""
    out: dict[str, float] = {}
    kinds = np.array([c.kind for c in d.chunks])
    for kind in ("text", "image"):
        rows = np.flatnonzero(kinds == kind)
        truth = rows[exact_top(d.vecs[rows], d.qvecs[:n_queries], K)]
        hits = 0
        for i in range(n_queries):
            got = system.index.search_lists([ListQuery(f"dense_{kind}", K, dense=d.qvecs[i], kind=kind)], ())[0]
            found = {int(c.id[3:]) for c in system.index.chunks([pid for pid, _ in got]).values()}
            hits += len(found & set(truth[i].tolist()))
        out[kind] = round(hits / truth.size, 4)
    return out


def sweep_ef(system: Ours, d: Data, truth: np.ndarray, efs: Sequence[int]) -> dict[str, Any]:
    """Ours at each search width ``hnsw_ef``: fused p50 over every query (quiet) and dense recall@10."""
    from mm_rag_plugin.retrievers import _edge

    engine = edge_engine(system.index)
    before = _edge.SEARCH_EF
    out: dict[str, Any] = {}
    try:
        for ef in efs:
            _edge.SEARCH_EF = ef
            engine._set_params()
            system.query(0)
            ms, _ = _block(system, 0, len(d.queries), len(d.queries))
            out[str(ef)] = {
                "p50_ms": round(statistics.median(ms), 3),
                "dense_recall_at_10": dense_recall(system, truth),
                "kind_recall_at_10": kind_recall(system, d),
            }
    finally:
        _edge.SEARCH_EF = before
        engine._set_params()
    return out


def run_size(
    n: int,
    dim: int = 512,
    systems: Sequence[str] = DEFAULT_SYSTEMS,
    rounds: int = 3,
    load: BackgroundLoad | None = None,
    log: Callable[[str], None] = print,
    ef_sweep: Sequence[int] = (),
    vectors: str = "clustered",
    image_every: int = 5,
) -> dict[str, Any]:
    """Every system at one index size: build, then interleaved rounds of query blocks; then each
    system's dense recall@10 against exact search and, with *ef_sweep*, ours at each ``hnsw_ef``."""
    from mm_rag_plugin.retrievers import _edge

    d = Data(n, dim, vectors=vectors, image_every=image_every)
    truth = exact_top(d.vecs, d.qvecs, K)
    out: dict[str, Any] = {}
    built: dict[str, System] = {}
    with tempfile.TemporaryDirectory() as tmp:
        try:
            for name in systems:
                system = SYSTEMS[name]()
                gc.collect()
                t = time.perf_counter()
                system.build(d, Path(tmp))
                build_s = time.perf_counter() - t
                built[name] = system
                warm = [system.query(j) for j in range(2)]  # first queries: lazy loading, caches
                assert all(warm), name
                t = time.perf_counter()
                system.query(2)
                one = time.perf_counter() - t
                block = int(min(100, max(3, BLOCK_SECONDS / max(one, 1e-4))))
                out[name] = {
                    "group": system.group,
                    "build_items_per_s": round(n / build_s, 1),
                    "block": block,
                    "_next": 3,
                    "_quiet": [],
                    "_loaded": [],
                    "_pooled": [],
                }
                if isinstance(system, Ours):
                    out[name]["reopen_s"] = round(system.reopen_s, 3)
                    out[name]["hnsw_ef"] = _edge.search_ef(n)
                    out[name]["exact_below"] = _edge.EXACT_BELOW
                log(
                    f"  N={n:>7} {name:19s} built {n / build_s:9.0f} items/s, {one * 1000:8.2f} ms/query, block {block}"
                )
            modes = ("quiet", "loaded") if load else ("quiet",)
            for r in range(rounds):
                for mode in modes:
                    with load.on() if mode == "loaded" and load else contextlib.nullcontext():
                        for name, system in built.items():
                            o = out[name]
                            ms, o["_next"] = _block(system, o["_next"], len(d.queries), o["block"])
                            o[f"_{mode}"].append(statistics.median(ms))
                            if mode == "quiet":
                                o["_pooled"] += ms
                log(
                    f"  N={n:>7} round {r + 1}: "
                    + ", ".join(f"{k} {v['_quiet'][-1]:.1f}" for k, v in out.items())
                )
            for name, system in built.items():
                o = out[name]
                pooled = sorted(o.pop("_pooled"))
                o["quiet"] = spread(o.pop("_quiet"))
                loaded = o.pop("_loaded")
                if loaded:
                    o["loaded"] = spread(loaded)
                o.pop("_next")
                o["p50_ms"] = o["quiet"]["median"]
                o["p95_ms"] = round(pooled[min(len(pooled) - 1, round(0.95 * (len(pooled) - 1)))], 3)
                o["queries"] = len(pooled)
                calls = system.calls_per_query()
                if calls is not None:
                    o["calls_per_query"] = round(calls, 3)
                recall = dense_recall(system, truth)  # after counting calls: its searches are not queries
                if recall is not None:
                    o["dense_recall_at_10"] = recall
                if isinstance(system, Ours):  # the kind-restricted lists a fused query runs
                    o["kind_recall_at_10"] = kind_recall(system, d)
            if ef_sweep and "ours" in built:
                out["ours"]["ef_sweep"] = sweep_ef(built["ours"], d, truth, ef_sweep)
                log(f"  N={n:>7} ours hnsw_ef sweep: {out['ours']['ef_sweep']}")
        finally:
            for system in built.values():
                system.close()
    gc.collect()
    return out


def chosen(n: int, systems: Sequence[str], qdrant_max: int | None, default_max: int | None) -> list[str]:
    return [
        s
        for s in systems
        if not (s in LOCAL_MODE and qdrant_max is not None and n > qdrant_max)
        and not (s in DEFAULT_STORES and default_max is not None and n > default_max)
    ]


def run(
    sizes: Sequence[int],
    dim: int = 512,
    systems: Sequence[str] = DEFAULT_SYSTEMS,
    qdrant_max: int | None = None,
    default_max: int | None = None,
    rounds: int = 3,
    loaded: bool = True,
    log: Callable[[str], None] = print,
    ef_sweep: Sequence[int] = (),
    vectors: str = "clustered",
    image_every: int = 5,
) -> dict[str, Any]:
    by_size: dict[str, Any] = {}
    load = BackgroundLoad() if loaded else None
    try:
        for n in sizes:
            by_size[str(n)] = run_size(
                n, dim, chosen(n, systems, qdrant_max, default_max), rounds, load, log, ef_sweep, vectors, image_every
            )
    finally:
        if load:
            load.close()
    return {
        "dim": dim,
        "k": K,
        "per_list_depth": TOP,
        "sizes": list(sizes),
        "vectors": vectors,
        "image_every": image_every,
        "rounds": rounds,
        "by_size": by_size,
        "qdrant_max": qdrant_max,
        "default_max": default_max,
        "load": load.describe() if load else None,
    }


def _ours_ef(by_system: dict[str, Any], key: str) -> str:
    """A search setting of ours at one size (every ours-* row records them)."""
    return next((str(v[key]) for name, v in by_system.items() if name.startswith("ours") and key in v), "?")


def _exact_note(by_system: dict[str, Any]) -> str:
    below = _ours_ef(by_system, "exact_below")
    return "" if below == "?" else f" (by N; a list of a kind with at most {int(below):,} items is searched exactly)"


def markdown(res: dict[str, Any]) -> list[str]:
    sizes = [str(n) for n in res["sizes"]]
    systems = [s for s in SYSTEMS if any(s in res["by_size"][n] for n in sizes)]
    rounds = res.get("rounds", 1)
    lines = [
        f"p50 ms of one fused query (top {res['k']}, lists {res['per_list_depth']} deep, {res['dim']}-d "
        f"{res.get('vectors', 'isotropic')} vectors looked up), median of {rounds} interleaved rounds (min-max), and relative to ours in the "
        "same mode.",
        "",
    ]
    modes = ["quiet"] + (["loaded"] if res.get("load") else [])
    for mode in modes:
        title = "Quiet machine" if mode == "quiet" else f"Under load: {res['load']}"
        lines += [
            f"**{title}**",
            "",
            "| system | " + " | ".join(f"N={int(n):,}" for n in sizes) + " |",
            "|---|" + "---:|" * len(sizes),
        ]
        for s in systems:
            cells = []
            for n in sizes:
                r = res["by_size"][n].get(s)
                base = res["by_size"][n].get("ours")
                if r is None or mode not in r:
                    cells.append("not run")
                    continue
                m = r[mode]
                rel = ""
                if s != "ours" and base and mode in base:
                    ratio = m["median"] / base[mode]["median"]
                    rel = f" **{ratio:.1f}x**" if ratio < 100 else f" **{ratio:.0f}x**"
                cells.append(f"{m['median']:.1f} ({m['min']:.1f}-{m['max']:.1f}){rel}")
            lines.append(f"| {s} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += [
        "p95 ms (quiet, pooled): "
        + "; ".join(
            f"{s} "
            + ", ".join(f"{res['by_size'][n][s]['p95_ms']:.1f}" for n in sizes if s in res["by_size"][n])
            for s in systems
        )
        + "."
    ]
    calls = {
        s: res["by_size"][n][s]["calls_per_query"]
        for n in sizes
        for s in systems
        if "calls_per_query" in res["by_size"][n].get(s, {})
    }
    if calls:
        lines += [
            "",
            "Requests to Qdrant per query: " + ", ".join(f"{s} {c:g}" for s, c in calls.items()) + ".",
        ]
    lines += [
        "",
        "Building the index (items/s, vectors precomputed, at each N): "
        + "; ".join(
            f"{s} "
            + ", ".join(
                f"{res['by_size'][n][s]['build_items_per_s']:.0f}" for n in sizes if s in res["by_size"][n]
            )
            for s in systems
        )
        + ". Ours writes every batch to Qdrant Edge's WAL and builds the HNSW graph (optimize); "
        "FAISS and the default stores are in memory; the Qdrant rows run on qdrant-client's local mode.",
    ]
    recalls = {
        s: [res["by_size"][n][s].get("dense_recall_at_10") for n in sizes if s in res["by_size"][n]]
        for s in systems
    }
    recalls = {s: v for s, v in recalls.items() if v and None not in v}
    if recalls:
        lines += [
            "",
            "Dense recall@10 against exact search, the benchmark's own queries, at each N: "
            + "; ".join(f"{s} " + ", ".join(f"{v:.3f}" for v in vals) for s, vals in recalls.items())
            + ". Ours searches an HNSW graph (approximate) with hnsw_ef "
            + ", ".join(_ours_ef(res["by_size"][n], "hnsw_ef") for n in sizes)
            + _exact_note(res["by_size"][sizes[0]])
            + "; FAISS IndexFlat and qdrant-client's local mode scan every vector (exact); the default "
            "stores scan too.",
        ]
    kinds = {
        s: [res["by_size"][n][s]["kind_recall_at_10"] for n in sizes if "kind_recall_at_10" in res["by_size"][n].get(s, {})]
        for s in systems
    }
    kinds = {s: v for s, v in kinds.items() if v}
    if kinds:
        lines += [
            "",
            f"Recall@10 of ours' lists restricted to a kind (one item in {res.get('image_every', 5)} is an image), "
            "against exact search among that kind, text / image at each N: "
            + "; ".join(f"{s} " + ", ".join(f"{r['text']:.3f} / {r['image']:.3f}" for r in vals) for s, vals in kinds.items())
            + ".",
        ]
    sweeps = {n: res["by_size"][n]["ours"]["ef_sweep"] for n in sizes if "ef_sweep" in res["by_size"][n].get("ours", {})}
    if sweeps:
        efs = list(next(iter(sweeps.values())))
        lines += [
            "",
            "Ours at each search width (hnsw_ef; quiet, one pass over the queries): fused p50 ms / dense recall@10.",
            "",
            "| hnsw_ef | " + " | ".join(f"N={int(n):,}" for n in sweeps) + " |",
            "|---|" + "---:|" * len(sweeps),
        ]
        for ef in efs:
            lines.append(
                f"| {ef} | "
                + " | ".join(
                    f"{sw[ef]['p50_ms']:.1f} / {sw[ef]['dense_recall_at_10']:.3f}" if ef in sw else "-"
                    for sw in sweeps.values()
                )
                + " |"
            )
    caps = []
    if res.get("qdrant_max"):
        caps.append(f"the qdrant-client local-mode rows up to {res['qdrant_max']:,} items")
    if res.get("default_max"):
        caps.append(f"the default in-memory stores up to {res['default_max']:,}")
    if caps:
        lines += ["", "Run: " + "; ".join(caps) + " (their cost grows linearly; see the module docstring)."]
    return lines


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000,50000")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--systems", default=",".join(DEFAULT_SYSTEMS), help=f"any of {', '.join(SYSTEMS)}")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quiet-only", action="store_true", help="no rounds under the background load")
    ap.add_argument("--qdrant-max", type=int, default=10_000)
    ap.add_argument("--default-max", type=int, default=50_000)
    ap.add_argument(
        "--ef-sweep",
        default="",
        help="comma-separated hnsw_ef values: ours' fused p50 and dense recall@10 at each (e.g. 64,128,256,512,1024)",
    )
    ap.add_argument(
        "--vectors",
        choices=("clustered", "isotropic"),
        default="clustered",
        help="vector model: clustered like embeddings (default) or isotropic random, a graph index's worst case",
    )
    ap.add_argument(
        "--image-every", type=int, default=5, help="one item in this many is an image (default 5: a fifth of the index)"
    )
    ap.add_argument("--out", default=str(RESULTS / "retrieval.json"))
    args = ap.parse_args(argv)
    res = run(
        [int(x) for x in args.sizes.split(",")],
        args.dim,
        args.systems.split(","),
        args.qdrant_max,
        args.default_max,
        args.rounds,
        not args.quiet_only,
        ef_sweep=[int(x) for x in args.ef_sweep.split(",") if x],
        vectors=args.vectors,
        image_every=args.image_every,
    )
    save(res, args.out, markdown)


if __name__ == "__main__":
    main()
