"""Fine-tuning throughput: training pairs per second of the library's training step.

    .venv/bin/python -m benchmarks.bench_finetune [--steps 3] [--batch 32] [--out DIR]
    .venv/bin/python -m benchmarks.bench_finetune --smoke --out /tmp/x    # the code path, in seconds

Model: a ViT-B-32-sized open_clip model, ``open_clip.create_model_and_transforms("ViT-B-32",
pretrained=None)``: random weights, no download (speed does not depend on the weights).
Step: :class:`mm_rag_plugin.finetune.train.Trainer.step`, what ``finetune()`` runs for every batch:
both towers forward (the text tower with the padding after the longest caption cut), open_clip's
``ClipLoss``, backward, AdamW. Input: a batch of already preprocessed 224 px images (random pixels)
and captions of 8-20 words; image decoding and preprocessing are left out (``finetune()`` does
them once, before training, while the images fit in 1 GiB).

Configurations: what is trained (``last``: the projections, the last block of each tower and the
logit scale, the default; ``all``: every parameter) x precision (fp32; bf16 autocast, only where
the CPU has native bf16, AVX512-BF16 or AMX). Each starts from the same weights and takes one
warm-up step; then the configurations take turns, one timed step each, for ``--steps`` rounds (a
machine shared with others slows them alike), and pairs/s = batch / median step time. With a
CUDA GPU the same runs there too. ``--smoke``: the tiny test model, batch 4, one step each (what the test suite runs).

Writes ``results.json`` and ``results.md`` to ``benchmarks/results/finetune/`` (or ``--out``).
"""

from __future__ import annotations

import argparse
import copy
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import open_clip
import torch

from benchmarks._common import RESULTS, machine, peak_rss_bytes
from mm_rag_plugin import OpenCLIPEmbedder
from mm_rag_plugin.finetune.train import Trainer, native_bf16
from mm_rag_plugin.testing import TINY_CLIP_CONFIG

WORDS = ["the", "a", "red", "blue", "chart", "of", "monthly", "solar", "output", "inverter", "fault", "screen",
         "figure", "shows", "revenue", "growth", "in", "panel", "with", "error", "code", "table", "photo"]
TRAIN_MODES = (("last", "projections + last block (default)"), ("all", "everything"))


def build(smoke: bool) -> tuple[Any, Any, Any, int]:
    if smoke:
        model = open_clip.CLIP(**TINY_CLIP_CONFIG)
        size = TINY_CLIP_CONFIG["vision_cfg"]["image_size"]
        tokenizer = open_clip.get_tokenizer("ViT-B-32", context_length=TINY_CLIP_CONFIG["text_cfg"]["context_length"])
        return model, open_clip.image_transform(size, is_train=False), tokenizer, size
    model, _, preprocess = open_clip.create_model_and_transforms("ViT-B-32", pretrained=None)
    return model, preprocess, open_clip.get_tokenizer("ViT-B-32"), 224


def measure(device: str, smoke: bool, steps: int, batch: int) -> list[dict[str, Any]]:
    """Every configuration trains from the same weights; their timed steps take turns (one step of
    each, round after round), so a machine that gets busier or quieter meanwhile weighs on all of
    them alike. The figure is the median step."""
    torch.manual_seed(0)
    rng = random.Random(0)
    model, preprocess, tokenizer, size = build(smoke)
    pixels = torch.randn(batch, 3, size, size)
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(8, 20))) for _ in range(batch)]
    precisions: list[tuple[str, Any]] = [("fp32", None)]
    if native_bf16(device):
        precisions.append(("bf16", torch.bfloat16))
    configs = []
    for train, label in TRAIN_MODES:
        for precision, autocast in precisions:
            emb = OpenCLIPEmbedder(model=copy.deepcopy(model), preprocess=preprocess, tokenizer=tokenizer, device=device,
                                   cache_size=0)
            trainer = Trainer(emb, train=train, loss="clip", lr=1e-5, total_steps=steps + 1, autocast=autocast)
            trainer.train_mode()
            tokens = emb._tokenize(texts)
            t0 = time.perf_counter()
            trainer.step(pixels, tokens)  # warm-up
            configs.append({"train": train, "what": label, "precision": precision, "trainer": trainer, "tokens": tokens,
                            "warmup": time.perf_counter() - t0, "times": [], "losses": []})
    for _ in range(steps):
        for c in configs:
            t0 = time.perf_counter()
            c["losses"].append(c["trainer"].step(pixels, c["tokens"]))
            if device == "cuda":
                torch.cuda.synchronize()
            c["times"].append(time.perf_counter() - t0)
    rows = []
    for c in configs:
        step = statistics.median(c["times"])
        row = {
            "device": device, "train": c["train"], "what": c["what"], "precision": c["precision"], "batch": batch,
            "steps": steps, "trainable_params": c["trainer"].trainable_params,
            "total_params": sum(p.numel() for p in model.parameters()), "step_seconds": [round(t, 3) for t in c["times"]],
            "warmup_seconds": round(c["warmup"], 3), "s_per_step": round(step, 3), "pairs_per_s": round(batch / step, 2),
            "losses": [round(v, 4) for v in c["losses"]],
        }
        print(json.dumps(row), file=sys.stderr, flush=True)
        rows.append(row)
    return rows


