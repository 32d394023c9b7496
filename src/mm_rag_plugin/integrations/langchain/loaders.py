"""LangChain ``BaseLoader`` over the core directory loader.

Each chunk becomes a ``Document`` (via ``_convert.chunk_to_document``): text chunks carry their
text; image chunks carry caption + alt + OCR text as ``page_content`` and ``metadata["kind"] ==
"image"`` with ``image_path``, ``mime_type`` and ``ocr_text``, so later steps can tell them apart.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from typing import Any, Literal

from langchain_core.document_loaders import BaseLoader
from langchain_core.documents import Document

from ...errors import ConfigurationError
from ...readers.loader import DocumentLoader
from ...types import FileError
from ._convert import chunk_to_document

logger = logging.getLogger(__name__)

__all__ = ["MMRagLoader"]


class MMRagLoader(BaseLoader):
    """Load PDF, HTML, Markdown, DOCX, image and text files (a file, folder, glob or list).

    ``on_error``: ``"collect"`` (default) keeps going, logs a warning per failed file and lists
    the failed files of the last load in ``self.errors``; ``"raise"`` raises
    :class:`InvalidInputError` at the first failed file. A path that does not exist raises
    :class:`~mm_rag_plugin.readers.loader.PathNotFoundError` (a ``FileNotFoundError``, as
    ``DirectoryLoader`` does) when loading starts. Other keyword arguments go to
    :class:`mm_rag_plugin.readers.DocumentLoader` (``workers``, ``timeout``, ``ocr``,
    ``blob_dir``, ``chunk_size``, ``show_progress`` (off by default) ...).
    """

    def __init__(
        self,
        paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        *,
        on_error: Literal["collect", "raise"] = "collect",
        **kwargs: Any,
    ) -> None:
        if on_error not in ("collect", "raise"):
            raise ConfigurationError(f"on_error must be 'collect' or 'raise', got {on_error!r}")
        self._loader = DocumentLoader(paths, **kwargs)
        self.on_error = on_error
        self.errors: list[FileError] = []

    def lazy_load(self) -> Iterator[Document]:
        self.errors = []
        for chunk in self._loader.iter_chunks(self.errors, on_error=self.on_error):
            yield chunk_to_document(chunk)
