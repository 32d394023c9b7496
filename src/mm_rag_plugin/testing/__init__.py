"""Helpers for testing code built on mm-rag-plugin without downloading models.

``make_tiny_clip(folder)`` writes a small open_clip model (tiny towers, briefly trained on
synthetic coloured shapes so that text and image embeddings really align) as a ``local-dir:``
checkpoint that :class:`~mm_rag_plugin.OpenCLIPEmbedder` loads like any other.
``make_tiny_text_model(folder, words)`` writes a tiny sentence-transformers model (random
weights) for the text model beside CLIP; it needs the ``text`` extra, imported when called.
"""

from __future__ import annotations

from .tiny_clip import SHAPE_COLORS, SHAPE_KINDS, TINY_CLIP_CONFIG, draw_shape, make_tiny_clip
from .tiny_text_model import make_tiny_text_model

__all__ = ["SHAPE_COLORS", "SHAPE_KINDS", "TINY_CLIP_CONFIG", "draw_shape", "make_tiny_clip", "make_tiny_text_model"]
