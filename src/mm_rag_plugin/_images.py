"""Safe image decoding shared by the embedder and the readers.

Every image the library touches goes through :func:`load_image`: it accepts paths, ``data:`` URIs,
bytes and PIL images; refuses decompression bombs *before* decoding pixels; turns truncated or
corrupt files into :class:`InvalidInputError` naming the input; applies EXIF orientation; and
returns 8-bit RGB whatever the source mode (CMYK, palette, alpha, 16-bit, float).
"""

from __future__ import annotations

import base64
import binascii
import io
import logging
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps

from .errors import DecompressionBombError, InvalidInputError, echo
from .ids import content_hash
from .types import ImageInput

logger = logging.getLogger(__name__)

__all__ = ["DEFAULT_MAX_PIXELS", "LoadedImage", "describe", "load_image", "read_image_bytes", "to_rgb"]

#: Default decompression-bomb limit: Pillow's own default (about 89.5 megapixels).
DEFAULT_MAX_PIXELS = 89_478_485

_DATA_URI = re.compile(r"^data:(?P<mime>[\w.+-]+/[\w.+-]+)?(?P<params>(;[\w.+-]+=[\w.+-]+)*)(?P<b64>;base64)?,", re.I)


@dataclass(frozen=True, slots=True)
class LoadedImage:
    """A decoded RGB image and the hash of what it was decoded from."""

    image: Image.Image
    hash: str
    source: str


def describe(inp: object) -> str:
    """A short label for an image input, for error messages and logs."""
    if isinstance(inp, (str, os.PathLike)):
        s = os.fspath(inp)
        return s[:40] + "...(data URI)" if s.startswith("data:") else s
    if isinstance(inp, (bytes, bytearray, memoryview)):
        return f"<{len(inp)} bytes>"
    if isinstance(inp, Image.Image):
        return f"<PIL {inp.mode} {inp.size[0]}x{inp.size[1]}>"
    return echo(inp, 60)


def read_image_bytes(inp: str | os.PathLike[str] | bytes, *, source: str | None = None) -> bytes:
    """The encoded bytes behind a path, ``data:`` URI or bytes input."""
    label = source or describe(inp)
    if isinstance(inp, (bytes, bytearray, memoryview)):
        return bytes(inp)
    if isinstance(inp, str) and inp[:5].lower() == "data:":
        m = _DATA_URI.match(inp)
        if not m:
            raise InvalidInputError("malformed data: URI (expected data:image/...;base64,...)", source=label)
        payload = inp[m.end() :]
        if not m.group("b64"):
            from urllib.parse import unquote_to_bytes

            return unquote_to_bytes(payload)
        try:
            return base64.b64decode(payload, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise InvalidInputError(f"data: URI is not valid base64 ({exc})", source=label) from exc
    if isinstance(inp, (str, os.PathLike)):
        path = Path(inp)
        try:
            return path.read_bytes()
        except FileNotFoundError as exc:
            raise InvalidInputError("image file not found", source=label) from exc
        except IsADirectoryError as exc:
            raise InvalidInputError("is a directory, not an image file", source=label) from exc
        except OSError as exc:
            raise InvalidInputError(f"cannot read image file ({exc.strerror or exc})", source=label) from exc
    raise InvalidInputError(
        f"unsupported image input of type {type(inp).__name__}; expected a path, data: URI, bytes or PIL image",
        source=label,
    )


def _check_pixels(size: tuple[int, int], max_pixels: int | None, label: str) -> None:
    w, h = size
    if w <= 0 or h <= 0:
        raise InvalidInputError(f"image has an empty size ({w}x{h})", source=label)
    if max_pixels is not None and w * h > max_pixels:
        raise DecompressionBombError(
            f"image is {w}x{h} = {w * h:,} pixels, over the limit of {max_pixels:,} "
            "(possible decompression bomb; raise max_image_pixels to allow it)",
            source=label,
        )


def to_rgb(img: Image.Image) -> Image.Image:
    """Convert any Pillow mode to 8-bit RGB; transparency is composited on white."""
    mode = img.mode
    if mode == "RGB":
        return img
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        arr = np.asarray(img, dtype=np.float64)
        lo, hi = (0.0, 65535.0) if mode.startswith("I;16") else (float(arr.min()), float(arr.max()))
        if hi <= lo:
            hi = lo + 1.0
        arr8 = np.clip(np.rint((arr - lo) * (255.0 / (hi - lo))), 0, 255).astype(np.uint8)
        return Image.fromarray(arr8, mode="L").convert("RGB")
    if (mode == "P" and "transparency" in img.info) or mode in ("RGBA", "LA", "PA", "La", "RGBa"):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return img.convert("RGB")


def _decode(data: bytes | None, pil: Image.Image | None, label: str, max_pixels: int | None) -> Image.Image:
    try:
        with warnings.catch_warnings(record=True) as caught:
            # Pillow warns about corrupt metadata and on its own bomb limit (we apply ours): record
            # the warnings so that decoding behaves the same whatever the caller's warning filters.
            warnings.simplefilter("always")
            img: Image.Image
            if pil is None:
                assert data is not None
                img = Image.open(io.BytesIO(data))
            else:
                img = pil
            _check_pixels(img.size, max_pixels, label)
            if getattr(img, "n_frames", 1) > 1:
                img.seek(0)
            img.load()
            try:
                img = ImageOps.exif_transpose(img) or img
            except Exception as exc:  # malformed EXIF must not lose the picture
                logger.debug("ignoring unreadable EXIF orientation in %s: %s", label, exc)
            _check_pixels(img.size, max_pixels, label)
            rgb = to_rgb(img)
        for w in caught:
            logger.debug("%s: decoder warning: %s", label, w.message)
        return rgb
    except InvalidInputError:
        raise
    except Image.DecompressionBombError as exc:
        raise DecompressionBombError(f"refused by the decoder as a decompression bomb ({exc})", source=label) from exc
    except Image.UnidentifiedImageError as exc:
        raise InvalidInputError("not a recognised image format", source=label) from exc
    except (MemoryError, RecursionError) as exc:
        raise InvalidInputError(f"image is too large or malformed to decode ({type(exc).__name__})", source=label) from exc
    except Exception as exc:  # Pillow raises OSError, ValueError, SyntaxError, struct.error, ...
        msg = str(exc) or type(exc).__name__
        if "truncated" in msg.lower():
            msg = f"image file is truncated ({msg})"
        else:
            msg = f"corrupt or unreadable image ({type(exc).__name__}: {msg})"
        raise InvalidInputError(msg[:300], source=label) from exc


def load_image(
    inp: ImageInput,
    *,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
    source: str | None = None,
) -> LoadedImage:
    """Decode *inp* into an RGB PIL image, safely.

    Raises :class:`InvalidInputError` (or its subclass :class:`DecompressionBombError`) naming the
    input when it cannot be read, is not an image, is truncated/corrupt, or is too large.
    """
    label = source or describe(inp)
    if isinstance(inp, Image.Image):
        digest = content_hash(f"{inp.mode}{inp.size}".encode() + inp.tobytes())
        return LoadedImage(_decode(None, inp, label, max_pixels), digest, label)
    data = read_image_bytes(inp, source=label)
    if not data:
        raise InvalidInputError("image is empty (0 bytes)", source=label)
    return LoadedImage(_decode(data, None, label, max_pixels), content_hash(data), label)
