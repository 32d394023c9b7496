"""Where an index keeps its image bytes when they must reach other machines: a blob store by URL.

An index given ``blobs="s3://bucket/prefix"`` (any URL fsspec opens: ``gs://``, ``az://``,
``memory://`` ...; ``file://`` or a plain path for a local folder) writes the images it indexes
there, content-addressed (``<hash of the stored bytes>.<ext>``, written once: a key that exists is
not written again), and records only the URL in its manifest: another machine opening the same
Qdrant collection reads the images from the store. Credentials and endpoints come from the
environment or fsspec's configuration (for S3: ``AWS_ACCESS_KEY_ID`` ..., ``AWS_ENDPOINT_URL``);
storage options given in code (``blob_options=``) are used, never recorded nor logged.

Bytes read from a store are untrusted: the index returns them only when they hash to the hash it
recorded (:meth:`~mm_rag_plugin.retrievers.index.MultiModalIndex.image_file`). Checked bytes are
kept in a local cache folder (:func:`blob_cache_dir`), named by key and checked again when read.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from ..errors import ConfigurationError, MissingDependencyError, StoreError, echo

__all__ = ["BlobStorage", "FolderBlobs", "FsspecBlobs", "blob_cache_dir", "blob_url", "blob_url_problem", "open_blob_store"]

#: A store key: the hash of the bytes (BLAKE2b-128, hex) and an extension.
KEY = re.compile(r"[0-9a-f]{32}\.[a-z0-9]{1,5}")
_URL = re.compile(r"(?P<scheme>[a-z][a-z0-9+.-]{0,31})://(?P<rest>[^\s\x00-\x1f\x7f]*)")
_MAX_URL = 1000
_EXTRA = "pip install 'mm-rag-plugin[blobs]'"


class BlobStorage(Protocol):
    """What an index needs of a blob store: read a key (``None``: absent), write one once."""

    url: str

    def get(self, key: str, limit: int) -> bytes | None: ...

    def put(self, key: str, data: bytes) -> bool: ...

    def location(self, key: str) -> str: ...


def blob_url_problem(value: Any) -> str | None:
    """Why *value* is not a blob store URL an index may record, or ``None``."""
    if not isinstance(value, str):
        return f"blobs must be a URL string, got {echo(value)}"
    m = _URL.fullmatch(value)
    if len(value) > _MAX_URL or m is None or not m.group("rest").strip("/"):
        return f"blobs must be a URL such as s3://bucket/prefix or file:///folder, got {echo(value)}"
    if "@" in urlsplit(value).netloc:
        return "blobs must not hold credentials (user:password@): give them in the environment or blob_options="
    scheme = m.group("scheme")
    if scheme != "file":
        try:
            import fsspec
        except ImportError:
            return None  # the shape is right; opening it names the extra to install
        if scheme not in fsspec.available_protocols():
            return f"blobs URL scheme {scheme!r} is not one fsspec knows (s3, gs, az, file, memory ...)"
    return None


def blob_url(value: str | os.PathLike[str]) -> str:
    """The URL to record for what a user gave: a URL as it is (checked), a plain path as ``file://``."""
    text = os.fspath(value)
    if "://" not in text:
        text = Path(os.path.abspath(Path(text).expanduser())).as_uri()
    text = text.rstrip("/") if text.rstrip("/").partition("://")[2] else text
    problem = blob_url_problem(text)
    if problem:
        raise ConfigurationError(problem)
    return text


def open_blob_store(url: str, options: Mapping[str, Any] | None = None) -> BlobStorage:
    """The store at *url* (a checked URL): a folder for ``file://``, else fsspec."""
    if url.startswith("file://") and not options:
        return FolderBlobs(url)
    return FsspecBlobs(url, options)


def blob_cache_dir() -> Path:
    """``$MM_RAG_BLOB_CACHE``, else ``$XDG_CACHE_HOME/mm-rag-plugin/blob-cache`` (``~/.cache/...``)."""
    from .._cache import cache_path

    return cache_path("blob-cache", "MM_RAG_BLOB_CACHE")


def write_atomic(path: Path, data: bytes) -> None:
    """Write *path* whole or not at all (a temporary file renamed over it, never through a link)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class FolderBlobs:
    """A local folder (``file://``): the default kind of store, no extra needed."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.folder = Path(unquote(urlsplit(url).path))

    def location(self, key: str) -> str:
        return str(self.folder / key)

    def get(self, key: str, limit: int) -> bytes | None:
        path = self.folder / key
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0))
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"{path}: cannot read the blob ({exc.strerror or exc})") from None
        with os.fdopen(fd, "rb") as fh:
            return fh.read(limit + 1)

    def put(self, key: str, data: bytes) -> bool:
        path = self.folder / key
        if os.path.lexists(path):
            return False
        try:
            write_atomic(path, data)
        except OSError as exc:
            raise StoreError(f"{path}: cannot write the blob ({exc.strerror or exc})") from None
        return True


class FsspecBlobs:
    """Any URL fsspec opens (``s3://``, ``gs://``, ``memory://`` ...); needs the ``blobs`` extra."""

    def __init__(self, url: str, options: Mapping[str, Any] | None = None) -> None:
        try:
            import fsspec
        except ImportError:
            raise MissingDependencyError(f"blob store {url}: fsspec is not installed; install it with: {_EXTRA}") from None
        self.url = url
        try:
            self.fs, root = fsspec.core.url_to_fs(url, **dict(options or {}))
        except ImportError as exc:  # the protocol's own package (s3fs, gcsfs ...)
            raise MissingDependencyError(f"blob store {url}: {_one_line(exc)}; install it with: {_EXTRA}") from None
        except Exception as exc:
            raise ConfigurationError(f"blob store {url}: cannot open it ({_one_line(exc)})") from None
        self.root = str(root).rstrip("/")

    def location(self, key: str) -> str:
        return f"{self.url}/{key}"

    def get(self, key: str, limit: int) -> bytes | None:
        try:
            with self.fs.open(f"{self.root}/{key}", "rb") as fh:
                data: bytes = fh.read(limit + 1)
                return data
        except FileNotFoundError:
            return None
        except Exception as exc:
            raise StoreError(f"{self.location(key)}: cannot read the blob ({_one_line(exc)})") from None

    def put(self, key: str, data: bytes) -> bool:
        path = f"{self.root}/{key}"
        try:
            if self.fs.exists(path):
                return False
            self.fs.pipe_file(path, data)
        except Exception as exc:
            raise StoreError(f"{self.location(key)}: cannot write the blob ({_one_line(exc)})") from None
        return True


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text[:300]
