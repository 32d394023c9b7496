"""Index size on disk and resident memory per 10k items, with and without vector quantization.

The same synthetic items as ``bench_retrieval`` (512-d vectors, 80 % text chunks, 20 % images with
OCR text) are stored once per system; then a FRESH process opens each store, gets it ready to
serve fused (dense + BM25) queries, answers a few, and reports how much its RSS grew. Peers
rebuild their BM25 index at load (they persist none), which counts as serving memory too.

* ``ours`` / ``ours-int8`` / ``ours-binary``: a Qdrant Edge index folder created with
  ``quantization=None | "int8" | "binary"`` (a creation-time setting: one folder each; the
  quantized vectors are kept in RAM, the float32 originals are rescored from disk). Dense
  recall@10 against exact search is reported for every one.
* ``qdrant-local`` / ``qdrant-local-int8``: the qdrant-client engine (``client=``) on
  qdrant-client's local mode with a folder (``QdrantClient(path=...)``), created without and with
  int8 quantization. Local mode keeps every vector in RAM and ignores the config (it only matters
  on a Qdrant server); the figures show that.
* ``llamaindex``: ``VectorStoreIndex.storage_context.persist`` (JSON docstore + SimpleVectorStore),
  loaded with ``load_index_from_storage``, plus ``BM25Retriever`` built from the nodes.
* ``langchain``: ``InMemoryVectorStore.dump`` / ``load``, plus ``BM25Retriever`` from the documents.

    .venv/bin/python -m benchmarks.bench_storage [--n 10000]
    .venv/bin/python -m benchmarks.run --only storage [--quick]
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import RESULTS, dir_size, disk_allocated, mib, rss_bytes, run_child, save

SYSTEMS = ("ours", "ours-int8", "ours-binary", "qdrant-local", "qdrant-local-int8", "llamaindex", "langchain")
DIM = 512


def _data(n: int):
    from benchmarks.bench_retrieval import make_data

    return make_data(n, DIM, 50, seed=1)


def build(system: str, folder: Path, n: int) -> None:
    """Write the store of *system* for n items into *folder* (in this process)."""
    from benchmarks.bench_retrieval import build_mm

    chunks, texts, vecs, _, _ = _data(n)
    if system.startswith("ours"):
        build_mm(folder, chunks, vecs, DIM, **_quantization(system)).close()
    elif system.startswith("qdrant-local"):
        from qdrant_client import QdrantClient

        client = QdrantClient(path=str(folder))
        try:
            build_mm(None, chunks, vecs, DIM, client=client, **_quantization(system)).close()
        finally:
            client.close()
    elif system == "llamaindex":
        from llama_index.core import VectorStoreIndex
        from llama_index.core.embeddings import MockEmbedding
        from llama_index.core.schema import TextNode

        nodes = [TextNode(id_=f"n{i}", text=t, embedding=vecs[i].tolist()) for i, t in enumerate(texts)]
        VectorStoreIndex(nodes, embed_model=MockEmbedding(embed_dim=DIM)).storage_context.persist(str(folder))
    elif system == "langchain":
        from langchain_core.embeddings import DeterministicFakeEmbedding
        from langchain_core.vectorstores import InMemoryVectorStore

        store = InMemoryVectorStore(DeterministicFakeEmbedding(size=DIM))
        for i, t in enumerate(texts):  # the precomputed vectors, in the store's own record layout
            store.store[f"d{i}"] = {"id": f"d{i}", "vector": vecs[i].tolist(), "text": t, "metadata": {}}
        folder.mkdir(parents=True, exist_ok=True)
        store.dump(str(folder / "store.json"))
    else:
        raise ValueError(system)


def _quantization(system: str) -> dict[str, Any]:
    q = system.split("-")[-1]
    return {"quantization": q} if q in ("int8", "binary") else {}


def child(system: str, folder: Path, n: int) -> dict[str, Any]:
    """Open the store of *system*, make it ready for fused queries, answer some; report RSS growth."""
    import Stemmer  # noqa: F401 - imported before the baseline: library code is not index memory

    from benchmarks.bench_retrieval import TOP, K, LookupEmbedder
    from mm_rag_plugin.retrievers import FusedRetriever, MultiModalIndex, _edge  # noqa: F401

    if system.startswith("llamaindex"):
        from llama_index.core import StorageContext, load_index_from_storage
        from llama_index.core.embeddings import MockEmbedding
        from llama_index.retrievers.bm25 import BM25Retriever
    elif system.startswith("qdrant"):
        import qdrant_client  # noqa: F401 - imported before the baseline: library code is not index memory
    elif system.startswith("langchain"):
        from langchain_community.retrievers import BM25Retriever as LCBM25
        from langchain_core.documents import Document
        from langchain_core.embeddings import DeterministicFakeEmbedding
        from langchain_core.vectorstores import InMemoryVectorStore
    gc.collect()
    base = rss_bytes()
    keep: list[Any] = []
    out: dict[str, Any] = {}
    if system.startswith("ours") or system.startswith("qdrant"):
        if system.startswith("ours"):
            ix = MultiModalIndex(folder, show_progress=False, **_quantization(system))
        else:
            from qdrant_client import QdrantClient

            client = QdrantClient(path=str(folder))
            ix = MultiModalIndex(client=client, show_progress=False, **_quantization(system))
            keep.append(client)
        keep.insert(0, ix)
        _, _, _, queries, qvecs = _data(50)  # tiny: only the query strings and vectors are used
        table = {s: qvecs[i] for i, s in enumerate(queries)}
        r = FusedRetriever(ix, LookupEmbedder(table, DIM), k=K, prefetch_k=TOP, near_duplicate_threshold=None)
        for s in queries[:5]:
            r.retrieve(s)
        if hasattr(ix, "memory_bytes"):
            out["engine_memory_bytes"] = ix.memory_bytes()
    elif system == "llamaindex":
        index = load_index_from_storage(StorageContext.from_defaults(persist_dir=str(folder)),
                                        embed_model=MockEmbedding(embed_dim=DIM))
        nodes = list(index.docstore.docs.values())
        keep += [index, BM25Retriever.from_defaults(nodes=nodes, similarity_top_k=TOP)]
    elif system == "langchain":
        store = InMemoryVectorStore.load(str(folder / "store.json"), DeterministicFakeEmbedding(size=DIM))
        docs = [Document(id=k, page_content=v["text"]) for k, v in store.store.items()]
        keep += [store, LCBM25.from_documents(docs, k=TOP)]
    gc.collect()
    out["rss_bytes"] = rss_bytes() - base
    if system.startswith("ours"):
        out["dense_recall_at_10"] = _recall(keep[0], n)
    for obj in keep:
        if hasattr(obj, "close"):
            obj.close()
    return out


def _recall(ix: Any, n: int) -> float:
    """Dense top-10 of the (quantized) index vs exact search, for queries near stored vectors."""
    from benchmarks.bench_retrieval import K, exact_top, index_dense_rows

    _, _, vecs, _, _ = _data(n)
    rng = np.random.default_rng(7)
    queries = []
    for _ in range(50):
        q = vecs[rng.integers(n)] + rng.normal(scale=0.03, size=DIM).astype(np.float32)
        queries.append(q / np.linalg.norm(q))
    truth = exact_top(vecs, np.stack(queries), K)
    hits = sum(len(set(index_dense_rows(ix, q)) & set(truth[i].tolist())) for i, q in enumerate(queries))
    return round(hits / truth.size, 4)


def run(n: int, systems: tuple[str, ...] = SYSTEMS) -> dict[str, Any]:
    res: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        built: dict[str, Path] = {}
        for system in systems:
            store = system  # quantization is chosen when a store is created: one store each
            if store not in built:
                built[store] = Path(tmp) / store
                build(store, built[store], n)
                gc.collect()
            r = run_child("benchmarks.bench_storage", ["--child", system, "--folder", str(built[store]), "--n", str(n)])
            r["disk_apparent_bytes"] = dir_size(built[store])
            r["disk_bytes"] = disk_allocated(built[store])  # blocks in use: Qdrant preallocates files sparsely
            r["disk_mib_per_10k"] = round(mib(r["disk_bytes"]) * 10_000 / n, 1)
            r["rss_mib_per_10k"] = round(mib(r["rss_bytes"]) * 10_000 / n, 1)
            res[system] = r
            print(f"  storage {system:18s} disk {r['disk_mib_per_10k']:7.1f} MiB/10k  RSS {r['rss_mib_per_10k']:7.1f} "
                  f"MiB/10k", file=sys.stderr)
    return {"n": n, "dim": DIM, "by_system": res}


def markdown(res: dict[str, Any]) -> list[str]:
    lines = [f"{res['n']:,} items, {res['dim']}-d; per 10k items; RSS = growth of a fresh process that opens the "
             "store and serves fused queries; disk = blocks allocated (Qdrant's files are preallocated sparsely, "
             "their apparent size is larger). llamaindex / langchain: their default in-memory stores persisted "
             "(the FAISS setups are in the cold-start section).", "",
             "| store | on disk MiB / 10k | RSS MiB / 10k | dense vectors in RAM MiB / 10k | dense recall@10 |",
             "|---|---:|---:|---:|---:|"]
    for name, r in res["by_system"].items():
        dense = r.get("engine_memory_bytes", {}).get("dense")
        dense_s = f"{mib(dense) * 10_000 / res['n']:.1f}" if dense is not None else "-"
        rec = r.get("dense_recall_at_10")
        lines.append(f"| {name} | {r['disk_mib_per_10k']:.1f} | {r['rss_mib_per_10k']:.1f} | {dense_s} | "
                     f"{'-' if rec is None else f'{rec:.3f}'} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--folder", help=argparse.SUPPRESS)
    ap.add_argument("--systems", default=",".join(SYSTEMS))
    ap.add_argument("--out", default=str(RESULTS / "storage.json"))
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args.child, Path(args.folder), args.n)))
        return
    res = run(args.n, tuple(args.systems.split(",")))
    save(res, args.out, markdown)


if __name__ == "__main__":
    main()
