"""PDF pages read once (text layer or OCR, never both), garbled text layers replaced by OCR, and
vector figures (charts and diagrams drawn with paths) extracted as images: on PDFs built here with
PDFium and on the real PDFs of ../shared/data (real PDFium, real Tesseract)."""

from __future__ import annotations

import ctypes
import re
from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from mm_rag_plugin.readers import PdfReader
from mm_rag_plugin.readers.ocr import NO_TEXT
from mm_rag_plugin.types import ImageChunk, ReadResult

pdfium = pytest.importorskip("pypdfium2")
raw = pytest.importorskip("pypdfium2.raw")

pytestmark = pytest.mark.slow

W, H = 612.0, 792.0  # US Letter, points
DPI = 200
SENTENCES = [
    "The harbour office opens at seven in the morning.",
    "Every parcel is weighed before it leaves the depot.",
    "Our drivers deliver to the northern villages on Tuesdays.",
    "Invoices are sent by post at the end of each month.",
    "Customers can follow their parcels on the website.",
]
TOP = 100.0  # points from the top of the page to the first line
STEP = 40.0  # points between lines


# -- building PDFs ---------------------------------------------------------------------------


def _scan(lines: list[str]) -> Image.Image:
    """A white page at 200 dpi with *lines* printed where :func:`_text` puts the text layer."""
    k = DPI / 72
    img = Image.new("L", (round(W * k), round(H * k)), 255)
    draw = ImageDraw.Draw(img)
    font = ImageFont.load_default(size=round(14 * k))
    for n, line in enumerate(lines):
        draw.text((72 * k, (TOP + n * STEP) * k), line, fill=0, font=font)
    return img


def _image(pdf, page, img: Image.Image, x: float, y: float, w: float, h: float) -> None:
    obj = pdfium.PdfImage.new(pdf)
    obj.set_bitmap(pdfium.PdfBitmap.from_pil(img.convert("RGB")))
    obj.set_matrix(pdfium.PdfMatrix().scale(w, h).translate(x, y))
    page.insert_obj(obj)


def _text(pdf, page, text: str, x: float, y: float, *, size: float = 14.0, mode: int = 0) -> None:
    """Helvetica *text* with its baseline at (x, y) in PDF space; *mode* 3 is invisible."""
    obj = raw.FPDFPageObj_NewTextObj(pdf, b"Helvetica", size)
    buf = ctypes.create_string_buffer((text + "\x00").encode("utf-16-le"))
    assert raw.FPDFText_SetText(obj, ctypes.cast(buf, ctypes.POINTER(ctypes.c_ushort)))
    assert raw.FPDFTextObj_SetTextRenderMode(obj, mode)
    raw.FPDFPageObj_Transform(obj, 1, 0, 0, 1, x, y)
    assert raw.FPDFPage_InsertObject(page, obj)


def _layer(pdf, page, lines: list[str], *, mode: int) -> None:
    for n, line in enumerate(lines):
        _text(pdf, page, line, 72, H - (TOP + n * STEP) - 14, mode=mode)


def _rect(page, x: float, y: float, w: float, h: float, rgb=(40, 90, 200), *, fill: bool = True) -> None:
    obj = raw.FPDFPageObj_CreateNewRect(x, y, w, h)
    raw.FPDFPageObj_SetFillColor(obj, *rgb, 255)
    raw.FPDFPageObj_SetStrokeColor(obj, 0, 0, 0, 255)
    raw.FPDFPath_SetDrawMode(obj, 1 if fill else 0, 0 if fill else 1)
    assert raw.FPDFPage_InsertObject(page, obj)


def _polyline(page, points: list[tuple[float, float]], width: float = 1.0) -> None:
    obj = raw.FPDFPageObj_CreateNewPath(*points[0])
    for x, y in points[1:]:
        raw.FPDFPath_LineTo(obj, x, y)
    raw.FPDFPageObj_SetStrokeColor(obj, 200, 30, 30, 255)
    raw.FPDFPageObj_SetStrokeWidth(obj, width)
    raw.FPDFPath_SetDrawMode(obj, 0, 1)
    assert raw.FPDFPage_InsertObject(page, obj)


