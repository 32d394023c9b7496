"""Writes: one-at-a-time adds (per-call latency) and a bulk build from precomputed vectors
(points/s), ours against LangChain's and LlamaIndex's FAISS stores, measured in the same run.

    .venv/bin/python -m benchmarks.bench_writes [--calls 300] [--sizes 10000 50000] [--rounds 3]
    .venv/bin/python -m benchmarks.run --only writes [--smoke]

Every contestant gets the same vectors: a deterministic fake embedding (512-d, from the text's hash,
no model time), so what is timed is the store. Texts are random sentences of letter-only words from
a 6,000-word vocabulary (no token shared by every text).

One at a time (a fresh store per contestant and round, 5 warm-up calls, then *calls* timed calls
of one text each; rounds interleaved, quiet and under :class:`benchmarks._load.BackgroundLoad`):

* ``ours-add``: ``MultiModalIndex(folder, embedder=...).add([chunk])`` (Qdrant Edge in a folder);
* ``ours-add_embedded``: ``MultiModalIndex.add_embedded([chunk], vector)``;
* ``ours-langchain``: our LangChain ``MultiModalVectorStore.add_texts([text])``;
* ``ours-llamaindex``: our LlamaIndex ``MultiModalVectorStore.add([node])``;
* ``qdrant-edge-raw``: the floor under ours, Qdrant Edge's ``EdgeShard.update`` called directly with
  one point per call (the same vector, BM25 terms and text payload; no checks, ids or sources);
* ``langchain-faiss-1t`` / ``langchain-faiss``: LangChain ``FAISS.add_texts`` (FAISS on one thread / its default threads);
* ``llamaindex-faiss-1t`` / ``llamaindex-faiss``: LlamaIndex ``FaissVectorStore.add`` over ``IndexFlatIP``.

Bulk (``--sizes``): the retrieval benchmark's corpus (Zipf texts, a fifth of the items images with
OCR words, pages), its vectors clustered like embeddings and, as the worst case for a graph,
isotropic. Ours: ``add_embedded`` in batches of 1024 into a new folder, then ``close()`` (which
builds the HNSW graph once enough points wait for it); LangChain ``FAISS.from_embeddings`` (flat
index) + ``BM25Retriever.from_texts``; LlamaIndex ``VectorStoreIndex`` on ``FaissVectorStore``
(``IndexFlatIP``) + ``BM25Retriever`` (bm25s). Results: ``benchmarks/results/writes/``.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import RESULTS, save
from benchmarks._load import BackgroundLoad

DIM = 512
OUT = RESULTS / "writes" / "writes.json"
#: The bulk build's vectors: clustered like embeddings, and isotropic (no near neighbours: an HNSW
#: graph's worst case, which no embedding model produces)
VECTORS = ("clustered", "isotropic")


def vocabulary(n: int = 6000, seed: int = 0) -> list[str]:
    rng = np.random.default_rng(seed)
    letters = np.array(list("abcdefghijklmnopqrstuvwxyz"))
    words: set[str] = set()
    while len(words) < n:
        words.add("".join(rng.choice(letters, int(rng.integers(3, 10)))))
    return sorted(words)


def texts(n: int, seed: int = 1) -> list[str]:
    vocab = vocabulary()
    rng = np.random.default_rng(seed)
    weights = 1.0 / np.arange(1, len(vocab) + 1)  # Zipf
    weights /= weights.sum()
    return [" ".join(rng.choice(vocab, int(rng.integers(20, 80)), p=weights)) for _ in range(n)]


def fake_vector(text: str) -> np.ndarray:
    seed = int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "little")
    v = np.random.default_rng(seed).standard_normal(DIM).astype(np.float32)
    return v / np.linalg.norm(v)


def _fake_langchain() -> Any:
    from langchain_core.embeddings import Embeddings

    class Fake(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return [fake_vector(t).tolist() for t in texts]

        def embed_query(self, text: str) -> list[float]:
            return fake_vector(text).tolist()

    return Fake()


def _fake_llamaindex() -> Any:
    from llama_index.core.embeddings import BaseEmbedding

    class Fake(BaseEmbedding):
        def _get_text_embedding(self, text: str) -> list[float]:
            return fake_vector(text).tolist()

        def _get_query_embedding(self, query: str) -> list[float]:
            return fake_vector(query).tolist()

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return fake_vector(query).tolist()

    return Fake(model_name="fake")


@contextlib.contextmanager
def faiss_threads(n: int | None) -> Any:
    import faiss

    before = faiss.omp_get_max_threads()
    if n is not None:
        faiss.omp_set_num_threads(n)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(before)


# ---------------------------------------------------------------------------- one at a time
def contestants(work: Path) -> dict[str, Callable[[], tuple[Callable[[str], object], Callable[[], None]]]]:
    """name -> make(): (add one text, close)."""

    def ours_add() -> Any:
        from mm_rag_plugin.integrations._framework import ForeignTextEmbedder
        from mm_rag_plugin.retrievers import MultiModalIndex
        from mm_rag_plugin.types import TextChunk

        ix = MultiModalIndex(Path(tempfile.mkdtemp(dir=work)) / "ix", embedder=ForeignTextEmbedder(_fake_langchain(), "langchain"))
        n = iter(range(1 << 30))
        return (lambda t: ix.add([TextChunk(id=f"c{next(n)}", text=t, source="")], replace_sources=False)), ix.close

    def ours_embedded() -> Any:
        from mm_rag_plugin.retrievers import MultiModalIndex
        from mm_rag_plugin.types import TextChunk

        ix = MultiModalIndex(Path(tempfile.mkdtemp(dir=work)) / "ix", dim=DIM)
        n = iter(range(1 << 30))
        return (lambda t: ix.add_embedded([TextChunk(id=f"c{next(n)}", text=t, source=f"s{next(n)}")], fake_vector(t)[None])), ix.close

    def ours_langchain() -> Any:
        from mm_rag_plugin.integrations.langchain import MultiModalVectorStore

        store = MultiModalVectorStore(_fake_langchain(), path=str(Path(tempfile.mkdtemp(dir=work)) / "ix"))
        return (lambda t: store.add_texts([t])), store.index.close

    def ours_llamaindex() -> Any:
        from llama_index.core.schema import TextNode

        from mm_rag_plugin.integrations.llama_index import MultiModalVectorStore

        store = MultiModalVectorStore(path=str(Path(tempfile.mkdtemp(dir=work)) / "ix"), embed_model=_fake_llamaindex())
        return (lambda t: store.add([TextNode(text=t, embedding=fake_vector(t).tolist())])), store._index.close

    def qdrant_edge_raw() -> Any:
        # the floor under every write of ours: Qdrant Edge called directly, one point per call, with
        # the same dense vector, BM25 terms and text payload (no ids, checks, sources or manifest)
        import uuid

        import qdrant_edge as qe

        from mm_rag_plugin.retrievers.bm25 import BM25Encoder

        shard = qe.EdgeShard.create(
            str(Path(tempfile.mkdtemp(dir=work)) / "shard"),
            qe.EdgeConfig(
                vectors={"dense": qe.EdgeVectorParams(size=DIM, distance=qe.Distance.Cosine)},
                sparse_vectors={"bm25": qe.EdgeSparseVectorParams(modifier=qe.Modifier.Idf)},
            ),
        )
        bm25 = BM25Encoder()

        def add(t: str) -> object:
            sv = bm25.encode_document(t)
            vec = {"dense": fake_vector(t).tolist(), "bm25": qe.SparseVector(sv.indices.tolist(), sv.values.tolist())}
            return shard.update(qe.UpdateOperation.upsert_points([qe.Point(str(uuid.uuid4()), vec, {"text": t})]))

        return add, shard.close

    def langchain_faiss(threads: int | None) -> Callable[[], Any]:
        def make() -> Any:
            from langchain_community.vectorstores import FAISS

            with faiss_threads(threads):
                store = FAISS.from_texts(["seed"], _fake_langchain())

            def add(t: str) -> object:
                with faiss_threads(threads):
                    return store.add_texts([t])

            return add, lambda: None

        return make

    def llamaindex_faiss(threads: int | None) -> Callable[[], Any]:
        def make() -> Any:
            import faiss
            from llama_index.core.schema import TextNode
            from llama_index.vector_stores.faiss import FaissVectorStore

            store = FaissVectorStore(faiss_index=faiss.IndexFlatIP(DIM))

            def add(t: str) -> object:
                with faiss_threads(threads):
                    return store.add([TextNode(text=t, embedding=fake_vector(t).tolist())])

            return add, lambda: None

        return make

    return {
        "ours-add": ours_add,
        "ours-add_embedded": ours_embedded,
        "ours-langchain": ours_langchain,
        "ours-llamaindex": ours_llamaindex,
        "qdrant-edge-raw": qdrant_edge_raw,
        "langchain-faiss-1t": langchain_faiss(1),
        "langchain-faiss": langchain_faiss(None),
        "llamaindex-faiss-1t": llamaindex_faiss(1),
        "llamaindex-faiss": llamaindex_faiss(None),
    }


def one_at_a_time(calls: int, rounds: int, load: BackgroundLoad | None, work: Path) -> dict[str, dict[str, Any]]:
    data = texts(calls + 5, seed=2)
    per_call: dict[str, dict[str, list[float]]] = {}
    makers = contestants(work)
    for _ in range(rounds):
        for name, make in makers.items():  # interleaved: every contestant once per round
            for cond in ("quiet", "loaded") if load is not None else ("quiet",):
                add, close = make()
                try:
                    for t in data[:5]:
                        add(t)
                    ms = []
                    with load.on() if cond == "loaded" and load is not None else contextlib.nullcontext():
                        for t in data[5:]:
                            t0 = time.perf_counter()
                            add(t)
                            ms.append((time.perf_counter() - t0) * 1e3)
                finally:
                    close()
                per_call.setdefault(cond, {}).setdefault(name, []).extend(ms)
    out: dict[str, dict[str, Any]] = {}
    for cond, by in per_call.items():
        med = {name: statistics.median(v) for name, v in by.items()}
        out[cond] = {
            name: {"median_ms": round(m, 4), "p90_ms": round(float(np.percentile(by[name], 90)), 4),
                   "vs_langchain_faiss_1t": round(m / med["langchain-faiss-1t"], 2),
                   "vs_langchain_faiss": round(m / med["langchain-faiss"], 2)}
            for name, m in med.items()
        }
    return out


# ---------------------------------------------------------------------------- bulk
def bulk(n: int, work: Path, vectors: str = "clustered") -> dict[str, Any]:
    """Ours, LangChain FAISS + BM25 and LlamaIndex FAISS + BM25 built from the same *n* items and
    precomputed vectors (``bench_retrieval``'s corpus: Zipf texts, a fifth images with OCR words,
    pages; *vectors* clustered like embeddings, or isotropic, a graph index's worst case)."""
    from benchmarks.bench_retrieval import make_data
    from mm_rag_plugin.retrievers import MultiModalIndex

    chunks, data, vecs, _, _ = make_data(n, DIM, 1, seed=3, vectors=vectors)
    folder = Path(tempfile.mkdtemp(dir=work)) / "ix"
    t0 = time.perf_counter()
    ix = MultiModalIndex(folder, dim=DIM, show_progress=False)
    for i in range(0, n, 1024):
        ix.add_embedded(chunks[i : i + 1024], vecs[i : i + 1024])
    upserted = time.perf_counter() - t0
    ix.close()  # builds the HNSW graph when enough points wait for it
    total = time.perf_counter() - t0
    shutil.rmtree(folder.parent, ignore_errors=True)

    from langchain_community.retrievers import BM25Retriever
    from langchain_community.vectorstores import FAISS

    emb = _fake_langchain()
    t0 = time.perf_counter()
    FAISS.from_embeddings(list(zip(data, vecs.tolist(), strict=True)), emb)
    BM25Retriever.from_texts(data)
    langchain = time.perf_counter() - t0

    import faiss
    from llama_index.core import StorageContext, VectorStoreIndex
    from llama_index.core.schema import TextNode
    from llama_index.retrievers.bm25 import BM25Retriever as LlamaBM25
    from llama_index.vector_stores.faiss import FaissVectorStore

    t0 = time.perf_counter()
    nodes = [TextNode(id_=f"n{i}", text=t, embedding=vecs[i].tolist()) for i, t in enumerate(data)]
    ctx = StorageContext.from_defaults(vector_store=FaissVectorStore(faiss_index=faiss.IndexFlatIP(DIM)))
    VectorStoreIndex(nodes, storage_context=ctx, embed_model=_fake_llamaindex(), show_progress=False)
    LlamaBM25.from_defaults(nodes=nodes, similarity_top_k=50)
    llamaindex = time.perf_counter() - t0
    return {
        "n": n,
        "vectors": vectors,
        "ours_upsert_s": round(upserted, 2),
        "ours_total_s": round(total, 2),
        "ours_points_per_s": round(n / total),
        "ours_upsert_points_per_s": round(n / upserted),
        "langchain_faiss_bm25_s": round(langchain, 2),
        "langchain_faiss_bm25_points_per_s": round(n / langchain),
        "llamaindex_faiss_bm25_s": round(llamaindex, 2),
        "llamaindex_faiss_bm25_points_per_s": round(n / llamaindex),
    }


def run(*, calls: int = 300, rounds: int = 3, sizes: tuple[int, ...] = (10_000, 50_000), loaded: bool = True) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        load = BackgroundLoad() if loaded else None
        try:
            single = one_at_a_time(calls, rounds, load, work)
        finally:
            if load is not None:
                load.close()
        build = [bulk(n, work, v) for v in VECTORS for n in sizes]
    return {"calls": calls, "rounds": rounds, "one_at_a_time": single, "bulk": build}


def _rate(v: int | None) -> str:
    return "-" if v is None else f"{v:,}"


def markdown(res: dict[str, Any]) -> list[str]:
    lines = [f"One text per call, {res['calls']} calls x {res['rounds']} rounds (median ms per call; ratio to LangChain FAISS.add_texts):", ""]
    for cond, by in res["one_at_a_time"].items():
        lines += [f"**{cond}**", "", "| contestant | median ms | p90 ms | / LC FAISS 1 thread | / LC FAISS |", "|---|---|---|---|---|"]
        lines += [f"| {name} | {r['median_ms']:.3f} | {r['p90_ms']:.3f} | {r['vs_langchain_faiss_1t']:.2f} | {r['vs_langchain_faiss']:.2f} |"
                  for name, r in by.items()]
        lines.append("")
    lines += ["Bulk build from precomputed vectors (points/s; ours builds an HNSW graph, the FAISS stores are flat):", "",
              "| points | vectors | ours upsert | ours incl. close (HNSW) | LangChain FAISS + BM25 | LlamaIndex FAISS + BM25 |",
              "|---|---|---|---|---|---|"]
    lines += [f"| {b['n']:,} | {b.get('vectors', 'isotropic')} | {b['ours_upsert_points_per_s']:,} | {b['ours_points_per_s']:,} | "
              f"{b['langchain_faiss_bm25_points_per_s']:,} | {_rate(b.get('llamaindex_faiss_bm25_points_per_s'))} |"
              for b in res["bulk"]]
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--sizes", type=int, nargs="*", default=[10_000, 50_000])
    ap.add_argument("--no-load", action="store_true", help="quiet rounds only")
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    save(run(calls=args.calls, rounds=args.rounds, sizes=tuple(args.sizes), loaded=not args.no_load), args.out, markdown)


if __name__ == "__main__":
    main()
