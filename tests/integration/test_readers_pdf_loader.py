"""PDF reader and directory loader on the real and malformed files of ../shared/data (real
PDFium, real Tesseract, real worker processes)."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from mm_rag_plugin.errors import InvalidInputError
from mm_rag_plugin.readers import DocumentLoader, PdfReader, load_documents
from mm_rag_plugin.types import FileError, ImageChunk, ReadResult

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def real_pdfs(shared_data: Path) -> dict[str, dict]:
    rows = [json.loads(x) for x in (shared_data / "index.jsonl").read_text().splitlines()]
    return {r["path"]: r for r in rows if r["set"] == "pdfs" and r["category"] == "text_figures"}


@pytest.fixture(scope="module")
def real_result(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> ReadResult:
    return load_documents(
        shared_data / "pdfs/text_figures",
        ocr=False,
        blob_dir=str(tmp_path_factory.mktemp("blobs")),
        show_progress=False,
        workers=2,
    )


def test_all_real_pdfs_yield_text_and_figures(
    real_result: ReadResult, real_pdfs: dict, shared_data: Path
) -> None:
    assert not real_result.errors, real_result.errors
    assert len(real_pdfs) == 13
    for rel, row in real_pdfs.items():
        src = str((shared_data / rel).absolute())
        texts = [c for c in real_result.texts if c.source == src]
        images = [c for c in real_result.images if c.source == src]
        chars = sum(len(t.text) for t in texts)
        assert chars >= 0.8 * min(row["pypdf_text_chars_first30p"], 30_000), rel
        if row["pages"] <= 30:  # pypdf counted images on the first 30 pages only
            assert len(images) >= row["pypdf_image_count_first30p"], (rel, len(images))
        else:
            assert images, rel
        assert {t.page for t in texts} <= set(range(1, row["pages"] + 1))
    # the first text of each document is found (ligatures aside)
    first = next(t for t in real_result.texts if t.source.endswith("ppsf__google-doc-document.pdf"))
    assert first.text.startswith("Example document")


def test_pdf_chunks_have_pages_boxes_and_blob_images(real_result: ReadResult) -> None:
    doc = [c for c in real_result.chunks if c.source.endswith("unst__embedded-images.pdf")]
    imgs = [c for c in doc if isinstance(c, ImageChunk)]
    assert len(imgs) == 3
    for c in doc:
        assert c.page == 1
        x0, y0, x1, y1 = c.bbox
        assert 0 <= x0 < x1 <= 612 and 0 <= y0 < y1 <= 792  # PDF points, origin top-left
    for img in imgs:
        assert Path(img.image_path).name.startswith(img.content_hash)
        assert img.mime_type == "image/jpeg" and img.width >= 32
    assert "\r" not in "".join(c.text for c in doc) and "\ufffe" not in "".join(c.text for c in doc)


def test_duplicate_images_are_marked(real_result: ReadResult) -> None:
    chelsea = [c for c in real_result.images if c.source.endswith("plumber__chelsea_pdta.pdf")]
    dups = [c for c in chelsea if "duplicate_of" in c.metadata]
    assert dups, "the Chelsea report repeats its logos"
    by_id = {c.id: c for c in real_result.images}
    for d in dups:
        assert by_id[d.metadata["duplicate_of"]].content_hash == d.content_hash


def test_scanned_pdf_is_ocrd_and_ids_are_stable(shared_data: Path, tmp_path: Path) -> None:
    img = Image.open(shared_data / "ocr/tesseract/phototest.tif").convert("RGB")
    img.save(tmp_path / "scan.pdf", resolution=200.0)  # an image-only page: no text layer
    reader = PdfReader(blob_dir=str(tmp_path / "blobs"))
    res = reader.read(tmp_path / "scan.pdf")
    ocr_text = [t for t in res.texts if t.metadata.get("ocr")]
    assert ocr_text and "quick brown dog" in ocr_text[0].text
    assert ocr_text[0].metadata["ocr_confidence"] > 80
    assert res.images and res.images[0].ocr_text == ""  # the full-page scan is not OCR'd twice
    assert [c.id for c in reader.read(tmp_path / "scan.pdf").chunks] == [c.id for c in res.chunks]


def test_encrypted_pdf_is_a_clear_error(shared_data: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"unst__password\.pdf.*encrypted.*password="):
        PdfReader(ocr=False).read(shared_data / "pdfs/malformed/unst__password.pdf")


def test_malformed_files_through_the_loader(shared_data: Path, tmp_path: Path) -> None:
    good_pdf = shared_data / "pdfs/text_figures/ppsf__google-doc-document.pdf"
    good_img = shared_data / "clip_skimage/images/coffee.png"
    mal_pdfs = sorted((shared_data / "pdfs/malformed").iterdir())
    mal_imgs = sorted((shared_data / "malformed_images/files").iterdir())
    loader = DocumentLoader(
        [good_pdf, shared_data / "pdfs/malformed", good_img, shared_data / "malformed_images/files"],
        ocr=False,
        blob_dir=str(tmp_path / "blobs"),
        timeout=60,
        show_progress=False,
    )
    outcome = dict(loader.lazy_load())
    assert list(outcome) == [good_pdf, *mal_pdfs, good_img, *mal_imgs]  # input order, nothing lost
    for path, res in outcome.items():
        if isinstance(res, FileError):
            assert res.source == str(path.absolute()) and len(res.error) > 10, res
        else:
            assert res.chunks, path
    assert isinstance(outcome[good_pdf], ReadResult) and outcome[good_pdf].texts
    assert isinstance(outcome[good_img], ReadResult) and outcome[good_img].images
    err = {p.name: r for p, r in outcome.items() if isinstance(r, FileError)}
    assert "encrypted" in err["unst__password.pdf"].error
    assert "empty" in err["plumber__empty.pdf"].error
    for bomb in ("decompression_bomb.gif", "decompression_bomb.ico", "bmp_b_reallybig.bmp"):
        assert "decompression bomb" in err[bomb].error, bomb
    assert "truncated" in err["truncated_jpeg.jpg"].error
    assert len(err) >= 20


def test_hung_reader_is_stopped_and_others_returned(shared_data: Path, tmp_path: Path) -> None:
    fifo = tmp_path / "hangs.pdf"
    os.mkfifo(fifo)  # opening it for reading blocks forever: a real hang in the reader
    good = tmp_path / "good.png"
    shutil.copy(shared_data / "clip_skimage/images/coffee.png", good)
    res = load_documents(
        [fifo, good], ocr=False, timeout=3, workers=1, show_progress=False, blob_dir=str(tmp_path)
    )
    assert [e.error_type for e in res.errors] == ["TimeoutError"]
    assert res.errors[0].source == str(fifo) and "timed out after 3s" in res.errors[0].error
    assert [c.source for c in res.chunks] == [str(good)]  # the replacement worker read it


def test_in_process_mode_and_missing_path(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# A\n\nalpha text\n")
    (tmp_path / ".hidden.md").write_text("secret")
    res = load_documents([tmp_path], ocr=False, workers=0, show_progress=False)
    assert [t.text for t in res.texts] == ["A\n\nalpha text"] and res.errors == []
    with pytest.raises(FileNotFoundError, match=r"missing\.pdf: no such file or folder"):
        load_documents([tmp_path, tmp_path / "missing.pdf"], ocr=False, workers=0, show_progress=False)


def test_glob_pattern(tmp_path: Path) -> None:
    for name in ("x.md", "y.txt"):
        (tmp_path / name).write_text(f"content of {name}")
    res = load_documents(str(tmp_path / "*.md"), ocr=False, workers=0, show_progress=False)
    assert [t.text for t in res.texts] == ["content of x.md"]


def test_ocr_on_images_in_pdf(tmp_path: Path) -> None:
    # an embedded picture of text (covering < half the page) is OCR'd on its own
    canvas = Image.new("RGB", (900, 200), "white")
    draw = ImageDraw.Draw(canvas)
    draw.text((20, 60), "INVOICE TOTAL 4242", fill="black", font=ImageFont.load_default(size=64))
    pdfium = pytest.importorskip("pypdfium2")
    pdf = pdfium.PdfDocument.new()
    page = pdf.new_page(612, 792)
    image_obj = pdfium.PdfImage.new(pdf)
    image_obj.set_bitmap(pdfium.PdfBitmap.from_pil(canvas))
    image_obj.set_matrix(pdfium.PdfMatrix().scale(450, 100).translate(50, 600))
    page.insert_obj(image_obj)
    page.gen_content()
    pdf.save(tmp_path / "mixed.pdf")
    res = PdfReader(blob_dir=str(tmp_path / "blobs")).read(tmp_path / "mixed.pdf")
    (img,) = res.images
    assert "INVOICE" in img.ocr_text and "4242" in img.ocr_text
    assert img.bbox is not None and img.bbox[1] == pytest.approx(92, abs=1)  # 792 - 700 top edge
