"""What every reader shares: options, the chunk builder (ids, neighbours, images, OCR, duplicates)."""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import os
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_for
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from .._images import DEFAULT_MAX_PIXELS, load_image
from ..errors import ConfigurationError, InvalidInputError
from ..ids import content_hash, stable_id
from ..types import BBox, Chunk, FileError, ImageChunk, ReadResult, TextChunk
from ._detect import image_mime
from .blobs import BlobStore
from .chunking import TextSplitter
from .ocr import OcrResult, TesseractOCR

logger = logging.getLogger(__name__)

__all__ = ["BaseReader", "ChunkBuilder", "ReaderConfig"]


@dataclass(frozen=True, slots=True)
class ReaderConfig:
    """Options shared by all readers (picklable, so the directory loader can ship it to workers)."""

    chunk_size: int = 1000
    chunk_overlap: int = 150
    chunk_unit: str = "chars"  # or "tokens" (whitespace words)
    blob_dir: str | None = None  # None: $MM_RAG_BLOB_DIR or ~/.cache/mm-rag-plugin/blobs
    max_stored_side: int = 2048  # images larger than this are downscaled for storage
    min_image_size: int = 32  # images whose shorter side is smaller are skipped (icons, rules)
    max_image_pixels: int | None = DEFAULT_MAX_PIXELS  # decompression-bomb limit
    ocr: bool = True
    ocr_languages: str = "eng"
    ocr_min_side: int = 16
    ocr_timeout: float = 60.0
    ocr_gate: bool = True  # OCR only images where glyphs line up as text; False: every image
    keep_word_boxes: bool = True
    # PDF
    password: str | None = None
    extract_images: bool = True  # False: text only (PDF, DOCX, HTML, Markdown)
    scanned_dpi: int = 200  # render resolution for pages without a text layer
    max_render_pixels: int = 25_000_000
    min_page_chars: int = 16  # a page with fewer text-layer characters is treated as scanned
    # HTML / Markdown
    allow_remote: bool = False
    remote_timeout: float = 10.0
    remote_max_bytes: int = 20_000_000
    local_root: str | None = None  # None: local images must lie under the document's folder
    # Hostile inputs
    max_image_file_bytes: int = 256_000_000  # larger image files are refused, not read into memory
    max_unpacked_bytes: int = 256_000_000  # DOCX/PPTX/XLSX: a part inflating past this is refused (zip bomb)
    max_sheet_cells: int = 1_000_000  # XLSX/CSV: a sheet with more cells (declared or read) is refused
    max_image_repeats: int = 3  # repeats of one image in a document kept as chunks (duplicate_of)
    max_chunks_per_file: int = 20_000  # chunks kept per file; the rest is dropped and reported

    def __post_init__(self) -> None:
        if self.min_image_size < 1:
            raise ConfigurationError(f"min_image_size must be >= 1, got {self.min_image_size}")
        if self.scanned_dpi < 36 or self.scanned_dpi > 1200:
            raise ConfigurationError(f"scanned_dpi must be within 36..1200, got {self.scanned_dpi}")
        if self.max_image_repeats < 0:
            raise ConfigurationError(f"max_image_repeats must be >= 0, got {self.max_image_repeats}")
        if self.max_chunks_per_file < 1:
            raise ConfigurationError(f"max_chunks_per_file must be >= 1, got {self.max_chunks_per_file}")


def make_config(config: ReaderConfig | None, options: dict[str, Any]) -> ReaderConfig:
    base = config or ReaderConfig()
    if not options:
        return base
    names = {f.name for f in dataclasses.fields(ReaderConfig)}
    unknown = sorted(set(options) - names)
    if unknown:
        raise ConfigurationError(f"unknown reader option(s) {unknown}; known options: {sorted(names)}")
    return dataclasses.replace(base, **options)


