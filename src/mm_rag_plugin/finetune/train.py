"""Contrastive fine-tuning of an open_clip model on (image, text) pairs, with a safety net.

:func:`finetune` adapts any model :class:`~mm_rag_plugin.OpenCLIPEmbedder` loads to your pairs
with open_clip's own losses (``ClipLoss``, CLIP's InfoNCE; ``SigLipLoss``, SigLIP's sigmoid loss)
and writes a model folder that ``OpenCLIPEmbedder("local-dir:FOLDER")`` loads:

* a held-out split (20% of the pairs by default, at least :data:`MIN_HOLDOUT`, never sharing an
  image with the training pairs) is scored before and after training: recall@1 and @5 of
  text->image and image->text search, with the same ranking code as ``mm-rag eval``, through the
  embedder's own code path;
* a model that scores worse on it than the model it started from is not saved (unless
  ``force=True``);
* the folder records what the model is in ``finetune.json``: the base model (name, pretrained tag,
  weights SHA-256), the SHA-256 of the pairs, the settings and both scores. Its weights file has
  its own SHA-256, so an index built with it records a model different from the base;
* training checkpoints (trained weights, optimizer, scheduler, step) go to
  ``OUT/checkpoint/state.pt`` every ``save_every`` steps; ``resume=True`` continues from there.

By default only the projections and the last block of each tower are trained (plus the logit
scale): cheap on a CPU and hard to break. ``train="all"`` trains everything, ``train="last"``
with ``blocks=N`` the last N blocks, ``train="projections"`` only the projections;
``freeze="image"`` / ``"text"`` keeps a whole tower as it is.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import math
import os
import random
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._images import load_image
from .._optional import require
from .._version import __version__
from ..embeddings.open_clip import native_bf16
from ..errors import ConfigurationError, InvalidInputError, MMRagError, ModelLoadError
from ..evaluation import ranking_metrics
from ..ids import file_sha256
from .pairs import Pair, dump_pairs, load_pairs

if TYPE_CHECKING:
    import torch

    from ..embeddings.open_clip import OpenCLIPEmbedder

logger = logging.getLogger(__name__)

__all__ = [
    "LOSSES",
    "MIN_HOLDOUT",
    "MIN_PAIRS",
    "TRAIN_MODES",
    "FinetuneReport",
    "Trainer",
    "WorseModelError",
    "autocast_dtype",
    "evaluate",
    "finetune",
    "native_bf16",
]

LOSSES = ("auto", "clip", "siglip")
TRAIN_MODES = ("projections", "last", "all")
PRECISIONS = ("auto", "fp32", "bf16")
#: The fewest pairs :func:`finetune` trains on, and the fewest it holds out.
MIN_PAIRS = 10
MIN_HOLDOUT = 4
#: Default learning rate per ``train`` mode (AdamW, warmup then cosine decay).
DEFAULT_LR = {"projections": 1e-4, "last": 5e-5, "all": 1e-5}
#: Recall cut-offs of the held-out score.
KS = (1, 5)
#: Preprocessed training images kept in memory up to this many bytes (beyond it, read per batch).
PIXEL_CACHE_BYTES = 1 << 30
FINETUNE_JSON = "finetune.json"
HELDOUT_JSONL = "heldout.jsonl"
CHECKPOINT_DIR = "checkpoint"
_STATE = "state.pt"
_WEIGHTS = "open_clip_model.safetensors"
_WEIGHTS_PT = "open_clip_pytorch_model.bin"
#: Settings a resumed run must share with the run that wrote the checkpoint.
_RESUME_KEYS = ("loss", "train", "blocks", "freeze", "lr", "weight_decay", "epochs", "batch_size", "seed",
                "holdout", "max_steps")


class WorseModelError(MMRagError, RuntimeError):
    """The fine-tuned model scored worse on the held-out pairs than the model it started from, so
    it was not saved. ``report`` holds both scores; the training checkpoint is kept, so
    ``finetune(..., resume=True, force=True)`` saves it without training again."""

    def __init__(self, message: str, report: FinetuneReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True, slots=True)
class FinetuneReport:
    """What :func:`finetune` did. ``before`` / ``after``: held-out scores (see :func:`evaluate`)."""

    out_dir: str
    saved: bool
    before: dict[str, Any]
    after: dict[str, Any]
    pairs: int
    train_pairs: int
    heldout_pairs: int
    steps: int
    resumed_at: int
    seconds: float  # training time (steps only)
    pairs_per_second: float
    trainable_params: int
    total_params: int
    device: str
    precision: str
    loss: str
    data_sha256: str
    base: dict[str, Any]
    settings: dict[str, Any] = field(default_factory=dict)
    forced: bool = False

    @property
    def improved(self) -> bool:
        return float(self.after["score"]) > float(self.before["score"])

    @property
    def model_name(self) -> str:
        """What to load the saved model with: ``OpenCLIPEmbedder(report.model_name)``."""
        return f"local-dir:{self.out_dir}"


# ---------------------------------------------------------------------------------------------- scores
def evaluate(embedder: Any, pairs: Sequence[Pair], ks: Sequence[int] = KS) -> dict[str, Any]:
    """Held-out retrieval scores of *embedder* on *pairs*: each text searches the pairs' images and
    each image the pairs' texts; recall@k of finding its own partner, for each k in *ks*. Targets
    are ranked once each: an image paired with several captions is one image among the candidates.

    Other pairs with the same text or the same image (by content) are left out of a query's
    candidates: they would be equally right. ``score`` is the mean of all recalls. Embeddings come
    from the embedder's own methods, so a model loaded from disk scores exactly what it scored
    in training."""
    n = len(pairs)
    if n < 2:
        raise ConfigurationError(f"scoring needs at least 2 pairs, got {n}")
    texts = np.asarray(embedder.embed_texts([p.text for p in pairs]), np.float32)
    images = np.asarray(embedder.embed_images([p.image for p in pairs]), np.float32)
    sims = texts @ images.T
    text_key = [p.text for p in pairs]
    image_key = [file_sha256(p.image) for p in pairs]
    same = np.array([[text_key[i] == text_key[j] or image_key[i] == image_key[j] for j in range(n)] for i in range(n)])
    np.fill_diagonal(same, False)
    out: dict[str, Any] = {"pairs": n}
    recalls = []
    for direction, matrix, target_key in (("text_to_image", sims, image_key), ("image_to_text", sims.T, text_key)):
        found = dict.fromkeys(ks, 0.0)
        for q in range(n):
            # one candidate per distinct target: an image with five captions is five pairs but one
            # image, and would otherwise fill a top 5 on its own
            seen, kept = {target_key[q]}, []
            for j in np.flatnonzero(~same[q]).tolist():
                if j == q or target_key[j] not in seen:
                    seen.add(target_key[j])
                    kept.append(j)
            candidates = np.array(kept, dtype=np.int64)
            ranked = candidates[np.argsort(-matrix[q, candidates], kind="stable")][: max(ks)].tolist()
            for k in ks:
                found[k] += ranking_metrics(ranked, [q], k).recall
        out[direction] = {f"recall@{k}": round(found[k] / n, 6) for k in ks}
        recalls += list(out[direction].values())
    out["score"] = round(float(np.mean(recalls)), 6)
    return out


# ---------------------------------------------------------------------------------------------- devices
def autocast_dtype(precision: str, device: str, train: str) -> Any:
    """``torch.bfloat16`` when training should run under bf16 autocast, else ``None`` (fp32).

    ``"auto"``: bf16 on a GPU with native bf16; on a CPU with native bf16 only for ``train="all"``.
    On the CPU, autocast speeds up full training but slows the cheap modes, whose time goes to the
    frozen forward pass: casting every frozen weight on every step costs more than bf16 saves there
    (``benchmarks/bench_finetune.py``; figures in ``benchmarks/results/finetune/``)."""
    torch = require("torch", extra="clip")
    if precision == "fp32":
        return None
    if precision == "auto" and (not native_bf16(device) or (device == "cpu" and train != "all")):
        return None
    return torch.bfloat16


# ---------------------------------------------------------------------------------------------- what to train
_IMAGE_PROJECTIONS = ("proj", "head.", "attnpool.", "ln_post.", "trunk.norm.", "trunk.fc_norm.", "trunk.attn_pool.",
                      "trunk.head.")
_TEXT_PROJECTIONS = ("text_projection", "ln_final.", "text.text_projection", "text.ln_final.", "text.proj.",
                     "text.pooler.")
#: Where a tower keeps its stack of blocks (relative to the tower: ViT and text transformers, timm
#: trunks, Hugging Face text encoders).
_BLOCK_LISTS = ("transformer.resblocks", "trunk.blocks", "trunk.stages", "trunk.layers", "transformer.encoder.layer",
                "transformer.layers", "encoder.layer")


def _tower(name: str) -> str:
    if name.startswith("visual."):
        return "image"
    if name in ("logit_scale", "logit_bias"):
        return "shared"
    return "text"


def _blocks(root: Any, prefix: str) -> list[str]:
    """Parameter-name prefixes of the blocks of a tower, in order (the deepest stack it has)."""
    torch = require("torch", extra="clip")
    for path in _BLOCK_LISTS:
        try:
            mod = root.get_submodule(path)
        except AttributeError:
            continue
        if isinstance(mod, (torch.nn.ModuleList, torch.nn.Sequential)) and len(mod):
            return [f"{prefix}{path}.{i}." for i in range(len(mod))]
    if all(hasattr(root, f"layer{i}") for i in range(1, 5)):  # ModifiedResNet
        return [f"{prefix}layer{i}." for i in range(1, 5)]
    lists = [(sum(p.numel() for p in m.parameters()), n, len(m)) for n, m in root.named_modules()
             if isinstance(m, torch.nn.ModuleList) and len(m)]
    if not lists:
        return []
    _, path, count = max(lists)
    return [f"{prefix}{path}.{i}." for i in range(count)]


def select_trainable(model: Any, train: str = "last", blocks: int = 1, freeze: str | None = None) -> list[str]:
    """Set ``requires_grad`` on *model*'s parameters for a ``train`` mode and return the names of
    those that will be trained (see the module docstring)."""
    if train not in TRAIN_MODES:
        raise ConfigurationError(f"train must be one of {TRAIN_MODES}, got {train!r}")
    if freeze not in (None, "image", "text"):
        raise ConfigurationError(f"freeze must be None, 'image' or 'text', got {freeze!r}")
    names = [n for n, _ in model.named_parameters()]
    chosen: set[str] = set()
    if train == "all":
        chosen = set(names)
    else:
        chosen = {n for n in names if _tower(n) == "shared"}
        chosen |= {n for n in names if n.startswith("visual.") and n[len("visual."):].startswith(_IMAGE_PROJECTIONS)}
        chosen |= {n for n in names if _tower(n) == "text" and n.startswith(_TEXT_PROJECTIONS)}
        if train == "last" and blocks > 0:
            custom_text = hasattr(model, "text")  # CustomTextCLIP: the text tower is model.text
            text_blocks = _blocks(model.text, "text.") if custom_text else _blocks(model, "")
            stacks = [_blocks(model.visual, "visual."), [b for b in text_blocks if not b.startswith("visual.")]]
            for stack in stacks:
                for prefix in stack[-blocks:]:
                    chosen |= {n for n in names if n.startswith(prefix)}
    if freeze is not None:
        chosen = {n for n in chosen if _tower(n) != freeze}
    for n, p in model.named_parameters():
        p.requires_grad_(n in chosen)
    if not chosen:
        raise ConfigurationError(f"nothing to train with train={train!r}, blocks={blocks}, freeze={freeze!r}")
    return [n for n in names if n in chosen]


# ---------------------------------------------------------------------------------------------- the training step
class Trainer:
    """One model, its optimizer, schedule and loss: :meth:`step` trains on one batch.

    *embedder* wraps the model being trained (its tokenizer and text path are used);
    ``autocast`` is ``torch.bfloat16`` or ``None`` (fp32)."""

    def __init__(
        self,
        embedder: OpenCLIPEmbedder,
        *,
        loss: str = "auto",
        train: str = "last",
        blocks: int = 1,
        freeze: str | None = None,
        lr: float | None = None,
        weight_decay: float = 0.1,
        total_steps: int = 1,
        warmup: int | None = None,
        autocast: Any = None,
    ) -> None:
        torch = require("torch", extra="clip")
        self._torch = torch
        open_clip_loss = require("open_clip.loss", extra="clip", package="open_clip_torch")
        self.embedder = embedder
        self.model = model = embedder.model
        self.device = embedder.device
        self.autocast = autocast
        has_bias = getattr(model, "logit_bias", None) is not None
        self.loss_name = ("siglip" if has_bias else "clip") if loss == "auto" else loss
        if self.loss_name not in ("clip", "siglip"):
            raise ConfigurationError(f"loss must be one of {LOSSES}, got {loss!r}")
        self.trainable = select_trainable(model, train, blocks, freeze)
        # a model trained with InfoNCE has no bias; the sigmoid loss needs one (SigLIP's init)
        self.extra_bias = None
        if self.loss_name == "siglip" and not has_bias:
            self.extra_bias = torch.nn.Parameter(torch.tensor(-10.0, device=self.device))
        self.loss_fn = open_clip_loss.SigLipLoss() if self.loss_name == "siglip" else open_clip_loss.ClipLoss()
        params = dict(model.named_parameters())
        decay = [params[n] for n in self.trainable if params[n].ndim >= 2 and "logit" not in n]
        no_decay = [params[n] for n in self.trainable if params[n].ndim < 2 or "logit" in n]
        if self.extra_bias is not None:
            no_decay.append(self.extra_bias)
        lr = DEFAULT_LR[train] if lr is None else lr
        groups = [{"params": decay, "weight_decay": weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
        self.optimizer = torch.optim.AdamW([g for g in groups if g["params"]], lr=lr, betas=(0.9, 0.98), eps=1e-6)
        warm = max(1, min(100, total_steps // 10)) if warmup is None else max(1, warmup)
        total = max(1, total_steps)

        def schedule(step: int) -> float:
            if step < warm:
                return (step + 1) / warm
            return 0.5 * (1.0 + math.cos(math.pi * min(1.0, (step - warm) / max(1, total - warm))))

        self.scheduler = torch.optim.lr_scheduler.LambdaLR(self.optimizer, schedule)
        self.image_frozen = not any(n.startswith("visual.") for n in self.trainable)
        self.text_frozen = not any(_tower(n) == "text" for n in self.trainable)

    @property
    def trainable_params(self) -> int:
        params = dict(self.model.named_parameters())
        return sum(params[n].numel() for n in self.trainable)

    def train_mode(self) -> None:
        """Training mode, except modules with nothing to train (their batch norms and dropouts
        stay as they were)."""
        self.model.train()
        for m in self.model.modules():
            ps = list(m.parameters())
            if ps and not any(p.requires_grad for p in ps):
                m.eval()

    def _encode_text(self, tokens: torch.Tensor) -> torch.Tensor:
        emb = self.embedder
        if emb._trim_padding:  # same pooled features, padding after the longest text cut
            return emb._encode_text_trimmed(tokens)
        return self.model.encode_text(tokens)

    def step(self, pixels: torch.Tensor, tokens: torch.Tensor) -> float:
        """One optimizer step on a batch of preprocessed images and their tokenized texts."""
        torch = self._torch
        model = self.model
        pixels = pixels.to(self.device, non_blocking=True)
        tokens = tokens.to(self.device, non_blocking=True)
        device_type = str(self.device).split(":")[0]
        cast = torch.autocast(device_type, dtype=self.autocast) if self.autocast is not None else contextlib.nullcontext()
        with cast:
            with torch.no_grad() if self.image_frozen else contextlib.nullcontext():
                img = model.encode_image(pixels)
            with torch.no_grad() if self.text_frozen else contextlib.nullcontext():
                txt = self._encode_text(tokens)
        img = torch.nn.functional.normalize(img.float(), dim=-1)
        txt = torch.nn.functional.normalize(txt.float(), dim=-1)
        scale = model.logit_scale.exp()
        if self.loss_name == "siglip":
            bias = self.extra_bias if self.extra_bias is not None else model.logit_bias
            loss = self.loss_fn(img, txt, scale, bias)
        else:
            loss = self.loss_fn(img, txt, scale, getattr(model, "logit_bias", None))
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self.scheduler.step()
        with torch.no_grad():
            model.logit_scale.clamp_(0, math.log(100))
        return float(loss.detach())

    def state_dict(self) -> dict[str, Any]:
        params = dict(self.model.named_parameters())
        buffers = dict(self.model.named_buffers())
        # trained parameters and, when a batch norm is trained, its running statistics
        trained_modules = {n.rsplit(".", 1)[0] for n in self.trainable}
        stats = {n: b.detach().cpu() for n, b in buffers.items() if n.rsplit(".", 1)[0] in trained_modules}
        return {
            "params": {n: params[n].detach().cpu() for n in self.trainable},
            "buffers": stats,
            "extra_bias": None if self.extra_bias is None else self.extra_bias.detach().cpu(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        torch = self._torch
        params = dict(self.model.named_parameters())
        buffers = dict(self.model.named_buffers())
        if set(state["params"]) != set(self.trainable):
            raise ConfigurationError("the checkpoint trained other parameters than these settings do")
        with torch.no_grad():
            for n, t in state["params"].items():
                params[n].copy_(t)
            for n, t in state.get("buffers", {}).items():
                if n in buffers:
                    buffers[n].copy_(t)
            if self.extra_bias is not None and state.get("extra_bias") is not None:
                self.extra_bias.copy_(state["extra_bias"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])


# ---------------------------------------------------------------------------------------------- data
class _Pixels:
    """Preprocessed images by pair index: decoded once up front (every unreadable image is found
    before training starts) and kept in memory while they fit in :data:`PIXEL_CACHE_BYTES`."""

    def __init__(self, pairs: Sequence[Pair], embedder: OpenCLIPEmbedder, budget: int = PIXEL_CACHE_BYTES) -> None:
        self.pairs, self.embedder = pairs, embedder
        self.cache: dict[str, Any] = {}
        bad: list[str] = []
        used = 0
        for p in pairs:
            if p.image in self.cache:
                continue
            try:
                tensor = self._load(p.image)
            except InvalidInputError as exc:
                bad.append(str(exc))
                continue
            size = tensor.numel() * tensor.element_size()
            if used + size <= budget:
                self.cache[p.image] = tensor
                used += size
        if bad:
            more = f"; and {len(bad) - 5} more" if len(bad) > 5 else ""
            raise InvalidInputError(f"{len(bad)} images cannot be read: {'; '.join(bad[:5])}{more}")

    def _load(self, image: str) -> Any:
        emb = self.embedder
        loaded = load_image(image, max_pixels=emb.max_image_pixels, source=image)
        return emb.preprocess(loaded.image)

    def batch(self, indices: Sequence[int]) -> Any:
        torch = require("torch", extra="clip")
        return torch.stack([self.cache.get(self.pairs[i].image) if self.pairs[i].image in self.cache
                            else self._load(self.pairs[i].image) for i in indices])


def _split(pairs: Sequence[Pair], hashes: dict[str, str], holdout: float, seed: int) -> tuple[list[Pair], list[Pair]]:
    """Training and held-out pairs; all pairs of one image (by content) fall on the same side."""
    groups: dict[str, list[Pair]] = {}
    for p in pairs:
        groups.setdefault(hashes[p.image], []).append(p)
    keys = sorted(groups)
    random.Random(seed).shuffle(keys)
    want = max(MIN_HOLDOUT, round(holdout * len(pairs)))
    held: list[Pair] = []
    train: list[Pair] = []
    for k in keys:
        (held if len(held) < want else train).extend(groups[k])
    if len(train) < 2 or len(held) < MIN_HOLDOUT:
        raise ConfigurationError(
            f"{len(pairs)} pairs of {len(groups)} distinct images cannot be split into training pairs and "
            f"{MIN_HOLDOUT}+ held-out pairs; add pairs (at least {MIN_PAIRS})"
        )
    return train, held


def plan_batches(pairs: Sequence[Pair], keys: Sequence[str], batch_size: int, epochs: int, seed: int) -> list[list[int]]:
    """Every step's pair indices, epoch after epoch, shuffled by *seed*. A batch never holds two
    pairs with the same text or the same image (the contrastive loss would call one of them
    wrong); batches of fewer than 2 pairs are dropped."""
    plan: list[list[int]] = []
    gen = random.Random(seed)
    for _ in range(epochs):
        pending = list(range(len(pairs)))
        gen.shuffle(pending)
        while pending:
            batch: list[int] = []
            texts: set[str] = set()
            images: set[str] = set()
            rest: list[int] = []
            for i in pending:
                if len(batch) < batch_size and pairs[i].text not in texts and keys[i] not in images:
                    batch.append(i)
                    texts.add(pairs[i].text)
                    images.add(keys[i])
                else:
                    rest.append(i)
            if len(batch) >= 2:
                plan.append(batch)
            pending = rest
    return plan


# ---------------------------------------------------------------------------------------------- the model folder
def model_config(embedder: OpenCLIPEmbedder) -> dict[str, Any]:
    """The open_clip model config of *embedder*'s model (what ``open_clip_config.json`` holds)."""
    open_clip = require("open_clip", extra="clip", package="open_clip_torch")
    name = str(embedder.model_name)
    try:
        if name.startswith("local-dir:"):
            data = json.loads((Path(name[len("local-dir:"):]) / "open_clip_config.json").read_text(encoding="utf-8"))
            cfg = data.get("model_cfg")
        elif name.startswith("hf-hub:"):
            from open_clip.factory import _get_hf_config

            cfg = _get_hf_config(name[len("hf-hub:"):]).get("model_cfg")
        else:
            cfg = open_clip.get_model_config(name)
    except Exception as exc:
        raise ModelLoadError(f"cannot read the open_clip config of {name!r}: {exc}", reason=str(exc)) from exc
    if not cfg:
        raise ConfigurationError(
            f"fine-tuning needs the model's open_clip config, and {name!r} has none; load the model by its "
            "open_clip name, hf-hub: or local-dir: (not as a model object)"
        )
    return copy.deepcopy(cfg)


