"""Embedding throughput: OpenCLIPEmbedder vs the per-item loops LangChain and LlamaIndex ship, and
vs raw open_clip batched forward passes (with and without cutting the padding), on the same model
and the same inputs, for batch sizes 1..256, quiet and under a fixed background load.

    .venv/bin/python -m benchmarks.bench_embeddings [--quick] [--model ViT-B-32] [--rounds 5]
    (or as part of the suite: .venv/bin/python -m benchmarks.run --only embeddings)
    --threads N: torch's intra-op threads for every contestant (default: torch's default);
    --no-load: quiet rounds only.

Inputs (the same for every contestant):
* images: the shared photos (``shared/data/clip_skimage``) re-encoded to JPEG files, cycled.
* two text sets, reported apart:
  ``texts``: short queries (3-40 words drawn from a small vocabulary, seed 0);
  ``chunks``: the ``TextChunk`` texts our own reader and chunker make of the shared PDFs
  (``shared/data/pdfs/text_figures``, the ingestion benchmark's files; ``load_documents`` with the
  default chunking, text layer only: no OCR, no images), shuffled with seed 0 and cycled. The
  report gives each set's median length in tokens (start and end markers included, counted with
  the model's tokenizer before truncation) and the fraction truncated at the context length.
  Most chunks fill the context: there, cutting the padding saves nothing, and the text rows show
  what is left of a text-embedding gain once there is no padding to cut.

Contestants (one shared model object, random weights: speed does not depend on them):
* ``ours``: ``OpenCLIPEmbedder.embed_images(paths)`` / ``embed_texts(texts)`` with the library's
  default numerics, cache off, at each batch size of the sweep. The default is ``precision="auto"``:
  every weight in bfloat16 on a CPU that computes it natively (AVX512-BF16/AMX), else fp32.
* ``ours-fp32``: the same in fp32 (reported where the default is bf16); the cosine of the default's
  vectors against fp32 is reported next to the speed.
* ``raw``: what open_clip's ``encode_image`` / ``encode_text`` do, batched: decode + preprocess or
  tokenize a batch (every text padded to the context length), ``encode_*`` under
  ``inference_mode``, normalise. No validation, no EXIF, no RGB conversion, no error handling.
  ``raw-bf16`` (where the CPU has native bf16): the same on the model cast to bfloat16 (fp32
  weights under ``torch.autocast`` were far slower in a trial run on the CPU).
* ``raw-trim`` (texts only; images have no padding): the best a user can write with open_clip's
  public modules, written here and not taken from the library: tokenize all texts once, sort them
  by length, and per batch run ``token_embedding`` + ``positional_embedding[:n]``, ``transformer``
  with ``attn_mask[:n, :n]`` and ``ln_final`` on the first n positions only (n: the batch's longest
  text), pool at the end-of-text token (``argmax`` of the token ids, as ``encode_text`` does), then
  ``text_projection``; rows go back to input order. ``raw-trim-bf16``: the same on the bf16 model.
  Each run first checks that raw-trim's vectors equal raw's (same numerics, the first 32 texts of
  each set, cosine > 0.999 for every text) and stops otherwise; the lowest cosine is reported.
  The best raw row per column (over ``raw*``) is the ceiling ours is compared with.
* ``langchain``: the real ``langchain_experimental.open_clip.OpenCLIPEmbeddings`` (built with
  ``checkpoint=""`` so it loads offline, then given the shared model); it encodes one item per
  forward pass (so the batch size does not change its speed) and keeps autograd on.
* ``llamaindex``: LlamaIndex ``ClipEmbedding``'s loop reproduced line for line in a
  ``MultiModalEmbedding`` subclass (the real class needs OpenAI's ``clip`` package from git, which
  cannot be installed here): one item per forward pass, called through
  ``get_image_embedding_batch`` / ``get_text_embedding_batch``.

Rounds: after one warm-up call per contestant, each round runs every batched contestant once at
one batch size (images, short texts, chunks), then every contestant at the next batch size, then
each per-item contestant once; the contestants' order rotates from round to round. Each figure is
the median over the rounds, with the spread (lowest and highest round). A batch size embeds
max(batch size, 64) images and max(batch size, 256) texts of each set (``--quick``: fewer).
Ratios are of the medians, with the spread of the same ratio taken round by round (the contestants
of a round ran back to back).

Quiet and loaded: each round is run twice, first quiet (nothing started by the benchmark beside
the contestant), then under a fixed background load (``benchmarks/_load.py``: one busy-loop Python
process per CPU, resumed for the loaded half of each round and stopped after), so both halves see
the same drift of the machine. Under load only batch size 1 and the sweep's largest batch size up
to 32 are measured, on at most ``LOADED_ITEMS`` items per figure (a whole batch at least).

On a machine with a GPU (``torch.cuda.is_available()``) a second sweep (quiet, same rounds) runs
there for ``ours`` (fp32, fp16, bf16), ``raw`` (fp32, fp16 autocast) and ``raw-trim`` (the same two).

JSON: ``quiet`` / ``loaded`` hold every figure as ``{"median", "min", "max", "rounds"}`` under
``batched[name][kind][batch size]`` and ``per_item[name][kind]`` (kinds ``images``, ``texts``,
``chunks``); the top-level ``batched`` / ``per_item`` keep the quiet medians as plain numbers, for
the contestants that embed both images and texts (raw-trim is only under ``quiet`` / ``loaded``).
"""

