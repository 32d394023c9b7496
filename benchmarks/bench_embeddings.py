"""Embedding throughput: OpenCLIPEmbedder vs the per-item loops LangChain and LlamaIndex ship, and
vs a raw open_clip batched forward pass (the ceiling), on the same model and the same inputs.

    .venv/bin/python -m benchmarks.bench_embeddings [--model ViT-B-32] [--images 64] [--texts 256]
                                                    [--batch-size 32] [--repeats 3]

Contestants (one shared model object, random weights: speed does not depend on them):
* ``ours``: ``OpenCLIPEmbedder.embed_images(paths)`` / ``embed_texts(texts)``, cache off.
* ``langchain``: the real ``langchain_experimental.open_clip.OpenCLIPEmbeddings`` (built with
  ``checkpoint=""`` so it loads offline, then given the shared model); it encodes one item per
  forward pass and keeps autograd on.
* ``llamaindex``: LlamaIndex ``ClipEmbedding``'s loop reproduced line for line in a
  ``MultiModalEmbedding`` subclass (the real class needs OpenAI's ``clip`` package from git, which
  cannot be installed here): one item per forward pass, autograd on for text, called through
  ``get_image_embedding_batch`` / ``get_text_embedding_batch``.
* ``raw``: open_clip batched forward: decode + preprocess a batch, ``encode_*`` under
  ``inference_mode``, normalise. No validation, no EXIF, no RGB conversion, no error handling.

Contestants run interleaved (round robin) in each repeat; the median time counts. Results print as
a markdown table and go to ``benchmarks/results/embeddings.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import open_clip
import torch
from PIL import Image

from mm_rag_plugin import OpenCLIPEmbedder

ROOT = Path(__file__).resolve().parents[1]
PHOTOS = ROOT.parent / "shared" / "data" / "clip_skimage" / "images"
WORDS = ["the", "a", "red", "blue", "green", "photo", "of", "cat", "dog", "chart", "revenue", "figure", "table", "shows", "quarterly", "growth", "in"]


def make_inputs(n_images: int, n_texts: int, folder: Path) -> tuple[list[str], list[str]]:
    """Real photos (shared/data) re-encoded to JPEG files, cycled to *n_images*; varied texts."""
    sources = sorted(PHOTOS.glob("*")) if PHOTOS.is_dir() else []
    rng = random.Random(0)
    paths = []
    for i in range(n_images):
        if sources:
            img = Image.open(sources[i % len(sources)]).convert("RGB")
        else:
            img = Image.effect_noise((640, 480), 60).convert("RGB")
        p = folder / f"img{i:04d}.jpg"
        img.save(p, quality=90)
        paths.append(str(p))
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 40))) for _ in range(n_texts)]
    return paths, texts


class RawBatched:
    def __init__(self, model: Any, preprocess: Any, tokenizer: Any, batch_size: int) -> None:
        self.model, self.preprocess, self.tokenizer, self.bs = model, preprocess, tokenizer, batch_size

    def images(self, paths: list[str]) -> list[list[float]]:
        out = []
        for i in range(0, len(paths), self.bs):
            x = torch.stack([self.preprocess(Image.open(p)) for p in paths[i : i + self.bs]])
            with torch.inference_mode():
                out.append(torch.nn.functional.normalize(self.model.encode_image(x), dim=-1))
        return torch.cat(out).tolist()

    def texts(self, texts: list[str]) -> list[list[float]]:
        out = []
        for i in range(0, len(texts), self.bs):
            with torch.inference_mode():
                feats = self.model.encode_text(self.tokenizer(texts[i : i + self.bs]))
                out.append(torch.nn.functional.normalize(feats, dim=-1))
        return torch.cat(out).tolist()


def llamaindex_clip_loop(model: Any, preprocess: Any, tokenizer: Any, batch_size: int) -> Any:
    """LlamaIndex ClipEmbedding's per-item loop (``clip.tokenize`` -> the open_clip tokenizer)."""
    from llama_index.core.embeddings import MultiModalEmbedding
    from llama_index.core.schema import ImageType

    class ClipEmbeddingLoop(MultiModalEmbedding):
        async def _aget_query_embedding(self, query: str) -> list[float]:
            return self._get_query_embedding(query)

        def _get_text_embedding(self, text: str) -> list[float]:
            return self._get_text_embeddings([text])[0]

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            results = []
            for text in texts:
                text_embedding = model.encode_text(tokenizer(text))
                results.append(text_embedding.tolist()[0])
            return results

        def _get_query_embedding(self, query: str) -> list[float]:
            return self._get_text_embedding(query)

        async def _aget_image_embedding(self, img_file_path: ImageType) -> list[float]:
            return self._get_image_embedding(img_file_path)

        def _get_image_embedding(self, img_file_path: ImageType) -> list[float]:
            with torch.no_grad():
                image = preprocess(Image.open(img_file_path)).unsqueeze(0)
                return model.encode_image(image).tolist()[0]

    return ClipEmbeddingLoop(model_name="ViT-B/32", embed_batch_size=batch_size)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="ViT-B-32")
    ap.add_argument("--images", type=int, default=64)
    ap.add_argument("--texts", type=int, default=256)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--skip", default="", help="comma-separated contestants to leave out")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "embeddings.json"))
    args = ap.parse_args()

    torch.manual_seed(0)
    model, _, preprocess = open_clip.create_model_and_transforms(args.model, pretrained=None)
    model.eval()
    tokenizer = open_clip.get_tokenizer(args.model)
    bs = args.batch_size

    ours = OpenCLIPEmbedder(
        model=model, preprocess=preprocess, tokenizer=tokenizer, device="cpu", batch_size=bs, text_batch_size=bs,
        cache_size=0,
    )
    raw = RawBatched(model, preprocess, tokenizer, bs)
    contestants: dict[str, tuple[Callable[[list[str]], Any], Callable[[list[str]], Any]]] = {
        "ours": (lambda p: ours.embed_images(p), lambda t: ours.embed_texts(t)),
        "raw": (raw.images, raw.texts),
    }
    skip = set(filter(None, args.skip.split(",")))
    if "langchain" not in skip:
        from langchain_experimental.open_clip import OpenCLIPEmbeddings

        lc = OpenCLIPEmbeddings(model_name=args.model, checkpoint="")
        lc.model, lc.preprocess, lc.tokenizer = model, preprocess, tokenizer
        contestants["langchain"] = (lc.embed_image, lc.embed_documents)
    if "llamaindex" not in skip:
        li = llamaindex_clip_loop(model, preprocess, tokenizer, bs)
        contestants["llamaindex"] = (li.get_image_embedding_batch, li.get_text_embedding_batch)

    with tempfile.TemporaryDirectory() as tmp:
        paths, texts = make_inputs(args.images, args.texts, Path(tmp))
        for img_fn, txt_fn in contestants.values():  # warm-up: first-call allocations, lazy imports
            img_fn(paths[:2])
            txt_fn(texts[:2])
        times: dict[str, dict[str, list[float]]] = {name: {"images": [], "texts": []} for name in contestants}
        for _ in range(args.repeats):
            for name, (img_fn, txt_fn) in contestants.items():
                for kind, fn, items in (("images", img_fn, paths), ("texts", txt_fn, texts)):
                    t0 = time.perf_counter()
                    fn(items)
                    times[name][kind].append(time.perf_counter() - t0)

    result: dict[str, Any] = {
        "model": args.model,
        "batch_size": bs,
        "n_images": args.images,
        "n_texts": args.texts,
        "repeats": args.repeats,
        "torch_threads": torch.get_num_threads(),
        "machine": f"{platform.machine()} {platform.processor() or ''} {torch.get_num_threads()} threads".strip(),
        "throughput": {},
    }
    for name, t in times.items():
        result["throughput"][name] = {
            "images_per_s": args.images / statistics.median(t["images"]),
            "texts_per_s": args.texts / statistics.median(t["texts"]),
        }
    tp = result["throughput"]
    lines = [
        f"model {args.model} (random weights), batch {bs}, {args.images} images / {args.texts} texts, "
        f"median of {args.repeats}, {torch.get_num_threads()} torch threads",
        "",
        "| contestant | images/s | texts/s | ours vs it (images) | ours vs it (texts) |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, v in tp.items():
        ri = tp["ours"]["images_per_s"] / v["images_per_s"]
        rt = tp["ours"]["texts_per_s"] / v["texts_per_s"]
        lines.append(f"| {name} | {v['images_per_s']:.1f} | {v['texts_per_s']:.1f} | {ri:.2f}x | {rt:.2f}x |")
    result["ratios"] = {
        name: {
            "images": tp["ours"]["images_per_s"] / v["images_per_s"],
            "texts": tp["ours"]["texts_per_s"] / v["texts_per_s"],
        }
        for name, v in tp.items()
    }
    print("\n".join(lines))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"\nwritten to {out}")


if __name__ == "__main__":
    main()