def _save_weights(model: Any, folder: Path) -> Path:
    torch = require("torch", extra="clip")
    state = {k: v.detach().to("cpu", torch.float32 if v.is_floating_point() else v.dtype).contiguous()
             for k, v in model.state_dict().items()}
    try:
        from safetensors.torch import save_file

        path = folder / _WEIGHTS
        save_file(state, str(path))
    except (ImportError, RuntimeError, ValueError):  # no safetensors, or tensors sharing memory
        (folder / _WEIGHTS).unlink(missing_ok=True)
        path = folder / _WEIGHTS_PT
        torch.save(state, path)
    return path


def _write_json(path: Path, data: Any) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)


def _save_model(trained: OpenCLIPEmbedder, base: OpenCLIPEmbedder, out: Path, verify: Sequence[Pair]) -> Path:
    """Write the model folder (config, weights, tokenizer files when the tokenizer has them) and
    check that loading it back gives the trained model's embeddings."""
    from ..embeddings.open_clip import OpenCLIPEmbedder

    cfg = model_config(base)
    preprocess = dict(getattr(trained.model.visual, "preprocess_cfg", None) or {})
    if not preprocess and str(base.model_name).startswith("local-dir:"):
        folder = Path(str(base.model_name)[len("local-dir:"):])
        preprocess = json.loads((folder / "open_clip_config.json").read_text(encoding="utf-8")).get("preprocess_cfg", {})
    inner = getattr(trained.tokenizer, "tokenizer", None)
    if inner is not None and hasattr(inner, "save_pretrained"):  # an HF tokenizer: local-dir reads it from the folder
        inner.save_pretrained(str(out))
        cfg.setdefault("text_cfg", {}).setdefault("hf_tokenizer_name", str(base.model_name))
    for stale in (_WEIGHTS, _WEIGHTS_PT):
        (out / stale).unlink(missing_ok=True)
    weights = _save_weights(trained.model, out)
    _write_json(out / "open_clip_config.json", {"model_cfg": cfg, "preprocess_cfg": preprocess})
    loaded = OpenCLIPEmbedder(
        f"local-dir:{out}", device=trained.device, cache_size=0, batch_size=trained.batch_size, precision="fp32"
    )
    texts, images = [p.text for p in verify[:8]], [p.image for p in verify[:8]]
    same_tokens = bool((loaded._tokenize(texts) == trained._tokenize(texts)).all())
    close = np.allclose(loaded.embed_texts(texts), trained.embed_texts(texts), atol=1e-4) and np.allclose(
        loaded.embed_images(images), trained.embed_images(images), atol=1e-4
    )
    if not (same_tokens and close):
        for f in (weights, out / "open_clip_config.json"):
            f.unlink(missing_ok=True)
        raise ModelLoadError(
            f"{out}: the saved model does not load back as the trained model "
            f"({'embeddings differ' if same_tokens else 'its tokenizer differs'}); it was removed",
            reason="saved model differs",
        )
    return weights