from __future__ import annotations

import argparse
import copy
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import open_clip
import torch
from PIL import Image

from benchmarks._common import RESULTS, SHARED, save, spread
from benchmarks._load import BackgroundLoad
from mm_rag_plugin import OpenCLIPEmbedder
from mm_rag_plugin.embeddings.open_clip import resolve_precision
from mm_rag_plugin.embeddings.windows import token_counter

PHOTOS = SHARED / "clip_skimage" / "images"
PDFS = SHARED / "pdfs" / "text_figures"  # the ingestion benchmark's PDFs
WORDS = [
    "the",
    "a",
    "red",
    "blue",
    "green",
    "photo",
    "of",
    "cat",
    "dog",
    "chart",
    "revenue",
    "figure",
    "table",
    "shows",
    "quarterly",
    "growth",
    "in",
]
KINDS = ("images", "texts", "chunks")
TEXT_KINDS = ("texts", "chunks")
SHORT_LABEL = "short queries (3-40 words)"
AGREEMENT_MIN = 0.999  # raw-trim must give raw's vectors (cosine per text)


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


def make_chunks(n: int) -> tuple[list[str], dict[str, Any]]:
    """Our chunker's text chunks of the shared PDFs (text layer only), shuffled (seed 0), cycled to *n*."""
    from mm_rag_plugin.readers import load_documents

    files = sorted(PDFS.glob("*.pdf"))
    if not files:
        raise FileNotFoundError(f"no PDFs in {PDFS} (the shared data)")
    read = load_documents(files, workers=0, ocr=False, extract_images=False)
    texts = [c.text for c in read.texts if c.text.strip()]
    if not texts:
        raise RuntimeError(f"the readers found no text in {PDFS}")
    random.Random(0).shuffle(texts)
    info = {
        "pdfs": len(files),
        "chunks_read": len(texts),
        "read_errors": len(read.errors),
        "folder": f"shared/data/{PDFS.relative_to(SHARED)}",
    }
    return [texts[i % len(texts)] for i in range(n)], info


def token_stats(tokenizer: Any, texts: list[str], context_length: int) -> dict[str, Any]:
    """Median length in tokens (start and end markers included, before truncation) and the
    fraction of *texts* longer than *context_length*."""
    count = token_counter(tokenizer)  # the count ingest reports (markers included, before truncation)
    if count is not None:
        counts = [count(t) for t in texts]
    else:  # a tokenizer without encode: lengths capped at the context (truncation not seen)
        counts = (tokenizer(texts).argmax(dim=-1) + 1).tolist()
    return {
        "texts": len(texts),
        "median_tokens": float(statistics.median(counts)),
        "max_tokens": max(counts),
        "truncated_fraction": round(sum(c > context_length for c in counts) / len(counts), 4),
        "context_length": context_length,
    }


