"""Cold start, memory and disk as users feel them: a built index opened by a fresh process.

Data: the clustered corpus of ``bench_engines`` (512-d unit vectors around gaussian centres, 1/3
images, 30-80-word chunks; held-out queries of three words plus a vector), the same for everyone.

Per size, each contestant's index is built once by a child process (peak RSS of the build, disk
per item: blocks really allocated and the apparent size, which counts files Qdrant preallocates
sparsely). Then, in interleaved rounds, quiet and under the background load of ``_load``:

* ``ours``: a fresh Python process imports the library, opens the folder
  (``MultiModalIndex(folder)``), runs one fused query (``FusedRetriever``: dense text, dense image,
  BM25, RRF; the query vector is looked up, no model), then up to 100 more (every contestant stops
  after 20 s of them, with at least 10: one LangChain query at 1M takes seconds). Reported:
  import + open, first query, p50 after it, steady RSS (after open, and after the queries) and
  peak RSS.
* ``ours-cli``: ``mm-rag query --index DIR --keyword-only -k 10 --json "..."`` in a fresh process:
  wall time and peak RSS of the whole command (interpreter start included).
* ``langchain-faiss``: ``FAISS.load_local`` (inner product over the unit vectors) + the pickled
  ``BM25Retriever`` in an ``EnsembleRetriever``, the way a LangChain user persists both.
* ``llamaindex-faiss``: ``FaissVectorStore.from_persist_dir`` + ``load_index_from_storage`` +
  ``BM25Retriever.from_persist_dir`` in a ``QueryFusionRetriever(mode="reciprocal_rerank")``.

The OS page cache is warm (the build just wrote the files; dropping it needs privileges the
benchmark does not assume). Builds at a size are cached under ``--work`` (``build-<n>-<name>.json``
next to the index) and reused by later runs with the same data; the build figures then come from
the run that built it (its time stamp and commit are in the JSON).

    .venv/bin/python -m benchmarks.bench_cold --sizes 200000
    .venv/bin/python -m benchmarks.bench_cold --sizes 1000000 --build-only   # build and cache only
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pickle
import shutil
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import bench_engines as be
from benchmarks._common import (
    RESULTS,
    dir_size,
    disk_allocated,
    mib,
    rss_bytes,
    run_child,
    run_timed,
    save,
    spread,
)
from benchmarks._common import spread_cell as cell
from benchmarks._load import BackgroundLoad
from benchmarks._peers import langchain_ensemble, langchain_lookup, llamaindex_fusion, llamaindex_lookup

K, DEPTH, DIM = be.K, be.DEPTH, be.DIM
WORK = Path(os.environ.get("MM_RAG_BENCH_WORK", "/tmp/mmrag-bench-cold"))
ROOT = be.ROOT
CONTESTANTS = ("ours", "ours-cli", "langchain-faiss", "llamaindex-faiss")
PEERS_MAX = 1_000_000
BUILD_BATCH = 20_000  # the peers' builds add vectors in batches, as a user with a large corpus would
# a cached build is reused only when it came from the same build code (2: the peers' batched builds)
BUILDER = {"langchain-faiss": 2, "llamaindex-faiss": 2}
STEADY_QUERIES = 100
STEADY_BUDGET_S, STEADY_MIN = 20.0, 10  # the steady queries stop after this long, once there are enough


def _stamp() -> dict[str, str]:
    head = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    )
    return {"built": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"), "commit": head.stdout.strip()}


# ---------------------------------------------------------------------- data as texts
def corpus(data: Path) -> tuple[dict[str, np.ndarray], list[str]]:
    """The meta arrays and the chunk texts (rows in the order of ``bench_engines``' ids)."""
    meta = dict(np.load(data / "meta.npz"))
    vocab = be._words()
    words, offsets = meta["words"], meta["offsets"]
    return meta, [
        " ".join(vocab[w] for w in words[offsets[i] : offsets[i + 1]]) for i in range(len(meta["kind"]))
    ]


def query_texts(meta: Any) -> list[str]:
    """The held-out queries' words, as text."""
    vocab = be._words()
    return [" ".join(vocab[w] for w in row) for row in meta["qwords"]]


def _vectors(data: Path) -> np.ndarray:
    return np.load(data / "vectors.npy", mmap_mode="r")


# ---------------------------------------------------------------------- peers: build (child)
def build_langchain(folder: Path, data: Path) -> dict[str, Any]:
    """FAISS filled BUILD_BATCH vectors at a time (``add_embeddings``; ``from_embeddings`` on all
    of them at once would hold every vector as a Python list), then ``BM25Retriever`` over all
    documents, both persisted the way a LangChain user does."""
    from langchain_community.retrievers import BM25Retriever
    from langchain_community.vectorstores import FAISS
    from langchain_community.vectorstores.utils import DistanceStrategy
    from langchain_core.documents import Document

    meta, texts = corpus(data)
    vecs = _vectors(data)
    t0 = time.perf_counter()
    metas = [
        {"source": f"doc{int(s):03d}.pdf", "kind": "image" if k else "text"}
        for s, k in zip(meta["source"], meta["kind"], strict=True)
    ]
    store = None
    for lo in range(0, len(texts), BUILD_BATCH):
        hi = min(lo + BUILD_BATCH, len(texts))
        pairs = list(zip(texts[lo:hi], np.asarray(vecs[lo:hi]).tolist(), strict=True))
        if store is None:
            store = FAISS.from_embeddings(
                pairs,
                langchain_lookup({}),
                metadatas=metas[lo:hi],
                distance_strategy=DistanceStrategy.MAX_INNER_PRODUCT,
            )
        else:
            store.add_embeddings(pairs, metadatas=metas[lo:hi])
    assert store is not None
    store.save_local(str(folder / "faiss"))
    del store
    bm25 = BM25Retriever.from_documents(
        [Document(page_content=t, metadata=m) for t, m in zip(texts, metas, strict=True)], k=DEPTH
    )
    with open(folder / "bm25.pkl", "wb") as fh:
        pickle.dump(bm25, fh, protocol=pickle.HIGHEST_PROTOCOL)
    return {"build_s": round(time.perf_counter() - t0, 2)}


def build_llamaindex(folder: Path, data: Path) -> dict[str, Any]:
    """Nodes inserted BUILD_BATCH at a time (each batch carries its vectors only while it is
    inserted; the docstore keeps nodes without them), then bm25s over all nodes, both persisted."""
    import faiss
    from llama_index.core import StorageContext, VectorStoreIndex
    from llama_index.core.schema import TextNode
    from llama_index.retrievers.bm25 import BM25Retriever
    from llama_index.vector_stores.faiss import FaissVectorStore

    meta, texts = corpus(data)
    vecs = _vectors(data)
    t0 = time.perf_counter()
    nodes = [
        TextNode(id_=f"n{i}", text=t, metadata={"source": f"doc{int(meta['source'][i]):03d}.pdf"})
        for i, t in enumerate(texts)
    ]
    store = FaissVectorStore(faiss_index=faiss.IndexFlatIP(DIM))
    ctx = StorageContext.from_defaults(vector_store=store)
    index = VectorStoreIndex([], storage_context=ctx, embed_model=llamaindex_lookup({}), show_progress=False)
    for lo in range(0, len(nodes), BUILD_BATCH):
        batch = nodes[lo : lo + BUILD_BATCH]
        for node, v in zip(batch, np.asarray(vecs[lo : lo + len(batch)]).tolist(), strict=True):
            node.embedding = v
        index.insert_nodes(batch)
        for node in batch:
            node.embedding = None
    ctx.persist(persist_dir=str(folder / "storage"))
    del index, ctx, store
    BM25Retriever.from_defaults(nodes=nodes, similarity_top_k=DEPTH).persist(str(folder / "bm25"))
    return {"build_s": round(time.perf_counter() - t0, 2)}


# ---------------------------------------------------------------------- cold open + queries (child)
def child_cold(contestant: str, folder: Path, data: Path) -> dict[str, Any]:
    """In a fresh process: import + open + first query + STEADY_QUERIES more. ``open_s`` counts the
    imports too; RSS figures after ``imports`` are the index's own (growth after the imports)."""
    meta = np.load(data / "meta.npz")
    queries = query_texts(meta)
    qvecs = meta["queries"]
    base = rss_bytes()
    t0 = time.perf_counter()
    if contestant == "ours":
        from mm_rag_plugin.retrievers import FusedRetriever, MultiModalIndex

        table = {q: qvecs[i] for i, q in enumerate(queries)}

        class Lookup:
            dim = DIM

            def embed_query(self, text=None, *, image=None):
                return table[text]

        mark = _mark()
        ix = MultiModalIndex(folder, show_progress=False)
        r = FusedRetriever(ix, Lookup(), k=K, prefetch_k=DEPTH, near_duplicate_threshold=None)
        run = r.retrieve
    elif contestant == "langchain-faiss":
        from langchain_community.vectorstores import FAISS

        table = {q: qvecs[i].tolist() for i, q in enumerate(queries)}
        mark = _mark()
        store = FAISS.load_local(
            str(folder / "faiss"), langchain_lookup(table), allow_dangerous_deserialization=True
        )
        with open(folder / "bm25.pkl", "rb") as fh:
            bm25 = pickle.load(fh)  # the benchmark's own file
        ens = langchain_ensemble(store, bm25, DEPTH)

        def run(q: str) -> list:
            return ens.invoke(q)[:K]
    elif contestant == "llamaindex-faiss":
        from llama_index.core import StorageContext, load_index_from_storage
        from llama_index.retrievers.bm25 import BM25Retriever
        from llama_index.vector_stores.faiss import FaissVectorStore

        table = {q: qvecs[i].tolist() for i, q in enumerate(queries)}
        mark = _mark()
        store = FaissVectorStore.from_persist_dir(str(folder / "storage"))
        ctx = StorageContext.from_defaults(vector_store=store, persist_dir=str(folder / "storage"))
        index = load_index_from_storage(ctx, embed_model=llamaindex_lookup(table))
        run = llamaindex_fusion(
            index, BM25Retriever.from_persist_dir(str(folder / "bm25")), DEPTH, K
        ).retrieve
    else:
        raise SystemExit(f"unknown contestant {contestant}")
    open_s = time.perf_counter() - t0
    import_s, rss_imports = mark[0] - t0, mark[1] - base
    rss_open = rss_bytes() - mark[1]
    t = time.perf_counter()
    first = run(queries[0])
    first_ms = (time.perf_counter() - t) * 1000
    assert len(first) == K, (contestant, len(first))
    lat = []
    for q in queries[1 : 1 + STEADY_QUERIES]:
        t = time.perf_counter()
        run(q)
        lat.append((time.perf_counter() - t) * 1000)
        if len(lat) >= STEADY_MIN and sum(lat) > STEADY_BUDGET_S * 1000:
            break
    return {
        "open_s": round(open_s, 3),
        "import_s": round(import_s, 3),
        "first_query_ms": round(first_ms, 2),
        "p50_ms": round(statistics.median(lat), 3),
        "steady_n": len(lat),
        "rss_imports_bytes": rss_imports,
        "rss_open_bytes": rss_open,
        "rss_steady_bytes": rss_bytes() - mark[1],
        "peak_rss_bytes": be.peak_rss_bytes(),
        **{f"{k}_steady_bytes": v - mark[2][k] for k, v in _rss_kinds().items()},
    }


def _rss_kinds() -> dict[str, int]:
    """Resident memory by kind: ``rss_anon`` (heap: only swap can take it back) and ``rss_file``
    (mapped files, e.g. Qdrant's segments: page cache the kernel can drop and re-read)."""
    out = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("RssAnon", "RssFile"):
            out["rss_" + key[3:].lower()] = int(value.split()[0]) * 1024
    return out


def _mark() -> tuple[float, int, dict[str, int]]:
    """Time and RSS once the contestant's modules are imported (before it opens anything)."""
    return time.perf_counter(), rss_bytes(), _rss_kinds()


def child_build(contestant: str, folder: Path, data: Path) -> dict[str, Any]:
    folder.mkdir(parents=True, exist_ok=True)
    res = build_langchain(folder, data) if contestant == "langchain-faiss" else build_llamaindex(folder, data)
    res["peak_rss_build_bytes"] = be.peak_rss_bytes()
    return res


# ---------------------------------------------------------------------- parent
def _where(folder: Path, data: Path) -> list[str]:
    return ["--folder", str(folder), "--data", str(data)]


def ensure_built(n: int, name: str, work: Path, log=print) -> tuple[Path, dict[str, Any]]:
    """The index of *name* at size *n*, built now or reused from an earlier run (same data)."""
    data = be.make_data(n, work / f"data-{n}")
    folder = work / f"index-{n}-{name}"
    record = work / f"build-{n}-{name}.json"
    cached = json.loads(record.read_text()) if record.exists() and folder.exists() else None
    if cached is not None and cached.get("builder", 1) == BUILDER.get(name, 1):
        b = cached
        log(f"  N={n:,} {name}: reusing the build of {b['built']} ({b['commit']})")
        return folder, {**b, "reused": True}
    shutil.rmtree(folder, ignore_errors=True)
    log(f"  N={n:,} {name}: building")
    if name == "ours":
        b = be._run_child(
            ["--child", "build", "--contestant", "edge", "--folder", str(folder), "--data", str(data)], None
        )
    else:
        b = run_child(
            "benchmarks.bench_cold", ["--child", "build", "--contestant", name, *_where(folder, data)]
        )
    b["disk_bytes"] = dir_size(folder)
    b["disk_allocated_bytes"] = disk_allocated(folder)
    b.update(_stamp(), builder=BUILDER.get(name, 1))
    record.write_text(json.dumps(b))
    log(
        f"  N={n:,} {name}: built in {b['build_s']} s, peak RSS {mib(b['peak_rss_build_bytes'])} MiB, "
        f"disk {mib(b['disk_allocated_bytes'])} MiB allocated ({mib(b['disk_bytes'])} MiB apparent)"
    )
    return folder, {**b, "reused": False}


def cli_query(folder: Path, text: str) -> dict[str, Any]:
    """``mm-rag query --keyword-only`` in a fresh process, timed and measured by a small launcher
    (its own ~10 MiB are the only thing ``ru_maxrss`` of a child can carry over)."""
    cmd = [sys.executable, "-m", "mm_rag_plugin", "query", "--index", str(folder), "--keyword-only", "-k", str(K), "--json", text]
    res = run_timed(cmd, "mm-rag query")
    hits = json.loads(res["out"])
    if not hits:
        raise RuntimeError("mm-rag query found nothing")
    return {"wall_s": round(res["wall_s"], 3), "peak_rss_bytes": res["peak_rss_bytes"]}


def run_size(
    n: int, rounds: int, work: Path, contestants: tuple[str, ...], load: BackgroundLoad | None, log=print
) -> dict[str, Any]:
    data = be.make_data(n, work / f"data-{n}")
    queries = query_texts(np.load(data / "meta.npz"))
    builds: dict[str, Any] = {}
    folders: dict[str, Path] = {}
    for c in contestants:
        if c == "ours-cli":
            continue
        if c != "ours" and n > PEERS_MAX:
            continue
        folders[c], builds[c] = ensure_built(n, c, work, log)
    samples: dict[str, dict[str, list[dict[str, Any]]]] = {}
    modes = ("quiet", "loaded") if load else ("quiet",)
    for r in range(rounds):
        for mode in modes:
            with load.on() if (load and mode == "loaded") else contextlib.nullcontext():
                for c in contestants:
                    if c == "ours-cli":
                        m = cli_query(folders["ours"], queries[r % len(queries)])
                    elif c in folders:
                        m = run_child(
                            "benchmarks.bench_cold",
                            ["--child", "cold", "--contestant", c, *_where(folders[c], data)],
                        )
                    else:
                        continue
                    samples.setdefault(c, {}).setdefault(mode, []).append(m)
                    log(
                        f"  N={n:,} round {r + 1} {mode:6s} {c:17s} "
                        + ", ".join(f"{k}={mib(v) if k.endswith('bytes') else v}" for k, v in m.items())
                    )
    out: dict[str, Any] = {"builds": builds, "by_contestant": {}}
    for c, by_mode in samples.items():
        out["by_contestant"][c] = {
            mode: {k: spread([s[k] for s in ss]) for k in ss[0]} for mode, ss in by_mode.items()
        }
    return out


def run(
    sizes: list[int],
    rounds: int = 3,
    work: Path = WORK,
    contestants: tuple[str, ...] = CONTESTANTS,
    loaded: bool = True,
    log=print,
) -> dict[str, Any]:
    res: dict[str, Any] = {
        "sizes": sizes,
        "rounds": rounds,
        "k": K,
        "depth": DEPTH,
        "steady_queries": STEADY_QUERIES,
        "steady_budget_s": STEADY_BUDGET_S,
        "steady_min": STEADY_MIN,
        "by_size": {},
    }
    load = BackgroundLoad() if loaded else None
    try:
        if load:
            res["load"] = load.describe()
        for n in sizes:
            res["by_size"][str(n)] = run_size(n, rounds, work, contestants, load, log)
    finally:
        if load:
            load.close()
    return res


def _steady_clause(res: dict[str, Any]) -> str:
    if "steady_budget_s" not in res:  # runs before the time budget
        return ""
    return (
        f"p50 over up to {res['steady_queries']} queries after the first, stopped after "
        f"{res['steady_budget_s']:g} s of them (at least {res.get('steady_min', STEADY_MIN)}). "
    )


def markdown(res: dict[str, Any]) -> list[str]:
    lines = [
        f"Fresh process per sample, {res['rounds']} interleaved rounds; median (min-max). Query: fused top "
        f"{res['k']} (dense text + dense image + BM25, {res['depth']} deep), vector looked up (no model). "
        + _steady_clause(res)
        + "Open = imports + opening the stored index. Steady RSS: the process's growth after its imports, "
        'once open and after the queries (per item: divided by N), and of it "files": pages of mapped files '
        "(page cache the kernel can reclaim); peak RSS: the whole process.",
        "",
    ]
    head = (
        "| N | contestant | mode | import + open s | first query ms | p50 ms after | steady RSS MiB (B/item) | "
        "peak RSS MiB | build peak RSS MiB | disk MiB (B/item) |"
    )
    lines += [head, "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]

    for n, sr in res["by_size"].items():
        items = int(n)
        for c, by_mode in sr["by_contestant"].items():
            b = sr["builds"].get(c) or (sr["builds"].get("ours") if c == "ours-cli" else None)
            for mode, m in by_mode.items():
                if c == "ours-cli":
                    open_s, first, p50 = cell(m["wall_s"]), "(in the wall time)", "-"
                    steady = "-"
                    peak = cell(m["peak_rss_bytes"], 1 / 2**20, "{:.0f}")
                else:
                    open_s, first, p50 = (
                        cell(m["open_s"]),
                        cell(m["first_query_ms"], fmt="{:.1f}"),
                        cell(m["p50_ms"]),
                    )
                    st = m["rss_steady_bytes"]["median"]
                    steady = f"{mib(st):,.0f} ({st / items:,.0f})"
                    if "rss_file_steady_bytes" in m:
                        steady += f"; files {mib(m['rss_file_steady_bytes']['median']):,.0f}"
                    peak = cell(m["peak_rss_bytes"], 1 / 2**20, "{:.0f}")
                build = f"{mib(b['peak_rss_build_bytes']):,.0f}" if b and c != "ours-cli" else "-"
                disk = (
                    f"{mib(b['disk_allocated_bytes']):,.0f} ({b['disk_allocated_bytes'] / items:,.0f})"
                    if b and c != "ours-cli"
                    else "-"
                )
                lines.append(
                    f"| {items:,} | {c} | {mode} | {open_s} | {first} | {p50} | {steady} | {peak} | {build} | {disk} |"
                )
    lines.append("")
    lines.append(
        "ours-cli: `mm-rag query --keyword-only` end to end (interpreter start, imports, open, query, "
        "JSON output); its open s column is the whole command's wall time."
    )
    notes = []
    for n, sr in res["by_size"].items():
        for c, b in sr["builds"].items():
            if b.get("reused"):
                notes.append(f"N={int(n):,} {c}: index built {b['built']} at {b['commit']} and reused.")
            if c == "ours":
                notes.append(
                    f"N={int(n):,} ours: {mib(b['disk_bytes']):,.0f} MiB apparent size on disk (files Qdrant "
                    f"preallocates sparsely), {mib(b['disk_allocated_bytes']):,.0f} MiB allocated."
                )
    if "load" in res:
        notes.append(f"loaded: {res['load']}")
    return [*lines, "", *[f"* {x}" for x in notes]]


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="200000")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--work", default=str(WORK))
    ap.add_argument("--contestants", default=",".join(CONTESTANTS))
    ap.add_argument("--quiet-only", action="store_true", help="no loaded rounds")
    ap.add_argument(
        "--build-only", action="store_true", help="build (and cache) the indexes, measure nothing"
    )
    ap.add_argument("--out", default=str(RESULTS / "cold.json"))
    ap.add_argument("--child", choices=("build", "cold"), help=argparse.SUPPRESS)
    ap.add_argument("--contestant", help=argparse.SUPPRESS)
    ap.add_argument("--folder", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        fn = child_build if args.child == "build" else child_cold
        print(json.dumps(fn(args.contestant, Path(args.folder), Path(args.data))))
        return
    sizes = [int(x) for x in args.sizes.split(",")]
    contestants = tuple(c.strip() for c in args.contestants.split(",") if c.strip())
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    if args.build_only:
        for n in sizes:
            for c in contestants:
                if c != "ours-cli" and (c == "ours" or n <= PEERS_MAX):
                    ensure_built(n, c, Path(args.work), log)
        return
    res = run(sizes, args.rounds, Path(args.work), contestants, not args.quiet_only, log)
    save(res, args.out, markdown)


if __name__ == "__main__":
    main()
