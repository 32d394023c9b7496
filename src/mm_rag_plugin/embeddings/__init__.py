"""Embedding engines. ``OpenCLIPEmbedder`` puts text and images into one vector space."""

from __future__ import annotations

from typing import Any

__all__ = ["EmbeddingResult", "OpenCLIPEmbedder"]


def __getattr__(name: str) -> Any:  # lazy: importing the package does not import torch
    if name in __all__:
        from . import open_clip

        return getattr(open_clip, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
