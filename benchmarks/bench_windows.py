"""CLIP windows over whole chunks: what ``clip_windows=`` costs beside one CLIP vector per chunk.

On our chunker's text chunks of the shared PDFs (``bench_embeddings.make_chunks``), with ViT-B-32
at random weights on the CPU (the cost of a forward pass does not depend on the weights), each
variant ingests the same chunks into a fresh Qdrant Edge folder and then answers the same queries
(hybrid search, default weights):

* ``ingest texts/s``: chunks stored per second (``MultiModalIndex.add``: embedding, windows, BM25, writes);
* ``windows/chunk``: CLIP vectors stored per text chunk (1 without windows);
* ``disk/chunk``: the blocks the index folder uses over the chunks (after ``optimize``; Qdrant
  preallocates its files sparsely, so their apparent size is not counted), and the CLIP vectors'
  own bytes per chunk (4 x dim x rows);
* ``query p50``: median latency of ``FusedRetriever.retrieve`` (the query embedded each time).

Both variants run in one process, one after the other, in alternating order over *rounds*.
Retrieval quality is not measured here: random weights rank nothing; use real weights
(``--pretrained``) and an evaluation set for that.

    python -m benchmarks.bench_windows [--n 200] [--queries 40] [--rounds 1] [--max-windows 8]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks._common import RESULTS, disk_allocated, save

OUT = RESULTS / "windows" / "results.json"


def _variant(embedder: Any, chunks: list[Any], queries: list[str], folder: Path, windows: Any) -> dict[str, Any]:
    from mm_rag_plugin.retrievers import FusedRetriever, MultiModalIndex

    with MultiModalIndex(folder, embedder=embedder, clip_windows=windows) as ix:
        t0 = time.perf_counter()
        report = ix.add(chunks)
        ingest_s = time.perf_counter() - t0
        ix.optimize()
        rows = [len(p.windows) if p.windows is not None else 1 for batch in ix.scan() for p in batch]
        retriever = FusedRetriever(ix)
        retriever.retrieve(queries[0])  # warm
        times = []
        for q in queries:
            t = time.perf_counter()
            retriever.retrieve(q, k=10)
            times.append(time.perf_counter() - t)
    return {
        "chunks": report.added,
        "truncated": report.truncated_texts,
        "ingest_s": round(ingest_s, 2),
        "ingest_texts_per_s": round(report.added / ingest_s, 2),
        "windows_per_chunk": round(statistics.mean(rows), 2),
        # blocks in use (Qdrant preallocates its files sparsely: their apparent size says little)
        "disk_bytes_per_chunk": round(disk_allocated(folder) / max(1, report.added)),
        "vector_bytes_per_chunk": round(4 * embedder.dim * statistics.mean(rows)),
        "query_p50_ms": round(1000 * statistics.median(times), 2),
    }


def run(n: int = 200, n_queries: int = 40, rounds: int = 1, max_windows: int = 8, model_name: str = "ViT-B-32") -> dict[str, Any]:
    import random

    from benchmarks.bench_embeddings import make_chunks
    from mm_rag_plugin import OpenCLIPEmbedder, TextChunk

    texts, info = make_chunks(n)
    texts = list(dict.fromkeys(texts))  # cycled copies would be stored once
    chunks = [TextChunk(id=f"c{i}", text=t, source=f"doc{i // 20}.pdf", position=i) for i, t in enumerate(texts)]
    rng = random.Random(0)
    queries = [" ".join(t.split()[rng.randint(0, max(0, len(t.split()) - 8)):][:8]) for t in rng.sample(texts, min(n_queries, len(texts)))]
    # no embedding cache: every round and variant embeds its chunks and queries (a cache would
    # answer the second variant's from the first's)
    embedder = OpenCLIPEmbedder(model_name, load_weights=False, device="cpu", cache_size=0)
    variants: dict[str, Any] = {"one vector": None, f"windows (max {max_windows})": {"max_windows": max_windows}}
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in variants}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(rounds):
            order = list(variants) if r % 2 == 0 else list(reversed(variants))
            for name in order:
                runs[name].append(_variant(embedder, chunks, queries, Path(tmp) / f"{r}-{len(runs[name])}-{name[:3]}", variants[name]))
    res = {
        "model": f"{model_name} (random weights, CPU)",
        "chunks": len(chunks),
        "queries": len(queries),
        "rounds": rounds,
        "data": info,
        "variants": {name: {k: statistics.median(x[k] for x in rs) for k in rs[0]} for name, rs in runs.items()},
    }
    return res


def markdown(res: dict[str, Any]) -> list[str]:
    lines = [
        f"CLIP windows, {res['model']}, {res['chunks']} text chunks of the shared PDFs, {res['queries']} queries, "
        f"median of {res['rounds']} round(s):",
        "",
        "| variant | chunks cut at 77 tokens | ingest texts/s | CLIP vectors/chunk | disk/chunk | vectors/chunk | query p50 |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, v in res["variants"].items():
        lines.append(
            f"| {name} | {v['truncated']:.0f} of {v['chunks']:.0f} | {v['ingest_texts_per_s']:.1f} | {v['windows_per_chunk']:.2f} | "
            f"{v['disk_bytes_per_chunk'] / 1024:.1f} KiB | {v['vector_bytes_per_chunk'] / 1024:.1f} KiB | {v['query_p50_ms']:.1f} ms |"
        )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--queries", type=int, default=40)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--max-windows", type=int, default=8)
    ap.add_argument("--out", default=str(OUT))
    a = ap.parse_args()
    save(run(a.n, a.queries, a.rounds, a.max_windows), a.out, markdown)


if __name__ == "__main__":
    main()
