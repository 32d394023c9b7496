"""The OCR text gate: Tesseract runs only on images where lines of glyphs are measured.

On the images of the 13 shared real PDFs the gate let 133 of 437 images through; Tesseract found
five or more words on two of the 304 it skipped (a map title and a chart's axis labels), and
``ocr_gate=False`` / ``mm-rag ingest --ocr-all`` reads those too.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from mm_rag_plugin import MultiModalRAG
from mm_rag_plugin.cli import main
from mm_rag_plugin.readers import TesseractOCR
from mm_rag_plugin.readers.ocr import NO_TEXT

pytestmark = pytest.mark.slow


def _open(path: Path):
    from PIL import Image

    img = Image.open(path)
    img.load()
    return img


def _shared_images(shared_data: Path) -> tuple[list[Path], list[Path]]:
    """(images with printed text, photos without) from the shared data's index."""
    text, photos = [], []
    for line in (shared_data / "index.jsonl").read_text().splitlines():
        row = json.loads(line)
        if row.get("set") == "ocr" and row.get("ground_truth_text", "").strip():
            text.append(shared_data / row["path"])
    for line in (shared_data / "clip_skimage" / "index.jsonl").read_text().splitlines():
        row = json.loads(line)
        path = shared_data / "clip_skimage" / "images" / Path(row["path"]).name
        (text if "page of text" in " ".join(row["captions"]) else photos).append(path)
    return text, photos


def test_the_gate_reads_every_shared_image_with_text_and_skips_the_photos(shared_data: Path) -> None:
    text, photos = _shared_images(shared_data)
    assert len(text) >= 20 and len(photos) == 7
    ocr = TesseractOCR()
    for path in text:
        res = ocr.recognize(_open(path), source=path.name)
        assert res is not None and res.skipped is None, f"{path.name}: the gate skipped an image with text"
        assert res.text.strip(), path.name
    for path in photos:
        res = ocr.recognize(_open(path), source=path.name)
        assert res is not None and res.skipped == NO_TEXT, f"{path.name}: a photo without text was OCR'd"
        assert res.text == "" and res.confidence is None and res.words == ()


def test_without_the_gate_every_image_is_read(shared_data: Path) -> None:
    photo = shared_data / "clip_skimage" / "images" / "chelsea.png"
    res = TesseractOCR(gate=False).recognize(_open(photo))
    assert res is not None and res.skipped is None


def test_ingest_reports_the_gates_decisions(shared_data: Path, tmp_path: Path) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(shared_data / "ocr" / "tesseract_js" / "testocr.png", docs)
    shutil.copy(shared_data / "clip_skimage" / "images" / "coffee.png", docs)
    shutil.copy(shared_data / "clip_skimage" / "images" / "horse.png", docs)
    with MultiModalRAG(tmp_path / "ix", keyword_only=True) as rag:
        summary = rag.ingest(docs)
        assert (summary.images, summary.ocr_read, summary.ocr_skipped) == (3, 1, 2)
        assert rag.search("quick brown dog jumped", k=1)[0].chunk.source.endswith("testocr.png")
        coffee = [h for h in rag.search("coffee", k=5) if h.chunk.source.endswith("coffee.png")]
        assert not coffee  # no OCR text: a keyword search cannot find it
    with MultiModalRAG(tmp_path / "all", keyword_only=True) as rag:
        summary = rag.ingest(docs, ocr_gate=False)
        assert (summary.ocr_read, summary.ocr_skipped) == (3, 0)


def test_cli_prints_the_gates_decisions_and_refuses_contradictory_flags(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    docs = tmp_path / "docs"
    docs.mkdir()
    shutil.copy(shared_data / "ocr" / "tesseract_js" / "simple.png", docs)
    shutil.copy(shared_data / "clip_skimage" / "images" / "rocket.jpg", docs)
    assert main(["ingest", str(docs), "--index", str(tmp_path / "ix"), "--keyword-only", "-q"]) == 0
    out = capsys.readouterr().out
    assert "images OCR'd" in out and "no text, no OCR" in out
    rows = {line.strip().rsplit(" ", 1)[0].strip(): line.rsplit(" ", 1)[-1] for line in out.splitlines()[1:]}
    assert rows["images OCR'd"] == "1" and rows["no text, no OCR"] == "1", out
    with pytest.raises(SystemExit) as exc:
        main(["ingest", str(docs), "--index", str(tmp_path / "ix2"), "--no-ocr", "--ocr-all"])
    assert exc.value.code == 2
    assert "--no-ocr and --ocr-all" in capsys.readouterr().err
    assert not (tmp_path / "ix2").exists()


def _count_tesseract(monkeypatch: pytest.MonkeyPatch) -> dict[str, int]:
    """Count the real Tesseract runs (the calls still run), whichever engine runs them."""
    from mm_rag_plugin.readers import ocr as ocr_module

    counts = {"read": 0, "rotation": 0}
    for engine in (ocr_module._LibraryEngine, ocr_module._ProgramEngine):
        for name in counts:
            real = getattr(engine, name)

            def spy(*args: object, _real=real, _name=name, **kwargs: object) -> object:
                counts[_name] += 1
                return _real(*args, **kwargs)

            monkeypatch.setattr(engine, name, spy)
    return counts


def test_an_image_with_a_few_marks_read_as_nothing_costs_one_tesseract_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Six small dots on a line pass the gate (a small image holds a few glyphs at most) and read
    as nothing: no second reading at the image's own size and no orientation detection, which
    need a picture full of glyphs to find anything."""
    from PIL import Image, ImageDraw

    img = Image.new("L", (160, 60), 255)
    draw = ImageDraw.Draw(img)
    for i in range(6):
        draw.ellipse((20 + 12 * i, 28, 25 + 12 * i, 33), fill=0)
    counts = _count_tesseract(monkeypatch)
    res = TesseractOCR().recognize(img)
    assert res is not None and res.skipped is None and res.text_height is not None  # the gate let it through
    assert res.scale > 1  # small glyphs: enlarged for the one reading
    assert counts == {"read": 1, "rotation": 0}


def test_the_images_of_one_document_are_ocrd_two_at_a_time(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A document's images are read by two Tesseract threads at once (the library releases the GIL), and each image's text
    lands on its own chunk, in reading order."""
    import threading

    from PIL import Image, ImageDraw

    from mm_rag_plugin.readers import MarkdownReader
    from mm_rag_plugin.readers.ocr import _LibraryEngine

    words = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]
    lines = []
    for i, word in enumerate(words):
        img = Image.new("L", (420, 120), 255)
        ImageDraw.Draw(img).text((20, 40), f"{word} {word} {i}", fill=0, font_size=36)
        img.save(tmp_path / f"{i}.png")
        lines.append(f"![figure {i}]({i}.png)\n")
    (tmp_path / "doc.md").write_text("# Figures\n\n" + "\n".join(lines))
    lock, running, most = threading.Lock(), [0], [0]
    real = _LibraryEngine.read

    def spy(*args: object, **kwargs: object) -> object:
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        try:
            return real(*args, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(_LibraryEngine, "read", spy)
    res = MarkdownReader(ocr=True, blob_dir=str(tmp_path / "blobs")).read(tmp_path / "doc.md")
    images = [c for c in res.chunks if c.kind == "image"]
    assert [c.ocr_text.split()[0].lower() for c in images] == words
    assert most[0] == 2