def _save(pdf, path: Path) -> Path:
    pdf.save(path)
    return path


def _scan_pdf(tmp_path: Path, name: str, layer: list[str] | None, *, mode: int, under: bool = False) -> Path:
    """A page holding a full-page scan of SENTENCES and a text layer *layer* (drawn in *mode*,
    before the scan when *under*)."""
    pdf = pdfium.PdfDocument.new()
    page = pdf.new_page(W, H)
    if layer and under:
        _layer(pdf, page, layer, mode=mode)
    _image(pdf, page, _scan(SENTENCES), 0, 0, W, H)
    if layer and not under:
        _layer(pdf, page, layer, mode=mode)
    page.gen_content()
    return _save(pdf, tmp_path / name)


def _all_text(res: ReadResult) -> str:
    """Everything indexed as text: text chunks and the OCR text of images."""
    parts = [c.text for c in res.texts] + [c.ocr_text for c in res.images]
    return re.sub(r"\s+", " ", " ".join(parts))


def _reader(tmp_path: Path, **kw) -> PdfReader:
    return PdfReader(blob_dir=str(tmp_path / "blobs"), chunk_size=4000, chunk_overlap=0, **kw)


# -- a page's text is indexed once -----------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "mode", "under", "why"),
    [
        ("ocr-layer.pdf", 3, False, "an OCR text layer covers it"),  # OCRmyPDF, Acrobat: invisible text
        ("under-scan.pdf", 0, True, "an OCR text layer covers it"),  # text drawn under the scan
        ("visible.pdf", 0, False, "the page's text layer covers it"),  # text over a background picture
    ],
)
def test_page_with_text_layer_and_full_page_scan_is_indexed_once(
    tmp_path: Path, name: str, mode: int, under: bool, why: str
) -> None:
    res = _reader(tmp_path).read(_scan_pdf(tmp_path, name, SENTENCES, mode=mode, under=under))
    text = _all_text(res)
    for sentence in SENTENCES:
        assert text.count(sentence) == 1, (sentence, text)
    (scan,) = res.images
    assert scan.ocr_text == "" and scan.metadata["ocr_skipped"] == why
    assert not any(t.metadata.get("ocr") for t in res.texts)  # the page was not OCR'd either
    assert [t.metadata.get("ocr_layer", False) for t in res.texts] == [mode == 3]


