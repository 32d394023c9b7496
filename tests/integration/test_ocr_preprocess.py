"""Preprocessing before OCR (``TesseractOCR(preprocess=True)``, the default): a receipt photographed
in perspective on a table is cut out and rectified, faded print is normalised, a 3 degree skew is
straightened; and the text gate finds the components of an image once, however often it measures."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

import mm_rag_plugin.readers.ocr as ocr_module
from mm_rag_plugin.readers import TesseractOCR

pytestmark = pytest.mark.slow

FONT = "/usr/share/fonts/truetype/dejavu/DejaVuSansMono.ttf"
WORDS = ["TOTAL", "CASH", "CHANGE", "RECEIPT", "CASHIER", "SELANGOR", "KAJANG", "TAMAN", "JALAN", "MUTIARA", "BINTANG", "HARDWARE", "ENTERPRISE", "TRADING", "BAKERY", "RESTORAN", "INDAH", "GEMILANG", "PERMATA", "SENTOSA"]


def _page(ink: int = 0, paper: int = 255) -> Image.Image:
    img = Image.new("L", (520, 640), paper)
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(FONT, 18) if Path(FONT).is_file() else ImageFont.load_default(18)
    for i in range(0, len(WORDS), 2):
        draw.text((30, 30 + i * 28), f"{WORDS[i]} {WORDS[i + 1]} {i * 7 + 3}.50", font=font, fill=ink)
    return img


def _read(words: set[str], text: str) -> float:
    return len(words & set(re.findall(r"[A-Z]{3,}", text.upper()))) / len(words)


def test_a_receipt_photographed_in_perspective_reads_after_rectification(tmp_path) -> None:
    from benchmarks.receipts import make_receipts, render

    r = make_receipts(1, seed=0)[0]
    img = Image.open(render(r, tmp_path / "photo.jpg", 0, camera=True))
    img.load()
    known = {w for line in r.lines for w in re.findall(r"[A-Z]{3,}", line.replace("#B ", "").replace("#T ", ""))}
    plain = TesseractOCR(preprocess=False).recognize(img)
    fixed = TesseractOCR().recognize(img)
    assert plain is not None and fixed is not None
    assert "perspective" in fixed.preprocessed
    before, after = _read(known, plain.text), _read(known, fixed.text)
    assert after >= 0.8 and after >= before + 0.4, (before, after)
    # boxes stay in the photo's pixels, on the receipt (not on the table around it)
    xs = [v for w in fixed.words for v in (w[2], w[4])]
    assert 0.1 * img.width < min(xs) and max(xs) < 0.9 * img.width


def test_faded_thermal_print_is_normalised() -> None:
    rng = np.random.default_rng(0)
    a = np.asarray(_page(ink=200, paper=225), dtype=np.float32)
    a *= np.linspace(0.75, 1.0, a.shape[1])[None, :]  # light falling off across the slip
    a += rng.normal(0, 5, a.shape)
    img = Image.fromarray(np.clip(a, 0, 255).astype(np.uint8))
    plain = TesseractOCR(preprocess=False).recognize(img)
    fixed = TesseractOCR().recognize(img)
    assert plain is not None and fixed is not None
    assert "contrast" in fixed.preprocessed
    assert _read(set(WORDS), plain.text) < 0.3 and _read(set(WORDS), fixed.text) >= 0.9


def test_a_three_degree_skew_is_straightened_and_boxes_map_back() -> None:
    img = _page().rotate(3, resample=Image.Resampling.BICUBIC, expand=True, fillcolor=255)
    assert ocr_module._skew(ocr_module._Marks(img)) == pytest.approx(3.0, abs=0.3)
    plain = TesseractOCR(preprocess=False).recognize(img)
    fixed = TesseractOCR().recognize(img)
    assert plain is not None and fixed is not None
    assert fixed.preprocessed[:1] == ("deskew",)
    assert _read(set(WORDS), fixed.text) >= max(0.95, _read(set(WORDS), plain.text))
    assert (fixed.confidence or 0) > (plain.confidence or 0)
    # the first word, drawn at (30, 30) before the turn, is found there in the turned image's pixels
    first = next(w for w in fixed.words if w[0] == "TOTAL")
    plain_first = next(w for w in plain.words if w[0] == "TOTAL")
    assert all(abs(a - b) <= 6 for a, b in zip(first[2:], plain_first[2:], strict=True)), (first, plain_first)


def test_an_upright_clean_page_is_read_as_it_is() -> None:
    result = TesseractOCR().recognize(_page())
    assert result is not None and result.preprocessed == ()
    assert _read(set(WORDS), result.text) == 1.0


def test_the_gate_finds_the_components_once(monkeypatch) -> None:
    """An image without text is measured three times (normal, small-image and big-letter demands):
    the components of its global and of its local threshold are found once each."""
    calls: list[tuple[int, ...]] = []
    real = ocr_module._components

    def counting(ink: np.ndarray) -> np.ndarray:
        calls.append(ink.shape)
        return real(ink)

    monkeypatch.setattr(ocr_module, "_components", counting)
    rng = np.random.default_rng(1)
    noise = Image.fromarray((rng.random((80, 120)) * 255).astype(np.uint8)).resize((600, 250))
    ocr = TesseractOCR(preprocess=False)
    result = ocr.recognize(noise)
    assert result is not None and result.skipped == ocr_module.NO_TEXT
    assert calls == [(250, 600), (250, 600)]  # Otsu ink, Sauvola ink; was six (two per measure)
    calls.clear()
    TesseractOCR().recognize(noise)
    assert sum(shape == (250, 600) for shape in calls) == 2  # preprocessing adds only a coarse look