# ---------------------------------------------------------------------------------------------- finetune
def _load_base(model: Any, pretrained: str | None, checkpoint: Any, device: str | None) -> OpenCLIPEmbedder:
    from ..embeddings.open_clip import OpenCLIPEmbedder

    if isinstance(model, OpenCLIPEmbedder):
        return model
    if model is not None and not isinstance(model, str):
        raise ConfigurationError(f"model must be an open_clip model name or an OpenCLIPEmbedder, got {type(model).__name__}")
    # fp32 weights: a model loaded in bf16 would train from rounded weights
    return OpenCLIPEmbedder(model, pretrained, checkpoint=checkpoint, device=device, cache_size=0, precision="fp32")


def _check_settings(settings: dict[str, Any]) -> None:
    if settings["loss"] not in LOSSES:
        raise ConfigurationError(f"loss must be one of {LOSSES}, got {settings['loss']!r}")
    if settings["train"] not in TRAIN_MODES:
        raise ConfigurationError(f"train must be one of {TRAIN_MODES}, got {settings['train']!r}")
    if settings["precision"] not in PRECISIONS:
        raise ConfigurationError(f"precision must be one of {PRECISIONS}, got {settings['precision']!r}")
    if settings["freeze"] not in (None, "image", "text"):
        raise ConfigurationError(f"freeze must be None, 'image' or 'text', got {settings['freeze']!r}")
    for name in ("epochs", "batch_size"):
        if not isinstance(settings[name], int) or settings[name] < 1:
            raise ConfigurationError(f"{name} must be a whole number >= 1, got {settings[name]!r}")
    if settings["batch_size"] < 2:
        raise ConfigurationError("batch_size must be at least 2 (a contrastive loss compares pairs within a batch)")
    if not isinstance(settings["blocks"], int) or settings["blocks"] < 0:
        raise ConfigurationError(f"blocks must be a whole number >= 0, got {settings['blocks']!r}")
    if settings["lr"] is not None and not 0 < settings["lr"] < math.inf:
        raise ConfigurationError(f"lr must be a positive number, got {settings['lr']!r}")
    if not 0 < settings["holdout"] <= 0.5:
        raise ConfigurationError(f"holdout must be within (0, 0.5], got {settings['holdout']!r}")
    if settings["max_steps"] is not None and settings["max_steps"] < 1:
        raise ConfigurationError(f"max_steps must be >= 1, got {settings['max_steps']!r}")


