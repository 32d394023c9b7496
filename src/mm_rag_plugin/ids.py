"""Content hashes and stable ids.

Ids are UUIDs (the form Qdrant accepts) derived from content and source, so reading the same file
twice yields the same ids and re-ingesting it adds nothing.
"""

from __future__ import annotations

import hashlib
import os
import uuid

__all__ = ["content_hash", "stable_id"]

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
    occur in their ``str``)."""
    key = "\x1f".join(str(p) for p in parts)
    return str(uuid.uuid5(_NAMESPACE, key))
