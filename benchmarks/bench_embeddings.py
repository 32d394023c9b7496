"""Embedding throughput: OpenCLIPEmbedder vs the per-item loops LangChain and LlamaIndex ship, and
vs a raw open_clip batched forward pass (the ceiling), on the same model and the same inputs,
for batch sizes 1..256.

    .venv/bin/python -m benchmarks.bench_embeddings [--quick] [--model ViT-B-32]
    (or as part of the suite: .venv/bin/python -m benchmarks.run --only embeddings)

Contestants (one shared model object, random weights: speed does not depend on them):
* ``ours``: ``OpenCLIPEmbedder.embed_images(paths)`` / ``embed_texts(texts)`` with the library's
  default numerics, cache off, at each batch size of the sweep. The default is ``precision="auto"``:
  every weight in bfloat16 on a CPU that computes it natively (AVX512-BF16/AMX), else fp32.
* ``ours-fp32``: the same in fp32 (reported where the default is bf16); the cosine of the default's
  vectors against fp32 is reported next to the speed.
* ``raw``: open_clip batched forward at each batch size: decode + preprocess a batch,
  ``encode_*`` under ``inference_mode``, normalise. No validation, no EXIF, no RGB conversion, no
  error handling. ``raw-bf16`` (where the CPU has native bf16): the same on the model cast to
  bfloat16, the fastest a user can run open_clip on this CPU (fp32 weights under ``torch.autocast``
  were far slower in a trial run on the CPU: 2.4 images/s at batch 4). The best raw row is the ceiling.
* ``langchain``: the real ``langchain_experimental.open_clip.OpenCLIPEmbeddings`` (built with
  ``checkpoint=""`` so it loads offline, then given the shared model); it encodes one item per
  forward pass (so the batch size does not change its speed) and keeps autograd on.
* ``llamaindex``: LlamaIndex ``ClipEmbedding``'s loop reproduced line for line in a
  ``MultiModalEmbedding`` subclass (the real class needs OpenAI's ``clip`` package from git, which
  cannot be installed here): one item per forward pass, called through
  ``get_image_embedding_batch`` / ``get_text_embedding_batch``.

Each figure is the median of the repeats of one contestant at one batch size; a batch size of
the sweep embeds max(batch size, 64) images and max(batch size, 256) texts (``--quick``: fewer). On a machine
with a GPU (``torch.cuda.is_available()``) a second sweep runs there for ``ours`` (fp32, fp16,
bf16) and ``raw`` (fp32, fp16 autocast).
"""

from __future__ import annotations

import argparse
import copy
import random
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import open_clip
import torch
from PIL import Image

from benchmarks._common import RESULTS, SHARED, median_time, save
from mm_rag_plugin import OpenCLIPEmbedder
from mm_rag_plugin.embeddings.open_clip import resolve_precision

PHOTOS = SHARED / "clip_skimage" / "images"
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
    """The ceiling: open_clip's batched forward with nothing around it."""

    def __init__(self, model: Any, preprocess: Any, tokenizer: Any, device: str = "cpu", autocast: Any = None) -> None:
        self.model, self.preprocess, self.tokenizer = model, preprocess, tokenizer
        self.device, self.autocast = device, autocast
        self.dtype = next(model.visual.parameters()).dtype  # pixels in the weights' dtype (bf16 model)

    def _run(self, fn: Callable[[], torch.Tensor]) -> torch.Tensor:
        with torch.inference_mode(), torch.autocast(self.device, dtype=self.autocast, enabled=self.autocast is not None):
            return torch.nn.functional.normalize(fn().float(), dim=-1).cpu()

    def images(self, paths: list[str], bs: int) -> np.ndarray:
        out = []
        for i in range(0, len(paths), bs):
            x = torch.stack([self.preprocess(Image.open(p)) for p in paths[i : i + bs]]).to(self.device, self.dtype)
            out.append(self._run(lambda x=x: self.model.encode_image(x)))
        return torch.cat(out).numpy()

    def texts(self, texts: list[str], bs: int) -> np.ndarray:
        out = []
        for i in range(0, len(texts), bs):
            tokens = self.tokenizer(texts[i : i + bs]).to(self.device)
            out.append(self._run(lambda t=tokens: self.model.encode_text(t)))
        return torch.cat(out).numpy()


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


BATCHES_FULL = (1, 2, 4, 8, 16, 32, 64, 128, 256)
BATCHES_QUICK = (1, 8, 32)