class RawBatched:
    """open_clip's batched forward with nothing around it: what ``encode_image`` / ``encode_text`` do."""

    def __init__(
        self, model: Any, preprocess: Any, tokenizer: Any, device: str = "cpu", autocast: Any = None
    ) -> None:
        self.model, self.preprocess, self.tokenizer = model, preprocess, tokenizer
        self.device, self.autocast = device, autocast
        self.dtype = next(model.visual.parameters()).dtype  # pixels in the weights' dtype (bf16 model)

    def _run(self, fn: Callable[[], torch.Tensor]) -> torch.Tensor:
        with (
            torch.inference_mode(),
            torch.autocast(self.device, dtype=self.autocast, enabled=self.autocast is not None),
        ):
            return torch.nn.functional.normalize(fn().float(), dim=-1).cpu()

    def images(self, paths: list[str], bs: int) -> np.ndarray:
        out = []
        for i in range(0, len(paths), bs):
            x = torch.stack([self.preprocess(Image.open(p)) for p in paths[i : i + bs]]).to(
                self.device, self.dtype
            )
            out.append(self._run(lambda x=x: self.model.encode_image(x)))
        return torch.cat(out).numpy()

    def texts(self, texts: list[str], bs: int) -> np.ndarray:
        out = []
        for i in range(0, len(texts), bs):
            tokens = self.tokenizer(texts[i : i + bs]).to(self.device)
            out.append(self._run(lambda t=tokens: self.model.encode_text(t)))
        return torch.cat(out).numpy()


class RawTrimmed(RawBatched):
    """The best a user can do with open_clip's public modules: texts sorted by length, each batch
    run on its first n positions only (n: its longest text), pooled at the end-of-text token."""

    def texts(self, texts: list[str], bs: int) -> np.ndarray:
        tokens = self.tokenizer(texts)  # padded (and truncated) to the context length
        order = torch.argsort(tokens.argmax(dim=-1), stable=True)  # end-of-text token: the largest id
        out: torch.Tensor | None = None
        for i in range(0, len(texts), bs):
            rows = order[i : i + bs]
            batch = tokens[rows].to(self.device)
            vecs = self._run(lambda t=batch: self._encode(t))
            if out is None:
                out = torch.empty(len(texts), vecs.shape[1])
            out[rows] = vecs
        assert out is not None
        return out.numpy()

    def _encode(self, tokens: torch.Tensor) -> torch.Tensor:
        m = self.model
        n = int(tokens.argmax(dim=-1).max()) + 1
        tokens = tokens[:, :n]
        cast = m.transformer.get_cast_dtype()
        x = m.token_embedding(tokens).to(cast) + m.positional_embedding[:n].to(cast)
        x = m.ln_final(m.transformer(x, attn_mask=m.attn_mask[:n, :n]))
        x = x[torch.arange(x.shape[0], device=x.device), tokens.argmax(dim=-1)]
        proj = m.text_projection
        if proj is None:
            return x
        return proj(x) if isinstance(proj, torch.nn.Linear) else x @ proj


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

# name -> kind -> fn(items, batch size) (batched) or fn(items) (per item); a contestant may skip kinds
Batched = dict[str, dict[str, Callable[[list[str], int], Any]]]
PerItem = dict[str, dict[str, Callable[[list[str]], Any]]]


LOADED_ITEMS = 32  # items per loaded figure: small batches under load run many times slower


def loaded_batches(batches: tuple[int, ...] | list[int]) -> list[int]:
    """The batch sizes measured under load: the smallest (1) and the largest up to 32."""
    small = min(batches)
    return sorted({small, max([b for b in batches if b <= 32] or [small])})


def _rotated(names: list[str], r: int) -> list[str]:
    k = r % len(names) if names else 0
    return names[k:] + names[:k]


def _rate(fn: Callable[[], Any], n: int) -> float:
    t = time.perf_counter()
    fn()
    return n / (time.perf_counter() - t)


def _one_pass(
    samples: dict[str, Any],
    contestants: Batched,
    per_item: PerItem,
    batches: list[int],
    inputs: dict[str, tuple[list[str], int]],
    r: int,
    cap: int | None = None,
) -> None:
    """One round: each batched contestant once per batch size, then each per-item contestant once.
    *cap*: at most this many items per figure (but a whole batch), for the slow loaded half."""
    for bs in batches:
        for name in _rotated(list(contestants), r):
            for kind, fn in contestants[name].items():
                n = max(inputs[kind][1], bs) if cap is None else max(min(inputs[kind][1], cap), bs)
                items = inputs[kind][0][:n]
                rate = _rate(lambda f=fn, x=items, b=bs: f(x, b), len(items))
                samples["batched"][name][kind].setdefault(str(bs), []).append(rate)
    for name in _rotated(list(per_item), r):
        for kind, fn in per_item[name].items():
            items = inputs[kind][0][: inputs[kind][1] if cap is None else min(inputs[kind][1], cap)]
            samples["per_item"][name][kind].append(_rate(lambda f=fn, x=items: f(x), len(items)))


