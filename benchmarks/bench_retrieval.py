"""Fused retrieval latency as the index grows: mm-rag-plugin vs LangChain, LlamaIndex and Qdrant.

Same synthetic data for everyone: N chunks (80 % text of 20-120 Zipf-distributed words, 20 %
"images" with 3-20 OCR words), each with a precomputed random unit vector; queries are 3 words
plus a random unit vector. Embedding is a table lookup for every system, so latency excludes model
time. Each system returns the top 10 of an RRF fusion of a dense list and a BM25 list, each list
50 deep:

* ``ours``: ``FusedRetriever`` over ``MultiModalIndex(folder)`` (Qdrant Edge in this process, HNSW
  built by ``optimize()``, reopened before querying), also created with ``quantization="int8"`` and
  ``"binary"`` (a creation-time setting: each is its own folder).
* ``qdrant-local``: ``MultiModalIndex(client=QdrantClient(location=":memory:"))``, the qdrant-client
  engine on qdrant-client's local mode (a stand-in for a server), fused by Qdrant itself
  (``query_points`` with prefetches and ``FusionQuery(RRF)``).
* ``llamaindex``: ``QueryFusionRetriever(mode="reciprocal_rerank")`` over a ``VectorStoreIndex``
  retriever and ``llama_index.retrievers.bm25.BM25Retriever`` (no LLM query generation).
* ``langchain``: ``EnsembleRetriever`` (weights 0.5/0.5) over an ``InMemoryVectorStore`` retriever
  and ``langchain_community`` ``BM25Retriever``.

The slow systems get fewer queries at large N (see ``QUERIES``); p95 of few queries is rough.

    .venv/bin/python -m benchmarks.bench_retrieval --sizes 1000,10000,50000,200000
    .venv/bin/python -m benchmarks.run --only retrieval [--quick]

Needs (benchmark only): llama-index-retrievers-bm25, langchain-community, langchain-classic, rank-bm25.
"""

from __future__ import annotations

import argparse
import gc
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import RESULTS, latencies_ms, percentiles, save
from mm_rag_plugin.retrievers import FusedRetriever, MultiModalIndex
from mm_rag_plugin.types import ImageChunk, TextChunk

K = 10
TOP = 50  # per-list depth for every system (mm-rag's default prefetch for k=10)


