"""Fused retrieval benchmark: mm-rag-plugin engines vs LangChain and LlamaIndex fusion retrievers.

Same synthetic data for everyone: N chunks (80 % text of 20-120 Zipf-distributed words, 20 %
"images" with 3-20 OCR words), each with a precomputed random unit vector; queries are 3 words
plus a random unit vector. Embedding is a table lookup for every system, so latency excludes model
time. Each system returns the top 10 of an RRF fusion of a dense list and a BM25 list.

    python benchmarks/bench_retrieval.py --quick           # 5k items, a minute or so
    python benchmarks/bench_retrieval.py                   # 50k items (the issue's target)
    python benchmarks/bench_retrieval.py --skip-frameworks # only mm-rag-plugin engines

Needs (benchmark only): llama-index-retrievers-bm25, langchain-community, langchain-classic, rank-bm25.
"""

from __future__ import annotations

import argparse
import gc
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from mm_rag_plugin.retrievers import FusedRetriever, MultiModalIndex
from mm_rag_plugin.types import ImageChunk, TextChunk

K = 10


# ---------------------------------------------------------------------- data
def make_data(n: int, dim: int, n_queries: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    vocab = np.array([f"term{i}" for i in range(20000)])
    p = 1.0 / np.arange(1, len(vocab) + 1) ** 1.1
    p /= p.sum()
    chunks, texts = [], []
    for i in range(n):
        if i % 5 == 4:
            words = " ".join(rng.choice(vocab, size=int(rng.integers(3, 20)), p=p))
            chunks.append(ImageChunk(id=f"img{i}", source=f"doc{i // 50}.pdf", image_path=f"/images/{i}.png",
                                     content_hash=f"h{i}", ocr_text=words, page=i % 20 + 1))
        else:
            words = " ".join(rng.choice(vocab, size=int(rng.integers(20, 120)), p=p))
            chunks.append(TextChunk(id=f"txt{i}", text=words, source=f"doc{i // 50}.pdf", page=i % 20 + 1, position=i))
        texts.append(words)
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

    def embed_images(self, images):
        return np.stack([self.table[str(i)] for i in images])


# ---------------------------------------------------------------------- timing
def latencies(fn: Callable[[str], object], queries: list[str], warmup: int = 3) -> list[float]:
    for q in queries[:warmup]:
        fn(q)
    out = []
    for q in queries:
        t = time.perf_counter()
        fn(q)
        out.append((time.perf_counter() - t) * 1000)
    return out


def summary(ms: list[float]) -> tuple[float, float]:
    ms = sorted(ms)
    return statistics.median(ms), ms[min(len(ms) - 1, round(0.95 * (len(ms) - 1)))]


# ---------------------------------------------------------------------- systems
def bench_mm(engine: str, chunks, vecs, queries, table, dim, folder: Path, fusion: str = "client", index=None):
    t0 = time.perf_counter()
    own = index is None
    if own:
        index = MultiModalIndex(folder, engine=engine, dim=dim, show_progress=False)
        for s in range(0, len(chunks), 1024):
            index.add_embedded(chunks[s : s + 1024], vecs[s : s + 1024])
    ingest_s = time.perf_counter() - t0
    r = FusedRetriever(index, LookupEmbedder(table, dim), k=K, fusion=fusion, near_duplicate_threshold=None)
    ms = latencies(lambda q: r.retrieve(q), queries)
    return index, ingest_s, ms


def bench_llamaindex(texts, vecs, queries, table, dim, top):
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
    return ingest_s, latencies(lambda q: retriever.retrieve(q), queries)


def bench_langchain(texts, vecs, queries, table, dim, top):
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
    return ingest_s, latencies(lambda q: ens.invoke(q)[:K], queries)


# ---------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=50_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--framework-queries", type=int, default=30)
    ap.add_argument("--quick", action="store_true", help="5k items, fewer queries")
    ap.add_argument("--skip-frameworks", action="store_true")
    ap.add_argument("--skip-qdrant", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        args.n, args.queries, args.framework_queries = 5_000, 100, 30
    top = 50  # per-list depth for every system (mm-rag's default prefetch for k=10)

    print(f"data: {args.n} items ({args.n // 5} images with OCR text), dim {args.dim}, top {K}, per-list depth {top}")
    chunks, texts, vecs, queries, qvecs = make_data(args.n, args.dim, args.queries)
    table = {q: qvecs[i] for i, q in enumerate(queries)}
    fq = queries[: args.framework_queries]
    rows: list[tuple[str, float, float, float, int]] = []

    with tempfile.TemporaryDirectory() as tmp:
        ix, ing, ms = bench_mm("numpy", chunks, vecs, queries, table, args.dim, Path(tmp) / "numpy")
        rows.append(("mm-rag numpy engine (client RRF)", *summary(ms), args.n / ing, len(ms)))
        ix.close()
        t = time.perf_counter()
        with MultiModalIndex(Path(tmp) / "numpy", engine="numpy") as ix:
            reopen = time.perf_counter() - t
            _, _, ms = bench_mm("numpy", chunks, vecs, queries, table, args.dim, Path(tmp), index=ix)
        print(f"numpy engine: reopen {reopen:.2f} s, p50 after reopen {summary(ms)[0]:.2f} ms")
        if not args.skip_qdrant:
            ix, ing, ms = bench_mm("qdrant", chunks, vecs, fq, table, args.dim, Path(tmp) / "qdrant")
            rows.append(("mm-rag qdrant local (client RRF)", *summary(ms), args.n / ing, len(ms)))
            _, _, ms = bench_mm("qdrant", chunks, vecs, fq, table, args.dim, Path(tmp), fusion="server", index=ix)
            rows.append(("qdrant local prefetch+RRF (server)", *summary(ms), args.n / ing, len(ms)))
            ix.close()
    gc.collect()
    if not args.skip_frameworks:
        ing, ms = bench_llamaindex(texts, vecs, fq, table, args.dim, top)
        rows.append(("LlamaIndex QueryFusionRetriever", *summary(ms), args.n / ing, len(ms)))
        gc.collect()
        ing, ms = bench_langchain(texts, vecs, fq, table, args.dim, top)
        rows.append(("LangChain EnsembleRetriever", *summary(ms), args.n / ing, len(ms)))

    base = rows[0][1]
    print(f"\n{'system':38s} {'p50 ms':>9s} {'p95 ms':>9s} {'ingest/s':>10s} {'queries':>8s} {'p50 vs ours':>12s}")
    for name, p50, p95, thr, nq in rows:
        print(f"{name:38s} {p50:9.2f} {p95:9.2f} {thr:10.0f} {nq:8d} {p50 / base:11.1f}x")


if __name__ == "__main__":
    main()
