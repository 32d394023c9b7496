"""Content hashes and stable ids.

Ids are UUIDs (the form Qdrant accepts) derived from content and source, so reading the same file
twice yields the same ids and re-ingesting it adds nothing.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from typing import Any

__all__ = ["content_hash", "stable_id", "stored_text", "unstored_text"]

_NAMESPACE = uuid.UUID("6f1c54a4-3e0b-4b8e-9a57-2f7d7d2b6c11")


def content_hash(data: bytes | str) -> str:
    """Hex BLAKE2b-128 digest of *data* (str is hashed as UTF-8)."""
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB blocks (memory stays flat for any size)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def stable_id(*parts: object) -> str:
    """A UUID string derived deterministically from *parts* (joined by a separator that cannot
    occur in their ``str``): ``uuid5`` of their UTF-8, where a lone surrogate (a file name that is
    not UTF-8, as ``os.fsdecode`` gives it) is encoded as its own code point, not refused."""
    key = "\x1f".join(str(p) for p in parts).encode("utf-8", "surrogatepass")
    digest = hashlib.sha1(_NAMESPACE.bytes + key, usedforsecurity=False).digest()
    return str(uuid.UUID(bytes=digest[:16], version=5))


#: Marks a stored string that held lone surrogates (no path or name can hold NUL).
_MARK = "\x00"
_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_OR_BACKSLASH = re.compile("[\\\\\ud800-\udfff]")
_STORED_ESCAPE = re.compile(r"\\(\\|u[0-9a-f]{4})")


def stored_text(value: Any) -> Any:
    """*value* (a str, or a list, tuple or dict holding them) as a store accepts it: a str with lone
    surrogates (a file name that is not UTF-8, as ``os.fsdecode`` gives it) cannot be written as
    UTF-8, so it is stored as ``"\\x00"`` and the str with backslashes doubled and each surrogate
    written ``\\udce9``; every other str is stored as it is. :func:`unstored_text` reverses it."""
    if isinstance(value, str):
        if not value.startswith(_MARK) and not _SURROGATE.search(value):
            return value
        return _MARK + _SURROGATE_OR_BACKSLASH.sub(lambda m: "\\\\" if m.group() == "\\" else f"\\u{ord(m.group()):04x}", value)
    if isinstance(value, (list, tuple)):
        return type(value)(stored_text(v) for v in value)
    if isinstance(value, dict):
        return {k: stored_text(v) for k, v in value.items()}
    return value


def unstored_text(value: Any) -> Any:
    """The value :func:`stored_text` was given."""
    if isinstance(value, str):
        if not value.startswith(_MARK):
            return value
        return _STORED_ESCAPE.sub(lambda m: "\\" if m.group(1) == "\\" else chr(int(m.group(1)[1:], 16)), value[1:])
    if isinstance(value, (list, tuple)):
        return type(value)(unstored_text(v) for v in value)
    if isinstance(value, dict):
        return {k: unstored_text(v) for k, v in value.items()}
    return value

