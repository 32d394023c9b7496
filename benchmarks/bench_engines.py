"""The index engine, before and after: Qdrant Edge (this tree) vs the numpy + SQLite engine (commit 8c54f68).

Both contestants get the same synthetic data, back to back in one run, each in fresh processes
(honest RSS, cold opens):

* data: N chunks, 2/3 texts and 1/3 images, over 100 sources; 512-d unit vectors drawn around
  ``clusters`` gaussian centres (CLIP-like: neighbours are much closer than random pairs); chunk
  text is 30-80 words from a 4,000-word vocabulary (Zipf) mixed with the cluster's own topic words,
  so BM25 has real postings. 200 held-out queries: a vector near a cluster centre plus 3 words
  (two topic words of that cluster, one common word).
* query: the fused query of ``FusedRetriever`` without a model (its ``_fuse`` with client-side
  RRF): lists ``dense_text`` (kind=text), ``dense_image`` (kind=image) and ``bm25``, 50 deep,
  fused top 10; BM25 query encoding included, model time excluded. Also filtered by source (one
  of 100, ~1 % of the points) and by kind (``{"kind": "image"}``: dense_image + bm25).
* per contestant and size: build rate (add_embedded in batches of 1024; for Edge also
  ``optimize()``, the HNSW build, timed apart), peak RSS of the build process, size on disk; then a
  fresh process: reopen time, first query, p50/p95, filtered p50, RSS growth after reopen + 100
  queries; dense recall@10 against exact search (numpy brute force over the same vectors) for
  dense_text, dense_image and source-filtered dense_text, and the Edge ``hnsw_ef`` sweep.

The old engine runs from a git worktree of 8c54f68 (``PYTHONPATH=<tree>/src`` shadows the
installed package; the child checks that ``mm_rag_plugin.__file__`` is in that tree):

    git worktree add /tmp/mmrag-legacy 8c54f68
    .venv/bin/python -m benchmarks.bench_engines --sizes 50000,200000 [--legacy-tree /tmp/mmrag-legacy]
    .venv/bin/python -m benchmarks.bench_engines --sizes 1000000 --merge      # adds to results.json

Edge settings for a variant: ``--edge-variants m=16,efc=64;m=32,efc=128`` (build) and
``--ef-sweep 64,128,256`` (search). Writes benchmarks/results/engines/results.{json,md}.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._common import (
    RESULTS,
    dir_size,
    disk_allocated,
    edge_engine,
    machine,
    mib,
    percentiles,
    rss_bytes,
)

DIM = 512
K = 10
DEPTH = 50
N_QUERIES = 200
N_SOURCES = 100
VOCAB = 4_000
TOPIC_WORDS = 12
BATCH = 1024
OUT = RESULTS / "engines"
DEFAULT_LEGACY = Path("/tmp/mmrag-legacy")
LEGACY_COMMIT = "8c54f68"
ROOT = Path(__file__).resolve().parents[1]


# ---------------------------------------------------------------------- data (parent, cached on disk)
def _clusters(n: int) -> int:
    return int(min(5_000, max(1_000, n // 200)))


def _words(seed: int = 0) -> list[str]:
    """A vocabulary of pronounceable pseudo-words (distinct, 4-10 letters)."""
    rng = np.random.default_rng(seed)
    cons, vows = list("bcdfghjklmnprstvwz"), list("aeiou")
    out: set[str] = set()
    while len(out) < VOCAB:
        syl = rng.integers(2, 5)
        out.add("".join(rng.choice(cons) + rng.choice(vows) for _ in range(syl)))
    return sorted(out)


def make_data(n: int, folder: Path, seed: int = 0) -> Path:
    """Write vectors (float32 .npy), words (int16 + offsets), cluster/source/kind per row, queries
    and exact ground truth into *folder*; reused when present."""
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / "done").exists():
        return folder
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    c = _clusters(n)
    centres = rng.normal(size=(c, DIM)).astype(np.float32)
    centres /= np.linalg.norm(centres, axis=1, keepdims=True)
    csize = rng.zipf(1.6, c).clip(1, 50).astype(np.float64)  # uneven cluster sizes
    cluster = rng.choice(c, size=n, p=csize / csize.sum()).astype(np.int32)
    spread = rng.uniform(0.5, 0.9, c).astype(np.float32)  # per cluster: cos to centre ~0.74-0.89
    vecs = np.lib.format.open_memmap(folder / "vectors.npy", mode="w+", dtype=np.float32, shape=(n, DIM))
    for s in range(0, n, 100_000):
        e = min(n, s + 100_000)
        cl = cluster[s:e]
        v = centres[cl] + rng.normal(size=(e - s, DIM)).astype(np.float32) * (spread[cl, None] / np.sqrt(DIM))
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        vecs[s:e] = v
    vecs.flush()
    kind = (np.arange(n) % 3 == 2).astype(np.int8)  # 1 = image (1/3)
    source = rng.integers(0, N_SOURCES, n).astype(np.int16)
    # words: 70 % common (Zipf over the vocabulary), 30 % the cluster's topic words
    p = 1.0 / np.arange(1, VOCAB + 1) ** 1.07
    p /= p.sum()
    topics = rng.integers(300, VOCAB, size=(c, TOPIC_WORDS)).astype(np.int16)
    lengths = rng.integers(30, 81, n)
    lengths[kind == 1] = rng.integers(5, 25, int(kind.sum()))  # images: OCR + caption words
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    total = int(offsets[-1])
    words = rng.choice(VOCAB, size=total, p=p).astype(np.int16)
    row = np.repeat(np.arange(n), lengths)
    topical = rng.random(total) < 0.3
    words[topical] = topics[cluster[row[topical]], rng.integers(0, TOPIC_WORDS, int(topical.sum()))]
    del row, topical
    # queries: held out, near a cluster centre (drawn by cluster size, like the data)
    qc = rng.choice(c, size=N_QUERIES, p=csize / csize.sum())
    q = centres[qc] + rng.normal(size=(N_QUERIES, DIM)).astype(np.float32) * (spread[qc, None] / np.sqrt(DIM))
    q /= np.linalg.norm(q, axis=1, keepdims=True)
    qwords = np.stack([topics[qc, 0], topics[qc, rng.integers(1, TOPIC_WORDS, N_QUERIES)], rng.integers(0, 200, N_QUERIES)], 1)
    qsource = rng.integers(0, N_SOURCES, N_QUERIES).astype(np.int16)
    np.savez(folder / "meta.npz", kind=kind, source=source, offsets=offsets, words=words, queries=q,
             qwords=qwords, qsource=qsource, cluster=cluster)
    _ground_truth(folder, vecs, kind, source, q, qsource)
    (folder / "done").write_text(json.dumps({"n": n, "clusters": c, "seconds": time.perf_counter() - t0}))
    return folder


def _ground_truth(folder: Path, vecs: np.ndarray, kind, source, q, qsource) -> None:
    """Exact top-10 rows per query: among texts, among images, among texts of the query's source."""
    n = len(vecs)
    best = {g: (np.full((N_QUERIES, K), -np.inf, np.float32), np.zeros((N_QUERIES, K), np.int64))
            for g in ("text", "image", "text_source")}
    for s in range(0, n, 100_000):
        e = min(n, s + 100_000)
        sc = q @ np.asarray(vecs[s:e]).T  # (Q, chunk)
        masks = {"text": kind[s:e] == 0, "image": kind[s:e] == 1}
        for g, (bs, bi) in best.items():
            if g == "text_source":
                m = (kind[s:e] == 0)[None, :] & (source[s:e][None, :] == qsource[:, None])
            else:
                m = np.broadcast_to(masks[g][None, :], sc.shape)
            x = np.where(m, sc, -np.inf)
            top = np.argpartition(-x, K, axis=1)[:, :K]
            allv = np.concatenate([bs, np.take_along_axis(x, top, 1)], 1)
            alli = np.concatenate([bi, top + s], 1)
            keep = np.argsort(-allv, axis=1)[:, :K]
            best[g] = (np.take_along_axis(allv, keep, 1), np.take_along_axis(alli, keep, 1))
    np.savez(folder / "truth.npz", **{g: bi for g, (_, bi) in best.items()})