class BaseReader:
    """A reader of one file format. ``read(path)`` returns a :class:`ReadResult` whose ``errors``
    list parts of the file that failed (one bad image, one broken page); a file that cannot be read
    at all raises :class:`InvalidInputError` naming it."""

    kind: ClassVar[str] = ""

    def __init__(self, config: ReaderConfig | None = None, **options: Any) -> None:
        self.config = make_config(config, options)
        c = self.config
        self.splitter = TextSplitter(c.chunk_size, c.chunk_overlap, unit=c.chunk_unit)
        self.ocr: TesseractOCR | None = (
            TesseractOCR(c.ocr_languages, min_side=c.ocr_min_side, timeout=c.ocr_timeout, gate=c.ocr_gate)
            if c.ocr
            else None
        )
        self._blobs: BlobStore | None = None

    @property
    def blobs(self) -> BlobStore:
        if self._blobs is None:  # created on first use: text-only reading never touches the disk
            self._blobs = BlobStore(self.config.blob_dir, max_side=self.config.max_stored_side)
        return self._blobs

    def read(self, path: str | os.PathLike[str]) -> ReadResult:
        source = os.path.abspath(os.fspath(path))
        if not os.path.isfile(source):
            raise InvalidInputError(
                "file not found" if not os.path.exists(source) else "not a file", source=source
            )
        builder = ChunkBuilder(self, source)
        with contextlib.suppress(_ChunkLimitReached):  # finish() reports the cut
            self._read(Path(source), builder)
        result = builder.finish()
        if not result.chunks and not result.errors:
            raise InvalidInputError(self._empty_reason(builder), source=source)
        return result

    def _empty_reason(self, out: ChunkBuilder) -> str:
        small = (
            f"; {out.skipped_small} image(s) below min_image_size were skipped" if out.skipped_small else ""
        )
        remote = (
            f"; {out.skipped_remote} remote image(s) not fetched (allow_remote=False)"
            if out.skipped_remote
            else ""
        )
        return f"no text or images could be extracted{small}{remote}"

    def _read(self, path: Path, out: ChunkBuilder) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


#: Partial errors listed per file; further ones are counted in one closing entry.
MAX_ERRORS_PER_FILE = 100
#: Positions of collapsed image repeats recorded on the first occurrence.
MAX_RECORDED_REPEATS = 20
#: Collapsed repeats from this many on are reported as a note (a :class:`FileError`) on the file.
NOTED_REPEATS = 100


#: Images of one document OCR'd at the same time, each on its own thread (Tesseract's library
#: releases the GIL while it reads; as a program, each thread waits on its own process). One file
#: often holds most of the images (one of the 13 shared PDFs: 286 of the 437, 71 of the 97 OCR'd),
#: and read one image after the other it kept one core busy long after the other reader had
#: finished (``benchmarks/bench_ingest``).
OCR_THREADS = min(2, os.cpu_count() or 1)
_pool_lock = threading.Lock()
_pool: tuple[int, ThreadPoolExecutor] | None = None  # (pid, executor): a forked child makes its own


def _ocr_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None or _pool[0] != os.getpid():
            _pool = (os.getpid(), ThreadPoolExecutor(OCR_THREADS, thread_name_prefix="mm-rag-ocr"))
        return _pool[1]


class _ChunkLimitReached(Exception):
    """Raised by the builder to stop a reader once ``max_chunks_per_file`` chunks are collected."""


@dataclass
class _Pending:
    cls: type[TextChunk] | type[ImageChunk]
    key: str  # content part of the id
    fields: dict[str, Any] = field(default_factory=dict)


