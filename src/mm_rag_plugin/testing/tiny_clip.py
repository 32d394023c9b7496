"""A tiny open_clip model, trained in seconds on synthetic "coloured shape" image/caption pairs."""

from __future__ import annotations

import json
import logging
import random
import time
from pathlib import Path

from PIL import Image, ImageDraw

from .._optional import require

logger = logging.getLogger(__name__)

SHAPE_COLORS: dict[str, tuple[int, int, int]] = {
    "red": (220, 30, 30),
    "green": (30, 170, 50),
    "blue": (30, 60, 220),
    "yellow": (235, 210, 30),
}
SHAPE_KINDS = ("circle", "square", "triangle")

#: open_clip model config: a small ResNet image tower (learns shapes in seconds) and a two-layer text
#: transformer, in a 64-d joint space.
TINY_CLIP_CONFIG: dict = {
    "embed_dim": 64,
    "vision_cfg": {"image_size": 32, "layers": [1, 1, 1, 1], "width": 16},
    "text_cfg": {"context_length": 32, "vocab_size": 49408, "width": 64, "heads": 2, "layers": 2},
}


def draw_shape(color: str, kind: str, *, size: int = 64, rng: random.Random | None = None) -> Image.Image:
    """An RGB image of one coloured shape on a light background, randomly placed and sized."""
    rng = rng or random.Random(0)
    bg = tuple(rng.randint(225, 255) for _ in range(3))
    img = Image.new("RGB", (size, size), bg)
    d = ImageDraw.Draw(img)
    r = rng.uniform(0.22, 0.38) * size
    cx, cy = rng.uniform(r, size - r), rng.uniform(r, size - r)
    fill = tuple(max(0, min(255, c + rng.randint(-20, 20))) for c in SHAPE_COLORS[color])
    if kind == "circle":
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif kind == "square":
        d.rectangle([cx - r, cy - r, cx + r, cy + r], fill=fill)
    elif kind == "triangle":
        d.polygon([(cx, cy - r), (cx - r, cy + r), (cx + r, cy + r)], fill=fill)
    else:
        raise ValueError(f"unknown shape {kind!r}; expected one of {SHAPE_KINDS}")
    return img


def make_tiny_clip(folder: str | Path, *, train_steps: int = 200, seed: int = 0) -> Path:
    """Write a tiny, briefly trained open_clip model to *folder* and return the folder.

    Load it with ``OpenCLIPEmbedder(f"local-dir:{folder}")``. Training runs ``train_steps`` steps of
    contrastive learning on captions like ``"a red circle"`` (about 10 s on two CPU cores);
    ``train_steps=0`` leaves random weights.
    """
    torch = require("torch", extra="clip")
    open_clip = require("open_clip", extra="clip", package="open_clip_torch")
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    rng = random.Random(seed)

    model = open_clip.CLIP(**TINY_CLIP_CONFIG)
    preprocess_cfg = {"size": TINY_CLIP_CONFIG["vision_cfg"]["image_size"]}
    if train_steps:
        started = time.perf_counter()
        # one thread: the model is too small to gain from more, and on a busy machine PyTorch's
        # worker threads spin waiting for each other (measured with two busy processes per core:
        # 143 s on one thread, over 600 s on two)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            _train(model, open_clip, torch, rng, train_steps)
        finally:
            torch.set_num_threads(threads)
        logger.info("trained tiny clip for %d steps in %.1fs", train_steps, time.perf_counter() - started)
    model.eval()
    (folder / "open_clip_config.json").write_text(
        json.dumps({"model_cfg": TINY_CLIP_CONFIG, "preprocess_cfg": preprocess_cfg}, indent=2)
    )
    torch.save(model.state_dict(), folder / "open_clip_pytorch_model.bin")
    return folder


def _train(model, open_clip, torch, rng: random.Random, steps: int) -> None:
    from torchvision import transforms as T

    size = TINY_CLIP_CONFIG["vision_cfg"]["image_size"]
    to_tensor = T.Compose(
        [T.Resize(size), T.ToTensor(), T.Normalize(open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD)]
    )
    tokenizer = open_clip.get_tokenizer("ViT-B-32", context_length=TINY_CLIP_CONFIG["text_cfg"]["context_length"])
    classes = [(c, k) for c in SHAPE_COLORS for k in SHAPE_KINDS]
    templates = ("a {} {}", "a photo of a {} {}", "{} {}", "a picture of a {} {}")
    per_class, n = 64, len(classes)
    pool = torch.stack([to_tensor(draw_shape(c, k, rng=rng)) for c, k in classes for _ in range(per_class)])
    pool = pool.view(n, per_class, *pool.shape[1:])
    captions = tokenizer([t.format(c, k) for c, k in classes for t in templates]).view(n, len(templates), -1)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps, pct_start=0.1)
    gen = torch.Generator().manual_seed(rng.randrange(2**31))
    model.train()
    for _ in range(steps):
        cls = torch.arange(n).repeat_interleave(2)  # two pairs per class and step
        images = pool[cls, torch.randint(0, per_class, (len(cls),), generator=gen)]
        texts = captions[cls, torch.randint(0, len(templates), (len(cls),), generator=gen)]
        img = torch.nn.functional.normalize(model.encode_image(images), dim=-1)
        txt = torch.nn.functional.normalize(model.encode_text(texts), dim=-1)
        logits = model.logit_scale.exp() * img @ txt.T
        # pairs of the same class are all positives (soft targets), both directions
        same = (cls[:, None] == cls[None, :]).float()
        target = same / same.sum(1, keepdim=True)
        loss = (-(target * logits.log_softmax(1)).sum(1).mean() - (target * logits.T.log_softmax(1)).sum(1).mean()) / 2
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
