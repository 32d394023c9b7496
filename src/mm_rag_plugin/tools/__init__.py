"""Agent tools, framework-free: search the multimodal index, or answer a question with citations.

The LangChain and LlamaIndex tools (``integrations/*/tools.py``) are thin wrappers around
:class:`SearchTool` and :class:`AnswerTool`: the argument spec (one JSON schema for every
framework), argument validation, filters and the agent-readable text all live here, once.
"""

from __future__ import annotations

from .args import (
    ANSWER_PARAMS,
    ANSWER_TOOL_DESCRIPTION,
    ANSWER_TOOL_NAME,
    DEFAULT_K,
    KINDS,
    MAX_K,
    SEARCH_PARAMS,
    SEARCH_TOOL_DESCRIPTION,
    SEARCH_TOOL_NAME,
    ToolArgs,
    ToolParam,
    json_schema,
    merge_positional,
    parse_tool_args,
)
from .format import citation_records, format_answer, format_hits
from .runners import AnswerResult, AnswerTool, SearchResult, SearchTool
from .sources import SourceResolver, resolve_source, source_matches

__all__ = [
    "ANSWER_PARAMS",
    "ANSWER_TOOL_DESCRIPTION",
    "ANSWER_TOOL_NAME",
    "DEFAULT_K",
    "KINDS",
    "MAX_K",
    "SEARCH_PARAMS",
    "SEARCH_TOOL_DESCRIPTION",
    "SEARCH_TOOL_NAME",
    "AnswerResult",
    "AnswerTool",
    "SearchResult",
    "SearchTool",
    "SourceResolver",
    "ToolArgs",
    "ToolParam",
    "citation_records",
    "format_answer",
    "format_hits",
    "json_schema",
    "merge_positional",
    "parse_tool_args",
    "resolve_source",
    "source_matches",
]