def test_garbled_text_layer_is_replaced_by_ocr(tmp_path: Path) -> None:
    def junk(word: str) -> str:  # what a bad earlier OCR leaves: mangled letters, stray marks
        w = word.translate(str.maketrans({"o": "0", "l": "1", "e": "c", "i": "l", "a": "n"}))
        return w[: len(w) // 2] + ";" + w[len(w) // 2 :] if len(w) > 2 else w + "'"

    garbled = [" ".join(junk(w) for w in s.split()) for s in SENTENCES]
    res = _reader(tmp_path).read(_scan_pdf(tmp_path, "garbled.pdf", garbled, mode=3))
    (ocr_text,) = res.texts
    assert ocr_text.metadata["ocr"] is True and ocr_text.metadata["replaced_text_layer"]
    text = _all_text(res)
    for sentence in SENTENCES:
        assert text.count(sentence) == 1, (sentence, text)
    assert ";" not in text and "0ffice" not in text  # nothing of the garbled layer is indexed
    assert res.images[0].ocr_text == ""  # the scan was read once, by the page OCR

    # without OCR the layer is all there is: kept, and flagged
    res = _reader(tmp_path, ocr=False).read(tmp_path / "garbled.pdf")
    (layer,) = res.texts
    assert layer.metadata["garbled_text_layer"] and "0ff;lcc" in layer.text


def test_good_text_layer_is_not_ocrd(tmp_path: Path) -> None:
    pdf = pdfium.PdfDocument.new()
    page = pdf.new_page(W, H)
    _layer(pdf, page, SENTENCES, mode=0)
    page.gen_content()
    res = _reader(tmp_path).read(_save(pdf, tmp_path / "plain.pdf"))
    (chunk,) = res.texts
    assert chunk.metadata == {} and chunk.text.splitlines() == SENTENCES
    x0, y0, x1, y1 = chunk.bbox
    assert x0 == pytest.approx(72, abs=2) and y0 == pytest.approx(TOP, abs=6) and x1 < 500 and y1 < 300


# -- vector figures --------------------------------------------------------------------------


def _chart(pdf, page, *, labels: bool) -> None:
    """A bar chart drawn with paths at x 100..400, y 300..500 (PDF space), its labels as text."""
    _polyline(page, [(100, 500), (100, 300), (400, 300)], width=1.0)  # axes
    for n, height in enumerate((60, 120, 90, 170)):
        _rect(page, 130 + n * 65, 300, 40, height)
    _polyline(page, [(150, 380), (215, 440), (280, 410), (345, 480)], width=2.0)  # a trend line
    if labels:
        for n, label in enumerate(("North", "South", "East", "West")):
            _text(pdf, page, label, 130 + n * 65, 288, size=9)
        _text(pdf, page, "Figure 3: Parcels delivered per region", 100, 250, size=11)
        _text(pdf, page, "Parcels are counted at the depot before they leave.", 72, 700, size=11)


def test_vector_chart_is_extracted_with_caption_and_labels(tmp_path: Path) -> None:
    pdf = pdfium.PdfDocument.new()
    for labels in (True, False):
        page = pdf.new_page(W, H)
        _chart(pdf, page, labels=labels)
        page.gen_content()
    res = _reader(tmp_path).read(_save(pdf, tmp_path / "chart.pdf"))
    figures = [c for c in res.images if c.metadata.get("vector_figure")]
    assert [f.page for f in figures] == [1, 2]
    labelled, bare = figures
    x0, y0, x1, y1 = labelled.bbox  # top-left origin: the chart spans y 292..492 from the top
    assert x0 == pytest.approx(97, abs=4) and x1 == pytest.approx(403, abs=4)
    assert y0 == pytest.approx(H - 503, abs=4) and y1 == pytest.approx(H - 285, abs=8)
    assert labelled.caption == "Figure 3: Parcels delivered per region"
    assert labelled.metadata["labels"] == "North South East West"
    assert labelled.metadata["ocr_skipped"] == "its labels are in the text layer"
    assert Path(labelled.image_path).is_file() and labelled.width > 500  # rendered at 150 dpi
    # no text layer in the figure: it goes through OCR like an embedded image, whose text gate
    # finds nothing to read in bars and axes
    assert bare.caption == "" and bare.metadata.get("ocr_skipped") == NO_TEXT and "labels" not in bare.metadata
    # the page text is indexed once, the caption included
    assert _all_text(res).count("Figure 3: Parcels delivered per region") == 1


def test_embedded_images_that_are_not_full_page_are_still_ocrd(tmp_path: Path) -> None:
    pdf = pdfium.PdfDocument.new()
    page = pdf.new_page(W, H)
    _layer(pdf, page, SENTENCES, mode=0)
    label = Image.new("L", (900, 200), 255)
    ImageDraw.Draw(label).text((20, 60), "DEPOT 42", fill=0, font=ImageFont.load_default(size=80))
    _image(pdf, page, label, 72, 300, 300, 67)
    page.gen_content()
    res = _reader(tmp_path).read(_save(pdf, tmp_path / "labelled.pdf"))
    (img,) = res.images
    assert "DEPOT 42" in img.ocr_text and "ocr_skipped" not in img.metadata


# -- the shared real PDFs --------------------------------------------------------------------

#: Pages of the shared PDFs that hold a vector figure, with the figure's box where checked
#: (x0, y0, x1, y1, points from the top left; within 15 points) and its caption's start.
VECTOR_FIGURES: dict[str, dict[int, tuple[tuple[float, float, float, float] | None, str]]] = {
    "plumber__chelsea_pdta.pdf": {  # Excel charts: bars and pies, titles drawn as outlines
        17: ((53, 195, 531, 445), ""),
        18: (None, ""),
        19: (None, ""),
        21: (None, ""),
    },
    "ppsf__GeoTopo-komprimiert.pdf": {  # TikZ and pgfplots diagrams
        1: (None, ""),
        3: (None, "Abbildung 0.1: Beispiele für verschiedene Formen"),
        8: (None, "Abbildung 1.1:"),
        31: (None, ""),
        96: (None, ""),
    },
    "pypdf__GeoBase_NHNC1_Data_Model_UML_EN.pdf": {  # UML diagrams
        7: ((120, 235, 492, 449), "Figure 2 – Packages in the NHNC1 LRS model"),
        10: (None, ""),
        14: (None, ""),
    },
    "unst__embedded-images-tables.pdf": {  # an Origin plot next to a raster one
        1: (None, "Fig. 5. Langmuir adsorption isotherm of ES."),
    },
}
#: Pages whose paths only decorate: rules, borders, tables, boxes around text, panels behind photos.
DECORATION_ONLY: dict[str, list[int] | None] = {
    "unst__layout-parser-paper-fast.pdf": None,  # None: every page
    "unst__multi-column-2p.pdf": None,
    "plumber__federal-register-2020-17221.pdf": None,  # column rules and ruled tables
    "ppsf__google-doc-document.pdf": None,
    "unst__chevron-page.pdf": None,
    "unst__pdf-bad-color-space.pdf": None,
    "pypdf__side-by-side-subfig.pdf": None,
    "pypdf__GeoBase_NHNC1_Data_Model_UML_EN.pdf": [1, 2, 4, 5],  # page border, revision table
    "plumber__chelsea_pdta.pdf": [24, 26, 27, 28, 29, 30, 31],  # boxed text, action-plan tables
    "unst__reliance.pdf": [2, 3],  # colour panels behind photos, icons
}


@pytest.fixture(scope="module")
def shared_results(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, ReadResult]:
    reader = PdfReader(ocr=False, blob_dir=str(tmp_path_factory.mktemp("blobs")))
    names = set(VECTOR_FIGURES) | set(DECORATION_ONLY)
    return {n: reader.read(shared_data / "pdfs/text_figures" / n) for n in sorted(names)}


def _figures(res: ReadResult) -> list[ImageChunk]:
    return [c for c in res.images if c.metadata.get("vector_figure")]


def test_vector_figures_of_the_shared_pdfs(shared_results: dict[str, ReadResult], shared_data: Path) -> None:
    for name, pages in VECTOR_FIGURES.items():
        res = shared_results[name]
        assert not res.errors, res.errors
        doc = pdfium.PdfDocument(shared_data / "pdfs/text_figures" / name)
        figures = _figures(res)
        for page, (box, caption) in pages.items():
            on_page = [f for f in figures if f.page == page]
            assert on_page, (name, page, sorted({f.page for f in figures}))
            width, height = doc[page - 1].get_size()
            for f in on_page:
                x0, y0, x1, y1 = f.bbox
                assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height, (name, page, f.bbox)
                assert x1 - x0 >= 40 and y1 - y0 >= 40, (name, page, f.bbox)
                assert Path(f.image_path).is_file() and f.mime_type == "image/png"
            if box is not None:
                assert any(
                    all(abs(a - b) <= 15 for a, b in zip(f.bbox, box, strict=True)) for f in on_page
                ), (
                    name,
                    page,
                    [f.bbox for f in on_page],
                )
            if caption:
                assert any(f.caption.startswith(caption) for f in on_page), (
                    name,
                    page,
                    [f.caption for f in on_page],
                )
        doc.close()
    # how many: every chart of the Chelsea survey pages drawn with paths, and dozens of diagrams
    counts = {n: len(_figures(shared_results[n])) for n in VECTOR_FIGURES}
    assert counts["plumber__chelsea_pdta.pdf"] >= 5
    assert counts["ppsf__GeoTopo-komprimiert.pdf"] >= 50
    assert counts["pypdf__GeoBase_NHNC1_Data_Model_UML_EN.pdf"] >= 8


def test_decoration_gives_no_figures(shared_results: dict[str, ReadResult]) -> None:
    for name, pages in DECORATION_ONLY.items():
        found = sorted({f.page for f in _figures(shared_results[name]) if pages is None or f.page in pages})
        assert found == [], (name, found)
