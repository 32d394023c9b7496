"""``MultiModalRAG``: the whole pipeline behind one object (read -> embed -> index -> search -> answer).

    from mm_rag_plugin import MultiModalRAG

    with MultiModalRAG(".mm_rag") as rag:
        rag.ingest(["docs/"])
        hits = rag.search("the inverter fault screen", k=5)
        print(rag.ask("What does fault E-217 mean?").text)

The index knows its model: reopening it without naming a model loads the one it was built with;
naming another is an error that names both. A model that cannot be loaded is an error that says
how to fix it, never a silent switch to keyword search: keyword-only search happens only when
asked for (``keyword_only=True``, ``mm-rag --keyword-only``).

Ingest streams: files are read, embedded and written a batch at a time, so memory does not grow
with the corpus; files unchanged since the last ingest (size, mtime, content hash) and read with
the same reader options (:func:`reader_record`) are not read again; ``prune=True`` removes files
that disappeared from the ingested folders.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import os
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .errors import ConfigurationError, IndexNotFoundError, StoreError
from .ids import file_sha256
from .types import Answer, Chunk, Embedder, FileError, Hit, ImageInput

if TYPE_CHECKING:  # imported when a pipeline is made: `import mm_rag_plugin` stays light
    from .retrievers.index import MultiModalIndex
    from .retrievers.retriever import FusedRetriever

logger = logging.getLogger(__name__)

__all__ = ["DeleteSummary", "IngestSummary", "MultiModalRAG"]

#: Per-file record of what was ingested (size, mtime, content hash, reader options), beside the index.
_SOURCES = "sources.json"
#: Reader options that say where or how long, not what a file yields (left out of the record;
#: a PDF password is never written down).
_UNRECORDED_OPTIONS = frozenset({"blob_dir", "password", "ocr_timeout", "remote_timeout"})
#: Files larger than this are not hashed to tell a touched file from a changed one.
_HASH_LIMIT = 256 * 2**20


@dataclass(frozen=True, slots=True)
class IngestSummary:
    """What :meth:`MultiModalRAG.ingest` did, file by file and chunk by chunk.

    ``errors`` lists files that could not be read (``source``: the file) and, one entry each,
    parts of files that could not be (``source``: ``"file (image 2)"``): a missing or undecodable
    image, a broken page. A file with such a partial error is ingested with the rest of its
    content and counted in ``files`` and ``partial_files``, as :func:`load_documents` returns its
    chunks and lists the same errors."""

    files: int = 0  # files read (with or without partial errors)
    texts: int = 0  # text chunks read
    images: int = 0  # image chunks read
    duplicate_images: int = 0  # images whose bytes were already seen (indexed once)
    ocr_read: int = 0  # images (and vector figures) Tesseract read (OCR on; not skipped for a reason)
    ocr_skipped: int = 0  # images the text gate found no text in (photos, plain charts): not OCR'd
    added: int = 0  # new points written to the index
    unchanged: int = 0  # chunks already indexed with the same content
    deleted: int = 0  # stale points of changed files removed
    unchanged_files: int = 0  # files skipped: unchanged since the last ingest
    pruned: int = 0  # files removed from the index because they disappeared (prune=True)
    errors: tuple[FileError, ...] = field(default_factory=tuple)
    partial_files: int = 0  # of ``files``: read in part, a part of each listed in ``errors``
    keyword_only: bool = False
    embedded_texts: int = 0  # text chunks embedded by the CLIP model (new points)
    truncated_texts: int = 0  # of those, longer than the model's context: dense search sees their start only
    context_length: int | None = None  # the model's text context in tokens (None: keyword-only)
    clip_windows: bool = False  # the index covers long chunks by CLIP windows (``clip_windows=``)

    @property
    def ok(self) -> bool:
        """True when every file was read or already indexed (what the CLI's exit code means)."""
        return self.files + self.unchanged_files > 0


@dataclass(frozen=True, slots=True)
class DeleteSummary:
    """What :meth:`MultiModalRAG.delete` did."""

    deleted_points: int = 0
    sources: tuple[str, ...] = ()  # sources removed
    not_found: tuple[str, ...] = ()  # sources the index did not hold


@contextlib.contextmanager
def _share_cores(embedder: Any, readers: int) -> Iterator[Callable[[int], None]]:
    """While reader processes work beside it, a CPU model computes with the cores they leave (at
    least one thread): PyTorch's threads and the readers (and their Tesseract runs) fighting over
    the same cores measured slower (``benchmarks/bench_ingest``). Yields ``share(busy)``: the
    caller says how many readers are working now (at most *readers*), and the model gets the
    other cores; idle readers (every file read, or waiting for the caller to take what they read)
    leave it every core. The threads it had are given back at the end."""
    torch = sys.modules.get("torch")
    cores = os.cpu_count() or 1
    if torch is None or readers < 1 or getattr(embedder, "device", None) != "cpu":
        yield lambda busy: None
        return
    before = torch.get_num_threads()
    now = [before]

    def share(busy: int) -> None:
        wanted = max(1, min(before, cores - min(busy, readers)))
        if wanted != now[0]:
            torch.set_num_threads(wanted)
            now[0] = wanted

    share(readers)
    try:
        yield share
    finally:
        if now[0] != before:
            torch.set_num_threads(before)


class MultiModalRAG:
    """Ingest documents, search them by text or image, and answer questions with citations.

    *index_dir*: the index folder (default ``./.mm_rag``): the Qdrant Edge shard, its manifest,
    and the images extracted from documents (``blobs/``). With *url* (and *api_key*) the points
    live in a Qdrant server collection (*collection*) and *index_dir* keeps only the images.
    *blobs*: the URL of a blob store for the images (``s3://bucket/prefix``, ``gs://...``, a
    folder; recorded in the index, so other machines opening the collection read them there),
    *blob_options*: fsspec storage options for it (used, never recorded).

    Model: *embedder* (an embedder object), or ``"auto"``: the index's own model when it exists
    (or *model_name* / *pretrained* / *checkpoint* / *device*, which must be that model; weights
    given without *model_name* load the architecture the index records), else those arguments,
    ``$MM_RAG_MODEL`` ..., or the default ViT-B-32. *precision*: the model's numerics
    (``"auto"``, ``"fp32"``, ``"bf16"``, ``"fp16"``; default ``$MM_RAG_PRECISION`` or auto: bf16 on
    a CPU that computes it natively, else fp32). *keyword_only*: no model at all:
    creates a keyword-only index, or searches an existing dense index by keywords only.
    *create*: ``False`` opens an existing index only (``query``, ``info``, ``eval``), creating nothing.
    *generator*: an answer generator, or ``"auto"`` (Gemini when ``GOOGLE_API_KEY`` /
    ``GEMINI_API_KEY`` is set, else the extractive fallback). *retriever_options* go to
    :class:`~mm_rag_plugin.FusedRetriever`, *reader_options* to the readers (``ocr``,
    ``chunk_size`` ...). *quantization* (``"int8"`` / ``"binary"``, new indexes): Qdrant's
    quantization of the dense vectors. *text_model*: a text model beside CLIP (a
    :class:`~mm_rag_plugin.types.TextEmbedder`, or a sentence-transformers name or folder): a new
    index stores its vectors too and searches add its ``text_model`` list; an existing index must
    have been built with it (one that has a sentence-transformers model loads it by itself).
    *clip_windows* (new indexes; ``True``, a :class:`~mm_rag_plugin.embeddings.windows.ClipWindows`
    or a mapping of its settings): text chunks longer than the CLIP model's context also store CLIP
    vectors of windows over the rest, and the ``dense_text`` list searches their best window; an
    existing index keeps the settings it records and refuses others.

    ``index`` is the :class:`~mm_rag_plugin.MultiModalIndex`, ``retriever`` the
    :class:`~mm_rag_plugin.FusedRetriever` over it (hand it to the LangChain or LlamaIndex
    adapters), ``embedder`` the model (``None`` when searching by keywords only).
    """

    index: MultiModalIndex
    retriever: FusedRetriever
    embedder: Embedder | None

    def __init__(
        self,
        index_dir: str | os.PathLike[str] = ".mm_rag",
        *,
        embedder: Embedder | str | None = "auto",
        model_name: str | None = None,
        pretrained: str | None = None,
        checkpoint: str | os.PathLike[str] | None = None,
        device: str | None = None,
        precision: str | None = None,
        url: str | None = None,
        api_key: str | None = None,
        collection: str = "mm_rag",
        keyword_only: bool = False,
        create: bool = True,
        generator: Any = "auto",
        retriever_options: Mapping[str, Any] | None = None,
        reader_options: Mapping[str, Any] | None = None,
        show_progress: bool = False,
        quantization: Literal["int8", "binary"] | None = None,
        blobs: str | os.PathLike[str] | None = None,
        blob_options: Mapping[str, Any] | None = None,
        text_model: Any = None,
        clip_windows: Any = None,
    ) -> None:
        from .retrievers.engine import check_quantization
        from .retrievers.index import MultiModalIndex
        from .retrievers.manifest import describe_model, load_model
        from .retrievers.retriever import FusedRetriever

        check_quantization(quantization, None)  # a bad value is an error even where an existing index ignores it

        if embedder is None:
            keyword_only = True
        elif isinstance(embedder, str) and embedder != "auto":
            raise ConfigurationError(f"embedder must be an embedder, 'auto' or None, got {embedder!r}")
        self.index_dir = Path(os.path.abspath(Path(index_dir).expanduser()))
        self.show_progress = show_progress
        self.reader_options = dict(reader_options or {})
        self.notice: str | None = None
        remote = dict(url=url, api_key=api_key, collection=collection) if url else {}
        common: dict[str, Any] = dict(show_progress=show_progress, blobs=blobs, blob_options=blob_options, **remote)
        explicit = embedder != "auto" or any(a is not None for a in (model_name, pretrained, checkpoint))
        from .embeddings.open_clip import ENV_CHECKPOINT, ENV_MODEL, ENV_PRETRAINED

        from_env = any(os.environ.get(v) for v in (ENV_MODEL, ENV_PRETRAINED, ENV_CHECKPOINT))

        text_embedder: Any = text_model
        if isinstance(text_model, str | os.PathLike):
            if keyword_only:
                raise ConfigurationError("a text model is a dense model: do not combine it with keyword-only search")
            from .embeddings.text_model import SentenceTransformerTextEmbedder

            text_embedder = SentenceTransformerTextEmbedder(text_model, device=device)
        index: MultiModalIndex | None = None
        if keyword_only:
            index = MultiModalIndex(self.index_dir, keyword_only=True, create=create, **common)
            model: Embedder | None = None
            if not index.keyword_only:
                self.notice = (
                    f"keyword-only search, as asked: the index also holds dense vectors of {describe_model(index.model)}"
                )
        else:
            try:
                index = MultiModalIndex(self.index_dir, create=False, **common)
            except IndexNotFoundError:
                if not create:
                    raise
                index = None
            if index is not None and index.keyword_only:
                if explicit:
                    index.close()
                    raise ConfigurationError(
                        f"{index.where} is a keyword-only index (built without a model); it cannot take a model. "
                        "Search it with --keyword-only, or ingest into a new index folder for dense search"
                    )
                model = None
                self.notice = "keyword-only index (built without a model): search by keywords only"
            else:
                try:
                    if index is not None and not (explicit or from_env):
                        model = load_model(index.model or {}, device=device, precision=precision)
                    elif isinstance(embedder, str):
                        name = model_name
                        if name is None and index is not None and index.model and not os.environ.get(ENV_MODEL):
                            # weights given without an architecture (a checkpoint moved, another
                            # pretrained tag): the index's own architecture, not the default one
                            name = index.model.get("name")
                        model = self._build_model(
                            name, pretrained, checkpoint, device, None if index is None else index.model,
                            precision=precision,
                        )
                    else:
                        assert embedder is not None  # None means keyword_only=True (above)
                        model = embedder
                    if index is not None:
                        index.attach(model)
                        if text_embedder is not None:
                            index.attach_text(text_embedder)
                        index.check_clip_windows(clip_windows)
                    else:
                        index = MultiModalIndex(
                            self.index_dir, embedder=model, quantization=quantization, text_embedder=text_embedder,
                            clip_windows=clip_windows, **common,
                        )
                except BaseException:
                    if index is not None:
                        index.close()
                    raise
        self.index = index
        if quantization is not None and index.quantization != quantization:
            kept = "a keyword-only index has no vectors to quantize" if index.keyword_only else (
                f"the index keeps the quantization it was created with ({index.quantization or 'none'})"
            )
            self.notice = "; ".join(filter(None, [self.notice, f"quantization={quantization} ignored: {kept}"]))
        self.embedder = model
        self.keyword_only = model is None
        if index.remote and self.index_dir.is_dir():  # a local index folder was checked when opened
            from .retrievers._folder import check_own_entries

            try:
                check_own_entries(self.index_dir)  # blobs/ is written, sources.json read and written
            except BaseException:
                index.close()
                raise
        self.reader_options.setdefault("blob_dir", str(self.index_dir / "blobs"))
        options = dict(retriever_options or {})
        self.retriever = FusedRetriever(self.index, self.embedder, **options)
        self._generator = generator

    # ------------------------------------------------------------------ setup
    @staticmethod
    def _build_model(model_name, pretrained, checkpoint, device, index_model=None, *, precision=None) -> Embedder:
        """The model asked for by arguments or ``$MM_RAG_MODEL`` ... (for an existing index it must
        be the index's model, *index_model*: checked by the caller)."""
        from .embeddings.open_clip import OpenCLIPEmbedder
        from .errors import ModelLoadError
        from .retrievers.manifest import describe_model

        try:
            emb: Any = OpenCLIPEmbedder(
                model_name, pretrained, checkpoint=checkpoint, device=device, precision=precision or "auto"
            )
            return emb
        except ModelLoadError as exc:
            if index_model is not None:
                fix = (
                    f"The index was built with {describe_model(index_model)}: unset $MM_RAG_MODEL / --model to load "
                    "it, or search by keywords only with --keyword-only (keyword_only=True)."
                )
            else:
                fix = (
                    "To build an index without a model instead (keyword search over text and OCR only), "
                    "pass keyword_only=True (mm-rag --keyword-only)."
                )
            raise ModelLoadError(f"{exc} {fix}", reason=exc.reason) from exc

    @property
    def model_name(self) -> str | None:
        if self.keyword_only:
            return None
        return getattr(self.embedder, "model_name", type(self.embedder).__name__)

    @property
    def generator(self) -> Any:
        if self._generator == "auto":
            from .generators import default_generator

            self._generator = default_generator()
        return self._generator

    # ------------------------------------------------------------------ the file registry
    def _read_registry(self) -> dict[str, dict[str, Any]]:
        path = self.index_dir / _SOURCES
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            logger.warning("%s is unreadable (%s): every file will be checked again", path, exc)
            return {}
        return data if isinstance(data, dict) else {}

    def _write_registry(self, registry: dict[str, dict[str, Any]]) -> None:
        path = self.index_dir / _SOURCES
        tmp = path.with_suffix(".json.tmp")
        from .retrievers._folder import create_new

        try:
            with os.fdopen(create_new(tmp), "w", encoding="utf-8") as fh:  # never written through a planted link
                fh.write(json.dumps(registry, indent=1, sort_keys=True))
            os.replace(tmp, path)
        except OSError as exc:  # a full disk: the old registry stays; unchanged files are checked again
            tmp.unlink(missing_ok=True)
            raise StoreError(f"{path}: cannot write the file registry ({exc.strerror or exc})") from exc

    # ------------------------------------------------------------------ work
    def ingest(
        self,
        paths: str | os.PathLike[str] | Sequence[str | os.PathLike[str]],
        *,
        workers: int | None = None,
        timeout: float | None = 300.0,
        prune: bool = False,
        follow_symlinks: bool = False,
        **reader_options: Any,
    ) -> IngestSummary:
        """Read files/folders/globs and index them, streaming. Files unchanged since the last
        ingest and read then with the same reader options (OCR on or off, the OCR gate, chunking
        ...: :func:`reader_record`) are skipped; changed files, and files last read with other
        options, replace their old chunks; ``prune`` removes indexed files
        under the given folders that no longer exist. Bad files are reported in ``errors``; so are
        symbolic links in the folders that point outside them, which are not read unless
        ``follow_symlinks``."""
        from .readers import DocumentLoader
        from .readers.ocr import NO_TEXT

        options = {**self.reader_options, **reader_options}
        roots = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        loader = DocumentLoader(
            roots, workers=workers, timeout=timeout, show_progress=self.show_progress,
            follow_symlinks=follow_symlinks, **options,
        )
        registry = self._read_registry()
        recorded = reader_record(loader.config)
        todo: list[Path] = []
        signatures: dict[str, dict[str, Any]] = {}
        unchanged_files = 0
        for f in loader.files():
            source = os.path.abspath(f)
            sig = _signature(f, registry.get(source), recorded)
            if sig is not None and sig.get("unchanged"):
                unchanged_files += 1
                registry[source] = sig["record"]
                continue
            if sig is not None:
                signatures[source] = sig["record"]
            todo.append(f)

        counts = {"texts": 0, "images": 0, "dups": 0, "ocr_read": 0, "ocr_skipped": 0}
        ocr_on = bool(options.get("ocr", True))
        read_errors: list[FileError] = list(loader.skipped)
        read_ok: set[str] = set()
        partial: set[str] = set()  # read with a part missing (one image, one page): ingested, recorded
        with_chunks: set[str] = set()

        def stream() -> Iterator[Chunk]:
            if not todo:
                return
            files_loader = DocumentLoader(
                [str(f) for f in todo], workers=workers, timeout=timeout, show_progress=self.show_progress, **options
            )
            seen: dict[str, str] = {}
            from .readers.loader import mark_duplicates

            for path, res in files_loader.lazy_load():
                source = os.path.abspath(path)
                if isinstance(res, FileError):
                    read_errors.append(res)
                    continue
                read_errors.extend(res.errors)
                if not res.errors:
                    read_ok.add(source)
                elif res.chunks:
                    partial.add(source)
                for c in mark_duplicates(res.chunks, seen):
                    with_chunks.add(c.source)
                    if c.kind == "image":
                        counts["images"] += 1
                        counts["dups"] += bool(c.metadata.get("duplicate_of"))
                        counts["ocr_read"] += ocr_on and "ocr_skipped" not in c.metadata
                        counts["ocr_skipped"] += c.metadata.get("ocr_skipped") == NO_TEXT
                    else:
                        counts["texts"] += 1
                    # the model's batches are taken from here: each gets the cores the readers leave
                    share(files_loader.busy_readers())
                    yield c

        readers = min(loader.workers, len(todo))
        with _share_cores(self.embedder, readers) as share:
            report = self.index.add(stream(), show_progress=self.show_progress)
        failed = {e.source for e in report.errors}
        deleted = report.deleted
        for source in sorted(read_ok - with_chunks):  # read fine but holds nothing now
            deleted += self.index.delete_source(source)
        for source in (read_ok | partial) - failed:
            if source in signatures:
                registry[source] = signatures[source]
        pruned = 0
        if prune:
            pruned, pruned_points = self._prune(roots, registry)
            deleted += pruned_points
        self._write_registry(registry)
        return IngestSummary(
            files=len(read_ok | partial),
            texts=counts["texts"],
            images=counts["images"],
            duplicate_images=counts["dups"],
            ocr_read=counts["ocr_read"],
            ocr_skipped=counts["ocr_skipped"],
            added=report.added,
            unchanged=report.unchanged,
            deleted=deleted,
            unchanged_files=unchanged_files,
            pruned=pruned,
            errors=tuple(read_errors) + tuple(report.errors),
            keyword_only=self.keyword_only,
            partial_files=len(partial),
            embedded_texts=report.embedded_texts,
            truncated_texts=report.truncated_texts,
            context_length=report.context_length,
            clip_windows=self.index.clip_windows is not None,
        )

    def _prune(self, roots: Sequence[Any], registry: dict[str, dict[str, Any]]) -> tuple[int, int]:
        folders = [Path(os.path.abspath(Path(os.fspath(r)).expanduser())) for r in roots if Path(os.fspath(r)).expanduser().is_dir()]
        gone = [
            s for s in registry
            if not Path(s).exists() and any(Path(s).is_relative_to(folder) for folder in folders)
        ]
        points = 0
        for s in gone:
            points += self.index.delete_source(s)
            registry.pop(s, None)
        return len(gone), points

    def delete(self, sources: str | os.PathLike[str] | Sequence[str | os.PathLike[str]]) -> DeleteSummary:
        """Remove files from the index (by path, as given to ingest or absolute)."""
        items = [sources] if isinstance(sources, (str, os.PathLike)) else list(sources)
        registry = self._read_registry()
        removed, missing, points = [], [], 0
        for s in items:
            source = os.path.abspath(Path(os.fspath(s)).expanduser())
            found = self.index.with_source(source)
            if not found and source not in registry:
                missing.append(os.fspath(s))
                continue
            points += self.index.delete_source(source)
            registry.pop(source, None)
            removed.append(source)
        self._write_registry(registry)
        return DeleteSummary(points, tuple(removed), tuple(missing))

    def copy_to(self, url: str | None = None, *, path: str | os.PathLike[str] | None = None, **kwargs: Any) -> Any:
        """Copy the index into a Qdrant server collection (``url=``, ``api_key=``, ``collection=``)
        or another folder (``path=``); see :meth:`MultiModalIndex.copy_to`. Returns the new index, open."""
        return self.index.copy_to(path, url=url, **kwargs)

    def search(
        self,
        query: str | None = None,
        *,
        image: ImageInput | None = None,
        k: int = 5,
        filters: Mapping[str, Any] | None = None,
    ) -> list[Hit]:
        """Fused dense + BM25 search by text, image, or both (keyword-only: text)."""
        if image is not None and self.keyword_only:
            raise ConfigurationError(f"searching by image needs the embedding model; {self.notice}")
        return self.retriever.retrieve(query, image=image, k=k, filters=filters)

    def ask(
        self, question: str, *, k: int = 5, image: ImageInput | None = None, filters: Mapping[str, Any] | None = None
    ) -> Answer:
        """Retrieve for *question* and answer it with citations (Gemini, or extractive without a key)."""
        hits = self.search(question, image=image, k=k, filters=filters)
        return self.generator.generate(question, hits)

    def info(self) -> dict[str, Any]:
        """Index statistics and configuration."""
        from .retrievers.manifest import describe_model

        return {
            "index_dir": str(self.index_dir),
            "engine": self.index.engine,
            "items": len(self.index),
            "texts": self.index.count("text"),
            "images": self.index.count("image"),
            "model": describe_model(self.index.model) if not self.index.keyword_only else None,
            "dim": self.index.dim,
            "keyword_only": self.index.keyword_only,
            "search": "keyword-only" if self.keyword_only else "dense + keyword",
            "blobs": self.index.blobs,
        }

    def close(self) -> None:
        self.index.close()

    def __enter__(self) -> MultiModalRAG:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"MultiModalRAG({str(self.index_dir)!r}, model={self.model_name!r}, engine={self.index.engine!r})"


def reader_record(config: Any) -> dict[str, Any]:
    """The reader options that change what a file yields, as the file registry records them: those
    of *config* (a :class:`~mm_rag_plugin.readers.ReaderConfig`) that differ from the defaults,
    but for where images are stored, time limits and the PDF password. ``{}`` for the defaults,
    so a record written before options were recorded reads as the defaults."""
    default = type(config)()
    out = {
        f.name: getattr(config, f.name)
        for f in dataclasses.fields(config)
        if f.name not in _UNRECORDED_OPTIONS and getattr(config, f.name) != getattr(default, f.name)
    }
    return json.loads(json.dumps(out, sort_keys=True, default=str))  # as it reads back from sources.json


def _signature(path: Path, known: Mapping[str, Any] | None, options: dict[str, Any]) -> dict[str, Any] | None:
    """``{"record": {...}, "unchanged": bool}`` for *path* read with reader *options*
    (:func:`reader_record`): size and mtime first, the content hash only when those changed (a
    touched but identical file is not read again); a file last read with other options is changed."""
    try:
        st = path.stat()
    except OSError:
        return None  # the loader reports it
    if not isinstance(known, Mapping):  # none, or a damaged entry: the file is read again
        known = None
    rec: dict[str, Any] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns}
    if options:
        rec["reader"] = options
    same_options = known is not None and (known.get("reader") or {}) == options
    if known and known.get("size") == st.st_size and known.get("mtime_ns") == st.st_mtime_ns:
        return {"record": {**rec, "sha256": known.get("sha256")}, "unchanged": same_options}
    if st.st_size > _HASH_LIMIT:  # not worth reading twice: size and mtime decide
        return {"record": {**rec, "sha256": None}, "unchanged": False}
    try:
        rec["sha256"] = file_sha256(path)
    except OSError:
        return None
    same_bytes = bool(known and known.get("sha256") and known.get("sha256") == rec["sha256"])
    return {"record": rec, "unchanged": same_bytes and same_options}
