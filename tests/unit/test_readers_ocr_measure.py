"""The numpy parts of the OCR preprocessing: connected components, Sauvola, box mapping."""

from __future__ import annotations

from collections import deque

import numpy as np
import pytest

from mm_rag_plugin.readers.ocr import _components, _sauvola, _unrotate, measure_text


def flood_fill_boxes(ink: np.ndarray) -> list[tuple[int, ...]]:
    """Reference: 8-connected components by breadth-first search."""
    h, w = ink.shape
    seen = np.zeros_like(ink, dtype=bool)
    boxes = []
    for y, x in zip(*np.nonzero(ink), strict=True):
        if seen[y, x]:
            continue
        seen[y, x] = True
        queue = deque([(y, x)])
        y0, x0, y1, x1, n = y, x, y, x, 0
        while queue:
            cy, cx = queue.popleft()
            n += 1
            y0, x0, y1, x1 = min(y0, cy), min(x0, cx), max(y1, cy), max(x1, cx)
            for dy in (-1, 0, 1):
                for dx in (-1, 0, 1):
                    ny, nx = cy + dy, cx + dx
                    if 0 <= ny < h and 0 <= nx < w and ink[ny, nx] and not seen[ny, nx]:
                        seen[ny, nx] = True
                        queue.append((ny, nx))
        boxes.append((int(y0), int(x0), int(y1) + 1, int(x1) + 1, n))
    return sorted(boxes)


@pytest.mark.parametrize("density", [0.05, 0.3, 0.55, 0.8])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_components_match_flood_fill(density: float, seed: int) -> None:
    ink = np.random.default_rng(seed).random((37, 53)) < density
    got = sorted(tuple(int(v) for v in row) for row in _components(ink))
    assert got == flood_fill_boxes(ink)


def test_components_edge_cases() -> None:
    assert _components(np.zeros((5, 7), dtype=bool)).shape == (0, 5)
    full = _components(np.ones((4, 6), dtype=bool))
    assert full.tolist() == [[0, 0, 4, 6, 24]]
    diagonal = _components(np.eye(5, dtype=bool))  # 8-connected: one component
    assert diagonal.tolist() == [[0, 0, 5, 5, 5]]


def test_sauvola_finds_dark_text_in_a_shadow() -> None:
    """A stripe of dark marks on a dark half of the image: a global threshold cannot separate
    both halves' ink from paper, the local one can."""
    a = np.full((120, 200), 230, dtype=np.uint8)
    a[:, 100:] = 90  # shadow
    a[50:60, 20:80:4] = 20  # marks on paper
    a[50:60, 120:180:4] = 10  # marks in the shadow
    ink = _sauvola(a)
    assert ink[50:60, 20:80:4].all() and ink[50:60, 120:180:4].all()
    # paper and shadow without marks stay background (but at the shadow's edge, as Sauvola does)
    assert not ink[:40, :85].any() and not ink[:40, 115:].any()


@pytest.mark.parametrize("rotation", [0, 90, 180, 270])
def test_unrotate_maps_boxes_back(rotation: int) -> None:
    from PIL import Image

    a = np.zeros((40, 70), dtype=np.uint8)
    a[5:12, 30:52] = 255  # rows 5..11, columns 30..51: box (30, 5, 52, 12)
    turned = np.asarray(Image.fromarray(a).rotate(-rotation, expand=True))
    ys, xs = np.nonzero(turned)
    box = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
    assert _unrotate(box, rotation, (70, 40)) == (30, 5, 52, 12)


def test_measure_text_blank_and_noise() -> None:
    from PIL import Image

    assert measure_text(Image.new("L", (300, 200), 255)) is None
    noise = (np.random.default_rng(0).random((200, 300)) * 255).astype(np.uint8)
    assert measure_text(Image.fromarray(noise)) is None
