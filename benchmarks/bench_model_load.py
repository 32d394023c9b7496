"""Model cold start as users feel it: a fresh process loads a CLIP model from a local checkpoint and
embeds its first query.

Every contestant loads the same open_clip architecture from the same weights file (random weights
written once by this benchmark: load time does not depend on their values), in a fresh Python
process, and embeds one short text query:

* ``ours``: ``OpenCLIPEmbedder(model, checkpoint=FILE)`` then ``embed_query``. The model is built
  without the layers' random fill (every weight then comes from the file; see
  ``mm_rag_plugin/embeddings/_skip_init.py``), in the library's default precision on this machine.
* ``open_clip``: what a user writes with open_clip alone: ``create_model_and_transforms(model,
  pretrained=FILE)``, ``get_tokenizer``, ``encode_text`` under ``torch.no_grad``, normalised.
* ``langchain``: ``langchain_experimental.open_clip.OpenCLIPEmbeddings(model_name=model,
  checkpoint=FILE)`` then ``embed_query`` (it calls ``create_model_and_transforms`` the same way).
* ``ours-cli``: ``mm-rag query --index DIR --checkpoint FILE "..."`` on a small dense index built
  with that model (the ``samples/`` folder): the whole command, interpreter start, model load,
  index open and search included. No peer has a command line; this row has no ratio.

LlamaIndex's ``ClipEmbedding`` loads OpenAI's ``clip`` package models by name from the internet and
takes no open_clip checkpoint, so it cannot run here; it has no row.

Reported per contestant: import time, load time (building the model and reading the weights),
first query, and the whole process wall time, as medians of interleaved rounds (each round runs
every contestant once, in rotating order), quiet and under the background load of ``_load``; and
the process's peak RSS.

    .venv/bin/python -m benchmarks.bench_model_load                      # ViT-B-32, 3 rounds
    .venv/bin/python -m benchmarks.bench_model_load --models ViT-B-32,ViT-L-14 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

from benchmarks._common import (
    RESULTS,
    ROOT,
    finish,
    interleaved,
    peak_rss_bytes,
    run_child,
    run_timed,
    spread,
)
from benchmarks._common import spread_cell as cell
from benchmarks._load import BackgroundLoad

WORK = Path(os.environ.get("MM_RAG_BENCH_WORK", "/tmp/mmrag-bench-model-load"))
CONTESTANTS = ("ours", "open_clip", "langchain", "ours-cli")
QUERY = "a red circle next to a blue square"
TIMES = ("import_s", "load_s", "first_query_ms", "total_s")


# ---------------------------------------------------------------------- child
def child(contestant: str, model: str, checkpoint: str) -> dict[str, Any]:
    """One cold start in this (fresh) process."""
    t0 = time.perf_counter()
    if contestant == "ours":
        from mm_rag_plugin import OpenCLIPEmbedder

        t1 = time.perf_counter()
        emb = OpenCLIPEmbedder(model, checkpoint=checkpoint, device="cpu")
        t2 = time.perf_counter()
        vec = emb.embed_query(QUERY)
    elif contestant == "open_clip":
        import open_clip
        import torch

        t1 = time.perf_counter()
        net, _, _preprocess = open_clip.create_model_and_transforms(model, pretrained=checkpoint)
        net.eval()
        tokenizer = open_clip.get_tokenizer(model)
        t2 = time.perf_counter()
        with torch.no_grad():
            feats = net.encode_text(tokenizer([QUERY]))
            vec = (feats / feats.norm(dim=-1, keepdim=True))[0].tolist()
    elif contestant == "langchain":
        from langchain_experimental.open_clip import OpenCLIPEmbeddings

        t1 = time.perf_counter()
        emb = OpenCLIPEmbeddings(model_name=model, checkpoint=checkpoint)
        t2 = time.perf_counter()
        vec = emb.embed_query(QUERY)
    else:
        raise SystemExit(f"unknown contestant {contestant}")
    t3 = time.perf_counter()
    assert len(vec) > 0
    return {
        "import_s": round(t1 - t0, 3),
        "load_s": round(t2 - t1, 3),
        "first_query_ms": round((t3 - t2) * 1000, 1),
        "in_process_s": round(t3 - t0, 3),
        "peak_rss_bytes": peak_rss_bytes(),
    }


# ---------------------------------------------------------------------- parent
def checkpoint_for(model: str, work: Path, log: Any) -> Path:
    """A weights file for *model* (random weights, written once and reused)."""
    path = work / f"{model}.bin"
    if not path.is_file():
        import open_clip
        import torch

        work.mkdir(parents=True, exist_ok=True)
        net = open_clip.create_model(model)
        tmp = path.with_suffix(".tmp")
        torch.save(net.state_dict(), tmp)
        os.replace(tmp, path)
        log(f"  wrote {path} ({path.stat().st_size / 2**20:.0f} MiB)")
    return path


def dense_index_for(model: str, checkpoint: Path, work: Path, log: Any) -> Path:
    """A small dense index of ``samples/`` built with *model* (keyword text, images, OCR)."""
    folder = work / f"index-{model}"
    if not (folder / "manifest.json").is_file():
        shutil.rmtree(folder, ignore_errors=True)
        cmd = [sys.executable, "-m", "mm_rag_plugin", "ingest", str(ROOT / "samples"), "--index", str(folder),
               "--model", model, "--checkpoint", str(checkpoint), "--quiet"]
        proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=3600)
        if proc.returncode != 0:
            raise RuntimeError(f"building the index failed ({proc.returncode}): {proc.stderr[-2000:]}")
        log(f"  built {folder}")
    return folder


def cli_query(folder: Path, checkpoint: Path) -> dict[str, Any]:
    """``mm-rag query`` on a dense index in a fresh process: wall time and peak RSS."""
    cmd = [sys.executable, "-m", "mm_rag_plugin", "query", "--index", str(folder), "--checkpoint", str(checkpoint),
           "-k", "3", "--json", QUERY]
    res = run_timed(cmd, "mm-rag query")
    return {"total_s": round(res["wall_s"], 3), "peak_rss_bytes": res["peak_rss_bytes"]}


def one(contestant: str, model: str, checkpoint: Path, index: Path | None) -> dict[str, Any]:
    if contestant == "ours-cli":
        assert index is not None
        return cli_query(index, checkpoint)
    t = time.perf_counter()
    res = run_child("benchmarks.bench_model_load", ["--child", contestant, "--models", model, "--checkpoint", str(checkpoint)])
    res["total_s"] = round(time.perf_counter() - t, 3)  # the whole process, interpreter start included
    return res


def run(models: list[str], rounds: int, work: Path, contestants: tuple[str, ...], loaded: bool, log: Any) -> dict[str, Any]:
    res: dict[str, Any] = {
        "query": QUERY,
        "rounds": rounds,
        "contestants": list(contestants),
        "models": {},
        "load": None,
    }
    bg = BackgroundLoad() if loaded else None
    if bg is not None:
        res["load"] = bg.describe()
    try:
        for model in models:
            ckpt = checkpoint_for(model, work, log)
            index = dense_index_for(model, ckpt, work, log) if "ours-cli" in contestants else None
            samples = interleaved(
                contestants, rounds, bg, partial(one, model=model, checkpoint=ckpt, index=index),
                lambda r, mode, c, m, model=model: log(f"  {model} round {r + 1} {mode} {c}: {m['total_s']:.2f} s"),
            )
            res["models"][model] = {
                "checkpoint_mib": round(ckpt.stat().st_size / 2**20, 1),
                "by_contestant": {c: _summary(s) for c, s in samples.items()},
            }
    finally:
        if bg is not None:
            bg.close()
    return res


def _summary(by_mode: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for mode, runs in by_mode.items():
        if not runs:
            continue
        out[mode] = {k: spread([r[k] for r in runs]) for k in (*TIMES, "peak_rss_bytes") if k in runs[0]}
    return out


def markdown(res: dict[str, Any]) -> list[str]:
    lines = [
        "Model cold start: a fresh process loads the model from a local weights file and embeds one "
        f"text query; median (min-max) of {res['rounds']} interleaved rounds; ratio: contestant's "
        "whole-process time / ours'. Ours imports PyTorch and open_clip when it builds the model, so "
        "its load column holds the import the others show apart.",
        "",
    ]
    for model, m in res["models"].items():
        by = m["by_contestant"]
        for mode in ("quiet", "loaded"):
            if not any(mode in v for v in by.values()):
                continue
            ours = by.get("ours", {}).get(mode, {}).get("total_s", {}).get("median")
            lines += [
                f"**{model}** ({m['checkpoint_mib']:.0f} MiB of weights), {mode}",
                "",
                "| contestant | import s | load s | first query ms | whole process s | vs ours | peak RSS MiB |",
                "|---|---:|---:|---:|---:|---:|---:|",
            ]
            for c, v in by.items():
                d = v.get(mode)
                if not d:
                    continue
                total = d["total_s"]["median"]
                ratio = "-" if c in ("ours", "ours-cli") or not ours else f"{total / ours:.2f}x"
                lines.append(
                    f"| {c} | {cell(d.get('import_s'))} | {cell(d.get('load_s'))} | "
                    f"{cell(d.get('first_query_ms'), fmt='{:.0f}')} | {cell(d['total_s'])} | {ratio} | "
                    f"{d['peak_rss_bytes']['median'] / 2**20:.0f} |"
                )
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
    ap.add_argument("--out", default=str(RESULTS / "model_load" / "results.json"))
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--checkpoint", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(child(args.child, args.models, args.checkpoint)))
        return
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    contestants = tuple(c.strip() for c in args.contestants.split(",") if c.strip())
    started = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    res = run([m.strip() for m in args.models.split(",")], args.rounds, Path(args.work), contestants, not args.quiet_only, log)
    finish(res, "benchmarks.bench_model_load", argv, started, args.out, markdown)


if __name__ == "__main__":
    main()
