"""Resolve image references found in HTML and Markdown: data: URIs, local paths, remote URLs."""

from __future__ import annotations

import logging
import os
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from .._images import read_image_bytes
from ..errors import InvalidInputError
from ._base import ChunkBuilder

logger = logging.getLogger(__name__)

__all__ = ["add_image_ref"]


def add_image_ref(out: ChunkBuilder, doc: Path, ref: str, *, where: str, **fields: Any) -> bool:
    """Add the image *ref* (as written in the document at *doc*) to *out*. Remote URLs are fetched
    only with ``allow_remote=True``; local files must lie under ``local_root`` (default: the
    document's folder). Problems become partial errors, one per reference, naming it (the rest of
    the document is kept); returns whether a chunk was added."""
    cfg = out.reader.config
    ref = (ref or "").strip()
    if not ref:
        return False
    is_data = ref[:5].lower() == "data:"
    label = f"{where} {(ref[:30] + '...') if is_data else ref[:80]!r}"  # names the reference in errors
    try:
        if is_data:
            return out.add_image(data=read_image_bytes(ref, source=out.source), where=label, **fields)
        parts = urlsplit(ref)
        scheme = parts.scheme.lower()
        if scheme in ("http", "https"):
            if not cfg.allow_remote:
                logger.info("%s: remote image %s not fetched (allow_remote=False)", out.source, ref[:200])
                out.skipped_remote += 1
                return False
            data = _fetch(ref, cfg.remote_timeout, cfg.remote_max_bytes, out.source)
            meta = {**fields.pop("metadata", {}), "url": ref}
            return out.add_image(data=data, where=label, metadata=meta, **fields)
        if scheme == "file":
            local = Path(unquote(parts.path))
        elif scheme and len(scheme) > 1:  # mailto:, javascript:, ftp: ... (one letter: a Windows drive)
            logger.info("%s: image reference with unsupported scheme %r ignored", out.source, scheme)
            return False
        else:
            local = Path(unquote(parts.path if len(scheme) != 1 else ref))
        if not local.is_absolute():
            local = doc.parent / local
        local = Path(os.path.realpath(local))
        root = Path(os.path.realpath(cfg.local_root or doc.parent))
        if not local.is_relative_to(root):
            raise InvalidInputError(
                f"local image {ref[:100]!r} lies outside {root} and was not read (set local_root to allow it)",
                source=out.source,
            )
        if not local.is_file():
            raise InvalidInputError(
                f"image file {ref[:100]!r} not found (resolved to {local})", source=out.source
            )
        return out.add_image(path=str(local), where=label, **fields)
    except InvalidInputError as exc:
        out.error(label, exc)
        return False


def _fetch(url: str, timeout: float, max_bytes: int, source: str) -> bytes:
    req = urllib.request.Request(url, headers={"User-Agent": "mm-rag-plugin"})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            declared = resp.headers.get("Content-Length")
            if declared and declared.isdigit() and int(declared) > max_bytes:
                raise InvalidInputError(
                    f"remote image {url[:100]} is {declared} bytes, over {max_bytes:,}", source=source
                )
            data = resp.read(max_bytes + 1)
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
        raise InvalidInputError(f"cannot fetch remote image {url[:100]} ({exc})", source=source) from exc
    if len(data) > max_bytes:
        raise InvalidInputError(
            f"remote image {url[:100]} is over the {max_bytes:,} byte limit", source=source
        )
    return data