def _sweep(
    contestants: dict[str, tuple[Callable[[list[str], int], Any], Callable[[list[str], int], Any]]],
    per_item: dict[str, tuple[Callable[[list[str]], Any], Callable[[list[str]], Any]]],
    batches: tuple[int, ...],
    paths: list[str],
    texts: list[str],
    n_images: int,
    n_texts: int,
    repeats: int,
) -> dict[str, Any]:
    """items/s per contestant and batch size; per-item contestants once (batch size is moot)."""
    sweep: dict[str, dict[str, dict[str, float]]] = {n: {"images": {}, "texts": {}} for n in contestants}
    for img_fn, txt_fn in contestants.values():  # warm-up: first-call allocations, lazy imports
        img_fn(paths[:2], 2)
        txt_fn(texts[:2], 2)
    for img_fn, txt_fn in per_item.values():
        img_fn(paths[:2])
        txt_fn(texts[:2])
    for bs in batches:
        imgs = paths[: max(n_images, bs)]
        txts = texts[: max(n_texts, bs)]
        for name, (img_fn, txt_fn) in contestants.items():
            t_img = median_time(lambda f=img_fn, b=bs, x=imgs: f(x, b), repeats)
            t_txt = median_time(lambda f=txt_fn, b=bs, x=txts: f(x, b), repeats)
            sweep[name]["images"][str(bs)] = round(len(imgs) / t_img, 2)
            sweep[name]["texts"][str(bs)] = round(len(txts) / t_txt, 2)
    items: dict[str, dict[str, float]] = {}
    for name, (img_fn, txt_fn) in per_item.items():
        imgs, txts = paths[:n_images], texts[:n_texts]
        items[name] = {
            "images": round(len(imgs) / median_time(lambda f=img_fn, x=imgs: f(x), repeats), 2),
            "texts": round(len(txts) / median_time(lambda f=txt_fn, x=txts: f(x), repeats), 2),
        }
    return {"batched": sweep, "per_item": items}


def _agreement(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    cos = np.sum(a * b, axis=1)
    return {"mean_cosine": round(float(cos.mean()), 5), "min_cosine": round(float(cos.min()), 5)}


def run(quick: bool = False, model_name: str = "ViT-B-32", repeats: int | None = None, peers: bool = True,
        gpu: bool = True, batches: tuple[int, ...] | None = None, n_items: tuple[int, int] | None = None,
        ) -> dict[str, Any]:
    """The embedding section of the suite (see the module docstring)."""
    batches = batches or (BATCHES_QUICK if quick else BATCHES_FULL)
    n_images, n_texts = n_items or ((32, 64) if quick else (64, 256))
    repeats = repeats or (1 if quick else 3)
    torch.manual_seed(0)
    model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=None)
    model.eval()
    tokenizer = open_clip.get_tokenizer(model_name)

    def ours_fns(emb: OpenCLIPEmbedder):
        return (lambda p, b: emb.embed_images(p, batch_size=b), lambda t, b: emb.embed_texts(t, batch_size=b))

    fp32 = OpenCLIPEmbedder(model=model, preprocess=preprocess, tokenizer=tokenizer, device="cpu", cache_size=0)
    raw = RawBatched(model, preprocess, tokenizer)
    default = resolve_precision("auto", "cpu")
    contestants = {}
    if default == "bf16":
        low = copy.deepcopy(model).to(torch.bfloat16)
        ours = OpenCLIPEmbedder(model=low, preprocess=preprocess, tokenizer=tokenizer, device="cpu", cache_size=0)
        contestants = {"ours": ours_fns(ours), "ours-fp32": ours_fns(fp32), "raw": (raw.images, raw.texts)}
        raw_low = RawBatched(low, preprocess, tokenizer)
        contestants["raw-bf16"] = (raw_low.images, raw_low.texts)
    else:
        ours = fp32
        contestants = {"ours": ours_fns(ours), "raw": (raw.images, raw.texts)}
    per_item: dict[str, Any] = {}
    if peers:
        from langchain_experimental.open_clip import OpenCLIPEmbeddings

        lc = OpenCLIPEmbeddings(model_name=model_name, checkpoint="")
        lc.model, lc.preprocess, lc.tokenizer = model, preprocess, tokenizer
        per_item["langchain"] = (lc.embed_image, lc.embed_documents)
        li = llamaindex_clip_loop(model, preprocess, tokenizer, 32)
        per_item["llamaindex"] = (li.get_image_embedding_batch, li.get_text_embedding_batch)

    with tempfile.TemporaryDirectory() as tmp:
        paths, texts = make_inputs(max(n_images, max(batches)), max(n_texts, max(batches)), Path(tmp))
        result: dict[str, Any] = {
            "model": f"{model_name} (random weights)", "device": "cpu", "batches": list(batches),
            "n_images": n_images, "n_texts": n_texts, "repeats": repeats,
            **_sweep(contestants, per_item, batches, paths, texts, n_images, n_texts, repeats),
        }
        result["default_precision"] = default
        if default != "fp32":
            result["bf16_agreement"] = {
                "images": _agreement(fp32.embed_images(paths[:32]), ours.embed_images(paths[:32])),
                "texts": _agreement(fp32.embed_texts(texts[:64]), ours.embed_texts(texts[:64])),
            }
        if gpu and torch.cuda.is_available():
            result["gpu"] = _gpu(model_name, paths, texts, batches, max(n_images, 256), max(n_texts, 256), repeats)
    return result