def check_output(out_dir: str | os.PathLike[str], resume: bool = False) -> Path:
    """The absolute model folder; an error when it already holds a model, or a checkpoint that
    ``resume`` does not continue."""
    out = Path(os.path.abspath(Path(out_dir).expanduser()))
    if (out / FINETUNE_JSON).exists():
        raise ConfigurationError(f"{out} already holds a fine-tuned model; write the new one to another folder")
    if out.exists() and not out.is_dir():
        raise ConfigurationError(f"{out} is not a folder")
    if (out / CHECKPOINT_DIR / _STATE).exists() and not resume:
        raise ConfigurationError(
            f"{out} holds the checkpoint of an unfinished run: continue it with resume=True (--resume), "
            "or remove the folder to start over"
        )
    return out


def finetune(
    model: str | OpenCLIPEmbedder | None,
    pairs: Sequence[Pair] | str | os.PathLike[str],
    out_dir: str | os.PathLike[str],
    *,
    pretrained: str | None = None,
    checkpoint: str | os.PathLike[str] | None = None,
    device: str | None = None,
    loss: str = "auto",
    train: str = "last",
    blocks: int = 1,
    freeze: str | None = None,
    lr: float | None = None,
    weight_decay: float = 0.1,
    epochs: int = 5,
    batch_size: int = 32,
    max_steps: int | None = None,
    seed: int = 0,
    holdout: float = 0.2,
    precision: str = "auto",
    save_every: int = 100,
    resume: bool = False,
    force: bool = False,
    show_progress: bool = False,
    on_step: Callable[[int, float], None] | None = None,
) -> FinetuneReport:
    """Fine-tune *model* (an open_clip name, ``hf-hub:`` / ``local-dir:`` name, or an
    :class:`~mm_rag_plugin.OpenCLIPEmbedder`, whose own weights are left untouched) on *pairs*
    (a list of :class:`Pair` or a JSONL/CSV pairs file) and write the model folder *out_dir*.

    ``loss``: ``"clip"`` (InfoNCE), ``"siglip"`` (sigmoid) or ``"auto"`` (the model's own: sigmoid
    when it has a logit bias). ``train`` / ``blocks`` / ``freeze``: what is trained (module
    docstring). ``lr`` defaults by ``train`` mode (:data:`DEFAULT_LR`); AdamW with warmup and cosine
    decay over ``epochs`` (or ``max_steps``) of ``batch_size`` pairs. ``precision``: ``"fp32"``,
    ``"bf16"`` (autocast) or ``"auto"`` (bf16 where it is faster: see :func:`autocast_dtype`).
    ``holdout``: share of the pairs held out (seeded by ``seed``). ``on_step(step, loss)`` is
    called after every step.

    Raises :class:`WorseModelError` (nothing saved) when the model got worse on the held-out
    pairs, unless ``force``. Returns a :class:`FinetuneReport`."""
    torch = require("torch", extra="clip")
    settings: dict[str, Any] = {
        "loss": loss, "train": train, "blocks": blocks, "freeze": freeze, "lr": lr, "weight_decay": weight_decay,
        "epochs": epochs, "batch_size": batch_size, "max_steps": max_steps, "seed": seed, "holdout": holdout,
        "precision": precision,
    }
    _check_settings(settings)
    if save_every < 1:
        raise ConfigurationError(f"save_every must be >= 1, got {save_every}")
    out = check_output(out_dir, resume)
    state_path = out / CHECKPOINT_DIR / _STATE
    pair_list = load_pairs(pairs) if isinstance(pairs, (str, os.PathLike)) else list(pairs)
    if len(pair_list) < MIN_PAIRS:
        raise ConfigurationError(f"fine-tuning needs at least {MIN_PAIRS} pairs, got {len(pair_list)}")

    base = _load_base(model, pretrained, checkpoint, device)
    from ..embeddings.open_clip import OpenCLIPEmbedder
    from ..retrievers.manifest import model_identity

    base_identity = model_identity(base)
    model_config(base)  # fails now, not after training, when the model folder could not be written
    hashes = {p.image: file_sha256(p.image) for p in pair_list}
    from .pairs import pairs_hash

    data_sha = pairs_hash(pair_list)
    train_pairs, held = _split(pair_list, hashes, holdout, seed)

    torch.manual_seed(seed)
    net = copy.deepcopy(base.model).float()
    emb = OpenCLIPEmbedder(
        model_name=base.model_name, pretrained=base.pretrained, model=net, preprocess=base.preprocess,
        tokenizer=base.tokenizer, device=base.device, cache_size=0, batch_size=base.batch_size,
        max_image_pixels=base.max_image_pixels,
    )
    autocast = autocast_dtype(precision, str(emb.device), train)
    precision_used = "bf16" if autocast is not None else "fp32"

    keys = [hashes[p.image] for p in train_pairs]
    plan = plan_batches(train_pairs, keys, batch_size, epochs, seed)
    if max_steps is not None:
        while len(plan) < max_steps and plan:  # more epochs of the same plan, reshuffled
            plan += plan_batches(train_pairs, keys, batch_size, epochs, seed + len(plan))
        plan = plan[:max_steps]
    if not plan:
        raise ConfigurationError("no batch of 2 or more distinct pairs could be formed from the training pairs")
    trainer = Trainer(emb, loss=loss, train=train, blocks=blocks, freeze=freeze, lr=lr, weight_decay=weight_decay,
                      total_steps=len(plan), autocast=autocast)
    tokens = emb._tokenize([p.text for p in train_pairs])

    start, before = 0, None
    if resume and state_path.exists():
        state = torch.load(state_path, map_location="cpu", weights_only=True)
        why = _resume_mismatch(state, settings, data_sha, base_identity)
        if why:
            raise ConfigurationError(f"{state_path}: cannot resume: {why}; remove {out / CHECKPOINT_DIR} to start over")
        trainer.load_state_dict(state["trainer"])
        start, before = int(state["step"]), json.loads(state["before"])
        torch.set_rng_state(state["torch_rng"])
    if before is None:
        net.eval()
        before = evaluate(emb, held)
    logger.info("held-out score before fine-tuning: %s", before["score"])

    pixels = _Pixels(train_pairs, emb) if start < len(plan) else None
    out.mkdir(parents=True, exist_ok=True)

    def save_state(step: int) -> None:
        state_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = state_path.with_name(_STATE + ".tmp")
        torch.save({
            "step": step, "trainer": trainer.state_dict(), "settings": json.dumps(settings, sort_keys=True),
            "data_sha256": data_sha, "base": json.dumps(base_identity, sort_keys=True, default=str),
            "before": json.dumps(before), "torch_rng": torch.get_rng_state(),
        }, tmp)
        os.replace(tmp, state_path)

    from .._progress import progress_bar as tqdm

    trainer.train_mode()
    seconds, done = 0.0, 0
    with tqdm(total=len(plan), initial=start, desc="fine-tuning", unit="step", disable=not show_progress) as bar:
        for step in range(start, len(plan)):
            batch = plan[step]
            t0 = time.perf_counter()
            assert pixels is not None
            value = trainer.step(pixels.batch(batch), tokens[batch])
            seconds += time.perf_counter() - t0
            done += len(batch)
            if not math.isfinite(value):
                logger.warning("step %d: the loss is %s", step + 1, value)
            bar.set_postfix(loss=f"{value:.4f}")
            bar.update(1)
            if on_step is not None:
                on_step(step + 1, value)
            if (step + 1) % save_every == 0 and step + 1 < len(plan):
                save_state(step + 1)
    save_state(len(plan))

    net.eval()
    after = evaluate(emb, held)
    logger.info("held-out score after fine-tuning: %s", after["score"])
    report = FinetuneReport(
        out_dir=str(out), saved=False, before=before, after=after, pairs=len(pair_list), train_pairs=len(train_pairs),
        heldout_pairs=len(held), steps=len(plan), resumed_at=start, seconds=round(seconds, 3),
        pairs_per_second=round(done / seconds, 3) if seconds else 0.0, trainable_params=trainer.trainable_params,
        total_params=sum(p.numel() for p in net.parameters()), device=str(emb.device), precision=precision_used,
        loss=trainer.loss_name, data_sha256=data_sha, base=base_identity, settings=settings, forced=False,
    )
    worse = float(after["score"]) < float(before["score"])
    if worse and not force:
        raise WorseModelError(
            f"the fine-tuned model scores {after['score']:.3f} on the {len(held)} held-out pairs, worse than the base "
            f"model's {before['score']:.3f}: not saved. Try a lower learning rate or fewer epochs; or keep it anyway "
            f"with resume=True, force=True (--resume --force: the training checkpoint in {out / CHECKPOINT_DIR} is kept)",
            report,
        )

    weights = _save_model(emb, base, out, held)
    dump_pairs(held, out / HELDOUT_JSONL)
    from ..retrievers.manifest import weights_record

    record = {
        "format": 1,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "mm_rag_plugin": __version__,
        "model": {"weights": weights_record(weights)},
        "base": base_identity,
        "data": {"sha256": data_sha, "pairs": len(pair_list), "train": len(train_pairs), "heldout": len(held),
                 "heldout_file": HELDOUT_JSONL, "origins": _origins(pair_list)},
        "settings": {**settings, "lr": trainer.optimizer.param_groups[0]["initial_lr"], "loss": trainer.loss_name,
                     "precision": precision_used, "base_precision": base.precision, "device": str(emb.device)},
        "steps": len(plan),
        "trainable_params": trainer.trainable_params,
        "before": before,
        "after": after,
        "forced": bool(worse and force),
    }
    _write_json(out / FINETUNE_JSON, record)
    shutil.rmtree(out / CHECKPOINT_DIR, ignore_errors=True)
    return _replace(report, saved=True, forced=bool(worse and force),
                    settings=record["settings"])