def _summary(values: list[float]) -> dict[str, Any]:
    return {**spread(values, digits=2), "rounds": [round(v, 2) for v in values]}


def _rounds(
    contestants: Batched,
    per_item: PerItem,
    inputs: dict[str, tuple[list[str], int]],
    batches: tuple[int, ...],
    rounds: int,
    load: BackgroundLoad | None = None,
    under_load: list[int] | None = None,
) -> dict[str, Any]:
    """Interleaved rounds, quiet (every batch size) and, with *load*, loaded (*under_load* sizes):
    ``{"quiet": {"batched": ..., "per_item": ...}, "loaded": ...}``, each figure summarised."""
    for fns in contestants.values():  # warm-up: first-call allocations, lazy imports
        for kind, fn in fns.items():
            fn(inputs[kind][0][:2], 2)
    for fns in per_item.values():
        for kind, f in fns.items():
            f(inputs[kind][0][:2])
    modes = ["quiet", "loaded"] if load is not None else ["quiet"]
    samples = {
        mode: {
            "batched": {n: {k: {} for k in fns} for n, fns in contestants.items()},
            "per_item": {n: {k: [] for k in fns} for n, fns in per_item.items()},
        }
        for mode in modes
    }
    for r in range(rounds):
        _one_pass(samples["quiet"], contestants, per_item, list(batches), inputs, r)
        if load is not None:
            with load.on():
                _one_pass(samples["loaded"], contestants, per_item, under_load or [], inputs, r, cap=LOADED_ITEMS)
    return {
        mode: {
            "batched": {
                n: {k: {b: _summary(v) for b, v in by_b.items()} for k, by_b in kinds.items()}
                for n, kinds in s["batched"].items()
            },
            "per_item": {n: {k: _summary(v) for k, v in kinds.items()} for n, kinds in s["per_item"].items()},
        }
        for mode, s in samples.items()
    }


def _medians(quiet: dict[str, Any]) -> dict[str, Any]:
    """The top-level ``batched`` / ``per_item``: quiet medians, contestants that embed images and texts."""
    return {
        "batched": {
            n: {k: {b: f["median"] for b, f in by_b.items()} for k, by_b in kinds.items()}
            for n, kinds in quiet["batched"].items()
            if {"images", "texts"} <= set(kinds)
        },
        "per_item": {n: {k: f["median"] for k, f in kinds.items()} for n, kinds in quiet["per_item"].items()},
    }


