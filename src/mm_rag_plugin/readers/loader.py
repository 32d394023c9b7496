"""Directory / glob loader: pick the reader by content, read files in worker processes.

Each file is read in a separate worker process (PDFium is not thread-safe, and a parser stuck on a
hostile file must be stoppable): a file that runs past ``timeout`` seconds has its worker killed
and is reported; a worker that crashes (segfault, out of memory) is replaced and its file
reported; every other file is still returned. Results come back in input order, with one
:class:`FileError` per failed file.

Inside a daemonic process (a ``multiprocessing.Pool`` worker, such as those of LlamaIndex's
``SimpleDirectoryReader.load_data(num_workers=...)``), which may not start processes, files are
read in that process instead: it is already apart from the caller's.

A path that does not exist raises :class:`PathNotFoundError` (a ``FileNotFoundError``) before any
file is read; a glob pattern that matches nothing reads nothing.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import itertools
import logging
import multiprocessing
import os
import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

from ..errors import (
    ConfigurationError,
    InvalidInputError,
    MissingDependencyError,
    MMRagError,
    UnsupportedFormatError,
)
from ..types import Chunk, FileError, ImageChunk, ReadResult
from ._base import BaseReader, ReaderConfig, make_config
from ._detect import detect_kind
from ._pool import WorkerPool

logger = logging.getLogger(__name__)

__all__ = ["DocumentLoader", "PathNotFoundError", "load_documents", "mark_duplicates", "read_file"]

_READERS = {
    "pdf": ("pdf", "PdfReader"),
    "html": ("html", "HtmlReader"),
    "markdown": ("markdown", "MarkdownReader"),
    "docx": ("docx", "DocxReader"),
    "pptx": ("pptx", "PptxReader"),
    "xlsx": ("spreadsheet", "XlsxReader"),
    "csv": ("spreadsheet", "CsvReader"),
    "image": ("image", "ImageReader"),
    "text": ("text", "TextReader"),
}
_GLOB_CHARS = frozenset("*?[")


class PathNotFoundError(InvalidInputError, FileNotFoundError):
    """A file, folder or glob folder given to load does not exist.

    Both an :class:`InvalidInputError` (library handlers keep working) and a
    ``FileNotFoundError`` (as LangChain's ``DirectoryLoader`` raises); ``filename`` and ``source``
    are the path.
    """

    def __init__(self, message: str, *, source: str | None = None) -> None:
        super().__init__(message, source=source)
        self.errno, self.strerror, self.filename = errno.ENOENT, message, source

    def __str__(self) -> str:
        return f"{self.source}: {self.reason}" if self.source else self.reason


T = TypeVar("T")


#: Files read ahead of the caller at most. Their results are chunks (text, and the paths of the
#: images stored in the blob store, not their pixels), so this holds little memory, and it lets the
#: readers finish while the caller embeds: with 2 * workers the readers sat idle behind one large
#: document while the model ran on the one core they left it (``benchmarks/bench_ingest``).
READ_AHEAD = 64


def prefetch(produce: Callable[[threading.Event], Iterator[T]], depth: int) -> Iterator[T]:
    """The items of ``produce(stop)``, made by a background thread up to *depth* items ahead of
    the consumer; its exceptions are raised here. When the consumer stops early (or fails),
    *stop* is set and the producer is left to finish its cleanup on its own thread."""
    q: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()

    def run() -> None:
        try:
            for item in produce(stop):
                while not stop.is_set():
                    try:
                        q.put(("item", item), timeout=0.2)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            q.put(("end", None))
        except BaseException as exc:  # handed to the consumer
            q.put(("error", exc))

    thread = threading.Thread(target=run, name="mm-rag-reader-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = q.get()
            if kind == "end":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stop.set()
        while thread.is_alive():  # unblock a producer waiting on a full queue, let it clean up
            with contextlib.suppress(queue.Empty):
                q.get(timeout=0.1)
        thread.join()


def in_daemon_process() -> bool:
    """True inside a daemonic process (a ``multiprocessing.Pool`` worker): it may not start
    worker processes of its own."""
    return bool(multiprocessing.current_process().daemon)


def _make_reader(kind: str, config: ReaderConfig) -> BaseReader:
    import importlib

    module, name = _READERS[kind]
    cls = getattr(importlib.import_module(f"{__package__}.{module}"), name)
    return cls(config)


def read_file(
    path: str | os.PathLike[str], config: ReaderConfig | None = None, *, _cache: dict | None = None
) -> ReadResult:
    """Read one file in this process with the reader its content calls for. Raises
    :class:`InvalidInputError` (or :class:`UnsupportedFormatError`) naming the file."""
    source = os.path.abspath(os.fspath(path))
    try:
        kind = detect_kind(source)
    except FileNotFoundError:
        raise InvalidInputError("file not found", source=source) from None
    except OSError as exc:
        raise InvalidInputError(f"cannot read file ({exc.strerror or exc})", source=source) from exc
    if kind is None:
        try:
            empty = os.path.getsize(source) == 0
        except OSError:
            empty = False
        if empty:
            raise InvalidInputError("empty file (0 bytes): nothing to read", source=source)
        raise UnsupportedFormatError(
            "unsupported file type (not PDF, DOCX, PPTX, XLSX, CSV, HTML, Markdown, text or a known image format)",
            source=source,
        )
    cache = _cache if _cache is not None else {}
    reader = cache.get(kind)
    if reader is None:
        reader = cache[kind] = _make_reader(kind, config or ReaderConfig())
    return reader.read(source)


def _safe_read(path: str, config: ReaderConfig, cache: dict) -> ReadResult | FileError:
    """Worker body: a result or a FileError; configuration problems propagate (they concern every file)."""
    try:
        return read_file(path, config, _cache=cache)
    except (MissingDependencyError, ConfigurationError):
        raise
    except MMRagError as exc:
        return FileError(path, getattr(exc, "reason", None) or str(exc), type(exc).__name__)
    except MemoryError:
        return FileError(
            path, "ran out of memory while reading (memory limit of the worker reached)", "MemoryError"
        )
    except RecursionError:
        return FileError(path, "structure nested too deeply to read", "RecursionError")
    except Exception as exc:  # a parser bug on hostile input must not stop the batch
        logger.warning("unexpected error reading %s", path, exc_info=True)
        return FileError(path, f"unexpected {type(exc).__name__}: {exc}"[:300], type(exc).__name__)


class DocumentLoader:
    """Load files, folders and glob patterns into chunks.

    ``paths``: a file, a folder (searched with ``glob``, default recursive ``"**/*"``), a glob
    pattern, or a list of those; a path that does not exist raises :class:`PathNotFoundError` when
    loading starts. ``workers``: worker processes (default ``min(2, cpu_count)``; ``0`` reads in
    this process, without the time limit, as does a daemonic process such as a
    ``multiprocessing.Pool`` worker). ``timeout``: seconds per file. ``memory_limit_mb``:
    address-space cap of each worker (Linux/macOS; ``None`` for none). ``show_progress``: a
    progress bar (off by default; the command line turns it on). Reader options (``ocr``,
    ``blob_dir``, ``chunk_size`` ...) are those of :class:`ReaderConfig`.
    """

    def __init__(
        self,
        paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        *,
        glob: str = "**/*",
        include_hidden: bool = False,
        workers: int | None = None,
        timeout: float | None = 300.0,
        memory_limit_mb: int | None = 4096,
        show_progress: bool = False,
        follow_symlinks: bool = False,
        config: ReaderConfig | None = None,
        **options: Any,
    ) -> None:
        self.config = make_config(config, options)
        self.follow_symlinks = follow_symlinks
        #: links met in folders that point outside the given folders, skipped (filled by files())
        self.skipped: list[FileError] = []
        self.paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        if not self.paths:
            raise ConfigurationError("no paths given to load")
        self.glob = glob
        self.include_hidden = include_hidden
        self.workers = min(2, os.cpu_count() or 1) if workers is None else workers
        #: set once the reader processes have read every file (they are idle from then on, while
        #: the caller may still be handling the files read ahead)
        self.done_reading = threading.Event()
        self._pool: WorkerPool | None = None
        if self.workers < 0:
            raise ConfigurationError(f"workers must be >= 0, got {workers}")
        if timeout is not None and timeout <= 0:
            raise ConfigurationError(f"timeout must be positive or None, got {timeout}")
        self.timeout = timeout
        self.memory_limit_mb = memory_limit_mb
        self.show_progress = show_progress
        if self.config.ocr:  # fail now, not once per file in the workers
            from .ocr import TesseractOCR

            TesseractOCR(self.config.ocr_languages)

    def files(self) -> list[Path]:
        """The files to read, in input order (folder contents sorted). Raises
        :class:`PathNotFoundError` for a given path that does not exist (for a glob pattern: whose
        folder does not exist)."""
        out: list[Path] = []
        self.skipped = []
        for p in self.paths:
            s = os.fspath(p)
            path = Path(s).expanduser()
            if not os.path.lexists(path):
                if not _GLOB_CHARS & set(s):
                    raise PathNotFoundError("no such file or folder", source=os.path.abspath(path))
                anchor = _split_glob(path)[0]
                if not anchor.is_dir():
                    raise PathNotFoundError(f"no such folder (for the pattern {s!r})", source=os.path.abspath(anchor))
            if path.is_dir():
                found = sorted(f for f in path.glob(self.glob) if f.is_file())
                found = [f for f in found if self.include_hidden or not _hidden(f.relative_to(path))]
                out.extend(self._confined(_outside_indexes(found), path))
                self.skipped.extend(self._unreadable_folders(path))
            elif not path.exists() and _GLOB_CHARS & set(s):
                anchor, pattern = _split_glob(path)
                out.extend(self._confined(sorted(f for f in anchor.glob(pattern) if f.is_file()), anchor))
            else:
                out.append(path)  # a file named explicitly is read, link or not
        return out

    def _unreadable_folders(self, root: Path) -> list[FileError]:
        """Folders under *root* that cannot be listed (the glob passes over them in silence)."""
        errors: list[FileError] = []

        def note(exc: OSError) -> None:
            where = exc.filename or str(root)
            if self.include_hidden or not _hidden(Path(where).relative_to(root) if Path(where).is_relative_to(root) else Path()):
                errors.append(FileError(os.path.abspath(where), f"cannot read folder ({exc.strerror or exc}): skipped", "PermissionError"))

        for _ in os.walk(root, onerror=note, followlinks=False):
            pass
        return errors

    def _confined(self, found: list[Path], root: Path) -> list[Path]:
        """*found* less the files whose real path lies outside *root* (symlinks out of the folder),
        which are recorded in :attr:`skipped`, unless ``follow_symlinks``."""
        if self.follow_symlinks:
            return found
        real_root = root.resolve()
        kept = []
        for f in found:
            try:
                inside = f.resolve().is_relative_to(real_root)
            except (OSError, RuntimeError):  # a link loop
                inside = False
            if inside:
                kept.append(f)
            else:
                logger.warning("skipped %s: a link to outside %s", f, root)
                self.skipped.append(
                    FileError(
                        os.path.abspath(f),
                        f"skipped: a symbolic link to a file outside {root} (pass follow_symlinks=True / --follow-symlinks to read it)",
                        "SymlinkOutside",
                    )
                )
        return kept

    def lazy_load(self) -> Iterator[tuple[Path, ReadResult | FileError]]:
        """``(file, ReadResult or FileError)`` per file, in input order, as they complete."""
        files = self.files()
        if not files:
            return
        from .._progress import progress_bar as tqdm

        bar = tqdm(total=len(files), unit="file", desc="reading", disable=not self.show_progress)
        try:
            if self.workers == 0 or in_daemon_process():
                cache: dict = {}
                for f in files:
                    res = _safe_read(os.path.abspath(f), self.config, cache)
                    bar.update(1)
                    yield f, res
                return
            size = min(self.workers, len(files))
            pool = self._pool = WorkerPool(size, self.config, timeout=self.timeout, memory_limit_mb=self.memory_limit_mb)
            paths = [os.path.abspath(f) for f in files]

            def read(stop: threading.Event) -> Iterator[tuple[int, ReadResult | FileError]]:
                with pool:
                    # every file read: the workers are idle while the caller takes the last results
                    yield from pool.map_ordered(paths, on_done=lambda: bar.update(1), stop=stop, on_all_read=self.done_reading.set)
                self.done_reading.set()

            # the workers go on reading while the caller embeds and writes what came before
            for i, res in prefetch(read, depth=READ_AHEAD):
                yield files[i], res
        finally:
            self._pool = None
            bar.close()

    def busy_readers(self) -> int:
        """How many reader processes are reading a file now: 0 before loading starts, once every
        file is read, while the files read ahead wait for the caller, and when reading in this
        process (``workers=0``: nothing reads beside the caller)."""
        pool = self._pool
        return 0 if pool is None else pool.busy()

    def iter_chunks(self, errors: list[FileError], *, on_error: str = "collect") -> Iterator[Chunk]:
        """Chunks of every file in input order, repeated images marked ``metadata["duplicate_of"]``.

        Failed files and partial errors inside files are appended to *errors* as they come; with
        ``on_error="raise"`` the first failed file raises :class:`InvalidInputError` instead.
        """
        seen: dict[str, str] = {}
        files = self.lazy_load()
        first = next(files, None)  # files() has run: the skipped links are known
        errors.extend(self.skipped)
        if first is None:
            return
        for _path, res in itertools.chain([first], files):
            if isinstance(res, FileError):
                if on_error == "raise":
                    raise InvalidInputError(res.error, source=res.source)
                logger.warning("skipped %s", res)
                errors.append(res)
                continue
            errors.extend(res.errors)
            yield from mark_duplicates(res.chunks, seen)

    def load(self) -> ReadResult:
        """All chunks (files in input order) and one :class:`FileError` per failed file (partial
        errors inside a file follow it). Repeated images are marked ``metadata["duplicate_of"]``."""
        errors: list[FileError] = []
        chunks = list(self.iter_chunks(errors))
        return ReadResult(chunks=chunks, errors=errors)


def mark_duplicates(chunks: Iterable[Chunk], seen: dict[str, str] | None = None) -> list[Chunk]:
    """Set ``metadata["duplicate_of"]`` (the id of the first image with the same content hash) on
    repeated images across documents; the chunks are kept, so each occurrence keeps its source.
    Pass the same *seen* dict to successive calls to mark duplicates across them."""
    first: dict[str, str] = {} if seen is None else seen
    out: list[Chunk] = []
    for c in chunks:
        if isinstance(c, ImageChunk) and c.content_hash:
            orig = first.setdefault(c.content_hash, c.id)
            if orig != c.id and c.metadata.get("duplicate_of") is None:
                c = dataclasses.replace(c, metadata={**c.metadata, "duplicate_of": orig})
        out.append(c)
    return out


def load_documents(
    paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]], **kwargs: Any
) -> ReadResult:
    """``DocumentLoader(paths, **kwargs).load()``."""
    return DocumentLoader(paths, **kwargs).load()


def _outside_indexes(found: list[Path]) -> list[Path]:
    """*found* without the files of an index folder among them (its ``manifest.json`` beside its
    ``shard/``): ``mm-rag ingest . --index ix`` reads the documents, not the index it writes."""
    roots = {f.parent for f in found if f.name == "manifest.json" and (f.parent / "shard").is_dir()}
    if not roots:
        return found
    return [f for f in found if not any(r == f.parent or r in f.parents for r in roots)]


def _hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def _split_glob(path: Path) -> tuple[Path, str]:
    parts = path.parts
    for i, part in enumerate(parts):
        if _GLOB_CHARS & set(part):
            return Path(*parts[:i]) if i else Path("."), str(Path(*parts[i:]))
    return path.parent, path.name
