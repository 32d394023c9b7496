"""LlamaIndex ``BaseReader`` over the core readers.

Returns ``Document`` for text chunks and ``ImageDocument`` (with ``image_path`` and
``image_mimetype``) for images, built by ``_convert.chunk_to_document``. Usable on its own or as a
``file_extractor`` of ``SimpleDirectoryReader``.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from llama_index.core.readers.base import BaseReader
from llama_index.core.schema import Document

from ...errors import ConfigurationError
from ...readers.loader import DocumentLoader
from ...types import FileError
from ._convert import chunk_to_document

logger = logging.getLogger(__name__)

__all__ = ["MMRagReader"]


class MMRagReader(BaseReader):
    """Read PDF, HTML, Markdown, DOCX, image and text files into Documents / ImageDocuments.

    ``load_data(file)`` reads one file or folder (or the ``paths`` given at construction).
    ``on_error="collect"`` lists failed files in ``self.errors``; ``"raise"`` raises at the first.
    Other keyword arguments go to :class:`mm_rag_plugin.readers.DocumentLoader`.
    """

    def __init__(
        self,
        paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
        *,
        on_error: Literal["collect", "raise"] = "collect",
        **kwargs: Any,
    ) -> None:
        if on_error not in ("collect", "raise"):
            raise ConfigurationError(f"on_error must be 'collect' or 'raise', got {on_error!r}")
        self.paths = paths
        self.on_error = on_error
        self.loader_kwargs = kwargs
        self.errors: list[FileError] = []
        if paths is not None:
            DocumentLoader(paths, **kwargs)  # validate options now

    def lazy_load_data(
        self,
        file: str | os.PathLike[str] | Sequence[str | os.PathLike[str]] | None = None,
        extra_info: dict[str, Any] | None = None,
        **_: Any,
    ) -> Iterator[Document]:
        target = file if file is not None else self.paths
        if target is None:
            raise ConfigurationError("no file given: pass paths= to MMRagReader or file= to load_data")
        if isinstance(target, Path):
            target = str(target)
        self.errors = []
        for chunk in DocumentLoader(target, **self.loader_kwargs).iter_chunks(self.errors, on_error=self.on_error):
            doc = chunk_to_document(chunk)
            if extra_info:
                doc.metadata.update({k: v for k, v in extra_info.items() if k not in doc.metadata})
            yield doc

    def load_data(self, *args: Any, **kwargs: Any) -> list[Document]:
        return list(self.lazy_load_data(*args, **kwargs))
