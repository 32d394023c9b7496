"""Fine-tuning's held-out scores rank each image once, however many captions it has."""

from __future__ import annotations

import numpy as np
from PIL import Image

from mm_rag_plugin.finetune import Pair, evaluate


class _Table:
    """Fixed vectors: image i is axis i; a caption of image i points mostly at image i+1."""

    def __init__(self, images: list[str], n: int) -> None:
        self.index = {path: i for i, path in enumerate(images)}
        self.n = n

    def embed_images(self, paths):
        return np.eye(self.n, dtype=np.float32)[[self.index[p] for p in paths]]

    def embed_texts(self, texts):
        out = np.zeros((len(texts), self.n), np.float32)
        for row, text in zip(out, texts, strict=True):
            i = int(text.split()[1])
            row[(i + 1) % self.n], row[i] = 0.9, 0.5
        return out / np.linalg.norm(out, axis=1, keepdims=True)


def test_an_image_with_five_captions_is_one_candidate(tmp_path) -> None:
    images = []
    for i in range(4):
        path = tmp_path / f"{i}.png"
        Image.new("RGB", (8, 8), (60 * i, 0, 0)).save(path)
        images.append(str(path))
    pairs = [Pair(images[i], f"image {i} caption {c}") for i in range(4) for c in range(5)]
    scores = evaluate(_Table(images, 4), pairs, ks=(1, 2, 5))
    # every caption ranks the next image first and its own second: one image ahead, not five pairs
    assert scores["text_to_image"] == {"recall@1": 0.0, "recall@2": 1.0, "recall@5": 1.0}
    # the five captions of the previous image are five different texts ahead of an image's own
    assert scores["image_to_text"]["recall@5"] == 0.0