def _gpu(model_name: str, paths: list[str], texts: list[str], batches: tuple[int, ...], n_images: int,
         n_texts: int, repeats: int, device: str = "cuda") -> dict[str, Any]:
    """Same sweep on an accelerator: ours in fp32/fp16/bf16, raw in fp32 and fp16 autocast.

    ``device="cpu"`` runs the same code with fp32/bf16 only (the test suite's check of this path
    on machines without a GPU)."""
    torch.manual_seed(0)
    model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=None, device=device)
    model.eval()
    tokenizer = open_clip.get_tokenizer(model_name)
    half = torch.float16 if device == "cuda" else torch.bfloat16
    precisions = {"fp32": torch.float32, "bf16": torch.bfloat16, **({"fp16": torch.float16} if device == "cuda" else {})}
    contestants: dict[str, Any] = {}
    for prec, dtype in precisions.items():
        m = model if dtype == torch.float32 else copy.deepcopy(model).to(dtype)
        emb = OpenCLIPEmbedder(model=m, preprocess=preprocess, tokenizer=tokenizer, device=device, cache_size=0)
        contestants[f"ours-{prec}"] = (
            lambda p, b, e=emb: e.embed_images(p, batch_size=b), lambda t, b, e=emb: e.embed_texts(t, batch_size=b)
        )
    for name, autocast in (("raw-fp32", None), (f"raw-{'fp16' if device == 'cuda' else 'bf16'}", half)):
        r = RawBatched(model, preprocess, tokenizer, device=device, autocast=autocast)
        contestants[name] = (r.images, r.texts)
    out = _sweep(contestants, {}, batches, paths, texts, n_images, n_texts, repeats)
    out["device"] = torch.cuda.get_device_name(0) if device == "cuda" else device
    return out


def markdown(res: dict[str, Any]) -> list[str]:
    """Table: items/s per batch size, and ours vs each peer at every batch size."""
    sweep, items = res["batched"], res["per_item"]
    lines = [f"Model {res['model']}, {res['device']}, median of {res['repeats']}; items/s. "
             f"ours: the library's default numerics here ({res.get('default_precision', 'fp32')}).", ""]
    for kind in ("images", "texts"):
        head = "| contestant | " + " | ".join(f"bs {b}" for b in res["batches"]) + " |"
        lines += [f"**{kind}/s**", "", head, "|---|" + "---:|" * len(res["batches"])]
        for name, v in sweep.items():
            lines.append(f"| {name} | " + " | ".join(f"{v[kind][str(b)]:.1f}" for b in res["batches"]) + " |")
        for name, v in items.items():
            lines.append(f"| {name} (per item) | " + " | ".join(f"{v[kind]:.1f}" for _ in res["batches"]) + " |")
        for name, v in items.items():
            lines.append(f"| *ours / {name}* | " + " | ".join(
                f"{sweep['ours'][kind][str(b)] / v[kind]:.2f}x" for b in res["batches"]) + " |")
        raws = [n for n in sweep if n.startswith("raw")]
        lines.append("| *ours / best raw* | " + " | ".join(
            f"{sweep['ours'][kind][str(b)] / max(sweep[r][kind][str(b)] for r in raws):.2f}x" for b in res["batches"]) + " |")
        lines.append("")
    if "bf16_agreement" in res:
        a = res["bf16_agreement"]
        lines.append(f"bf16 vs fp32 embeddings, cosine: images mean {a['images']['mean_cosine']} "
                     f"(min {a['images']['min_cosine']}), texts mean {a['texts']['mean_cosine']} "
                     f"(min {a['texts']['min_cosine']}).")
    if "gpu" in res:
        g = res["gpu"]
        lines += ["", f"**GPU ({g['device']})**, images/s", "",
                  "| contestant | " + " | ".join(f"bs {b}" for b in res["batches"]) + " |",
                  "|---|" + "---:|" * len(res["batches"])]
        for name, v in g["batched"].items():
            lines.append(f"| {name} | " + " | ".join(f"{v['images'][str(b)]:.1f}" for b in res["batches"]) + " |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--model", default="ViT-B-32")
    ap.add_argument("--repeats", type=int)
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument("--batches", help="comma-separated batch sizes (default: 1..256, --quick: 1,8,32)")
    ap.add_argument("--out", default=str(RESULTS / "embeddings.json"))
    args = ap.parse_args()
    batches = tuple(int(b) for b in args.batches.split(",")) if args.batches else None
    res = run(args.quick, args.model, args.repeats, peers=not args.no_peers, batches=batches)
    save(res, args.out, markdown)


if __name__ == "__main__":
    main()
