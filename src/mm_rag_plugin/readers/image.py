"""Image files (photos, screenshots, scans): one image chunk each, with OCR text."""

from __future__ import annotations

from pathlib import Path

from ..errors import InvalidInputError
from ._base import BaseReader, ChunkBuilder

__all__ = ["ImageReader"]


class ImageReader(BaseReader):
    """One :class:`ImageChunk` per image file. The chunk points at the original file, or at a
    downscaled copy in the blob folder when the image is larger than ``max_stored_side``.
    Undecodable, truncated and decompression-bomb images raise :class:`InvalidInputError`."""

    kind = "image"

    def _read(self, path: Path, out: ChunkBuilder) -> None:
        if not out.add_image(path=str(path), where="image", force=True):
            if out.errors:  # the whole file is one image: its failure is the file's failure
                err = out.errors.pop()
                raise InvalidInputError(err.error, source=str(path))
            raise InvalidInputError(
                f"image is smaller than min_image_size={self.config.min_image_size} pixels", source=str(path)
            )
