"""Should the CPU embedder run on ONNX Runtime? Forward passes of open_clip towers on the CPU:
PyTorch fp32, PyTorch bf16 (every weight in bfloat16, the library's default on CPUs that compute
it natively), and ONNX Runtime fp32 on the same model exported with ``torch.onnx.export``.

The rule (from the ingest-speed issue): adopt ONNX Runtime behind the same embedder if it is at
least 1.3x faster than what the library runs by default, with cosine >= 0.999 against fp32.

    pip install onnxruntime onnx onnxscript     # not dependencies of the library
    .venv/bin/python -m benchmarks.bench_onnx [--model ViT-B-32] [--batch 32] [--rounds 5]

Inputs: preprocessed 224 px image batches (random pixels: speed does not depend on them) and
tokenised texts of realistic length (full 77-token context, as 1,000-character chunks have). The
contestants take turns, one forward pass each per round; the figure is the median per item.
Writes ``benchmarks/results/ingest_speed/onnx.{json,md}``.
"""

from __future__ import annotations

import argparse
import copy
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from benchmarks._common import RESULTS, save

OUT = RESULTS / "ingest_speed"


class _Text(torch.nn.Module):
    def __init__(self, model: Any) -> None:
        super().__init__()
        self.model = model

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.model.encode_text(tokens)


def _export(module: torch.nn.Module, example: torch.Tensor, path: Path) -> None:
    torch.onnx.export(
        module, (example,), str(path), input_names=["x"], output_names=["y"],
        dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, opset_version=18, dynamo=False,
    )


def _session(path: Path) -> Any:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    opts.intra_op_num_threads = torch.get_num_threads()
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def _unit(a: np.ndarray) -> np.ndarray:
    return a / np.linalg.norm(a, axis=1, keepdims=True)


def run(model_name: str = "ViT-B-32", batch: int = 32, rounds: int = 5) -> dict[str, Any]:
    import open_clip

    torch.manual_seed(0)
    fp32, _, _ = open_clip.create_model_and_transforms(model_name, pretrained=None)
    fp32.eval()
    bf16 = copy.deepcopy(fp32).to(torch.bfloat16).eval()
    tokenizer = open_clip.get_tokenizer(model_name)
    size = fp32.visual.image_size
    size = size[0] if isinstance(size, tuple) else size
    pixels = torch.randn(batch, 3, size, size)
    words = ["the", "quarterly", "revenue", "figure", "shows", "growth", "in", "the", "table", "of", "the", "report"]
    texts = [" ".join(words[(i + j) % len(words)] for j in range(90)) for i in range(batch)]
    tokens = tokenizer(texts)

    with tempfile.TemporaryDirectory() as tmp:
        vis_path, txt_path = Path(tmp) / "visual.onnx", Path(tmp) / "text.onnx"
        t = time.perf_counter()
        _export(fp32.visual, pixels[:2], vis_path)
        _export(_Text(fp32), tokens[:2], txt_path)
        export_s = time.perf_counter() - t
        vis_sess, txt_sess = _session(vis_path), _session(txt_path)

        def torch_images(model: Any, dtype: torch.dtype) -> np.ndarray:
            with torch.inference_mode():
                return model.encode_image(pixels.to(dtype)).float().numpy()

        def torch_texts(model: Any) -> np.ndarray:
            with torch.inference_mode():
                return model.encode_text(tokens).float().numpy()

        contestants = {
            "images": {
                "torch fp32": lambda: torch_images(fp32, torch.float32),
                "torch bf16 (library default here)": lambda: torch_images(bf16, torch.bfloat16),
                "onnxruntime fp32": lambda: vis_sess.run(None, {"x": pixels.numpy()})[0],
            },
            "texts": {
                "torch fp32": lambda: torch_texts(fp32),
                "torch bf16 (library default here)": lambda: torch_texts(bf16),
                "onnxruntime fp32": lambda: txt_sess.run(None, {"x": tokens.numpy()})[0],
            },
        }
        result: dict[str, Any] = {"model": f"{model_name} (random weights)", "batch": batch, "rounds": rounds,
                                  "export_s": round(export_s, 1), "towers": {}}
        for tower, fns in contestants.items():
            ref = _unit(next(iter(fns.values()))())
            times: dict[str, list[float]] = {name: [] for name in fns}
            cosine: dict[str, float] = {}
            for name, fn in fns.items():  # warm-up, and the agreement with fp32
                cosine[name] = round(float((_unit(np.asarray(fn(), np.float32)) * ref).sum(axis=1).min()), 6)
            for _ in range(rounds):
                for name, fn in fns.items():
                    t = time.perf_counter()
                    fn()
                    times[name].append(time.perf_counter() - t)
            result["towers"][tower] = {
                name: {"items_per_s": round(batch / statistics.median(ts), 2), "min_cosine_vs_fp32": cosine[name]}
                for name, ts in times.items()
            }
    return result


def markdown(result: dict[str, Any]) -> list[str]:
    m = result.get("machine") or {}
    lines = [
        "# ONNX Runtime vs PyTorch on the CPU",
        "",
        f"`python -m benchmarks.bench_onnx --batch {result['batch']} --rounds {result['rounds']}`, {result['model']}, "
        f"forward passes only (batch {result['batch']}), median of {result['rounds']} interleaved rounds. "
        f"Export took {result['export_s']} s.",
        "",
        f"Machine: {m.get('cpu')}, {m.get('cpus')} CPUs, torch {m.get('torch')} ({m.get('torch_threads')} threads), "
        f"onnxruntime {result.get('onnxruntime')}.",
        "",
    ]
    for tower, rows in result["towers"].items():
        default = rows["torch bf16 (library default here)"]["items_per_s"]
        lines += [f"## {tower}", "", "| runtime | items/s | vs library default | min cosine vs fp32 |", "|---|---:|---:|---:|"]
        for name, row in rows.items():
            lines.append(f"| {name} | {row['items_per_s']} | {row['items_per_s'] / default:.2f}x | {row['min_cosine_vs_fp32']} |")
        lines.append("")
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="ViT-B-32")
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    import onnxruntime

    result = run(args.model, args.batch, args.rounds)
    result["onnxruntime"] = onnxruntime.__version__
    save(result, OUT / "onnx.json", markdown)
    (OUT / "onnx.md").write_text("\n".join(markdown(result)) + "\n")


if __name__ == "__main__":
    main()
