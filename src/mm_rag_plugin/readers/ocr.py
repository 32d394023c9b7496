"""OCR with Tesseract: its library in this process (tesserocr), else the ``tesseract`` program
(pytesseract).

The library keeps its model loaded in each thread and takes the pixels as they are: a reading of
a small image costs about 15 ms instead of the 100 ms of starting the program and loading its
model again. Reading the 13 shared PDFs (97 images OCR'd) took 11.0 s instead of 18.6 s. tesserocr
has no macOS wheel; there, and with ``engine="pytesseract"``, the program runs once per reading.

:class:`TesseractOCR` turns a PIL image into an :class:`OcrResult`: the text (lines and paragraphs
kept), the mean word confidence (0..100) and every word with its confidence and box, in the pixel
space of the image it was given. Images too small to hold legible text are skipped.

Before recognition the text is measured (:func:`measure_text`, numpy only, tens of milliseconds):
the median height of the glyphs that sit side by side on a shared baseline, as letters do, in the
Otsu-binarised image. Measured here, Tesseract reads glyphs of 8 px and more well and loses most
words below: pages of the shared PDFs rendered at 72 dpi (10 pt text in 5-7 px glyphs) read with
a mean word recall of 0.52. Such images are enlarged so that the median glyph is ``text_height``
(12) px: 0.95 (10 px was less steady, 16 px no better and slower). Text taller than
``max_text_height`` is shrunk (the same words, less work); everything else is read at its own
size, as are images where no line of text is found (photos): upscaling is spent where it pays. When
the enlarged reading holds far fewer letters than glyphs were measured (Tesseract's layout
analysis dropped the lines with dot leaders of a table of contents), the image is read at its own
size too and the better reading kept.

Binarisation: Tesseract's global Otsu threshold, unless the measure shows that it loses regions of
text that a local (Sauvola) threshold finds (uneven lighting, a shadow); Tesseract is then asked
for its Sauvola thresholding. Measured on synthetic receipts under uneven light: word recall 0.81
-> 0.91. On evenly lit pages, screenshots and charts the gate stays shut: Sauvola there costs up
to 8 points of recall.

When a page reads badly, the orientation detector (OSD) is asked whether it is rotated, and the
rotated reading is kept if it is more confident; its boxes are mapped back onto the given image.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import functools
import glob
import importlib.util
import logging
import math
import os
import re
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .._optional import require, require_binary
from ..errors import ConfigurationError, InvalidInputError, MissingDependencyError

if TYPE_CHECKING:
    from PIL import Image

logger = logging.getLogger(__name__)

__all__ = ["OcrResult", "TesseractOCR", "TextMeasure", "measure_text"]

#: (word, confidence 0..100, x0, y0, x1, y1) in pixels of the input image.
WordBox = tuple[str, float, int, int, int, int]

#: The text is measured on a copy at most this many pixels on its longer side (bounded cost).
MEASURE_SIDE = 1600
#: How Tesseract is run: ``tesserocr`` (its library, in this process), ``pytesseract`` (the
#: ``tesseract`` program, once per reading), ``auto`` (the library when installed).
ENGINES = ("auto", "tesserocr", "pytesseract")
#: Tesseract's ``thresholding_method`` for Sauvola's local threshold (Tesseract >= 5.0).
SAUVOLA = 2
#: Side (pixels of the measured copy) of the cells in which text found by the global and by the
#: local threshold is compared; and in how many cells the global threshold found none (at least,
#: and as a share of the cells it did find) the local one must find text for the image to count as
#: unevenly lit.
_CELL = 32
_UNEVEN_CELLS = 8
_UNEVEN_SHARE = 0.08
#: A scaled reading with fewer letters and digits than this share of the glyphs measured lost text.
_LOST = 0.25
#: A reading is repeated (:attr:`TesseractOCR.reread_below`) only on images with this many glyphs.
_REREAD_GLYPHS = 40
#: Skew angles (degrees) looked for, and the smallest one corrected. Tesseract copes with less,
#: and resampling blurs small print: from 0.8 degrees, straightening the generated receipts' 0.9-2.5
#: degree turns lowered the share of their words read from 0.918 to 0.901
#: (``python -m benchmarks.bench_ocr_preprocess --n 24 --set clean``, run with that threshold).
_MAX_SKEW = 8.0
_MIN_SKEW = 2.8
#: Levels between the median ink and the median paper under which print is faded and normalised.
#: Blurred or unevenly lit print that Tesseract reads well sits at 74-183 levels (generated
#: receipts); normalising those at 110 lowered the words read from 0.918 to 0.908 (the same
#: command). Faded thermal print is at a few dozen.
_FADED = 64
#: Print covers less than this share of a page (its Otsu dark class); more is a photo or a chart.
_SPARSE = 0.35
#: :attr:`OcrResult.skipped` of an image the text gate let through without reading it.
NO_TEXT = "no text found"


@dataclass(frozen=True, slots=True)
class OcrResult:
    text: str
    confidence: float | None  # mean word confidence 0..100; None when no word was found
    words: tuple[WordBox, ...] = ()  # every word read, low-confidence ones too
    rotation: int = 0  # degrees (clockwise) the image was rotated before the kept reading
    scale: float = 1.0  # factor the image was resized by before recognition
    text_height: float | None = None  # median glyph height measured (input pixels); None: no text line
    threshold: str = "otsu"  # Tesseract's binarisation: "otsu" (global) or "sauvola" (local)
    skipped: str | None = None  # why Tesseract did not run (the text gate found no text), else None
    preprocessed: tuple[str, ...] = ()  # steps applied before the kept reading: "perspective", "deskew", "contrast", "reread"

    def confident_words(self, min_confidence: float) -> list[str]:
        """The words read with at least *min_confidence* (0..100), in reading order."""
        return [w[0] for w in self.words if w[1] >= min_confidence]


@dataclass(frozen=True, slots=True)
class TextMeasure:
    """What :func:`measure_text` found: the median height (pixels of the image given) of the glyphs
    that sit side by side on a shared baseline, how many such glyphs there are (in the measured
    copy), their share of all the marks, and whether the global threshold loses text that a local
    one finds (the image is then unevenly lit)."""

    height: float
    glyphs: int
    share: float
    uneven: bool = False


def measure_text(
    image: Image.Image, *, min_glyphs: int = 8, min_share: float = 0.4, max_height: float = 0.25
) -> TextMeasure | None:
    """Measure the text in *image* (any mode): ``None`` when fewer than *min_glyphs* marks line up
    as letters do, or when they are less than *min_share* of all the marks (a photo's texture).
    Marks taller than *max_height* of the image are not glyphs.

    Marks are the 8-connected components of the Otsu-binarised image (light text on a dark ground
    is inverted); a glyph is a mark at least 3 px tall with a neighbour of similar height on the
    same baseline close by. Lines running down the image (text turned a quarter) are looked for
    when none run across. Cost: tens of milliseconds (measured on a copy of at most
    ``MEASURE_SIDE`` px)."""
    return _Marks(image).measure(min_glyphs, min_share, max_height)


class _Marks:
    """The marks of one image, found once and measured with any demands: the measured copy (at
    most ``MEASURE_SIDE`` px), its Otsu ink and the components of it, and (when first asked) the
    components of its local (Sauvola) threshold. Which marks line up as glyphs is worked out once
    per threshold, size limit and direction (:meth:`_lined`); a measure with other demands only
    compares counts. :meth:`TesseractOCR.recognize` asks up to three times with looser demands
    (:meth:`find_text`), at the cost of one."""

    def __init__(self, image: Image.Image) -> None:
        from PIL import Image as PILImage

        grey = image if image.mode == "L" else _grey(image)
        self.f = 1.0
        if max(grey.size) > MEASURE_SIDE:
            self.f = MEASURE_SIDE / max(grey.size)
            size = (max(1, round(grey.width * self.f)), max(1, round(grey.height * self.f)))
            grey = grey.resize(size, PILImage.Resampling.BOX)
        self.a = np.asarray(grey, dtype=np.uint8)
        self.blank = self.a.size == 0 or int(self.a.max()) - int(self.a.min()) < 32  # blank or nearly so
        self.ink = np.zeros(self.a.shape, dtype=bool)
        self.dark_ground = False
        if not self.blank:
            self.ink = self.a <= _otsu(self.a)
            self.dark_ground = bool(self.ink.mean() > 0.5)
            if self.dark_ground:  # light text on a dark background
                self.ink = ~self.ink
        self.boxes = _components(self.ink) if not self.blank else np.zeros((0, 5), dtype=np.int64)
        self._local: np.ndarray | None = None
        self._lines: dict[tuple[bool, float, bool], _Lined] = {}
        self._measures: dict[tuple[int, float, float], TextMeasure | None] = {}

    @property
    def local_boxes(self) -> np.ndarray:
        """Components of the local (Sauvola) threshold, computed on first use."""
        if self._local is None:
            self._local = _components(_sauvola(255 - self.a if self.dark_ground else self.a))
        return self._local

    def find_text(self, *, small: bool, gate: bool) -> TextMeasure | None:
        """The text gate's one decision: the measure with the default demands, else (an image
        whose shorter side is under ``upscale_to``: *small*) with a few glyphs on a line, else
        (*gate*) one line of big letters (a label, a banner: glyphs up to 0.9 of the image)."""
        found = self.measure()
        if found is None and small:  # a small image holds a few glyphs at most
            found = self.measure(min_glyphs=3, min_share=0.3)
        if found is None and gate:
            found = self.measure(min_glyphs=3, min_share=0.5, max_height=0.9)
        return found

    def measure(self, min_glyphs: int = 8, min_share: float = 0.4, max_height: float = 0.25) -> TextMeasure | None:
        key = (min_glyphs, min_share, max_height)
        if key not in self._measures:
            self._measures[key] = self._measure(min_glyphs, min_share, max_height)
        return self._measures[key]

    def _measure(self, min_glyphs: int, min_share: float, max_height: float) -> TextMeasure | None:
        if self.blank:
            return None
        found, swap = self._find(False, min_glyphs, min_share, max_height)
        # Does a local threshold find text in places the global one lost (uneven lighting, shadows)?
        if found is None:
            found, swap = self._find(True, min_glyphs, min_share, max_height)
            if found is None:
                return None
            uneven = True
        else:
            cells = found.cells
            local = self._lined(True, max_height, swap)
            local_cells = local.cells if local.passes(1, 0.0) else set()
            # more places, and no fewer overall (on coloured charts the local threshold loses labels)
            gained = len(local_cells - cells)
            uneven = gained >= max(_UNEVEN_CELLS, _UNEVEN_SHARE * len(cells)) and len(local_cells) >= len(cells)
        return TextMeasure(
            height=round(found.height / self.f, 2), glyphs=found.glyphs, share=found.share, uneven=uneven
        )

    def _find(self, local: bool, min_glyphs: int, min_share: float, max_height: float) -> tuple[_Lined | None, bool]:
        """The glyphs of one threshold meeting the demands, lines across first, then down; and
        whether they run down."""
        for turned in (False, True):
            lined = self._lined(local, max_height, turned)
            if lined.passes(min_glyphs, min_share):
                return lined, turned
        return None, False

    def _lined(self, local: bool, max_height: float, turned: bool) -> _Lined:
        key = (local, max_height, turned)
        if key not in self._lines:
            boxes = self.local_boxes if local else self.boxes
            shape: tuple[int, ...] = self.ink.shape
            oriented = boxes[:, [1, 0, 3, 2, 4]] if turned else boxes
            self._lines[key] = _lined_marks(oriented, shape[1] if turned else shape[0], max_height)
        return self._lines[key]


@dataclass(frozen=True, slots=True)
class _Lined:
    """The glyph-like marks of one threshold (lines along x): how many, how many sit on a line
    with a neighbour, their median height and the cells (``_CELL`` px) holding them."""

    marks: int
    glyphs: int
    height: float
    cells: set[tuple[int, int]]

    @property
    def share(self) -> float:
        return round(self.glyphs / self.marks, 3) if self.marks else 0.0

    def passes(self, min_glyphs: int, min_share: float) -> bool:
        return (
            self.marks >= max(min_glyphs, 2)
            and self.glyphs >= min_glyphs
            and self.glyphs / self.marks >= min_share
        )


def _lined_marks(boxes: np.ndarray, extent: int, max_height: float) -> _Lined:
    """Which of the component *boxes* ``(y0, x0, y1, x1, pixels)`` are glyphs on a line along x."""
    h = boxes[:, 2] - boxes[:, 0]
    w = boxes[:, 3] - boxes[:, 1]
    # glyph-like marks: at least 3 px tall, not a rule, not a solid block, not the whole picture
    keep = (h >= 3) & (h <= max_height * extent + 3) & (w <= 30 * h) & (boxes[:, 4] >= 0.08 * h * w)
    boxes, h = boxes[keep], h[keep]
    if len(boxes) < 2:
        return _Lined(len(boxes), 0, 0.0, set())
    lined = _on_a_line(boxes)
    n = int(lined.sum())
    if n == 0:
        return _Lined(len(boxes), 0, 0.0, set())
    b = boxes[lined]
    cy = (b[:, 0] + b[:, 2]) // (2 * _CELL)
    cx = (b[:, 1] + b[:, 3]) // (2 * _CELL)
    cells = set(zip(cy.tolist(), cx.tolist(), strict=True))
    return _Lined(len(boxes), n, float(np.median(h[lined])), cells)


class TesseractOCR:
    """Tesseract OCR engine.

    ``languages`` is Tesseract's ``-l`` value (``"eng"``, ``"eng+deu"``); each language needs its
    traineddata (``apt-get install tesseract-ocr-deu``). ``min_side``: images whose shorter side is
    below it are not OCR'd. Text measured (:func:`measure_text`) with glyphs under
    ``min_text_height`` pixels is enlarged to ``text_height``, text over ``max_text_height`` is
    shrunk to it (by ``max_scale`` at most, either way); ``max_side`` bounds the longer side of
    what Tesseract is given. ``upscale_to``: an image whose shorter side is below it holds a few
    glyphs at most, and is measured with looser demands (3 glyphs on a line).
    ``min_word_confidence``: words read with less confidence are left out of ``text`` (they stay
    in ``words``; 0 keeps all). ``auto_rotate`` runs orientation detection on readings less
    confident than ``rotate_below``. ``timeout`` (seconds) stops one recognition that runs too long.
    ``gate``: Tesseract runs only on images where :func:`measure_text` finds glyphs lined up as
    text, of any size up to one line filling the image (tens of milliseconds); photos, plain charts and blank images get an empty result whose
    ``skipped`` says so. ``gate=False`` reads every image.
    ``preprocess``: a photographed document (a light sheet on a darker background) is cut out and
    its perspective rectified, text skewed by 0.8 to 8 degrees is straightened, faded low-contrast
    print is normalised (background divided out, stretched), and a reading less confident than
    ``reread_below`` of an image full of glyphs is read a second time (contrast normalised, the
    other threshold), the better kept; :attr:`OcrResult.preprocessed` names the steps taken. Word
    boxes stay in the pixel space of the image given.
    ``engine``: ``"auto"`` (tesserocr when installed, else pytesseract), ``"tesserocr"`` or
    ``"pytesseract"`` (see the module docstring).
    """

    def __init__(
        self,
        languages: str = "eng",
        *,
        min_side: int = 16,
        min_text_height: float = 8.0,
        text_height: float = 12.0,
        max_text_height: float = 40.0,
        max_scale: float = 4.0,
        max_side: int = 4000,
        upscale_to: int = 300,
        min_word_confidence: float = 0.0,
        psm: int = 3,
        auto_rotate: bool = True,
        rotate_below: float = 60.0,
        timeout: float = 60.0,
        gate: bool = True,
        preprocess: bool = True,
        reread_below: float = 50.0,
        engine: str = "auto",
    ) -> None:
        self._runner = _make_engine(engine)
        wanted = [lang for lang in languages.split("+") if lang]
        if not wanted:
            raise ConfigurationError("languages must name at least one Tesseract language, e.g. 'eng'")
        if not 0 < min_text_height <= text_height <= max_text_height or max_scale < 1 or max_side < 1:
            raise ConfigurationError(
                "need 0 < min_text_height <= text_height <= max_text_height, max_scale >= 1 and "
                f"max_side >= 1 (got {min_text_height}, {text_height}, {max_text_height}, "
                f"{max_scale}, {max_side})"
            )
        installed = self._runner.languages()
        missing = [lang for lang in wanted if lang not in installed]
        if missing:
            raise ConfigurationError(
                f"Tesseract language(s) {missing} are not installed (installed: {sorted(installed)}). "
                f"Install them with: apt-get install {' '.join('tesseract-ocr-' + m.replace('_', '-') for m in missing)}"
            )
        self.languages = "+".join(wanted)
        self.min_side = min_side
        self.min_text_height = min_text_height
        self.text_height = text_height
        self.max_text_height = max_text_height
        self.max_scale = max_scale
        self.max_side = max_side
        self.upscale_to = upscale_to
        self.min_word_confidence = min_word_confidence
        self.psm = psm
        self.auto_rotate = auto_rotate and "osd" in installed
        self.rotate_below = rotate_below
        self.timeout = timeout
        self.gate = gate
        self.preprocess = preprocess
        self.reread_below = reread_below

    def recognize(self, image: Image.Image, *, source: str = "<image>") -> OcrResult | None:
        """OCR *image*; ``None`` when it is too small to read. Raises :class:`InvalidInputError`
        when Tesseract fails or times out on it."""
        w, h = image.size
        if min(w, h) < self.min_side:
            return None
        grey = _grey(image)
        marks = _Marks(grey)  # components found once, the gate decided once on them
        warp: np.ndarray | None = None  # output -> input homography of the perspective/deskew step
        steps: list[str] = []
        if self.preprocess:
            grey, marks, warp, steps = _prepare(grey, marks)
        measure = marks.find_text(small=min(w, h) < self.upscale_to, gate=self.gate)
        if measure is None and self.gate:
            return OcrResult("", None, skipped=NO_TEXT)
        scale = self.choose_scale(grey.size, measure)
        local = measure is not None and measure.uneven
        result = self._read(grey, scale, local, source, measure)
        # Further readings (contrast and the other threshold, the image's own size, orientation)
        # only for images full of glyphs: on the 13 shared PDFs none of them found a word on the
        # images with fewer (labels, icons, diagram marks), where each cost one more Tesseract run.
        # Images the gate did not measure (gate off) keep them.
        full = measure is None or measure.glyphs >= _REREAD_GLYPHS
        if (
            self.preprocess
            and measure is not None
            and full
            and (result.confidence or 0) < self.reread_below
        ):
            # a poor first reading of a picture full of glyphs: once more, contrast normalised and
            # with the other threshold; paid only by the images that read badly
            flat = grey if "contrast" in steps else _normalise_contrast(grey)
            again = self._read(flat, scale, not local, source, measure)
            if _weight(again) > _weight(result):
                result, grey = again, flat
                steps = [*steps, "reread"]
        if scale != 1.0 and measure is not None and full and _letters(result) < _LOST * measure.glyphs:
            # Tesseract's layout analysis dropped most of the text it was given (seen on dot
            # leaders of a table of contents): read it at its own size too, keep the better.
            plain = self._read(grey, 1.0, local, source, measure)
            if _weight(plain) > _weight(result):
                result, scale = plain, 1.0
        if self.auto_rotate and full and (result.confidence is None or result.confidence < self.rotate_below):
            angle = self._detect_rotation(_resize(grey, scale), source)
            if angle:
                rotated = self._read(grey, scale, local, source, measure, rotation=angle)
                if (rotated.confidence or 0) > (result.confidence or 0):
                    result = rotated
        if warp is not None:
            result = replace(result, words=_warp_boxes(result.words, warp, (w, h)))
        if steps:
            result = replace(result, preprocessed=tuple(steps))
        return result

    def choose_scale(self, size: tuple[int, int], measure: TextMeasure | None) -> float:
        """The resize factor for an image of *size* (width, height) whose text measured *measure*."""
        scale = 1.0
        if measure is not None and measure.height > 0:
            if measure.height < self.min_text_height:
                scale = min(self.max_scale, self.text_height / measure.height)
            elif measure.height > self.max_text_height:
                scale = max(1.0 / self.max_scale, self.max_text_height / measure.height)
        if max(size) * scale > self.max_side:
            scale = self.max_side / max(size)
        return scale

    # -- internals -------------------------------------------------------------------------
    def _read(
        self,
        grey: Image.Image,
        scale: float,
        local: bool,
        source: str,
        measure: TextMeasure | None,
        rotation: int = 0,
    ) -> OcrResult:
        img = _resize(grey, scale)
        if rotation:
            img = img.rotate(-rotation, expand=True)
        data = self._runner.read(img, self.languages, self.psm, local, self.timeout, source)
        return _assemble(
            data,
            scale=scale,
            rotation=rotation,
            size=grey.size,
            min_confidence=self.min_word_confidence,
            text_height=measure.height if measure is not None else None,
            threshold="sauvola" if local else "otsu",
        )

    def _detect_rotation(self, grey: Image.Image, source: str) -> int:
        return self._runner.rotation(grey, self.timeout, source)


def _grey(image: Image.Image) -> Image.Image:
    """8-bit greyscale; transparency composited on white, 16-bit and float images stretched."""
    if image.mode == "L":
        return image
    if image.mode == "1":
        return image.convert("L")
    from .._images import to_rgb

    return to_rgb(image).convert("L")


def _resize(grey: Image.Image, scale: float) -> Image.Image:
    from PIL import Image as PILImage

    if math.isclose(scale, 1.0):
        return grey
    w, h = grey.size
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return grey.resize(size, PILImage.Resampling.LANCZOS if scale < 1 else PILImage.Resampling.BICUBIC)


def _letters(result: OcrResult) -> int:
    """Letters and digits read."""
    return sum(ch.isalnum() for w in result.words for ch in w[0])


def _weight(result: OcrResult) -> float:
    """Letters and digits read, each counted by its word's confidence (0..1)."""
    return sum(w[1] / 100.0 * sum(ch.isalnum() for ch in w[0]) for w in result.words)