class ChunkBuilder:
    """Collects one document's chunks in reading order, then assigns positions, stable ids and
    neighbour links. Records partial failures as :class:`FileError` entries."""

    def __init__(self, reader: BaseReader, source: str) -> None:
        self.reader = reader
        self.source = source
        self.errors: list[FileError] = []
        self._items: list[_Pending] = []
        self._seen_images: dict[str, int] = {}  # content hash -> index of first occurrence
        self._ocr_cache: dict[str, Future[OcrResult | None]] = {}
        self._ocr_running: deque[Future[OcrResult | None]] = deque()
        self._occurrences: dict[str, int] = {}  # content hash -> times met in this document
        self._folded: dict[str, list[dict[str, Any]]] = {}  # content hash -> collapsed repeats
        self._rejected: dict[str, str | None] = {}  # content hash -> why refused (None: too small)
        self._error_counts: dict[str, int] = {}  # reason -> times met
        self._more_errors = 0
        self.truncated = False
        self.skipped_small = 0
        self.skipped_remote = 0

    def error(self, where: str, exc: BaseException) -> None:
        """Record a partial error. The same reason repeated (one broken image linked 20,000 times)
        is listed once with a count, and at most ``MAX_ERRORS_PER_FILE`` reasons are listed."""
        reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
        if reason in self._error_counts:
            self._error_counts[reason] += 1
            return
        if len(self._error_counts) >= MAX_ERRORS_PER_FILE:
            self._more_errors += 1
            return
        self._error_counts[reason] = 1
        self.errors.append(FileError(f"{self.source} ({where})", reason, type(exc).__name__))
        logger.warning("%s (%s): %s", self.source, where, reason)

    def _room(self) -> None:
        """Stop the reader once the file has produced ``max_chunks_per_file`` chunks."""
        if len(self._items) >= self.reader.config.max_chunks_per_file:
            self.truncated = True
            raise _ChunkLimitReached

    def add_text(
        self,
        text: str,
        *,
        page: int | None = None,
        section: str | None = None,
        bbox_of: Any = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        """Split *text* and add the pieces. ``bbox_of(start, end)`` maps character offsets of
        *text* to a bounding box, when the format knows one."""
        for span in self.reader.splitter.split_spans(text):
            self._room()
            bbox: BBox | None = bbox_of(span.start, span.end) if bbox_of else None
            self._items.append(
                _Pending(
                    TextChunk,
                    content_hash(span.text),
                    dict(
                        text=span.text,
                        page=page,
                        section=section or None,
                        bbox=bbox,
                        metadata=dict(metadata or {}),
                    ),
                )
            )

    def add_image(
        self,
        *,
        data: bytes | None = None,
        path: str | None = None,
        where: str,
        page: int | None = None,
        bbox: BBox | None = None,
        section: str | None = None,
        alt_text: str = "",
        caption: str = "",
        ocr: bool = True,
        metadata: dict[str, Any] | None = None,
        force: bool = False,
    ) -> bool:
        """Decode, check, OCR and store one image (given as encoded *data* or a local file *path*).
        Failures are recorded as partial errors; returns whether a chunk was added."""
        cfg = self.reader.config
        if not (cfg.extract_images or force):
            return False
        label = f"{self.source} ({where})"
        digest: str | None = None
        try:
            if data is None:
                size = os.stat(path or "").st_size
                if size > cfg.max_image_file_bytes:
                    raise InvalidInputError(
                        f"image file is {size:,} bytes, over the {cfg.max_image_file_bytes:,} byte limit; not read",
                        source=label,
                    )
            raw = data if data is not None else Path(path or "").read_bytes()
            digest = content_hash(raw)
            if self._repeat(digest, where, page):
                return False
            self._room()
            loaded = load_image(raw, max_pixels=cfg.max_image_pixels, source=label)
            img = loaded.image
            if min(img.size) < cfg.min_image_size:
                self.skipped_small += 1
                self._rejected[digest] = None
                return False
            mime = image_mime(raw[:64]) or "image/png"
            meta = dict(metadata or {})
            if path is not None and not self.reader.blobs.needs_downscale(img):
                image_path, stored_mime, file_hash = path, mime, None  # read in place: content_hash is its hash
            else:
                stored = self.reader.blobs.put(digest, raw, mime, img)
                image_path, stored_mime = stored.path, stored.mime_type
                file_hash = stored.file_hash or None
                if stored.downscaled:
                    meta.update(downscaled=True, stored_width=stored.width, stored_height=stored.height)
                if path is not None:
                    meta["original_path"] = path
            fields_: dict[str, Any] = dict(
                image_path=image_path,
                content_hash=digest,
                file_hash=file_hash,
                mime_type=stored_mime,
                width=img.size[0],
                height=img.size[1],
                page=page,
                bbox=bbox,
                section=section or None,
                alt_text=alt_text.strip(),
                caption=caption.strip(),
                metadata=meta,
            )
            if ocr and self.reader.ocr is not None:
                self._ocr_start(fields_, digest, img, label, where)
        except InvalidInputError as exc:
            if digest is not None:
                self._rejected[digest] = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
            self.error(where, exc)
            return False
        except OSError as exc:
            self.error(where, InvalidInputError(f"cannot read image ({exc.strerror or exc})", source=label))
            return False
        first = self._seen_images.get(digest)
        if first is None:
            self._seen_images[digest] = len(self._items)
        else:
            fields_["metadata"]["duplicate_of_position"] = first
        self._items.append(_Pending(ImageChunk, digest, fields_))
        return True

    def _repeat(self, digest: str, where: str, page: int | None) -> bool:
        """Count one more occurrence of the image *digest*; ``True`` when it need not be decoded
        again: an image refused before, or a repeat beyond ``max_image_repeats`` (folded into the
        first occurrence's metadata instead of becoming one more chunk)."""
        n = self._occurrences[digest] = self._occurrences.get(digest, 0) + 1
        if digest in self._rejected:
            reason = self._rejected[digest]
            if reason is None:
                self.skipped_small += 1
            elif reason in self._error_counts:
                self._error_counts[reason] += 1
            return True
        if digest in self._seen_images and n > 1 + self.reader.config.max_image_repeats:
            folded = self._folded.setdefault(digest, [])
            if len(folded) < MAX_RECORDED_REPEATS:
                folded.append({"where": where, "page": page} if page is not None else {"where": where})
            return True
        return False

    def _ocr_start(self, fields_: dict[str, Any], digest: str, img: Any, label: str, where: str) -> None:
        """OCR the image in the background (``OCR_THREADS`` at once, at most twice that many
        waiting: decoded images are not piled up); :meth:`finish` puts the text in."""
        assert self.reader.ocr is not None
        if digest not in self._ocr_cache:
            while len(self._ocr_running) >= 2 * OCR_THREADS:
                wait_for([self._ocr_running.popleft()])
            job = _ocr_pool().submit(self.reader.ocr.recognize, img, source=label)
            self._ocr_cache[digest] = job
            self._ocr_running.append(job)
        fields_["_ocr"] = (self._ocr_cache[digest], where)

    def _settle_ocr(self) -> None:
        """Wait for the images' OCR and fill their fields; an image whose OCR failed is dropped
        and reported, as if it had failed when it was added."""
        kept: list[_Pending] = []
        moved: dict[int, int] = {}  # old position -> new
        for i, p in enumerate(self._items):
            job = p.fields.pop("_ocr", None)
            if job is not None:
                future, where = job
                try:
                    _ocr_fields(p.fields, future.result(), self.reader.config.keep_word_boxes)
                except InvalidInputError as exc:
                    self._rejected[p.key] = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
                    self.error(where, exc)
                    continue
                except OSError as exc:
                    label = f"{self.source} ({where})"
                    self.error(where, InvalidInputError(f"cannot read image ({exc.strerror or exc})", source=label))
                    continue
            moved[i] = len(kept)
            kept.append(p)
        self._ocr_running.clear()
        if len(kept) == len(self._items):
            return
        # an image's repeats share its OCR (and its failure): none refers to a dropped position
        self._items = kept
        self._seen_images = {d: moved[i] for d, i in self._seen_images.items() if i in moved}
        for p in kept:
            meta = p.fields.get("metadata", {})
            if "duplicate_of_position" in meta:
                meta["duplicate_of_position"] = moved[meta["duplicate_of_position"]]

    def finish(self) -> ReadResult:
        self._settle_ocr()
        cfg = self.reader.config
        for digest, first in self._seen_images.items():
            n = self._occurrences.get(digest, 1)
            if n > 1:
                meta = self._items[first].fields["metadata"]
                meta["occurrences"] = n
                if digest in self._folded:
                    meta["folded_occurrences"] = self._folded[digest]
        folded = {d: self._occurrences[d] - 1 - cfg.max_image_repeats for d in self._folded}
        if folded:
            logger.info("%s: %d repeated image occurrence(s) folded into their first", self.source, sum(folded.values()))
        if sum(folded.values()) >= NOTED_REPEATS:  # amplification, not a logo on every page: say so
            times = max(self._occurrences[d] for d in folded)
            self.errors.append(
                FileError(
                    self.source,
                    f"repeated images collapsed: {sum(folded.values()):,} further occurrence(s) of "
                    f"{len(folded)} image(s) (one appears {times:,} times) were not indexed separately; "
                    f"the first {1 + cfg.max_image_repeats} of each were kept and the first records the "
                    "count (metadata 'occurrences')",
                    "RepeatedImages",
                )
            )
        if self.truncated:
            self.errors.append(
                FileError(
                    self.source,
                    f"file cut at {cfg.max_chunks_per_file:,} chunks (max_chunks_per_file): "
                    "the rest of it was not read or indexed",
                    "ChunkLimit",
                )
            )
        self.errors = [
            dataclasses.replace(e, error=f"{e.error} (x{self._error_counts[e.error]:,})")
            if self._error_counts.get(e.error, 1) > 1
            else e
            for e in self.errors
        ]
        if self._more_errors:
            self.errors.append(
                FileError(self.source, f"... and {self._more_errors:,} more problems in this file (not listed)")
            )
        ids = [stable_id(self.source, p.cls.kind, i, p.key) for i, p in enumerate(self._items)]
        chunks: list[Chunk] = []
        for i, p in enumerate(self._items):
            meta = p.fields.pop("metadata")
            dup = meta.pop("duplicate_of_position", None)
            if dup is not None:
                meta["duplicate_of"] = ids[dup]
            chunks.append(
                p.cls(
                    id=ids[i],
                    source=self.source,
                    position=i,
                    prev_id=ids[i - 1] if i else None,
                    next_id=ids[i + 1] if i + 1 < len(ids) else None,
                    metadata=meta,
                    **p.fields,
                )
            )
        return ReadResult(chunks=chunks, errors=list(self.errors))


def _ocr_fields(fields_: dict[str, Any], res: OcrResult | None, keep_word_boxes: bool) -> None:
    """An image chunk's fields filled from its OCR result."""
    if res is None:
        fields_["metadata"]["ocr_skipped"] = "too small"
        return
    if res.skipped:
        fields_["metadata"]["ocr_skipped"] = res.skipped
        return
    fields_["ocr_text"] = res.text
    fields_["ocr_confidence"] = res.confidence
    if keep_word_boxes:
        fields_["metadata"]["ocr_words"] = [list(w) for w in res.words]
    if res.rotation:
        fields_["metadata"]["ocr_rotation"] = res.rotation