# ---------------------------------------------------------------------- data
def make_data(n: int, dim: int, n_queries: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    vocab = np.array([f"term{i}" for i in range(20000)])
    p = 1.0 / np.arange(1, len(vocab) + 1) ** 1.1
    p /= p.sum()
    lengths = np.where(np.arange(n) % 5 == 4, rng.integers(3, 20, n), rng.integers(20, 120, n))
    words = vocab[rng.choice(len(vocab), size=int(lengths.sum()), p=p)]
    bounds = np.concatenate([[0], np.cumsum(lengths)])
    chunks, texts = [], []
    for i in range(n):
        text = " ".join(words[bounds[i] : bounds[i + 1]])
        if i % 5 == 4:
            chunks.append(ImageChunk(id=f"img{i}", source=f"doc{i // 50}.pdf", image_path=f"/images/{i}.png",
                                     content_hash=f"h{i}", ocr_text=text, page=i % 20 + 1))
        else:
            chunks.append(TextChunk(id=f"txt{i}", text=text, source=f"doc{i // 50}.pdf", page=i % 20 + 1, position=i))
        texts.append(text)
    vecs = rng.normal(size=(n, dim)).astype(np.float32)
    vecs /= np.linalg.norm(vecs, axis=1, keepdims=True)
    queries = [" ".join(rng.choice(vocab[:3000], size=3)) + f" q{j}" for j in range(n_queries)]
    qvecs = rng.normal(size=(n_queries, dim)).astype(np.float32)
    qvecs /= np.linalg.norm(qvecs, axis=1, keepdims=True)
    return chunks, texts, vecs, queries, qvecs


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


# ---------------------------------------------------------------------- systems
def build_mm(folder: Path | None, chunks, vecs, dim: int, **options: Any) -> tuple[MultiModalIndex, float]:
    """A Qdrant Edge index in *folder* (or, with ``client=``, a qdrant-client collection), loaded in
    batches and optimized (HNSW built); returns it open and the build time."""
    t0 = time.perf_counter()
    index = MultiModalIndex(folder, dim=dim, show_progress=False, **options)
    for s in range(0, len(chunks), 1024):
        index.add_embedded(chunks[s : s + 1024], vecs[s : s + 1024])
    index.optimize()
    return index, time.perf_counter() - t0


def local_client() -> Any:
    """qdrant-client's local mode in memory (the qdrant-client engine's stand-in for a server)."""
    from qdrant_client import QdrantClient

    return QdrantClient(location=":memory:")


def query_mm(index: MultiModalIndex, table, dim: int, queries, fusion: str = "client") -> list[float]:
    r = FusedRetriever(index, LookupEmbedder(table, dim), k=K, prefetch_k=TOP, fusion=fusion,
                       near_duplicate_threshold=None)
    return latencies_ms(lambda q: r.retrieve(q), queries)


def bench_llamaindex(texts, vecs, queries, table, top=TOP):
    from llama_index.core import VectorStoreIndex
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from llama_index.core.llms import MockLLM
    from llama_index.core.retrievers import QueryFusionRetriever
    from llama_index.core.schema import TextNode
    from llama_index.retrievers.bm25 import BM25Retriever

    class Lookup(BaseEmbedding):
        def _get_query_embedding(self, query: str):
            return table[query].tolist()

        async def _aget_query_embedding(self, query: str):
            return table[query].tolist()

        def _get_text_embedding(self, text: str):
            return table[text].tolist()

    t0 = time.perf_counter()
    nodes = [TextNode(id_=f"n{i}", text=t, embedding=vecs[i].tolist()) for i, t in enumerate(texts)]
    vindex = VectorStoreIndex(nodes, embed_model=Lookup(model_name="lookup"), show_progress=False)
    bm25 = BM25Retriever.from_defaults(nodes=nodes, similarity_top_k=top)
    retriever = QueryFusionRetriever(
        [vindex.as_retriever(similarity_top_k=top), bm25],
        mode="reciprocal_rerank", similarity_top_k=K, num_queries=1, use_async=False, llm=MockLLM(),
    )  # num_queries=1: no LLM query generation, the LLM is never called
    ingest_s = time.perf_counter() - t0
    return ingest_s, latencies_ms(lambda q: retriever.retrieve(q), queries)


def bench_langchain(texts, vecs, queries, table, top=TOP):
    from langchain_community.retrievers import BM25Retriever
    from langchain_core.documents import Document
    from langchain_core.embeddings import Embeddings
    from langchain_core.vectorstores import InMemoryVectorStore

    try:
        from langchain_classic.retrievers import EnsembleRetriever
    except ImportError:  # older layout
        from langchain.retrievers import EnsembleRetriever

    by_text = {t: vecs[i] for i, t in enumerate(texts)}

    class Lookup(Embeddings):
        def embed_documents(self, docs):
            return [by_text[d].tolist() for d in docs]

        def embed_query(self, text):
            return table[text].tolist()

    t0 = time.perf_counter()
    docs = [Document(id=f"d{i}", page_content=t) for i, t in enumerate(texts)]
    store = InMemoryVectorStore(Lookup())
    store.add_documents(docs)
    bm25 = BM25Retriever.from_documents(docs, k=top)
    ens = EnsembleRetriever(retrievers=[store.as_retriever(search_kwargs={"k": top}), bm25], weights=[0.5, 0.5])
    ingest_s = time.perf_counter() - t0
    return ingest_s, latencies_ms(lambda q: ens.invoke(q)[:K], queries)


# ---------------------------------------------------------------------- main
SYSTEMS = ("ours", "ours-int8", "ours-binary", "qdrant-local", "llamaindex", "langchain")
# queries per system at each size (the slow systems get fewer at large N)
QUERIES = {
    "ours": lambda n: 200,
    "qdrant-local": lambda n: 20 if n <= 10_000 else 8 if n <= 50_000 else 4,
    "llamaindex": lambda n: 30 if n <= 10_000 else 15 if n <= 50_000 else 8,
    "langchain": lambda n: 30 if n <= 10_000 else 15 if n <= 50_000 else 8,
}


def run_size(n: int, dim: int = 512, systems: Sequence[str] = SYSTEMS, log: Callable[[str], None] = print,
             ) -> dict[str, Any]:
    """Every system at one index size: ingest rate and p50/p95 latency."""
    n_q = QUERIES["ours"](n)
    chunks, texts, vecs, queries, qvecs = make_data(n, dim, n_q)
    table = {q: qvecs[i] for i, q in enumerate(queries)}
    out: dict[str, Any] = {}

    def record(name: str, build_s: float, ms: list[float]) -> None:
        out[name] = {**percentiles(ms), "ingest_items_per_s": round(n / build_s, 1)}
        log(f"  N={n:>7} {name:14s} p50 {out[name]['p50_ms']:9.2f} ms  p95 {out[name]['p95_ms']:9.2f} ms")

    with tempfile.TemporaryDirectory() as tmp:
        for q in (None, "int8", "binary"):
            name = "ours" if q is None else f"ours-{q}"
            if name not in systems:
                continue
            options = {"quantization": q} if q else {}
            ix, build_s = build_mm(Path(tmp) / name, chunks, vecs, dim, **options)
            ix.close()
            t = time.perf_counter()
            with MultiModalIndex(Path(tmp) / name, show_progress=False, **options) as ix:
                open_s = time.perf_counter() - t
                record(name, build_s, query_mm(ix, table, dim, queries))
                out[name]["reopen_s"] = round(open_s, 3)
        if "qdrant-local" in systems:
            ix, build_s = build_mm(None, chunks, vecs, dim, client=local_client())
            try:
                record("qdrant-local", build_s, query_mm(ix, table, dim, queries[: QUERIES["qdrant-local"](n)], "server"))
            finally:
                ix.close()
    gc.collect()
    if "llamaindex" in systems:
        build_s, ms = bench_llamaindex(texts, vecs, queries[: QUERIES["llamaindex"](n)], table)
        record("llamaindex", build_s, ms)
        gc.collect()
    if "langchain" in systems:
        build_s, ms = bench_langchain(texts, vecs, queries[: QUERIES["langchain"](n)], table)
        record("langchain", build_s, ms)
        gc.collect()
    return out


def run(sizes: Sequence[int], dim: int = 512, systems: Sequence[str] = SYSTEMS, qdrant_max: int | None = None,
        log: Callable[[str], None] = print) -> dict[str, Any]:
    by_size: dict[str, Any] = {}
    for n in sizes:
        chosen = [s for s in systems if not (s == "qdrant-local" and qdrant_max is not None and n > qdrant_max)]
        by_size[str(n)] = run_size(n, dim, chosen, log)
    return {"dim": dim, "k": K, "per_list_depth": TOP, "sizes": list(sizes), "by_size": by_size}


def markdown(res: dict[str, Any]) -> list[str]:
    sizes = [str(n) for n in res["sizes"]]
    systems = [s for s in SYSTEMS if any(s in res["by_size"][n] for n in sizes)]
    lines = [f"p50 / p95 ms of one fused query (top {res['k']}, lists {res['per_list_depth']} deep, "
             f"{res['dim']}-d), and p50 relative to ours.", "",
             "| system | " + " | ".join(f"N={int(n):,}" for n in sizes) + " |", "|---|" + "---:|" * len(sizes)]
    for s in systems:
        cells = []
        for n in sizes:
            r = res["by_size"][n].get(s)
            base = res["by_size"][n].get("ours")
            if r is None:
                cells.append("not run")
            else:
                ratio = r["p50_ms"] / base["p50_ms"] if base else 0.0
                rel = f" ({ratio:.1f}x)" if 0 < ratio < 10 else f" ({ratio:.0f}x)" if ratio else ""
                rel = "" if s == "ours" else rel
                cells.append(f"{r['p50_ms']:.1f} / {r['p95_ms']:.1f}{rel}")
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    lines += ["", "Building the index (items/s, vectors precomputed, at each N): " + "; ".join(
        f"{s} " + ", ".join(f"{res['by_size'][n][s]['ingest_items_per_s']:.0f}" for n in sizes if s in res["by_size"][n])
        for s in systems) + ". Ours writes every batch to Qdrant Edge's WAL (durable) and includes the HNSW "
        "build (optimize); LangChain's and LlamaIndex's stores are in memory."]
    return lines


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1000,10000,50000")
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--systems", default=",".join(SYSTEMS))
    ap.add_argument("--out", default=str(RESULTS / "retrieval.json"))
    args = ap.parse_args(argv)
    res = run([int(x) for x in args.sizes.split(",")], args.dim, args.systems.split(","))
    save(res, args.out, markdown)


if __name__ == "__main__":
    main()