def _agreement(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    cos = np.sum(a * b, axis=1)
    return {"mean_cosine": round(float(cos.mean()), 5), "min_cosine": round(float(cos.min()), 5)}


def check_trim(pairs: dict[str, tuple[RawBatched, RawTrimmed]], sets: dict[str, list[str]]) -> dict[str, Any]:
    """raw-trim's vectors against raw's, per numerics and text set; raises if any text's cosine
    is at most ``AGREEMENT_MIN`` (then raw-trim would not be an honest equivalent)."""
    out: dict[str, Any] = {}
    for name, (raw, trim) in pairs.items():
        out[name] = {
            kind: _agreement(raw.texts(texts, 8), trim.texts(texts, 8)) for kind, texts in sets.items()
        }
        for kind, a in out[name].items():
            if not a["min_cosine"] > AGREEMENT_MIN:
                raise AssertionError(f"{name} differs from raw on {kind}: min cosine {a['min_cosine']}")
    return out


def run(
    quick: bool = False,
    model_name: str = "ViT-B-32",
    rounds: int | None = None,
    peers: bool = True,
    gpu: bool = True,
    batches: tuple[int, ...] | None = None,
    n_items: tuple[int, int] | None = None,
    load: bool = True,
    threads: int | None = None,
) -> dict[str, Any]:
    """The embedding section of the suite (see the module docstring). *threads*: torch's intra-op
    threads for every contestant (default: torch's own default, as a user gets it)."""
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        result = _run(quick, model_name, rounds, peers, gpu, batches, n_items, load)
    finally:
        torch.set_num_threads(before)
    return result


def _run(
    quick: bool,
    model_name: str,
    rounds: int | None,
    peers: bool,
    gpu: bool,
    batches: tuple[int, ...] | None,
    n_items: tuple[int, int] | None,
    load: bool,
) -> dict[str, Any]:
    batches = tuple(batches or (BATCHES_QUICK if quick else BATCHES_FULL))
    n_images, n_texts = n_items or ((32, 64) if quick else (64, 256))
    rounds = rounds or (3 if quick else 5)
    torch.manual_seed(0)
    model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=None)
    model.eval()
    tokenizer = open_clip.get_tokenizer(model_name)
    context_length = int(getattr(model, "context_length", None) or 77)

    def ours_fns(emb: OpenCLIPEmbedder) -> dict[str, Callable[[list[str], int], Any]]:
        def txt(t: list[str], b: int) -> np.ndarray:
            return emb.embed_texts(t, batch_size=b)

        return {"images": lambda p, b: emb.embed_images(p, batch_size=b), "texts": txt, "chunks": txt}

    def raw_fns(r: RawBatched) -> dict[str, Callable[[list[str], int], Any]]:
        return {"images": r.images, "texts": r.texts, "chunks": r.texts}

    def trim_fns(r: RawTrimmed) -> dict[str, Callable[[list[str], int], Any]]:
        return {"texts": r.texts, "chunks": r.texts}

    fp32 = OpenCLIPEmbedder(
        model=model, preprocess=preprocess, tokenizer=tokenizer, device="cpu", cache_size=0
    )
    raw, trim = RawBatched(model, preprocess, tokenizer), RawTrimmed(model, preprocess, tokenizer)
    pairs: dict[str, tuple[RawBatched, RawTrimmed]] = {"raw-trim": (raw, trim)}
    default = resolve_precision("auto", "cpu")
    if default == "bf16":
        low = copy.deepcopy(model).to(torch.bfloat16)
        ours = OpenCLIPEmbedder(
            model=low, preprocess=preprocess, tokenizer=tokenizer, device="cpu", cache_size=0
        )
        raw_low, trim_low = RawBatched(low, preprocess, tokenizer), RawTrimmed(low, preprocess, tokenizer)
        pairs["raw-trim-bf16"] = (raw_low, trim_low)
        contestants: Batched = {
            "ours": ours_fns(ours),
            "ours-fp32": ours_fns(fp32),
            "raw": raw_fns(raw),
            "raw-bf16": raw_fns(raw_low),
            "raw-trim": trim_fns(trim),
            "raw-trim-bf16": trim_fns(trim_low),
        }
    else:
        ours = fp32
        contestants = {"ours": ours_fns(ours), "raw": raw_fns(raw), "raw-trim": trim_fns(trim)}
    per_item: PerItem = {}
    if peers:
        from langchain_experimental.open_clip import OpenCLIPEmbeddings

        lc = OpenCLIPEmbeddings(model_name=model_name, checkpoint="")
        lc.model, lc.preprocess, lc.tokenizer = model, preprocess, tokenizer
        per_item["langchain"] = {
            "images": lc.embed_image,
            "texts": lc.embed_documents,
            "chunks": lc.embed_documents,
        }
        li = llamaindex_clip_loop(model, preprocess, tokenizer, 32)
        per_item["llamaindex"] = {
            "images": li.get_image_embedding_batch,
            "texts": li.get_text_embedding_batch,
            "chunks": li.get_text_embedding_batch,
        }

    n_max = max(n_texts, max(batches))
    chunks, chunk_info = make_chunks(n_max)
    with tempfile.TemporaryDirectory() as tmp:
        paths, texts = make_inputs(max(n_images, max(batches)), n_max, Path(tmp))
        sets = {"texts": texts, "chunks": chunks}
        text_sets = {kind: token_stats(tokenizer, t, context_length) for kind, t in sets.items()}
        text_sets["texts"]["label"] = SHORT_LABEL
        text_sets["chunks"].update(chunk_info)
        text_sets["chunks"]["label"] = (
            f"chunks (our chunker on the shared PDFs; median {text_sets['chunks']['median_tokens']:g} tokens)"
        )
        agreement = check_trim(pairs, {k: t[:32] for k, t in sets.items()})
        inputs = {"images": (paths, n_images), "texts": (texts, n_texts), "chunks": (chunks, n_texts)}
        under_load = loaded_batches(batches)
        bg = BackgroundLoad() if load else None
        try:
            figures = _rounds(contestants, per_item, inputs, batches, rounds, bg, under_load)
        finally:
            if bg is not None:
                bg.close()
        result: dict[str, Any] = {
            "model": f"{model_name} (random weights)",
            "device": "cpu",
            "batches": list(batches),
            "loaded_batches": under_load if load else [],
            "n_images": n_images,
            "n_texts": n_texts,
            "rounds": rounds,
            "torch_threads": torch.get_num_threads(),
            "load": bg.describe() if bg is not None else None,
            "text_sets": text_sets,
            "raw_trim_agreement": agreement,
            **figures,
            **_medians(figures["quiet"]),
        }
        result["default_precision"] = default
        if default != "fp32":
            result["bf16_agreement"] = {
                "images": _agreement(fp32.embed_images(paths[:32]), ours.embed_images(paths[:32])),
                **{
                    k: _agreement(fp32.embed_texts(t[:64]), ours.embed_texts(t[:64])) for k, t in sets.items()
                },
            }
        if gpu and torch.cuda.is_available():
            result["gpu"] = _gpu(
                model_name,
                paths,
                texts,
                batches,
                max(n_images, 256),
                max(n_texts, 256),
                rounds,
                chunks=chunks,
                trim=True,
            )
    return result


