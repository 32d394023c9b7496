"""A dense query from a cold process: ``mm-rag query`` on an existing index, as a CLI user pays it.

The index is ``samples/`` ingested with an open_clip architecture whose random weights this
benchmark writes once as a local checkpoint (``bench_model_load.checkpoint_for``: no model hub is
reachable; start-up does not depend on the weights' values). Each contestant runs in a fresh
process; rounds are interleaved (every contestant once per round), quiet and under the background
load of ``_load``; wall time and peak RSS of the whole process:

* ``import torch``: ``python -c "import torch"``, the floor of anything that imports PyTorch.
* ``mm-rag query``: the dense query on the index (its own model; the text tower cached by an earlier
  query, see ``mm_rag_plugin/embeddings/text_tower.py``).
* ``mm-rag query (whole model)``: the same with ``MM_RAG_TEXT_TOWER=0``: what every query paid before.
* ``mm-rag query --keyword-only`` and ``mm-rag --help``.
* ``MultiModalRAG + search``: a fresh Python process opens the index and runs its first search
  (the first query of a long-lived process); ``open s`` and ``first search ms`` split it.
* peers, cold, one text query from the same checkpoint: raw ``open_clip`` and LangChain's
  ``OpenCLIPEmbeddings`` (``bench_model_load``'s children; they open no index).

Also reported: the very first query on the machine (it loads the whole model and writes the tower).

    .venv/bin/python -m benchmarks.bench_query_cold                          # ViT-B-32, 3 rounds
    .venv/bin/python -m benchmarks.bench_query_cold --models ViT-B-32,ViT-L-14 --rounds 3
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks._common import RESULTS, finish, interleaved, peak_rss_bytes, run_child, run_timed, spread
from benchmarks._common import spread_cell as cell
from benchmarks._load import BackgroundLoad
from benchmarks.bench_model_load import checkpoint_for, dense_index_for

WORK = Path(os.environ.get("MM_RAG_BENCH_WORK", "/tmp/mmrag-bench-query-cold"))
QUERY = "fault E-217 grid voltage"
CONTESTANTS = ("import torch", "mm-rag query", "mm-rag query (whole model)", "mm-rag query --keyword-only",
               "mm-rag --help", "MultiModalRAG + search", "open_clip", "langchain")


@contextlib.contextmanager
def _env(**values: str) -> Any:
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def child_rag(index: str) -> dict[str, Any]:
    t0 = time.perf_counter()
    from mm_rag_plugin import MultiModalRAG

    rag = MultiModalRAG(index)
    t1 = time.perf_counter()
    hits = rag.search(QUERY, k=3)
    t2 = time.perf_counter()
    assert hits
    return {"open_s": round(t1 - t0, 3), "first_query_ms": round((t2 - t1) * 1000, 1), "in_process_s": round(t2 - t0, 3),
            "peak_rss_bytes": peak_rss_bytes(), "embedder": type(rag.embedder).__name__, "torch": "torch" in sys.modules}


def one(contestant: str, model: str, ckpt: Path, index: Path) -> dict[str, Any]:
    py, cli = sys.executable, [sys.executable, "-m", "mm_rag_plugin"]
    query = [*cli, "query", "--index", str(index), "-k", "3", "--json", QUERY]
    if contestant in ("open_clip", "langchain", "MultiModalRAG + search"):
        t = time.perf_counter()
        if contestant == "MultiModalRAG + search":
            res = run_child("benchmarks.bench_query_cold", ["--child-rag", str(index)])
        else:
            res = run_child("benchmarks.bench_model_load", ["--child", contestant, "--models", model, "--checkpoint", str(ckpt)])
        return {**res, "wall_s": round(time.perf_counter() - t, 3)}
    cmd = {
        "import torch": [py, "-c", "import torch"],
        "mm-rag query": query,
        "mm-rag query (whole model)": query,
        "mm-rag query --keyword-only": [*query[:-1], "--keyword-only", QUERY],
        "mm-rag --help": [*cli, "--help"],
    }[contestant]
    with _env(MM_RAG_TEXT_TOWER="0" if contestant.endswith("(whole model)") else "1"):
        res = run_timed(cmd, contestant)
    if contestant.startswith("mm-rag query"):
        assert json.loads(res["out"]), contestant
    return {"wall_s": round(res["wall_s"], 3), "peak_rss_bytes": res["peak_rss_bytes"]}


def run(models: list[str], rounds: int, work: Path, contestants: tuple[str, ...], loaded: bool, log: Any) -> dict[str, Any]:
    res: dict[str, Any] = {"query": QUERY, "rounds": rounds, "contestants": list(contestants), "models": {}, "load": None}
    os.environ["XDG_CACHE_HOME"] = str(work / "cache")  # the tower cache and weights hashes of this run
    bg = BackgroundLoad() if loaded else None
    if bg is not None:
        res["load"] = bg.describe()
    try:
        for model in models:
            ckpt = checkpoint_for(model, work, log)
            index = dense_index_for(model, ckpt, work, log)
            shutil.rmtree(work / "cache" / "mm-rag-plugin" / "text-towers", ignore_errors=True)
            first = one("mm-rag query", model, ckpt, index)  # loads the whole model and writes the tower
            log(f"  {model} first query ever (writes the text tower): {first['wall_s']:.2f} s")
            samples = interleaved(
                contestants, rounds, bg, partial(one, model=model, ckpt=ckpt, index=index),
                lambda r, mode, c, m, model=model: log(f"  {model} round {r + 1} {mode} {c}: {m['wall_s']:.2f} s, {m['peak_rss_bytes'] / 2**20:.0f} MiB"),
            )
            res["models"][model] = {
                "checkpoint_mib": round(ckpt.stat().st_size / 2**20, 1),
                "first_query_ever": first,
                "by_contestant": {
                    c: {mode: {k: spread([x[k] for x in xs]) for k in ("wall_s", "peak_rss_bytes", "open_s", "first_query_ms") if k in xs[0]}
                        for mode, xs in s.items() if xs}
                    for c, s in samples.items()
                },
                "embedder": samples.get("MultiModalRAG + search", {}).get("quiet", [{}])[0].get("embedder"),
            }
    finally:
        if bg is not None:
            bg.close()
    return res


def markdown(res: dict[str, Any]) -> list[str]:
    lines = [
        f"Dense query from a cold process: fresh process per sample, median (min-max) of {res['rounds']} interleaved "
        "rounds; wall time of the whole process (interpreter start included) and its peak RSS.",
        "",
    ]
    for model, m in res["models"].items():
        lines += [
            f"**{model}** ({m['checkpoint_mib']:.0f} MiB of weights; the first query ever on the machine, which loads "
            f"the whole model and writes the text tower: {m['first_query_ever']['wall_s']:.2f} s)",
            "",
            "| contestant | quiet s | quiet peak RSS MiB | loaded s | loaded peak RSS MiB |",
            "|---|---:|---:|---:|---:|",
        ]
        for c, by in m["by_contestant"].items():
            cells = []
            for mode in ("quiet", "loaded"):
                d = by.get(mode)
                cells += [cell(d["wall_s"]), cell(d["peak_rss_bytes"], 1 / 2**20, "{:.0f}")] if d else ["-", "-"]
            name = c
            if "open_s" in by.get("quiet", {}):
                q = by["quiet"]
                name += f" (open {q['open_s']['median']:.2f} s, first search {q['first_query_ms']['median']:.0f} ms)"
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
        lines.append("")
    if res.get("load"):
        lines.append(f"Loaded: {res['load']}.")
    return lines


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="ViT-B-32")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--work", default=str(WORK))
    ap.add_argument("--contestants", default=",".join(CONTESTANTS))
    ap.add_argument("--quiet-only", action="store_true", help="no loaded rounds")
    ap.add_argument("--out", default=str(RESULTS / "query_cold" / "results.json"))
    ap.add_argument("--child-rag", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child_rag:
        print(json.dumps(child_rag(args.child_rag)))
        return
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    contestants = tuple(c.strip() for c in args.contestants.split(",") if c.strip())
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    res = run([m.strip() for m in args.models.split(",")], args.rounds, Path(args.work), contestants, not args.quiet_only, log)
    finish(res, "benchmarks.bench_query_cold", argv, started, args.out, markdown)


if __name__ == "__main__":
    main()
