"""The benchmark suite: mm-rag-plugin against LangChain, LlamaIndex and Qdrant in one run.

    .venv/bin/python -m benchmarks.run --quick    # small sizes, two rounds
    .venv/bin/python -m benchmarks.run --full     # sizes up to 200k (cold start up to 1M), three rounds
    .venv/bin/python -m benchmarks.run --quick --only retrieval,storage

Sections (each module also runs on its own; its docstring says exactly what is compared):

* ``embeddings`` (``bench_embeddings``): images/s and texts/s for batch sizes 1..256, ours vs the
  LangChain and LlamaIndex per-item loops vs a raw open_clip batched forward; on a GPU also fp16/bf16.
* ``retrieval`` (``bench_retrieval``): fused query latency as the index grows, against each peer's
  strongest offline setup (FAISS + BM25, Qdrant hybrid) and the frameworks' default stores; every
  system's dense recall@10 against exact search, and ours' latency and recall at each hnsw_ef.
* ``cold`` (``bench_cold``): a fresh process opening a built index and answering its first query,
  in-process and through the CLI; memory and disk per item.
* ``ingestion`` (``bench_ingest``): read + OCR + embed + upsert of the real PDFs, pages/s, images/s,
  peak memory, quiet and under load.
* ``storage`` (``bench_storage``): on-disk size and RSS per 10k items, with and without quantization.
* ``writes`` (``bench_writes``): one-at-a-time adds (ms per call, ours vs LangChain/LlamaIndex FAISS) and a bulk
  build from precomputed vectors (points/s, ours vs LangChain FAISS + BM25).

Modules that run on their own only (not sections of this suite): ``bench_windows`` (what CLIP
windows cost), ``bench_text_retrieval`` (nDCG@10 and recall@10/100 of BM25, CLIP with and without
windows, a text model beside CLIP and the fused defaults on a BEIR dataset: needs real weights),
and the OCR, documents, engines, model-load and fine-tuning benchmarks, each documented in its
docstring and in README.md.

Timed figures are medians of interleaved rounds, quiet and under the background load of
``benchmarks/_load.py`` (one busy process per CPU); ingestion runs two rounds in ``--full`` (one
round of its five pipelines takes minutes). Storage measures sizes (disk, RSS, recall), not time:
one run.

Needs the ``bench`` dependency group: ``.venv/bin/pip install --group bench -e .``.
Writes ``results.json``, ``results.md`` and ``scaling.png`` to ``benchmarks/results/<quick|full>/``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from benchmarks._common import RESULTS, commit, machine

SECTIONS = ("embeddings", "retrieval", "cold", "ingestion", "storage", "writes")

# "smoke": tiny sizes, for the test that checks the suite still runs against the peers' current APIs
RETRIEVAL_SIZES = {"smoke": [300], "quick": [1_000, 10_000], "full": [1_000, 10_000, 50_000, 200_000]}
QDRANT_MAX = 10_000  # qdrant-client local mode: a few hundred items/s ingest, Python brute-force search
DEFAULT_MAX = 50_000  # the frameworks' default in-memory stores: linear scans in Python
ROUNDS = {"smoke": 1, "quick": 2, "full": 3}
COLD_SIZES = {"smoke": [1_000], "quick": [50_000], "full": [200_000, 1_000_000]}
INGEST_ROUNDS = {"smoke": 1, "quick": 1, "full": 2}  # a round of all five pipelines: ~3 min quiet, ~6 loaded
STORAGE_N = {"smoke": 300, "quick": 10_000, "full": 50_000}
WRITES = {  # one-at-a-time calls x rounds, bulk build sizes
    "smoke": {"calls": 20, "rounds": 1, "sizes": (500,)},
    "quick": {"calls": 300, "rounds": 2, "sizes": (10_000,)},
    "full": {"calls": 500, "rounds": 3, "sizes": (10_000, 50_000)},
}
EF_SWEEP = {"smoke": [256], "quick": [64, 256, 1024], "full": [64, 128, 256, 512, 1024]}  # ours' hnsw_ef
SMOKE_MODEL = "ViT-S-32"  # the smoke run checks code paths: a smaller open_clip model than the reported ViT-B-32


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run_section(name: str, mode: str, retrieval_sizes: list[int] | None = None) -> dict[str, Any]:
    quick, smoke = mode in ("quick", "smoke"), mode == "smoke"
    if name == "embeddings":
        from benchmarks import bench_embeddings

        if smoke:
            return bench_embeddings.run(quick=True, rounds=1, batches=(1, 4), n_items=(4, 8), model_name=SMOKE_MODEL)
        if quick:
            return bench_embeddings.run(quick=True)
        return bench_embeddings.run(rounds=ROUNDS[mode], batches=(1, 8, 32, 128), n_items=(32, 128))
    if name == "retrieval":
        from benchmarks import bench_retrieval

        return bench_retrieval.run(
            retrieval_sizes or RETRIEVAL_SIZES[mode],
            qdrant_max=QDRANT_MAX,
            default_max=DEFAULT_MAX,
            rounds=ROUNDS[mode],
            log=log,
            ef_sweep=EF_SWEEP[mode],
        )
    if name == "cold":
        import tempfile

        from benchmarks import bench_cold

        if smoke:  # nothing cached between test runs
            with tempfile.TemporaryDirectory() as tmp:
                return bench_cold.run(COLD_SIZES[mode], rounds=1, work=Path(tmp), log=log)
        return bench_cold.run(COLD_SIZES[mode], rounds=ROUNDS[mode], log=log)
    if name == "ingestion":
        from benchmarks import bench_ingest

        return bench_ingest.run(quick=quick, smoke=smoke, rounds=INGEST_ROUNDS[mode], loaded=not smoke)
    if name == "storage":
        from benchmarks import bench_storage

        return bench_storage.run(STORAGE_N[mode])
    if name == "writes":
        from benchmarks import bench_writes

        return bench_writes.run(**WRITES[mode], loaded=not smoke)
    raise ValueError(name)


def section_markdown(name: str, res: dict[str, Any]) -> list[str]:
    from benchmarks import (
        bench_cold,
        bench_embeddings,
        bench_ingest,
        bench_retrieval,
        bench_storage,
        bench_writes,
    )

    module = {"embeddings": bench_embeddings, "retrieval": bench_retrieval, "cold": bench_cold,
              "ingestion": bench_ingest, "storage": bench_storage, "writes": bench_writes}[name]
    return module.markdown(res)


def rerun_notes(results: dict[str, Any]) -> list[str]:
    """One line per section measured again after the run (``--rerun``): when, where and how."""
    out = []
    for name, r in results.get("reruns", {}).items():
        m = r["machine"]
        where = "" if m == results["machine"] else f" on {m['cpu']}, {m['cpus']} CPUs, {m['memory_gib']} GiB"
        out.append(
            f"Section `{name}` measured again {r['started']} at `{r['commit']}`{where} with `{r['command']}` "
            f"({r['seconds'] / 60:.0f} min); its tables and summary rows are from that run."
        )
    return [*out, ""] if out else []


def report(results: dict[str, Any]) -> str:
    m = results["machine"]
    lines = [
        f"# Benchmarks ({results['mode']})",
        "",
        f"Run {results['started']} with `{results['command']}` in {results['seconds'] / 60:.1f} min.",
        f"Machine: {m['cpu']}, {m['cpus']} CPUs, {m['memory_gib']} GiB RAM, GPU: {m.get('gpu') or 'none'}; "
        f"Python {m['python']}, torch {m.get('torch')}, numpy {m['numpy']}.",
        "",
    ]
    lines += rerun_notes(results)
    for name in SECTIONS:
        if name in results["sections"]:
            lines += [f"## {name}", "", *section_markdown(name, results["sections"][name]), ""]
    for name, err in results.get("errors", {}).items():
        lines += [f"## {name}: FAILED", "", "```", err, "```", ""]
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> None:
    """Retrieval latency vs N (log-log) and embedding throughput vs batch size."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    secs = results["sections"]
    n_axes = ("retrieval" in secs) + 2 * ("embeddings" in secs)
    if not n_axes:
        return
    fig, axes = plt.subplots(1, n_axes, figsize=(6 * n_axes, 4.5), squeeze=False)
    axes = list(axes[0])
    i = 0
    if "retrieval" in secs:
        r, ax = secs["retrieval"], axes[0]
        from benchmarks.bench_retrieval import SYSTEMS

        for system in SYSTEMS:
            pts = [(int(n), v[system]["p50_ms"]) for n, v in r["by_size"].items() if system in v]
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", label=system)
        ax.set(xscale="log", yscale="log", xlabel="items in the index", ylabel="p50 fused query latency (ms)",
               title="Fused retrieval latency vs index size")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
        i = 1
    if "embeddings" in secs:
        e = secs["embeddings"]
        for kind, ax in zip(("images", "texts"), axes[i : i + 2], strict=True):
            for name, v in e["batched"].items():
                ax.plot(e["batches"], [v[kind][str(b)] for b in e["batches"]], marker="o", label=name)
            for name, v in e["per_item"].items():
                ax.axhline(v[kind], linestyle="--", color="grey" if name == "langchain" else "black",
                           label=f"{name} (per item)")
            ax.set(xscale="log", xlabel="batch size", ylabel=f"{kind}/s", title=f"Embedding throughput: {kind} "
                   f"({e['device']})")
            ax.set_xticks(e["batches"], [str(b) for b in e["batches"]])
            ax.grid(True, alpha=0.3)
            ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--quick", action="store_true", help="small sizes, two rounds (default)")
    mode.add_argument("--full", action="store_true", help="every size up to 200k items (cold start 1M), 3 rounds")
    mode.add_argument("--smoke", action="store_true", help="tiny sizes: checks that every part runs (tests)")
    ap.add_argument("--only", default=",".join(SECTIONS), help=f"comma-separated sections of {SECTIONS}")
    ap.add_argument("--out", help="folder for results.json / results.md / scaling.png")
    ap.add_argument("--retrieval-sizes", help="comma-separated index sizes for the retrieval section (default: the mode's)")
    ap.add_argument("--render", metavar="DIR", help="only rewrite results.md and scaling.png from DIR/results.json")
    ap.add_argument(
        "--rerun", action="store_true",
        help="with --full --only: run those sections again and replace them in the stored full run "
        "(each replaced section records its own date, commit and command; the README says which)",
    )
    args = ap.parse_args(argv)
    if args.render:
        folder = Path(args.render)
        results = json.loads((folder / "results.json").read_text())
        (folder / "results.md").write_text(report(results) + "\n")
        plot(results, folder / "scaling.png")
        return 0
    chosen = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(chosen) - set(SECTIONS)
    if unknown:
        ap.error(f"unknown sections {sorted(unknown)}; choose from {SECTIONS}")
    mode_name = "full" if args.full else "smoke" if args.smoke else "quick"
    if args.smoke:
        from benchmarks import _load

        _load.light()  # checks code paths beside other tests: a load that does not halve the machine
    out = Path(args.out) if args.out else RESULTS / mode_name
    out.mkdir(parents=True, exist_ok=True)

    if args.rerun and (mode_name != "full" or args.out or set(chosen) == set(SECTIONS)):
        ap.error("--rerun replaces some sections of the stored full run: use it with --full and --only, without --out")
    results: dict[str, Any] = {
        "mode": mode_name,
        "command": "python -m benchmarks.run " + " ".join(argv if argv is not None else sys.argv[1:]),
        "started": datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "machine": machine(),
        "commit": commit(),
        "sections": {},
        "errors": {},
    }
    if args.rerun:
        rerun = {k: results[k] for k in ("command", "started", "machine", "commit")}
        results = json.loads((out / "results.json").read_text())
    t0 = time.perf_counter()
    for name in chosen:
        log(f"== {name} ({mode_name})")
        t = time.perf_counter()
        try:
            sizes = [int(x) for x in args.retrieval_sizes.split(",")] if args.retrieval_sizes else None
            results["sections"][name] = run_section(name, mode_name, sizes)
            if args.rerun:
                results["errors"].pop(name, None)
                results.setdefault("reruns", {})[name] = {**rerun, "seconds": round(time.perf_counter() - t)}
        except Exception as exc:  # one failing section must not lose the others
            results["errors"][name] = f"{type(exc).__name__}: {exc}"
            log(f"   {name} FAILED: {exc}")
        log(f"   {name}: {time.perf_counter() - t:.0f} s")
        if not args.rerun:
            results["seconds"] = time.perf_counter() - t0
        (out / "results.json").write_text(json.dumps(results, indent=1))  # after each section: partial runs count
    md = report(results)
    (out / "results.md").write_text(md + "\n")
    plot(results, out / "scaling.png")
    print(md)
    log(f"written: {out / 'results.json'}, {out / 'results.md'}, {out / 'scaling.png'}")
    if mode_name == "full" and not args.out and not results["errors"] and (args.rerun or set(chosen) == set(SECTIONS)):
        from benchmarks import readme

        readme.update()  # the README's performance section comes from this run only
        log("README.md: performance section regenerated")
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    raise SystemExit(main())
