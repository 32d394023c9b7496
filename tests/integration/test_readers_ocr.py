"""OCR accuracy (character error rate) with the real Tesseract on ../shared/data/ocr.

CER = Levenshtein(ocr, truth) / len(truth) after collapsing whitespace (layout is not scored).
Thresholds, from what Tesseract 5 (LSTM, eng) is known to reach and what we measured here:
clean renders and screenshots must be near perfect (<= 2%); the multilingual ``eurotext`` page
<= 5% (accented letters); the bank-statement table <= 12% (column layout, thin digits); the two
UNLV 300-dpi magazine scans <= 15% (their truth marks unreadable glyphs with ``~`` and the
multi-column reading order differs). The aggregate over all English images must stay <= 8%.
Measured at writing: 0% clean, 2.2% eurotext, 6.4% bill, 9.4% / 7.8% UNLV, aggregate 6.7%.
"""

from __future__ import annotations

import json
import re
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from mm_rag_plugin._images import load_image
from mm_rag_plugin.readers import ImageReader, TesseractOCR

pytestmark = pytest.mark.slow


def levenshtein(a: str, b: str) -> int:
    """Edit distance, one numpy row at a time (insertions folded in with a running minimum)."""
    if not a or not b:
        return len(a) + len(b)
    bb = np.frombuffer(b.encode("utf-32-le"), dtype=np.uint32)
    idx = np.arange(len(b) + 1)
    prev = idx.copy()
    for i, ch in enumerate(a, 1):
        cur = np.empty_like(prev)
        cur[0] = i
        cur[1:] = np.minimum(prev[:-1] + (bb != ord(ch)), prev[1:] + 1)
        prev = np.minimum.accumulate(cur - idx) + idx
    return int(prev[-1])


def test_levenshtein() -> None:
    assert levenshtein("kitten", "sitting") == 3
    assert levenshtein("", "abc") == 3
    assert levenshtein("flaw", "lawn") == 2


def _norm(s: str) -> str:
    return re.sub(r"\s+", " ", s).strip()


def _limit(path: str) -> float:
    if "8071" in path or "8087" in path:
        return 0.15
    if "bill" in path:
        return 0.12
    if "eurotext" in path:
        return 0.05
    return 0.02


def test_character_error_rate(shared_data: Path) -> None:
    ocr = TesseractOCR("eng")
    rows = [json.loads(x) for x in (shared_data / "index.jsonl").read_text().splitlines()]
    rows = [r for r in rows if r["set"] == "ocr" and "chinese" not in r["path"]]  # chi_tra not installed
    assert len(rows) == 19

    def run(r: dict) -> tuple[str, int, int]:
        res = ocr.recognize(load_image(shared_data / r["path"]).image, source=r["path"])
        got, truth = _norm(res.text if res else ""), _norm(r["ground_truth_text"])
        if "cosmic" in r["path"]:  # index.jsonl: treat O and 0 as equal
            got, truth = got.replace("0", "O"), truth.replace("0", "O")
        return r["path"], levenshtein(got, truth), len(truth)

    with ThreadPoolExecutor(2) as pool:  # tesseract runs in subprocesses: threads overlap them
        results = list(pool.map(run, sorted(rows, key=lambda r: -r.get("width", 0) * r.get("height", 0))))
    report = {p: round(e / n, 4) for p, e, n in results}
    print("CER per image:", json.dumps(report, indent=1))
    total = sum(e for _, e, _ in results) / sum(n for _, _, n in results)
    print(f"aggregate CER: {total:.4f}")
    bad = {p: c for p, c in report.items() if c > _limit(p)}
    assert not bad, bad
    assert total <= 0.08


def test_image_reader_ocr_metadata(shared_data: Path) -> None:
    res = ImageReader().read(shared_data / "ocr/tesseract_js/testocr.png")
    (img,) = res.images
    assert "quick brown dog" in img.ocr_text and "quick brown dog" in img.search_text
    assert img.ocr_confidence is not None and img.ocr_confidence > 80
    words = img.metadata["ocr_words"]
    assert any(w[0] == "quick" for w in words)
    x0, y0, x1, y1 = words[0][2:]
    assert 0 <= x0 < x1 <= img.width and 0 <= y0 < y1 <= img.height
    assert img.image_path == str(shared_data / "ocr/tesseract_js/testocr.png")


def test_rotated_page_is_read(shared_data: Path) -> None:
    res = TesseractOCR().recognize(load_image(shared_data / "ocr/tesseract/phototest-rotated-180.png").image)
    assert res is not None and "quick brown dog" in res.text and res.rotation == 180


def test_too_small_and_disabled(shared_data: Path, tmp_path: Path) -> None:
    from PIL import Image

    assert TesseractOCR(min_side=16).recognize(Image.new("RGB", (10, 40), "white")) is None
    res = ImageReader(ocr=False).read(shared_data / "ocr/tesseract_js/simple.png")
    assert res.images[0].ocr_text == "" and res.images[0].ocr_confidence is None


def test_missing_language_says_how_to_install() -> None:
    from mm_rag_plugin.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="apt-get install tesseract-ocr-klingon"):
        TesseractOCR("eng+klingon")
