"""Pydantic argument models for the agent tools, built from the core's one argument spec.

LangChain and LlamaIndex both describe tool arguments with a pydantic model. The model here is
generated from :data:`mm_rag_plugin.tools.SEARCH_PARAMS` / ``ANSWER_PARAMS`` (types, limits, enum,
descriptions: the JSON schema an agent sees) and validates by calling the core's
:func:`~mm_rag_plugin.tools.parse_tool_args`, so both frameworks accept and reject exactly the same
arguments, with the same messages. Imports pydantic only (both frameworks depend on it).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal, Optional

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from ..tools import ANSWER_PARAMS, SEARCH_PARAMS, ToolParam, parse_tool_args

__all__ = ["AnswerArgs", "SearchArgs", "args_model", "error_message", "validation_message"]

_TYPES: dict[str, Any] = {"string": str, "integer": int}


def args_model(params: Sequence[ToolParam], model_name: str) -> type[BaseModel]:
    """A pydantic model whose JSON schema is *params* and whose validation is the core's."""
    fields: dict[str, Any] = {}
    for p in params:
        typ: Any = Literal[p.enum] if p.enum else _TYPES[p.type]
        if not p.required and p.default is None:
            typ = Optional[typ]  # noqa: UP045 (a runtime type expression)
        fields[p.name] = (
            typ,
            Field(... if p.required else p.default, description=p.description, ge=p.minimum, le=p.maximum),
        )

    def core_validation(cls: type[BaseModel], data: Any) -> Any:
        if not isinstance(data, dict):
            return data  # pydantic reports the wrong type
        args = parse_tool_args(params, data)  # raises InvalidInputError (a ValueError) with the message
        values = {params[0].name: args.query, "k": args.k, "kind": args.kind, "source": args.source}
        return {key: values[key] for key in data}

    # pydantic makes core_validation a classmethod (its first parameter is `cls`)
    validator = model_validator(mode="before")(core_validation)
    return create_model(
        model_name,
        __config__=ConfigDict(extra="forbid"),
        # create_model's stub wants plain callables; pydantic's own decorators return descriptor proxies
        __validators__={"core_validation": validator},  # type: ignore[dict-item]
        **fields,
    )


SearchArgs = args_model(SEARCH_PARAMS, "MultimodalSearchArgs")
AnswerArgs = args_model(ANSWER_PARAMS, "MultimodalAnswerArgs")


def validation_message(tool_name: str, exc: ValidationError) -> str:
    """One readable line for the agent: what was wrong with which argument, and what to do."""
    problems = []
    for err in exc.errors():
        cause = (err.get("ctx") or {}).get("error")
        if isinstance(cause, Exception):
            problems.append(str(cause))
        else:
            loc = ".".join(str(part) for part in err.get("loc", ())) or "arguments"
            problems.append(f"argument {loc!r}: {err.get('msg', 'invalid')}")
    return (
        f"Error: invalid arguments for {tool_name}: {'; '.join(problems)}. "
        "Fix the arguments and call the tool again."
    )


def error_message(tool_name: str, exc: BaseException) -> str:
    """The message an agent reads when a tool call failed (bad argument, generation failure ...)."""
    if isinstance(exc, ValueError):  # InvalidInputError: the agent can fix the call
        return f"Error: invalid arguments for {tool_name}: {exc}. Fix the arguments and call the tool again."
    return f"Error: {tool_name} failed: {exc}"