def _otsu(a: np.ndarray) -> int:
    """Otsu's threshold of an 8-bit array: pixels <= it are the darker class."""
    hist = np.bincount(a.ravel(), minlength=256).astype(np.float64)
    p = hist / hist.sum()
    w = np.cumsum(p)
    mu = np.cumsum(p * np.arange(256))
    with np.errstate(divide="ignore", invalid="ignore"):
        between = (mu[-1] * w - mu) ** 2 / (w * (1.0 - w))
    return int(np.argmax(np.nan_to_num(between)))


def _sauvola(a: np.ndarray, k: float = 0.34, r: float = 128.0) -> np.ndarray:
    """Sauvola's local threshold of an 8-bit array, with Tesseract's k: pixels darker than
    ``mean * (1 + k * (std / r - 1))`` of a window a tenth of the shorter side wide. The window is
    made of whole blocks an eighth of its width, and the threshold is applied per block: tens of
    milliseconds on the measured copy."""
    h, w = a.shape
    half = max(7, min(h, w) // 20)
    q = max(1, half // 4)
    gh, gw = -(-h // q), -(-w // q)
    x = np.pad(a.astype(np.float64), ((0, gh * q - h), (0, gw * q - w)), mode="edge")
    mean = _window_mean(x.reshape(gh, q, gw, q).mean(axis=(1, 3)), half // q)
    square = _window_mean((x * x).reshape(gh, q, gw, q).mean(axis=(1, 3)), half // q)
    std = np.sqrt(np.maximum(square - mean * mean, 0.0))
    threshold = mean * (1.0 + k * (std / r - 1.0))
    return x[:h, :w] <= np.repeat(np.repeat(threshold, q, axis=0), q, axis=1)[:h, :w]


def _window_mean(v: np.ndarray, half: int) -> np.ndarray:
    """Mean of *v* over the (2 * half + 1)-square window around each cell, clipped at the edges."""
    out = v
    for axis in (0, 1):
        n = out.shape[axis]
        c = np.concatenate([np.zeros_like(out.take([0], axis=axis)), out.cumsum(axis=axis)], axis=axis)
        hi = np.minimum(np.arange(n) + half + 1, n)
        lo = np.maximum(np.arange(n) - half, 0)
        shape = [1, 1]
        shape[axis] = n
        out = (c.take(hi, axis=axis) - c.take(lo, axis=axis)) / (hi - lo).reshape(shape)
    return out


def _components(ink: np.ndarray) -> np.ndarray:
    """Bounding boxes ``(y0, x0, y1, x1, pixels)`` (ends exclusive) of the 8-connected components
    of a boolean image, built from its horizontal runs (union-find, vectorised)."""
    h, w = ink.shape
    pad = np.zeros((h, w + 2), dtype=np.int8)
    pad[:, 1:-1] = ink
    d = np.diff(pad, axis=1)  # +1 where a run starts, -1 where it ends (exclusive)
    sr, sc = np.nonzero(d == 1)
    _er, ec = np.nonzero(d == -1)  # row-major: the i-th end closes the i-th start
    n = len(sr)
    if n == 0:
        return np.zeros((0, 5), dtype=np.int64)
    width = w + 2
    skey = sr.astype(np.int64) * width + sc
    ekey = sr.astype(np.int64) * width + ec
    # run a (row r, columns [s, e)) touches run b of row r + 1 when s_b <= e_a and e_b >= s_a
    nxt = (sr.astype(np.int64) + 1) * width
    lo = np.searchsorted(ekey, nxt + sc, side="left")
    hi = np.searchsorted(skey, nxt + ec, side="right")
    cnt = np.maximum(hi - lo, 0)
    a = np.repeat(np.arange(n), cnt)
    b = lo[a] + (np.arange(len(a)) - np.repeat(np.cumsum(cnt) - cnt, cnt))
    parent = np.arange(n)
    while len(a):
        ra, rb = parent[a], parent[b]
        differ = ra != rb
        if not differ.any():
            break
        a, b, ra, rb = a[differ], b[differ], ra[differ], rb[differ]
        np.minimum.at(parent, np.maximum(ra, rb), np.minimum(ra, rb))
        while True:  # pointer jumping: every run points at its root
            grand = parent[parent]
            if np.array_equal(grand, parent):
                break
            parent = grand
    order = np.argsort(parent, kind="stable")
    roots = parent[order]
    starts = np.flatnonzero(np.r_[True, roots[1:] != roots[:-1]])
    y0 = np.minimum.reduceat(sr[order], starts)
    y1 = np.maximum.reduceat(sr[order], starts) + 1
    x0 = np.minimum.reduceat(sc[order], starts)
    x1 = np.maximum.reduceat(ec[order], starts)
    px = np.add.reduceat((ec - sc)[order], starts)
    return np.stack([y0, x0, y1, x1, px], axis=1)


def _on_a_line(boxes: np.ndarray) -> np.ndarray:
    """Which boxes have a neighbour of similar height on the same baseline, close on its left or
    right (as letters in a word or words in a line do; a photo's blobs mostly do not)."""
    y0, x0, y1, x1 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    h = y1 - y0
    mark = np.zeros(len(boxes), dtype=bool)
    for key in (y1, y1 // 2, (y1 + 1) // 2):  # same bottom, give or take a pixel
        order = np.lexsort((x0, key))
        a, b = order[:-1], order[1:]
        tallest = np.maximum(h[a], h[b])
        gap = x0[b] - x1[a]
        ok = (
            (key[a] == key[b])
            & (gap >= -1)
            & (gap <= np.maximum(2, 1.2 * tallest))
            & (2 * np.minimum(h[a], h[b]) >= tallest)
        )
        mark[a[ok]] = True
        mark[b[ok]] = True
    return mark


def _unrotate(
    box: tuple[float, float, float, float], rotation: int, size: tuple[int, int]
) -> tuple[float, ...]:
    """Map a box read on the image turned *rotation* degrees clockwise back onto the image of
    *size* (width, height) it was turned from."""
    x0, y0, x1, y1 = box
    w, h = size
    if rotation == 90:
        return (y0, h - x1, y1, h - x0)
    if rotation == 180:
        return (w - x1, h - y1, w - x0, h - y0)
    if rotation == 270:
        return (w - y1, x0, w - y0, x1)
    return box


def _assemble(
    data: dict[str, list[Any]],
    *,
    scale: float = 1.0,
    rotation: int = 0,
    size: tuple[int, int] = (0, 0),
    min_confidence: float = 0.0,
    text_height: float | None = None,
    threshold: str = "otsu",
) -> OcrResult:
    """Text (lines joined by newlines, paragraphs by blank lines), mean confidence, word boxes in
    the pixel space of the (unscaled, unrotated) input image of *size*."""
    paragraphs: dict[tuple[int, int], dict[int, list[str]]] = {}
    words: list[WordBox] = []
    confs: list[float] = []
    inv = 1.0 / scale
    for i, word in enumerate(data.get("text", [])):
        word = (word or "").strip()
        conf = float(data["conf"][i])
        if not word or conf < 0:
            continue
        if conf >= min_confidence:
            key = (int(data["block_num"][i]), int(data["par_num"][i]))
            paragraphs.setdefault(key, {}).setdefault(int(data["line_num"][i]), []).append(word)
        x, y, w, h = (int(data[k][i]) for k in ("left", "top", "width", "height"))
        box = _unrotate((x * inv, y * inv, (x + w) * inv, (y + h) * inv), rotation, size)
        bx0, by0, bx1, by1 = (round(v) for v in box)
        words.append((word, round(conf, 1), bx0, by0, bx1, by1))
        confs.append(conf)
    text = "\n\n".join("\n".join(" ".join(line) for line in lines.values()) for lines in paragraphs.values())
    mean = round(sum(confs) / len(confs), 2) if confs else None
    return OcrResult(
        text=text,
        confidence=mean,
        words=tuple(words),
        rotation=rotation,
        scale=round(scale, 4),
        text_height=text_height,
        threshold=threshold,
    )


# -- preprocessing: perspective, skew, contrast ---------------------------------------------
def _prepare(
    grey: Image.Image, marks: _Marks
) -> tuple[Image.Image, _Marks, np.ndarray | None, list[str]]:
    """*grey* ready for reading: a photographed sheet cut out and rectified, skew straightened,
    faded print normalised. Returns the image, its marks, the homography (3x3, output pixel ->
    input pixel) when the geometry changed, and the steps taken. Each step is tried only where
    the measured copy shows it is needed; an image that needs none costs a few milliseconds."""
    steps: list[str] = []
    warp: np.ndarray | None = None
    quad = _find_sheet(marks)
    if quad is not None:
        out_size, h_rect = _rectify_homography(quad / marks.f)
        cand = _normalise_contrast(_apply(grey, h_rect, out_size))  # a photographed sheet: uneven light
        cand_marks = _Marks(cand)
        before = marks.measure()
        after = cand_marks.measure()
        # keep it unless text was lost (a light panel cut out of a screenshot)
        if after is not None and (before is None or after.glyphs >= 0.5 * before.glyphs):
            grey, marks, warp = cand, cand_marks, h_rect
            steps += ["perspective", "contrast"]
    angle = _skew(marks)
    if angle is not None:
        w, h = grey.size
        h_rot, out_size = _rotation_homography(angle, (w, h))
        cand = _apply(grey, h_rot, out_size)
        grey = cand
        marks = _Marks(cand)
        warp = h_rot if warp is None else warp @ h_rot
        steps.append("deskew")
    if "perspective" not in steps and not marks.blank and marks.ink.any() and not marks.ink.all():
        # ink against paper: the medians of the two Otsu classes; print is sparse (under uneven
        # light, in the local threshold), a photo's dark class is not
        spread = abs(float(np.median(marks.a[~marks.ink])) - float(np.median(marks.a[marks.ink])))
        if spread < _FADED and (marks.ink.mean() < _SPARSE or _sauvola(marks.a).mean() < _SPARSE):
            grey = _normalise_contrast(grey)
            marks = _Marks(grey)
            steps.append("contrast")
    return grey, marks, warp, steps


def _find_sheet(marks: _Marks) -> np.ndarray | None:
    """The corners (top-left, top-right, bottom-right, bottom-left; x, y in the measured copy) of
    a light sheet photographed on a darker background, or ``None``: the largest light region of a
    coarse copy, clear of the image's edges, markedly lighter than its surroundings and close to
    a quadrilateral."""
    a = marks.a
    if marks.blank or min(a.shape) < 64:
        return None
    q = max(1, max(a.shape) // 160)
    gh, gw = a.shape[0] // q, a.shape[1] // q
    coarse = a[: gh * q, : gw * q].reshape(gh, q, gw, q).mean(axis=(1, 3))
    c8 = coarse.astype(np.uint8)
    light = c8 > _otsu(c8)
    share = float(light.mean())
    if not 0.08 <= share <= 0.85:
        return None
    boxes = _components(light)
    y0, x0, y1, x1, px = (int(v) for v in boxes[int(np.argmax(boxes[:, 4]))])
    if px < 0.08 * light.size or y0 == 0 or x0 == 0 or y1 == gh or x1 == gw:
        return None  # small, or running off the picture: not a sheet seen whole
    region = np.zeros_like(light)
    region[y0:y1, x0:x1] = light[y0:y1, x0:x1]
    # the text on it is dark: fill the holes of each row between its first and last light cell
    rows = np.flatnonzero(region.any(axis=1))
    for r in rows:
        cols = np.flatnonzero(region[r])
        region[r, cols[0] : cols[-1] + 1] = True
    ys, xs = np.nonzero(region)
    inside, outside = float(coarse[region].mean()), float(coarse[~region].mean())
    if inside - outside < 40:
        return None
    sums, diffs = xs + ys, xs - ys
    corners = np.array(
        [
            (xs[np.argmin(sums)], ys[np.argmin(sums)]),
            (xs[np.argmax(diffs)], ys[np.argmax(diffs)]),
            (xs[np.argmax(sums)], ys[np.argmax(sums)]),
            (xs[np.argmin(diffs)], ys[np.argmin(diffs)]),
        ],
        dtype=np.float64,
    )
    corners[1:3, 0] += 1  # right edges and bottom edges: the far side of the cell
    corners[2:4, 1] += 1
    x, y = corners[:, 0], corners[:, 1]
    area = 0.5 * abs(float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))))
    if not 0.85 <= len(xs) / max(area, 1.0) <= 1.15:
        return None  # not a quadrilateral
    return corners * q


def _rectify_homography(quad: np.ndarray) -> tuple[tuple[int, int], np.ndarray]:
    """Output size and homography (output pixel -> input pixel) that map the quadrilateral *quad*
    (tl, tr, br, bl) onto an upright rectangle of its mean side lengths."""
    tl, tr, br, bl = quad
    w = max(1, round((np.linalg.norm(tr - tl) + np.linalg.norm(br - bl)) / 2))
    h = max(1, round((np.linalg.norm(bl - tl) + np.linalg.norm(br - tr)) / 2))
    return (w, h), _homography([(0, 0), (w, 0), (w, h), (0, h)], quad)


def _homography(src: Any, dst: Any) -> np.ndarray:
    """The 3x3 homography mapping the four points *src* onto *dst*."""
    m, v = [], []
    for (x, y), (u, t) in zip(src, dst, strict=True):
        m.append([x, y, 1, 0, 0, 0, -u * x, -u * y])
        m.append([0, 0, 0, x, y, 1, -t * x, -t * y])
        v += [u, t]
    c = np.linalg.solve(np.array(m, dtype=np.float64), np.array(v, dtype=np.float64))
    return np.append(c, 1.0).reshape(3, 3)


def _rotation_homography(angle: float, size: tuple[int, int]) -> tuple[np.ndarray, tuple[int, int]]:
    """Homography (output -> input) turning an image of *size* by *angle* degrees
    (counter-clockwise) onto a canvas that holds all of it, and the canvas size."""
    w, h = size
    r = math.radians(angle)
    cos, sin = math.cos(r), math.sin(r)
    ow = round(abs(w * cos) + abs(h * sin))
    oh = round(abs(w * sin) + abs(h * cos))
    # output (x', y') centred -> input: rotate back by -angle about the centres
    to_centre = np.array([[1, 0, -ow / 2], [0, 1, -oh / 2], [0, 0, 1]], dtype=np.float64)
    back = np.array([[cos, sin, 0], [-sin, cos, 0], [0, 0, 1]], dtype=np.float64)
    from_centre = np.array([[1, 0, w / 2], [0, 1, h / 2], [0, 0, 1]], dtype=np.float64)
    return from_centre @ back @ to_centre, (ow, oh)


def _apply(grey: Image.Image, warp: np.ndarray, size: tuple[int, int]) -> Image.Image:
    """*grey* resampled through *warp* (output -> input) onto *size*; outside it: paper white."""
    from PIL import Image as PILImage

    c = (warp / warp[2, 2]).ravel()[:8]
    return grey.transform(
        size, PILImage.Transform.PERSPECTIVE, tuple(c.tolist()), PILImage.Resampling.BICUBIC, fillcolor=255
    )


def _warp_boxes(words: tuple[WordBox, ...], warp: np.ndarray, size: tuple[int, int]) -> tuple[WordBox, ...]:
    """Word boxes read on the warped image mapped back through *warp* onto the input of *size*:
    the bounding box of the mapped corners, clipped to the image."""
    if not words:
        return words
    b = np.array([wd[2:] for wd in words], dtype=np.float64)
    xs = np.stack([b[:, 0], b[:, 2], b[:, 2], b[:, 0]], axis=1)
    ys = np.stack([b[:, 1], b[:, 1], b[:, 3], b[:, 3]], axis=1)
    pts = np.stack([xs, ys, np.ones_like(xs)], axis=-1) @ warp.T
    px, py = pts[..., 0] / pts[..., 2], pts[..., 1] / pts[..., 2]
    w, h = size
    x0, x1 = np.clip(px.min(axis=1), 0, w), np.clip(px.max(axis=1), 0, w)
    y0, y1 = np.clip(py.min(axis=1), 0, h), np.clip(py.max(axis=1), 0, h)
    return tuple(
        (wd[0], wd[1], round(a), round(c), round(d), round(e))
        for wd, a, c, d, e in zip(words, x0, y0, x1, y1, strict=True)
    )


def _skew(marks: _Marks) -> float | None:
    """The angle (degrees, counter-clockwise) by which the text lines of the measured copy are
    turned, when it is between ``_MIN_SKEW`` and ``_MAX_SKEW``; else ``None``. The angle whose
    projection of the glyph centres onto the vertical is sharpest (sum of squared row counts),
    searched in half degrees, then tenths."""
    b = marks.boxes
    if len(b) < 20:
        return None
    h = b[:, 2] - b[:, 0]
    w = b[:, 3] - b[:, 1]
    keep = (h >= 3) & (h <= 0.1 * marks.a.shape[0] + 3) & (w <= 4 * h)
    b = b[keep]
    if len(b) < 20:
        return None
    cy = (b[:, 0] + b[:, 2]) / 2.0
    cx = (b[:, 1] + b[:, 3]) / 2.0
    cx = cx - cx.mean()

    def score(deg: float) -> float:
        y = cy + cx * math.tan(math.radians(deg))
        counts = np.bincount(np.rint(y - y.min()).astype(np.int64))
        return float(np.dot(counts, counts))

    coarse = max(np.arange(-_MAX_SKEW, _MAX_SKEW + 0.01, 0.5), key=score)
    best = float(max(np.arange(coarse - 0.4, coarse + 0.41, 0.1), key=score))
    if abs(best) < _MIN_SKEW or abs(best) > _MAX_SKEW:
        return None
    if score(best) < 1.3 * score(0.0):
        return None  # not markedly sharper than as it is
    return round(best, 1)


def _normalise_contrast(grey: Image.Image) -> Image.Image:
    """Faded print made black on white: noise smoothed (Gaussian, 0.7 px), the paper's brightness (the maximum of blocks a 24th of
    the shorter side, smoothed) divided out (uneven light, shadows, fade), then the darkest ink
    stretched to black."""
    from PIL import Image as PILImage
    from PIL import ImageFilter

    a = np.asarray(grey.filter(ImageFilter.GaussianBlur(0.7)), dtype=np.float32)  # sensor noise, JPEG specks
    h, w = a.shape
    q = max(4, min(h, w) // 24)
    gh, gw = -(-h // q), -(-w // q)
    x = np.pad(a, ((0, gh * q - h), (0, gw * q - w)), mode="edge")
    paper = _window_mean(x.reshape(gh, q, gw, q).max(axis=(1, 3)).astype(np.float64), 1)
    bg = PILImage.fromarray(paper.astype(np.float32), "F").resize((w, h), PILImage.Resampling.BILINEAR)
    flat = a / np.maximum(np.asarray(bg, dtype=np.float32), 1.0)
    lo = float(np.percentile(flat, 1))
    out = np.clip((flat - lo) / max(0.92 - lo, 1e-3) * 255.0, 0, 255)
    return PILImage.fromarray(out.astype(np.uint8), "L")


# -- engines: Tesseract in this process (tesserocr) or as a program (pytesseract) ------------------
#: The word rows of Tesseract's TSV output, as pytesseract's ``image_to_data`` gives them.
_TSV_FIELDS = (
    "level", "page_num", "block_num", "par_num", "line_num", "word_num",
    "left", "top", "width", "height", "conf", "text",
)  # fmt: skip


def _parse_tsv(tsv: str) -> dict[str, list[Any]]:
    """Tesseract's TSV (no header line) as columns; only the word rows (level 5)."""
    data: dict[str, list[Any]] = {k: [] for k in _TSV_FIELDS}
    for line in tsv.splitlines():
        parts = line.split("\t", 11)
        if len(parts) != 12 or parts[0] != "5":
            continue
        for key, value in zip(_TSV_FIELDS[:10], parts[:10], strict=True):
            data[key].append(int(value))
        data["conf"].append(float(parts[10]))
        data["text"].append(parts[11])
    return data


class _ProgramEngine:
    """The ``tesseract`` program, run once per reading through pytesseract."""

    def __init__(self) -> None:
        self._tess = require("pytesseract", extra="ocr")
        require_binary("tesseract", apt="tesseract-ocr", brew="tesseract", purpose="OCR")

    def languages(self) -> set[str]:
        return set(self._tess.get_languages(config=""))

    def read(self, img: Image.Image, languages: str, psm: int, local: bool, timeout: float, source: str) -> dict[str, list[Any]]:
        config = f"--psm {psm}"
        if local:
            config += f" -c thresholding_method={SAUVOLA}"
        return self._call(
            self._tess.image_to_data, img, timeout, source, lang=languages, config=config, output_type=self._tess.Output.DICT
        )

    def rotation(self, img: Image.Image, timeout: float, source: str) -> int:
        try:
            osd = self._call(self._tess.image_to_osd, img, timeout, source, output_type=self._tess.Output.DICT)
        except InvalidInputError as exc:  # too few characters to decide: keep the plain reading
            logger.debug("%s: orientation detection skipped: %s", source, exc)
            return 0
        return int(osd.get("rotate", 0)) % 360

    def _call(self, fn: Any, image: Image.Image, timeout: float, source: str, **kwargs: Any) -> Any:
        # Tesseract is handed a PGM file: pytesseract would write a PNG, whose compression cost
        # this process more than some of the readings it fed (and Tesseract decompressing it)
        fd, path = tempfile.mkstemp(prefix="mm_rag_ocr_", suffix=".pgm")
        try:
            with os.fdopen(fd, "wb") as f:
                image.save(f, format="PPM")
            return fn(path, timeout=timeout, **kwargs)
        except RuntimeError as exc:  # pytesseract raises RuntimeError on its timeout
            raise InvalidInputError(f"OCR timed out after {timeout:g}s ({exc})", source=source) from exc
        except self._tess.TesseractError as exc:
            raise InvalidInputError(f"OCR failed: {str(exc)[:200]}", source=source) from exc
        finally:
            with contextlib.suppress(OSError):
                os.unlink(path)


class _LibraryEngine:
    """Tesseract's library in this process (tesserocr): its model is loaded once per thread, not
    once per reading, and the image is handed over as pixels, not as a file. One
    ``PyTessBaseAPI`` per thread (they are not thread-safe) and per process (a forked child makes
    its own); recognition releases the GIL, so the OCR threads of a document run in parallel.
    Each loaded model stays with its thread (about 25 MB each for English and orientation)."""

    def __init__(self, tessdata: str) -> None:
        self._lib = require("tesserocr", extra="ocr")
        self.tessdata = tessdata
        self._local = threading.local()
        _quiet_leptonica(self._lib)

    def __getstate__(self) -> dict[str, Any]:
        return {"tessdata": self.tessdata}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["tessdata"])  # type: ignore[misc]

    def languages(self) -> set[str]:
        return set(self._lib.get_languages(self.tessdata)[1])

    def _api(self, languages: str) -> Any:
        apis: dict[str, Any] | None = getattr(self._local, "apis", None)
        if apis is None or self._local.pid != os.getpid():
            apis = self._local.apis = {}
            self._local.pid = os.getpid()
        api = apis.get(languages)
        if api is None:
            lib = self._lib
            psm = lib.PSM.OSD_ONLY if languages == "osd" else lib.PSM.AUTO
            try:
                api = lib.PyTessBaseAPI(path=self.tessdata, lang=languages, psm=psm)
            except RuntimeError as exc:
                raise ConfigurationError(
                    f"Tesseract could not load {languages!r} from {self.tessdata} ({exc})"
                ) from exc
            api.SetVariable("debug_file", os.devnull)  # its diagnostics, printed to stderr otherwise
            apis[languages] = api
        return api

    def _set(self, api: Any, img: Image.Image) -> None:
        if img.mode != "L":
            img = img.convert("L")
        api.SetImageBytes(img.tobytes(), img.width, img.height, 1, img.width)

    def read(self, img: Image.Image, languages: str, psm: int, local: bool, timeout: float, source: str) -> dict[str, list[Any]]:
        api = self._api(languages)
        api.SetPageSegMode(psm)
        api.SetVariable("thresholding_method", str(SAUVOLA) if local else "0")
        self._set(api, img)
        try:
            if not api.Recognize(timeout=max(1, int(timeout * 1000))):
                raise InvalidInputError(f"OCR failed or timed out after {timeout:g}s", source=source)
            return _parse_tsv(api.GetTSVText(0) or "")
        finally:
            api.Clear()

    def rotation(self, img: Image.Image, timeout: float, source: str) -> int:
        api = self._api("osd")
        self._set(api, img)
        try:
            osd = api.DetectOrientationScript()
        finally:
            api.Clear()
        if not osd:  # too few characters to decide: keep the plain reading
            logger.debug("%s: orientation detection found too little text", source)
            return 0
        return (360 - int(osd["orient_deg"])) % 360  # the turn that puts it upright, as `tesseract --psm 0` says


#: Leptonica's messages ("Error in pixScanForForeground: invalid box" on some images Tesseract
#: copes with), printed to this process's standard error unless handed elsewhere: to the log.
_LEPT_HANDLER = ctypes.CFUNCTYPE(None, ctypes.c_char_p)


@functools.cache
def _quiet_leptonica(lib: Any) -> Any:
    """Send the messages of the Leptonica that *lib* (tesserocr) loaded to the debug log."""
    folder = os.path.dirname(os.path.dirname(os.path.abspath(lib.__file__)))
    paths = glob.glob(os.path.join(folder, "tesserocr.libs", "libleptonica*.so*"))
    paths += [p for p in (ctypes.util.find_library("leptonica"), ctypes.util.find_library("lept")) if p]
    for path in paths:
        try:
            lept = ctypes.CDLL(path)  # the copy already loaded: the same handle
        except OSError:
            continue
        if hasattr(lept, "leptSetStderrHandler"):
            handler = _LEPT_HANDLER(lambda msg: logger.debug("leptonica: %s", (msg or b"").decode(errors="replace").strip()))
            lept.leptSetStderrHandler(handler)
            return handler  # kept: Leptonica holds a pointer to it
        if hasattr(lept, "setMsgSeverity"):
            lept.setMsgSeverity(6)  # L_SEVERITY_NONE
            return None
    return None


@functools.lru_cache(maxsize=4)
def _tessdata(env: str | None = None) -> str | None:
    """The folder of Tesseract's traineddata: ``TESSDATA_PREFIX``, else where the ``tesseract``
    program looks, else the usual places."""
    candidates = [env, os.path.join(env, "tessdata")] if env else []
    program = shutil.which("tesseract")
    if program:
        with contextlib.suppress(OSError, subprocess.SubprocessError):
            out = subprocess.run(
                [program, "--list-langs"], capture_output=True, text=True, timeout=30, check=False
            ).stdout
            found = re.search(r'"([^"\n]+)"', out.split("\n", 1)[0])
            if found:
                candidates.append(found.group(1))
    candidates += [
        "/usr/share/tesseract-ocr/5/tessdata",
        "/usr/share/tesseract-ocr/4.00/tessdata",
        "/usr/share/tessdata",
        "/usr/local/share/tessdata",
        "/opt/homebrew/share/tessdata",
    ]
    for folder in candidates:
        with contextlib.suppress(OSError):
            if folder and any(n.endswith(".traineddata") for n in os.listdir(folder)):
                return folder.rstrip("/") + "/"
    return None


def _make_engine(name: str) -> _LibraryEngine | _ProgramEngine:
    if name not in ENGINES:
        raise ConfigurationError(f"engine must be one of {', '.join(ENGINES)}, got {name!r}")
    if name == "pytesseract" or (name == "auto" and importlib.util.find_spec("tesserocr") is None):
        return _ProgramEngine()
    require("tesserocr", extra="ocr")
    folder = _tessdata(os.environ.get("TESSDATA_PREFIX"))
    if folder is None:
        raise MissingDependencyError(
            "Tesseract's language data (eng.traineddata) was not found. Install it with: "
            "apt-get install tesseract-ocr (Debian/Ubuntu), or set TESSDATA_PREFIX to its folder"
        )
    return _LibraryEngine(folder)
