"""Tool arguments, described once (JSON schema for every framework) and validated once.

Bad arguments raise :class:`~mm_rag_plugin.errors.InvalidInputError` whose message names the
argument, what was wrong and what is accepted, so an agent can read it and call again.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..errors import InvalidInputError, echo

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
    "ToolArgs",
    "ToolParam",
    "json_schema",
    "merge_positional",
    "parse_tool_args",
]

SEARCH_TOOL_NAME = "multimodal_search"
ANSWER_TOOL_NAME = "multimodal_answer"
DEFAULT_K = 5
MAX_K = 50
MAX_QUERY_CHARS = 4000
KINDS = ("text", "image")

SEARCH_TOOL_DESCRIPTION = (
    "Search the indexed documents (text passages and images such as figures, charts, photos and "
    "scanned pages) for content relevant to a query. Returns numbered hits with their source file, "
    "page, kind (text or image), image path for images, relevance score and a text snippet "
    "(caption/OCR text for images). Use kind='image' to look for figures or pictures only, "
    "kind='text' for passages only, and source='<file>' (a file name such as 'report.pdf' or the "
    "source path shown in results) to search one document."
)
ANSWER_TOOL_DESCRIPTION = (
    "Answer a question from the indexed documents (text and images): retrieves the most relevant "
    "passages and images and writes an answer that cites them as [n], followed by the list of the "
    "cited sources (file, page, image path). Use it for questions that need a synthesised answer; "
    "use multimodal_search to just find content."
)


@dataclass(frozen=True, slots=True)
class ToolParam:
    """One argument of a tool, described once for every framework (see :func:`json_schema`)."""

    name: str
    type: str  # JSON schema type: "string" | "integer"
    description: str
    required: bool = False
    default: Any = None
    minimum: int | None = None
    maximum: int | None = None
    enum: tuple[str, ...] | None = None

    def json_schema(self) -> dict[str, Any]:
        schema: dict[str, Any] = {"type": self.type, "description": self.description}
        if self.enum is not None:
            schema["enum"] = list(self.enum)
        if self.minimum is not None:
            schema["minimum"] = self.minimum
        if self.maximum is not None:
            schema["maximum"] = self.maximum
        if not self.required:
            schema["default"] = self.default
        return schema


def _params(text_name: str, text_description: str) -> tuple[ToolParam, ...]:
    return (
        ToolParam(text_name, "string", text_description, required=True),
        ToolParam(
            "k",
            "integer",
            f"How many results to retrieve, 1 to {MAX_K} (default {DEFAULT_K}).",
            default=DEFAULT_K,
            minimum=1,
            maximum=MAX_K,
        ),
        ToolParam(
            "kind",
            "string",
            "Only return this kind of content: 'text' for passages or 'image' for figures and "
            "pictures. Leave out to search both.",
            enum=KINDS,
        ),
        ToolParam(
            "source",
            "string",
            "Only return content from this source file: its file name (e.g. 'report.pdf') or the "
            "source path shown in results. Leave out to search all documents.",
        ),
    )


SEARCH_PARAMS = _params("query", "What to look for, in natural language (e.g. 'a chart of monthly sales').")
ANSWER_PARAMS = _params("question", "The question to answer from the indexed documents.")


def json_schema(params: Sequence[ToolParam]) -> dict[str, Any]:
    """The JSON schema (``{"type": "object", ...}``) of a tool's arguments."""
    return {
        "type": "object",
        "properties": {p.name: p.json_schema() for p in params},
        "required": [p.name for p in params if p.required],
        "additionalProperties": False,
    }


@dataclass(frozen=True, slots=True)
class ToolArgs:
    """Validated tool arguments: the query (or question) text, ``k`` and the optional filters."""

    query: str
    k: int = DEFAULT_K
    kind: str | None = None
    source: str | None = None

    @property
    def filters(self) -> dict[str, Any] | None:
        """Retriever filters (``{"kind": ..., "source": ...}``), or None when there are none."""
        out = {key: v for key, v in (("kind", self.kind), ("source", self.source)) if v is not None}
        return out or None

    def describe_filters(self) -> str:
        return ", ".join(f"{key}={v}" for key, v in (self.filters or {}).items())


def _bad(name: str, message: str) -> InvalidInputError:
    return InvalidInputError(message, source=f"argument {name!r}")


def _text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _bad(name, f"must be a non-empty string, got {type(value).__name__} {echo(value, 80)}")
    value = " ".join(value.split())
    if not value:
        raise _bad(name, "must not be empty; write it in natural language")
    if len(value) > MAX_QUERY_CHARS:
        raise _bad(name, f"is too long ({len(value)} characters; at most {MAX_QUERY_CHARS})")
    return value


def _k(value: Any) -> int:
    expected = f"must be a whole number from 1 to {MAX_K}"
    if value is None:
        return DEFAULT_K
    number: Any = value
    if isinstance(value, bool):
        number = None
    elif isinstance(value, float):
        number = int(value) if value.is_integer() else None
    elif isinstance(value, str):
        number = int(value.strip()) if re.fullmatch(r"\s*[+-]?\d{1,9}\s*", value) else None
    elif not isinstance(value, int):
        number = None
    if number is None:
        raise _bad("k", f"{expected}, got {echo(value, 80)}")
    if not 1 <= number <= MAX_K:
        raise _bad("k", f"{expected}, got {number}")
    return int(number)


def _kind(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    kind = value.strip().lower() if isinstance(value, str) else value
    if kind not in KINDS:
        raise _bad("kind", f"must be 'text' or 'image' (or left out for both), got {echo(value, 80)}")
    return kind


def _source(value: Any) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    if not isinstance(value, str):
        raise _bad("source", f"must be a file name string, got {type(value).__name__} {echo(value, 80)}")
    return value.strip()


def merge_positional(params: Sequence[ToolParam], args: Sequence[Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """Keyword arguments with the positional ones given to the parameters in order, so that a
    tool called with one plain string (``tool("red circle")``) gets it as its query."""
    if len(args) > len(params):
        raise InvalidInputError(
            f"takes at most {len(params)} positional argument(s), got {len(args)}", source="arguments"
        )
    merged = dict(kwargs)
    for param, value in zip(params, args, strict=False):
        if param.name in merged:
            raise InvalidInputError(f"{param.name!r} given twice", source="arguments")
        merged[param.name] = value
    return merged


def parse_tool_args(params: Sequence[ToolParam], args: Mapping[str, Any]) -> ToolArgs:
    """Validate raw arguments (as an agent sends them) against *params* into :class:`ToolArgs`.

    Lenient where the meaning is clear (``k`` given as ``"5"`` or ``5.0``, ``kind`` in any case,
    empty optional strings as "not given"); strict otherwise, with a message that names the
    argument, the problem and what is accepted.
    """
    if not isinstance(args, Mapping):
        raise InvalidInputError(f"tool arguments must be an object, got {echo(args, 80)}", source="arguments")
    names = [p.name for p in params]
    unknown = [key for key in args if key not in names]
    if unknown:
        raise InvalidInputError(
            f"unknown argument(s) {', '.join(map(repr, unknown))}; accepted: {', '.join(names)}",
            source="arguments",
        )
    text_name = names[0]
    if args.get(text_name) is None:
        raise _bad(text_name, "is required (a non-empty string)")
    return ToolArgs(
        _text(text_name, args[text_name]),
        _k(args.get("k")),
        _kind(args.get("kind")),
        _source(args.get("source")),
    )