def _gpu(
    model_name: str,
    paths: list[str],
    texts: list[str],
    batches: tuple[int, ...],
    n_images: int,
    n_texts: int,
    repeats: int,
    device: str = "cuda",
    chunks: list[str] | None = None,
    trim: bool = False,
) -> dict[str, Any]:
    """Same sweep (quiet, *repeats* interleaved rounds) on an accelerator: ours in fp32/fp16/bf16,
    raw in fp32 and fp16 autocast; with *trim* also raw-trim in both; with *chunks* that text set too.

    ``device="cpu"`` runs the same code with fp32/bf16 only (the test suite's check of this path
    on machines without a GPU)."""
    torch.manual_seed(0)
    model, _, preprocess = open_clip.create_model_and_transforms(model_name, pretrained=None, device=device)
    model.eval()
    tokenizer = open_clip.get_tokenizer(model_name)
    half = torch.float16 if device == "cuda" else torch.bfloat16
    precisions = {
        "fp32": torch.float32,
        "bf16": torch.bfloat16,
        **({"fp16": torch.float16} if device == "cuda" else {}),
    }
    text_kinds = ("texts", "chunks") if chunks is not None else ("texts",)
    contestants: Batched = {}
    for prec, dtype in precisions.items():
        m = model if dtype == torch.float32 else copy.deepcopy(model).to(dtype)
        emb = OpenCLIPEmbedder(
            model=m, preprocess=preprocess, tokenizer=tokenizer, device=device, cache_size=0
        )
        contestants[f"ours-{prec}"] = {
            "images": lambda p, b, e=emb: e.embed_images(p, batch_size=b),
            **{k: lambda t, b, e=emb: e.embed_texts(t, batch_size=b) for k in text_kinds},
        }
    low_name = "fp16" if device == "cuda" else "bf16"
    agreement: dict[str, Any] = {}
    for prec, autocast in (("fp32", None), (low_name, half)):
        r = RawBatched(model, preprocess, tokenizer, device=device, autocast=autocast)
        contestants[f"raw-{prec}"] = {"images": r.images, **dict.fromkeys(text_kinds, r.texts)}
        if trim:
            rt = RawTrimmed(model, preprocess, tokenizer, device=device, autocast=autocast)
            sets = {"texts": texts[:32], **({"chunks": chunks[:32]} if chunks is not None else {})}
            agreement.update(check_trim({f"raw-trim-{prec}": (r, rt)}, sets))
            contestants[f"raw-trim-{prec}"] = dict.fromkeys(text_kinds, rt.texts)
    inputs = {"images": (paths, n_images), "texts": (texts, n_texts)}
    if chunks is not None:
        inputs["chunks"] = (chunks, n_texts)
    figures = _rounds(contestants, {}, inputs, batches, repeats)
    out: dict[str, Any] = {"quiet": figures["quiet"], **_medians(figures["quiet"]), "rounds": repeats}
    if agreement:
        out["raw_trim_agreement"] = agreement
    out["device"] = torch.cuda.get_device_name(0) if device == "cuda" else device
    return out


