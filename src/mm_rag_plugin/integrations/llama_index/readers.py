"""LlamaIndex ``BaseReader`` over the core readers.

Returns ``Document`` for text chunks and ``ImageDocument`` (with ``image_path`` and
``image_mimetype``) for images, built by ``_convert.chunk_to_document``. Usable on its own or as a
``file_extractor`` of ``SimpleDirectoryReader``, also with ``load_data(num_workers=...)``.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

from llama_index.core.readers.base import BaseReader
from llama_index.core.schema import Document

from ...errors import ConfigurationError, InvalidInputError
from ...readers.loader import DocumentLoader
from ...types import FileError
from ._convert import chunk_to_document

logger = logging.getLogger(__name__)

__all__ = ["MMRagReader"]


class MMRagReader(BaseReader):
    """Read PDF, HTML, Markdown, DOCX, image and text files into Documents / ImageDocuments.

    ``load_data(file)`` reads one file or folder (or the ``paths`` given at construction); a path
    that does not exist raises :class:`~mm_rag_plugin.readers.loader.PathNotFoundError` (a
    ``FileNotFoundError``). With ``on_error="collect"`` (default) a file that cannot be read is
    logged as a warning and appended to ``self.errors``, which keeps the failures of every call
    (``reader.errors.clear()`` to start over); ``"raise"`` raises at the first failed file.
    Other keyword arguments go to :class:`mm_rag_plugin.readers.DocumentLoader`.

    As a ``file_extractor`` of ``SimpleDirectoryReader(...).load_data(num_workers=n)``, each
    worker process gets a copy of this reader: files are then read in the worker itself, and
    since the copy's ``errors`` never reach the caller, a call that read nothing because of
    errors raises :class:`~mm_rag_plugin.errors.InvalidInputError` there (after the warning in the
    worker's log), which ``SimpleDirectoryReader`` reports (``"Failed to load file ..."``) or
    raises (``raise_on_error=True``).
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
        self._copied_to_child = False
        if paths is not None:
            DocumentLoader(paths, **kwargs)  # validate options now

    def __setstate__(self, state: dict[str, Any]) -> None:
        # unpickled inside another process (a SimpleDirectoryReader worker): errors collected
        # here cannot reach the caller's reader
        self.__dict__.update(state)
        self._copied_to_child = multiprocessing.parent_process() is not None

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
        loader = DocumentLoader(target, **self.loader_kwargs)
        errors: list[FileError] = []
        failed: list[FileError] = []
        count = 0
        try:
            for chunk in loader.iter_chunks(errors, on_error=self.on_error):
                failed += self._record(errors)
                doc = chunk_to_document(chunk)
                if extra_info:
                    doc.metadata.update({k: v for k, v in extra_info.items() if k not in doc.metadata})
                count += 1
                yield doc
        finally:
            failed += self._record(errors)
        if failed and not count and self._copied_to_child:
            # nothing read, and the errors collected here would be lost with this copy
            raise InvalidInputError(failed[0].error, source=failed[0].source)

    def _record(self, errors: list[FileError]) -> list[FileError]:
        """Move the errors found so far to ``self.errors`` (kept across calls); returns them."""
        moved = list(errors)
        self.errors.extend(moved)
        errors.clear()
        return moved

    def load_data(self, *args: Any, **kwargs: Any) -> list[Document]:
        return list(self.lazy_load_data(*args, **kwargs))
