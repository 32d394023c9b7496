"""What every reader shares: options, the chunk builder (ids, neighbours, images, OCR, duplicates)."""

from __future__ import annotations

import dataclasses
import logging
import os
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
from .ocr import TesseractOCR

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

    def __post_init__(self) -> None:
        if self.min_image_size < 1:
            raise ConfigurationError(f"min_image_size must be >= 1, got {self.min_image_size}")
        if self.scanned_dpi < 36 or self.scanned_dpi > 1200:
            raise ConfigurationError(f"scanned_dpi must be within 36..1200, got {self.scanned_dpi}")


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
            TesseractOCR(c.ocr_languages, min_side=c.ocr_min_side, timeout=c.ocr_timeout) if c.ocr else None
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


@dataclass
class _Pending:
    cls: type
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
        self._ocr_cache: dict[str, Any] = {}
        self.skipped_small = 0
        self.skipped_remote = 0

    def error(self, where: str, exc: BaseException) -> None:
        reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
        self.errors.append(FileError(f"{self.source} ({where})", reason, type(exc).__name__))
        logger.warning("%s (%s): %s", self.source, where, reason)

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
        try:
            raw = data if data is not None else Path(path or "").read_bytes()
            digest = content_hash(raw)
            loaded = load_image(raw, max_pixels=cfg.max_image_pixels, source=label)
            img = loaded.image
            if min(img.size) < cfg.min_image_size:
                self.skipped_small += 1
                return False
            mime = image_mime(raw[:64]) or "image/png"
            meta = dict(metadata or {})
            if path is not None and not self.reader.blobs.needs_downscale(img):
                image_path, stored_mime = path, mime
            else:
                stored = self.reader.blobs.put(digest, raw, mime, img)
                image_path, stored_mime = stored.path, stored.mime_type
                if stored.downscaled:
                    meta.update(downscaled=True, stored_width=stored.width, stored_height=stored.height)
                if path is not None:
                    meta["original_path"] = path
            fields_: dict[str, Any] = dict(
                image_path=image_path,
                content_hash=digest,
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
                self._ocr_into(fields_, digest, img, label)
        except InvalidInputError as exc:
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

    def _ocr_into(self, fields_: dict[str, Any], digest: str, img: Any, label: str) -> None:
        assert self.reader.ocr is not None
        if digest not in self._ocr_cache:
            self._ocr_cache[digest] = self.reader.ocr.recognize(img, source=label)
        res = self._ocr_cache[digest]
        if res is None:
            fields_["metadata"]["ocr_skipped"] = "too small"
            return
        fields_["ocr_text"] = res.text
        fields_["ocr_confidence"] = res.confidence
        if self.reader.config.keep_word_boxes:
            fields_["metadata"]["ocr_words"] = [list(w) for w in res.words]
        if res.rotation:
            fields_["metadata"]["ocr_rotation"] = res.rotation

    def finish(self) -> ReadResult:
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
