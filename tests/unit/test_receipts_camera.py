"""The photographed receipts of the OCR benchmark (``benchmarks/receipts.py`` ``photograph``) are
deterministic by seed, and are photographs: the receipt lies inside a larger, darker background."""

from __future__ import annotations

import hashlib

import numpy as np
from benchmarks.receipts import make_receipts, render
from PIL import Image


def _digest(path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_same_seed_same_pixels_other_seed_other_pixels(tmp_path):
    r = make_receipts(2, seed=3)[0]
    a = render(r, tmp_path / "a.jpg", 7, camera=True)
    params_a = {k: v for k, v in r.render.items() if k != "file"}
    b = render(r, tmp_path / "b.jpg", 7, camera=True)
    assert _digest(a) == _digest(b) and {k: v for k, v in r.render.items() if k != "file"} == params_a
    c = render(r, tmp_path / "c.jpg", 8, camera=True)
    assert _digest(a) != _digest(c) and {k: v for k, v in r.render.items() if k != "file"} != params_a


def test_the_receipt_is_photographed_on_a_background(tmp_path):
    r = make_receipts(1, seed=0)[0]
    clean = Image.open(render(r, tmp_path / "clean.jpg", 0))
    photo = Image.open(render(r, tmp_path / "photo.jpg", 0, camera=True))
    assert r.render["camera"] is True and r.render["jpeg_quality"] < 90
    assert photo.width > clean.width and photo.height > clean.height
    g = np.asarray(photo.convert("L"), dtype=np.float32)
    h, w = g.shape
    border = np.concatenate([g[: h // 20].ravel(), g[-h // 20 :].ravel()])
    centre = g[h // 3 : 2 * h // 3, w // 2 - w // 20 : w // 2 + w // 20]
    assert np.median(centre) - np.median(border) > 40  # paper brighter than the table
    # the clean rendering is unchanged by the option (same layout drawn)
    again = Image.open(render(r, tmp_path / "clean2.jpg", 0))
    assert np.array_equal(np.asarray(clean), np.asarray(again))
