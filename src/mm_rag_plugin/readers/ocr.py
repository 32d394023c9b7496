"""OCR with Tesseract (pytesseract over the ``tesseract`` program).

:class:`TesseractOCR` turns a PIL image into an :class:`OcrResult`: the text (lines and paragraphs
kept), the mean word confidence (0..100) and word boxes in the pixel space of the image it was
given. Small images are upscaled and everything is greyscaled before recognition; images too small
to hold legible text are skipped. When a page reads badly, the orientation detector (OSD) is asked
whether it is rotated, and the rotated reading is kept if it is more confident.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .._optional import require, require_binary
from ..errors import ConfigurationError, InvalidInputError

if TYPE_CHECKING:
    from PIL import Image

logger = logging.getLogger(__name__)

__all__ = ["OcrResult", "TesseractOCR"]

#: (word, confidence 0..100, x0, y0, x1, y1) in pixels of the input image.
WordBox = tuple[str, float, int, int, int, int]


@dataclass(frozen=True, slots=True)
class OcrResult:
    text: str
    confidence: float | None  # mean word confidence 0..100; None when no word was found
    words: tuple[WordBox, ...] = ()
    rotation: int = 0  # degrees (clockwise) the image was rotated before the kept reading


class TesseractOCR:
    """Tesseract OCR engine.

    ``languages`` is Tesseract's ``-l`` value (``"eng"``, ``"eng+deu"``); each language needs its
    traineddata (``apt-get install tesseract-ocr-deu``). ``min_side``: images whose shorter side is
    below it are not OCR'd. ``upscale_to``: images whose shorter side is below it are enlarged
    (up to 4x) so that small text reaches a size Tesseract reads well. ``max_side`` bounds the work
    on huge images. ``auto_rotate`` runs orientation detection on low-confidence readings.
    ``timeout`` (seconds) stops one recognition that runs too long.
    """

    def __init__(
        self,
        languages: str = "eng",
        *,
        min_side: int = 16,
        upscale_to: int = 300,
        max_side: int = 4000,
        psm: int = 3,
        auto_rotate: bool = True,
        rotate_below: float = 60.0,
        timeout: float = 60.0,
    ) -> None:
        self._tess = require("pytesseract", extra="ocr")
        require_binary("tesseract", apt="tesseract-ocr", brew="tesseract", purpose="OCR")
        wanted = [lang for lang in languages.split("+") if lang]
        if not wanted:
            raise ConfigurationError("languages must name at least one Tesseract language, e.g. 'eng'")
        installed = set(self._tess.get_languages(config=""))
        missing = [lang for lang in wanted if lang not in installed]
        if missing:
            raise ConfigurationError(
                f"Tesseract language(s) {missing} are not installed (installed: {sorted(installed)}). "
                f"Install them with: apt-get install {' '.join('tesseract-ocr-' + m.replace('_', '-') for m in missing)}"
            )
        self.languages = "+".join(wanted)
        self.min_side = min_side
        self.upscale_to = upscale_to
        self.max_side = max_side
        self.psm = psm
        self.auto_rotate = auto_rotate and "osd" in installed
        self.rotate_below = rotate_below
        self.timeout = timeout

    def recognize(self, image: Image.Image, *, source: str = "<image>") -> OcrResult | None:
        """OCR *image*; ``None`` when it is too small to read. Raises :class:`InvalidInputError`
        when Tesseract fails or times out on it."""
        w, h = image.size
        if min(w, h) < self.min_side:
            return None
        grey, scale = self._prepare(image)
        result = self._read(grey, scale, source)
        if self.auto_rotate and (result.confidence is None or result.confidence < self.rotate_below):
            angle = self._detect_rotation(grey, source)
            if angle:
                rotated = self._read(grey.rotate(-angle, expand=True), scale, source, rotation=angle)
                if (rotated.confidence or 0) > (result.confidence or 0):
                    result = rotated
        return result

    # -- internals -------------------------------------------------------------------------
    def _prepare(self, image: Image.Image) -> tuple[Image.Image, float]:
        from PIL import Image as PILImage

        grey = image.convert("L")
        w, h = grey.size
        scale = 1.0
        if min(w, h) < self.upscale_to:
            scale = min(4.0, self.upscale_to / min(w, h))
        if max(w, h) * scale > self.max_side:
            scale = self.max_side / max(w, h)
        if not math.isclose(scale, 1.0):
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            grey = grey.resize(
                size, PILImage.Resampling.LANCZOS if scale < 1 else PILImage.Resampling.BICUBIC
            )
        return grey, scale

    def _call(self, fn: Any, image: Image.Image, source: str, **kwargs: Any) -> Any:
        try:
            return fn(image, timeout=self.timeout, **kwargs)
        except RuntimeError as exc:  # pytesseract raises RuntimeError on its timeout
            raise InvalidInputError(f"OCR timed out after {self.timeout:g}s ({exc})", source=source) from exc
        except self._tess.TesseractError as exc:
            raise InvalidInputError(f"OCR failed: {str(exc)[:200]}", source=source) from exc

    def _read(self, grey: Image.Image, scale: float, source: str, rotation: int = 0) -> OcrResult:
        data = self._call(
            self._tess.image_to_data,
            grey,
            source,
            lang=self.languages,
            config=f"--psm {self.psm}",
            output_type=self._tess.Output.DICT,
        )
        return _assemble(data, 1.0 / scale, rotation)

    def _detect_rotation(self, grey: Image.Image, source: str) -> int:
        try:
            osd = self._call(self._tess.image_to_osd, grey, source, output_type=self._tess.Output.DICT)
        except InvalidInputError as exc:  # too few characters to decide: keep the plain reading
            logger.debug("%s: orientation detection skipped: %s", source, exc)
            return 0
        return int(osd.get("rotate", 0)) % 360


def _assemble(data: dict[str, list[Any]], inv: float, rotation: int) -> OcrResult:
    """Text (lines joined by newlines, paragraphs by blank lines), mean confidence, word boxes."""
    paragraphs: dict[tuple[int, int], dict[int, list[str]]] = {}
    words: list[WordBox] = []
    confs: list[float] = []
    for i, word in enumerate(data.get("text", [])):
        word = (word or "").strip()
        conf = float(data["conf"][i])
        if not word or conf < 0:
            continue
        key = (int(data["block_num"][i]), int(data["par_num"][i]))
        paragraphs.setdefault(key, {}).setdefault(int(data["line_num"][i]), []).append(word)
        x, y, w, h = (int(data[k][i]) for k in ("left", "top", "width", "height"))
        words.append(
            (word, round(conf, 1), round(x * inv), round(y * inv), round((x + w) * inv), round((y + h) * inv))
        )
        confs.append(conf)
    text = "\n\n".join("\n".join(" ".join(line) for line in lines.values()) for lines in paragraphs.values())
    mean = round(sum(confs) / len(confs), 2) if confs else None
    return OcrResult(text=text, confidence=mean, words=tuple(words), rotation=rotation)