def _origins(pairs: Sequence[Pair]) -> dict[str, int]:
    out: dict[str, int] = {}
    for p in pairs:
        out[p.origin] = out.get(p.origin, 0) + 1
    return out


def _replace(report: FinetuneReport, **changes: Any) -> FinetuneReport:
    return FinetuneReport(**{**asdict(report), **changes})


def _resume_mismatch(state: dict[str, Any], settings: dict[str, Any], data_sha: str, base: dict[str, Any]) -> str | None:
    if state.get("data_sha256") != data_sha:
        return "the pairs differ from those it was trained on"
    old = json.loads(state.get("settings") or "{}")
    changed = [k for k in _RESUME_KEYS if old.get(k) != settings.get(k)]
    if changed:
        return "settings changed: " + ", ".join(f"{k} {old.get(k)!r} -> {settings.get(k)!r}" for k in changed)
    from ..retrievers.manifest import same_model

    if not same_model(json.loads(state.get("base") or "{}"), base):
        return "the base model differs"
    return None


def iter_report_lines(report: FinetuneReport) -> Iterator[str]:
    """The before/after table printed by ``mm-rag finetune``."""
    yield f"held-out pairs: {report.heldout_pairs} (training pairs: {report.train_pairs})"
    yield f"{'':<22}{'before':>8}{'after':>8}"
    for direction, label in (("text_to_image", "text->image"), ("image_to_text", "image->text")):
        for k in KS:
            key = f"recall@{k}"
            yield f"{label + ' ' + key:<22}{report.before[direction][key]:>8.3f}{report.after[direction][key]:>8.3f}"
    yield f"{'score (mean recall)':<22}{report.before['score']:>8.3f}{report.after['score']:>8.3f}"
