"""Images for a generator request: read, validate, downscale and re-encode under a byte budget.

Images whose bytes already fit (a format Gemini reads, small enough in pixels and bytes) are sent
unchanged; others are decoded safely (:func:`mm_rag_plugin._images.load_image`: bomb check,
EXIF orientation, RGB), shrunk to ``max_side`` and re-encoded as JPEG, lowering quality and size
until they fit ``max_bytes``.
"""

from __future__ import annotations

import io
import logging
import os
import warnings
from dataclasses import dataclass

from PIL import Image

from .._images import DEFAULT_MAX_PIXELS, load_image, read_image_bytes
from ..errors import InvalidInputError

logger = logging.getLogger(__name__)

__all__ = ["GEMINI_IMAGE_MIME_TYPES", "InlineImage", "base64_size", "prepare_inline_image"]

#: Image types the Gemini API accepts as inline data.
GEMINI_IMAGE_MIME_TYPES = frozenset({"image/png", "image/jpeg", "image/webp", "image/heic", "image/heif"})

_PIL_FORMAT_MIME = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
_SMALLEST_SIDE = 64  # never shrink below this; give up instead


@dataclass(frozen=True, slots=True)
class InlineImage:
    """Encoded image bytes ready to send inline, and what was done to them."""

    data: bytes
    mime_type: str
    width: int
    height: int
    resized: bool  # True when re-encoded (downscaled or converted), False for the original bytes


def base64_size(n: int) -> int:
    """Bytes that *n* raw bytes take once base64-encoded (as in a JSON request)."""
    return (n + 2) // 3 * 4


def _sniff(data: bytes) -> tuple[str | None, tuple[int, int] | None]:
    """Format (as a MIME type) and size from the header only, without decoding pixels."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with Image.open(io.BytesIO(data)) as img:
                return _PIL_FORMAT_MIME.get(img.format or ""), img.size
    except Exception:  # undecodable here; load_image below gives the precise error
        return None, None


def _encode_jpeg(img: Image.Image, quality: int) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality, optimize=True)
    return buf.getvalue()


def prepare_inline_image(
    image: str | os.PathLike[str] | bytes,
    *,
    max_side: int = 1536,
    max_bytes: int = 4_000_000,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    source: str | None = None,
) -> InlineImage:
    """Return the image as bytes of at most *max_bytes*, longest side at most *max_side* pixels.

    Raises :class:`InvalidInputError` naming *source* when the image cannot be read or decoded,
    is a decompression bomb, or cannot be made small enough.
    """
    if max_side < _SMALLEST_SIDE or max_bytes < 1024:
        raise InvalidInputError(
            f"max_side must be >= {_SMALLEST_SIDE} and max_bytes >= 1024 (got {max_side}, {max_bytes})"
        )
    label = source or (os.fspath(image) if isinstance(image, (str, os.PathLike)) else f"<{len(image)} bytes>")
    data = read_image_bytes(image, source=label)
    if not data:
        raise InvalidInputError("image is empty (0 bytes)", source=label)
    mime, size = _sniff(data)
    if (
        mime in GEMINI_IMAGE_MIME_TYPES
        and size is not None
        and max(size) <= max_side
        and len(data) <= max_bytes
        and (max_pixels is None or size[0] * size[1] <= max_pixels)
    ):
        # Validate by decoding (truncated/corrupt files fail here), but send the original bytes.
        load_image(data, max_pixels=max_pixels, source=label)
        return InlineImage(data, mime, size[0], size[1], resized=False)

    rgb = load_image(data, max_pixels=max_pixels, source=label).image
    side = min(max_side, max(rgb.size))
    while True:
        img = rgb.copy()
        img.thumbnail((side, side), Image.Resampling.LANCZOS)
        for quality in (85, 70, 55):
            out = _encode_jpeg(img, quality)
            if len(out) <= max_bytes:
                logger.debug(
                    "%s: re-encoded %dx%d -> %dx%d JPEG q%d, %d bytes",
                    label,
                    *rgb.size,
                    *img.size,
                    quality,
                    len(out),
                )
                return InlineImage(out, "image/jpeg", img.size[0], img.size[1], resized=True)
        if side <= _SMALLEST_SIDE:
            break
        side = max(_SMALLEST_SIDE, int(side * 0.7))
    raise InvalidInputError(
        f"image cannot be reduced under {max_bytes:,} bytes even at {_SMALLEST_SIDE}px", source=label
    )
