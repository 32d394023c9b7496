"""How Tesseract is run: its library in this process (tesserocr, the default where installed) or
the ``tesseract`` program once per reading (pytesseract). Both real; both must give the same
reading, turn, timeout and errors."""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import pytest
from PIL import Image

from mm_rag_plugin._images import load_image
from mm_rag_plugin.errors import ConfigurationError, InvalidInputError
from mm_rag_plugin.readers import TesseractOCR
from mm_rag_plugin.readers.ocr import _LibraryEngine, _ProgramEngine, _tessdata

ENGINES = ["tesserocr", "pytesseract"]


def _page(shared_data: Path, name: str) -> Image.Image:
    return load_image(shared_data / "ocr/tesseract" / name).image


def test_the_library_is_the_default_where_installed() -> None:
    assert isinstance(TesseractOCR()._runner, _LibraryEngine)
    assert isinstance(TesseractOCR(engine="pytesseract")._runner, _ProgramEngine)


@pytest.mark.parametrize("engine", ENGINES)
def test_each_engine_reads_a_turned_page_upright(shared_data: Path, engine: str) -> None:
    res = TesseractOCR(engine=engine).recognize(_page(shared_data, "phototest-rotated-180.png"))
    assert res is not None and res.rotation == 180
    assert "quick brown dog" in res.text and (res.confidence or 0) > 90
    # boxes in the pixel space of the image given (turned back), not of the upright copy
    assert all(0 <= x0 < x1 <= 640 and 0 <= y0 < y1 <= 480 for _, _, x0, y0, x1, y1 in res.words)


def test_both_engines_give_the_same_words_and_boxes(shared_data: Path) -> None:
    img = _page(shared_data, "phototest.tif")
    lib = TesseractOCR(engine="tesserocr").recognize(img)
    prog = TesseractOCR(engine="pytesseract").recognize(img)
    assert lib is not None and prog is not None
    assert lib.text.split() == prog.text.split()
    assert [w[2:] for w in lib.words] == [w[2:] for w in prog.words]
    assert lib.text.count("\n") == prog.text.count("\n")  # lines and paragraphs kept alike


@pytest.mark.parametrize("engine", ENGINES)
def test_a_reading_past_its_time_limit_is_an_error_naming_the_image(shared_data: Path, engine: str) -> None:
    ocr = TesseractOCR(timeout=0.001, engine=engine)
    with pytest.raises(InvalidInputError, match=r"eurotext\.tif: OCR .*timed out after 0\.001s"):
        ocr.recognize(_page(shared_data, "eurotext.tif"), source="eurotext.tif")
    # the same engine reads the next image normally (the cancelled state is not kept)
    ocr.timeout = 60
    res = ocr.recognize(_page(shared_data, "phototest.tif"))
    assert res is not None and "quick brown dog" in res.text


def test_an_unknown_engine_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="engine must be one of auto, tesserocr, pytesseract"):
        TesseractOCR(engine="easyocr")


def test_a_missing_language_is_refused_by_the_library_too() -> None:
    with pytest.raises(ConfigurationError, match="apt-get install tesseract-ocr-klingon"):
        TesseractOCR("eng+klingon", engine="tesserocr")


def test_the_language_data_is_found_through_tessdata_prefix(tmp_path: Path) -> None:
    found = _tessdata(None)  # where the tesseract program looks
    assert found is not None and Path(found, "eng.traineddata").is_file()
    shutil.copy(Path(found, "eng.traineddata"), tmp_path / "eng.traineddata")
    assert _tessdata(str(tmp_path)) == f"{tmp_path}/"
    assert _tessdata(str(tmp_path / "empty")) == found  # nothing there: the program's folder


def test_an_engine_travels_to_another_process_without_its_threads_models(shared_data: Path) -> None:
    ocr = TesseractOCR()
    img = _page(shared_data, "phototest.tif")
    first = ocr.recognize(img)
    copy = pickle.loads(pickle.dumps(ocr))  # a loaded PyTessBaseAPI cannot be pickled: not carried
    again = copy.recognize(img)
    assert first is not None and again is not None and again.text == first.text


def test_leptonicas_messages_go_to_the_debug_log_not_to_stderr(capfd: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    """Leptonica (the image library inside Tesseract) prints an error line for some images that
    Tesseract then reads fine; in this process that would land on the command line's stderr."""
    import ctypes
    import glob
    import logging
    import os

    import tesserocr

    TesseractOCR(engine="tesserocr")
    libs = os.path.join(os.path.dirname(os.path.dirname(tesserocr.__file__)), "tesserocr.libs", "libleptonica*.so*")
    lept = ctypes.CDLL(glob.glob(libs)[0])
    lept.boxClipToRectangle.restype = ctypes.c_void_p
    capfd.readouterr()
    with caplog.at_level(logging.DEBUG, logger="mm_rag_plugin.readers.ocr"):
        assert lept.boxClipToRectangle(None, 10, 10) is None  # a call Leptonica reports as an error
    assert capfd.readouterr().err == ""
    assert any("leptonica: Error in boxClipToRectangle" in r.getMessage() for r in caplog.records)