# ---------------------------------------------------------------------- child side
def peak_rss_bytes() -> int:
    """Peak RSS of this process image (VmHWM: reset at exec, unlike ru_maxrss which keeps the parent's)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def _chunks(meta, vocab: list[str], s: int, e: int):
    from mm_rag_plugin.types import ImageChunk, TextChunk

    words, offsets, kind, source = meta["words"], meta["offsets"], meta["kind"], meta["source"]
    out = []
    for i in range(s, e):
        text = " ".join(vocab[w] for w in words[offsets[i] : offsets[i + 1]])
        src = f"doc{int(source[i]):03d}.pdf"
        if kind[i]:
            out.append(ImageChunk(id=f"i{i}", source=src, image_path=f"/images/{i}.png", content_hash=f"h{i}",
                                  ocr_text=text, page=i % 40 + 1, position=i))
        else:
            out.append(TextChunk(id=f"t{i}", text=text, source=src, page=i % 40 + 1, position=i))
    return out


def _imports():
    import mm_rag_plugin
    from mm_rag_plugin.retrievers import MultiModalIndex
    from mm_rag_plugin.retrievers._filters import parse_filters
    from mm_rag_plugin.retrievers.fusion import rrf, rrf_sort_key

    try:
        from mm_rag_plugin.retrievers.engine import ListQuery
    except ImportError:  # the legacy tree
        from mm_rag_plugin.retrievers._engine import ListQuery
    return mm_rag_plugin, MultiModalIndex, parse_filters, rrf, rrf_sort_key, ListQuery


def _check_tree(contestant: str) -> str:
    import mm_rag_plugin

    where = str(Path(mm_rag_plugin.__file__).resolve())
    legacy = os.environ.get("MMRAG_LEGACY_TREE")
    if contestant == "numpy":
        if not legacy or not where.startswith(str(Path(legacy).resolve())):
            raise SystemExit(f"numpy contestant must import the legacy tree {legacy}, got {where}")
    elif legacy and where.startswith(str(Path(legacy).resolve())):
        raise SystemExit(f"edge contestant imported the legacy tree: {where}")
    return where


def _edge_settings(opts: dict[str, Any]) -> None:
    """Edge HNSW/search settings for this process (module constants of _edge; src stays as is)."""
    from mm_rag_plugin.retrievers import _edge

    if "m" in opts:
        _edge.HNSW_M = int(opts["m"])
    if "efc" in opts:
        _edge.HNSW_EF_CONSTRUCT = int(opts["efc"])
    if "ef" in opts:
        _edge.SEARCH_EF = int(opts["ef"])


def _open_index(contestant: str, folder: Path, create: bool):
    _, MultiModalIndex, *_ = _imports()
    if contestant == "numpy":
        return MultiModalIndex(folder, engine="numpy", dim=DIM, show_progress=False)
    return MultiModalIndex(folder, dim=DIM, show_progress=False) if create else MultiModalIndex(folder, show_progress=False)


def child_build(contestant: str, folder: Path, data: Path, opts: dict[str, Any]) -> dict[str, Any]:
    where = _check_tree(contestant)
    if contestant == "edge":
        _edge_settings(opts)
    meta = dict(np.load(data / "meta.npz"))
    vocab = _words()
    n = len(meta["kind"])
    vec_file = data / "vectors.npy"
    header = vec_file.stat().st_size - n * DIM * 4
    t0 = time.perf_counter()
    ix = _open_index(contestant, folder, create=True)
    prep = 0.0
    with open(vec_file, "rb") as fh:
        fh.seek(header)
        for s in range(0, n, BATCH):
            e = min(n, s + BATCH)
            tp = time.perf_counter()
            vecs = np.fromfile(fh, dtype=np.float32, count=(e - s) * DIM).reshape(e - s, DIM)
            chunks = _chunks(meta, vocab, s, e)
            prep += time.perf_counter() - tp
            ix.add_embedded(chunks, vecs)
            if s and s % (BATCH * 100) == 0:
                print(f"    {contestant} added {s:,} ({s / (time.perf_counter() - t0 - prep):.0f}/s)", file=sys.stderr, flush=True)
    add_s = time.perf_counter() - t0 - prep
    t = time.perf_counter()
    if contestant == "edge":
        ix.optimize()
    optimize_s = time.perf_counter() - t
    count = len(ix)
    t = time.perf_counter()
    ix.close()
    close_s = time.perf_counter() - t
    build_s = add_s + optimize_s + close_s
    return {"tree": where, "points": count, "add_s": round(add_s, 2), "optimize_s": round(optimize_s, 2),
            "close_s": round(close_s, 2), "build_s": round(build_s, 2), "build_points_per_s": round(n / build_s, 1),
            "add_points_per_s": round(n / add_s, 1), "peak_rss_build_bytes": peak_rss_bytes(),
            "data_prep_s_excluded": round(prep, 2)}


def child_query(contestant: str, folder: Path, data: Path, opts: dict[str, Any], ef_sweep: list[int]) -> dict[str, Any]:
    where = _check_tree(contestant)
    _, _, parse_filters, rrf, rrf_sort_key, ListQuery = _imports()
    if contestant == "edge":
        _edge_settings(opts)
        import qdrant_edge  # noqa: F401 - library code is not index memory
    meta = np.load(data / "meta.npz")
    q, qwords, qsource = meta["queries"], meta["qwords"], meta["qsource"]
    vocab = _words()
    texts = [" ".join(vocab[w] for w in row) for row in qwords]
    sources = [f"doc{int(s):03d}.pdf" for s in qsource]
    gc.collect()
    base = rss_bytes()
    t = time.perf_counter()
    ix = _open_index(contestant, folder, create=False)
    reopen_s = time.perf_counter() - t
    by_kind = {"image": parse_filters({"kind": "image"})}

    def fused(i: int, filt: str | None = None) -> list:
        conditions: tuple = ()
        names = (("dense_text", "text"), ("dense_image", "image"))
        if filt == "source":
            conditions = parse_filters({"source": sources[i]})
        elif filt == "kind":
            conditions = by_kind["image"]
            names = (("dense_image", "image"),)
        lists = [ListQuery(name, DEPTH, dense=q[i], kind=kind) for name, kind in names]
        sparse = ix.bm25.encode_query(texts[i])
        if len(sparse):
            lists.append(ListQuery("bm25", DEPTH, sparse=sparse))
        results = ix.search_lists(lists, conditions)
        named = {lq.name: sorted(r, key=lambda x: rrf_sort_key(x[1], x[0])) for lq, r in zip(lists, results, strict=True)}
        return rrf(named, k=60)[:K]

    t = time.perf_counter()
    first = fused(0)
    first_ms = (time.perf_counter() - t) * 1000
    assert len(first) == K, first

    def lat(filt: str | None, idx: range) -> list[float]:
        out = []
        for i in idx:
            t = time.perf_counter()
            fused(i, filt)
            out.append((time.perf_counter() - t) * 1000)
        return out

    for i in range(1, 6):  # warm-up
        fused(i)
    un = lat(None, range(N_QUERIES))
    rss_after = rss_bytes() - base  # reopen + ~200 queries
    res: dict[str, Any] = {
        "tree": where, "reopen_s": round(reopen_s, 3), "first_query_ms": round(first_ms, 2),
        "fused": percentiles(un), "rss_after_queries_bytes": rss_after,
        "fused_source": percentiles(lat("source", range(N_QUERIES))),
        "fused_kind": percentiles(lat("kind", range(N_QUERIES))),
    }
    # dense recall@10 against exact search
    truth = np.load(data / "truth.npz")

    def rows_of(pids: list[str]) -> list[int]:
        return [int(c.id[1:]) for c in ix.chunks(pids).values()]

    def recall() -> dict[str, float]:
        out = {}
        for g, kind, filt in (("text", "text", None), ("image", "image", None), ("text_source", "text", "source")):
            hits = 0
            for i in range(N_QUERIES):
                conditions = parse_filters({"source": sources[i]}) if filt else ()
                got = ix.search_lists([ListQuery("d", K, dense=q[i], kind=kind)], conditions)[0]
                hits += len(set(rows_of([p for p, _ in got])) & set(truth[g][i].tolist()))
            out[g] = round(hits / (K * N_QUERIES), 4)
        return out

    if contestant == "edge" or len(meta["cluster"]) <= 200_000:  # numpy is exact search: checked up to 200k
        res["recall_at_10"] = recall()
    if contestant == "edge" and ef_sweep:
        from mm_rag_plugin.retrievers import _edge

        engine = edge_engine(ix)
        sweep = {}
        for ef in ef_sweep:
            _edge.SEARCH_EF = ef
            engine._set_params()
            for i in range(3):
                fused(i)
            sweep[str(ef)] = {"fused_p50_ms": percentiles(lat(None, range(N_QUERIES)))["p50_ms"],
                              "source_p50_ms": percentiles(lat("source", range(N_QUERIES)))["p50_ms"],
                              "recall_at_10": recall()}
            print(f"    ef={ef}: {sweep[str(ef)]}", file=sys.stderr, flush=True)
        res["ef_sweep"] = sweep
    ix.close()
    return res


# ---------------------------------------------------------------------- parent
def _run_child(args: list[str], legacy: Path | None, timeout: float = 4 * 3600) -> dict[str, Any]:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    env.pop("MMRAG_LEGACY_TREE", None)
    if legacy is not None:
        env["PYTHONPATH"] = str(legacy / "src")
        env["MMRAG_LEGACY_TREE"] = str(legacy)
    proc = subprocess.run([sys.executable, "-m", "benchmarks.bench_engines", *args], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=None, text=True, timeout=timeout)
    if proc.returncode != 0:
        raise RuntimeError(f"child {' '.join(args)} failed ({proc.returncode})")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def ensure_legacy(tree: Path) -> Path:
    if not (tree / "src" / "mm_rag_plugin" / "retrievers" / "_numpy.py").is_file():
        subprocess.run(["git", "-C", str(ROOT), "worktree", "add", "--detach", str(tree), LEGACY_COMMIT], check=True)
    return tree


def _tree_state() -> str:
    """The commit the Edge contestant ran from, and whether src/ had uncommitted changes."""
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(ROOT), "status", "--porcelain", "src"], capture_output=True, text=True).stdout.strip()
    return head + (" + uncommitted changes in src/" if dirty else "")


def _parse_variant(spec: str) -> dict[str, int]:
    return {k.strip(): int(v) for k, v in (p.split("=") for p in spec.split(",") if p.strip())}


def _variant_name(opts: dict[str, int]) -> str:
    return "edge" + ("" if not opts else "[" + ",".join(f"{k}={v}" for k, v in opts.items()) + "]")


def run_size(n: int, work: Path, legacy: Path, variants: list[dict[str, int]], ef_sweep: list[int],
             contestants: list[str], log=print) -> dict[str, Any]:
    data = make_data(n, work / f"data-{n}")
    info = json.loads((data / "done").read_text())
    log(f"== N={n:,}: data ready ({info['clusters']} clusters)")
    out: dict[str, Any] = {"clusters": info["clusters"], "by_contestant": {}}
    todo: list[tuple[str, str, dict[str, int]]] = []
    for c in contestants:  # in the order given
        if c == "numpy":
            todo.append(("numpy", "numpy", {}))
        elif c == "edge":
            todo += [("edge", _variant_name(v), v) for v in variants]
    for contestant, name, opts in todo:
        folder = work / f"index-{n}-{name}"
        shutil.rmtree(folder, ignore_errors=True)
        lg = legacy if contestant == "numpy" else None
        o = json.dumps(opts)
        log(f"  {name}: building")
        b = _run_child(["--child", "build", "--contestant", contestant, "--folder", str(folder), "--data", str(data),
                        "--opts", o], lg)
        b["disk_bytes"] = dir_size(folder)
        b["disk_allocated_bytes"] = disk_allocated(folder)
        log(f"  {name}: add {b['add_s']} s, optimize {b['optimize_s']} s -> {b['build_points_per_s']:.0f} points/s, "
            f"peak RSS {mib(b['peak_rss_build_bytes'])} MiB, disk {mib(b['disk_bytes'])} MiB")
        r = _run_child(["--child", "query", "--contestant", contestant, "--folder", str(folder), "--data", str(data),
                        "--opts", o, "--ef-sweep", ",".join(map(str, ef_sweep)) if contestant == "edge" else ""], lg)
        log(f"  {name}: reopen {r['reopen_s']} s, first {r['first_query_ms']} ms, fused p50 {r['fused']['p50_ms']} / "
            f"p95 {r['fused']['p95_ms']} ms, source p50 {r['fused_source']['p50_ms']}, kind p50 "
            f"{r['fused_kind']['p50_ms']}, RSS {mib(r['rss_after_queries_bytes'])} MiB, recall {r.get('recall_at_10')}")
        out["by_contestant"][name] = {**b, **r, "settings": opts}
        shutil.rmtree(folder, ignore_errors=True)
        _save_partial(n, out)
    return out


_RESULTS: dict[str, Any] = {}


def _save_partial(n: int, size_res: dict[str, Any]) -> None:
    if _RESULTS:
        _RESULTS["by_size"][str(n)] = size_res
        write(_RESULTS)


def _edge_defaults() -> dict[str, int]:
    from mm_rag_plugin.retrievers import _edge

    return {"m": _edge.HNSW_M, "efc": _edge.HNSW_EF_CONSTRUCT, "ef": _edge.SEARCH_EF or "by size (256; 512 from 500k)"}


def ratios(size_res: dict[str, Any], edge_name: str = "edge") -> dict[str, float]:
    e, p = size_res["by_contestant"].get(edge_name), size_res["by_contestant"].get("numpy")
    if not e or not p:
        return {}
    f = {
        "build_points_per_s": lambda r: r["build_points_per_s"],
        "disk_bytes": lambda r: r["disk_bytes"],
        "disk_allocated_bytes": lambda r: r.get("disk_allocated_bytes", 0),
        "reopen_s": lambda r: r["reopen_s"],
        "first_query_ms": lambda r: r["first_query_ms"],
        "fused_p50": lambda r: r["fused"]["p50_ms"],
        "fused_p95": lambda r: r["fused"]["p95_ms"],
        "source_p50": lambda r: r["fused_source"]["p50_ms"],
        "kind_p50": lambda r: r["fused_kind"]["p50_ms"],
        "peak_rss_build": lambda r: r["peak_rss_build_bytes"],
        "rss_after_queries": lambda r: r["rss_after_queries_bytes"],
    }
    return {k: round(g(e) / g(p), 3) if g(p) else None for k, g in f.items()}


def targets(res: dict[str, Any]) -> list[tuple[str, bool | None, str]]:
    out = []
    bs = res["by_size"]
    for n, sr in sorted(bs.items(), key=lambda t: int(t[0])):
        e, p = sr["by_contestant"].get("edge"), sr["by_contestant"].get("numpy")
        if not e:
            continue
        ep = e["fused"]["p50_ms"]
        if int(n) == 50_000:
            out.append(("fused p50 <= 20 ms at 50k", ep <= 20, f"{ep:.2f} ms"))
            if p:
                out.append(("fused p50 <= 1.25x numpy at 50k", ep <= 1.25 * p["fused"]["p50_ms"],
                            f"{ep / p['fused']['p50_ms']:.2f}x"))
        if int(n) == 1_000_000:
            ef = (e.get("settings") or {}).get("ef")
            rec = min(e["recall_at_10"]["text"], e["recall_at_10"]["image"])
            out.append((f"recall@10 >= 0.98 at 1M (dense_text, dense_image), hnsw_ef={ef}", rec >= 0.98, f"{e['recall_at_10']}"))
            if p:
                out.append((f"fused p50 < numpy at 1M, hnsw_ef={ef}", ep < p["fused"]["p50_ms"], f"{ep / p['fused']['p50_ms']:.2f}x"))
            for sweep_ef, sw in sorted((e.get("ef_sweep") or {}).items(), key=lambda t: int(t[0])):
                r = sw["recall_at_10"]
                out.append((f"recall@10 >= 0.98 at 1M, hnsw_ef={sweep_ef} (same graph)", min(r["text"], r["image"]) >= 0.98, f"{r}"))
                if p:
                    ratio = sw["fused_p50_ms"] / p["fused"]["p50_ms"]
                    out.append((f"fused p50 < numpy at 1M, hnsw_ef={sweep_ef} (same graph)", ratio < 1, f"{ratio:.2f}x"))
        for f in ("fused_source", "fused_kind"):
            out.append((f"{f.split('_')[1]}-filtered p50 <= 2x unfiltered at {int(n):,}", e[f]["p50_ms"] <= 2 * ep,
                        f"{e[f]['p50_ms'] / ep:.2f}x"))
    return out


def markdown(res: dict[str, Any]) -> list[str]:
    m = res["machine"]
    lines = [
        "# Index engines: Qdrant Edge vs the numpy + SQLite engine (8c54f68)", "",
        f"Machine: {m['cpu']}, {m['cpus']} CPUs, {m['memory_gib']} GiB RAM; Python {m['python']}, numpy {m['numpy']}, "
        f"qdrant-edge-py {res.get('qdrant_edge')}. Edge from {res.get('edge_tree')}, settings (src defaults): {res.get('edge_defaults')}.",
        f"Data: 512-d clustered unit vectors (1k-5k gaussian clusters), 1/3 images, {N_SOURCES} sources, "
        f"30-80-word text chunks; {N_QUERIES} held-out queries. Fused query: dense_text + dense_image + bm25, "
        f"{DEPTH} deep, RRF top {K}, no model time. Ratios: Edge / numpy.", "",
    ]
    rows = [
        ("build points/s (incl. optimize)", lambda r: f"{r['build_points_per_s']:,.0f}", "build_points_per_s"),
        ("add s / optimize s", lambda r: f"{r['add_s']:.1f} / {r['optimize_s']:.1f}", None),
        ("on disk MiB (apparent size)", lambda r: f"{mib(r['disk_bytes']):,.0f}", "disk_bytes"),
        ("on disk MiB (allocated blocks)", lambda r: f"{mib(r.get('disk_allocated_bytes', 0)):,.0f}", "disk_allocated_bytes"),
        ("reopen s", lambda r: f"{r['reopen_s']:.2f}", "reopen_s"),
        ("first query ms", lambda r: f"{r['first_query_ms']:.1f}", "first_query_ms"),
        ("fused p50 ms", lambda r: f"{r['fused']['p50_ms']:.2f}", "fused_p50"),
        ("fused p95 ms", lambda r: f"{r['fused']['p95_ms']:.2f}", "fused_p95"),
        ("source-filtered p50 ms", lambda r: f"{r['fused_source']['p50_ms']:.2f}", "source_p50"),
        ("kind-filtered p50 ms", lambda r: f"{r['fused_kind']['p50_ms']:.2f}", "kind_p50"),
        ("peak RSS build MiB", lambda r: f"{mib(r['peak_rss_build_bytes']):,.0f}", "peak_rss_build"),
        ("RSS after reopen+queries MiB", lambda r: f"{mib(r['rss_after_queries_bytes']):,.0f}", "rss_after_queries"),
        ("recall@10 text / image / text+source",
         lambda r: "{text:.3f} / {image:.3f} / {text_source:.3f}".format(**r["recall_at_10"]) if "recall_at_10" in r
         else "exact (not re-measured)", None),
    ]
    for n, sr in sorted(res["by_size"].items(), key=lambda t: int(t[0])):
        names = list(sr["by_contestant"])
        lines += [f"## N = {int(n):,} ({sr['clusters']} clusters)", "",
                  "| | " + " | ".join(names) + " | edge / numpy |", "|---|" + "---:|" * (len(names) + 1)]
        rat = ratios(sr)
        for label, fmt, key in rows:
            cells = [fmt(sr["by_contestant"][c]) for c in names]
            r = rat.get(key) if key else None
            lines.append(f"| {label} | " + " | ".join(cells) + f" | {'' if r is None else f'{r:.2f}x'} |")
        for c in names:
            sw = sr["by_contestant"][c].get("ef_sweep")
            if sw:
                lines += ["", f"{c}: hnsw_ef sweep (same graph): " + "; ".join(
                    f"ef={ef}: p50 {v['fused_p50_ms']:.2f} ms, source p50 {v['source_p50_ms']:.2f} ms, recall "
                    f"{v['recall_at_10']['text']:.3f}/{v['recall_at_10']['image']:.3f}/{v['recall_at_10']['text_source']:.3f}"
                    for ef, v in sw.items())]
        lines.append("")
    if res.get("notes"):
        lines += ["## Notes", "", *[f"* {n}" for n in res["notes"]], ""]
    lines += ["## Targets", "", "| target | met | measured |", "|---|---|---|"]
    lines += [f"| {t} | {'yes' if ok else 'NO'} | {v} |" for t, ok, v in targets(res)]
    return lines


def write(res: dict[str, Any]) -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "results.json").write_text(json.dumps(res, indent=1))
    (OUT / "results.md").write_text("\n".join(markdown(res)) + "\n")


def render(folder: Path) -> None:
    """Rewrite results.md from results.json (after merging runs)."""
    (folder / "results.md").write_text("\n".join(markdown(json.loads((folder / "results.json").read_text()))) + "\n")


def main(argv: list[str] | None = None) -> None:
    global OUT, _RESULTS
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="50000,200000,1000000")
    ap.add_argument("--legacy-tree", default=str(DEFAULT_LEGACY))
    ap.add_argument("--work", default="/tmp/mmrag-bench-engines", help="data and index folders (deleted after use)")
    ap.add_argument("--contestants", default="numpy,edge")
    ap.add_argument("--edge-variants", default="", help="';'-separated extra Edge settings, e.g. 'm=32,efc=128'")
    ap.add_argument("--ef-sweep", default="64,128,256")
    ap.add_argument("--merge", action="store_true", help="add to an existing results.json instead of replacing it")
    ap.add_argument("--keep-data", action="store_true")
    ap.add_argument("--out", default=str(OUT), help="folder for results.json / results.md")
    ap.add_argument("--render", action="store_true", help="only rewrite results.md from results.json in --out")
    ap.add_argument("--child", choices=("build", "query"), help=argparse.SUPPRESS)
    ap.add_argument("--contestant", help=argparse.SUPPRESS)
    ap.add_argument("--folder", help=argparse.SUPPRESS)
    ap.add_argument("--data", help=argparse.SUPPRESS)
    ap.add_argument("--opts", default="{}", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    ef_sweep = [int(x) for x in args.ef_sweep.split(",") if x.strip()]
    if args.child:
        opts = json.loads(args.opts)
        fn = child_build if args.child == "build" else child_query
        extra = (ef_sweep,) if args.child == "query" else ()
        res = fn(args.contestant, Path(args.folder), Path(args.data), opts, *extra)
        res["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)  # others' work on the machine disturbs timings
        print(json.dumps(res))
        return
    OUT = Path(args.out)
    if args.render:
        render(OUT)
        return
    legacy = ensure_legacy(Path(args.legacy_tree))
    work = Path(args.work)
    variants = [{}] + [_parse_variant(v) for v in args.edge_variants.split(";") if v.strip()]
    import importlib.metadata as md

    prev = json.loads((OUT / "results.json").read_text()) if args.merge and (OUT / "results.json").exists() else None
    _RESULTS = prev or {"by_size": {}}
    _RESULTS.update({"machine": machine(), "qdrant_edge": md.version("qdrant-edge-py"), "edge_defaults": _edge_defaults(),
                     "legacy_commit": LEGACY_COMMIT, "edge_tree": _tree_state(), "dim": DIM, "k": K, "depth": DEPTH, "queries": N_QUERIES})
    _RESULTS.setdefault("commands", []).append("python -m benchmarks.bench_engines " + " ".join(argv or sys.argv[1:]))
    for n in [int(x) for x in args.sizes.split(",")]:
        t = time.perf_counter()
        res = run_size(n, work, legacy, variants, ef_sweep, args.contestants.split(","),
                       log=lambda s: print(s, file=sys.stderr, flush=True))
        res["seconds"] = round(time.perf_counter() - t, 1)
        _RESULTS["by_size"][str(n)] = res
        write(_RESULTS)
        if not args.keep_data:
            shutil.rmtree(work / f"data-{n}", ignore_errors=True)
    print("\n".join(markdown(_RESULTS)))


if __name__ == "__main__":
    main()
