"""A content-addressed folder for image bytes.

Images found inside documents (PDF, DOCX, data: URIs, downloads) are written once to
``<folder>/<content_hash>.<ext>``; chunks refer to that path, never carry the bytes. Images larger
than ``max_side`` pixels on their longer side are downscaled for storage (the hash stays the hash
of the original bytes, so duplicates are still recognised); :attr:`StoredImage.file_hash` is the
hash of the bytes actually in the file, which an index checks before it reads them again.
"""

from __future__ import annotations

import io
import logging
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from ..errors import ConfigurationError
from ..ids import content_hash
from ._detect import MIME_EXTENSIONS

if TYPE_CHECKING:
    from PIL import Image

logger = logging.getLogger(__name__)

__all__ = ["BlobStore", "StoredImage", "default_blob_dir"]

#: Formats kept as they are when small enough; anything else is re-encoded as PNG.
_KEEP = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


def default_blob_dir() -> Path:
    """``$MM_RAG_BLOB_DIR``, else ``$XDG_CACHE_HOME/mm-rag-plugin/blobs`` (``~/.cache/...``)."""
    from .._cache import cache_path

    return cache_path("blobs", "MM_RAG_BLOB_DIR")


@dataclass(frozen=True, slots=True)
class StoredImage:
    path: str
    mime_type: str
    width: int
    height: int
    downscaled: bool
    file_hash: str  # hash of the bytes in the file (the original's hash unless re-encoded)


class BlobStore:
    """Write image bytes once per content hash; safe to share between processes."""

    def __init__(self, folder: str | os.PathLike[str] | None = None, *, max_side: int = 2048) -> None:
        if max_side < 32:
            raise ConfigurationError(f"max_side must be at least 32 pixels, got {max_side}")
        self.folder = Path(folder) if folder is not None else default_blob_dir()
        self.max_side = max_side
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigurationError(f"cannot create blob folder {self.folder}: {exc}") from exc

    def needs_downscale(self, image: Image.Image) -> bool:
        return max(image.size) > self.max_side

    def put(self, digest: str, data: bytes | None, mime: str | None, image: Image.Image) -> StoredImage:
        """Store the image with hash *digest*: its encoded *data* as is when that is a web format
        and small enough, else *image* (decoded RGB) re-encoded, downscaled if needed."""
        downscale = self.needs_downscale(image)
        if data is not None and mime in _KEEP and not downscale:
            ext, payload, size = MIME_EXTENSIONS[mime], data, image.size
        else:
            img = image
            if downscale:
                img = image.copy()
                img.thumbnail((self.max_side, self.max_side))
            mime = "image/jpeg" if mime == "image/jpeg" else "image/png"
            ext = MIME_EXTENSIONS[mime]
            path = self.folder / f"{digest}.{ext}"
            if path.exists():
                return StoredImage(str(path), mime, img.size[0], img.size[1], downscale, _file_hash(path))
            buf = io.BytesIO()
            img.save(
                buf, format="JPEG" if ext == "jpg" else "PNG", **({"quality": 90} if ext == "jpg" else {})
            )
            payload, size = buf.getvalue(), img.size
        path = self.folder / f"{digest}.{ext}"
        if path.exists():  # written before (perhaps by another version): its bytes are what counts
            stored_hash = _file_hash(path)
        else:
            self._write(path, payload)
            stored_hash = content_hash(payload)
        return StoredImage(str(path), mime, size[0], size[1], downscale, stored_hash)

    def _write(self, path: Path, payload: bytes) -> None:
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=path.suffix)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(payload)
            os.replace(tmp, path)  # atomic: concurrent workers never see a half-written blob
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise


def _file_hash(path: Path) -> str:
    """The hash of a blob file's bytes ("" when it cannot be read: the index then refuses it)."""
    try:
        return content_hash(path.read_bytes())
    except OSError:
        return ""