# ---------------------------------------------------------------------------------------- report
def _fig(mode: dict[str, Any], name: str, kind: str, b: int) -> dict[str, Any] | None:
    """One figure (summary) of contestant *name*: batched at batch size *b*, or per item."""
    if name in mode["batched"]:
        return mode["batched"][name].get(kind, {}).get(str(b))
    return mode["per_item"].get(name, {}).get(kind)


def _cell(f: dict[str, Any] | None) -> str:
    return "" if f is None else f"{f['median']:.1f} ({f['min']:.1f}–{f['max']:.1f})"


def _ratio(a: dict[str, Any] | None, b: dict[str, Any] | None) -> str:
    """Ratio of medians, with the spread of the round-by-round ratios."""
    if not a or not b or not b["median"]:
        return ""
    per_round = [x / y for x, y in zip(a["rounds"], b["rounds"], strict=False) if y]
    spread = f" ({min(per_round):.2f}–{max(per_round):.2f})" if per_round else ""
    return f"{a['median'] / b['median']:.2f}x{spread}"


def _best_raw(mode: dict[str, Any], kind: str, b: int) -> str | None:
    raws = [n for n in mode["batched"] if n.startswith("raw") and _fig(mode, n, kind, b)]
    return max(raws, key=lambda n: _fig(mode, n, kind, b)["median"]) if raws else None  # type: ignore[index]