def run(smoke: bool, steps: int, batch: int) -> dict[str, Any]:
    if smoke:
        steps, batch = 1, 4
    res: dict[str, Any] = {
        "command": "python -m benchmarks.bench_finetune " + " ".join(sys.argv[1:]),
        "model": "tiny test config" if smoke else "ViT-B-32",
        "random_weights": True,
        "rows": measure("cpu", smoke, steps, batch),
        "gpu": None,
    }
    if torch.cuda.is_available():
        res["gpu"] = {"device": torch.cuda.get_device_name(0), "rows": measure("cuda", smoke, steps, batch)}
    res["peak_rss_mib"] = round(peak_rss_bytes() / 2**20, 1)
    res["machine"] = machine()
    return res


def markdown(res: dict[str, Any]) -> list[str]:
    m = res["machine"]
    lines = [
        f"# Fine-tuning throughput ({res['model']}, random weights)",
        "",
        f"Command: `{res['command']}`",
        "",
        f"Machine: {m['cpu']}, {m['cpus']} CPUs, {m['memory_gib']} GiB RAM; torch {m.get('torch')} "
        f"({m.get('torch_threads')} threads); GPU: {m.get('gpu') or 'none'}. Peak RSS {res['peak_rss_mib']} MiB "
        "(every configuration's model and optimizer held at once).",
        "",
        "The library's training step (`Trainer.step`: both towers forward, open_clip `ClipLoss`, backward, AdamW) "
        "on a batch of preprocessed 224 px images and 8-20 word captions; one warm-up step each, then the "
        "configurations take turns, one step each per round; s/step is the median.",
        "",
        "| trained | trainable parameters | precision | batch | steps | s/step | pairs/s |",
        "|---|---:|---|---:|---:|---:|---:|",
    ]
    for gpu, rows in ((False, res["rows"]), (True, (res["gpu"] or {}).get("rows", []))):
        for r in rows:
            where = f" ({res['gpu']['device']})" if gpu else ""
            lines.append(
                f"| {r['what']}{where} | {r['trainable_params'] / 1e6:.1f}M of {r['total_params'] / 1e6:.1f}M | "
                f"{r['precision']} | {r['batch']} | {r['steps']} | {r['s_per_step']:.2f} | {r['pairs_per_s']:.1f} |"
            )
    lines.append("")
    if any(r["precision"] == "bf16" for r in res["rows"]):
        lines.append("bf16: autocast (weights and optimizer in fp32), measured because the CPU has native bf16 "
                     "(AVX512-BF16 / AMX); `finetune(precision=\"auto\")` uses it on such CPUs for `train=\"all\"` only.")
        lines.append("")
    if res["gpu"] is None:
        lines.append("No GPU was available on this machine; on one with CUDA the script measures the GPU too.")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=3, help="timed steps per configuration (default: %(default)s)")
    ap.add_argument("--batch", type=int, default=32, help="pairs per step (default: %(default)s)")
    ap.add_argument("--smoke", action="store_true", help="tiny model, batch 4, one step each")
    ap.add_argument("--out", default=str(RESULTS / "finetune"), help="folder for results.json and results.md")
    args = ap.parse_args()
    res = run(args.smoke, args.steps, args.batch)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps(res, indent=1) + "\n")
    md = markdown(res)
    (out / "results.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))


if __name__ == "__main__":
    main()
