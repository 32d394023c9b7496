"""Answer generators (framework-free core): Gemini through ``google-genai``, and an extractive
fallback used when no API key is configured.

Importing this package does not import ``google-genai``; :class:`GeminiGenerator` does, when built.
"""

from __future__ import annotations

from .answer import aanswer, answer, default_generator
from .base import AnswerGenerator, AnswerStream, AsyncAnswerStream
from .citations import cited_numbers, parse_citations
from .extractive import ExtractiveGenerator
from .gemini import DEFAULT_GEMINI_MODEL, GeminiGenerator, resolve_api_key
from .images import InlineImage, prepare_inline_image
from .prompt import DEFAULT_SYSTEM_INSTRUCTION, Prompt, PromptImage, PromptOptions, build_prompt

__all__ = [
    "DEFAULT_GEMINI_MODEL",
    "DEFAULT_SYSTEM_INSTRUCTION",
    "AnswerGenerator",
    "AnswerStream",
    "AsyncAnswerStream",
    "ExtractiveGenerator",
    "GeminiGenerator",
    "InlineImage",
    "Prompt",
    "PromptImage",
    "PromptOptions",
    "aanswer",
    "answer",
    "build_prompt",
    "cited_numbers",
    "default_generator",
    "parse_citations",
    "prepare_inline_image",
    "resolve_api_key",
]
