"""Plain-text files: decoded (UTF-8, else Latin-1) and chunked."""

from __future__ import annotations

from pathlib import Path

from ..errors import InvalidInputError
from ._base import BaseReader, ChunkBuilder

__all__ = ["TextReader", "read_text_file"]

#: Largest text file read (bytes); bigger inputs are refused rather than loaded whole.
MAX_TEXT_BYTES = 200_000_000


def read_text_file(path: Path) -> str:
    size = path.stat().st_size
    if size > MAX_TEXT_BYTES:
        raise InvalidInputError(
            f"text file is {size:,} bytes, over the {MAX_TEXT_BYTES:,} byte limit", source=str(path)
        )
    data = path.read_bytes()
    if b"\x00" in data[:8192]:
        raise InvalidInputError("file looks binary (NUL bytes), not text", source=str(path))
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = data.decode("latin-1")
    return text.replace("\r\n", "\n").replace("\r", "\n")


class TextReader(BaseReader):
    kind = "text"

    def _read(self, path: Path, out: ChunkBuilder) -> None:
        out.add_text(read_text_file(path))