def _table(res: dict[str, Any], kind: str, columns: list[tuple[str, str, int]]) -> list[str]:
    """Rows: contestants that embed *kind*, then ours / each peer; columns: (header, mode, batch size)."""
    modes = {m: res[m] for m in ("quiet", "loaded") if m in res}
    names = [
        n
        for n in (*res["quiet"]["batched"], *res["quiet"]["per_item"])
        if any(_fig(modes[m], n, kind, b) for _, m, b in columns)
    ]
    lines = [
        "| contestant | " + " | ".join(h for h, _, _ in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for n in names:
        label = f"{n} (per item)" if n in res["quiet"]["per_item"] else n
        lines.append(
            f"| {label} | " + " | ".join(_cell(_fig(modes[m], n, kind, b)) for _, m, b in columns) + " |"
        )
    low = "raw-trim-bf16" if "raw-trim-bf16" in res["quiet"]["batched"] else "raw-trim"
    peers = [*res["quiet"]["per_item"], *([low] if kind in TEXT_KINDS else [])]
    for p in peers:
        if p in names:
            lines.append(
                f"| *ours / {p}* | "
                + " | ".join(
                    _ratio(_fig(modes[m], "ours", kind, b), _fig(modes[m], p, kind, b)) for _, m, b in columns
                )
                + " |"
            )
    best = [_best_raw(modes[m], kind, b) for _, m, b in columns]
    lines.append(
        "| *ours / best raw* | "
        + " | ".join(
            _ratio(_fig(modes[m], "ours", kind, b), _fig(modes[m], r, kind, b)) if r else ""
            for (_, m, b), r in zip(columns, best, strict=True)
        )
        + " |"
    )
    lines.append("| *(best raw)* | " + " | ".join(r or "" for r in best) + " |")
    return lines


def markdown(res: dict[str, Any]) -> list[str]:
    """Quiet tables (every batch size) and quiet vs loaded tables, per kind: items/s as
    median (min–max) over the rounds, and ours vs each peer."""
    if "quiet" not in res:  # a result from before the rounds (one median per contestant)
        return [f"Model {res['model']}, {res['device']}: old result format, rerun bench_embeddings."]
    sets = res["text_sets"]
    labels = {
        "images": "images/s",
        "texts": f"texts/s, {sets['texts']['label']}",
        "chunks": f"texts/s, {sets['chunks']['label']}",
    }
    c = sets["chunks"]
    lines = [
        f"Model {res['model']}, {res['device']} ({res.get('torch_threads', '?')} torch threads); items/s, "
        f"median (min–max) of {res['rounds']} interleaved rounds "
        f"(each round runs every contestant once per batch size, order rotating). "
        f"ours: the library's default numerics here ({res.get('default_precision', 'fp32')}); "
        "raw: open_clip's encode_* as is; raw-trim: the same model run on each batch's text positions only "
        "(texts sorted by length), written with open_clip's public modules.",
        "",
        f"Text sets: {SHORT_LABEL}: median {sets['texts']['median_tokens']:g} tokens; "
        f"chunks: the {c['texts']} measured, drawn (shuffled, cycled) from the {c.get('chunks_read', '?')} "
        f"text chunks of {c.get('pdfs', '?')} shared PDFs (default chunking, text layer only), "
        f"median {c['median_tokens']:g} tokens (max {c['max_tokens']}), "
        f"{100 * c['truncated_fraction']:.0f}% truncated at the context length {c['context_length']} "
        "(tokens counted with the start and end markers, before truncation).",
        "",
        "raw-trim vs raw, cosine per text (min): "
        + "; ".join(
            f"{n}: " + ", ".join(f"{k} {a['min_cosine']}" for k, a in v.items())
            for n, v in res["raw_trim_agreement"].items()
        )
        + ".",
        "",
    ]
    quiet_cols = [(f"bs {b}", "quiet", b) for b in res["batches"]]
    for kind in KINDS:
        lines += [
            f"**{labels[kind]}: quiet**",
            "",
            *_table(res, kind, quiet_cols),
            "",
        ]
    if res.get("loaded_batches") and "loaded" in res:
        lines += [f"**Quiet vs loaded** (load: {res['load']}); batch sizes {res['loaded_batches']}.", ""]
        load_cols = [(f"bs {b} {m}", m, b) for b in res["loaded_batches"] for m in ("quiet", "loaded")]
        for kind in KINDS:
            lines += [
                f"**{labels[kind]}: quiet vs loaded**",
                "",
                *_table(res, kind, load_cols),
                "",
            ]
    if "bf16_agreement" in res:
        a = res["bf16_agreement"]
        lines.append(
            "bf16 vs fp32 embeddings (ours), cosine mean (min): "
            + ", ".join(f"{k} {v['mean_cosine']} ({v['min_cosine']})" for k, v in a.items())
            + "."
        )
    if "gpu" in res:
        g = res["gpu"]
        cols = [(f"bs {b}", "quiet", b) for b in res["batches"]]
        g_res = {"quiet": g["quiet"]}
        for kind in [k for k in KINDS if any(k in v for v in g["quiet"]["batched"].values())]:
            lines += [
                "",
                f"**GPU ({g['device']}), {labels[kind]}**, median (min–max) of {g['rounds']} rounds",
                "",
            ]
            lines += _gpu_table(g_res, kind, cols)
    return lines


def _gpu_table(res: dict[str, Any], kind: str, columns: list[tuple[str, str, int]]) -> list[str]:
    lines = [
        "| contestant | " + " | ".join(h for h, _, _ in columns) + " |",
        "|---|" + "---:|" * len(columns),
    ]
    for n, kinds in res["quiet"]["batched"].items():
        if kind in kinds:
            lines.append(
                f"| {n} | " + " | ".join(_cell(_fig(res["quiet"], n, kind, b)) for _, _, b in columns) + " |"
            )
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--model", default="ViT-B-32")
    ap.add_argument(
        "--rounds", "--repeats", dest="rounds", type=int, help="interleaved rounds (default 5, --quick 3)"
    )
    ap.add_argument("--no-peers", action="store_true")
    ap.add_argument(
        "--no-load", action="store_true", help="quiet only: skip the rounds under background load"
    )
    ap.add_argument("--threads", type=int, help="torch intra-op threads (default: torch's default)")
    ap.add_argument("--batches", help="comma-separated batch sizes (default: 1..256, --quick: 1,8,32)")
    ap.add_argument("--out", default=str(RESULTS / "embeddings.json"))
    args = ap.parse_args()
    batches = tuple(int(b) for b in args.batches.split(",")) if args.batches else None
    res = run(
        args.quick,
        args.model,
        args.rounds,
        peers=not args.no_peers,
        batches=batches,
        load=not args.no_load,
        threads=args.threads,
    )
    save(res, args.out, markdown)


if __name__ == "__main__":
    main()
