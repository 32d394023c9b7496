"""Where the library keeps what it caches outside any index: one rule for every cache."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["cache_path"]


def cache_path(name: str, env: str | None = None) -> Path:
    """``$<env>`` when that variable is set, else ``$XDG_CACHE_HOME/mm-rag-plugin/<name>``
    (``~/.cache/mm-rag-plugin/<name>``)."""
    chosen = os.environ.get(env) if env else None
    if chosen:
        return Path(chosen)
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "mm-rag-plugin" / name
